"""The OpenAI chat wire format over HTTP, for the completion gateway: openai, azure,
openrouter, groq, fireworks, anyscale, mistral and litellm.

Responses and streams are read by :func:`clew.providers.openai.chat_response` and
:class:`~clew.providers.openai.ChatStreamState`, the parsers of the SDK instrumentation.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from clew.errors import InvalidRequestError
from clew.providers.openai import ROUTES
from clew.providers.wire import (
    HttpRequest,
    Prompt,
    Target,
    Wire,
    model_params,
    openai_tools,
)

__all__ = ["OPENAI_WIRE", "OpenAIWire"]

_BASE_URLS = {
    "openai": "https://api.openai.com/v1",
    "openrouter": "https://openrouter.ai/api/v1",
    "groq": "https://api.groq.com/openai/v1",
    "fireworks": "https://api.fireworks.ai/inference/v1",
    "anyscale": "https://api.endpoints.anyscale.com/v1",
    "mistral": "https://api.mistral.ai/v1",
    "litellm": "http://127.0.0.1:4000",
}

_PARAMS: dict[str, str | None] = {
    "temp": "temperature",
    "top_p": "top_p",
    "frequency_penalty": "frequency_penalty",
    "presence_penalty": "presence_penalty",
    "max_length": "max_tokens",
    "response_format": "response_format",
}
# Mistral alone takes safe_prompt.
_MISTRAL_PARAMS = {**_PARAMS, "safe_prompt": "safe_prompt"}
_AZURE_API_VERSION = "2024-10-21"


def _message(message: Mapping[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in message.items() if v is not None or k == "content"}
    out.setdefault("role", "user")
    return out


class OpenAIWire(Wire):
    """``POST {base_url}/chat/completions`` (Azure: ``/deployments/{model}/chat/completions``)."""

    name = "openai-chat"

    def default_base_url(self, target: Target) -> str | None:
        return _BASE_URLS.get(target.provider)

    def build(self, prompt: Prompt, target: Target, stream: bool) -> HttpRequest:
        names = _MISTRAL_PARAMS if target.provider == "mistral" else _PARAMS
        body: dict[str, Any] = {
            "model": prompt.model,
            "messages": [_message(m) for m in prompt.messages],
        }
        body.update(model_params(prompt, target.provider, names))
        body.update(openai_tools(prompt))
        if stream:
            body["stream"] = True
            body["stream_options"] = {"include_usage": True}
        base = target.base_url.rstrip("/")
        headers: dict[str, str] = {"accept": "application/json"}
        if target.provider == "azure":
            version = target.options.get("api_version") or _AZURE_API_VERSION
            url = (
                f"{base}/deployments/{quote(prompt.model, safe='')}/chat/completions"
                f"?api-version={quote(version, safe='')}"
            )
            if target.api_key:
                headers["api-key"] = target.api_key
        else:
            url = f"{base}/chat/completions"
            if target.api_key:
                headers["authorization"] = f"Bearer {target.api_key}"
        if not prompt.messages:
            raise InvalidRequestError(
                "the request has no messages: give llm_configuration.messages or a deployment_id",
                param="llm_configuration.messages",
            )
        return HttpRequest.json(url, headers, body)

    def delta(self, event: Any) -> str | None:
        choices = event.get("choices") if isinstance(event, Mapping) else None
        if not choices:
            return None
        first = choices[0]
        if not isinstance(first, Mapping) or first.get("index", 0) != 0:
            return None
        delta = first.get("delta")
        text = delta.get("content") if isinstance(delta, Mapping) else None
        return text if isinstance(text, str) and text else None

    def stream_error(self, event: Any) -> str | None:
        # OpenRouter and others send {"error": {...}} inside a 200 stream.
        if isinstance(event, Mapping):
            error = event.get("error")
            if isinstance(error, Mapping):
                return str(error.get("message") or error)
            if event.get("type") == "error":
                return str(event.get("message") or "stream error")
        return None


OPENAI_WIRE = OpenAIWire(ROUTES["/chat/completions"])
"""The OpenAI chat wire."""
