"""The HTTP side of the Gemini ``generateContent`` API, for the completion gateway: the body
of a prompt, the URL, the credentials, and the two framings of a streamed answer.

The body: system messages become ``systemInstruction``, assistant turns ``model`` turns with
``functionCall`` parts, tool messages ``functionResponse`` parts named after the call they
answer (Gemini matches results by name); turns of one role in a row are merged, so ``user``
and ``model`` alternate. The URL: the Gemini API (``v1beta``, key in ``x-goog-api-key``), or
Vertex AI when the target has a ``project`` (a key the same way, else an OAuth token from
Application Default Credentials through ``google-auth``, imported only then:
``pip install 'clew[vertexai]'``). Streams: ``alt=sse`` gives server-sent events (CRLF
separated); without it Google sends one JSON array, element by element.
"""

from __future__ import annotations

import base64
import importlib
import json
import mimetypes
import re
import threading
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote, unquote_to_bytes, urlsplit

from clew.errors import AuthenticationError, InvalidRequestError
from clew.providers.wire import (
    Decoder,
    HttpRequest,
    Prompt,
    SseDecoder,
    Target,
    function_choice,
    loads,
    model_params,
    require,
    text_of,
    tool_calls_of,
)

__all__ = ["GeminiStreamDecoder", "authorize", "base_url_for", "endpoint_url", "request_body"]

GEMINI_API_URL = "https://generativelanguage.googleapis.com"
"""The Gemini API (Google AI Studio keys)."""

DEFAULT_LOCATION = "us-central1"
"""The Vertex AI region when ``location`` is not given."""

_SCOPES = ["https://www.googleapis.com/auth/cloud-platform"]
_VERSION = re.compile(r"/(v1(?:alpha|beta1?)?)$")


def _project(target: Target) -> str | None:
    project = target.options.get("project")
    return project if isinstance(project, str) and project else None


def _location(target: Target) -> str:
    location = target.options.get("location")
    return location if isinstance(location, str) and location else DEFAULT_LOCATION


def base_url_for(target: Target) -> str:
    """The Gemini API, or the Vertex AI host of the target's location when a project is set
    (``global`` has no region prefix)."""
    if _project(target) is None:
        return GEMINI_API_URL
    location = _location(target)
    host = "aiplatform.googleapis.com"
    return f"https://{host}" if location == "global" else f"https://{location}-{host}"


def endpoint_url(target: Target, model: str, stream: bool) -> str:
    """The full URL of a ``generateContent`` (or streamed, ``alt=sse``) call of ``model``.

    A base URL that ends in an API version (``/v1beta``, ``/v1beta1`` ...) keeps it; otherwise
    the Gemini API's ``v1beta`` and Vertex AI's ``v1`` are used.
    """
    base = target.base_url.rstrip("/")
    version = None
    match = _VERSION.search(base)
    if match is not None:
        version, base = match.group(1), base[: match.start()]
    method = "streamGenerateContent?alt=sse" if stream else "generateContent"
    project = _project(target)
    if project is None:
        name = quote(model.removeprefix("models/"), safe="")
        return f"{base}/{version or 'v1beta'}/models/{name}:{method}"
    name = quote(model.removeprefix("publishers/google/models/").removeprefix("models/"), safe="")
    location = quote(_location(target), safe="")
    return (
        f"{base}/{version or 'v1'}/projects/{quote(project, safe='')}/locations/{location}"
        f"/publishers/google/models/{name}:{method}"
    )


# -- authentication ----------------------------------------------------------------------------
_INSTALL_HINT = (
    "vertexai without an API key signs in with Google Application Default Credentials, "
    "which need google-auth: pip install 'clew[vertexai]', or set CLEW_VERTEXAI_API_KEY"
)


class _Credentials:
    """The Application Default Credentials, found once per ``google.auth`` module and
    refreshed when their token expires."""

    lock = threading.Lock()
    module: Any = None
    credentials: Any = None


