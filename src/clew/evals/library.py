"""Ready-made eval functions: exact match, containment, regular expressions, string similarity,
JSON validity and JSON Schema conformance.

Each is an eval function (a :class:`~clew.tracer.scores.Log` in, an
:class:`~clew.tracer.scores.EvalResult` out) or a factory that builds one and checks its
arguments once: a bad pattern or schema is a :class:`~clew.errors.ConfigurationError` at set-up.

Rules they share:

- **No target, no score.** The evals that compare with the target (:func:`exact_match`,
  :func:`contains_target`, :func:`similarity`) return None for a log without one: there is
  nothing to compare, so no score is recorded (a 0 would read as a wrong answer). A target of
  None therefore means "no target".
- **A call that raised scores 0**, with its error as the reason: it did not give the expected
  answer, and an average over an experiment must count it.
- **Text.** Where text is needed, a string is used as it is, None as ``""``, bytes decoded as
  UTF-8, and any other value in its JSON form (``{"a": 1}``, ``true``, ``1.5``).

:func:`similarity` needs rapidfuzz and :func:`json_schema` needs jsonschema
(``pip install 'clew[evals]'``); each is imported when its factory is called.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from typing import Any, Literal

from clew.errors import ConfigurationError
from clew.tracer.scores import EvalResult, Log

__all__ = [
    "EvalFunction",
    "SimilarityScorer",
    "contains",
    "contains_target",
    "contains_target_with",
    "exact_match",
    "exact_match_with",
    "json_schema",
    "json_valid",
    "regex",
    "similarity",
]

EvalFunction = Callable[[Log], EvalResult | None]
"""An eval: a function of a log, giving a result or None (nothing to score)."""

SimilarityScorer = Literal[
    "ratio", "partial_ratio", "token_sort_ratio", "token_set_ratio", "levenshtein", "jaro_winkler"
]

_INSTALL = "pip install 'clew[evals]'"
_SHOWN = 80  # characters of a value quoted in a reason
_VIOLATIONS = 3  # schema violations listed in a reason


# -- shared by the evals here and the judge ---------------------------------------------------

Score = tuple[float, str | None]  # a score and its reason, before the rules make a result


def eval_function(name: str, score: Callable[[Log], Score], *, needs_target: bool) -> EvalFunction:
    """An eval named ``name`` that scores with ``score`` under the rules the module states.

    Raises:
        ConfigurationError: ``name`` is not a non-empty string.
    """
    if not isinstance(name, str) or not name:
        raise ConfigurationError(f"an eval's name is a non-empty string, got {name!r}")

    def evaluate(log: Log) -> EvalResult | None:
        if needs_target and log.target is None:
            return None
        if log.error is not None:
            return EvalResult(name, 0.0, f"the call raised {log.error}")
        return EvalResult(name, *score(log))

    evaluate.__name__ = evaluate.__qualname__ = name  # what logs and tracebacks show
    return evaluate


def text_of(value: Any) -> str:
    """``value`` as text: a string as it is, None as ``""``, bytes decoded, else its JSON."""
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    if isinstance(value, bytes | bytearray):
        return bytes(value).decode("utf-8", "replace")
    try:
        return json.dumps(value, ensure_ascii=False, default=str)
    except (TypeError, ValueError):  # keys that are not strings, a circular reference
        return str(value)


def shown(value: Any) -> str:
    """``repr(value)``, cut to a length a reason can carry."""
    text = repr(value)
    return text if len(text) <= _SHOWN else text[: _SHOWN - 1] + "…"


# -- exact match and containment ----------------------------------------------------------------


def exact_match(log: Log) -> EvalResult | None:
    """1 when the output equals the target, else 0: ``exact_match``.

    Strings are compared exactly as given (see :func:`exact_match_with` to strip whitespace
    or ignore case). Other values are compared by value: a dict equals a dict with the same
    items, a tuple a list with the same items, ``1`` equals ``1.0``, but a bool equals only a
    bool, and a string never equals a number. No target: None (nothing to score).

    Example:
        >>> from clew.tracer.scores import Log
        >>> exact_match(Log(output="Paris", target="Paris"))
        EvalResult(name='exact_match', score=1.0, reason=None)
        >>> exact_match(Log(output={"a": [1, 2]}, target={"a": (1, 2.0)})).score
        1.0
        >>> exact_match(Log(output="Paris.", target="Paris")).reason
        "output 'Paris.' is not the target 'Paris'"
        >>> exact_match(Log(output="Paris")) is None  # no target: nothing to score
        True
    """
    return _exact_match(log)


def exact_match_with(
    *, strip: bool = False, case_sensitive: bool = True, name: str = "exact_match"
) -> EvalFunction:
    """:func:`exact_match`, with string comparison options.

    Args:
        strip: ignore leading and trailing whitespace of string outputs and targets.
        case_sensitive: False compares strings case-insensitively (``str.casefold``).
        name: the score's name.

    Example:
        >>> from clew.tracer.scores import Log
        >>> loose = exact_match_with(strip=True, case_sensitive=False)
        >>> loose(Log(output=" PARIS\\n", target="Paris")).score
        1.0
    """

    def score(log: Log) -> Score:
        output, target = log.output, log.target
        if isinstance(output, str) and isinstance(target, str):
            output = _cleaned(output, strip, case_sensitive)
            target = _cleaned(target, strip, case_sensitive)
        if _equal(output, target):
            return 1.0, None
        return 0.0, f"output {shown(log.output)} is not the target {shown(log.target)}"

    return eval_function(name, score, needs_target=True)


def _cleaned(text: str, strip: bool, case_sensitive: bool) -> str:
    if strip:
        text = text.strip()
    return text if case_sensitive else text.casefold()


def _equal(a: Any, b: Any) -> bool:
    """Equal by value: mappings item by item, lists and tuples alike, bools only to bools."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        return a.keys() == b.keys() and all(_equal(a[key], b[key]) for key in a)
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def contains_target(log: Log) -> EvalResult | None:
    """1 when the output's text contains the target's text, else 0: ``contains_target``.

    Case-sensitive (see :func:`contains_target_with`). No target: None (nothing to score).

    Example:
        >>> from clew.tracer.scores import Log
        >>> contains_target(Log(output="The capital is Paris.", target="Paris")).score
        1.0
    """
    return _contains_target(log)


