"""The ready-made evals: examples of each, and properties checked against the libraries they
stand on (``json``, jsonschema, rapidfuzz)."""

from __future__ import annotations

import doctest
import json
import re
import sys
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from jsonschema import Draft202012Validator  # type: ignore[import-untyped,unused-ignore]

from clew.errors import ConfigurationError
from clew.evals import judge, library
from clew.evals.library import (
    contains,
    contains_target,
    contains_target_with,
    exact_match,
    exact_match_with,
    json_schema,
    json_valid,
    regex,
    similarity,
)
from clew.tracer.scores import EvalResult, Log

SCORERS = [
    "ratio",
    "partial_ratio",
    "token_sort_ratio",
    "token_set_ratio",
    "levenshtein",
    "jaro_winkler",
]
JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=5), children, max_size=4)
    ),
    max_leaves=12,
)
FAILED = Log(output=None, target="Paris", error="TimeoutError: the model took too long")


def score_of(result: EvalResult | None) -> float:
    assert result is not None
    return result.score


def test_the_docstring_examples_hold() -> None:
    for module in (library, judge):
        assert doctest.testmod(module).failed == 0


# -- exact match -----------------------------------------------------------------------------


def test_exact_match_scores_1_for_an_equal_string() -> None:
    assert exact_match(Log(output="Paris", target="Paris")) == EvalResult("exact_match", 1.0)


def test_exact_match_says_what_differed() -> None:
    result = exact_match(Log(output="Paris.", target="Paris"))
    assert result == EvalResult("exact_match", 0.0, "output 'Paris.' is not the target 'Paris'")


def test_exact_match_compares_strings_as_given() -> None:
    assert score_of(exact_match(Log(output=" Paris", target="Paris"))) == 0.0
    assert score_of(exact_match(Log(output="paris", target="Paris"))) == 0.0


@pytest.mark.parametrize(
    ("output", "target"),
    [
        ({"a": 1, "b": [1, 2]}, {"b": [1, 2], "a": 1}),
        ((1, 2), [1, 2]),
        (1, 1.0),
        ({"a": (True, None)}, {"a": [True, None]}),
    ],
)
def test_exact_match_compares_other_values_by_value(output: Any, target: Any) -> None:
    assert score_of(exact_match(Log(output=output, target=target))) == 1.0


@pytest.mark.parametrize(
    ("output", "target"), [(True, 1), (0, False), ("1", 1), ({"a": 1}, {"a": 1, "b": 2})]
)
def test_exact_match_keeps_bools_strings_and_numbers_apart(output: Any, target: Any) -> None:
    assert score_of(exact_match(Log(output=output, target=target))) == 0.0


def test_exact_match_gives_no_score_without_a_target() -> None:
    assert exact_match(Log(output="Paris")) is None


def test_a_call_that_raised_scores_0_with_its_error() -> None:
    assert exact_match(FAILED) == EvalResult(
        "exact_match", 0.0, "the call raised TimeoutError: the model took too long"
    )


def test_exact_match_with_can_strip_and_ignore_case() -> None:
    assert score_of(exact_match_with(strip=True)(Log(output=" Paris\n", target="Paris"))) == 1.0
    assert score_of(exact_match_with(strip=True)(Log(output="paris", target="Paris"))) == 0.0
    loose = exact_match_with(case_sensitive=False, name="same_city")
    assert loose(Log(output="PARIS", target="paris")) == EvalResult("same_city", 1.0)


@given(JSON_VALUES)
def test_exact_match_is_reflexive(value: Any) -> None:
    if value is not None:  # None is "no target"
        assert score_of(exact_match(Log(output=value, target=value))) == 1.0


@given(JSON_VALUES, JSON_VALUES)
def test_exact_match_is_symmetric(a: Any, b: Any) -> None:
    if a is not None and b is not None:
        forth = exact_match(Log(output=a, target=b))
        back = exact_match(Log(output=b, target=a))
        assert score_of(forth) == score_of(back)


# -- containment -------------------------------------------------------------------------------


