"""clew's short path for SDK spans gives what ``Tracer.start_span`` gives, or is not taken."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from opentelemetry import trace as trace_api
from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, SpanLimits, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace import Span as SdkSpan
from opentelemetry.sdk.trace.id_generator import RandomIdGenerator
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ALWAYS_ON, ParentBased, TraceIdRatioBased
from opentelemetry.trace import (
    NonRecordingSpan,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    TraceFlags,
    TraceState,
)

from clew.tracer.id_generator import ClewIdGenerator
from clew.tracer.sdk_shortcut import (
    LIVE_KEY,
    SpanStarter,
    attach,
    context_reader,
    detach,
    end_span,
    quiet_processor,
)

_LOW64 = (1 << 64) - 1


class RecordingProcessor(SpanProcessor):
    """A user's processor on the provider: what it is handed, in order."""

    def __init__(self) -> None:
        self.started: list[SdkSpan] = []
        self.ended: list[ReadableSpan] = []

    def on_start(self, span: SdkSpan, parent_context: Context | None = None) -> None:
        self.started.append(span)

    def on_end(self, span: ReadableSpan) -> None:
        self.ended.append(span)


def make_starter(**provider_args: Any) -> tuple[SpanStarter, RecordingProcessor]:
    provider = TracerProvider(**provider_args)
    processor = RecordingProcessor()
    provider.add_span_processor(processor)
    tracer = provider.get_tracer("clew", "0.1.0")
    ids = ClewIdGenerator(provider.id_generator)
    tracer.id_generator = ids  # type: ignore[attr-defined]
    return SpanStarter(tracer, ids), processor  # type: ignore[arg-type]


def described(span: trace_api.Span) -> dict[str, Any]:
    """Everything about a span but its random ids and times."""
    ctx = span.get_span_context()
    if not isinstance(span, SdkSpan):
        return {
            "type": type(span).__name__,
            "flags": int(ctx.trace_flags),
            "trace_state": ctx.trace_state.to_header(),
            "remote": ctx.is_remote,
        }
    parent = span.parent
    return {
        "name": span.name,
        "kind": span.kind,
        "flags": int(ctx.trace_flags),
        "trace_state": ctx.trace_state.to_header(),
        "remote": ctx.is_remote,
        "valid": ctx.is_valid,
        "root_span_id_rule": parent is None and ctx.span_id == ctx.trace_id & _LOW64,
        "parent": None if parent is None else (parent.trace_id, parent.span_id, parent.is_remote),
        "attributes": dict(span.attributes or {}),
        "dropped_attributes": span.dropped_attributes,
        "events": [(e.name, dict(e.attributes or {})) for e in span.events],
        "links": [(link.context.span_id, dict(link.attributes or {})) for link in span.links],
        "status": (span.status.status_code, span.status.description),
        "resource": dict(span.resource.attributes),
        "scope": (span.instrumentation_scope.name, span.instrumentation_scope.version),
        "started": span.start_time is not None,
        "recording": span.is_recording(),
    }


def remote_parent(sampled: bool) -> Context:
    flags = TraceFlags(TraceFlags.SAMPLED if sampled else TraceFlags.DEFAULT)
    ctx = SpanContext(
        0x0AF7651916CD43DD8448EB211C80319C,
        0xB7AD6B7169203331,
        is_remote=True,
        trace_flags=flags,
        trace_state=TraceState([("vendor", "value")]),
    )
    return trace_api.set_span_in_context(NonRecordingSpan(ctx))


ATTRIBUTES = {"clew.depth": 0, "clew.tags": ("a", "b"), "clew.inputs": '{"q":"hi"}'}


@pytest.mark.parametrize(
    "parent",
    ["root", "local parent", "remote sampled parent", "remote unsampled parent"],
)
@pytest.mark.parametrize("kind", [SpanKind.INTERNAL, SpanKind.CLIENT])
def test_short_path_gives_the_sdks_span(parent: str, kind: SpanKind) -> None:
    starter, _ = make_starter()
    assert starter.short_path
    results = []
    for start in (starter.start, starter._start_sdk):
        context = None
        outer = None
        if parent == "local parent":
            outer = start("outer", None, SpanKind.INTERNAL, {}, None)
            context = trace_api.set_span_in_context(outer)
        elif parent.startswith("remote"):
            context = remote_parent(sampled="unsampled" not in parent)
        span = start("work", context, kind, dict(ATTRIBUTES), None)
        if outer is not None:
            assert span.get_span_context().trace_id == outer.get_span_context().trace_id
            assert span.parent.span_id == outer.get_span_context().span_id  # type: ignore[attr-defined]
            described_span = described(span)
            described_span["parent"] = "outer"
        else:
            described_span = described(span)
        results.append(described_span)
    assert results[0] == results[1]


def test_a_preset_trace_id_is_used_for_a_root_on_both_paths() -> None:
    starter, _ = make_starter()
    trace_id = 0x1234567890ABCDEF1122334455667788
    for start in (starter.start, starter._start_sdk):
        ctx = start("root", None, SpanKind.INTERNAL, {}, trace_id).get_span_context()
        assert (ctx.trace_id, ctx.span_id) == (trace_id, 0x1122334455667788)


def test_always_on_sampler_records_under_an_unsampled_parent_on_both_paths() -> None:
    starter, _ = make_starter(sampler=ALWAYS_ON)
    assert starter.short_path
    results = [
        described(start("work", remote_parent(sampled=False), SpanKind.INTERNAL, {}, None))
        for start in (starter.start, starter._start_sdk)
    ]
    assert results[0] == results[1]
    assert results[0]["recording"]


