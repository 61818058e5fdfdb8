"""How the completion gateway speaks to a provider's HTTP API: one :class:`Wire` per API.

A wire turns a provider-neutral :class:`Prompt` into the provider's HTTP request
(:meth:`Wire.build`), and reads what comes back with the provider's :class:`Route`: the same
response parser and stream state the SDK instrumentation uses, so tokens and cost are computed
by one code path whether a call went through an SDK or through the gateway. JSON from the wire
is decoded into plain dicts, which every parser reads as it reads the SDKs' objects.

A parameter a provider cannot honour is an :class:`~clew.errors.InvalidRequestError` naming
it, raised before anything is sent; it is never dropped silently.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from clew.errors import InvalidRequestError
from clew.providers.engine import Route

__all__ = [
    "HttpRequest",
    "Prompt",
    "SseDecoder",
    "Target",
    "Wire",
    "function_choice",
    "loads",
    "model_params",
]


def loads(data: str | bytes) -> Any:
    """Decode JSON (objects as plain dicts: the parsers read SDK objects and dicts alike)."""
    return json.loads(data)


@dataclass(frozen=True, slots=True)
class Prompt:
    """A completion request, provider-neutral, after templating.

    Attributes:
        model: the provider's model name.
        messages: the messages in the seed's ``MessageSchema`` shape (``role``, ``content``:
            a string, a list of OpenAI-style content parts, or None), with any OpenAI-style
            extras a message carries (``name``, ``tool_calls``, ``tool_call_id``).
        params: the model parameters the caller gave (``temp``, ``top_p``,
            ``frequency_penalty``, ``presence_penalty``, ``max_length``, ``response_format``,
            ``safe_prompt``); absent ones are left to the provider's defaults.
        functions: function schemas in the OpenAI format (``name``, ``description``,
            ``parameters``).
        function_call: ``"auto"``, ``"none"``, ``"required"``, or ``{"name": ...}``.
    """

    model: str
    messages: tuple[Mapping[str, Any], ...]
    params: Mapping[str, Any] = field(default_factory=dict)
    functions: tuple[Mapping[str, Any], ...] = ()
    function_call: str | Mapping[str, Any] | None = None

    def system_and_turns(self) -> tuple[list[str], list[Mapping[str, Any]]]:
        """The system messages' texts, and the other messages (for APIs that take the system
        prompt apart)."""
        system: list[str] = []
        turns: list[Mapping[str, Any]] = []
        for message in self.messages:
            if message.get("role") == "system":
                system.append(text_of(message.get("content")))
            else:
                turns.append(message)
        return system, turns


def text_of(content: Any) -> str:
    """The text of a message's content (a string, or the text parts of a part list)."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    pieces = []
    for part in content:
        if isinstance(part, str):
            pieces.append(part)
        elif isinstance(part, Mapping) and part.get("type") in ("text", None):
            pieces.append(str(part.get("text", "")))
    return "".join(pieces)


@dataclass(frozen=True, slots=True)
class Target:
    """Where a provider is and how to authenticate.

    Attributes:
        provider: clew's provider name.
        base_url: the API's base URL (``CLEW_<PROVIDER>_BASE_URL`` or the provider's own).
        api_key: the key to send (never logged, traced, cached or shown in a repr).
        options: provider settings: ``api_version`` (Azure), ``project`` and ``location``
            (Vertex AI), ``region`` (Bedrock).
    """

    provider: str
    base_url: str
    api_key: str | None = field(default=None, repr=False)
    options: Mapping[str, str] = field(default_factory=dict)


class HttpRequest:
    """One HTTP request to a provider.

    Attributes:
        url: the full URL (query included).
        headers: the headers, credentials included (never logged, never in a repr).
        body: the JSON body: what the span records as the request and the cache keys on.
        content: the exact bytes to send (the compact JSON of ``body``, made when first read:
            a cache hit never needs them).
    """

    __slots__ = ("_content", "body", "headers", "url")

    def __init__(
        self,
        url: str,
        headers: Mapping[str, str],
        body: Mapping[str, Any],
        content: bytes | None = None,
    ) -> None:
        self.url = url
        self.headers = headers
        self.body = body
        self._content = content

    @property
    def content(self) -> bytes:
        """The bytes to send."""
        content = self._content
        if content is None:
            content = json.dumps(self.body, separators=(",", ":"), ensure_ascii=False).encode()
            self._content = content
        return content

    @classmethod
    def json(cls, url: str, headers: Mapping[str, str], body: Mapping[str, Any]) -> HttpRequest:
        """A POST of ``body`` as compact JSON."""
        return cls(url, {"content-type": "application/json", **headers}, body)

    def __repr__(self) -> str:
        return f"HttpRequest(url={self.url!r}, body={self.body!r})"