def test_contains_target_finds_the_target_in_the_output() -> None:
    assert score_of(contains_target(Log(output="It is Paris.", target="Paris"))) == 1.0
    assert contains_target(Log(output="It is paris.", target="Paris")) == EvalResult(
        "contains_target", 0.0, "'Paris' is not in the output"
    )


def test_contains_target_gives_no_score_without_a_target() -> None:
    assert contains_target(Log(output="Paris")) is None


def test_contains_target_with_can_ignore_case() -> None:
    anycase = contains_target_with(case_sensitive=False, name="mentions")
    assert anycase(Log(output="It is PARIS.", target="Paris")) == EvalResult("mentions", 1.0)


def test_contains_finds_a_substring() -> None:
    cites = contains("[source]", name="cites")
    assert cites(Log(output="Paris [source].")) == EvalResult("cites", 1.0)
    assert cites(Log(output="Paris.")) == EvalResult(
        "cites", 0.0, "'[source]' is not in the output"
    )


def test_contains_can_ignore_case() -> None:
    assert score_of(contains("PARIS", case_sensitive=False)(Log(output="paris"))) == 1.0
    assert score_of(contains("PARIS")(Log(output="paris"))) == 0.0


def test_contains_reads_a_value_output_as_json() -> None:
    assert score_of(contains('"city": "Paris"')(Log(output={"city": "Paris"}))) == 1.0


def test_contains_scores_0_for_a_call_that_raised() -> None:
    assert score_of(contains("None")(FAILED)) == 0.0


def test_contains_refuses_an_empty_substring_at_creation() -> None:
    with pytest.raises(ConfigurationError, match="contains_target"):
        contains("")


# -- regex -----------------------------------------------------------------------------------


def test_regex_searches_the_output() -> None:
    date = regex(r"\d{4}-\d{2}-\d{2}")
    assert date(Log(output="Due 2024-05-01.")) == EvalResult("regex", 1.0, "matched '2024-05-01'")
    assert date(Log(output="Due soon.")) == EvalResult(
        "regex", 0.0, "no match for '\\\\d{4}-\\\\d{2}-\\\\d{2}'"
    )


def test_an_anchored_regex_matches_the_whole_output() -> None:
    only_digits = regex(r"\A\d+\Z")
    assert score_of(only_digits(Log(output="42"))) == 1.0
    assert score_of(only_digits(Log(output="42 apples"))) == 0.0


def test_regex_takes_flags_or_a_compiled_pattern() -> None:
    assert score_of(regex("paris", flags=re.IGNORECASE)(Log(output="PARIS"))) == 1.0
    assert score_of(regex(re.compile("paris", re.IGNORECASE))(Log(output="PARIS"))) == 1.0


@pytest.mark.parametrize(
    ("pattern", "flags"),
    [("(unclosed", 0), (re.compile("x"), re.IGNORECASE), (b"bytes", 0), (42, 0)],
)
def test_a_bad_regex_fails_at_creation(pattern: Any, flags: int) -> None:
    with pytest.raises(ConfigurationError, match="regex pattern"):
        regex(pattern, flags=flags)


# -- similarity --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("scorer", "output", "target", "expected"),
    [
        ("ratio", "kitten", "sitting", 0.6153846153846154),
        ("levenshtein", "kitten", "sitting", 1 - 3 / 7),
        ("token_sort_ratio", "Paris is the capital", "the capital is Paris", 1.0),
        ("partial_ratio", "Paris", "The capital is Paris.", 1.0),
        ("token_set_ratio", "Paris Paris capital", "capital Paris", 1.0),
    ],
)
def test_similarity_scores_with_the_chosen_scorer(
    scorer: Any, output: str, target: str, expected: float
) -> None:
    result = similarity(scorer=scorer)(Log(output=output, target=target))
    assert score_of(result) == pytest.approx(expected)


def test_similarity_can_normalize_the_texts() -> None:
    log = Log(output="PARIS!", target="paris")
    assert score_of(similarity(normalize=True)(log)) == 1.0
    assert score_of(similarity()(log)) < 1.0


def test_similarity_gives_no_score_without_a_target() -> None:
    assert similarity()(Log(output="Paris")) is None


def test_similarity_scores_0_for_a_call_that_raised() -> None:
    assert score_of(similarity(name="close")(FAILED)) == 0.0


