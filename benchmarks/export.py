"""What exporting costs the application, and how fast spans leave, side by side in one run.

Run: ``python benchmarks/export.py [--spans N] [--rounds R] [--rss-spans N]``, or
``python benchmarks/export.py --encode-only [--encode-rounds R]`` for the encoders alone.

- App-side cost per span (µs, median round) of ending a typical LLM span into an
  :class:`~clew.exporters.pipeline.ExportPipeline` in front of: an exporter that discards
  (the baseline), a healthy OTLP/HTTP receiver (in another process, so its decoding does not
  compete for this one's GIL), a dead one (connection refused) and a hung one (accepts the
  connection, never answers). Rounds interleave the scenarios so machine noise hits them alike.
- OTLP encode throughput: spans per CPU second encoding batches of 512 LLM spans into an
  ``ExportTraceServiceRequest``, the official encoder (``encode_spans`` +
  ``SerializePartialToString``) and clew's (:mod:`clew.exporters.otlp_wire`) on the same spans,
  rounds interleaved; the median round of each.
- OTLP/HTTP export throughput: spans per second from ``on_end`` to the receiver's 200, with
  clew's encoder, and with the official one in its place.
- SQLite store throughput: spans per second written by ``SqliteSpanExporter``.
- Peak RSS growth over 200,000 spans with the receiver down (and hung), each in a fresh process.

Targets (issue 4): dead or hung ≤ 1.1× healthy; RSS growth < 50 MB; SQLite ≥ 50,000 spans/s.
Target (issue 15): clew's OTLP encoder ≥ 100,000 spans/s on one core.
"""

from __future__ import annotations

import argparse
import json
import logging
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, Tracer

from clew import attributes as a
from clew.exporters.base import PayloadExporter
from clew.exporters.otlp import create_otlp_exporter
from clew.exporters.otlp_payload import otlp_encode
from clew.exporters.pipeline import ExportPipeline

MESSAGES = json.dumps([{"role": "user", "parts": [{"type": "text", "content": "x" * 900}]}])


def llm_span(tracer: Tracer, i: int) -> None:
    """One span shaped like a clew LLM call: GenAI attributes and a ~1 kB prompt."""
    with tracer.start_as_current_span("chat gpt-4o-mini", kind=SpanKind.CLIENT) as span:
        span.set_attributes(
            {
                a.GEN_AI_OPERATION_NAME: "chat",
                a.GEN_AI_PROVIDER_NAME: "openai",
                a.GEN_AI_REQUEST_MODEL: "gpt-4o-mini",
                a.GEN_AI_RESPONSE_MODEL: "gpt-4o-mini-2024-07-18",
                a.GEN_AI_USAGE_INPUT_TOKENS: 812,
                a.GEN_AI_USAGE_OUTPUT_TOKENS: 96,
                a.GEN_AI_USAGE_COST_AMOUNT: 0.000179,
                a.GEN_AI_RESPONSE_FINISH_REASONS: ("stop",),
                a.GEN_AI_INPUT_MESSAGES: MESSAGES,
                a.CLEW_TAGS: ("bench",),
                a.CLEW_EXECUTION_ORDER: i,
            }
        )


class DiscardExporter(PayloadExporter):
    """Encodes nothing and sends nowhere: the pipeline's own cost."""

    payload_kind = "discard"

    def encode(self, spans: Sequence[ReadableSpan]) -> bytes:
        return b""

    def send(self, payload: bytes, timeout: float) -> None:
        return None


def tracer_for(pipeline: ExportPipeline) -> Tracer:
    provider = TracerProvider(
        resource=Resource.create({"service.name": "bench"}), shutdown_on_exit=False
    )
    provider.add_span_processor(pipeline)
    return provider.get_tracer("bench")


def hung_endpoint() -> tuple[socket.socket, str]:
    """A socket that completes TCP handshakes (backlog) but never accepts or answers."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    return sock, f"http://127.0.0.1:{sock.getsockname()[1]}/v1/traces"


def dead_endpoint() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1/traces"


class ReceiverProcess:
    """An OtlpHttpReceiver in a child process (``--serve``); asked for its count over stdin."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--serve"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        self.url = self.proc.stdout.readline().strip()

    def count(self) -> int:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write("count\n")
        self.proc.stdin.flush()
        return int(self.proc.stdout.readline())

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait(10)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


def serve() -> None:
    from clew.testing.otlp_receiver import OtlpHttpReceiver

    with OtlpHttpReceiver() as receiver:
        print(receiver.url, flush=True)
        for line in sys.stdin:
            if line.strip() == "count":
                print(receiver.span_count(), flush=True)