class Decoder:
    """Turns a response body's bytes, as they arrive, into events (parsed JSON values)."""

    def feed(self, data: bytes) -> list[Any]:
        """The events completed by ``data``."""
        raise NotImplementedError

    def close(self) -> list[Any]:
        """The events left at the end of the body."""
        return []


class SseDecoder(Decoder):
    """Server-sent events: each event's ``data:`` lines, JSON-decoded; ``[DONE]`` is dropped.

    Line ends may be LF, CRLF or CR, and a body may be cut anywhere. The event name, when there
    is one and the JSON lacks ``type``, is put under ``type`` (Anthropic sends both; an
    ``error`` event may only have its name).
    """

    __slots__ = ("_buffer",)

    def __init__(self) -> None:
        self._buffer = b""

    def feed(self, data: bytes) -> list[Any]:
        buffer = self._buffer + data if self._buffer else data
        if b"\r" in buffer:
            # CRLF and CR become LF; a CR at the very end may be half of a CRLF: kept back
            held = buffer.endswith(b"\r")
            if held:
                buffer = buffer[:-1]
            buffer = buffer.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
            if held:
                buffer += b"\r"
        if b"\n\n" not in buffer:
            self._buffer = buffer
            return []
        *blocks, self._buffer = buffer.split(b"\n\n")
        events: list[Any] = []
        for block in blocks:
            event = _sse_event(block)
            if event is not None:
                events.append(event)
        return events

    def close(self) -> list[Any]:
        block, self._buffer = self._buffer.replace(b"\r", b"\n"), b""
        event = _sse_event(block) if block.strip() else None
        return [] if event is None else [event]


def _sse_event(block: bytes) -> Any:
    if block.startswith(b"data: ") and b"\n" not in block:  # the common one-line event
        name = None
        payload = block[6:]
    else:
        name = None
        data: list[bytes] = []
        for line in block.split(b"\n"):
            if line.startswith(b"data:"):
                data.append(line[6:] if line.startswith(b"data: ") else line[5:])
            elif line.startswith(b"event:"):
                name = line[6:].strip().decode(errors="replace")
        if not data:
            return None
        payload = b"\n".join(data)
    if payload.strip() == b"[DONE]":
        return None
    try:
        event = json.loads(payload)
    except ValueError:
        return {"type": "error", "error": {"message": payload.decode(errors="replace")}}
    if name and type(event) is dict and event.get("type") is None:
        event["type"] = name
    return event


class Wire:
    """One provider HTTP API, as the gateway speaks it. A provider module makes one instance.

    Attributes:
        name: the API (``openai-chat``, ``anthropic-messages`` ...).
        route: the shared reader of its responses and streams (and of the request's span
            attributes).
        operation: ``gen_ai.operation.name`` of its calls.
    """

    name: ClassVar[str] = ""

    def __init__(self, route: Route) -> None:
        self.route = route

    @property
    def operation(self) -> str:
        """The GenAI operation of this API's calls."""
        return self.route.operation

    def default_base_url(self, target: Target) -> str | None:
        """The provider's own base URL, when the caller configured none."""
        return None

    def build(self, prompt: Prompt, target: Target, stream: bool) -> HttpRequest:
        """The HTTP request for ``prompt``.

        Raises:
            InvalidRequestError: the provider cannot honour a parameter or message.
        """
        raise NotImplementedError

    def prepare(self, request: HttpRequest, target: Target) -> HttpRequest:
        """The request as sent, signed where the API wants it (Bedrock's SigV4); called at
        each attempt, after :meth:`build`."""
        return request

    def decoder(self) -> Decoder:
        """A decoder of this API's stream body."""
        return SseDecoder()

    def delta(self, event: Any) -> str | None:
        """The text a stream event adds to the answer, if any."""
        return None

    def stream_error(self, event: Any) -> str | None:
        """The message of an error sent inside a stream (after a 200), if ``event`` is one."""
        return None

    def error_message(self, status: int, body: Any) -> str:
        """The provider's own error text from an error response's body (JSON or text)."""
        return _error_text(body) or f"HTTP {status}"


def _error_text(body: Any) -> str:
    if isinstance(body, Mapping):
        error = body.get("error")
        if isinstance(error, Mapping):
            message = error.get("message")
            if message:
                return str(message)
        elif isinstance(error, str) and error:
            return error
        for key in ("message", "detail", "Message"):
            if body.get(key):
                return str(body[key])
        return json.dumps(body)[:2000]
    if isinstance(body, bytes):
        body = body.decode(errors="replace")
    return str(body or "")[:2000]


