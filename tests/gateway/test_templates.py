"""``{{variable}}`` templates: filling, what is left alone, missing variables, and merging a
deployment with the caller's ``llm_configuration``."""

from __future__ import annotations

import datetime as dt
from enum import Enum
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from clew.errors import InvalidRequestError
from clew.gateway.deployments import Deployment
from clew.gateway.schemas import LLMInputs, Message, ModelParams, ProviderName, Role
from clew.gateway.templates import PLACEHOLDER, merge, render, value_text, variables


def _render_one(content: Any, inputs: dict[str, Any] | None) -> Any:
    (message,) = render([Message(content=content)], inputs)
    return message.content


# --- examples ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("Hi {{name}}!", "Hi Ada!"),
        ("Hi {{ name }}!", "Hi Ada!"),
        ("Hi {{\tname  }}!", "Hi Ada!"),
        ("{{name}} and {{name}}", "Ada and Ada"),
        ("{{name}}{{n}}", "Ada3"),
        ("{{_private}} {{n2}}", "p 4"),
        ("Ünïcode {{prénom}}", "Ünïcode Zoé"),
    ],
)
def test_placeholders_are_filled(content: str, expected: str) -> None:
    inputs = {"name": "Ada", "n": 3, "_private": "p", "n2": 4, "prénom": "Zoé"}

    assert _render_one(content, inputs) == expected


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ("plain", "plain"),
        (3, "3"),
        (0.5, "0.5"),
        (True, "True"),
        (False, "False"),
        (None, "null"),
        ({"a": 1, "b": [True, None]}, '{"a": 1, "b": [true, null]}'),
        (["x", 2], '["x", 2]'),
        ({"é": "ü"}, '{"é": "ü"}'),
        (dt.date(2024, 1, 2), '"2024-01-02"'),
        (Role.system, "system"),
    ],
)
def test_values_are_written_as_documented(value: Any, text: str) -> None:
    assert value_text(value) == text
    assert _render_one("[{{v}}]", {"v": value}) == f"[{text}]"


def test_a_str_enum_is_its_value() -> None:
    class Tone(str, Enum):  # noqa: UP042 (str() of such an enum is "Tone.warm", not its value)
        warm = "warm"

    assert _render_one("{{tone}}", {"tone": Tone.warm}) == "warm"


@pytest.mark.parametrize(
    "content",
    [
        "{{",
        "}}",
        "{{ name",
        "name }}",
        '{"json": {"nested": 1}}',
        "{{ 1 + 1 }}",
        "{{a.b}}",
        "{{9lives}}",
        "{{ }}",
        "{ {name} }",
        "{{na me}}",
        "def f(): return {k: v for k, v in d.items()}",
    ],
)
def test_text_that_is_not_a_placeholder_is_left_alone(content: str) -> None:
    assert _render_one(content, {"name": "Ada", "a": "x"}) == content
    assert variables([Message(content=content)]) == set()


def test_triple_braces_keep_the_outer_ones() -> None:
    assert _render_one("{{{name}}}", {"name": "Ada"}) == "{Ada}"


def test_an_input_containing_a_placeholder_is_inserted_literally() -> None:
    content = _render_one("{{a}} / {{b}}", {"a": "{{b}}", "b": "{{ a }}"})

    assert content == "{{b}} / {{ a }}"


def test_content_parts_have_their_text_filled_and_the_rest_kept() -> None:
    parts: list[Any] = [
        {"type": "text", "text": "Describe {{thing}}"},
        {"type": "image_url", "image_url": {"url": "https://x/{{thing}}.png"}},
        "not a part",
    ]

    content = _render_one(parts, {"thing": "a cat"})

    assert content == [
        {"type": "text", "text": "Describe a cat"},
        {"type": "image_url", "image_url": {"url": "https://x/{{thing}}.png"}},
        "not a part",
    ]
    assert parts[0]["text"] == "Describe {{thing}}", "the given parts are not changed"


def test_rendering_keeps_role_extras_and_the_given_messages() -> None:
    messages = [
        Message.model_validate(
            {"role": "tool", "content": "result {{x}}", "tool_call_id": "call-1", "name": "f"}
        ),
        Message(content=None),
        Message(role=Role.system, content="no placeholder"),
    ]

    rendered = render(messages, {"x": 1})

    assert rendered[0].content == "result 1"
    assert rendered[0].role is Role.tool
    assert rendered[0].model_dump()["tool_call_id"] == "call-1"
    assert rendered[1:] == messages[1:]
    assert rendered[2] is messages[2], "a message without placeholders is not copied"
    assert messages[0].content == "result {{x}}"