def app_side_costs(spans: int, rounds: int, receiver_url: str) -> list[tuple[str, float, str]]:
    hung_sock, hung_url = hung_endpoint()
    pipelines = {
        "discarding exporter": ExportPipeline(DiscardExporter(), name="discard"),
        "healthy OTLP receiver": ExportPipeline(create_otlp_exporter(endpoint=receiver_url)),
        "dead receiver (refused)": ExportPipeline(create_otlp_exporter(endpoint=dead_endpoint())),
        "hung receiver (no answer)": ExportPipeline(create_otlp_exporter(endpoint=hung_url)),
    }
    tracers = {name: tracer_for(p) for name, p in pipelines.items()}
    for name, tracer in tracers.items():  # warm up: connections, caches, learned span size
        for i in range(2000):
            llm_span(tracer, i)
        pipelines[name].flush(2.0)
    timings: dict[str, list[float]] = {name: [] for name in pipelines}
    for _ in range(rounds):
        for name, tracer in tracers.items():
            started = time.perf_counter()
            for i in range(spans):
                llm_span(tracer, i)
            timings[name].append((time.perf_counter() - started) / spans * 1e6)
            pipelines[name].flush(5.0)  # let the healthy worker finish before the next case
    rows = []
    for name, pipeline in pipelines.items():
        stats = pipeline.stats()
        note = f"exported {stats['exported']}, dropped {stats['dropped']}"
        rows.append((name, statistics.median(timings[name]), note))
    for pipeline in pipelines.values():
        pipeline.shutdown(1.0)
    hung_sock.close()
    return rows


def on_end_cost(span: ReadableSpan, calls: int = 200_000) -> tuple[float, float]:
    """Nanoseconds per ``on_end`` call when the span is queued, and when it is dropped."""
    results = []
    for room in (calls + 1, 1):
        pipeline = ExportPipeline(
            DiscardExporter(),
            name="on_end",
            max_queue_size=room,
            max_queue_bytes=2**40,
            max_batch_size=calls + 1,  # the worker stays asleep
            schedule_delay=3600.0,
        )
        pipeline.on_end(span)
        on_end = pipeline.on_end
        started = time.perf_counter()
        for _ in range(calls):
            on_end(span)
        results.append((time.perf_counter() - started) / calls * 1e9)
        pipeline.shutdown(1.0)
    return results[0], results[1]


def make_spans(n: int) -> list[ReadableSpan]:
    memory = InMemorySpanExporter()
    provider = TracerProvider(
        resource=Resource.create({"service.name": "bench"}), shutdown_on_exit=False
    )
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("bench")
    for i in range(n):
        llm_span(tracer, i)
    return list(memory.get_finished_spans())


def official_encode(spans: Sequence[ReadableSpan]) -> bytes:
    """What clew sent before issue 15: the official encoder's request, serialized."""
    payload: bytes = encode_spans(spans).SerializePartialToString()
    return payload


ENCODERS: dict[str, Callable[[Sequence[ReadableSpan]], bytes]] = {
    "official encoder": official_encode,
    "clew encoder": otlp_encode,
}


def encode_throughput(spans: list[ReadableSpan], rounds: int) -> dict[str, float]:
    """Spans per CPU second (median round) of each encoder on the same batch of 512 spans.

    CPU time of this process, not wall time: encoding is single-threaded, so this is the rate
    of one core, which other work on the machine does not divide.
    """
    batch = spans[:512]
    assert official_encode(batch) == otlp_encode(batch), "the encoders disagree"
    rates: dict[str, list[float]] = {name: [] for name in ENCODERS}
    for _ in range(rounds):
        for name, encode in ENCODERS.items():  # interleaved: machine noise hits both alike
            calls, started = 0, time.process_time()
            while (elapsed := time.process_time() - started) < 0.5 or calls < 3:
                encode(batch)
                calls += 1
            rates[name].append(calls * len(batch) / elapsed)
    return {name: statistics.median(r) for name, r in rates.items()}


def otlp_throughput(
    spans: list[ReadableSpan], receiver: ReceiverProcess, encoder: str = "clew encoder"
) -> tuple[float, int]:
    exporter = create_otlp_exporter(endpoint=receiver.url)
    exporter.encode = ENCODERS[encoder]  # type: ignore[method-assign]
    pipeline = ExportPipeline(
        exporter,
        name="throughput",
        max_queue_size=len(spans),
        max_queue_bytes=2**40,
    )
    before = receiver.count()
    started = time.perf_counter()
    for span in spans:
        pipeline.on_end(span)
    assert pipeline.flush(120.0)
    elapsed = time.perf_counter() - started
    pipeline.shutdown(1.0)
    received = receiver.count() - before
    return len(spans) / elapsed, received


def sqlite_throughput(spans: list[ReadableSpan]) -> str:
    try:
        from clew.exporters.sqlite import SqliteSpanExporter
    except ImportError:
        return "n/a (clew.exporters.sqlite not available)"
    with tempfile.TemporaryDirectory() as tmp:
        exporter = SqliteSpanExporter(Path(tmp) / "traces.db", project_name="bench")
        exporter.export(spans[:10])  # create the schema outside the timing
        started = time.perf_counter()
        for i in range(0, len(spans), 512):
            exporter.export(spans[i : i + 512])
        elapsed = time.perf_counter() - started
        exporter.shutdown()
    return f"{len(spans) / elapsed:,.0f} spans/s"


