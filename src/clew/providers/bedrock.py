"""AWS Bedrock's Converse and ConverseStream APIs, for the completion gateway (``aws_bedrock``).

The request body, SigV4 signing and the binary event stream are in
:mod:`clew.providers.bedrock_http`; this module reads what Bedrock answers (the
:class:`~clew.providers.engine.Route` of a Converse call and its stream state) and puts the
two together as :data:`BEDROCK_WIRE`.

Bedrock's ``inputTokens`` exclude the prompt-cache reads and writes
(``cacheReadInputTokens``, ``cacheWriteInputTokens``), as Anthropic's do; clew's
``gen_ai.usage.input_tokens`` includes them, and each kind is priced at its own rate (the
genai-prices ``aws`` extractor reads the usage the same way). A Converse response names no
model and carries no id (the request id is only in the ``x-amzn-requestid`` header).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from clew import attributes as a
from clew.errors import AuthenticationError
from clew.providers.bedrock_http import (
    PROVIDER,
    EventStreamDecoder,
    converse_body,
    converse_url,
    region_of,
    sign,
)
from clew.providers.engine import Outcome, Route, StreamState
from clew.providers.messages import (
    function_definition,
    get,
    param_attributes,
    text_part,
    tool_call_part,
)
from clew.providers.usage import Usage, estimate_tokens
from clew.providers.wire import Decoder, HttpRequest, Prompt, Target, Wire
from clew.tracer.serialize import to_json

__all__ = ["BEDROCK_WIRE", "ROUTE", "BedrockWire", "ConverseStreamState", "converse_response"]

_MISSING_RETRY = 60.0
"""Seconds before a failed look-up of the default AWS credentials is tried again."""


# -- content blocks → GenAI parts -----------------------------------------------------------
def _parts(content: Any) -> list[dict[str, Any]]:
    """Converse content blocks (``text``, ``toolUse``, ``toolResult``, ``reasoningContent``,
    ``image`` ...) as GenAI parts; inline bytes are never copied."""
    parts: list[dict[str, Any]] = []
    if isinstance(content, str):
        return [text_part(content)]
    for block in content or ():
        if not isinstance(block, Mapping):
            continue
        text = block.get("text")
        if isinstance(text, str):
            parts.append(text_part(text))
        elif "toolUse" in block:
            use = block["toolUse"]
            parts.append(tool_call_part(get(use, "toolUseId"), get(use, "name"), get(use, "input")))
        elif "toolResult" in block:
            result = block["toolResult"]
            parts.append(
                {
                    "type": "tool_call_response",
                    "id": get(result, "toolUseId"),
                    "response": _result(get(result, "content")),
                }
            )
        elif "reasoningContent" in block:
            reasoning = get(get(block["reasoningContent"], "reasoningText"), "text")
            parts.append({"type": "reasoning", "content": reasoning or "[redacted]"})
        elif "guardContent" in block:
            parts.append(text_part(get(get(block["guardContent"], "text"), "text", "")))
        elif "cachePoint" in block:
            continue
        else:
            parts.append(_media(block))
    return parts


def _result(content: Any) -> Any:
    """A tool result's content: its text when it is all text, else the blocks as sent."""
    if isinstance(content, list) and all(isinstance(get(b, "text"), str) for b in content):
        return "".join(get(b, "text") for b in content)
    return content


def _media(block: Mapping[str, Any]) -> dict[str, Any]:
    kind = next(iter(block), "unknown")
    uri = get(get(get(block[kind], "source"), "s3Location"), "uri") if block else None
    modality = "image" if kind == "image" else "video" if kind == "video" else kind
    if isinstance(uri, str):
        return {"type": "uri", "modality": modality, "uri": uri}
    return {"type": "blob", "modality": modality, "content": "[inline data omitted]"}


def _usage(usage: Any) -> Usage | None:
    if usage is None:
        return None
    return Usage(
        input_uncached=_int(get(usage, "inputTokens")),
        cache_read=_int(get(usage, "cacheReadInputTokens")),
        cache_write=_int(get(usage, "cacheWriteInputTokens")),
        output=_int(get(usage, "outputTokens")),
    )


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _outcome(usage: Usage | None, stop_reason: Any, content: Any) -> Outcome:
    messages = None
    if content is not None:
        messages = [{"role": "assistant", "parts": _parts(content), "finish_reason": stop_reason}]
    return Outcome(usage, None, None, None, [str(stop_reason)] if stop_reason else [], messages)


# -- the route -------------------------------------------------------------------------------
def converse_response(response: Any) -> Outcome:
    """Read a Converse response (its JSON)."""
    content = get(get(get(response, "output"), "message"), "content")
    return _outcome(_usage(get(response, "usage")), get(response, "stopReason"), content)


