"""clew's OTLP encoder writes exactly what the official encoder does, for any spans.

The reference is ``encode_spans`` of ``opentelemetry-exporter-otlp-proto-common`` (installed
version). Every check decodes clew's bytes with the official protobuf classes and compares the
message with the official one field by field (its text form, for a readable diff), then the
bytes themselves: the official serializer is deterministic (no map fields; groups come in order
of first appearance), so the bytes must be equal too.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from typing import Any

import pytest
from google.protobuf import text_format
from hypothesis import given
from hypothesis import strategies as st
from opentelemetry.attributes import BoundedAttributes
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.util import BoundedList
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import Link, SpanContext, SpanKind, Status, StatusCode, TraceState

import clew
from clew.exporters.otlp_payload import otlp_encode

TRACE_ID = 0x0AF7651916CD43DD8448EB211C80319C
SPAN_ID = 0xB7AD6B7169203331
RESOURCE = Resource({"service.name": "support-bot"})
SCOPE = InstrumentationScope("clew", "1.0")


def assert_encodes_like_official(spans: Sequence[ReadableSpan]) -> None:
    official = encode_spans(spans)
    ours = otlp_encode(spans)
    decoded = ExportTraceServiceRequest()
    decoded.ParseFromString(ours)
    assert text_format.MessageToString(decoded) == text_format.MessageToString(official)
    assert decoded == official
    assert ours == official.SerializePartialToString()


def make_span(
    attributes: Any = None,
    *,
    parent: SpanContext | None = None,
    status: Status | None = None,
    kind: SpanKind = SpanKind.INTERNAL,
    events: Sequence[Event] = (),
    links: Sequence[Link] = (),
    context: SpanContext | None = None,
    resource: Resource = RESOURCE,
    scope: InstrumentationScope | None = SCOPE,
    name: str = "chat gpt-4o-mini",
) -> ReadableSpan:
    return ReadableSpan(
        name=name,
        context=context or SpanContext(TRACE_ID, SPAN_ID, is_remote=False),
        parent=parent,
        resource=resource,
        attributes=attributes,
        events=events,
        links=links,
        kind=kind,
        status=status or Status(StatusCode.UNSET),
        start_time=1_700_000_000_000_000_000,
        end_time=1_700_000_000_250_000_000,
        instrumentation_scope=scope,
    )


# --- generated spans ---------------------------------------------------------------------------

keys = st.text(max_size=12) | st.sampled_from(["gen_ai.request.model", "clew.tags", "é ✓"])
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**63), 2**63 - 1),
    st.integers(),  # beyond int64 too: the official encoder drops those, logged
    st.floats(),  # nan, inf, -0.0 included
    st.text(max_size=20),
    st.text(min_size=120, max_size=300),  # past the short-string cache
    st.sampled_from(["", "gpt-4o-mini", "\ud800"]),  # a lone surrogate cannot be encoded
    st.binary(max_size=8),
)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4).map(tuple)
        | st.lists(inner, max_size=3)
        | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=6,
)
odd_keys = st.sampled_from([None, b"bytes", 0])  # protobuf takes the first two, not the third
plain_attributes = st.dictionaries(
    keys | odd_keys, values | st.tuples(st.text(max_size=8)), max_size=6
)


@st.composite
def attribute_maps(draw: st.DrawFn) -> Any:
    """A plain dict, or the SDK's BoundedAttributes (cleaned, possibly with dropped ones)."""
    attributes = draw(plain_attributes)
    if draw(st.booleans()):
        return attributes
    return BoundedAttributes(draw(st.none() | st.integers(0, 4)), attributes, immutable=False)


trace_states = st.lists(
    st.tuples(
        st.sampled_from(["congo", "rojo", "k1", "tenant@sys"]), st.sampled_from(["t61", "x"])
    ),
    max_size=3,
    unique_by=lambda pair: pair[0],
).map(TraceState)
contexts = st.builds(
    SpanContext,
    trace_id=st.integers(0, 2**128 - 1),
    span_id=st.integers(0, 2**64 - 1),
    is_remote=st.booleans(),
    trace_state=st.none() | trace_states,
)
times = st.none() | st.integers(0, 2**64 - 1)
events = st.builds(Event, name=st.text(max_size=8), attributes=attribute_maps(), timestamp=times)
links = st.builds(Link, context=contexts, attributes=st.none() | attribute_maps())


@st.composite
def bounded(draw: st.DrawFn, items: st.SearchStrategy[Any]) -> Sequence[Any]:
    """A tuple, or the SDK's BoundedList (which counts the items it dropped)."""
    drawn = draw(st.lists(items, max_size=3))
    if draw(st.booleans()):
        return tuple(drawn)
    return BoundedList.from_seq(draw(st.integers(0, 3)), drawn)