def peak_rss_kb() -> int:
    """This process's peak resident set size, in kB.

    ``VmHWM`` where Linux has it: ``ru_maxrss`` survives ``exec`` and would report the
    benchmark parent's peak (``fork`` copies it) rather than this process's own.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def rss_child(mode: str, n: int) -> None:
    """In a fresh process: peak RSS growth while ending ``n`` spans with the receiver down.

    The baseline is taken before the queue fills, so the growth includes the full queue.
    """
    hung_sock = None
    if mode == "hung":
        hung_sock, url = hung_endpoint()
    else:
        url = dead_endpoint()
    pipeline = ExportPipeline(create_otlp_exporter(endpoint=url), name=mode)
    tracer = tracer_for(pipeline)
    for i in range(20):  # first-use imports and caches, before the baseline
        llm_span(tracer, i)
    pipeline.flush(0.5)
    baseline = peak_rss_kb()
    for i in range(n):
        llm_span(tracer, i)
    peak = peak_rss_kb()
    stats = pipeline.stats()
    pipeline.shutdown(0.5)
    if hung_sock is not None:
        hung_sock.close()
    print(json.dumps({"growth_mb": (peak - baseline) / 1024, "dropped": stats["dropped"]}))


def rss_growth(mode: str, n: int) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, __file__, "--rss-child", mode, "--rss-spans", str(n)],
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
    )
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def encode_rows(rates: dict[str, float]) -> list[tuple[str, str, str]]:
    official = rates["official encoder"]
    rows = [("OTLP encode throughput", "spans per CPU second", "batches of 512 LLM spans")]
    for name, rate in rates.items():
        rows.append((f"  {name}", f"{rate:,.0f} spans/s", f"{rate / official:.1f}x official"))
    return rows


def table(rows: list[tuple[str, str, str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    lines = [" | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    lines.insert(1, "-+-".join("-" * w for w in widths))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--spans", type=int, default=20_000, help="spans per round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--throughput-spans", type=int, default=100_000)
    parser.add_argument("--rss-spans", type=int, default=200_000)
    parser.add_argument(
        "--encode-rounds", type=int, default=5, help="rounds of 0.5 CPU s per encoder"
    )
    parser.add_argument(
        "--encode-only", action="store_true", help="measure only the OTLP encoders (a few seconds)"
    )
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--rss-child", choices=["dead", "hung"], help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    # The dead and hung cases would log their (throttled) warnings over the table.
    logging.getLogger("clew.exporters").setLevel(logging.ERROR)
    if args.serve:
        return serve()
    if args.rss_child:
        return rss_child(args.rss_child, args.rss_spans)

    if args.encode_only:
        print(table(encode_rows(encode_throughput(make_spans(512), args.encode_rounds))))
        return None

    receiver = ReceiverProcess()
    try:
        costs = app_side_costs(args.spans, args.rounds, receiver.url)
        spans = make_spans(args.throughput_spans)
        queued_ns, dropped_ns = on_end_cost(spans[0])
        encode_rates = encode_throughput(spans, args.encode_rounds)
        otlp_rates = {name: otlp_throughput(spans, receiver, name) for name in ENCODERS}
        sqlite = sqlite_throughput(spans)
    finally:
        receiver.close()
    dead_rss = rss_growth("dead", args.rss_spans)
    hung_rss = rss_growth("hung", args.rss_spans)

    base = costs[0][1]
    healthy = costs[1][1]
    rows = [("app-side cost per span", "µs (ratio to discarding; to healthy)", "notes")]
    for name, us, note in costs:
        rows.append((f"  {name}", f"{us:6.2f} ({us / base:.2f}x; {us / healthy:.2f}x)", note))
    on_end = f"{queued_ns:.0f} ns queued, {dropped_ns:.0f} ns dropped"
    rows.append(("  ExportPipeline.on_end alone", on_end, "the app thread's share"))
    rows += encode_rows(encode_rates)
    for name, (rate, received) in otlp_rates.items():
        rows.append(
            (f"OTLP/HTTP export throughput, {name}", f"{rate:,.0f} spans/s", f"{received} received")
        )
    rows.append(("SQLite store throughput", sqlite, "SqliteSpanExporter, batches of 512"))
    for mode, rss in (("down (refused)", dead_rss), ("hung", hung_rss)):
        rows.append(
            (
                f"peak RSS growth, receiver {mode}",
                f"{rss['growth_mb']:.1f} MB over {args.rss_spans:,} spans",
                f"dropped {rss['dropped']}",
            )
        )
    print(table(rows))


if __name__ == "__main__":
    main()
