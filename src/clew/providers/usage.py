"""One canonical token usage, read from each provider's own shape, and an offline estimate.

Every provider counts tokens its own way: OpenAI's ``prompt_tokens`` include cached tokens,
Anthropic's ``input_tokens`` exclude cache reads and writes, the Responses API has its own
names. :class:`Usage` holds the five numbers clew prices and reports, so pricing and the span
attributes never look at a provider's shape.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from clew import attributes as a

__all__ = ["Usage", "estimate_tokens"]


@dataclass(frozen=True, slots=True)
class Usage:
    """Token counts of one LLM call.

    Attributes:
        input_uncached: input tokens that were neither read from nor written to a cache.
        cache_read: input tokens read from the provider's prompt cache.
        cache_write: input tokens written to the provider's prompt cache.
        output: output tokens, reasoning tokens included.
        reasoning: the part of ``output`` spent on reasoning.
        estimated: True when clew estimated the counts (a stream without usage); False when
            the provider reported them.

    Example:
        >>> Usage(input_uncached=200, cache_read=800, output=5).input_tokens
        1000
    """

    input_uncached: int = 0
    cache_read: int = 0
    cache_write: int = 0
    output: int = 0
    reasoning: int = 0
    estimated: bool = False

    @property
    def input_tokens(self) -> int:
        """All input tokens, cached ones included (the GenAI convention's input_tokens)."""
        return self.input_uncached + self.cache_read + self.cache_write

    def attributes(self) -> dict[str, Any]:
        """The ``gen_ai.usage.*`` span attributes (cache and reasoning counts only when > 0)."""
        attrs: dict[str, Any] = {
            a.GEN_AI_USAGE_INPUT_TOKENS: self.input_tokens,
            a.GEN_AI_USAGE_OUTPUT_TOKENS: self.output,
        }
        if self.cache_read:
            attrs[a.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] = self.cache_read
        if self.cache_write:
            attrs[a.GEN_AI_USAGE_CACHE_WRITE_INPUT_TOKENS] = self.cache_write
        if self.reasoning:
            attrs[a.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS] = self.reasoning
        if self.estimated:
            attrs[a.CLEW_USAGE_ESTIMATED] = True
        return attrs

    # -- provider shapes -----------------------------------------------------------------
    @classmethod
    def from_openai(cls, usage: Any) -> Usage | None:
        """From OpenAI chat / legacy completions / embeddings usage (``prompt_tokens`` ...)."""
        if usage is None:
            return None
        prompt = _int(_get(usage, "prompt_tokens"))
        completion = _int(_get(usage, "completion_tokens"))
        # Together puts cached_tokens at the top of usage
        cached = _int(_get(_get(usage, "prompt_tokens_details"), "cached_tokens")) or _int(
            _extra(usage, "cached_tokens")
        )
        reasoning = _int(_get(_get(usage, "completion_tokens_details"), "reasoning_tokens"))
        cached = min(cached, prompt)
        return cls(prompt - cached, cached, 0, completion, reasoning)

    @classmethod
    def from_openai_responses(cls, usage: Any) -> Usage | None:
        """From the OpenAI Responses API usage (``input_tokens``, ``output_tokens`` ...)."""
        if usage is None:
            return None
        total_in = _int(_get(usage, "input_tokens"))
        cached = min(_int(_get(_get(usage, "input_tokens_details"), "cached_tokens")), total_in)
        reasoning = _int(_get(_get(usage, "output_tokens_details"), "reasoning_tokens"))
        return cls(total_in - cached, cached, 0, _int(_get(usage, "output_tokens")), reasoning)

    @classmethod
    def from_anthropic(cls, usage: Any) -> Usage | None:
        """From Anthropic usage, whose ``input_tokens`` exclude cache reads and writes."""
        if usage is None:
            return None
        return cls(
            _int(_get(usage, "input_tokens")),
            _int(_get(usage, "cache_read_input_tokens")),
            _int(_get(usage, "cache_creation_input_tokens")),
            _int(_get(usage, "output_tokens")),
        )


def reported_cost(usage: Any) -> float | None:
    """A cost the provider put in its usage (OpenRouter's ``usage.cost``), else None."""
    cost = _extra(usage, "cost")
    if isinstance(cost, int | float) and not isinstance(cost, bool):
        return float(cost)
    return None


def _get(obj: Any, name: str) -> Any:
    if obj is None:
        return None
    if type(obj) is dict:
        return obj.get(name)
    return getattr(obj, name, None)


_ABSENT: Any = object()


def _extra(obj: Any, name: str) -> Any:
    """Like :func:`_get`, for a name an SDK model usually lacks.

    A missing name on a pydantic model goes through the model's ``__getattr__``, which raises
    and catches an ``AttributeError`` (microseconds, on every call). What the provider sent is
    in the model's fields (``__dict__``) or its undeclared extras (``__pydantic_extra__``).
    """
    if obj is None or type(obj) is dict:
        return _get(obj, name)
    extra = getattr(obj, "__pydantic_extra__", _ABSENT)
    if extra is _ABSENT:
        return getattr(obj, name, None)  # not a pydantic model
    value = vars(obj).get(name)
    if value is None and extra:
        value = extra.get(name)
    return value


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


# -- offline estimation ---------------------------------------------------------------------
_CHARS_PER_TOKEN = 4
_PER_MESSAGE = 4


def estimate_tokens(texts: Iterable[str], messages: int = 0) -> int:
    """Estimate tokens offline: about four characters per token, plus a few per message.

    clew never downloads a tokenizer at run time; the estimate is only used when a stream
    carries no usage, and the span says so (``clew.usage.estimated``).

    Args:
        texts: the text pieces to count.
        messages: how many chat messages they came in (each adds a small overhead).

    Example:
        >>> estimate_tokens(["Hello there, how are you?"])
        7
    """
    chars = 0
    words = 0
    for text in texts:
        chars += len(text)
        words += text.count(" ") + 1 if text else 0
    by_chars = -(-chars // _CHARS_PER_TOKEN)
    return max(by_chars, words) + _PER_MESSAGE * messages