def test_an_unknown_scorer_fails_at_creation() -> None:
    with pytest.raises(ConfigurationError, match="jaro_winkler, levenshtein"):
        similarity(scorer="cosine")  # type: ignore[arg-type]


@pytest.mark.parametrize("scorer", SCORERS)
@given(output=st.text(max_size=30), target=st.text(max_size=30))
def test_similarity_is_between_0_and_1(scorer: Any, output: str, target: str) -> None:
    assert 0.0 <= score_of(similarity(scorer=scorer)(Log(output=output, target=target))) <= 1.0


@pytest.mark.parametrize("scorer", SCORERS)
@given(text=st.text(max_size=30))
def test_similarity_of_identical_texts_is_1(scorer: Any, text: str) -> None:
    assert score_of(similarity(scorer=scorer)(Log(output=text, target=text))) == 1.0


@pytest.mark.parametrize("scorer", ["ratio", "levenshtein", "token_sort_ratio"])
@given(a=st.text(max_size=30), b=st.text(max_size=30))
def test_similarity_is_symmetric(scorer: Any, a: str, b: str) -> None:
    evaluate = similarity(scorer=scorer)
    assert score_of(evaluate(Log(output=a, target=b))) == pytest.approx(
        score_of(evaluate(Log(output=b, target=a)))
    )


# -- JSON --------------------------------------------------------------------------------------


def test_json_valid_accepts_json_text() -> None:
    assert json_valid(Log(output='{"city": "Paris", "n": [1, 2.5, null]}')) == EvalResult(
        "json_valid", 1.0
    )


def test_json_valid_gives_the_parse_error_position() -> None:
    assert json_valid(Log(output='{"city": "Paris",\n "n": }')) == EvalResult(
        "json_valid", 0.0, "not JSON: Expecting value at line 2, column 7 (character 24)"
    )


@pytest.mark.parametrize("text", ["NaN", '{"x": Infinity}', "[-Infinity]"])
def test_json_valid_refuses_what_only_python_reads(text: str) -> None:
    result = json_valid(Log(output=text))
    assert score_of(result) == 0.0
    assert result is not None and "is not a JSON value" in (result.reason or "")


@pytest.mark.parametrize("output", [{"a": [1, 2]}, [1, "two"], 3.5, True, b'{"a": 1}'])
def test_json_valid_accepts_values_that_are_json(output: Any) -> None:
    assert score_of(json_valid(Log(output=output))) == 1.0


@pytest.mark.parametrize(
    ("output", "reason"),
    [
        (None, "no output (None) to read as JSON"),
        ({1, 2}, "the output (set) cannot be written as JSON"),
        ({"x": float("nan")}, "the output (dict) cannot be written as JSON"),
        (b"\xff", "not JSON: the bytes are not UTF-8"),
    ],
)
def test_json_valid_refuses_values_that_are_not_json(output: Any, reason: str) -> None:
    result = json_valid(Log(output=output))
    assert result is not None and result.score == 0.0
    assert (result.reason or "").startswith(reason)


def test_json_valid_scores_0_for_a_call_that_raised() -> None:
    assert score_of(json_valid(FAILED)) == 0.0


def _strict_loads(text: str) -> bool:
    def refuse(constant: str) -> Any:
        raise ValueError(constant)

    try:
        json.loads(text, parse_constant=refuse)
    except ValueError:
        return False
    return True


@given(
    st.one_of(
        st.text(max_size=40),
        JSON_VALUES.map(json.dumps),
        st.tuples(JSON_VALUES.map(json.dumps), st.text(max_size=3)).map("".join),
        st.sampled_from(["NaN", "-Infinity", "1e999", " [1] ", "{}", "[1,]", '"\\ud800"']),
    )
)
def test_json_valid_agrees_with_json_loads(text: str) -> None:
    assert score_of(json_valid(Log(output=text))) == float(_strict_loads(text))


PERSON = {
    "type": "object",
    "required": ["name"],
    "properties": {
        "name": {"type": "string", "minLength": 1},
        "age": {"type": "integer", "minimum": 0},
        "tags": {"type": "array", "items": {"type": "string"}, "uniqueItems": True},
    },
    "additionalProperties": False,
}


