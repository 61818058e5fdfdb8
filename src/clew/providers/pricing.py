"""The cost of an LLM call in USD, from the pinned ``genai-prices`` data.

clew's provider names map explicitly onto genai-prices provider ids (the provider registry's
``price_id``, :data:`PRICE_PROVIDERS`);
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
from clew.providers.registry import INFER_FROM_MODEL, PROVIDERS
from clew.providers.usage import Usage

__all__ = ["PRICE_PROVIDERS", "Cost", "catalogue", "cost_of"]

logger = logging.getLogger(__name__)

PRICE_PROVIDERS: Final[dict[str, str | None]] = {p.name: p.price_id for p in PROVIDERS.values()}
"""clew provider name → genai-prices provider id ("*": infer from the model; None: no prices),
from the provider registry."""

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


_RATE_KEYS: Final = ("input_mtok", "cache_read_mtok", "cache_write_mtok", "output_mtok")


class _Rates:
    """A model's flat per-token rates as exact integers over one common divisor.

    ``amount = sum(tokens * rate) / divisor`` is then one integer sum and one correctly
    rounded division, the same float as the ``Decimal`` calculation gives, at a fraction of
    its cost. A rate that is not a flat ``Decimal`` (tiered, or one genai-prices derives
    itself) is None, and a call that needs it goes through genai-prices.
    """

    __slots__ = ("divisor", "rates")

    def __init__(self, prices: dict[str, Any]) -> None:
        flat = [prices.get(key) for key in _RATE_KEYS]
        places = 0
        for rate in flat:
            if isinstance(rate, Decimal) and rate.is_finite():
                exponent = rate.as_tuple().exponent
                places = max(places, -exponent if isinstance(exponent, int) else 0)
        scale: int = 10**places
        self.divisor = scale * 1_000_000
        self.rates: tuple[int | None, ...] = tuple(
            int(rate * scale) if isinstance(rate, Decimal) and rate.is_finite() else None
            for rate in flat
        )

    def amount(self, usage: Usage) -> float | None:
        """The cost in USD, or None when a rate the usage needs is not flat."""
        rates = self.rates
        if rates[0] is None:
            return None
        total = 0
        for count, rate in zip(
            (usage.input_uncached, usage.cache_read, usage.cache_write, usage.output),
            rates,
            strict=True,
        ):
            if count:
                if rate is None:
                    return None
                total += count * rate
        return total / self.divisor


class _Model:
    """A model's genai-prices entry, looked up once per (provider id, model)."""

    __slots__ = ("info", "price_provider", "static")

    def __init__(self, price_provider: Any, info: Any) -> None:
        from genai_prices.types import ModelPrice

        self.price_provider = price_provider
        self.info = info
        # One unconditional price (most models): the rates never change, so read them once.
        # Prices that start at a date or vary by time of day are resolved per call.
        prices = info.prices
        self.static = _Rates(prices.__dict__) if isinstance(prices, ModelPrice) else None

    def rates(self) -> _Rates:
        """The rates in force now."""
        if self.static is not None:
            return self.static
        return _Rates(self.info.get_prices(datetime.now(tz=UTC)).__dict__)


_models: dict[tuple[str | None, str], _Model | None] = {}
"""Looked-up models (None: genai-prices does not know it), bounded in size."""


def _lookup(provider_id: str | None, model: str) -> _Model | None:
    key = (provider_id, model)
    try:
        return _models[key]
    except KeyError:
        pass
    from genai_prices import data_snapshot

    try:
        price_provider, info = data_snapshot.get_snapshot().find_provider_model(
            model, None, provider_id, None
        )
        found: _Model | None = _Model(price_provider, info)
    except LookupError:
        found = None
    if len(_models) < 4096:
        _models[key] = found
    return found


def catalogue(provider: str) -> list[str]:
    """The model ids genai-prices lists for ``provider`` (clew's name), sorted; empty when the
    provider has no price list of its own."""
    provider_id = PRICE_PROVIDERS.get(provider)
    if provider_id is None or provider_id == INFER_FROM_MODEL:
        return []
    from genai_prices import data_snapshot

    for listed in data_snapshot.get_snapshot().providers:
        if listed.id == provider_id:
            return sorted(model.id for model in listed.models)
    return []


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
    found = _lookup(None if provider_id == INFER_FROM_MODEL else provider_id, model)
    if found is None:
        return Cost(None, error=f"model {model!r} not in genai-prices for {provider!r}")
    amount = found.rates().amount(usage)
    if amount is None:
        try:
            amount = float(_genai_prices(usage, found.info, found.price_provider))
        except Exception as exc:  # foreign: genai-prices cannot price this usage
            logger.debug("clew: pricing %s failed", model, exc_info=True)
            return Cost(None, error=f"pricing failed: {type(exc).__name__}")
    return Cost(amount, SOURCE_PRICE_LIST)


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