def contains_target_with(
    *, case_sensitive: bool = True, name: str = "contains_target"
) -> EvalFunction:
    """:func:`contains_target`, with options.

    Args:
        case_sensitive: False ignores case (``str.casefold``).
        name: the score's name.

    Example:
        >>> from clew.tracer.scores import Log
        >>> anycase = contains_target_with(case_sensitive=False)
        >>> anycase(Log(output="the capital is paris", target="Paris")).score
        1.0
    """

    def score(log: Log) -> Score:
        target = text_of(log.target)
        output = _cleaned(text_of(log.output), False, case_sensitive)
        if _cleaned(target, False, case_sensitive) in output:
            return 1.0, None
        return 0.0, f"{shown(target)} is not in the output"

    return eval_function(name, score, needs_target=True)


_exact_match = exact_match_with()
_contains_target = contains_target_with()


def contains(
    substring: str, *, case_sensitive: bool = True, name: str = "contains"
) -> EvalFunction:
    """An eval giving 1 when the output's text contains ``substring``, else 0.

    Args:
        substring: the text to look for (not empty).
        case_sensitive: False ignores case (``str.casefold``).
        name: the score's name; give each ``contains`` eval of a call its own.

    Raises:
        ConfigurationError: ``substring`` is not a non-empty string.

    Example:
        >>> from clew.tracer.scores import Log
        >>> cites = contains("[source]", name="cites_a_source")
        >>> cites(Log(output="Paris is the capital [source]."))
        EvalResult(name='cites_a_source', score=1.0, reason=None)
    """
    if not isinstance(substring, str) or not substring:
        raise ConfigurationError(
            f"contains() looks for a non-empty string, got {substring!r}; to check the output"
            " against each log's target, use contains_target"
        )
    wanted = _cleaned(substring, False, case_sensitive)

    def score(log: Log) -> Score:
        if wanted in _cleaned(text_of(log.output), False, case_sensitive):
            return 1.0, None
        return 0.0, f"{shown(substring)} is not in the output"

    return eval_function(name, score, needs_target=False)


def regex(pattern: str | re.Pattern[str], *, flags: int = 0, name: str = "regex") -> EvalFunction:
    """An eval giving 1 when ``pattern`` matches somewhere in the output's text, else 0.

    The pattern is searched for (``re.search``): anchor it (``^...$`` or ``\\A...\\Z``) to
    match the whole output. It is compiled once, here.

    Args:
        pattern: a regular expression, as text or compiled.
        flags: ``re`` flags (``re.IGNORECASE`` ...), for a pattern given as text.
        name: the score's name.

    Raises:
        ConfigurationError: the pattern does not compile, or flags come with a compiled one.

    Example:
        >>> from clew.tracer.scores import Log
        >>> iso_date = regex(r"\\d{4}-\\d{2}-\\d{2}", name="has_date")
        >>> iso_date(Log(output="Due on 2024-05-01."))
        EvalResult(name='has_date', score=1.0, reason="matched '2024-05-01'")
    """
    try:
        compiled = re.compile(pattern, flags)
    except (re.error, TypeError, ValueError) as exc:
        raise ConfigurationError(
            f"regex pattern {pattern!r} cannot be used: {exc}; give a valid regular"
            " expression as a str (flags only with a pattern given as text)"
        ) from exc
    if not isinstance(compiled.pattern, str):
        raise ConfigurationError(f"regex pattern {pattern!r} is bytes; give it as a str")

    def score(log: Log) -> Score:
        found = compiled.search(text_of(log.output))
        if found is None:
            return 0.0, f"no match for {shown(compiled.pattern)}"
        return 1.0, f"matched {shown(found.group(0))}"

    return eval_function(name, score, needs_target=False)