class ConverseStreamState(StreamState):
    """A ConverseStream: content blocks from their deltas (a ``toolUse`` block's id and name
    from its ``contentBlockStart``), the stop reason from ``messageStop``, the usage from
    ``metadata``, estimated when the stream ended without it."""

    __slots__ = ("blocks", "body", "stop_reason", "usage")

    def __init__(self, body: Mapping[str, Any]) -> None:
        self.body = body
        self.stop_reason: Any = None
        self.usage: Any = None
        self.blocks: dict[int, list[Any]] = {}  # index → [kind, toolUse start, [pieces]]

    def record(self, chunk: Any) -> None:
        kind = get(chunk, "type")
        if kind == "contentBlockDelta":
            delta = get(chunk, "delta")
            index = get(chunk, "contentBlockIndex", 0)
            slot = self.blocks.get(index)
            text = get(delta, "text")
            if isinstance(text, str):
                piece, block = text, "text"
            elif get(delta, "toolUse") is not None:
                piece, block = get(get(delta, "toolUse"), "input", ""), "toolUse"
            elif get(delta, "reasoningContent") is not None:
                piece, block = get(get(delta, "reasoningContent"), "text", ""), "reasoning"
            else:
                return
            if slot is None:
                slot = self.blocks[index] = [block, None, []]
            if piece:
                slot[2].append(piece)
        elif kind == "contentBlockStart":
            use = get(get(chunk, "start"), "toolUse")
            if use is not None:
                self.blocks[get(chunk, "contentBlockIndex", 0)] = ["toolUse", use, []]
        elif kind == "messageStop":
            self.stop_reason = get(chunk, "stopReason") or self.stop_reason
        elif kind == "metadata":
            self.usage = get(chunk, "usage") or self.usage

    def outcome(self) -> Outcome:
        content: list[dict[str, Any]] = []
        for _, (kind, start, pieces) in sorted(self.blocks.items()):
            text = "".join(pieces)
            if kind == "toolUse":
                use = {"toolUseId": get(start, "toolUseId"), "name": get(start, "name")}
                content.append({"toolUse": {**use, "input": text or {}}})
            elif kind == "reasoning":
                content.append({"reasoningContent": {"reasoningText": {"text": text}}})
            else:
                content.append({"text": text})
        usage = _usage(self.usage)
        if usage is None:
            output = [p for _, _, pieces in self.blocks.values() for p in pieces]
            messages = self.body.get("messages") or ()
            usage = Usage(
                input_uncached=estimate_tokens(_input_texts(self.body), len(messages)),
                output=estimate_tokens(output) if output else 0,
                estimated=True,
            )
        return _outcome(usage, self.stop_reason, content if self.blocks else None)


def _input_texts(body: Mapping[str, Any]) -> Iterator[str]:
    """The texts of a request's system and message blocks (for estimating tokens), without
    inline bytes."""
    blocks = list(body.get("system") or ())
    for message in body.get("messages") or ():
        blocks.extend(get(message, "content") or ())
    for part in _parts(blocks):
        kind = part["type"]
        if kind == "text" and isinstance(part["content"], str):
            yield part["content"]
        elif kind == "tool_call":
            yield json.dumps(part["arguments"])
        elif kind == "tool_call_response":
            response = part["response"]
            yield response if isinstance(response, str) else json.dumps(response)


def _request(body: Mapping[str, Any]) -> dict[str, Any]:
    config = body.get("inferenceConfig")
    if not isinstance(config, Mapping):
        return {}
    return param_attributes(
        {
            "max_tokens": config.get("maxTokens"),
            "temperature": config.get("temperature"),
            "top_p": config.get("topP"),
            "stop_sequences": config.get("stopSequences"),
        }
    )


def _content(body: Mapping[str, Any], max_bytes: int) -> dict[str, Any]:
    attrs: dict[str, Any] = {}
    system = body.get("system")
    if system:
        attrs[a.GEN_AI_SYSTEM_INSTRUCTIONS] = to_json(_parts(system), max_bytes)
    specs = [get(tool, "toolSpec") for tool in get(body.get("toolConfig"), "tools", ())]
    tools = [  # a Converse toolSpec in the convention's flat shape (a cachePoint is no tool)
        function_definition(spec, get(get(spec, "inputSchema"), "json"))
        for spec in specs
        if spec is not None
    ]
    if tools:
        attrs[a.GEN_AI_TOOL_DEFINITIONS] = to_json(tools, max_bytes)
    messages = [
        {"role": get(m, "role", "user"), "parts": _parts(get(m, "content"))}
        for m in body.get("messages") or ()
    ]
    attrs[a.GEN_AI_INPUT_MESSAGES] = to_json(messages, max_bytes)
    return attrs


