"""The extra conventions: clew's spans carry the keys Arize Phoenix (OpenInference) and
Langfuse read, copied from clew's own keys, never with omitted content, and the switch turns
them off."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import pytest
from openai import OpenAI

import clew
from clew import attributes as a
from clew.errors import ConfigurationError
from clew.log_record import span_to_record
from clew.testing import SpanCapture
from clew.tracer.conventions import SPAN_KINDS

IDENTITY = {"session_id": "s", "end_user_identifier": "u"}
LANGFUSE_TYPES = {
    "chain": "chain",
    "tool": "tool",
    "retriever": "retriever",
    "agent": "agent",
    "embedding": "embedding",
    "reranker": "span",
    "guardrail": "guardrail",
    "evaluator": "evaluator",
    "llm": "generation",
    "prompt": "span",
}


def _attrs(capture: SpanCapture, name: str) -> dict[str, Any]:
    (span,) = [s for s in capture.spans if s.name == name]
    return dict(span.attributes or {})


def test_a_traced_function_carries_its_kind_inputs_and_output(clew_spans: SpanCapture) -> None:
    @clew.trace
    def answer(question: str) -> str:
        return "forty-two"

    answer("why?")
    attrs = _attrs(clew_spans, "answer")
    assert attrs[a.OPENINFERENCE_SPAN_KIND] == "CHAIN"
    assert attrs[a.LANGFUSE_OBSERVATION_TYPE] == "span"
    assert attrs[a.INPUT_VALUE] == attrs[a.CLEW_INPUTS] == '{"question":"why?"}'
    assert attrs[a.OUTPUT_VALUE] == attrs[a.CLEW_OUTPUT] == '"forty-two"'
    assert attrs[a.INPUT_MIME_TYPE] == attrs[a.OUTPUT_MIME_TYPE] == "application/json"
    assert a.CLEW_KIND not in attrs  # no kind given: none recorded


def test_the_copies_are_the_same_string_objects(clew_spans: SpanCapture) -> None:
    @clew.trace(tags=["rag"], metadata={"k": "v"})
    def answer(question: str) -> str:
        return question * 2

    answer("x" * 1000)
    attrs = clew_spans.spans[0].attributes or {}
    assert attrs[a.INPUT_VALUE] is attrs[a.CLEW_INPUTS]
    assert attrs[a.OUTPUT_VALUE] is attrs[a.CLEW_OUTPUT]
    assert attrs[a.TAG_TAGS] is attrs[a.CLEW_TAGS] is attrs[a.LANGFUSE_TRACE_TAGS]
    assert attrs[a.METADATA] is attrs[a.CLEW_METADATA]


@pytest.mark.parametrize("kind", SPAN_KINDS)
def test_each_kind_is_named_for_both_backends(kind: str, clew_spans: SpanCapture) -> None:
    @clew.trace(kind=kind)
    def step() -> None:
        return None

    step()
    with clew.span("block", kind=kind.upper()):  # OpenInference's spelling is taken too
        pass
    for name in ("step", "block"):
        attrs = _attrs(clew_spans, name)
        assert attrs[a.OPENINFERENCE_SPAN_KIND] == kind.upper()
        assert attrs[a.LANGFUSE_OBSERVATION_TYPE] == LANGFUSE_TYPES[kind]
        assert attrs[a.CLEW_KIND] == kind


def test_an_unknown_kind_lists_the_kinds() -> None:
    with pytest.raises(ConfigurationError, match=r"kind must be one of chain, tool, .*'tol'"):
        clew.trace(kind="tol")(lambda: None)
    with pytest.raises(ConfigurationError, match=r"kind must be one of .*retriever"):
        clew.span("x", kind=3)  # type: ignore[arg-type]


def test_user_session_tags_and_metadata(clew_spans: SpanCapture) -> None:
    @clew.trace(
        tags=["a", "b"],
        metadata={"tier": "gold", "n": 3},
        end_user_identifier="u-1",
        session_id="s-1",
    )
    def root() -> None:
        with clew.span("child"):
            pass

    root()
    attrs = _attrs(clew_spans, "root")
    assert attrs[a.USER_ID] == "u-1" and attrs[a.SESSION_ID] == "s-1"
    assert attrs[a.TAG_TAGS] == attrs[a.LANGFUSE_TRACE_TAGS] == ("a", "b")
    assert json.loads(attrs[a.METADATA]) == {"tier": "gold", "n": 3}
    assert attrs[a.LANGFUSE_OBSERVATION_METADATA + "tier"] == "gold"
    assert attrs[a.LANGFUSE_OBSERVATION_METADATA + "n"] == "3"
    child = _attrs(clew_spans, "child")  # the trace's user and session reach every span
    assert child[a.USER_ID] == "u-1" and child[a.SESSION_ID] == "s-1"
    assert a.TAG_TAGS not in child and a.METADATA not in child  # tags and metadata do not


def test_what_is_set_while_a_span_runs_is_copied_too(clew_spans: SpanCapture) -> None:
    with clew.span("block") as s:
        s.set_inputs({"q": 1})
        s.set_output(["doc"])
        s.add_tags("late")
        s.set_metadata({"k": "v"})
        clew.trace_insert({"session_id": "s-9", "end_user_identifier": "u-9"})
    attrs = _attrs(clew_spans, "block")
    assert attrs[a.INPUT_VALUE] == attrs[a.CLEW_INPUTS] == '{"q":1}'
    assert attrs[a.OUTPUT_VALUE] == attrs[a.CLEW_OUTPUT] == '["doc"]'
    assert attrs[a.TAG_TAGS] == attrs[a.LANGFUSE_TRACE_TAGS] == ("late",)
    assert attrs[a.METADATA] == attrs[a.CLEW_METADATA]
    assert attrs[a.LANGFUSE_OBSERVATION_METADATA + "k"] == "v"
    assert attrs[a.SESSION_ID] == "s-9" and attrs[a.USER_ID] == "u-9"


def test_a_failed_span_keeps_its_inputs_copy(clew_spans: SpanCapture) -> None:
    @clew.trace
    def fails(x: int) -> None:
        raise ValueError("no")

    with pytest.raises(ValueError):
        fails(1)
    attrs = _attrs(clew_spans, "fails")
    assert attrs[a.INPUT_VALUE] == '{"x":1}' and a.OUTPUT_VALUE not in attrs


def test_an_llm_call_is_an_llm_span_with_its_messages_and_the_session(
    client: OpenAI, clew_spans: SpanCapture
) -> None:
    @clew.trace(session_id="conv-7", end_user_identifier="u-7")
    def chat() -> None:
        client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "hello there"}]
        )

    chat()
    attrs = _attrs(clew_spans, "chat gpt-4o-mini")
    assert attrs[a.OPENINFERENCE_SPAN_KIND] == "LLM"
    assert attrs[a.LANGFUSE_OBSERVATION_TYPE] == "generation"
    assert attrs[a.INPUT_VALUE] == attrs[a.GEN_AI_INPUT_MESSAGES]
    assert attrs[a.OUTPUT_VALUE] == attrs[a.GEN_AI_OUTPUT_MESSAGES]
    assert attrs[a.GEN_AI_CONVERSATION_ID] == attrs[a.SESSION_ID] == "conv-7"
    assert attrs[a.USER_ID] == "u-7"
    cost = json.loads(attrs[a.LANGFUSE_OBSERVATION_COST_DETAILS])
    assert cost == {"total": attrs[a.GEN_AI_USAGE_COST_AMOUNT]}


def test_an_embeddings_call_is_an_embedding_span(client: OpenAI, clew_spans: SpanCapture) -> None:
    client.embeddings.create(model="text-embedding-3-small", input="hello")
    (span,) = clew_spans.spans
    attrs = dict(span.attributes or {})
    assert attrs[a.OPENINFERENCE_SPAN_KIND] == "EMBEDDING"
    assert attrs[a.LANGFUSE_OBSERVATION_TYPE] == "embedding"


def test_a_stream_tells_langfuse_when_its_completion_started(
    client: OpenAI, clew_spans: SpanCapture
) -> None:
    stream = client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}], stream=True
    )
    for _ in stream:
        pass
    (span,) = clew_spans.spans
    attrs = dict(span.attributes or {})
    started = datetime.fromisoformat(attrs[a.LANGFUSE_OBSERVATION_COMPLETION_START_TIME])
    assert span.start_time is not None and span.end_time is not None
    assert span.start_time <= started.timestamp() * 1e9 <= span.end_time + 1000


def test_omitted_inputs_and_outputs_are_omitted_under_every_name(
    client: OpenAI, clew_spans: SpanCapture
) -> None:
    @clew.trace(log_omit=True)
    def secret(text: str) -> str:
        client.chat.completions.create(
            model="gpt-4o-mini",
            messages=[{"role": "user", "content": f"a b c d e f g {text}"}],
        )
        return "the-output-canary"

    secret("the-input-canary")
    for span in clew_spans.spans:
        attrs = span.attributes or {}
        for key in (a.INPUT_VALUE, a.OUTPUT_VALUE, a.INPUT_MIME_TYPE, a.OUTPUT_MIME_TYPE):
            assert key not in attrs
        text = json.dumps({k: str(v) for k, v in attrs.items()})
        assert "canary" not in text


def test_score_spans_are_evaluators(clew_spans: SpanCapture) -> None:
    @clew.trace(eval_funcs=[lambda log: 1.0])
    def scored() -> str:
        return "x"

    scored()
    clew.flush()
    score = next(s for s in clew_spans.spans if s.name.startswith("score "))
    attrs = score.attributes or {}
    assert attrs[a.OPENINFERENCE_SPAN_KIND] == "EVALUATOR"
    assert attrs[a.LANGFUSE_OBSERVATION_TYPE] == "evaluator"


def test_the_project_is_a_resource_attribute(clew_spans: SpanCapture) -> None:
    with clew.span("block"):
        pass
    resource = clew_spans.spans[0].resource.attributes
    assert resource[a.OPENINFERENCE_PROJECT_NAME] == resource["service.name"]


def test_clews_own_records_leave_the_copies_out(clew_spans: SpanCapture) -> None:
    @clew.trace(kind="tool", tags=["t"], metadata={"k": 1}, session_id="s")
    def tool(x: int) -> int:
        return x

    tool(1)
    record = span_to_record(clew_spans.spans[0])
    assert record["inputs"] == {"x": 1} and record["output"] == 1
    assert record["attributes"] == {a.CLEW_KIND: "tool"}


@pytest.mark.parametrize("value", ["genai", ["genai"], []])
def test_genai_writes_only_gen_ai_and_clew_keys(
    value: Any, client: OpenAI, clew_spans: SpanCapture
) -> None:
    clew.configure(otel_conventions=value)
    try:

        @clew.trace(
            kind="tool", tags=["t"], metadata={"k": 1}, session_id="s", end_user_identifier="u"
        )
        def tool(x: int) -> int:
            client.chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}]
            )
            return x

        tool(1)
    finally:
        clew.configure(otel_conventions="all")
    for span in clew_spans.spans:
        keys = set(span.attributes or {})
        assert all(k.startswith(("clew.", "gen_ai.", "openai.", "server.")) for k in keys), keys
    llm = _attrs(clew_spans, "chat gpt-4o-mini")
    assert llm[a.GEN_AI_CONVERSATION_ID] == "s"  # a gen_ai key: written whatever the switch


def test_one_family_alone(clew_spans: SpanCapture) -> None:
    clew.configure(otel_conventions="openinference")
    try:
        with clew.span("oi", tags=["t"]):
            pass
        clew.configure(otel_conventions=["langfuse"])
        with clew.span("lf", tags=["t"], session_id="s"):
            pass
    finally:
        clew.configure(otel_conventions="all")
    oi, lf = _attrs(clew_spans, "oi"), _attrs(clew_spans, "lf")
    assert oi[a.TAG_TAGS] == ("t",) and not any(k.startswith("langfuse.") for k in oi)
    assert lf[a.LANGFUSE_TRACE_TAGS] == ("t",) and a.TAG_TAGS not in lf
    assert a.OPENINFERENCE_SPAN_KIND not in lf
    assert lf[a.SESSION_ID] == "s"  # Langfuse reads the OpenInference session key


def test_the_switch_is_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from clew.config import load_config

    for text, families in [
        ("all", ("openinference", "langfuse")),
        ("genai", ()),
        ("langfuse, openinference", ("openinference", "langfuse")),
        ("LANGFUSE", ("langfuse",)),
    ]:
        config = load_config(env={"CLEW_OTEL_CONVENTIONS": text})
        assert config.otel_conventions == families
    assert load_config(env={}).otel_conventions == ("openinference", "langfuse")


def test_a_bad_switch_value(caplog: pytest.LogCaptureFixture) -> None:
    from clew.config import load_config

    config = load_config(env={"CLEW_OTEL_CONVENTIONS": "phoenix"})  # logged, then ignored
    assert config.otel_conventions == ("openinference", "langfuse")
    assert "CLEW_OTEL_CONVENTIONS" in caplog.text
    with pytest.raises(ConfigurationError, match=r"unknown conventions 'phoenix'.*genai"):
        clew.configure(otel_conventions="phoenix")
