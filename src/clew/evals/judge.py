"""An LLM judge: an eval function that asks a model, through :func:`clew.completion`, to score
a call against a rubric, and gives back its score and reason.

The prompt is two messages. The system message (fixed, so providers can cache it) makes the
model an impartial judge and asks for a reply of only ``{"score": <number>, "reason": "..."}``
on the judge's scale. The user message holds the rubric and the call:

- A rubric without placeholders is followed by the call in labelled sections: ``Input``,
  ``Output`` and, when the log has a target, ``Expected output``.
- A rubric with the placeholders ``{inputs}``, ``{output}`` or ``{target}`` is the whole user
  message, with each placeholder replaced by that value. Only these three are replaced, once,
  so other braces (a JSON example in the rubric) stay as written. A missing target reads
  ``(none)``.

Values are shown as text: a string as it is, anything else as indented JSON.

The judge's own completion is an LLM span like any other (named after the eval), with its
tokens and cost, under whatever span is current where the eval runs.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from typing import Any

from clew.errors import ConfigurationError, EvalError
from clew.evals.library import EvalFunction, Score, eval_function, shown
from clew.gateway.schemas import Completion
from clew.tracer.scores import Log

__all__ = ["DEFAULT_RUBRIC", "llm_judge"]

DEFAULT_RUBRIC = (
    "Judge whether the output answers the input correctly and completely. When an expected"
    " output is given, the output is correct when it agrees with the expected output in"
    " substance; wording, order and formatting may differ. Give the highest score to a fully"
    " correct answer, the lowest to a wrong, empty or off-topic one, and a score in between to"
    " a partly correct one."
)
"""The rubric :func:`llm_judge` uses when given none."""

_SYSTEM = (
    "You are an impartial judge of the output of an AI application. Score the output by the"
    " rubric you are given, and nothing else.\n\n"
    "Reply with only a JSON object, no other text:\n"
    '{{"score": <a number from {low} to {high}>, "reason": "<one or two sentences>"}}'
)
_PLACEHOLDER = re.compile(r"\{(inputs|output|target)\}")
_FENCE = re.compile(r"```(?:json)?\s*(.*?)\s*```", re.DOTALL | re.IGNORECASE)
# Providers whose API has no JSON mode: the prompt alone asks them for JSON.
_NO_JSON_MODE = frozenset({"anthropic", "aws_bedrock"})


def llm_judge(
    rubric: str | None = None,
    *,
    model: str = "gpt-4o-mini",
    provider: str = "openai",
    name: str = "llm_judge",
    scale: tuple[float, float] = (0, 1),
    threshold: float | None = None,
    model_params: Mapping[str, Any] | None = None,
) -> EvalFunction:
    """An eval that asks ``model`` to score each call by ``rubric``.

    The score is the judge's, mapped from ``scale`` onto 0..1; the reason is the judge's. A
    call that raised scores 0 without asking the model. The model is asked with temperature 0
    and, where the provider has one, its JSON mode; the reply may also be a fenced
    ``json`` block. A reply that is not a JSON object with a number ``score`` on the scale
    raises :class:`~clew.errors.EvalError` (recorded as the eval's error), as does a failed
    completion (:class:`~clew.errors.CompletionError`): a guess would be worse than no score.

    Args:
        rubric: what makes an output good: criteria text, or a prompt with the placeholders
            ``{inputs}``, ``{output}``, ``{target}`` (see the module docstring). By default
            :data:`DEFAULT_RUBRIC`: is the output a correct answer to the input, judged
            against the target when there is one.
        model: the judge's model.
        provider: its provider, one of :func:`clew.completion`'s.
        name: the score's name.
        scale: the lowest and highest score the judge gives (``(1, 5)`` for a 1-to-5 rubric);
            the result is mapped onto 0..1, and the reason starts with the judge's own score.
        threshold: when given (on the judge's scale), the result is pass or fail: 1 when the
            judge's score is at least this, else 0.
        model_params: :func:`clew.completion` model parameters, over the judge's own
            (``{"temp": 0}`` and JSON mode); ``{"temp": None}`` sends no temperature (for
            models that take only their default).

    Raises:
        ConfigurationError: a bad rubric, scale, threshold, provider or model parameter.

    Example:
        >>> from clew.tracer.scores import Log
        >>> polite = llm_judge("Is the reply polite? Score 1 if it is, 0 if it is not.",
        ...                    name="polite")
        >>> polite(Log(inputs={"q": "Where is my order?"},  # doctest: +SKIP
        ...            output="It ships tomorrow, sorry for the wait!"))
        EvalResult(name='polite', score=1.0, reason='The reply apologises and is courteous.')
        >>> graded = llm_judge(scale=(1, 5), threshold=4)  # pass at 4 of 5 or better
    """
    if rubric is None:
        rubric = DEFAULT_RUBRIC
    if not isinstance(rubric, str) or not rubric.strip():
        raise ConfigurationError(f"an llm_judge rubric is non-empty text, got {rubric!r}")
    low, high = _checked_scale(scale)
    if threshold is not None and not (_is_number(threshold) and low <= threshold <= high):
        raise ConfigurationError(
            f"llm_judge threshold {threshold!r} is not a number on the scale {low:g} to {high:g}"
        )
    system = _SYSTEM.format(low=f"{low:g}", high=f"{high:g}")
    request = _request(provider, model, name, model_params)
    verdict = _Verdict(name, f"{provider}/{model}", low, high, threshold)

    def score(log: Log) -> Score:
        from clew.gateway.completion import completion  # brings httpx2: loaded on first use

        messages = [
            {"role": "system", "content": system},
            {"role": "user", "content": prompt(rubric, log)},
        ]
        llm_configuration = {**request["llm_configuration"], "messages": messages}
        reply = completion({**request, "llm_configuration": llm_configuration})
        return verdict.read(reply.content)

    return eval_function(name, score, needs_target=False)


def prompt(rubric: str, log: Log) -> str:
    """The user message of the judge: the rubric and the call (see the module docstring).

    Example:
        >>> from clew.tracer.scores import Log
        >>> print(prompt("Is {output} the capital of France?", Log(output="Paris")))
        Is Paris the capital of France?
    """
    values = {
        "inputs": _shown_value(log.inputs),
        "output": _shown_value(log.output),
        "target": _shown_value(log.target),
    }
    if _PLACEHOLDER.search(rubric):
        return _PLACEHOLDER.sub(lambda found: values[found.group(1)], rubric)
    sections = [f"Rubric:\n{rubric}", f"Input:\n{values['inputs']}", f"Output:\n{values['output']}"]
    if log.target is not None:
        sections.append(f"Expected output:\n{values['target']}")
    return "\n\n".join(sections)


def _shown_value(value: Any) -> str:
    if isinstance(value, str):
        return value
    if value is None:
        return "(none)"
    try:
        return json.dumps(value, ensure_ascii=False, indent=2, default=str)
    except (TypeError, ValueError):  # keys that are not strings, a circular reference
        return str(value)


def _request(
    provider: str, model: str, name: str, model_params: Mapping[str, Any] | None
) -> dict[str, Any]:
    """The judge's completion request, without its messages; validated once, here."""
    params: dict[str, Any] = {"temp": 0}
    if provider not in _NO_JSON_MODE:
        params["response_format"] = {"type": "json_object"}
    if model_params is not None:
        if not isinstance(model_params, Mapping):
            raise ConfigurationError(
                f"llm_judge model_params is a dict, got {type(model_params).__name__}"
            )
        params.update(model_params)
    request: dict[str, Any] = {
        "llm_configuration": {"provider": provider, "model": model, "model_params": params},
        "trace_name": name,
    }
    try:
        Completion.model_validate(request)
    except ValueError as exc:  # pydantic's ValidationError
        raise ConfigurationError(
            f"llm_judge cannot ask {provider}/{model} with model_params {params!r}: {exc}"
        ) from exc
    return request


def _checked_scale(scale: Any) -> tuple[float, float]:
    if (
        not isinstance(scale, tuple | list)
        or len(scale) != 2
        or not all(_is_number(end) for end in scale)
        or not scale[0] < scale[1]
    ):
        raise ConfigurationError(
            f"llm_judge scale is (lowest, highest), two numbers with lowest < highest;"
            f" got {scale!r}"
        )
    return float(scale[0]), float(scale[1])


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


class _Verdict:
    """Reads a judge's reply into a result (the judge's settings, fixed at creation)."""

    def __init__(
        self, name: str, judge: str, low: float, high: float, threshold: float | None
    ) -> None:
        self.name = name
        self.judge = judge
        self.low = low
        self.high = high
        self.threshold = threshold

    def read(self, reply: str) -> Score:
        """The score and reason a reply gives.

        Raises:
            EvalError: the reply is not a JSON object with a number ``score`` on the scale.
        """
        found = _json_object(reply)
        if found is None:
            raise self._bad(reply, "is not a JSON object")
        score = _score(found.get("score"))
        if score is None:
            raise self._bad(reply, 'has no number "score"')
        if not self.low <= score <= self.high:
            raise self._bad(reply, f"gives a score off the scale {self.low:g} to {self.high:g}")
        reason = found.get("reason")
        return self._result(score), self._reason(score, reason)

    def _result(self, score: float) -> float:
        if self.threshold is not None:
            return 1.0 if score >= self.threshold else 0.0
        return (score - self.low) / (self.high - self.low)

    def _reason(self, score: float, reason: Any) -> str | None:
        text = None if reason is None or reason == "" else str(reason)
        if (self.low, self.high) == (0.0, 1.0) and self.threshold is None:
            return text
        head = f"score {score:g}"
        if (self.low, self.high) != (0.0, 1.0):
            head += f" on {self.low:g} to {self.high:g}"
        if self.threshold is not None:
            side = "at or above" if score >= self.threshold else "below"
            head += f", {side} the threshold {self.threshold:g}"
        return head if text is None else f"{head}: {text}"

    def _bad(self, reply: str, problem: str) -> EvalError:
        return EvalError(
            f"the judge {self.name!r} ({self.judge}) replied {shown(reply)}, which {problem};"
            f' the judge must reply {{"score": <{self.low:g} to {self.high:g}>, "reason": ...}}:'
            " use a model that follows the reply format, or a rubric that asks for it"
        )


def _json_object(reply: str) -> dict[str, Any] | None:
    """The JSON object in a reply: the whole text, a fenced block, or the outermost braces."""
    candidates = [reply]
    fenced = _FENCE.search(reply)
    if fenced is not None:
        candidates.append(fenced.group(1))
    start, end = reply.find("{"), reply.rfind("}")
    if 0 <= start < end:
        candidates.append(reply[start : end + 1])
    for candidate in candidates:
        try:
            value = json.loads(candidate)
        except ValueError:
            continue
        if isinstance(value, dict):
            return value
    return None


def _score(value: Any) -> float | None:
    """A score as a number: a JSON number, or text holding one (``"0.8"``)."""
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            return None
    return float(value) if _is_number(value) else None