# -- model parameters ----------------------------------------------------------------------
_NEUTRAL = {"temp": None, "top_p": None, "frequency_penalty": 0, "presence_penalty": 0}


def model_params(prompt: Prompt, provider: str, names: Mapping[str, str | None]) -> dict[str, Any]:
    """The provider's parameters for the caller's ``model_params``.

    Args:
        prompt: the request.
        provider: the provider's name, for errors.
        names: each seed parameter the provider takes → its name in the provider's body
            (``{"temp": "temperature", "max_length": "max_tokens"}``); a parameter mapped to
            None, or missing, is not supported.

    Raises:
        InvalidRequestError: a parameter the provider does not support was given a value
            that asks for something (``frequency_penalty=0`` asks for nothing and is fine).
    """
    body: dict[str, Any] = {}
    for key, value in prompt.params.items():
        if value is None or key == "model":
            continue
        target = names.get(key)
        if target is None:
            if key in _NEUTRAL and value == _NEUTRAL[key]:
                continue
            if key == "safe_prompt" and value is False:
                continue
            if (
                key == "response_format"
                and isinstance(value, Mapping)
                and value.get("type") in (None, "text")
            ):
                continue
            raise InvalidRequestError(
                f"{provider} does not support model_params.{key}"
                + (" (only mistral does)" if key == "safe_prompt" else "")
                + "; remove it or choose another provider",
                param=f"llm_configuration.model_params.{key}",
            )
        body[target] = value
    return body


_CHOICES = frozenset({"auto", "none", "required"})
_FUNCTION_CALL = "llm_configuration.function_call"


def function_choice(prompt: Prompt) -> tuple[str | None, str | None]:
    """The caller's ``function_call``, checked the same way for every provider.

    Returns:
        ``(mode, name)``: mode is None (not given), ``"auto"``, ``"none"`` or ``"required"``;
        a ``{"name": ...}`` gives ``("required", name)``.

    Raises:
        InvalidRequestError: the value is none of these, names a function that is not given,
            or requires a call with no functions given.
    """
    choice = prompt.function_call
    if choice is None or choice == "" or (isinstance(choice, Mapping) and not choice):
        return None, None
    names = {function.get("name") for function in prompt.functions}
    if isinstance(choice, Mapping) and choice.get("name"):
        name = str(choice["name"])
        if name not in names:
            raise InvalidRequestError(
                f"function_call names {name!r}, which is not among the functions",
                param=_FUNCTION_CALL,
            )
        return "required", name
    if not isinstance(choice, str) or choice not in _CHOICES:
        raise InvalidRequestError(
            f"function_call {choice!r} is not one of auto, none, required or {{'name': ...}}",
            param=_FUNCTION_CALL,
        )
    if choice == "required" and not names:
        raise InvalidRequestError("function_call 'required' needs functions", param=_FUNCTION_CALL)
    return choice, None


def openai_tools(prompt: Prompt) -> dict[str, Any]:
    """``tools`` and ``tool_choice`` for the caller's ``functions`` / ``function_call``."""
    body: dict[str, Any] = {}
    mode, name = function_choice(prompt)
    if prompt.functions:
        body["tools"] = [{"type": "function", "function": dict(f)} for f in prompt.functions]
        if name is not None:
            body["tool_choice"] = {"type": "function", "function": {"name": name}}
        elif mode is not None:
            body["tool_choice"] = mode
    return body


def tool_calls_of(message: Mapping[str, Any]) -> Iterator[tuple[str, str, Any]]:
    """``(id, name, arguments)`` of each OpenAI-style tool call on an assistant message;
    arguments decoded from JSON where they are JSON text."""
    for call in message.get("tool_calls") or ():
        function = call.get("function") or {}
        arguments = function.get("arguments")
        if isinstance(arguments, str):
            try:
                arguments = json.loads(arguments) if arguments.strip() else {}
            except ValueError:
                arguments = {"_raw": arguments}
        yield str(call.get("id") or ""), str(function.get("name") or ""), arguments
    legacy = message.get("function_call")
    if isinstance(legacy, Mapping):
        arguments = legacy.get("arguments")
        if isinstance(arguments, str):
            try:
                arguments = json.loads(arguments) if arguments.strip() else {}
            except ValueError:
                arguments = {"_raw": arguments}
        yield "", str(legacy.get("name") or ""), arguments


def require(value: Any, what: str, param: str) -> Any:
    """``value``, or an :class:`InvalidRequestError` saying ``what`` is missing."""
    if value is None or value == "":
        raise InvalidRequestError(what, param=param)
    return value