# -- similarity -----------------------------------------------------------------------------------


def similarity(
    *, scorer: SimilarityScorer = "ratio", normalize: bool = False, name: str = "similarity"
) -> EvalFunction:
    """An eval scoring how alike the output's and the target's texts are, from 0 to 1.

    Scored by rapidfuzz; the ``*ratio`` scorers' 0..100 is divided by 100:

    - ``ratio``: normalised Indel similarity (1 - insertions and deletions / total length).
    - ``partial_ratio``: the best ``ratio`` of the shorter text against any equally long part
      of the longer one (is one text inside the other?).
    - ``token_sort_ratio``: ``ratio`` of the texts with their words sorted (word order ignored).
    - ``token_set_ratio``: compares the words the texts share with the rest (repeats ignored).
    - ``levenshtein``: 1 - edit distance (insert, delete, substitute) / the longer length.
    - ``jaro_winkler``: Jaro-Winkler similarity (for short strings such as names).

    Identical texts score 1, even empty ones. No target: None (nothing to score).

    Args:
        scorer: one of the above.
        normalize: first lower-case both texts, replace what is not a letter or digit by a
            space and trim (rapidfuzz's ``default_process``).
        name: the score's name.

    Raises:
        ConfigurationError: an unknown scorer, or rapidfuzz is not installed.

    Example:
        >>> from clew.tracer.scores import Log
        >>> words = similarity(scorer="token_sort_ratio")
        >>> words(Log(output="Paris is the capital", target="the capital is Paris")).score
        1.0
        >>> similarity()(Log(output="kitten", target="sitting")).score
        0.6153846153846154
    """
    compare = _scorer(scorer)
    from rapidfuzz.utils import default_process  # _scorer has checked that rapidfuzz is there

    process = default_process if normalize else None

    def score(log: Log) -> Score:
        output, target = text_of(log.output), text_of(log.target)
        if process is not None:
            output, target = process(output), process(target)
        if output == target:  # rapidfuzz's token_set_ratio gives two empty texts 0
            return 1.0, None
        return min(max(compare(output, target), 0.0), 1.0), None

    return eval_function(name, score, needs_target=True)


def _scorer(scorer: str) -> Callable[[str, str], float]:
    try:
        from rapidfuzz import fuzz
        from rapidfuzz.distance import JaroWinkler, Levenshtein
    except ImportError as exc:
        raise ConfigurationError(f"similarity() needs rapidfuzz: {_INSTALL}") from exc
    scorers: dict[str, Callable[[str, str], float]] = {
        "ratio": lambda a, b: fuzz.ratio(a, b) / 100,
        "partial_ratio": lambda a, b: fuzz.partial_ratio(a, b) / 100,
        "token_sort_ratio": lambda a, b: fuzz.token_sort_ratio(a, b) / 100,
        "token_set_ratio": lambda a, b: fuzz.token_set_ratio(a, b) / 100,
        "levenshtein": lambda a, b: Levenshtein.normalized_similarity(a, b),
        "jaro_winkler": lambda a, b: JaroWinkler.normalized_similarity(a, b),
    }
    found = scorers.get(scorer)
    if found is None:
        raise ConfigurationError(
            f"unknown similarity scorer {scorer!r}; use one of {', '.join(sorted(scorers))}"
        )
    return found


# -- JSON ---------------------------------------------------------------------------------------


def json_valid(log: Log) -> EvalResult | None:
    """1 when the output is JSON, else 0 with the parse error: ``json_valid``.

    A string (or bytes) output must parse as one JSON value, as it is (no searching inside
    fences or prose); ``NaN`` and ``Infinity``, which Python's ``json`` reads, are not JSON.
    A value output (a dict, a list, a number ...) is valid when it can be written as JSON.
    None fails.

    Example:
        >>> from clew.tracer.scores import Log
        >>> json_valid(Log(output='{"city": "Paris"}')).score
        1.0
        >>> json_valid(Log(output='{"city": Paris}')).reason
        'not JSON: Expecting value at line 1, column 10 (character 9)'
    """
    return _json_valid(log)


