"""The cost of an LLM call in USD, from the pinned ``genai-prices`` data.

clew's provider names map explicitly onto genai-prices provider ids (:data:`PRICE_PROVIDERS`);
prices come from the data bundled with the installed genai-prices (no network refresh). An
unknown model or provider gets no cost and a reason (``clew.cost.error``), never a cost of 0.
A cost the provider reported itself (OpenRouter's ``usage.cost``) wins over the price list.

The common case (flat per-token prices) is computed here from the cached price entry, because
genai-prices' general calculation costs tens of microseconds per call; anything else (tiered
prices, a cache price the model lacks) goes through genai-prices itself, so results agree.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Final

from clew import attributes as a
from clew.providers.usage import Usage

__all__ = ["PRICE_PROVIDERS", "Cost", "cost_of"]

logger = logging.getLogger("clew")

_INFER: Final = "*"
PRICE_PROVIDERS: Final[dict[str, str | None]] = {
    "openai": "openai",
    "azure": "azure",
    "anthropic": "anthropic",
    "openrouter": "openrouter",
    "groq": "groq",
    "mistral": "mistral",
    "fireworks": "fireworks",
    "together": "together",
    "deepseek": "deepseek",
    "cohere": "cohere",
    "aws_bedrock": "aws",
    "vertexai": "google",
    "litellm": _INFER,  # a proxy: the model name says whose model it is
    "anyscale": None,  # retired; genai-prices has no prices for it
    "vllm": None,  # self-hosted: no price list applies
    "ollama": None,
}
"""clew provider name → genai-prices provider id ("*": infer from the model; None: no prices)."""

_MILLION = Decimal(1_000_000)
SOURCE_PRICE_LIST: Final = "genai-prices"
SOURCE_PROVIDER: Final = "provider"


@dataclass(frozen=True, slots=True)
class Cost:
    """A call's cost, or why there is none.

    Attributes:
        amount: USD, or None when unknown.
        source: ``"provider"`` (reported by the provider) or ``"genai-prices"``.
        error: why the cost is unknown (None when it is known).
    """

    amount: float | None
    source: str | None = None
    error: str | None = None

    def attributes(self) -> dict[str, Any]:
        """The ``gen_ai.usage.cost.*`` attributes, or ``clew.cost.error`` when unknown."""
        if self.amount is None:
            return {a.CLEW_COST_ERROR: self.error or "unknown"}
        return {
            a.GEN_AI_USAGE_COST_AMOUNT: self.amount,
            a.GEN_AI_USAGE_COST_CURRENCY: "USD",
            a.GEN_AI_USAGE_COST_SOURCE: self.source or SOURCE_PRICE_LIST,
        }


_models: dict[tuple[str | None, str], Any] = {}


def _lookup(provider_id: str | None, model: str) -> Any:
    key = (provider_id, model)
    found = _models.get(key)
    if found is None:
        from genai_prices import data_snapshot

        found = data_snapshot.get_snapshot().find_provider_model(model, None, provider_id, None)
        if len(_models) < 4096:
            _models[key] = found
    return found


def cost_of(usage: Usage, model: str | None, provider: str, reported: float | None = None) -> Cost:
    """The cost of ``usage`` on ``model`` at ``provider``.

    Args:
        usage: the call's tokens.
        model: the model the provider says answered (or the requested one).
        provider: clew's provider name (``gen_ai.provider.name``).
        reported: a cost the provider reported, which wins when given.

    Example:
        >>> cost_of(Usage(input_uncached=1000, output=1000), "gpt-4o-mini", "openai").amount
        0.00075
    """
    if reported is not None:
        return Cost(reported, SOURCE_PROVIDER)
    if not model:
        return Cost(None, error="no model name")
    if provider not in PRICE_PROVIDERS:
        return Cost(None, error=f"no price list for provider {provider!r}")
    provider_id = PRICE_PROVIDERS[provider]
    if provider_id is None:
        return Cost(None, error=f"no price list for provider {provider!r}")
    try:
        price_provider, info = _lookup(None if provider_id == _INFER else provider_id, model)
    except LookupError:
        return Cost(None, error=f"model {model!r} not in genai-prices for {provider!r}")
    try:
        amount = _flat_price(usage, info)
        if amount is None:
            amount = _genai_prices(usage, info, price_provider)
    except Exception as exc:
        logger.debug("clew: pricing %s failed", model, exc_info=True)
        return Cost(None, error=f"pricing failed: {type(exc).__name__}")
    return Cost(float(amount), SOURCE_PRICE_LIST)


def _flat_price(usage: Usage, info: Any) -> Decimal | None:
    prices = info.get_prices(datetime.now(tz=UTC)).__dict__
    input_price = prices.get("input_mtok")
    if not isinstance(input_price, Decimal):
        return None
    total = Decimal(0)
    for count, key in (
        (usage.input_uncached, "input_mtok"),
        (usage.cache_read, "cache_read_mtok"),
        (usage.cache_write, "cache_write_mtok"),
        (usage.output, "output_mtok"),
    ):
        if count:
            price = prices.get(key)
            if not isinstance(price, Decimal):
                return None  # tiered, or a rate genai-prices derives itself
            total += price * count
    return total / _MILLION


def _genai_prices(usage: Usage, info: Any, price_provider: Any) -> Decimal:
    from genai_prices import Usage as PriceUsage

    price_usage = PriceUsage(
        input_tokens=usage.input_tokens,
        cache_read_tokens=usage.cache_read,
        cache_write_tokens=usage.cache_write,
        output_tokens=usage.output,
    )
    result: Decimal = info.calc_price(price_usage, price_provider).total_price
    return result