ROUTE = Route("chat", _request, _content, converse_response, ConverseStreamState)
"""A Converse call (``/model/{modelId}/converse`` and ``/converse-stream``)."""


# -- the wire --------------------------------------------------------------------------------
class BedrockWire(Wire):
    """``POST {base_url}/model/{modelId}/converse`` (``/converse-stream``), SigV4-signed with
    the AWS credentials botocore finds (environment, profile, SSO, instance role ...), or
    sent with a Bedrock API key as a bearer token when the target has one.

    Args:
        route: the reader of Converse responses.
        credentials: returns the botocore credentials to sign with (a seam for tests and
            embedders); by default botocore's credential chain, looked up once and kept
            (refreshable credentials refresh themselves).
    """

    name = "bedrock-converse"

    def __init__(self, route: Route, credentials: Callable[[], Any] | None = None) -> None:
        super().__init__(route)
        self._credentials = credentials
        self._lock = threading.Lock()
        self._found: Any = None
        self._missing_until = 0.0

    def default_base_url(self, target: Target) -> str | None:
        return f"https://bedrock-runtime.{region_of(target)}.amazonaws.com"

    def build(self, prompt: Prompt, target: Target, stream: bool) -> HttpRequest:
        body = converse_body(prompt)
        if stream:
            EventStreamDecoder()  # fails now, before sending, when botocore is missing
        base = target.base_url or self.default_base_url(target) or ""
        accept = "application/vnd.amazon.eventstream" if stream else "application/json"
        return HttpRequest.json(converse_url(base, prompt.model, stream), {"accept": accept}, body)

    def prepare(self, request: HttpRequest, target: Target) -> HttpRequest:
        if target.api_key:
            headers = {**request.headers, "authorization": f"Bearer {target.api_key}"}
            return HttpRequest(request.url, headers, request.body, request.content)
        return sign(request, region_of(target, request.url), self.credentials())

    def credentials(self) -> Any:
        """The AWS credentials to sign with.

        Raises:
            AuthenticationError: none found, or botocore is not installed.
        """
        if self._credentials is not None:
            found = self._credentials()
        else:
            found = self._found or self._lookup()
        if found is None:
            raise AuthenticationError(
                "no AWS credentials for aws_bedrock: set AWS_ACCESS_KEY_ID and"
                " AWS_SECRET_ACCESS_KEY, or AWS_PROFILE, or a Bedrock API key in"
                " CLEW_AWS_BEDROCK_API_KEY",
                provider=PROVIDER,
            )
        return found

    def _lookup(self) -> Any:
        with self._lock:
            if self._found is not None or time.monotonic() < self._missing_until:
                return self._found
            try:
                import botocore.session  # type: ignore[import-untyped]
                from botocore.exceptions import BotoCoreError  # type: ignore[import-untyped]
            except ImportError as exc:
                raise AuthenticationError(
                    "signing AWS Bedrock requests needs botocore: pip install 'clew[bedrock]'"
                    " (or use a Bedrock API key: CLEW_AWS_BEDROCK_API_KEY)",
                    provider=PROVIDER,
                ) from exc
            try:
                self._found = botocore.session.get_session().get_credentials()
            except BotoCoreError as exc:  # a bad profile, an unreadable config file ...
                raise AuthenticationError(
                    f"reading the AWS credentials failed: {exc}", provider=PROVIDER
                ) from exc
            if self._found is None:
                self._missing_until = time.monotonic() + _MISSING_RETRY
            return self._found

    def decoder(self) -> Decoder:
        return EventStreamDecoder()

    def delta(self, event: Any) -> str | None:
        if isinstance(event, Mapping) and event.get("type") == "contentBlockDelta":
            text = get(event.get("delta"), "text")
            return text if isinstance(text, str) and text else None
        return None

    def stream_error(self, event: Any) -> str | None:
        if isinstance(event, Mapping) and event.get("type") == "exception":
            name, message = event.get("exception"), event.get("message")
            return f"{name}: {message}" if name and message else str(message or name)
        return None

    def error_message(self, status: int, body: Any) -> str:
        if isinstance(body, Mapping):
            for key in ("message", "Message"):
                if isinstance(body.get(key), str) and body[key]:
                    return str(body[key])
        return super().error_message(status, body)


BEDROCK_WIRE = BedrockWire(ROUTE)
"""The Bedrock Converse wire."""
