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
from clew.providers.engine import Adapter, Outcome, Route, StreamState
from clew.providers.messages import (
    content_parts,
    get,
    param_attributes,
    text_part,
    texts_of,
    tool_call_part,
    tool_definitions,
)
from clew.providers.openai_responses import (
    ResponsesStreamState,
    responses_content,
    responses_output,
)
from clew.providers.patching import Instrumentation, Sdk, instrument_sdk
from clew.providers.registry import Endpoint, provider_for_url
from clew.providers.usage import Usage, _extra, estimate_tokens, reported_cost
from clew.tracer.serialize import to_json

__all__ = ["SDK", "instrument_openai"]


# -- chat completions ---------------------------------------------------------------------
def _chat_request(body: Mapping[str, Any]) -> dict[str, Any]:
    return param_attributes(body)


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
            function = get(tool_call, "function")
            parts.append(
                tool_call_part(
                    get(tool_call, "id"), get(function, "name"), get(function, "arguments")
                )
            )
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
        function = get(tool_call, "function")
        name = get(function, "name") if function is not None else get(tool_call, "type")
        args = get(function, "arguments") if function is not None else get(tool_call, "custom")
        parts.append(tool_call_part(get(tool_call, "id"), name, args))
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
        _text_or_none(get(response, "id")),
        [str(f) for f in finishes if f],
        messages or None,
        _plain_text(messages),
    )


def _plain_text(messages: list[dict[str, Any]]) -> bool:
    """Whether output messages hold only text (so :func:`to_json` may skip its look for
    objects and secret-named keys)."""
    for message in messages:
        if type(message["finish_reason"]) not in _PLAIN_REASONS:
            return False
        for part in message["parts"]:
            if part["type"] != "text" or type(part["content"]) is not str:
                return False
    return True


def _text_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


_PLAIN_REASONS = (str, type(None))


class _Choice:
    __slots__ = ("finish_reason", "reasoning", "text", "tools")

    def __init__(self) -> None:
        self.text: list[str] = []
        self.reasoning: list[str] = []  # Mistral's streamed thinking parts
        self.tools: dict[int, list[Any]] = {}  # index → [id, name, [argument pieces]]
        self.finish_reason: str | None = None

    def add(self, content: Any) -> None:
        """A delta's content: text, or (Mistral) a list of text and thinking parts."""
        if type(content) is str:
            self.text.append(content)
            return
        for part in content if isinstance(content, list | tuple) else ():
            kind = get(part, "type")
            if kind == "text":
                self.text.append(str(get(part, "text", "")))
            elif kind == "thinking":
                self.reasoning.extend(texts_of(get(part, "thinking")))


def _groq_usage(chunk: Any) -> Any:
    """Groq puts a stream's usage under ``x_groq`` in its last chunk."""
    x_groq = chunk.get("x_groq") if type(chunk) is dict else _extra(chunk, "x_groq")
    return get(x_groq, "usage")


def _tool_deltas(slot: _Choice, tool_calls: Any) -> None:
    for tool_call in tool_calls:
        entry = slot.tools.get(tool_call.index)
        if entry is None:
            entry = slot.tools[tool_call.index] = [None, None, []]
        if tool_call.id:
            entry[0] = tool_call.id
        function = tool_call.function
        if function is not None:
            if function.name:
                entry[1] = function.name
            if function.arguments:
                entry[2].append(function.arguments)


def _tool_deltas_json(slot: _Choice, tool_calls: Any) -> None:
    for tool_call in tool_calls:
        index = tool_call.get("index") or 0
        entry = slot.tools.get(index)
        if entry is None:
            entry = slot.tools[index] = [None, None, []]
        if tool_call.get("id"):
            entry[0] = tool_call["id"]
        function = tool_call.get("function")
        if function is not None:
            if function.get("name"):
                entry[1] = function["name"]
            if function.get("arguments"):
                entry[2].append(function["arguments"])


