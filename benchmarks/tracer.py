"""Per-call overhead of @clew.trace against raw OpenTelemetry, measured side by side.

Run: ``python benchmarks/tracer.py [--calls N] [--rounds R]``; ``--before SRC`` compares
with another clew (``git worktree add /tmp/before main`` then ``--before /tmp/before/src``):
alternating runs of each, clew's overhead side by side.

Both sides end their spans into the same kind of pipeline: a ``BatchSpanProcessor`` in front of
an exporter that discards. Overhead is the time of the traced call minus the time of the same
call undecorated; rounds interleave the variants so machine noise hits them alike, and the
median round is reported.

Every 1,000 calls each side flushes its pipeline inside the timed loop, so the time includes
the export worker's share of every span and neither queue ever fills: a full queue drops spans,
which is cheaper than exporting them and would flatter the side that drops more. The run ends
by printing how many spans clew dropped (it must be 0 for the figures to count).

Time is the process's CPU time (``time.process_time``: every thread, the export workers
included), so other programs on the machine change the figures much less than they change
wall-clock time; ``--wall`` measures wall-clock time instead.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

import clew


class DiscardingExporter(SpanExporter):
    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS


PAYLOAD = {f"key{i}": "v" * 40 for i in range(40)}  # ~2 KB as JSON
TEXT = "x" * 2048


BLOCK = 1000
"""Calls between two flushes: fewer than either pipeline's queue holds."""


def build_cases() -> tuple[dict[str, dict[str, Callable[[], Any]]], TracerProvider]:
    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(DiscardingExporter()))
    raw = provider.get_tracer("raw")
    clew.configure(exporter=DiscardingExporter(), project="bench")

    def bare_trivial() -> None:
        return None

    def raw_trivial() -> None:
        with raw.start_as_current_span("trivial"):
            return None

    clew_trivial = clew.trace(name="trivial")(bare_trivial)

    def bare_l3() -> int:
        return 3

    def bare_l2() -> int:
        return bare_l3()

    def bare_l1() -> int:
        return bare_l2()

    def raw_l1() -> int:
        with (
            raw.start_as_current_span("l1"),
            raw.start_as_current_span("l2"),
            raw.start_as_current_span("l3"),
        ):
            return 3

    clew_l3 = clew.trace(bare_l3)
    clew_l2 = clew.trace(lambda: clew_l3())
    clew_l1 = clew.trace(lambda: clew_l2())

    def bare_io(payload: dict[str, str]) -> str:
        return TEXT

    def raw_io() -> str:
        with raw.start_as_current_span("io"):
            return bare_io(PAYLOAD)

    def raw_io_capture() -> str:
        with raw.start_as_current_span("io") as s:
            s.set_attribute("input", json.dumps({"payload": PAYLOAD}))
            out = bare_io(PAYLOAD)
            s.set_attribute("output", json.dumps(out))
            return out

    clew_io_fn = clew.trace(name="io")(bare_io)

    dropped_leaf = clew.trace(name="leaf")(bare_trivial)

    @clew.trace(log_sample_rate=0.0)
    def dropped_root(calls: int) -> None:
        for _ in range(calls):
            dropped_leaf()

    def bare_loop(calls: int) -> None:
        for _ in range(calls):
            bare_trivial()

    sampled_root = clew.trace(name="root", log_sample_rate=0.0)(bare_trivial)
    return {
        "trivial function": {
            "bare": bare_trivial,
            "raw OpenTelemetry": raw_trivial,
            "clew": clew_trivial,
        },
        "depth-3 nesting": {"bare": bare_l1, "raw OpenTelemetry": raw_l1, "clew": clew_l1},
        "2 KB dict in, 2 KB str out": {
            "bare": lambda: bare_io(PAYLOAD),
            "raw OpenTelemetry": raw_io,
            "raw OpenTelemetry + json capture": raw_io_capture,
            "clew": lambda: clew_io_fn(PAYLOAD),
        },
        "sampled-out call (inside a dropped trace)": {
            "bare": lambda: bare_loop(1000),
            "clew": lambda: dropped_root(1000),
        },
        "sampled-out root (rate 0)": {"bare": bare_trivial, "clew": sampled_root},
    }, provider


