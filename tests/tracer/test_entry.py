"""One way into a span: ``@clew.trace`` and ``clew.span`` take the same options and make the
same decisions (sampled out, omitted, stitched), and a sampled-out root costs next to nothing
yet carries a proper not-sampled context for OpenTelemetry children and propagation."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import pytest
from opentelemetry import propagate
from opentelemetry import trace as trace_api

import clew
from clew.errors import ConfigurationError
from clew.log_record import root_trace_id_of
from clew.testing import SpanCapture
from clew.tracer import entry
from clew.tracer.lean_span import _CACHE, LEAN_CACHE_SIZE
from clew.tracer.live import LIVE_KEY, current_context
from clew.tracer.options import OPTION_NAMES, SpanSpec

SAMPLE_OPTIONS: dict[str, Any] = {
    "kind": "retriever",
    "tags": ["a", "b"],
    "metadata": {"k": 1},
    "end_user_identifier": "u-1",
    "session_id": "s-1",
    "target": {"expected": 2},
    "deployment_id": "d-1",
    "log_omit_inputs": True,
    "log_omit_outputs": True,
    "log_omit": True,
    "log_sample_rate": 1.0,
    "eval_funcs": [lambda log: None],  # scores nothing: no score span joins the comparison
    "apply_eval_frac": 0.5,
}


def test_the_sample_options_cover_every_option() -> None:
    assert set(SAMPLE_OPTIONS) == set(OPTION_NAMES)


@pytest.mark.parametrize("option", OPTION_NAMES)
def test_trace_and_span_record_each_option_the_same(option: str, clew_spans: SpanCapture) -> None:
    options = {option: SAMPLE_OPTIONS[option]}

    @clew.trace(name="same", **options)
    def traced() -> None:
        return None

    traced()
    with clew.span("same", **options):
        pass
    by_trace, by_span = (dict(s.attributes or {}) for s in clew_spans.spans)
    for attrs in (by_trace, by_span):
        attrs.pop("clew.execution_order")
    assert by_trace == by_span


def test_an_unknown_option_names_the_options() -> None:
    with pytest.raises(ConfigurationError, match=r"unknown span option.*'tagz'.*log_sample_rate"):
        clew.trace(tagz=["x"])(lambda: None)  # type: ignore[call-overload]
    with pytest.raises(ConfigurationError, match=r"unknown span option.*'tagz'"):
        clew.span("x", tagz=["x"])  # type: ignore[call-arg]


@pytest.mark.parametrize("how", ["configure", "root rate", "nested rate"])
def test_a_span_block_in_a_dropped_trace_runs_untraced(how: str, clew_spans: SpanCapture) -> None:
    if how == "configure":
        clew.configure(sample_rate=0.0)
    root_rate = 0.0 if how == "root rate" else None
    inner_rate = 0.0 if how == "nested rate" else None

    @clew.trace(log_sample_rate=root_rate)
    def root() -> list[bool]:
        @clew.trace(log_sample_rate=inner_rate)
        def middle() -> list[bool]:
            seen = []
            with clew.span("block") as s:
                s.set_output("ignored")
                seen.append(s.recording)

            async def task() -> bool:
                async with clew.span("async block") as a:
                    return a.recording

            seen.append(asyncio.run(task()))
            return seen

        return middle()

    assert root() == [False, False]
    exported = [r["name"] for r in clew_spans.records()]
    assert exported == ([] if how != "nested rate" else ["root"])


def test_open_span_refuses_to_open_under_a_dropped_parent() -> None:
    @clew.trace(log_sample_rate=0.0)
    def dropped() -> Any:
        context = current_context()
        parent = context.get(LIVE_KEY)
        return parent, entry.open_span(SpanSpec("child"), context, parent)

    parent, opened = dropped()
    assert parent is not None and not parent.recording
    assert opened is None


def _w3c(context: Any = None) -> str:
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier["traceparent"]


def test_a_dropped_root_carries_a_not_sampled_context() -> None:
    tracer = trace_api.get_tracer("app")

    @clew.trace(log_sample_rate=0.0)
    def dropped() -> dict[str, Any]:
        span = trace_api.get_current_span()
        first = span.get_span_context()
        with tracer.start_as_current_span("http call") as child:
            child_context = child.get_span_context()
            child_recording = child.is_recording()
        return {
            "first": first,
            "again": span.get_span_context(),
            "child": child_context,
            "child recording": child_recording,
            "traceparent": _w3c(),
            "root id": clew.get_root_trace_id(),
        }

    seen = dropped()
    first = seen["first"]
    assert first.is_valid and not first.trace_flags.sampled
    assert seen["again"] is first  # made once, the first time it was asked for
    assert first.span_id == first.trace_id & ((1 << 64) - 1)  # a root's span id rule
    assert seen["child"].trace_id == first.trace_id and not seen["child recording"]
    assert seen["traceparent"].endswith(f"{first.trace_id:032x}-{first.span_id:016x}-00")
    assert seen["root id"] == root_trace_id_of(first.trace_id)


def test_a_dropped_root_under_an_opentelemetry_span_joins_its_trace() -> None:
    tracer = trace_api.get_tracer("app")

    @clew.trace(log_sample_rate=0.0)
    def dropped() -> Any:
        return trace_api.get_current_span().get_span_context()

    with tracer.start_as_current_span("request") as request:
        inner = dropped()
    assert inner.trace_id == request.get_span_context().trace_id
    assert inner.span_id != request.get_span_context().span_id
    assert not inner.trace_flags.sampled


def test_a_root_dropped_by_its_id_looks_like_one_dropped_by_rate_zero(
    clew_spans: SpanCapture,
) -> None:
    @clew.trace(log_sample_rate=0.5)
    def half() -> Any:
        live = clew.current_span()
        assert live is not None
        return live.recording, trace_api.get_current_span().get_span_context()

    random.seed(7)
    outcomes = [half() for _ in range(40)]
    dropped = [context for recording, context in outcomes if not recording]
    kept = [context for recording, context in outcomes if recording]
    assert dropped and kept
    for context in dropped:
        assert context.is_valid and not context.trace_flags.sampled
        assert context.span_id == context.trace_id & ((1 << 64) - 1)
    assert len(clew_spans.records()) == len(kept)


def test_the_lean_class_cache_stays_bounded(clew_spans: SpanCapture) -> None:
    from opentelemetry.sdk.trace import TracerProvider

    from clew import setup
    from clew.tracer.id_generator import ClewIdGenerator
    from clew.tracer.sdk_shortcut import SpanStarter

    starters = []
    for i in range(LEAN_CACHE_SIZE + 5):
        provider = TracerProvider()
        tracer = provider.get_tracer(f"t{i}")
        ids = ClewIdGenerator(provider.id_generator)
        tracer.id_generator = ids  # type: ignore[attr-defined]
        starters.append(SpanStarter(tracer, ids))  # type: ignore[arg-type]
    assert len(_CACHE) <= LEAN_CACHE_SIZE
    setup.configure()  # clew's own tracer gets its classes back
    with clew.span("after"):
        pass
    assert [r["name"] for r in clew_spans.records()] == ["after"]
