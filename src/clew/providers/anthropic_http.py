"""The Anthropic Messages API over HTTP, for the completion gateway.

System messages become ``system``; OpenAI-style ``functions`` become ``tools`` with an
``input_schema``; assistant tool calls and ``tool`` messages become ``tool_use`` and
``tool_result`` blocks. Responses and streams are read by the SDK instrumentation's parsers
(:func:`clew.providers.anthropic.messages_response`,
:class:`~clew.providers.anthropic.MessagesStreamState`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from clew.errors import InvalidRequestError
from clew.providers.anthropic import ROUTES
from clew.providers.wire import (
    HttpRequest,
    Prompt,
    Target,
    Wire,
    function_choice,
    model_params,
    text_of,
    tool_calls_of,
)

__all__ = ["ANTHROPIC_WIRE", "AnthropicWire"]

DEFAULT_MAX_TOKENS = 4096
"""``max_tokens`` when ``model_params.max_length`` is not given (Anthropic requires one)."""

_PARAMS: dict[str, str | None] = {
    "temp": "temperature",
    "top_p": "top_p",
    "max_length": "max_tokens",
}
_VERSION = "2023-06-01"


def _content(content: Any) -> Any:
    """OpenAI-style content parts → Anthropic blocks (text and images by URL or data)."""
    if content is None or isinstance(content, str):
        return content or ""
    blocks: list[dict[str, Any]] = []
    for part in content:
        if isinstance(part, str):
            blocks.append({"type": "text", "text": part})
        elif not isinstance(part, Mapping):
            continue
        elif part.get("type") == "image_url":
            image = part.get("image_url")
            url = image.get("url") if isinstance(image, Mapping) else image
            if isinstance(url, str) and url.startswith("data:") and ";base64," in url:
                media, data = url[5:].split(";base64,", 1)
                source = {"type": "base64", "media_type": media, "data": data}
            else:
                source = {"type": "url", "url": str(url)}
            blocks.append({"type": "image", "source": source})
        else:
            blocks.append(dict(part))  # text, or an Anthropic block given as is
    return blocks


def _messages(turns: list[Mapping[str, Any]]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for message in turns:
        role = message.get("role") or "user"
        if role in ("tool", "function"):
            block = {
                "type": "tool_result",
                "tool_use_id": str(message.get("tool_call_id") or message.get("name") or ""),
                "content": text_of(message.get("content")),
            }
            if out and out[-1]["role"] == "user" and isinstance(out[-1]["content"], list):
                out[-1]["content"].append(block)
            else:
                out.append({"role": "user", "content": [block]})
            continue
        content = _content(message.get("content"))
        calls = list(tool_calls_of(message)) if role == "assistant" else []
        if calls:
            blocks = [{"type": "text", "text": content}] if isinstance(content, str) else content
            blocks = [b for b in blocks if b.get("type") != "text" or b.get("text")]
            for call_id, name, arguments in calls:
                blocks.append({"type": "tool_use", "id": call_id, "name": name, "input": arguments})
            content = blocks
        out.append({"role": "assistant" if role == "assistant" else "user", "content": content})
    return out


def _tools(prompt: Prompt) -> dict[str, Any]:
    body: dict[str, Any] = {}
    if prompt.functions:
        tools = []
        for function in prompt.functions:
            tool = {
                "name": function.get("name"),
                "input_schema": function.get("parameters") or {"type": "object", "properties": {}},
            }
            if function.get("description"):
                tool["description"] = function["description"]
            tools.append(tool)
        body["tools"] = tools
    mode, name = function_choice(prompt)
    if name is not None:
        body["tool_choice"] = {"type": "tool", "name": name}
    elif mode == "required":
        body["tool_choice"] = {"type": "any"}
    elif mode is not None:
        body["tool_choice"] = {"type": mode}
    return body


class AnthropicWire(Wire):
    """``POST {base_url}/v1/messages``."""

    name = "anthropic-messages"

    def default_base_url(self, target: Target) -> str | None:
        return "https://api.anthropic.com"

    def build(self, prompt: Prompt, target: Target, stream: bool) -> HttpRequest:
        system, turns = prompt.system_and_turns()
        if not turns:
            raise InvalidRequestError(
                "anthropic needs at least one user message besides the system prompt",
                param="llm_configuration.messages",
            )
        body: dict[str, Any] = {"model": prompt.model, "messages": _messages(turns)}
        if system:
            body["system"] = "\n\n".join(system)
        body.update(model_params(prompt, "anthropic", _PARAMS))
        body.setdefault("max_tokens", DEFAULT_MAX_TOKENS)
        body.update(_tools(prompt))
        if stream:
            body["stream"] = True
        base = target.base_url.rstrip("/")
        if base.endswith("/v1"):
            base = base[:-3]
        headers = {"anthropic-version": _VERSION, "accept": "application/json"}
        if target.api_key:
            headers["x-api-key"] = target.api_key
        return HttpRequest.json(f"{base}/v1/messages", headers, body)

    def delta(self, event: Any) -> str | None:
        if isinstance(event, Mapping) and event.get("type") == "content_block_delta":
            delta = event.get("delta")
            if isinstance(delta, Mapping) and delta.get("type") == "text_delta":
                text = delta.get("text")
                return text if isinstance(text, str) and text else None
        return None

    def stream_error(self, event: Any) -> str | None:
        if isinstance(event, Mapping) and event.get("type") == "error":
            error = event.get("error")
            if isinstance(error, Mapping):
                return str(error.get("message") or error.get("type") or "stream error")
            return "stream error"
        return None


ANTHROPIC_WIRE = AnthropicWire(ROUTES["/v1/messages"])
"""The Anthropic Messages wire."""
