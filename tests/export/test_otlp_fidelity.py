"""Spans exported over OTLP/HTTP arrive at a real receiver exactly as the SDK recorded them."""

from __future__ import annotations

from typing import Any

from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span as ProtoSpan
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Link, SpanKind, Status, StatusCode

from clew import attributes as a
from clew.testing.otlp_receiver import OtlpHttpReceiver

from .conftest import Harness

ATTRIBUTES: dict[str, Any] = {
    a.GEN_AI_OPERATION_NAME: "chat",
    a.GEN_AI_PROVIDER_NAME: "openai",
    a.GEN_AI_REQUEST_MODEL: "gpt-4o-mini",
    a.GEN_AI_USAGE_INPUT_TOKENS: 1234,
    a.GEN_AI_USAGE_OUTPUT_TOKENS: 56,
    a.GEN_AI_USAGE_COST_AMOUNT: 0.000123,
    a.GEN_AI_RESPONSE_FINISH_REASONS: ("stop", "length"),
    a.GEN_AI_INPUT_MESSAGES: '[{"role": "user", "parts": [{"type": "text", "content": "hé ✓"}]}]',
    a.CLEW_TAGS: ("rag", "prod"),
    a.CLEW_USAGE_ESTIMATED: False,
    a.CLEW_INPUTS_OMITTED: True,
    "clew.test.ints": (1, -2, 2**62),
    "clew.test.floats": (0.5, -1.25),
    "clew.test.bools": (True, False),
    "clew.test.empty": "",
    "clew.test.big_negative": -(2**63),
}


def _value(v: AnyValue) -> Any:
    kind = v.WhichOneof("value")
    if kind == "array_value":
        return tuple(_value(x) for x in v.array_value.values)
    return getattr(v, kind)


def _attrs(kvs: Any) -> dict[str, Any]:
    return {kv.key: _value(kv.value) for kv in kvs}


def _kv(kvs: list[KeyValue]) -> dict[str, Any]:
    return _attrs(kvs)


def _check(sent: ReadableSpan, got: ProtoSpan) -> None:
    ctx = sent.get_span_context()
    assert got.trace_id == ctx.trace_id.to_bytes(16, "big")
    assert got.span_id == ctx.span_id.to_bytes(8, "big")
    if sent.parent is None:
        assert got.parent_span_id == b""
    else:
        assert got.parent_span_id == sent.parent.span_id.to_bytes(8, "big")
    assert got.name == sent.name
    assert got.start_time_unix_nano == sent.start_time
    assert got.end_time_unix_nano == sent.end_time
    assert got.kind == sent.kind.value + 1  # OTLP enum counts UNSPECIFIED as 0
    assert _attrs(got.attributes) == dict(sent.attributes or {})
    assert got.status.code == sent.status.status_code.value
    assert got.status.message == (sent.status.description or "")
    assert [(e.name, e.time_unix_nano, _attrs(e.attributes)) for e in got.events] == [
        (e.name, e.timestamp, dict(e.attributes or {})) for e in sent.events
    ]
    assert [(lk.trace_id, lk.span_id, _attrs(lk.attributes)) for lk in got.links] == [
        (
            lk.context.trace_id.to_bytes(16, "big"),
            lk.context.span_id.to_bytes(8, "big"),
            dict(lk.attributes or {}),
        )
        for lk in sent.links
    ]


def _record_trace(harness: Harness, receiver: OtlpHttpReceiver) -> list[ReadableSpan]:
    pipeline = harness.otlp(receiver.url)
    tracer = harness.tracer(pipeline, service="support-bot")
    memory = InMemorySpanExporter()
    processor: SpanProcessor = SimpleSpanProcessor(memory)
    tracer_provider = harness.providers[-1]
    tracer_provider.add_span_processor(processor)
    with tracer.start_as_current_span("answer", kind=SpanKind.INTERNAL) as root:
        root.set_attributes(ATTRIBUTES)
        with tracer.start_as_current_span("chat gpt-4o-mini", kind=SpanKind.CLIENT) as llm:
            llm.add_event("gen_ai.content.prompt", {"gen_ai.prompt": "hi", "n": 2})
            llm.set_attribute(a.ERROR_TYPE, "RateLimitError")
            llm.set_status(Status(StatusCode.ERROR, "429 from provider"))
        with tracer.start_as_current_span(
            "retrieve", links=[Link(llm.get_span_context(), {"why": "retry-of"})]
        ) as child:
            child.set_status(Status(StatusCode.OK))
    assert pipeline.flush(5.0)
    return list(memory.get_finished_spans())


def test_every_attribute_id_status_event_and_link_arrives_intact(
    harness: Harness, receiver: OtlpHttpReceiver
) -> None:
    sent = _record_trace(harness, receiver)
    got = {s.name: s for s in receiver.spans()}
    assert sorted(got) == sorted(s.name for s in sent)
    for span in sent:
        _check(span, got[span.name])


def test_resource_names_the_service_and_scope_is_kept(
    harness: Harness, receiver: OtlpHttpReceiver
) -> None:
    _record_trace(harness, receiver)
    (resource_spans,) = receiver.resource_spans()
    resource = _kv(list(resource_spans.resource.attributes))
    assert resource["service.name"] == "support-bot"
    assert resource["telemetry.sdk.name"] == "opentelemetry"
    assert resource["telemetry.sdk.language"] == "python"
    assert "telemetry.sdk.version" in resource
    (scope_spans,) = resource_spans.scope_spans
    assert (scope_spans.scope.name, scope_spans.scope.version) == ("clew.tests", "1.2.3")


def test_request_is_protobuf_with_configured_headers(
    harness: Harness, receiver: OtlpHttpReceiver, clean_otlp_env: Any
) -> None:
    clean_otlp_env.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", receiver.url)
    clean_otlp_env.setenv("OTEL_EXPORTER_OTLP_HEADERS", "x-api-key=s%3Dcret,x-team=ml")
    clean_otlp_env.setenv("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip")
    from clew.setup import create_exporter

    pipeline = harness.pipeline(create_exporter("otlp"))
    tracer = harness.tracer(pipeline)
    tracer.start_span("one").end()
    assert pipeline.flush(5.0)
    (request,) = receiver.requests
    assert request.headers["content-type"] == "application/x-protobuf"
    assert request.headers["content-encoding"] == "gzip"
    assert request.headers["x-api-key"] == "s=cret"
    assert request.headers["x-team"] == "ml"
    assert receiver.span_count() == 1