def adc_token() -> str:
    """An OAuth access token from Application Default Credentials (cloud-platform scope).

    Raises:
        AuthenticationError: google-auth is not installed, or no credentials could be found
            or refreshed.
    """
    try:
        auth = importlib.import_module("google.auth")
        transport = importlib.import_module("google.auth.transport.requests")
        failures = importlib.import_module("google.auth.exceptions")
    except ImportError as exc:
        raise AuthenticationError(_INSTALL_HINT, provider="vertexai") from exc
    with _Credentials.lock:
        try:
            if _Credentials.module is not auth or _Credentials.credentials is None:
                _Credentials.credentials, _ = auth.default(scopes=_SCOPES)
                _Credentials.module = auth
            credentials = _Credentials.credentials
            if not credentials.valid:
                credentials.refresh(transport.Request())
        except failures.GoogleAuthError as exc:
            raise AuthenticationError(
                f"Google Application Default Credentials failed ({exc}): run "
                "`gcloud auth application-default login`, or set CLEW_VERTEXAI_API_KEY",
                provider="vertexai",
            ) from exc
        token = credentials.token
    if not isinstance(token, str) or not token:
        raise AuthenticationError(
            "Google Application Default Credentials gave no access token", provider="vertexai"
        )
    return token


def authorize(request: HttpRequest, target: Target) -> HttpRequest:
    """``request`` with an ``Authorization: Bearer`` token from Application Default
    Credentials, when it goes to Vertex AI without an API key (called at each attempt, so an
    expired token is refreshed before a retry).

    Raises:
        AuthenticationError: no credentials: the Gemini API itself without a key, or Vertex AI
            without a key and without working Application Default Credentials.
    """
    if target.api_key:
        return request
    if _project(target) is None:
        if urlsplit(request.url).hostname == urlsplit(GEMINI_API_URL).hostname:
            raise AuthenticationError(
                "no API key for the Gemini API: set GEMINI_API_KEY (or CLEW_VERTEXAI_API_KEY), "
                "or set a project (CLEW_VERTEXAI_PROJECT) to use Vertex AI with Application "
                "Default Credentials",
                param="provider_api_key",
                provider="vertexai",
            )
        return request  # a proxy or test server that needs no key
    headers = {**request.headers, "authorization": f"Bearer {adc_token()}"}
    return HttpRequest(request.url, headers, request.body, request.content)


# -- building requests ---------------------------------------------------------------------------
_PARAMS: dict[str, str | None] = {
    "temp": "temperature",
    "top_p": "topP",
    "max_length": "maxOutputTokens",
    "frequency_penalty": "frequencyPenalty",
    "presence_penalty": "presencePenalty",
    "response_format": "response_format",
}
_MESSAGES = "llm_configuration.messages"


def _media(part: Mapping[str, Any]) -> dict[str, Any]:
    """An ``image_url`` (or ``input_audio``) content part as ``inlineData`` (a ``data:`` URL)
    or ``fileData`` (any other URL; the MIME type guessed from its name, else JPEG)."""
    if part.get("type") == "input_audio":
        audio = part.get("input_audio") or {}
        return {
            "inlineData": {
                "mimeType": f"audio/{audio.get('format') or 'wav'}",
                "data": str(audio.get("data") or ""),
            }
        }
    image = part.get("image_url")
    url = image.get("url") if isinstance(image, Mapping) else image
    if not isinstance(url, str) or not url:
        raise InvalidRequestError("an image_url content part has no url", param=_MESSAGES)
    if url.startswith("data:"):
        header, _, data = url[5:].partition(",")
        mime = header.split(";")[0] or "image/png"
        if ";base64" not in header:
            data = base64.b64encode(unquote_to_bytes(data)).decode()
        return {"inlineData": {"mimeType": mime, "data": data}}
    mime = mimetypes.guess_type(url.partition("?")[0])[0] or "image/jpeg"
    return {"fileData": {"mimeType": mime, "fileUri": url}}


def _content_parts(content: Any) -> list[dict[str, Any]]:
    if content is None:
        return []
    if isinstance(content, str):
        return [{"text": content}] if content else []
    parts: list[dict[str, Any]] = []
    for part in content:
        if isinstance(part, str):
            parts.append({"text": part})
        elif not isinstance(part, Mapping):
            continue
        elif part.get("type") in ("text", "input_text"):
            parts.append({"text": str(part.get("text") or "")})
        elif part.get("type") in ("image_url", "input_audio"):
            parts.append(_media(part))
        elif "type" not in part:
            parts.append(dict(part))  # a Gemini part given as is
        else:
            raise InvalidRequestError(
                f"vertexai does not take content parts of type {part.get('type')!r}",
                param=_MESSAGES,
            )
    return [p for p in parts if p.get("text") != ""]