def test_unused_inputs_and_no_inputs_are_fine() -> None:
    assert _render_one("{{a}}", {"a": "1", "b": "2"}) == "1"
    assert _render_one("no variables", None) == "no variables"


def test_a_missing_variable_is_named_with_where_it_is_used() -> None:
    messages = [Message(content="hi"), Message(content="about {{x}}")]

    with pytest.raises(InvalidRequestError) as caught:
        render(messages, {"y": 1})

    assert str(caught.value) == (
        "missing template variable 'x' (used in messages[1]); give it in llm_inputs"
    )
    assert caught.value.param == "llm_inputs.x"
    assert caught.value.code == "missing_variable"
    assert caught.value.status_code == 400


def test_every_missing_variable_is_named() -> None:
    messages = [
        Message(content="{{b}} {{a}}"),
        Message(content=[{"type": "text", "text": "{{ b }} {{c}}"}]),
        Message(content="{{given}}"),
    ]

    with pytest.raises(InvalidRequestError) as caught:
        render(messages, {"given": 1})

    assert str(caught.value) == (
        "missing template variables 'b' (used in messages[0], messages[1]),"
        " 'a' (used in messages[0]), 'c' (used in messages[1]); give them in llm_inputs"
    )
    assert caught.value.param == "llm_inputs.b"


def test_variables_are_the_names_used() -> None:
    messages = [
        Message(content="{{a}} {{ b }} {{a}}"),
        Message(content=[{"type": "text", "text": "{{c}}"}, {"type": "image_url"}]),
        Message(content=None),
    ]

    assert variables(messages) == {"a", "b", "c"}


# --- properties ----------------------------------------------------------------------------

NAMES = st.from_regex(r"[^\W\d]\w{0,11}", fullmatch=True)
NO_BRACES = st.text(st.characters(exclude_characters="{}"), max_size=20)
VALUES = st.one_of(NO_BRACES, st.integers(), st.floats(allow_nan=False), st.booleans())
SPACES = st.sampled_from(["", " ", "  ", "\t", "\n "])


@st.composite
def templates(draw: st.DrawFn) -> tuple[str, dict[str, Any], str]:
    """A template of text and placeholders, inputs for all of them, and the expected text."""
    names = draw(st.lists(NAMES, min_size=1, max_size=5, unique=True))
    inputs = {name: draw(VALUES) for name in names}
    template, expected = [], []
    for _ in range(draw(st.integers(1, 8))):
        if draw(st.booleans()):
            text = draw(NO_BRACES)
            template.append(text)
            expected.append(text)
        else:
            name = draw(st.sampled_from(names))
            template.append(f"{{{{{draw(SPACES)}{name}{draw(SPACES)}}}}}")
            expected.append(value_text(inputs[name]))
    return "".join(template), inputs, "".join(expected)


@given(templates())
def test_render_fills_every_placeholder(case: tuple[str, dict[str, Any], str]) -> None:
    template, inputs, expected = case

    content = _render_one(template, inputs)

    assert content == expected
    assert not any("{{" + name + "}}" in content for name in inputs)
    assert variables([Message(content=template)]) <= set(inputs)


@given(st.text(max_size=60), st.dictionaries(NAMES, VALUES, max_size=4))
def test_text_without_placeholders_is_never_touched(text: str, inputs: dict[str, Any]) -> None:
    while PLACEHOLDER.search(text):  # removing one may make another: {{{{a}}b}}
        text = PLACEHOLDER.sub("", text)
    message = Message(content=text)

    assert render([message], inputs) == [message]


@given(st.text(max_size=40), st.text(max_size=40))
def test_values_are_inserted_literally(first: str, second: str) -> None:
    assert _render_one("{{a}}|{{ b }}", {"a": first, "b": second}) == f"{first}|{second}"