def _parses(log: Log) -> Score:
    _, problem = _json_value(log.output)
    return (1.0, None) if problem is None else (0.0, problem)


_json_valid = eval_function("json_valid", _parses, needs_target=False)


def _json_value(output: Any) -> tuple[Any, str | None]:
    """The output as a JSON value, or why it is not one."""
    if isinstance(output, bytes | bytearray):
        try:
            output = bytes(output).decode("utf-8")
        except UnicodeDecodeError as exc:
            return None, f"not JSON: the bytes are not UTF-8 ({exc.reason} at byte {exc.start})"
    if isinstance(output, str):
        try:
            return json.loads(output, parse_constant=_refuse_constant), None
        except json.JSONDecodeError as exc:
            where = f"line {exc.lineno}, column {exc.colno} (character {exc.pos})"
            return None, f"not JSON: {exc.msg} at {where}"
        except ValueError as exc:
            return None, f"not JSON: {exc}"
    if output is None:
        return None, "no output (None) to read as JSON"
    try:
        return json.loads(json.dumps(output, allow_nan=False)), None
    except (TypeError, ValueError) as exc:
        return None, f"the output ({type(output).__name__}) cannot be written as JSON: {exc}"


def _refuse_constant(constant: str) -> Any:
    raise ValueError(f"{constant} is not a JSON value")


def json_schema(schema: Mapping[str, Any] | bool, *, name: str = "json_schema") -> EvalFunction:
    """An eval giving 1 when the output conforms to a JSON Schema, else 0 with the violations.

    The output is read as :func:`json_valid` reads it (text is parsed; a value is taken as
    its JSON). The schema's ``$schema`` picks the draft (2020-12 when it names none); the
    schema is checked against its draft here, once. ``format`` is an annotation, not checked,
    as the specification has it. The reason lists the first three violations, each at its
    JSON path.

    Args:
        schema: the JSON Schema, as a dict (or True / False).
        name: the score's name.

    Raises:
        ConfigurationError: the schema is invalid or names an unknown draft, or jsonschema is
            not installed.

    Example:
        >>> from clew.tracer.scores import Log
        >>> city = json_schema({"type": "object", "required": ["city"],
        ...                     "properties": {"city": {"type": "string"}}})
        >>> city(Log(output='{"city": "Paris"}')).score
        1.0
        >>> city(Log(output='{"city": 75}')).reason
        "$.city: 75 is not of type 'string'"
    """
    validator = _validator(schema)

    def score(log: Log) -> Score:
        instance, problem = _json_value(log.output)
        if problem is not None:
            return 0.0, problem
        violations = [
            f"{error.json_path}: {_cut(error.message)}" for error in validator.iter_errors(instance)
        ]
        if not violations:
            return 1.0, None
        reason = "; ".join(violations[:_VIOLATIONS])
        if len(violations) > _VIOLATIONS:
            reason += f" (and {len(violations) - _VIOLATIONS} more)"
        return 0.0, reason

    return eval_function(name, score, needs_target=False)


def _validator(schema: Mapping[str, Any] | bool) -> Any:
    """A validator of ``schema``'s draft, once the schema is known to be valid."""
    try:
        from jsonschema import exceptions, validators  # type: ignore[import-untyped,unused-ignore]
    except ImportError as exc:
        raise ConfigurationError(f"json_schema() needs jsonschema: {_INSTALL}") from exc
    if not isinstance(schema, Mapping | bool):
        raise ConfigurationError(
            f"a JSON Schema is a dict (or True / False), got {type(schema).__name__}"
        )
    draft = validators.validator_for(schema, default=None)
    if draft is None:
        if isinstance(schema, Mapping) and "$schema" in schema:
            raise ConfigurationError(
                f"the JSON Schema's $schema {schema['$schema']!r} is no draft jsonschema knows;"
                " name a known draft (http://json-schema.org/draft-07/schema# ...) or none"
            )
        draft = validators.Draft202012Validator
    try:
        draft.check_schema(schema)
    except exceptions.SchemaError as exc:
        raise ConfigurationError(
            f"the JSON Schema is invalid at {exc.json_path}: {_cut(exc.message)}; fix the"
            f" schema (checked against {draft.__name__.removesuffix('Validator')})"
        ) from exc
    return draft(schema)


def _cut(text: str) -> str:
    return text if len(text) <= 2 * _SHOWN else text[: 2 * _SHOWN - 1] + "…"