def _function_response(content: Any) -> dict[str, Any]:
    """A tool's result as the ``response`` object Gemini wants: a JSON object as is, anything
    else under ``output``."""
    text = text_of(content)
    try:
        value = json.loads(text) if text.strip() else text
    except ValueError:
        value = text
    return dict(value) if isinstance(value, Mapping) else {"output": value}


def _append(contents: list[dict[str, Any]], role: str, parts: list[dict[str, Any]]) -> None:
    """Add a turn; consecutive turns of one role become one, so user and model alternate."""
    if not parts:
        return
    if contents and contents[-1]["role"] == role:
        contents[-1]["parts"].extend(parts)
    else:
        contents.append({"role": role, "parts": parts})


def _contents(turns: list[Mapping[str, Any]]) -> list[dict[str, Any]]:
    contents: list[dict[str, Any]] = []
    names: dict[str, str] = {}  # tool call id → function name
    pending: list[str] = []  # the last assistant turn's calls, for responses without an id
    for message in turns:
        role = message.get("role") or "user"
        if role in ("tool", "function"):
            call_id = str(message.get("tool_call_id") or "")
            name = names.get(call_id) or message.get("name")
            if not name and len(pending) == 1:
                name = pending[0]
            if not name:
                raise InvalidRequestError(
                    "a tool message must answer an earlier assistant tool call (its "
                    "tool_call_id) or carry the function's name: Gemini matches results by name",
                    param=_MESSAGES,
                )
            response = {"name": str(name), "response": _function_response(message.get("content"))}
            _append(contents, "user", [{"functionResponse": response}])
            continue
        parts = _content_parts(message.get("content"))
        if role != "assistant":
            _append(contents, "user", parts)
            continue
        pending = []
        for call_id, name, arguments in tool_calls_of(message):
            if not name:
                raise InvalidRequestError("an assistant tool call has no name", param=_MESSAGES)
            if call_id:
                names[call_id] = name
            pending.append(name)
            args = dict(arguments) if isinstance(arguments, Mapping) else {"value": arguments}
            parts.append({"functionCall": {"name": name, "args": args}})
        _append(contents, "model", parts)
    return contents


def _response_format(value: Any) -> dict[str, Any]:
    kind = value.get("type") if isinstance(value, Mapping) else None
    if kind in (None, "text") and isinstance(value, Mapping):
        return {}
    if kind == "json_object":
        return {"responseMimeType": "application/json"}
    if kind == "json_schema":
        spec = value.get("json_schema") or {}
        schema = spec.get("schema") if isinstance(spec, Mapping) else None
        config: dict[str, Any] = {"responseMimeType": "application/json"}
        if isinstance(schema, Mapping):
            config["responseJsonSchema"] = dict(schema)
        return config
    raise InvalidRequestError(
        f"model_params.response_format {value!r} is not text, json_object or json_schema",
        param="llm_configuration.model_params.response_format",
    )


def _tools(prompt: Prompt) -> dict[str, Any]:
    body: dict[str, Any] = {}
    names = []
    if prompt.functions:
        declarations = []
        for function in prompt.functions:
            name = require(
                function.get("name"), "a function has no name", "llm_configuration.functions"
            )
            names.append(name)
            declaration = {"name": name}
            if function.get("description"):
                declaration["description"] = function["description"]
            if function.get("parameters"):
                # JSON Schema as OpenAI takes it; ``parameters`` would take only an OpenAPI
                # subset (no additionalProperties, $defs, anyOf ...).
                declaration["parametersJsonSchema"] = function["parameters"]
            declarations.append(declaration)
        body["tools"] = [{"functionDeclarations": declarations}]
    mode, forced = function_choice(prompt)
    if mode is None or not names:
        return body  # auto / none with no functions asks for nothing
    config: dict[str, Any] = {"mode": {"auto": "AUTO", "none": "NONE", "required": "ANY"}[mode]}
    if forced:
        config["allowedFunctionNames"] = [forced]
    body["toolConfig"] = {"functionCallingConfig": config}
    return body