@given(st.lists(NAMES, min_size=1, max_size=6, unique=True), st.data())
def test_every_missing_variable_is_in_the_error(names: list[str], data: st.DataObject) -> None:
    given_names = data.draw(st.sets(st.sampled_from(names)).filter(lambda s: s != set(names)))
    messages = [Message(content=f"x {{{{{name}}}}} y") for name in names]

    with pytest.raises(InvalidRequestError) as caught:
        render(messages, dict.fromkeys(given_names, "v"))

    missing = [n for n in names if n not in given_names]
    for name in missing:
        assert f"{name!r} (used in messages[{names.index(name)}])" in str(caught.value)
    for name in given_names:
        assert f"{name!r}" not in str(caught.value)
    assert caught.value.param == f"llm_inputs.{missing[0]}"


# --- merge ---------------------------------------------------------------------------------


@pytest.fixture
def deployment() -> Deployment:
    return Deployment.model_validate(
        {
            "id": "support-answer",
            "version": 3,
            "provider": "openai",
            "model": "gpt-4o-mini",
            "model_params": {"temp": 0.2, "max_length": 100},
            "messages": [
                {"role": "system", "content": "You answer about {{product}}."},
                {"content": "{{question}}"},
            ],
            "functions": [{"name": "lookup", "parameters": {"type": "object"}}],
            "function_call": "auto",
            "fallbacks": ["gpt-4o"],
        }
    )


def test_merge_without_overrides_is_the_deployment(deployment: Deployment) -> None:
    merged = merge(deployment, LLMInputs())

    assert merged.model == "gpt-4o-mini"
    assert merged.provider is ProviderName.openai
    assert merged.messages == deployment.messages, "not rendered without inputs"
    assert merged.model_params is not None
    assert merged.model_params.given() == {"temp": 0.2, "max_length": 100}
    assert merged.functions == deployment.functions
    assert merged.function_call == "auto"
    assert merged.history is None


def test_merge_caller_fields_override(deployment: Deployment) -> None:
    caller = LLMInputs(
        model="claude-3-5-haiku-latest",
        provider=ProviderName.anthropic,
        messages=[Message(content="mine {{x}}")],
        functions=[],
        function_call="none",
    )

    merged = merge(deployment, caller, inputs={"x": 1})

    assert (merged.model, merged.provider) == ("claude-3-5-haiku-latest", ProviderName.anthropic)
    assert [m.content for m in merged.messages or []] == ["mine 1"]
    assert (merged.functions, merged.function_call) == ([], "none")


def test_merge_model_params_field_by_field(deployment: Deployment) -> None:
    caller = LLMInputs(model_params=ModelParams(temp=0.9, top_p=0.5))

    merged = merge(deployment, caller)

    assert merged.model_params is not None
    assert merged.model_params.given() == {"temp": 0.9, "top_p": 0.5, "max_length": 100}


def test_merge_fields_set_to_none_do_not_override(deployment: Deployment) -> None:
    merged = merge(deployment, LLMInputs(model=None, messages=None, model_params=None))

    assert merged.model == "gpt-4o-mini"
    assert merged.messages == deployment.messages
    assert merged.model_params == deployment.model_params


def test_merge_puts_the_history_first_and_does_not_render_it(deployment: Deployment) -> None:
    history = [
        Message(content="earlier {{question}} {{unknown}}"),
        Message(role=Role.assistant, content="an answer"),
    ]

    merged = merge(
        deployment, LLMInputs(history=history), inputs={"product": "tea", "question": "why?"}
    )

    assert [m.content for m in merged.messages or []] == [
        "earlier {{question}} {{unknown}}",
        "an answer",
        "You answer about tea.",
        "why?",
    ]
    assert merged.history is None


def test_merge_with_inputs_names_a_missing_variable(deployment: Deployment) -> None:
    with pytest.raises(InvalidRequestError, match=r"'question' \(used in messages\[1\]\)"):
        merge(deployment, LLMInputs(history=[Message(content="h")]), inputs={"product": "tea"})
    with pytest.raises(InvalidRequestError, match=r"'product'.*'question'"):
        merge(deployment, LLMInputs(), inputs={})


def test_merge_does_not_change_the_deployment(deployment: Deployment) -> None:
    before = deployment.model_copy(deep=True)

    merge(
        deployment,
        LLMInputs(model_params=ModelParams(temp=1), history=[Message(content="h")]),
        inputs={"product": "tea", "question": "q"},
    )

    assert deployment == before
