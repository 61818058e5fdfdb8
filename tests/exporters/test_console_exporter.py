"""ConsoleSpanExporter: one tree per finished trace, printed when its top span ends."""

from __future__ import annotations

import io

from opentelemetry import trace as trace_api
from opentelemetry.sdk.trace.export import SpanExportResult
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

from clew.exporters.console import ConsoleSpanExporter
from span_factory import SpanFactory, root_id


def _console(**options: int) -> tuple[io.StringIO, SpanFactory, ConsoleSpanExporter]:
    stream = io.StringIO()
    exporter = ConsoleSpanExporter(stream=stream, **options)
    return stream, SpanFactory(exporter), exporter


def test_a_trace_is_printed_once_when_its_root_ends() -> None:
    stream, spans, _ = _console()

    with spans.span("answer") as root:
        with spans.span("retrieve"):
            pass
        with spans.span(
            "chat gpt-4o-mini",
            model="gpt-4o-mini",
            input_tokens=1200,
            output_tokens=56,
            cost=0.0012,
        ):
            pass
        assert stream.getvalue() == "", "nothing is printed before the root ends"

    text = stream.getvalue()
    assert text.count(f"trace {root_id(root)}") == 1
    lines = text.splitlines()
    assert lines[1].startswith("answer ")
    assert lines[2].startswith("├─ retrieve ")
    assert lines[3].startswith("└─ chat gpt-4o-mini ")
    assert "gpt-4o-mini  1,200 → 56  $0.0012" in lines[3]
    assert lines[4].startswith("total: 3 spans · ")
    spans.shutdown()
    assert stream.getvalue() == text, "shutdown prints nothing more"


def test_each_trace_gets_its_own_tree() -> None:
    stream, spans, _ = _console()

    roots = []
    for name in ("first", "second"):
        with spans.span(name) as root, spans.span("child"):
            pass
        roots.append(root_id(root))

    text = stream.getvalue()
    assert [text.count(f"trace {r}") for r in roots] == [1, 1]
    assert text.index("first") < text.index("second")
    assert text.count("└─ child") == 2


def test_a_failed_span_shows_its_error() -> None:
    stream, spans, _ = _console()

    with spans.span("answer"), spans.span("tool", error="ValueError: boom"):
        pass

    tool = next(line for line in stream.getvalue().splitlines() if "tool" in line)
    assert "✗" in tool and tool.endswith("ValueError: boom")
    assert "1 error" in stream.getvalue()


def test_a_clew_span_under_a_foreign_parent_is_printed_when_it_ends() -> None:
    stream, spans, _ = _console()
    foreign = SpanFactory()  # e.g. a web framework's request span, exported elsewhere

    with foreign.span("GET /chat"), spans.span("answer") as answer:
        pass

    assert answer.parent is not None
    assert stream.getvalue().count("answer") == 1


def test_a_span_continuing_a_remote_trace_is_printed_when_it_ends() -> None:
    stream, spans, _ = _console()
    remote = SpanContext(
        trace_id=0x0AF7651916CD43DD8448EB211C80319C,
        span_id=0xB7AD6B7169203331,
        is_remote=True,
        trace_flags=TraceFlags(TraceFlags.SAMPLED),
    )
    parent = NonRecordingSpan(remote)

    with trace_api.use_span(parent), spans.span("handler", attributes={"clew.depth": 3}):
        pass

    assert "trace 0af76519-16cd-43dd-8448-eb211c80319c" in stream.getvalue()


def test_a_span_ending_after_its_trace_was_printed_is_printed_alone() -> None:
    stream, spans, _ = _console()
    with spans.span("answer") as root:
        late = spans.open_span("stream chat")
    before = stream.getvalue()

    late.end()

    after = stream.getvalue()[len(before) :]
    assert after.startswith(f"trace {root_id(root)}")
    assert "stream chat" in after and "answer" not in after


def test_past_the_buffer_limit_the_oldest_unfinished_trace_is_dropped() -> None:
    stream, spans, exporter = _console(max_buffered_spans=3)
    old_root, new_root = spans.open_span("old"), spans.open_span("new")
    for root in (old_root, new_root):
        with spans.under(root), spans.span("a"), spans.span("b"):
            pass

    new_root.end()
    old_root.end()

    assert exporter.dropped_spans == 2
    old_tree, new_tree = (
        next(t for t in stream.getvalue().split("\n\n") if f"trace {root_id(r)}" in t)
        for r in (old_root, new_root)
    )
    assert "total: 3 spans" in new_tree
    assert "total: 1 span " in old_tree


def test_shutdown_prints_unfinished_traces() -> None:
    stream, spans, exporter = _console()
    unfinished = spans.open_span("still running")
    with spans.under(unfinished), spans.span("done"):
        pass
    assert stream.getvalue() == ""

    exporter.shutdown()

    assert f"trace {root_id(unfinished)}" in stream.getvalue()
    assert "done" in stream.getvalue()
    assert exporter.export(spans.spans()) is SpanExportResult.FAILURE


def test_a_broken_stream_does_not_fail_the_export() -> None:
    stream = io.StringIO()
    stream.close()
    exporter = ConsoleSpanExporter(stream=stream)
    spans = SpanFactory()
    with spans.span("answer"):
        pass

    assert exporter.export(spans.spans()) is SpanExportResult.SUCCESS
    assert exporter.force_flush() is True