def request_body(prompt: Prompt, provider: str) -> dict[str, Any]:
    """The ``generateContent`` body for ``prompt`` (no model: the model is in the URL).

    Raises:
        InvalidRequestError: Gemini cannot take a message or parameter of the prompt.
    """
    system: list[str] = []
    turns: list[Mapping[str, Any]] = []
    for message in prompt.messages:
        if message.get("role") in ("system", "developer"):
            system.append(text_of(message.get("content")))
        else:
            turns.append(message)
    contents = _contents(turns)
    if not contents:
        raise InvalidRequestError(
            f"{provider} needs at least one user message besides the system prompt",
            param=_MESSAGES,
        )
    body: dict[str, Any] = {"contents": contents}
    if any(system):
        body["systemInstruction"] = {"parts": [{"text": t} for t in system if t]}
    config = model_params(prompt, provider, _PARAMS)
    if "response_format" in config:
        config.update(_response_format(config.pop("response_format")))
    if config:
        body["generationConfig"] = config
    body.update(_tools(prompt))
    return body


# -- stream framing ------------------------------------------------------------------------------
_STRUCTURE = re.compile(rb'[{}\[\]"]')
_IN_STRING = re.compile(rb'["\\]')


class JsonArrayDecoder(Decoder):
    """The elements of a JSON array of objects (``[{...},\\r\\n{...}]``) as each one completes.

    Objects outside any array (an error body ``{"error": ...}``) are read the same way. The
    scan keeps its place between calls, so a body fed in any pieces is read once; only
    structural bytes are looked at, which never occur inside a multi-byte UTF-8 character.
    """

    __slots__ = ("_buffer", "_depth", "_in_string", "_pos", "_start")

    def __init__(self) -> None:
        self._buffer = b""
        self._pos = 0  # where the scan goes on
        self._start = 0  # where the current element began
        self._depth = 0  # nesting inside the current element (0: between elements)
        self._in_string = False

    def feed(self, data: bytes) -> list[Any]:
        buffer = self._buffer = self._buffer + data
        events: list[Any] = []
        pos, depth, in_string = self._pos, self._depth, self._in_string
        while True:
            if in_string:
                match = _IN_STRING.search(buffer, pos)
                if match is None:
                    pos = len(buffer)
                    break
                if match.group() == b"\\":
                    if match.end() >= len(buffer):
                        pos = match.start()  # the escaped byte has not arrived yet
                        break
                    pos = match.end() + 1
                    continue
                in_string, pos = False, match.end()
                continue
            match = _STRUCTURE.search(buffer, pos)
            if match is None:
                pos = len(buffer)
                break
            byte, pos = match.group(), match.end()
            if depth == 0:
                if byte == b"{":  # the array's own brackets and commas are skipped
                    depth, self._start = 1, match.start()
            elif byte == b'"':
                in_string = True
            elif byte in (b"{", b"["):
                depth += 1
            else:
                depth -= 1
                if depth == 0:
                    events.append(_element(buffer[self._start : pos]))
        if depth == 0:
            self._buffer, self._pos = buffer[pos:], 0
        else:
            self._buffer, self._pos = buffer[self._start :], pos - self._start
            self._start = 0
        self._depth, self._in_string = depth, in_string
        return events

    def close(self) -> list[Any]:
        rest, self._buffer = self._buffer, b""
        if self._depth == 0:
            return []
        self._depth = 0
        return [_element(rest)]  # the body ended inside an element: an error event


def _element(payload: bytes) -> Any:
    try:
        return loads(payload)
    except ValueError:
        text = payload.decode(errors="replace")[:2000]
        return {"error": {"message": f"malformed stream element: {text}"}}


class GeminiStreamDecoder(Decoder):
    """A ``streamGenerateContent`` body in either framing: server-sent events (``alt=sse``)
    or one JSON array, told apart by the first byte that is not white space."""

    __slots__ = ("_head", "_inner")

    def __init__(self) -> None:
        self._head = b""
        self._inner: Decoder | None = None

    def feed(self, data: bytes) -> list[Any]:
        if self._inner is None:
            self._head += data
            first = self._head.lstrip()[:1]
            if not first:
                return []
            self._inner = JsonArrayDecoder() if first in (b"[", b"{") else SseDecoder()
            data, self._head = self._head, b""
        return self._inner.feed(data)

    def close(self) -> list[Any]:
        return [] if self._inner is None else self._inner.close()
