"""What ``clew.experiment`` adds over the same calls made bare, and what an eval function adds to
a traced call on the caller's thread.

Run: ``python benchmarks/experiments.py [--rows N] [--concurrency C] [--rounds K]
[--trace-calls M] [--trace-rounds R] [--only experiment|trace] [--latency SECONDS]``.

The fake LLM server runs in a process of its own (so it does not share the GIL with the
callers) on 127.0.0.1. clew is configured as a user gets it by default: exporter ``sqlite``
(here to a fresh store in a temporary directory), the gateway cache off (``cache_url`` None,
and ``"cache": False`` on every request).

**Experiment** (``--only experiment``). ``func`` is one ``clew.completion`` to the fake server
(a span per call and one per attempt, exported to the store), returning the reply text. Over
the same ``N`` rows (a distinct prompt each), timed from the start until the last row is done:

- ``bare``: ``func`` on every row's inputs through a ``ThreadPoolExecutor(C)``, no experiment
  (tracing on as in the experiment: each call's completion spans are made and stored, as
  roots);
- ``experiment``: ``clew.experiment(..., evals=[exact_match, short_reply], concurrency=C)
  .run()``: a root span per row around the call, the two evals on the row's worker (a score
  span each), the result collected, summarised and stored in the SQLite store;
- ``experiment no evals``: the same without evals (how much of the cost is the evals').

After each variant, ``clew.flush()`` writes its spans to the store; that time is shown apart
(``then flush``), and ``total`` is both. Variants are interleaved in ``K`` rounds (the order
rotated each round) and the median round is reported, with the client process's CPU time and
the spans each variant made and dropped (a full export queue drops spans, which is cheaper than
storing them: the figures count only with 0 dropped).
The fake server answers at once by default (``--latency 0``), so the calls cost only the
client's CPU and the ratio is of CPU work; ``--latency 0.05`` shows a slower provider, where the
machinery's work hides behind the waits.

**Evals on the caller's thread** (``--only trace``). A cheap function (no LLM, a few µs), three
ways: undecorated, ``@clew.trace``, and ``@clew.trace(eval_funcs=[slow_eval])`` where
``slow_eval`` sleeps 5 ms. Variants run in blocks of ``M`` calls, interleaved over ``R``
rounds; each call is timed alone on the caller's thread. ``clew.flush()`` runs after each
block, outside the timed part, so the eval queue (capped at 10,000 pending calls) never fills:
the evals of a block run on the eval pool while that block's calls are timed, so any
contention they cause is in the figures. The table gives p50 and p99 per call and what each
adds over undecorated at p50, in wall time and in the caller thread's CPU time (which leaves out
waits for the GIL while an eval worker holds it); the eval pool's stats are printed (nothing may
be skipped).

Targets (the experiments issue): a 1,000-row experiment at concurrency 16 finishes in at most
1.2x the time of the bare calls; an eval function adds nothing (~0 µs) at p50 to the traced
call on the caller's thread.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import clew
from clew.testing.llm_server.examples import reply_text
from clew.tracer import evaluation

MODEL = "gpt-4o-mini"
REPLY_WORDS = 18
"""Words in the fake server's replies (its default)."""
EVAL_SLEEP = 0.005
"""Seconds ``slow_eval`` sleeps."""


