"""The HTTP side of AWS Bedrock's Converse API, for the completion gateway: the request body,
SigV4 signing, and the binary event stream ConverseStream answers with.

Signing and stream framing are botocore's (the optional extra, ``pip install
'clew[bedrock]'``), imported when first needed: clew does not re-implement SigV4 or the
event-stream checksums. :class:`~clew.providers.bedrock.BedrockWire` puts these together.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote, urlsplit

from clew.errors import AuthenticationError, InvalidRequestError
from clew.providers.wire import (
    Decoder,
    HttpRequest,
    Prompt,
    Target,
    function_choice,
    loads,
    model_params,
    require,
    text_of,
    tool_calls_of,
)

__all__ = [
    "EventStreamDecoder",
    "converse_body",
    "converse_url",
    "region_of",
    "sign",
]

PROVIDER = "aws_bedrock"
INSTALL_HINT = "pip install 'clew[bedrock]'"

_PARAMS: dict[str, str | None] = {"temp": "temperature", "top_p": "topP", "max_length": "maxTokens"}
_IMAGE_FORMATS = {
    "image/png": "png",
    "image/jpeg": "jpeg",
    "image/jpg": "jpeg",
    "image/gif": "gif",
    "image/webp": "webp",
}
_REGION = re.compile(r"[a-z]{2}(-[a-z]+)+-\d+")
_HOST_REGION = re.compile(r"bedrock-runtime(?:-fips)?\.([a-z0-9-]+)\.amazonaws\.com")
_MESSAGES = "llm_configuration.messages"
_FUNCTIONS = "llm_configuration.functions"
_FUNCTION_CALL = "llm_configuration.function_call"


# -- where ---------------------------------------------------------------------------------
def region_of(target: Target, url: str = "") -> str:
    """The AWS region: ``options["region"]``, else the one a ``bedrock-runtime`` URL names.

    Raises:
        InvalidRequestError: no region, or not a region name.
    """
    region = target.options.get("region") or ""
    if not region:
        found = _HOST_REGION.fullmatch(urlsplit(url or target.base_url).hostname or "")
        region = found.group(1) if found else ""
    if not region:
        raise InvalidRequestError(
            "aws_bedrock needs an AWS region: set CLEW_AWS_BEDROCK_REGION or AWS_REGION"
            " (e.g. us-east-1)",
            param="region",
        )
    if not _REGION.fullmatch(region):
        raise InvalidRequestError(
            f"{region!r} is not an AWS region name (e.g. us-east-1): check"
            " CLEW_AWS_BEDROCK_REGION or AWS_REGION",
            param="region",
        )
    return region


def converse_url(base_url: str, model: str, stream: bool) -> str:
    """``{base}/model/{model}/converse`` (or ``/converse-stream``); the model id quoted whole,
    ``:`` and the ``/`` of an inference-profile ARN included, as botocore sends it."""
    model = require(model, "aws_bedrock needs a model id", "llm_configuration.model")
    action = "converse-stream" if stream else "converse"
    return f"{base_url.rstrip('/')}/model/{quote(model, safe='')}/{action}"


# -- the request body ------------------------------------------------------------------------
def converse_body(prompt: Prompt) -> dict[str, Any]:
    """The Converse body of ``prompt``.

    System (and developer) messages become ``system``; OpenAI-style assistant ``tool_calls``
    become ``toolUse`` blocks and ``tool`` messages user ``toolResult`` blocks; consecutive
    messages of one role are merged, as Converse wants the roles to alternate.
    ``model_params`` go to ``inferenceConfig``, ``functions`` to ``toolConfig``.

    Raises:
        InvalidRequestError: a parameter Converse cannot honour (penalties, ``safe_prompt``,
            JSON ``response_format``, ``function_call="none"`` with functions), tool calls or
            results without ``functions``, a content part it cannot take, or a conversation
            that does not start with a user message.
    """
    system: list[dict[str, Any]] = []
    messages: list[dict[str, Any]] = []
    for message in prompt.messages:
        role = message.get("role") or "user"
        if role in ("system", "developer"):
            system.extend(_blocks(message.get("content")))
        elif role in ("tool", "function"):
            call_id = str(message.get("tool_call_id") or message.get("name") or "")
            result = {"toolUseId": call_id, "content": [{"text": text_of(message.get("content"))}]}
            _add(messages, "user", [{"toolResult": result}])
        elif role == "assistant":
            blocks = _blocks(message.get("content"))
            for call_id, name, arguments in tool_calls_of(message):
                arguments = {} if arguments is None else arguments
                blocks.append(
                    {"toolUse": {"toolUseId": call_id or name, "name": name, "input": arguments}}
                )
            _add(messages, "assistant", blocks)
        else:
            _add(messages, "user", _blocks(message.get("content")))
    if not messages:
        raise InvalidRequestError(
            "aws_bedrock needs at least one user message besides the system prompt",
            param=_MESSAGES,
        )
    if messages[0]["role"] != "user":
        raise InvalidRequestError(
            "a Bedrock conversation must start with a user message: the first message after"
            " the system prompt is the assistant's",
            param=_MESSAGES,
        )
    body: dict[str, Any] = {"messages": messages}
    if system:
        body["system"] = system
    config = model_params(prompt, PROVIDER, _PARAMS)
    if config:
        body["inferenceConfig"] = config
    tools = _tool_config(prompt, messages)
    if tools:
        body["toolConfig"] = tools
    return body


def _add(messages: list[dict[str, Any]], role: str, blocks: list[dict[str, Any]]) -> None:
    if not blocks:
        return
    if messages and messages[-1]["role"] == role:
        messages[-1]["content"].extend(blocks)
    else:
        messages.append({"role": role, "content": blocks})


def _blocks(content: Any) -> list[dict[str, Any]]:
    """Message content → Converse content blocks: text, images (``data:`` URLs or ``s3://``
    URIs); a part without a ``type`` is taken as a Converse block already (``cachePoint``,
    ``document`` ...). Empty text is dropped (Converse rejects it)."""
    if content is None:
        return []
    if isinstance(content, str):
        return [{"text": content}] if content else []
    blocks: list[dict[str, Any]] = []
    for part in content:
        if isinstance(part, str):
            if part:
                blocks.append({"text": part})
        elif not isinstance(part, Mapping):
            continue
        elif part.get("type") == "text":
            text = str(part.get("text") or "")
            if text:
                blocks.append({"text": text})
        elif part.get("type") == "image_url":
            blocks.append(_image(part.get("image_url")))
        elif part.get("type") is None:
            blocks.append(dict(part))
        else:
            raise InvalidRequestError(
                f"aws_bedrock cannot take a {part.get('type')!r} content part", param=_MESSAGES
            )
    return blocks


def _image(image: Any) -> dict[str, Any]:
    url = image.get("url") if isinstance(image, Mapping) else image
    url = str(url or "")
    if url.startswith("data:") and ";base64," in url:
        media, data = url[5:].split(";base64,", 1)
        kind = _IMAGE_FORMATS.get(media.lower())
        if kind is None:
            raise InvalidRequestError(
                f"aws_bedrock takes png, jpeg, gif or webp images, not {media!r}", param=_MESSAGES
            )
        return {"image": {"format": kind, "source": {"bytes": data}}}
    if url.startswith("s3://"):
        kind = _IMAGE_FORMATS.get("image/" + url.rpartition(".")[2].lower(), "png")
        return {"image": {"format": kind, "source": {"s3Location": {"uri": url}}}}
    raise InvalidRequestError(
        "aws_bedrock takes images as base64 data: URLs or s3:// URIs, not web URLs",
        param=_MESSAGES,
    )


def _tool_config(prompt: Prompt, messages: list[dict[str, Any]]) -> dict[str, Any] | None:
    """``toolConfig``: the functions as ``toolSpec`` tools, ``function_call`` as
    ``toolChoice``. Converse has no "none" choice, so ``function_call="none"`` with functions
    is refused rather than dropped; without functions there is nothing to call and it is
    fine."""
    if not prompt.functions:
        uses = any("toolUse" in b or "toolResult" in b for m in messages for b in m["content"])
        if uses:
            raise InvalidRequestError(
                "aws_bedrock needs llm_configuration.functions when the messages hold tool"
                " calls or tool results (Converse rejects them without a toolConfig)",
                param=_FUNCTIONS,
            )
        function_choice(prompt)  # a call required of no functions is refused there
        return None
    tools = []
    for function in prompt.functions:
        spec: dict[str, Any] = {"name": function.get("name")}
        if function.get("description"):
            spec["description"] = function["description"]
        schema = function.get("parameters") or {"type": "object", "properties": {}}
        spec["inputSchema"] = {"json": schema}
        tools.append({"toolSpec": spec})
    config: dict[str, Any] = {"tools": tools}
    mode, forced = function_choice(prompt)
    if forced:
        config["toolChoice"] = {"tool": {"name": forced}}
    elif mode == "auto":
        config["toolChoice"] = {"auto": {}}
    elif mode == "required":
        config["toolChoice"] = {"any": {}}
    elif mode == "none":
        raise InvalidRequestError(
            "aws_bedrock cannot be told not to call the given functions (Converse has no"
            ' toolChoice "none"): remove function_call, or the functions',
            param=_FUNCTION_CALL,
        )
    return config


# -- signing ---------------------------------------------------------------------------------
def sign(request: HttpRequest, region: str, credentials: Any) -> HttpRequest:
    """``request`` signed with SigV4 for the ``bedrock`` service, a fresh signature each time
    (``x-amz-date``, ``authorization``, and ``x-amz-security-token`` for session credentials).

    Args:
        request: the built request; the signature covers its URL, headers and ``content``.
        region: the AWS region.
        credentials: botocore credentials (refreshable ones are frozen for the signature).

    Raises:
        AuthenticationError: botocore is not installed, or the credentials cannot be read.
    """
    try:
        from botocore.auth import SigV4Auth  # type: ignore[import-untyped]
        from botocore.awsrequest import AWSRequest  # type: ignore[import-untyped]
        from botocore.exceptions import BotoCoreError  # type: ignore[import-untyped]
    except ImportError as exc:
        raise AuthenticationError(
            f"signing AWS Bedrock requests needs botocore: {INSTALL_HINT}"
            " (or use a Bedrock API key: CLEW_AWS_BEDROCK_API_KEY)",
            provider=PROVIDER,
        ) from exc
    try:
        frozen = getattr(credentials, "get_frozen_credentials", None)
        signer = SigV4Auth(frozen() if frozen else credentials, "bedrock", region)
        aws = AWSRequest(
            method="POST", url=request.url, data=request.content, headers=dict(request.headers)
        )
        signer.add_auth(aws)
    except BotoCoreError as exc:
        raise AuthenticationError(
            f"the AWS credentials could not be used: {exc}", provider=PROVIDER
        ) from exc
    headers = {str(k).lower(): str(v) for k, v in aws.headers.items()}
    return HttpRequest(request.url, headers, request.body, request.content)


# -- the event stream ------------------------------------------------------------------------
class EventStreamDecoder(Decoder):
    """Bedrock's ``application/vnd.amazon.eventstream`` body → events, framed and
    checksummed by botocore's ``EventStreamBuffer``, fed any split of the bytes.

    An event is its JSON payload with the ``:event-type`` header under ``type``
    (``{"type": "contentBlockDelta", "contentBlockIndex": 0, "delta": {...}}``), the
    ``p`` padding dropped. An exception frame (``throttlingException``,
    ``modelStreamErrorException`` ...), a corrupt frame, or a body that ends inside a frame
    is ``{"type": "exception", "exception": <name>, "message": <text>}``; nothing is read
    after a corrupt frame.

    Raises:
        InvalidRequestError: botocore is not installed.
    """

    __slots__ = ("_broken", "_buffer", "_errors", "_pending")

    def __init__(self) -> None:
        try:
            from botocore.eventstream import (  # type: ignore[import-untyped]
                EventStreamBuffer,
                ParserError,
            )
        except ImportError as exc:
            raise InvalidRequestError(
                f"reading AWS Bedrock streams needs botocore: {INSTALL_HINT}", param="stream"
            ) from exc
        self._buffer = EventStreamBuffer()
        self._errors: type[Exception] = ParserError
        self._pending = 0  # bytes fed but not yet part of a complete frame
        self._broken = False

    def feed(self, data: bytes) -> list[Any]:
        if self._broken or not data:
            return []
        self._buffer.add_data(data)
        self._pending += len(data)
        events: list[Any] = []
        try:
            for message in self._buffer:
                self._pending -= message.prelude.total_length
                events.append(_event(message.headers, message.payload))
        except self._errors as exc:
            self._broken = True
            events.append(_exception("eventStreamError", f"corrupt event-stream frame: {exc}"))
        return events

    def close(self) -> list[Any]:
        if self._pending and not self._broken:
            self._broken = True
            message = f"the event stream ended inside a frame ({self._pending} bytes unread)"
            return [_exception("eventStreamError", message)]
        return []


def _exception(name: Any, message: Any) -> dict[str, Any]:
    return {
        "type": "exception",
        "exception": str(name or "exception"),
        "message": str(message or ""),
    }


def _event(headers: Mapping[str, Any], payload: bytes) -> dict[str, Any]:
    kind = headers.get(":message-type", "event")
    if kind == "error":
        return _exception(headers.get(":error-code"), headers.get(":error-message"))
    try:
        value = loads(payload) if payload else {}
    except ValueError:
        text = payload.decode(errors="replace")[:2000]
        if kind == "exception":
            return _exception(headers.get(":exception-type"), text)
        return _exception("eventStreamError", f"an event that is not JSON: {text}")
    if not isinstance(value, dict):
        value = {"value": value}
    if kind == "exception":
        message = value.get("message") or value.get("Message") or ""
        return _exception(headers.get(":exception-type"), message)
    value.pop("p", None)
    value["type"] = headers.get(":event-type")
    return value