def test_json_schema_accepts_a_conforming_output() -> None:
    person = json_schema(PERSON, name="person")
    assert person(Log(output='{"name": "Ada", "age": 36}')) == EvalResult("person", 1.0)
    assert score_of(person(Log(output={"name": "Ada", "tags": ("math",)}))) == 1.0


def test_json_schema_lists_violations_with_their_paths() -> None:
    result = json_schema(PERSON)(Log(output={"name": "", "age": -1}))
    assert result == EvalResult(
        "json_schema",
        0.0,
        "$.name: '' should be non-empty; $.age: -1 is less than the minimum of 0",
    )


def test_json_schema_lists_the_first_three_violations() -> None:
    output = {"name": 1, "age": "x", "tags": "y", "extra": True}
    result = json_schema(PERSON)(Log(output=output))
    assert result is not None and (result.reason or "").endswith("(and 1 more)")
    assert (result.reason or "").count("; ") == 2


def test_json_schema_scores_text_that_is_not_json_0() -> None:
    assert json_schema(PERSON)(Log(output="Ada, 36")) == EvalResult(
        "json_schema", 0.0, "not JSON: Expecting value at line 1, column 1 (character 0)"
    )


def test_json_schema_uses_the_schemas_draft() -> None:
    # draft-04's boolean exclusiveMaximum is an invalid schema under 2020-12
    draft4 = {
        "$schema": "http://json-schema.org/draft-04/schema#",
        "maximum": 5,
        "exclusiveMaximum": True,
    }
    below_five = json_schema(draft4)
    assert score_of(below_five(Log(output="4"))) == 1.0
    assert score_of(below_five(Log(output="5"))) == 0.0
    with pytest.raises(ConfigurationError, match="invalid at"):
        json_schema({key: value for key, value in draft4.items() if key != "$schema"})


@pytest.mark.parametrize(
    ("schema", "message"),
    [
        ({"type": "strin"}, r"invalid at \$\.type"),
        ({"$schema": "https://example.com/my-draft"}, "no draft jsonschema knows"),
        ("{}", "is a dict"),
    ],
)
def test_a_bad_schema_fails_at_creation(schema: Any, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        json_schema(schema)


@given(
    st.one_of(
        JSON_VALUES,
        st.fixed_dictionaries(
            {},
            optional={
                "name": st.one_of(st.text(max_size=3), st.integers()),
                "age": st.one_of(st.integers(-2, 2), st.floats(-2, 2), st.text(max_size=1)),
                "tags": st.lists(st.one_of(st.sampled_from("ab"), st.integers(0, 1)), max_size=3),
                "extra": st.booleans(),
            },
        ),
    ),
    st.booleans(),
)
def test_json_schema_agrees_with_jsonschema(instance: Any, as_text: bool) -> None:
    output = json.dumps(instance) if as_text else instance
    expected = Draft202012Validator(PERSON).is_valid(instance)
    assert score_of(json_schema(PERSON)(Log(output=output))) == float(expected)


# -- set-up errors -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "make",
    [
        lambda: exact_match_with(name=""),
        lambda: contains_target_with(name=""),
        lambda: contains("x", name=""),
        lambda: regex("x", name=""),
        lambda: similarity(name=""),
        lambda: json_schema({}, name=""),
    ],
)
def test_an_empty_name_fails_at_creation(make: Any) -> None:
    with pytest.raises(ConfigurationError, match="non-empty string"):
        make()


@pytest.mark.parametrize(
    ("module", "make"),
    [("rapidfuzz", lambda: similarity()), ("jsonschema", lambda: json_schema({}))],
)
def test_a_missing_extra_names_the_install_command(
    monkeypatch: pytest.MonkeyPatch, module: str, make: Any
) -> None:
    monkeypatch.setitem(sys.modules, module, None)  # `import module` now raises ImportError
    with pytest.raises(ConfigurationError, match=re.escape("pip install 'clew[evals]'")):
        make()


def test_a_factory_names_the_function_it_returns() -> None:
    assert contains("x", name="has_x").__name__ == "has_x"