class ChatStreamState(StreamState):
    """A chat completion stream: text and tool-call deltas per choice, the final usage."""

    __slots__ = ("body", "choices", "model", "response_id", "single", "usage")

    def __init__(self, body: Mapping[str, Any]) -> None:
        self.body = body
        self.response_id: str | None = None
        self.model: str | None = None
        self.usage: Any = None
        self.choices: dict[int, _Choice] = {}
        n = body.get("n")
        # One choice per chunk, index 0: the common stream, read on a short path.
        self.single = (n is None or n == 1) and "messages" in body

    def record(self, chunk: Any) -> None:
        if type(chunk) is dict:  # the JSON of a chunk, as the completion gateway reads it
            self._record_json(chunk)
            return
        # This runs for every chunk, between the SDK's parsing of one and the next, so it
        # reads as few fields as it can, by plain attribute access (getattr(obj, name, None)
        # costs a builtin call more); any other shape takes the general path below.
        if self.single and self.response_id:
            try:
                usage = chunk.usage
                choices = chunk.choices
                if choices:
                    choice = choices[0]
                    index = choice.index
                    finish_reason = choice.finish_reason
                    delta = choice.delta
                    text = delta.content
                    tool_calls = delta.tool_calls
            except AttributeError:
                self.single = False
            else:
                if usage is not None:
                    self.usage = usage  # the final chunk's usage, even after the finish reason
                if not choices:
                    return
                if not index and len(choices) == 1:
                    slot = self.choices.get(0)
                    if slot is None:
                        slot = self.choices[0] = _Choice()
                    if text:
                        slot.add(text)
                    if tool_calls:
                        _tool_deltas(slot, tool_calls)
                    if finish_reason:
                        slot.finish_reason = finish_reason
                        if usage is None:
                            self.usage = _groq_usage(chunk) or self.usage
                    return
                self.single = False
                self._choices(choices)
                return
        if not self.response_id:  # Azure's first chunk (content filter results) has id ""
            self.response_id = getattr(chunk, "id", None) or None
            self.model = getattr(chunk, "model", None) or None
        usage = getattr(chunk, "usage", None) or _groq_usage(chunk)
        if usage is not None:
            self.usage = usage
        self._choices(getattr(chunk, "choices", None) or ())

    def _record_json(self, chunk: dict[str, Any]) -> None:
        """:meth:`record` for a chunk's JSON (the same reading as for an SDK chunk)."""
        if not self.response_id:
            self.response_id = chunk.get("id") or None
            self.model = chunk.get("model") or None
        usage = chunk.get("usage") or _groq_usage(chunk)
        if usage is not None:
            self.usage = usage
        for choice in chunk.get("choices") or ():
            index = choice.get("index") or 0
            slot = self.choices.get(index)
            if slot is None:
                slot = self.choices[index] = _Choice()
            delta = choice.get("delta")
            if delta is not None:
                text = delta.get("content")
                tool_calls = delta.get("tool_calls")
                if tool_calls:
                    _tool_deltas_json(slot, tool_calls)
            else:
                text = choice.get("text")
            if text:
                slot.add(text)
            finish_reason = choice.get("finish_reason")
            if finish_reason:
                slot.finish_reason = finish_reason

    def _choices(self, choices: Any) -> None:
        for choice in choices:
            index = getattr(choice, "index", 0) or 0
            slot = self.choices.get(index)
            if slot is None:
                slot = self.choices[index] = _Choice()
            delta = getattr(choice, "delta", None)
            # A chat chunk has a delta, a legacy completion chunk a text (asking a model for
            # a field it lacks costs microseconds).
            if delta is not None:
                text = getattr(delta, "content", None)
                tool_calls = getattr(delta, "tool_calls", None)
                if tool_calls:
                    _tool_deltas(slot, tool_calls)
            else:
                text = getattr(choice, "text", None)
            if text:
                slot.add(text)
            finish_reason = getattr(choice, "finish_reason", None)
            if finish_reason:
                slot.finish_reason = finish_reason

    def outcome(self) -> Outcome:
        ordered = [self.choices[i] for i in sorted(self.choices)]
        reasons = [str(c.finish_reason) for c in ordered if c.finish_reason]
        messages: list[dict[str, Any]] | None = None
        plain = False
        if ordered:
            messages = []
            for choice in ordered:
                parts = (
                    [{"type": "reasoning", "content": "".join(choice.reasoning)}]
                    if choice.reasoning
                    else []
                )
                if choice.text:
                    parts.append(text_part("".join(choice.text)))
                for _, (call_id, name, pieces) in sorted(choice.tools.items()):
                    parts.append(tool_call_part(call_id, name, "".join(pieces)))
                messages.append(
                    {"role": "assistant", "parts": parts, "finish_reason": choice.finish_reason}
                )
            # Text parts only (str values under clew's keys) need no look for objects or
            # secret-named keys; tool-call arguments are the model's JSON and do.
            plain = not any(
                choice.tools or type(choice.finish_reason) not in _PLAIN_REASONS
                for choice in ordered
            )
        usage = Usage.from_openai(self.usage)
        if usage is None:
            usage = self._estimate(ordered)
        return Outcome(
            usage,
            self.model,
            reported_cost(self.usage),
            _text_or_none(self.response_id),
            reasons,
            messages,
            plain,
        )

    def _estimate(self, ordered: list[_Choice]) -> Usage:
        messages = self.body.get("messages")
        prompt = self.body.get("prompt")
        source = messages if messages is not None else prompt
        count = len(messages) if isinstance(messages, list) else 0
        input_tokens = estimate_tokens(texts_of(source), count)
        output = sum(
            estimate_tokens(
                [
                    *c.text,
                    *("".join(t[2]) for t in c.tools.values()),
                    *(t[1] or "" for t in c.tools.values()),
                ]
            )
            for c in ordered
            if c.text or c.tools
        )
        return Usage(input_uncached=input_tokens, output=output, estimated=True)


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
        _text_or_none(get(response, "id")),
        reasons,
        messages or None,
    )


# -- embeddings ---------------------------------------------------------------------------
def _embeddings_request(body: Mapping[str, Any]) -> dict[str, Any]:
    attrs = param_attributes(body)
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
        "text_completion", _chat_request, _completion_content, completion_response, ChatStreamState
    ),
    "/embeddings": Route("embeddings", _embeddings_request, _no_content, _embeddings_response),
    "/responses": Route(
        "chat", _chat_request, responses_content, responses_output, ResponsesStreamState
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
