"""OpenAI (and every OpenAI-compatible provider reached through the ``openai`` SDK).

What is traced: ``chat.completions.create`` / ``.parse`` / ``.stream(...)``, legacy
``completions.create``, ``embeddings.create`` and ``responses.create``, in their plain,
``with_raw_response`` and ``with_streaming_response`` forms, sync and async. The provider is
told from the client's ``base_url`` (:mod:`clew.providers.registry`); ``AzureOpenAI`` is
``azure``.

Example:
    >>> import clew
    >>> handle = clew.instrument_openai()  # doctest: +SKIP
    >>> handle.uninstrument()  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from clew import attributes as a
from clew.providers.engine import Adapter, Outcome, Route
from clew.providers.messages import (
    content_parts,
    get,
    text_part,
    tool_call_part,
    tool_definitions,
)
from clew.providers.openai_responses import (
    ResponsesStreamState,
    responses_content,
    responses_output,
    responses_request,
)
from clew.providers.openai_stream import (
    PLAIN_REASONS,
    ChatStreamState,
    openai_request,
    openai_response_attributes,
    text_or_none,
)
from clew.providers.patching import Instrumentation, Sdk, instrument_sdk
from clew.providers.registry import Endpoint, provider_for_url
from clew.providers.usage import Usage, reported_cost
from clew.tracer.serialize import to_json

__all__ = ["SDK", "instrument_openai"]


# -- chat completions ---------------------------------------------------------------------
def _chat_request(body: Mapping[str, Any]) -> dict[str, Any]:
    attrs = openai_request(body)
    attrs[a.OPENAI_API_TYPE] = "chat_completions"
    return attrs


def _chat_tool_call(tool_call: Any) -> dict[str, Any]:
    """A chat tool call's part: a function's, or a custom tool's (named by its name, with its
    free-text input as the arguments)."""
    function = get(tool_call, "function")
    if function is not None:
        return tool_call_part(
            get(tool_call, "id"), get(function, "name"), get(function, "arguments")
        )
    custom = get(tool_call, "custom")
    return tool_call_part(
        get(tool_call, "id"),
        get(custom, "name", get(tool_call, "type")),
        get(custom, "input"),
        json_text=False,
    )


def _chat_messages(messages: Any) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for message in messages if isinstance(messages, list | tuple) else ():
        role = get(message, "role", "user")
        if role == "tool":
            part = {
                "type": "tool_call_response",
                "id": get(message, "tool_call_id"),
                "response": get(message, "content"),
            }
            out.append({"role": "tool", "parts": [part]})
            continue
        parts = content_parts(get(message, "content"))
        for tool_call in get(message, "tool_calls", ()):
            parts.append(_chat_tool_call(tool_call))
        function_call = get(message, "function_call")
        if function_call is not None:
            parts.append(
                tool_call_part(None, get(function_call, "name"), get(function_call, "arguments"))
            )
        entry: dict[str, Any] = {"role": role, "parts": parts}
        name = get(message, "name")
        if name is not None:
            entry["name"] = name
        out.append(entry)
    return out


def _chat_content(body: Mapping[str, Any], max_bytes: int) -> dict[str, Any]:
    attrs = tool_definitions(body, max_bytes)
    messages = _chat_messages(body.get("messages"))
    attrs[a.GEN_AI_INPUT_MESSAGES] = to_json(messages, max_bytes, plain=_text_only(messages))
    return attrs


def _text_only(messages: list[dict[str, Any]]) -> bool:
    """Whether input messages (clew's own dicts) hold only text, so :func:`to_json` may take
    its short path."""
    for message in messages:
        if type(message["role"]) is not str or type(message.get("name", "")) is not str:
            return False
        for part in message["parts"]:
            if part["type"] != "text" or type(part["content"]) is not str:
                return False
    return True


def _chat_output(choice_message: Any, finish_reason: Any) -> dict[str, Any]:
    parts = content_parts(get(choice_message, "content"))
    refusal = get(choice_message, "refusal")
    if refusal:
        parts.append({"type": "refusal", "content": refusal})
    for tool_call in get(choice_message, "tool_calls", ()):
        parts.append(_chat_tool_call(tool_call))
    function_call = get(choice_message, "function_call")
    if function_call is not None:
        parts.append(
            tool_call_part(None, get(function_call, "name"), get(function_call, "arguments"))
        )
    return {"role": "assistant", "parts": parts, "finish_reason": finish_reason}


def chat_response(response: Any) -> Outcome:
    """Read a chat completion (an SDK object or its JSON)."""
    choices = get(response, "choices", ())
    finishes = [get(c, "finish_reason") for c in choices]
    messages = [
        _chat_output(get(c, "message"), finish) for c, finish in zip(choices, finishes, strict=True)
    ]
    usage = get(response, "usage")
    return Outcome(
        Usage.from_openai(usage),
        get(response, "model"),
        reported_cost(usage),
        text_or_none(get(response, "id")),
        [str(f) for f in finishes if f],
        messages or None,
        _plain_text(messages),
        openai_response_attributes(response),
    )


def _plain_text(messages: list[dict[str, Any]]) -> bool:
    """Whether output messages hold only text (so :func:`to_json` may skip its look for
    objects and secret-named keys)."""
    for message in messages:
        if type(message["finish_reason"]) not in PLAIN_REASONS:
            return False
        for part in message["parts"]:
            if part["type"] != "text" or type(part["content"]) is not str:
                return False
    return True


# -- legacy completions -------------------------------------------------------------------
def _completion_content(body: Mapping[str, Any], max_bytes: int) -> dict[str, Any]:
    prompt = body.get("prompt")
    prompts = (
        prompt if isinstance(prompt, list) and all(isinstance(p, str) for p in prompt) else [prompt]
    )
    messages = [{"role": "user", "parts": [text_part(p)]} for p in prompts if p is not None]
    return {a.GEN_AI_INPUT_MESSAGES: to_json(messages, max_bytes)}


def completion_response(response: Any) -> Outcome:
    """Read a legacy text completion (an SDK object or its JSON)."""
    choices = get(response, "choices", ())
    reasons = [str(get(c, "finish_reason")) for c in choices if get(c, "finish_reason")]
    messages = [
        {
            "role": "assistant",
            "parts": [text_part(get(c, "text", ""))],
            "finish_reason": get(c, "finish_reason"),
        }
        for c in choices
    ]
    usage = get(response, "usage")
    return Outcome(
        Usage.from_openai(usage),
        get(response, "model"),
        reported_cost(usage),
        text_or_none(get(response, "id")),
        reasons,
        messages or None,
        attributes=openai_response_attributes(response),
    )


# -- embeddings ---------------------------------------------------------------------------
def _embeddings_request(body: Mapping[str, Any]) -> dict[str, Any]:
    attrs = openai_request(body)
    fmt = body.get("encoding_format")
    if isinstance(fmt, str):
        attrs[a.GEN_AI_REQUEST_ENCODING_FORMATS] = (fmt,)
    dimensions = body.get("dimensions")
    if isinstance(dimensions, int):
        attrs[a.GEN_AI_EMBEDDINGS_DIMENSION_COUNT] = dimensions
    return attrs


def _no_content(body: Mapping[str, Any], max_bytes: int) -> dict[str, Any]:
    return {}


def _embeddings_response(response: Any) -> Outcome:
    usage = get(response, "usage")
    return Outcome(Usage.from_openai(usage), get(response, "model"), reported_cost(usage))


# -- the adapter --------------------------------------------------------------------------
ROUTES: dict[str, Route] = {
    "/chat/completions": Route(
        "chat", _chat_request, _chat_content, chat_response, ChatStreamState
    ),
    "/completions": Route(
        "text_completion",
        openai_request,
        _completion_content,
        completion_response,
        ChatStreamState,
    ),
    "/embeddings": Route("embeddings", _embeddings_request, _no_content, _embeddings_response),
    "/responses": Route(
        "chat", responses_request, responses_content, responses_output, ResponsesStreamState
    ),
}

_ENDPOINT_ATTRIBUTE = "_clew_endpoint"


def _endpoint_of(client: Any) -> Endpoint:
    base_url = getattr(client, "_base_url", None)
    cached = vars(client).get(_ENDPOINT_ATTRIBUTE)
    if cached is not None and cached[0] is base_url:
        endpoint: Endpoint = cached[1]
        return endpoint
    endpoint = provider_for_url(str(base_url))
    if _is_azure(client) and endpoint.provider != "azure":
        endpoint = Endpoint("azure", endpoint.host, endpoint.port)
    vars(client)[_ENDPOINT_ATTRIBUTE] = (base_url, endpoint)
    return endpoint


def _is_azure(client: Any) -> bool:
    return any(cls.__name__ in ("AzureOpenAI", "AsyncAzureOpenAI") for cls in type(client).__mro__)


_adapter: Adapter | None = None


def _load() -> tuple[Adapter, type, type]:
    """The OpenAI adapter and base client classes (imports the ``openai`` SDK)."""
    global _adapter
    from openai._base_client import AsyncAPIClient, SyncAPIClient

    if _adapter is None:
        from openai import AsyncStream, Stream
        from openai._legacy_response import LegacyAPIResponse
        from openai._response import BaseAPIResponse

        _adapter = Adapter(
            "openai",
            ROUTES,
            (Stream, AsyncStream),
            (LegacyAPIResponse, BaseAPIResponse),
            _endpoint_of,
        )
    return _adapter, SyncAPIClient, AsyncAPIClient


SDK = Sdk("openai", "openai", "openai >= 1.92", _load)
"""The ``openai`` SDK, for :func:`~clew.providers.patching.instrument_sdk`."""


def instrument_openai(client: Any = None) -> Instrumentation:
    """Trace OpenAI calls: every client (no argument) or one client.

    With no argument the SDK's client classes are patched, so every client, existing and
    future, sync and async, ``AzureOpenAI`` included, is traced. With a client, only that
    client is. Calling again while instrumented returns the same handle; the handle undoes it
    and works as a context manager.

    Args:
        client: an ``openai.OpenAI`` / ``AsyncOpenAI`` (or Azure) client, or None.

    Returns:
        The handle.

    Raises:
        ImportError: the ``openai`` package is not installed (``pip install openai``).
        ConfigurationError: ``client`` is not an OpenAI client.

    Example:
        >>> import clew
        >>> from openai import OpenAI
        >>> handle = clew.instrument_openai(OpenAI(api_key="sk-test"))  # doctest: +SKIP
    """
    return instrument_sdk(SDK, client)