statuses = st.builds(Status, st.sampled_from(StatusCode), st.none() | st.text(max_size=10))
resources = st.builds(
    Resource,
    st.dictionaries(st.sampled_from(["service.name", "host", "n"]), scalars, max_size=3),
    st.sampled_from(["", "https://opentelemetry.io/schemas/1.26.0"]),
)
scopes = st.none() | st.builds(
    InstrumentationScope,
    st.text(max_size=6),
    st.none() | st.text(max_size=4),
    st.none() | st.just("https://opentelemetry.io/schemas/1.26.0"),
    st.none() | st.dictionaries(st.text(max_size=4), scalars, max_size=2),
)


class RenamedSpan(ReadableSpan):
    """A span class overriding a reader: the encoder must go through the properties."""

    @property
    def name(self) -> str:
        return f"renamed {self._name}"


def twin(original: Any) -> Any:
    """An equal but distinct resource or scope: grouping is by value, as the official does."""
    if isinstance(original, Resource):
        return Resource(dict(original.attributes), original.schema_url)
    if isinstance(original, InstrumentationScope):
        attributes = dict(original.attributes) if original.attributes else None
        return InstrumentationScope(
            original.name, original.version, original.schema_url, attributes
        )
    return original


@st.composite
def batches(draw: st.DrawFn) -> list[ReadableSpan]:
    """Several spans spread over a few resources and scopes, twins included."""
    pool_resources = draw(st.lists(resources, min_size=1, max_size=3))
    pool_scopes = draw(st.lists(scopes, min_size=1, max_size=3))
    spans = []
    for _ in range(draw(st.integers(1, 5))):
        resource = draw(st.sampled_from(pool_resources))
        scope = draw(st.sampled_from(pool_scopes))
        if draw(st.booleans()):
            resource, scope = twin(resource), twin(scope)
        span_class = RenamedSpan if draw(st.integers(0, 5)) == 0 else ReadableSpan
        spans.append(
            span_class(
                name=draw(st.text(max_size=12)),
                context=draw(contexts),
                parent=draw(st.none() | contexts),
                resource=resource,
                attributes=draw(st.none() | attribute_maps()),
                events=draw(bounded(events)),
                links=draw(bounded(links)),
                kind=draw(st.sampled_from(SpanKind)),
                status=draw(statuses),
                start_time=draw(times),
                end_time=draw(times),
                instrumentation_scope=scope,
            )
        )
    return spans


@given(batches())
def test_any_batch_encodes_exactly_as_the_official_encoder(spans: list[ReadableSpan]) -> None:
    logging.disable(logging.CRITICAL)  # both encoders log each attribute they drop
    try:
        assert_encodes_like_official(spans)
        assert_encodes_like_official(spans)  # again, from the caches
    finally:
        logging.disable(logging.NOTSET)


# --- the cases one by one ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        "hé ✓ 日本語 🙂",
        "",
        "x" * 5000,
        0,
        -1,
        -(2**63),
        2**63 - 1,
        127,
        128,
        4095,
        4096,
        True,
        False,
        0.000179,
        -0.0,
        math.nan,
        math.inf,
        -math.inf,
        b"\x00\xff",
        None,
        ("stop",),
        ("stop", "length"),
        (1, "two", 3.0, True, None, b"6", ("nested",)),
        [],
        {"role": "user", "n": 2, "inner": {"ok": True}},
    ],
    ids=repr,
)
def test_each_kind_of_attribute_value(value: Any) -> None:
    assert_encodes_like_official([make_span({"key": value})])


@pytest.mark.parametrize(
    "value",
    [2**63, -(2**63) - 1, "\ud800", object()],
    ids=["2**63", "-2**63-1", "surrogate", "object"],
)
def test_a_value_the_official_encoder_cannot_encode_is_dropped_and_logged(
    value: Any, caplog: pytest.LogCaptureFixture
) -> None:
    span = make_span({"before": 1, "bad": value, "after": 2})
    with caplog.at_level(logging.ERROR, "clew.exporters.otlp_wire"):
        assert_encodes_like_official([span])
    assert [r.getMessage().split(":")[0] for r in caplog.records if "otlp_wire" in r.name] == [
        "Failed to encode key bad"
    ]


def test_dropped_attribute_events_and_link_counts() -> None:
    attributes = BoundedAttributes(2, {"a": 1, "b": 2, "c": 3}, immutable=False)
    event_attributes = BoundedAttributes(1, {"x": "1", "y": "2"}, immutable=False)
    span = make_span(
        attributes,
        events=BoundedList.from_seq(
            1, [Event("first", timestamp=1), Event("kept", event_attributes)]
        ),
        links=BoundedList.from_seq(
            1, [Link(SpanContext(1, 2, False)), Link(SpanContext(3, 4, True))]
        ),
    )
    assert (span.dropped_attributes, span.dropped_events, span.dropped_links) == (1, 1, 1)
    assert_encodes_like_official([span])