@pytest.mark.parametrize(
    "provider_args",
    [
        {"sampler": TraceIdRatioBased(0.5)},
        {"sampler": ALWAYS_OFF},
        {"sampler": ParentBased(ALWAYS_ON, remote_parent_not_sampled=ALWAYS_ON)},
    ],
    ids=["ratio", "always-off", "custom-parent-based"],
)
def test_a_sampler_of_the_users_sends_spans_through_the_sdk(provider_args: dict[str, Any]) -> None:
    starter, _ = make_starter(**provider_args)
    assert not starter.short_path
    assert starter.start == starter._start_sdk


def test_attribute_limits_are_applied_as_the_sdk_applies_them() -> None:
    limits = SpanLimits(max_span_attributes=2, max_span_attribute_length=4)
    starter, _ = make_starter(span_limits=limits)
    assert starter.short_path
    results = [
        described(start("work", None, SpanKind.INTERNAL, dict(ATTRIBUTES), None))
        for start in (starter.start, starter._start_sdk)
    ]
    assert results[0] == results[1]
    assert results[0]["dropped_attributes"] == 1
    assert all(len(v) <= 4 for v in results[0]["attributes"].values() if isinstance(v, str))


def test_processors_see_each_span_start_and_end_once(caplog: pytest.LogCaptureFixture) -> None:
    starter, processor = make_starter()
    span = starter.start("work", None, SpanKind.INTERNAL, {}, None)
    assert processor.started == [span]
    end_span(span)
    with caplog.at_level(logging.WARNING):
        end_span(span)
    assert len(processor.ended) == 1
    assert processor.ended[0].end_time is not None
    assert "ended span" in caplog.text


def test_an_ended_span_refuses_changes() -> None:
    starter, processor = make_starter()
    span = starter.start("work", None, SpanKind.INTERNAL, {"a": 1}, None)
    end_span(span)
    span.set_attribute("b", 2)
    span.set_status(Status(StatusCode.ERROR, "late"))
    span.add_event("late")
    ended = processor.ended[0]
    assert dict(ended.attributes or {}) == {"a": 1}
    assert ended.status.status_code is StatusCode.UNSET
    assert ended.events == ()


def test_events_and_links_of_one_span_stay_its_own() -> None:
    starter, processor = make_starter()
    first = starter.start("first", None, SpanKind.INTERNAL, {}, None)
    second = starter.start("second", None, SpanKind.INTERNAL, {}, None)
    first.record_exception(ValueError("boom"))
    first.add_link(second.get_span_context(), {"why": "follows"})
    end_span(first)
    end_span(second)
    third = starter.start("third", None, SpanKind.INTERNAL, {}, None)
    by_name = {span.name: span for span in processor.ended}
    assert [event.name for event in by_name["first"].events] == ["exception"]
    assert [dict(link.attributes or {}) for link in by_name["first"].links] == [{"why": "follows"}]
    assert by_name["second"].events == () and by_name["second"].links == ()
    assert third.events == () and third.links == ()  # type: ignore[attr-defined]


def test_the_sdks_own_ids_are_used_for_children() -> None:
    provider = TracerProvider(id_generator=RandomIdGenerator())
    tracer = provider.get_tracer("clew")
    ids = ClewIdGenerator(provider.id_generator)
    tracer.id_generator = ids  # type: ignore[attr-defined]
    starter = SpanStarter(tracer, ids)  # type: ignore[arg-type]
    parent = starter.start("parent", None, SpanKind.INTERNAL, {}, None)
    child = starter.start(
        "child", trace_api.set_span_in_context(parent), SpanKind.INTERNAL, {}, None
    )
    assert child.get_span_context().span_id != parent.get_span_context().span_id
    assert child.get_span_context().trace_id == parent.get_span_context().trace_id


def test_attach_makes_both_current_and_detach_restores() -> None:
    starter, _ = make_starter()
    span = starter.start("work", None, SpanKind.INTERNAL, {}, None)
    live = object()
    before = trace_api.get_current_span()
    token = attach(span, live)
    assert trace_api.get_current_span() is span
    assert context_reader()().get(LIVE_KEY) is live
    detach(token)
    assert trace_api.get_current_span() is before
    assert context_reader()().get(LIVE_KEY) is None


def test_detach_with_a_token_from_another_context_does_not_raise() -> None:
    import contextvars

    starter, _ = make_starter()
    span = starter.start("work", None, SpanKind.INTERNAL, {}, None)
    token = contextvars.copy_context().run(attach, span, None)
    detach(token)  # logged at debug level, never raised
    assert trace_api.get_current_span() is not span


@quiet_processor
class QuietProcessor(SpanProcessor):
    """Declared quiet: its on_start and _on_ending do nothing, so the fan-out may be skipped."""

    def __init__(self) -> None:
        self.ended: list[ReadableSpan] = []

    def on_end(self, span: ReadableSpan) -> None:
        self.ended.append(span)


def test_a_sole_quiet_processor_gets_spans_directly_and_others_join_at_any_time() -> None:
    provider = TracerProvider()
    quiet = QuietProcessor()
    provider.add_span_processor(quiet)
    tracer = provider.get_tracer("clew")
    ids = ClewIdGenerator(provider.id_generator)
    tracer.id_generator = ids  # type: ignore[attr-defined]
    starter = SpanStarter(tracer, ids)  # type: ignore[arg-type]
    end_span(starter.start("alone", None, SpanKind.INTERNAL, {}, None))
    late = RecordingProcessor()
    provider.add_span_processor(late)  # after the starter was made
    span = starter.start("shared", None, SpanKind.INTERNAL, {}, None)
    end_span(span)
    assert [s.name for s in quiet.ended] == ["alone", "shared"]
    assert late.started == [span]
    assert [s.name for s in late.ended] == ["shared"]