def _server(latency: float) -> tuple[subprocess.Popen[str], str]:
    """The fake LLM server in a process of its own (``latency`` seconds before each reply), and
    its URL."""
    code = (
        "import sys\n"
        "from clew.testing.llm_server import FakeLLMServer\n"
        f"server = FakeLLMServer({latency!r}, record_requests=False).start()\n"
        "print(server.url, flush=True)\n"
        "sys.stdin.read()\n"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert process.stdout is not None
    url = process.stdout.readline().strip()
    return process, url


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _spans() -> tuple[int, int]:
    """Spans the exporters have taken so far (enqueued) and dropped (queue full), over all of
    them."""
    found = clew.stats().values()
    return sum(int(e.get("enqueued", 0)) for e in found), sum(
        int(e.get("dropped", 0)) for e in found
    )


def _flush() -> float:
    """Seconds ``clew.flush()`` took (evals finished, every span exported)."""
    started = time.perf_counter()
    if not clew.flush(timeout=120.0):
        raise SystemExit("clew.flush() timed out: the figures would not count")
    return time.perf_counter() - started


# --- the experiment ---------------------------------------------------------------------------
def answer(question: str) -> str:
    """The function under test: one completion to the fake server; the reply's text."""
    reply = clew.completion(
        {
            "llm_configuration": {
                "provider": "openai",
                "model": MODEL,
                "messages": [{"role": "user", "content": question}],
            },
            "cache": False,
        }
    )
    return reply.content


def short_reply(log: clew.Log) -> bool:
    """A cheap custom eval: the reply is at most 200 characters."""
    return len(str(log.output)) <= 200


def _rows(count: int) -> list[dict[str, Any]]:
    """``count`` rows, a distinct question each; the target is the fake server's reply, except
    on every fourth row (so ``exact_match`` averages 0.75 when every row ran)."""
    rows = []
    for index in range(count):
        question = f"Question {index}: summarise the benefits of tracing LLM calls."
        target = reply_text(question, REPLY_WORDS) if index % 4 else "a wrong answer"
        rows.append({"inputs": {"question": question}, "target": target})
    return rows


@dataclass(frozen=True, slots=True)
class _Run:
    """One timed run of a variant: wall and CPU seconds, flush seconds, spans made and
    dropped."""

    wall: float
    cpu: float
    flush: float
    spans: int
    dropped: int


def _experiment_variants(
    rows: list[dict[str, Any]], concurrency: int
) -> dict[str, Callable[[], Any]]:
    inputs = [row["inputs"] for row in rows]
    evals = [clew.evals.exact_match, short_reply]

    def bare() -> Any:
        with ThreadPoolExecutor(concurrency) as pool:
            return list(pool.map(lambda kwargs: answer(**kwargs), inputs))

    def run(with_evals: bool) -> Callable[[], Any]:
        def go() -> Any:
            name = "bench" if with_evals else "bench-no-evals"
            chosen = evals if with_evals else []
            experiment = clew.experiment(name, rows, answer, evals=chosen, concurrency=concurrency)
            result = experiment.run()
            if result.summary.errors or len(result.rows) != len(rows):
                raise SystemExit(f"the experiment failed: {result.summary}")
            if with_evals:
                mean = result.summary.evals["exact_match"].mean
                if abs(mean - sum(1 for i in range(len(rows)) if i % 4) / len(rows)) > 1e-9:
                    raise SystemExit(f"exact_match averaged {mean}: the evals did not all run")
            return result

        return go

    return {"bare": bare, "experiment": run(True), "experiment no evals": run(False)}


def _measure_experiment(
    variants: dict[str, Callable[[], Any]], rounds: int
) -> dict[str, list[_Run]]:
    runs: dict[str, list[_Run]] = {name: [] for name in variants}
    names = list(variants)
    for round_ in range(rounds):
        shift = round_ % len(names)
        for name in names[shift:] + names[:shift]:
            spans, dropped = _spans()
            started, cpu = time.perf_counter(), time.process_time()
            variants[name]()
            wall, cpu = time.perf_counter() - started, time.process_time() - cpu
            flush = _flush()
            spans_after, dropped_after = _spans()
            runs[name].append(_Run(wall, cpu, flush, spans_after - spans, dropped_after - dropped))
    return runs


def _experiment_report(runs: dict[str, list[_Run]], rows: int) -> None:
    def median(name: str, pick: Callable[[_Run], float]) -> float:
        return statistics.median(pick(run) for run in runs[name])

    bare = median("bare", lambda r: r.wall)
    bare_total = median("bare", lambda r: r.wall + r.flush)
    print(
        "| variant | wall (median) | min | max | per row | CPU | then flush | total"
        " | spans/row | dropped | wall vs bare | total vs bare |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name, found in runs.items():
        wall = median(name, lambda r: r.wall)
        total = median(name, lambda r: r.wall + r.flush)
        print(
            f"| {name} | {wall:.2f} s | {min(r.wall for r in found):.2f} s"
            f" | {max(r.wall for r in found):.2f} s | {wall / rows * 1e6:.0f} µs"
            f" | {median(name, lambda r: r.cpu):.2f} s | {median(name, lambda r: r.flush):.2f} s"
            f" | {total:.2f} s | {median(name, lambda r: r.spans) / rows:.1f}"
            f" | {sum(r.dropped for r in found)} | {wall / bare:.2f}x | {total / bare_total:.2f}x |"
        )
    ratio = median("experiment", lambda r: r.wall) / bare
    verdict = "met" if ratio <= 1.2 else "MISSED"
    print(f"experiment / bare (wall, median round): {ratio:.2f}x (target <= 1.2x: {verdict})")
    paired = [e.wall / b.wall for e, b in zip(runs["experiment"], runs["bare"], strict=True)]
    print("experiment / bare per round (wall): " + ", ".join(f"{r:.2f}x" for r in paired))
    total_ratio = median("experiment", lambda r: r.wall + r.flush) / bare_total
    print(f"experiment / bare (wall + flush of the spans): {total_ratio:.2f}x")
    cpu_ratio = median("experiment", lambda r: r.cpu) / median("bare", lambda r: r.cpu)
    print(f"experiment / bare (process CPU): {cpu_ratio:.2f}x")
    if any(r.dropped for found in runs.values() for r in found):
        print("spans were dropped (export queue full): the figures flatter the variants that drop")


# --- evals on the caller's thread -------------------------------------------------------------
def work(n: int) -> int:
    """The cheap function: a few µs of arithmetic."""
    return sum(range(n))


def slow_eval(log: clew.Log) -> float:
    """An eval that takes :data:`EVAL_SLEEP` seconds."""
    time.sleep(EVAL_SLEEP)
    return 1.0


Samples = dict[str, list[tuple[float, float]]]


def _measure_trace(calls: int, rounds: int) -> tuple[Samples, list[float]]:
    """Per call, per variant: wall seconds and the caller thread's CPU seconds (which leave out
    any wait for the GIL while an eval worker holds it); and the seconds each flush after a
    block with evals took (the evals finishing on the pool)."""
    variants: dict[str, Callable[[int], int]] = {
        "untraced": work,
        "@clew.trace": clew.trace(work),
        "@clew.trace(eval_funcs=[slow_eval])": clew.trace(eval_funcs=[slow_eval])(work),
    }
    times: Samples = {name: [] for name in variants}
    drains: list[float] = []
    for fn in variants.values():  # warm up
        for _ in range(50):
            fn(20)
    _flush()
    timer, cpu_timer = time.perf_counter, time.thread_time
    for _ in range(rounds):
        for name, fn in variants.items():
            samples = times[name]
            for _ in range(calls):
                cpu = cpu_timer()
                started = timer()
                fn(20)
                ended = timer()
                samples.append((ended - started, cpu_timer() - cpu))
            flushed = _flush()
            if "eval_funcs" in name:
                drains.append(flushed)
    return times, drains


def _trace_report(times: Samples, drains: list[float]) -> None:
    walls = {name: [wall for wall, _ in found] for name, found in times.items()}
    cpus = {name: [cpu for _, cpu in found] for name, found in times.items()}
    p50 = {name: statistics.median(values) for name, values in walls.items()}
    p99 = {name: _pct(values, 0.99) for name, values in walls.items()}
    cpu50 = {name: statistics.median(values) for name, values in cpus.items()}
    print("| variant | p50 | p99 | adds at p50 over untraced | thread CPU p50 | CPU adds at p50 |")
    print("|---|---:|---:|---:|---:|---:|")
    for name in times:
        adds = cpu_adds = ""
        if name != "untraced":
            adds = f"{(p50[name] - p50['untraced']) * 1e6:+.1f} µs"
            cpu_adds = f"{(cpu50[name] - cpu50['untraced']) * 1e6:+.1f} µs"
        print(
            f"| {name} | {p50[name] * 1e6:.1f} µs | {p99[name] * 1e6:.1f} µs | {adds}"
            f" | {cpu50[name] * 1e6:.1f} µs | {cpu_adds} |"
        )
    traced, with_evals = "@clew.trace", "@clew.trace(eval_funcs=[slow_eval])"
    print(
        f"eval_funcs adds {(p50[with_evals] - p50[traced]) * 1e6:+.1f} µs at p50"
        f" ({(p99[with_evals] - p99[traced]) * 1e6:+.1f} µs at p99;"
        f" {(cpu50[with_evals] - cpu50[traced]) * 1e6:+.1f} µs of the caller thread's CPU at"
        f" p50) over @clew.trace (target ~0 µs at p50; the eval itself takes"
        f" {EVAL_SLEEP * 1e6:.0f} µs)"
    )
    print(
        f"the evals of a block finished on the pool {statistics.median(drains):.2f} s (median)"
        f" after its calls; eval pool stats: {evaluation.stats()}"
    )


# --- main ---------------------------------------------------------------------------------------
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1000, help="rows of the experiment")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=5, help="rounds of the experiment variants")
    parser.add_argument("--trace-calls", type=int, default=500, help="calls per block")
    parser.add_argument("--trace-rounds", type=int, default=4, help="blocks per trace variant")
    parser.add_argument("--only", choices=["experiment", "trace"], help="one measurement only")
    parser.add_argument(
        "--latency", type=float, default=0.0, help="seconds the fake server waits per reply"
    )
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="clew-bench-experiments-"))
    process, url = _server(args.latency)
    try:
        clew.configure(
            exporter="sqlite",
            store_path=scratch / "traces.db",
            providers={"openai": {"base_url": url + "/v1", "api_key": "sk-bench"}},
            gateway={"cache_url": None},
        )
        print(
            f"python {sys.version.split()[0]}, {os.cpu_count()} cpus, exporter sqlite"
            f" ({scratch / 'traces.db'}), gateway cache off"
        )
        if args.only in (None, "experiment"):
            rows = _rows(args.rows)
            warm = _experiment_variants(rows[:50], args.concurrency)
            for fn in warm.values():  # warm up connections, imports, the store's tables
                fn()
            _flush()
            runs = _measure_experiment(_experiment_variants(rows, args.concurrency), args.rounds)
            print(
                f"\n### Experiment: {args.rows} rows, concurrency {args.concurrency},"
                f" {args.rounds} rounds, server latency {args.latency * 1e3:g} ms\n"
            )
            _experiment_report(runs, args.rows)
        if args.only in (None, "trace"):
            times, drains = _measure_trace(args.trace_calls, args.trace_rounds)
            print(
                f"\n### Evals on the caller's thread: {args.trace_rounds} rounds x"
                f" {args.trace_calls} calls per variant\n"
            )
            _trace_report(times, drains)
        print(f"\nspans dropped over the whole run (export queue full): {_spans()[1]}")
    finally:
        assert process.stdin is not None
        process.stdin.close()
        process.wait(timeout=10)
        clew.shutdown()
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
