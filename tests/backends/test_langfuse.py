"""clew's spans as Langfuse would show them. Langfuse cannot run here, so its published
attribute table (langfuse.com, "OpenTelemetry (OTEL) for LLM Observability", section
"Attribute Mapping") is written down below as rules (:func:`langfuse_view`), and the support
app's spans are read through them: what the user sees is the trace's user, session, tags and
metadata, and each observation's type, input, output, model, usage, cost and level.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest
import support_app
from openai import OpenAI
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import StatusCode

import clew
from clew.testing import SpanCapture, capture_spans

# --- the published table, as rules --------------------------------------------------------
OBSERVATION_TYPES = (
    "span",
    "generation",
    "event",
    "embedding",
    "agent",
    "tool",
    "chain",
    "retriever",
    "guardrail",
    "evaluator",
)
MODEL_KEYS = (
    "langfuse.observation.model.name",
    "gen_ai.request.model",
    "gen_ai.response.model",
    "llm.model_name",
    "model",
)


def _first(attrs: Mapping[str, Any], *keys: str) -> Any:
    return next((attrs[k] for k in keys if k in attrs), None)


def _prefixed(attrs: Mapping[str, Any], prefix: str) -> dict[str, Any]:
    return {k[len(prefix) :]: v for k, v in attrs.items() if k.startswith(prefix)}


@dataclass
class Observation:
    name: str
    type: str
    input: Any
    output: Any
    metadata: dict[str, Any]
    level: str
    status_message: str | None
    model: str | None
    model_parameters: dict[str, Any]
    usage: dict[str, Any]
    cost: dict[str, Any] | None
    completion_start_time: str | None


@dataclass
class Trace:
    name: str | None = None
    user_id: str | None = None
    session_id: str | None = None
    tags: set[str] = field(default_factory=set)
    metadata: dict[str, Any] = field(default_factory=dict)
    observations: dict[str, list[Observation]] = field(default_factory=dict)


def _observation(span: ReadableSpan) -> Observation:
    attrs = dict(span.attributes or {})
    explicit = attrs.get("langfuse.observation.type")
    if explicit in OBSERVATION_TYPES:  # a recognised explicit type always wins
        kind = explicit
    elif _first(attrs, *MODEL_KEYS) is not None:  # then (after other conventions) a model
        kind = "generation"
    else:
        kind = "span"
    failed = span.status.status_code is StatusCode.ERROR
    cost = attrs.get("langfuse.observation.cost_details")
    return Observation(
        name=span.name,
        type=kind,
        input=_first(attrs, "langfuse.observation.input", "gen_ai.prompt", "input.value"),
        output=_first(attrs, "langfuse.observation.output", "gen_ai.completion", "output.value"),
        metadata=_prefixed(attrs, "langfuse.observation.metadata."),
        level=attrs.get("langfuse.observation.level") or ("ERROR" if failed else "DEFAULT"),
        status_message=attrs.get("langfuse.observation.status_message") or span.status.description,
        model=_first(attrs, *MODEL_KEYS),
        model_parameters=_prefixed(attrs, "gen_ai.request."),
        usage=_prefixed(attrs, "gen_ai.usage."),
        cost=json.loads(cost)
        if cost
        else ({"total": attrs["gen_ai.usage.cost"]} if "gen_ai.usage.cost" in attrs else None),
        completion_start_time=attrs.get("langfuse.observation.completion_start_time"),
    )


def langfuse_view(spans: Sequence[ReadableSpan]) -> Trace:
    """One trace as Langfuse's attribute table maps it. Trace-level attributes may sit on any
    span of the trace; the root span gives the trace its name and (as its observation
    metadata) its metadata."""
    trace = Trace()
    for span in spans:
        attrs = dict(span.attributes or {})
        root = span.parent is None
        trace.user_id = _first(attrs, "langfuse.user.id", "user.id") or trace.user_id
        trace.session_id = _first(attrs, "langfuse.session.id", "session.id") or trace.session_id
        trace.tags |= set(attrs.get("langfuse.trace.tags", ()))
        trace.metadata.update(_prefixed(attrs, "langfuse.trace.metadata."))
        observation = _observation(span)
        if root:
            trace.name = attrs.get("langfuse.trace.name") or span.name
            trace.metadata.update(observation.metadata)
        trace.observations.setdefault(span.name, []).append(observation)
    return trace


# --- clew's spans through them ----------------------------------------------------------------
@pytest.fixture(scope="module")
def client() -> Iterator[OpenAI]:
    with support_app.fake_openai() as openai:
        yield openai


def _support_trace(client: OpenAI) -> list[ReadableSpan]:
    support_app.client = client
    with capture_spans() as captured:
        support_app.answer(support_app.QUESTION)
    return list(captured.spans)


def test_the_trace_has_its_user_session_tags_and_metadata(client: OpenAI) -> None:
    trace = langfuse_view(_support_trace(client))
    assert trace.name == "answer"
    assert trace.user_id == support_app.USER
    assert trace.session_id == support_app.SESSION
    assert trace.tags == set(support_app.TAGS)
    assert trace.metadata == {"tier": "gold", "channel": "chat"}


def test_each_observation_has_its_type_input_and_output(client: OpenAI) -> None:
    spans = _support_trace(client)
    trace = langfuse_view(spans)
    types = {name: [o.type for o in found] for name, found in trace.observations.items()}
    assert types == {
        "answer": ["agent"],
        "retrieve": ["retriever"],
        "chat gpt-4o-mini": ["generation", "generation"],
        "get_weather": ["tool"],
    }
    for span in spans:
        attrs = span.attributes or {}
        (seen,) = [o for o in trace.observations[span.name] if o.input == attrs["input.value"]]
        assert seen.input == attrs.get("clew.inputs", attrs.get("gen_ai.input.messages"))
        assert seen.output == attrs.get("clew.output", attrs.get("gen_ai.output.messages"))
        assert seen.level == "DEFAULT"


def test_a_generation_has_model_parameters_usage_and_cost(client: OpenAI) -> None:
    spans = _support_trace(client)
    for span in spans:
        if not span.name.startswith("chat "):
            continue
        attrs = span.attributes or {}
        (generation,) = [
            o
            for o in langfuse_view([span]).observations[span.name]
            if o.output == attrs["gen_ai.output.messages"]
        ]
        assert generation.model == "gpt-4o-mini"
        assert generation.model_parameters["model"] == "gpt-4o-mini"
        assert generation.usage["input_tokens"] == attrs["gen_ai.usage.input_tokens"] > 0
        assert generation.usage["output_tokens"] == attrs["gen_ai.usage.output_tokens"] > 0
        assert generation.cost == {"total": attrs["gen_ai.usage.cost.amount"]}


def test_a_stream_has_its_completion_start_time(client: OpenAI, clew_spans: SpanCapture) -> None:
    stream = client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}], stream=True
    )
    for _ in stream:
        pass
    (generation,) = langfuse_view(clew_spans.spans).observations["chat gpt-4o-mini"]
    assert generation.type == "generation"
    assert generation.completion_start_time is not None


def test_a_failure_is_an_error_level_with_its_message(clew_spans: SpanCapture) -> None:
    @clew.trace(kind="tool")
    def lookup() -> None:
        raise LookupError("no such order")

    with pytest.raises(LookupError):
        lookup()
    (seen,) = langfuse_view(clew_spans.spans).observations["lookup"]
    assert (seen.type, seen.level) == ("tool", "ERROR")
    assert seen.status_message == "LookupError: no such order"


def test_omitted_content_reaches_langfuse_as_nothing(client: OpenAI) -> None:
    @clew.trace(log_omit=True, session_id="s")
    def private(secret: str) -> str:
        client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": secret}]
        )
        return secret

    with capture_spans() as captured:
        private("a secret")
    trace = langfuse_view(captured.spans)
    assert trace.session_id == "s"
    for found in trace.observations.values():
        for observation in found:
            assert observation.input is None and observation.output is None


def test_with_gen_ai_keys_alone_langfuse_loses_the_types_user_session_and_tags(
    client: OpenAI,
) -> None:
    clew.configure(otel_conventions="genai")
    try:
        trace = langfuse_view(_support_trace(client))
    finally:
        clew.configure(otel_conventions="all")
    types = {name: {o.type for o in found} for name, found in trace.observations.items()}
    assert types["chat gpt-4o-mini"] == {"generation"}  # a model attribute is enough
    assert types["get_weather"] == types["answer"] == {"span"}
    assert trace.user_id is None and trace.session_id is None and trace.tags == set()
    assert all(o.input is None for found in trace.observations.values() for o in found)
