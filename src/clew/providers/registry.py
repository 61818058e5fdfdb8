"""Which provider an OpenAI-compatible client talks to, from its ``base_url``.

The ``openai`` SDK reaches many providers (OpenRouter, Groq, Mistral, Fireworks, Together,
DeepSeek, Azure, Anyscale, a LiteLLM proxy, a local vLLM or Ollama ...). The host name says
which, so ``gen_ai.provider.name`` and prices are right. Names are clew's provider names (the
seed's ``ProviderName`` values, plus ``vllm`` and ``ollama`` for local servers).
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

__all__ = ["PROVIDER_NAMES", "Endpoint", "provider_for_url"]

PROVIDER_NAMES = (
    "openai",
    "azure",
    "anthropic",
    "anyscale",
    "vertexai",
    "aws_bedrock",
    "openrouter",
    "mistral",
    "litellm",
    "groq",
    "fireworks",
    "cohere",
    "together",
    "deepseek",
    "vllm",
    "ollama",
)
"""Every provider name clew writes to ``gen_ai.provider.name``."""

# Host suffix → provider; the first match wins, so longer suffixes come first.
_HOSTS: tuple[tuple[str, str], ...] = (
    ("openai.azure.com", "azure"),
    ("cognitiveservices.azure.com", "azure"),
    ("services.ai.azure.com", "azure"),
    ("models.inference.ai.azure.com", "azure"),
    ("api.openai.com", "openai"),
    ("openrouter.ai", "openrouter"),
    ("api.groq.com", "groq"),
    ("api.mistral.ai", "mistral"),
    ("api.fireworks.ai", "fireworks"),
    ("api.together.xyz", "together"),
    ("api.together.ai", "together"),
    ("api.deepseek.com", "deepseek"),
    ("api.endpoints.anyscale.com", "anyscale"),
    ("anyscale.com", "anyscale"),
    ("api.anthropic.com", "anthropic"),
    ("api.cohere.com", "cohere"),
    ("api.cohere.ai", "cohere"),
)
_LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1", "0.0.0.0", "host.docker.internal"})
_LOCAL_PORTS = {11434: "ollama", 8000: "vllm", 4000: "litellm"}


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Where a client sends its requests.

    Attributes:
        provider: clew's provider name.
        host: the server host (``server.address``), or None.
        port: the server port (``server.port``), or None when it is the scheme's default.
    """

    provider: str
    host: str | None
    port: int | None


_cache: dict[tuple[str, str], Endpoint] = {}


def provider_for_url(url: str, default: str = "openai") -> Endpoint:
    """The provider a base URL belongs to.

    An unknown host is taken as ``default`` (the wire format the client speaks): an
    OpenAI-compatible server of unknown make. Local servers on Ollama's (11434), vLLM's
    (8000) or LiteLLM's (4000) default port are named so; a host or path naming ``litellm``,
    ``ollama`` or ``vllm`` is recognised too.

    Args:
        url: the client's ``base_url``.
        default: the name for an unrecognised server.

    Example:
        >>> provider_for_url("https://api.groq.com/openai/v1").provider
        'groq'
        >>> provider_for_url("http://localhost:11434/v1").provider
        'ollama'
    """
    key = (url, default)
    found = _cache.get(key)
    if found is None:
        found = _resolve(url, default)
        if len(_cache) < 1024:
            _cache[key] = found
    return found


def _resolve(url: str, default: str) -> Endpoint:
    try:
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        port = parts.port
    except ValueError:
        return Endpoint(default, None, None)
    provider = default
    for suffix, name in _HOSTS:
        if host == suffix or host.endswith("." + suffix):
            provider = name
            break
    else:
        text = f"{host}{parts.path}".lower()
        for marker in ("litellm", "ollama", "vllm"):
            if marker in text:
                provider = marker
                break
        else:
            if host in _LOCAL_HOSTS and port in _LOCAL_PORTS:
                provider = _LOCAL_PORTS[port]
    return Endpoint(provider, host or None, port)
