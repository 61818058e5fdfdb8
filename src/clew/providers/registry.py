"""Every LLM provider clew names, in one registry: its price list, its hosts, its local port.

Names are the seed's ``ProviderName`` values (openai, azure, anthropic, anyscale, vertexai,
aws_bedrock, openrouter, mistral, litellm, groq, fireworks, cohere) plus ``together``,
``deepseek``, and ``vllm`` / ``ollama`` for local servers. They are what clew writes to
``gen_ai.provider.name``; pricing (:mod:`clew.providers.pricing`) and the ``base_url`` lookup
below read this registry and nothing else.

The ``openai`` SDK reaches many of them (OpenRouter, Groq, Mistral, Fireworks, Together,
DeepSeek, Azure, Anyscale, a LiteLLM proxy, a local vLLM or Ollama ...): the host of a client's
``base_url`` says which, so ``gen_ai.provider.name`` and prices are right.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from clew import attributes as a

__all__ = [
    "INFER_FROM_MODEL",
    "PROVIDERS",
    "PROVIDER_NAMES",
    "Endpoint",
    "Provider",
    "provider_attribute",
    "provider_for_url",
]

INFER_FROM_MODEL = "*"
"""A price id meaning: the model name says whose model it is (a proxy such as LiteLLM)."""


@dataclass(frozen=True, slots=True)
class Provider:
    """One provider clew can name.

    Attributes:
        name: clew's name (``gen_ai.provider.name``).
        price_id: the genai-prices provider id; :data:`INFER_FROM_MODEL` to infer it from the
            model name; None when no price list applies (self-hosted, retired).
        hosts: host names (or their suffixes) of the provider's API.
        local_port: the default port of a local server of this kind (Ollama 11434 ...).
        sdk: the module that instruments the provider's own SDK (its ``SDK``), if clew has one.
    """

    name: str
    price_id: str | None
    hosts: tuple[str, ...] = ()
    local_port: int | None = None
    sdk: str | None = None


PROVIDERS: dict[str, Provider] = {
    p.name: p
    for p in (
        Provider("openai", "openai", ("api.openai.com",), sdk="clew.providers.openai"),
        Provider(
            "azure",
            "azure",
            (
                "openai.azure.com",
                "cognitiveservices.azure.com",
                "services.ai.azure.com",
                "models.inference.ai.azure.com",
            ),
        ),
        Provider("anthropic", "anthropic", ("api.anthropic.com",), sdk="clew.providers.anthropic"),
        Provider("anyscale", None, ("api.endpoints.anyscale.com", "anyscale.com")),  # retired
        Provider("vertexai", "google"),
        Provider("aws_bedrock", "aws"),
        Provider("openrouter", "openrouter", ("openrouter.ai",)),
        Provider("mistral", "mistral", ("api.mistral.ai",)),
        Provider("litellm", INFER_FROM_MODEL, local_port=4000),
        Provider("groq", "groq", ("api.groq.com",)),
        Provider("fireworks", "fireworks", ("api.fireworks.ai",)),
        Provider("cohere", "cohere", ("api.cohere.com", "api.cohere.ai")),
        Provider("together", "together", ("api.together.xyz", "api.together.ai")),
        Provider("deepseek", "deepseek", ("api.deepseek.com",)),
        Provider("vllm", None, local_port=8000),
        Provider("ollama", None, local_port=11434),
    )
}
"""Every provider, by name."""

PROVIDER_NAMES = tuple(PROVIDERS)
"""Every provider name clew writes to ``gen_ai.provider.name``."""

# Host suffix → provider; the first match wins, so longer suffixes come first.
_HOSTS: tuple[tuple[str, str], ...] = tuple(
    sorted(
        ((host, p.name) for p in PROVIDERS.values() for host in p.hosts),
        key=lambda item: -len(item[0]),
    )
)
_LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1", "0.0.0.0", "host.docker.internal"})
_LOCAL_PORTS = {p.local_port: p.name for p in PROVIDERS.values() if p.local_port is not None}
_NAMED_IN_URL = tuple(p.name for p in PROVIDERS.values() if p.local_port is not None)
_DEFAULT_PORTS = {"https": 443, "http": 80}


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Where a client sends its requests.

    Attributes:
        provider: clew's provider name.
        host: the server host (``server.address``), or None.
        port: the server port (``server.port``): the URL's, else its scheme's default (the
            convention records the port whenever it records the host); None without a host.
    """

    provider: str
    host: str | None
    port: int | None


def provider_attribute(name: str) -> str:
    """The ``gen_ai.provider.name`` of the provider clew calls ``name``: the convention's
    well-known value where it has one, else clew's name.

    Example:
        >>> provider_attribute("azure"), provider_attribute("openrouter")
        ('azure.ai.openai', 'openrouter')
    """
    return a.GEN_AI_PROVIDER_NAMES.get(name, name)


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
        port = (parts.port or _DEFAULT_PORTS.get(parts.scheme)) if host else None
    except ValueError:
        return Endpoint(default, None, None)
    provider = default
    for suffix, name in _HOSTS:
        if host == suffix or host.endswith("." + suffix):
            provider = name
            break
    else:
        text = f"{host}{parts.path}".lower()
        for marker in _NAMED_IN_URL:
            if marker in text:
                provider = marker
                break
        else:
            if host in _LOCAL_HOSTS and port in _LOCAL_PORTS:
                provider = _LOCAL_PORTS[port]
    return Endpoint(provider, host or None, port)