def test_events_and_links_with_attributes() -> None:
    remote = SpanContext(TRACE_ID, 7, is_remote=True, trace_state=TraceState([("k", "v")]))
    span = make_span(
        events=[Event("gen_ai.content.prompt", {"gen_ai.prompt": "hi", "n": 2}, timestamp=5)],
        links=[Link(remote, {"why": "retry-of"}), Link(SpanContext(1, 2, False))],
    )
    assert_encodes_like_official([span])


@pytest.mark.parametrize(
    "status",
    [
        Status(StatusCode.UNSET),
        Status(StatusCode.OK),
        Status(StatusCode.ERROR),
        Status(StatusCode.ERROR, "429 from provider ✗"),
        Status(StatusCode.OK, "the API drops a description unless ERROR"),
    ],
    ids=lambda status: f"{status.status_code.name} {status.description!r}",
)
def test_status_codes_and_descriptions(status: Status) -> None:
    assert_encodes_like_official([make_span(status=status)])


def test_a_description_kept_on_a_non_error_status_is_written_as_the_official_does() -> None:
    status = Status(StatusCode.OK)
    status._description = "kept by a subclass or older API"
    assert_encodes_like_official([make_span(status=status)])


@pytest.mark.parametrize("kind", list(SpanKind), ids=str)
def test_every_span_kind(kind: SpanKind) -> None:
    assert_encodes_like_official([make_span(kind=kind)])


@pytest.mark.parametrize(
    "parent",
    [None, SpanContext(TRACE_ID, 1, is_remote=False), SpanContext(TRACE_ID, 1, is_remote=True)],
    ids=["root", "local parent", "remote parent"],
)
def test_parent_and_its_remote_flag(parent: SpanContext | None) -> None:
    assert_encodes_like_official([make_span(parent=parent)])


def test_trace_state_and_zero_ids() -> None:
    state = TraceState([("congo", "t61rcWkgMzE"), ("rojo", "00f067aa0ba902b7")])
    context = SpanContext(0, 0, is_remote=False, trace_state=state)
    assert_encodes_like_official([make_span(context=context, name="")])


def test_spans_are_grouped_by_equal_resource_then_scope_in_order_of_first_appearance() -> None:
    other = Resource({"service.name": "worker"}, "https://opentelemetry.io/schemas/1.26.0")
    twin_resource = Resource({"service.name": "support-bot"})
    scoped = InstrumentationScope("openai", "1.2", "https://x", {"a": 1})
    spans = [
        make_span({"i": 0}, resource=other, scope=None),
        make_span({"i": 1}),
        make_span({"i": 2}, resource=twin_resource, scope=scoped),
        make_span({"i": 3}, resource=other, scope=scoped),
        make_span({"i": 4}, resource=twin_resource, scope=InstrumentationScope("clew", "1.0")),
    ]
    assert_encodes_like_official(spans)


def test_equal_values_of_different_types_are_not_confused() -> None:
    values = [(1,), (True,), (1.0,), ("1",), 1, True, 1.0, 0.0, -0.0, "1"]
    assert_encodes_like_official([make_span({"n": value}) for value in values])


def test_keys_as_protobuf_takes_them() -> None:
    odd_keys: dict[Any, int] = {"": 0, None: 1, b"bytes": 2, b"\xff": 3, 0: 4, (): 5, "ok": 6}
    assert_encodes_like_official([make_span(odd_keys)])


def test_a_span_class_overriding_a_reader_is_read_through_it() -> None:
    span = RenamedSpan("llm", SpanContext(TRACE_ID, SPAN_ID, False), resource=RESOURCE)
    assert_encodes_like_official([span])
    decoded = ExportTraceServiceRequest.FromString(otlp_encode([span]))
    assert decoded.resource_spans[0].scope_spans[0].spans[0].name == "renamed llm"


def test_an_empty_batch_is_an_empty_request() -> None:
    assert otlp_encode([]) == b"" == encode_spans([]).SerializePartialToString()


def test_more_distinct_values_than_the_caches_hold() -> None:
    spans = [make_span({f"key {i}": f"value {i}", "n": ("x",) * (i % 2)}) for i in range(5000)]
    assert_encodes_like_official(spans)
    assert_encodes_like_official(spans[:10])


def test_spans_of_an_sdk_tracer_provider() -> None:
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=RESOURCE, shutdown_on_exit=False)
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("clew.tests", "1.2.3")
    with tracer.start_as_current_span("root", kind=SpanKind.SERVER) as root:
        root.add_event("started", {"n": 1})
        with tracer.start_as_current_span("llm", links=[Link(root.get_span_context())]) as llm:
            llm.set_attributes({"gen_ai.request.model": "gpt-4o-mini", "tokens": 812})
            llm.set_status(Status(StatusCode.ERROR, "boom"))
    assert_encodes_like_official(memory.get_finished_spans())


def test_spans_of_clews_own_tracer(clew_spans: Any) -> None:
    with clew.span("retrieve", tags=["rag"]) as outer:
        outer.set_output(["doc one", "doc two"])
        with clew.span("inner"):
            pass
    assert_encodes_like_official(clew_spans.spans)
