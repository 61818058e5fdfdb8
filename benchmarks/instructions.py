"""What instrumenting the OpenAI client adds to a call, counted in CPU instructions.

Run: ``python benchmarks/instructions.py [--calls N] [--only NAMES] [--jobs J] [--before SRC]``
(needs ``valgrind`` on the PATH: ``apt-get install valgrind``); ``--before SRC`` also counts
the clew in ``SRC`` (another version).

:mod:`instrumentation` measures time, which a shared machine moves by up to 2x from one hour
to the next. This counts the instructions the CPU executes instead, under valgrind's
``cachegrind`` (the method CodSpeed uses for CI benchmarks): the same code gives the same
count on any x86-64 machine, to about 0.1%, however loaded the machine is. It does not see
cache misses or the memory a call waits for, so it ranks the instrumentations' own work, not
their full latency; the two benchmarks agree on the order.

For each instrumentation (and the bare client), and for a plain and a streamed chat call, two
processes run under valgrind: both import everything, instrument the client, make 50
warm-up calls, collect garbage and make 10 more calls; one then makes ``N`` more calls. The
difference of their counts, divided by ``N``, is one call's count, and the bare client's
count subtracted from it is what the instrumentation adds. Both calls are answered in
process (``MockTransport``) with the fake server's recorded replies, as in
:mod:`instrumentation`; the hash seed is fixed and address randomisation turned off
(``setarch -R``, where present), so the runs repeat to within a few thousand instructions
per call.

The ratio column divides by the lightest peer's figure: issue 3's target (100 µs and 120 µs
where the lightest peer took about 130 µs and 150 µs) is 0.77x non-streaming and 0.80x
streaming.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import instrumentation as timing  # the setups and the recorded replies

_before = ""
"""The src folder of the other clew counted with ``--before``."""

WARMUP = 50
LEAD = 10
TARGET_RATIO = {False: 100 / 130, True: 120 / 150}


def child(name: str, stream: bool, calls: int, replies: str) -> None:
    """In the process valgrind runs: instrument, warm up, then make ``calls`` calls."""
    plain, streamed = Path(replies, "plain").read_bytes(), Path(replies, "stream").read_bytes()
    client = timing.replying_clients("http://127.0.0.1:9/v1", plain, streamed)()
    for _ in range(WARMUP):  # the SDK's lazily imported modules, before instrumenting
        timing._call(client, stream)
    if name != "bare":
        client = timing.SETUPS[name](client)
    for _ in range(WARMUP):
        timing._call(client, stream)
    import gc

    gc.collect()
    for _ in range(calls):
        timing._call(client, stream)


def _count(name: str, stream: bool, calls: int, replies: str) -> int | str:
    """The instructions one valgrind run executed, or why it failed."""
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    if name == timing.BEFORE:  # clew again, from another src folder (--before)
        name = "clew"
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [_before, env.get("PYTHONPATH")]))
    command = [
        *(["setarch", "-R"] if shutil.which("setarch") else []),
        *("valgrind", "--tool=cachegrind", "--cache-sim=no", "--cachegrind-out-file=/dev/null"),
        *(sys.executable, __file__, "--child", name, "--calls", str(calls)),
        *("--stream", str(int(stream)), "--replies", replies),
    ]
    out = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    found = re.search(r"I\s+refs:\s+([\d,]+)", out.stderr)
    if out.returncode != 0 or found is None:
        lines = [line for line in out.stderr.splitlines() if not line.startswith("==")]
        return f"failed: {(lines or ['?'])[-1][:70]}"
    return int(found.group(1).replace(",", ""))


def _per_call(name: str, stream: bool, calls: int, replies: str) -> float | str:
    # Both processes make LEAD calls first: the first calls after the collection cost more
    # (the allocator refills what the collection freed), and would count as the call's own.
    with ThreadPoolExecutor(2) as pool:
        base, full = pool.map(lambda n: _count(name, stream, n, replies), (LEAD, LEAD + calls))
    if isinstance(base, str):
        return base
    if isinstance(full, str):
        return full
    return (full - base) / calls


def main(argv: list[str] | None = None) -> int:
    """Count, and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=30, help="measured calls per process")
    parser.add_argument("--only", default=",".join(timing.LABELS))
    parser.add_argument("--jobs", type=int, default=1, help="instrumentations counted at once")
    parser.add_argument("--child")
    parser.add_argument("--stream", type=int, default=0)
    parser.add_argument("--replies")
    parser.add_argument(
        "--before", metavar="SRC", help="also count the clew in this src folder (another version)"
    )
    args = parser.parse_args(argv)
    if args.child:
        child(args.child, bool(args.stream), args.calls, args.replies)
        os._exit(0)  # some peers flush to their (closed) backend at exit for minutes
    if shutil.which("valgrind") is None:
        print("valgrind is not installed: apt-get install valgrind", file=sys.stderr)
        return 2
    names = [n for n in args.only.split(",") if n in timing.LABELS]
    if args.before:
        global _before
        _before = args.before
        timing.LABELS[timing.BEFORE] = f"clew before ({args.before})"
        names.append(timing.BEFORE)
    server, base_url = timing._start_server()
    try:
        plain, streamed = timing._recorded(base_url)
    finally:
        assert server.stdin is not None
        server.stdin.close()
        server.wait(timeout=10)
    with tempfile.TemporaryDirectory() as replies:
        Path(replies, "plain").write_bytes(plain)
        Path(replies, "stream").write_bytes(streamed)
        jobs = [(n, s) for n in ["bare", *names] for s in (False, True)]
        with ThreadPoolExecutor(max(1, args.jobs)) as pool:
            counts = dict(
                zip(
                    jobs,
                    pool.map(lambda job: _per_call(*job, args.calls, replies), jobs),
                    strict=True,
                )
            )
    _print_table(names, counts, args.calls)
    return 0


def _print_table(names: list[str], counts: dict[tuple[str, bool], Any], calls: int) -> None:
    bare = {s: counts["bare", s] for s in (False, True)}
    if any(isinstance(v, str) for v in bare.values()):
        print(f"the bare client could not be counted: {bare}")
        return
    print(
        f"instructions per call, {calls} calls per process; the bare client: "
        f"{bare[False] / 1e6:.2f} M non-streaming, {bare[True] / 1e6:.2f} M streaming"
    )
    added: dict[str, dict[bool, float]] = {}
    for name in names:
        if not any(isinstance(counts[name, s], str) for s in (False, True)):
            added[name] = {s: counts[name, s] - bare[s] for s in (False, True)}
    lightest = {
        s: min((v[s] for n, v in added.items() if n in timing.PEERS and n != "clew"), default=0)
        for s in (False, True)
    }
    print(
        f"{'instrumentation':<50}{'non-stream':>12}{'stream':>12}"
        f"{'/ lightest peer':>18}   (target {TARGET_RATIO[False]:.2f}x / {TARGET_RATIO[True]:.2f}x)"
    )
    for name, value in sorted(added.items(), key=lambda item: sum(item[1].values())):
        ratios = " / ".join(
            f"{value[s] / lightest[s]:.2f}x" if lightest[s] > 0 else "-" for s in (False, True)
        )
        print(
            f"{timing.LABELS[name]:<50}{value[False] / 1e3:>+10.0f} k{value[True] / 1e3:>+10.0f} k"
            f"{ratios:>18}"
        )
    for name in names:
        if name not in added:
            reasons = [counts[name, s] for s in (False, True)]
            reason = next(r for r in reasons if isinstance(r, str))
            print(f"{timing.LABELS[name]:<50}not counted: {reason}")


if __name__ == "__main__":
    sys.exit(main())