def measure(
    fn: Callable[[], Any],
    calls: int,
    flush: Callable[[], Any],
    clock: Callable[[], float] = time.process_time,
) -> float:
    start = clock()
    for done in range(0, calls, BLOCK):
        for _ in range(min(BLOCK, calls - done)):
            fn()
        flush()
    return (clock() - start) / calls * 1e6


def _no_flush() -> None:
    return None


def run(calls: int, rounds: int, clock: Callable[[], float]) -> dict[str, dict[str, float]]:
    """µs per call of every variant of every case (median over the rounds)."""
    cases, raw_provider = build_cases()
    flushes = {"bare": _no_flush, "clew": clew.flush}
    results: dict[str, dict[str, float]] = {}
    for case, variants in cases.items():
        inner = "inside a dropped trace" in case
        case_calls = calls // 1000 if inner else calls
        per_call_factor = 1000 if inner else 1
        samples: dict[str, list[float]] = {v: [] for v in variants}
        for _ in range(rounds):
            for variant, fn in variants.items():
                flush = flushes.get(variant, raw_provider.force_flush)
                samples[variant].append(measure(fn, case_calls, flush, clock) / per_call_factor)
        results[case] = {v: statistics.median(s) for v, s in samples.items()}
    dropped = sum(s["dropped"] for s in clew.stats().values())
    results["spans clew dropped"] = {"clew": float(dropped)}
    clew.shutdown()
    return results


def print_table(results: dict[str, dict[str, float]]) -> None:
    print(f"{'case':44} {'variant':34} {'µs/call':>9} {'overhead µs':>12} {'vs raw OTel':>12}")
    for case, times in results.items():
        if "bare" not in times:
            continue
        bare = times["bare"]
        raw_overhead = times.get("raw OpenTelemetry", 0.0) - bare
        for variant, t in times.items():
            overhead = t - bare
            ratio = f"{overhead / raw_overhead:.2f}x" if raw_overhead > 0 else "-"
            shown_ratio = ratio if variant != "bare" else ""
            print(f"{case:44} {variant:34} {t:9.3f} {overhead:12.3f} {shown_ratio:>12}")
    print(f"spans clew dropped: {results['spans clew dropped']['clew']:.0f}")


def compare(before: str, repeat: int, child_args: list[str]) -> None:
    """Run this benchmark ``repeat`` times against the clew in ``before`` (a ``src`` folder)
    and as many times against the installed one, alternating, and print clew's overhead side
    by side: one run, so both see the same machine."""
    runs: dict[str, list[dict[str, dict[str, float]]]] = {"before": [], "after": []}
    for _ in range(repeat):
        for side in ("before", "after"):
            env = dict(os.environ)
            if side == "before":
                env["PYTHONPATH"] = os.pathsep.join(filter(None, [before, env.get("PYTHONPATH")]))
            out = subprocess.run(
                [sys.executable, __file__, "--json", *child_args],
                capture_output=True,
                text=True,
                check=True,
                env=env,
            )
            runs[side].append(json.loads(out.stdout.strip().splitlines()[-1]))
    print(f"clew's overhead in µs per call, median of {repeat} alternating runs per side")
    print(f"{'case':44} {'before':>9} {'after':>9} {'after/before':>13}")
    for case, times in runs["after"][0].items():
        if "clew" not in times or "bare" not in times:
            continue
        overhead = {
            side: statistics.median(r[case]["clew"] - r[case]["bare"] for r in runs[side])
            for side in runs
        }
        ratio = overhead["after"] / overhead["before"] if overhead["before"] > 0 else float("nan")
        print(f"{case:44} {overhead['before']:9.3f} {overhead['after']:9.3f} {ratio:12.2f}x")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--wall", action="store_true", help="measure wall-clock time")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument(
        "--before",
        metavar="SRC",
        help="compare with the clew in this src folder (e.g. of a `git worktree` of main)",
    )
    parser.add_argument("--repeat", type=int, default=3, help="runs per side with --before")
    args = parser.parse_args(argv)
    if args.before:
        child_args = ["--calls", str(args.calls), "--rounds", str(args.rounds)]
        compare(args.before, args.repeat, child_args + (["--wall"] if args.wall else []))
        return
    clock = time.perf_counter if args.wall else time.process_time
    results = run(args.calls, args.rounds, clock)
    if args.json:
        print(json.dumps(results))
    else:
        print_table(results)


if __name__ == "__main__":
    main()
