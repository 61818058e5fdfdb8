"""What instrumenting the OpenAI client adds to a call: clew and its peers, side by side.

Run: ``python benchmarks/instrumentation.py [--calls N] [--rounds K] [--runs R] [--only NAMES]
[--cpu C] [--before SRC]``; ``--before SRC`` also measures the clew in ``SRC`` (another
version), interleaved with the others.

The fake LLM server's answers (a chat completion, and a stream of about 20 chunks plus a usage
chunk) are fetched from it once over HTTP, then served to the real ``openai`` client by an
in-process ``MockTransport``: the socket round trip (about 1-2 ms on a loaded 2-core machine,
with as much jitter) would otherwise drown differences of tens of microseconds.

Each instrumentation is measured in fresh processes (``R`` of them, interleaved across peers),
and inside each process bare and instrumented calls are interleaved: the attributes the
instrumentation replaced on the ``openai`` (and ``httpx2``) modules and classes are recorded,
so the process can switch between the bare and the instrumented state at will. ``K`` rounds
each run one block of ``N`` calls in either state (the order alternating), so both sides see
the same heap, the same garbage collector and the same load from the rest of the machine. A
process's figure is the fastest instrumented block minus the fastest bare block (the least
disturbed); the table shows the median over the ``R`` processes, as wall time (the latency
the call gains) and as the calling thread's CPU time (which other processes hardly disturb;
work a peer defers to a background thread is not in it), and the spread of the wall figure
across processes.

Spans go nowhere (clew's ``exporter="none"``; an SDK ``TracerProvider`` without processors for
the OpenTelemetry-based peers; Langfuse and LangSmith pointed at a closed local port), so the
numbers are the instrumentation's own cost on the caller's thread.

Peers not installed are reported as such. Install them with the ``bench`` extra (they may need
their own virtualenv if they pin an older ``openai``).

The ``otel-floor`` row is a reference, not a peer (:data:`REFERENCES`): the least an
OpenTelemetry instrumentation of the client can add on this machine.

Target (issue 3): clew adds less than every peer, at most 100 µs non-streaming and 120 µs
streaming per call, on a machine where the lightest peer added about 130 µs and 150 µs: 0.77x
and 0.80x of the lightest peer in one run. ``benchmarks/instructions.py`` measures the same
calls in CPU instructions, which the machine's load does not move.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from types import ModuleType
from typing import Any

MESSAGES = [{"role": "user", "content": "Summarise the benefits of tracing LLM calls."}]
MODEL = "gpt-4o-mini"

PEERS = {
    "clew": "clew",
    "otel-openai-v2": "opentelemetry-instrumentation-openai-v2",
    "openllmetry": "opentelemetry-instrumentation-openai (Traceloop)",
    "openinference": "openinference-instrumentation-openai",
    "langfuse": "langfuse.openai",
    "langsmith": "langsmith wrap_openai",
    "logfire": "logfire.instrument_openai",
}

REFERENCES = {
    "otel-floor": "(reference) one bare OpenTelemetry span per call",
}
"""Not peers: what the least an OpenTelemetry instrumentation of the client can add costs on
this machine (a wrapt wrapper on ``request`` and one SDK span per call that reads nothing:
no request, no response, no tokens). It calibrates the machine: a target in µs below the
floor cannot be met by any instrumentation that opens a span."""


# -- the instrumentations (run inside the measuring process) ---------------------------------
def _sdk_provider() -> Any:
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider

    provider = TracerProvider()
    trace.set_tracer_provider(provider)
    return provider


def _clew(client: Any) -> Any:
    import clew
    from clew.providers import instrument_openai

    clew.configure(project="bench", exporter="none", sample_rate=1.0)
    instrument_openai()
    return client


def _otel_v2(client: Any) -> Any:
    from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor

    os.environ["OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"] = "true"
    OpenAIInstrumentor().instrument(tracer_provider=_sdk_provider())
    return client


def _openllmetry(client: Any) -> Any:
    from opentelemetry.instrumentation.openai import OpenAIInstrumentor

    OpenAIInstrumentor().instrument(tracer_provider=_sdk_provider())
    return client


def _openinference(client: Any) -> Any:
    from openinference.instrumentation.openai import OpenAIInstrumentor

    OpenAIInstrumentor().instrument(tracer_provider=_sdk_provider())
    return client


def _langfuse(client: Any) -> Any:
    os.environ.setdefault("LANGFUSE_PUBLIC_KEY", "pk-lf-bench")
    os.environ.setdefault("LANGFUSE_SECRET_KEY", "sk-lf-bench")
    os.environ.setdefault("LANGFUSE_HOST", "http://127.0.0.1:9")
    os.environ.setdefault("LANGFUSE_FLUSH_INTERVAL", "3600")
    from langfuse.openai import OpenAI  # patches the openai module on import

    return OpenAI(
        base_url=client.base_url, api_key="sk-bench", max_retries=0, http_client=client._client
    )


def _langsmith(client: Any) -> Any:
    os.environ.setdefault("LANGSMITH_TRACING", "true")
    os.environ.setdefault("LANGSMITH_API_KEY", "ls-bench")
    os.environ.setdefault("LANGSMITH_ENDPOINT", "http://127.0.0.1:9")
    from langsmith.wrappers import wrap_openai

    return wrap_openai(client)


def _logfire(client: Any) -> Any:
    import logfire

    logfire.configure(send_to_logfire=False, console=False, inspect_arguments=False)
    logfire.instrument_openai()
    return client


def _otel_floor(client: Any) -> Any:
    import wrapt
    from openai import Stream
    from openai._base_client import SyncAPIClient

    tracer = _sdk_provider().get_tracer("floor")

    def request(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        span = tracer.start_span("chat", attributes={"gen_ai.request.model": MODEL})
        result = wrapped(*args, **kwargs)
        if isinstance(result, Stream):
            inner = result._iterator

            def chunks() -> Iterator[Any]:
                yield from inner
                span.end()

            result._iterator = chunks()
        else:
            span.end()
        return result

    SyncAPIClient.request = wrapt.FunctionWrapper(SyncAPIClient.request, request)  # type: ignore[method-assign]
    return client


SETUPS: dict[str, Callable[[Any], Any]] = {
    "clew": _clew,
    "otel-openai-v2": _otel_v2,
    "openllmetry": _openllmetry,
    "openinference": _openinference,
    "langfuse": _langfuse,
    "langsmith": _langsmith,
    "logfire": _logfire,
    "otel-floor": _otel_floor,
}
LABELS = {**PEERS, **REFERENCES}


def _call(client: Any, stream: bool) -> None:
    if stream:
        for _ in client.chat.completions.create(
            model=MODEL, messages=MESSAGES, stream=True, stream_options={"include_usage": True}
        ):
            pass
    else:
        client.chat.completions.create(model=MODEL, messages=MESSAGES)


def _block(client: Any, stream: bool, calls: int) -> tuple[float, float]:
    """µs per call of one block: wall time and the calling thread's CPU time."""
    wall, cpu = time.perf_counter(), time.thread_time()
    for _ in range(calls):
        _call(client, stream)
    return (
        (time.perf_counter() - wall) / calls * 1e6,
        (time.thread_time() - cpu) / calls * 1e6,
    )


def _recorded(base_url: str) -> tuple[bytes, bytes]:
    """The fake server's non-streaming and streaming replies, as raw bytes."""
    import httpx2

    with httpx2.Client() as http:
        plain = http.post(
            f"{base_url}/chat/completions", json={"model": MODEL, "messages": MESSAGES}
        )
        body = {
            "model": MODEL,
            "messages": MESSAGES,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        stream = http.post(f"{base_url}/chat/completions", json=body)
    return plain.content, stream.content


def _client_factory(base_url: str) -> Callable[[], Any]:
    return replying_clients(base_url, *_recorded(base_url))


def replying_clients(base_url: str, plain: bytes, stream: bytes) -> Callable[[], Any]:
    """Makes ``openai`` clients that get ``plain`` or ``stream`` (by the request) in process."""
    import httpx2
    from openai import OpenAI

    def handle(request: httpx2.Request) -> httpx2.Response:
        if b'"stream":true' in request.content or b'"stream": true' in request.content:
            return httpx2.Response(
                200, content=stream, headers={"content-type": "text/event-stream"}
            )
        return httpx2.Response(200, content=plain, headers={"content-type": "application/json"})

    def make() -> Any:
        http_client = httpx2.Client(transport=httpx2.MockTransport(handle))
        return OpenAI(base_url=base_url, api_key="sk-bench", max_retries=0, http_client=http_client)

    return make


_PATCHABLE = ("openai", "httpx2", "httpx")
_MISSING = object()


def _owners() -> Iterator[Any]:
    """The modules of the SDK and its HTTP client, and the classes defined in them."""
    seen: set[int] = set()
    for name, module in list(sys.modules.items()):
        if module is None or name.split(".")[0] not in _PATCHABLE:
            continue
        for owner in (module, *vars(module).values()):
            if id(owner) in seen:
                continue
            if owner is module or (
                isinstance(owner, type) and getattr(owner, "__module__", None) == name
            ):
                seen.add(id(owner))
                yield owner


def _snapshot() -> dict[tuple[int, str], tuple[Any, Any]]:
    return {
        (id(owner), key): (owner, value)
        for owner in _owners()
        for key, value in list(vars(owner).items())
    }


def _incidental(name: str, value: Any) -> bool:
    """A change that is not the instrumentation's: a submodule or class imported meanwhile,
    or pydantic completing a model's schema on first use."""
    return (
        isinstance(value, type | ModuleType)
        or name.startswith("__pydantic")
        or name == "__signature__"
    )


class _Toggle:
    """Switches the SDK between its bare and its instrumented attributes."""

    def __init__(self, before: dict[tuple[int, str], tuple[Any, Any]]) -> None:
        after = _snapshot()
        self.changes: list[tuple[Any, str, Any, Any]] = []
        known = {key[0] for key in before}
        for key, (owner, value) in after.items():
            old = before.get(key, (owner, _MISSING))[1]
            if key[0] in known and old is not value and not _incidental(key[1], value):
                self.changes.append((owner, key[1], old, value))
        for key, (owner, old) in before.items():
            if key not in after:
                self.changes.append((owner, key[1], old, _MISSING))

    def apply(self, instrumented: bool) -> None:
        for owner, name, old, new in self.changes:
            value = new if instrumented else old
            if value is _MISSING:
                if name in vars(owner):
                    delattr(owner, name)
            else:
                setattr(owner, name, value)


def measure(name: str, base_url: str, calls: int, rounds: int) -> dict[str, Any]:
    """In this process: bare and instrumented blocks, interleaved; (wall, cpu) µs per call."""
    make = _client_factory(base_url)
    bare, spare = make(), make()
    for stream in (False, True):
        for client in (bare, spare):
            _block(client, stream, 50)  # imports the SDK's lazily loaded modules, warms up
    before = _snapshot()
    try:
        traced = SETUPS[name](spare)
    except ImportError as exc:
        return {"name": name, "missing": str(exc)}
    toggle = _Toggle(before)
    if not toggle.changes and traced is bare:
        return {"name": name, "missing": "failed: the instrumentation changed nothing"}
    result: dict[str, Any] = {"name": name, "patched": len(toggle.changes)}
    for stream in (False, True):
        # fewer streaming calls per block: a streaming call takes about 4x as long
        per_block = calls if not stream else max(1, calls // 3)
        samples: dict[bool, list[tuple[float, float]]] = {False: [], True: []}
        for instrumented in (False, True):
            toggle.apply(instrumented)
            _block(traced if instrumented else bare, stream, per_block * 3)
        gc.collect()
        for index in range(rounds):
            for instrumented in (index % 2 == 0, index % 2 == 1):
                toggle.apply(instrumented)
                client = traced if instrumented else bare
                samples[instrumented].append(_block(client, stream, per_block))
        result[f"bare_{stream}"] = samples[False]
        result[f"traced_{stream}"] = samples[True]
    toggle.apply(True)
    return result


# -- the driver ----------------------------------------------------------------------------
def _start_server() -> tuple[subprocess.Popen[str], str]:
    code = (
        "import sys, time\n"
        "from clew.testing.llm_server import FakeLLMServer\n"
        "s = FakeLLMServer(reply_words=18).start()\n"
        "print(s.openai_base_url, flush=True)\n"
        "sys.stdin.read()\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    return proc, proc.stdout.readline().strip()


CHILD_TIMEOUT = 180.0
"""Seconds a peer's process may take; some peers hang at exit flushing to a closed port."""


BEFORE = "clew-before"
"""With ``--before SRC``: clew measured again with the clew in ``SRC`` (another version)."""


def _run_child(
    name: str, base_url: str, calls: int, rounds: int, cpu: int | None, before: str | None = None
) -> dict[str, Any]:
    env = dict(os.environ)
    if name == BEFORE and before:
        name = "clew"
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [before, env.get("PYTHONPATH")]))
    command = [
        *(sys.executable, __file__, "--child", name, "--url", base_url),
        *("--calls", str(calls), "--rounds", str(rounds)),
    ]
    try:
        out = subprocess.run(
            command,
            capture_output=True,
            text=True,
            check=False,
            timeout=CHILD_TIMEOUT,
            env=env,
            preexec_fn=None if cpu is None else (lambda: os.sched_setaffinity(0, {cpu})),
        )
        stdout, stderr, failed = out.stdout, out.stderr, out.returncode != 0
    except subprocess.TimeoutExpired as exc:  # measured, then hung at exit: keep the figures
        stdout = exc.stdout.decode() if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        stderr, failed = "timed out", False
    lines = [line for line in stdout.splitlines() if line.startswith("{")]
    if failed or not lines:
        tail = (stderr or stdout).strip().splitlines()[-1:] or ["?"]
        return {"name": name, "missing": f"failed: {tail[0]}"}
    result: dict[str, Any] = json.loads(lines[-1])
    return result


def _overhead(result: dict[str, Any], stream: bool, clock: int) -> tuple[float, float]:
    """(µs added, bare µs) of one process: fastest instrumented minus fastest bare block."""
    bare = min(sample[clock] for sample in result[f"bare_{stream}"])
    traced = min(sample[clock] for sample in result[f"traced_{stream}"])
    return traced - bare, bare


def main(argv: list[str] | None = None) -> int:
    """Run the comparison and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=30, help="non-streaming calls per block")
    parser.add_argument("--rounds", type=int, default=40, help="blocks per state per process")
    parser.add_argument("--runs", type=int, default=5, help="processes per instrumentation")
    parser.add_argument("--only", default=",".join([*PEERS, *REFERENCES]))
    parser.add_argument("--cpu", type=int, help="pin the measuring processes to this CPU")
    parser.add_argument("--child")
    parser.add_argument("--url")
    parser.add_argument(
        "--before",
        metavar="SRC",
        help="also measure the clew in this src folder (another version), interleaved",
    )
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(measure(args.child, args.url, args.calls, args.rounds)), flush=True)
        # Measured: leave now. Some peers flush to their (closed) backend at exit for minutes.
        os._exit(0)
    server, base_url = _start_server()
    names = [n for n in args.only.split(",") if n in LABELS]
    if args.before:
        LABELS[BEFORE] = f"clew before ({args.before})"
        names.append(BEFORE)
    results: dict[str, list[dict[str, Any]]] = {n: [] for n in names}
    missing: dict[str, str] = {}
    try:
        for _ in range(args.runs):
            for name in names:  # interleaved: machine noise hits every peer alike
                if name in missing:
                    continue
                result = _run_child(name, base_url, args.calls, args.rounds, args.cpu, args.before)
                if "missing" in result:
                    missing[name] = result["missing"]
                else:
                    results[name].append(result)
    finally:
        assert server.stdin is not None
        server.stdin.close()
        server.wait(timeout=10)
    _print_table(names, results, missing, args)
    return 0


def _print_table(
    names: list[str],
    results: dict[str, list[dict[str, Any]]],
    missing: dict[str, str],
    args: argparse.Namespace,
) -> None:
    rows = []
    bare: dict[bool, list[float]] = {False: [], True: []}
    for name in names:
        if name in missing:
            continue
        row: dict[Any, Any] = {"name": name}
        for stream in (False, True):
            for clock, label in ((0, "wall"), (1, "cpu")):
                figures = [_overhead(result, stream, clock) for result in results[name]]
                added = [f[0] for f in figures]
                row[label, stream] = statistics.median(added)
                row[label, stream, "spread"] = (min(added), max(added))
                if clock == 0:
                    bare[stream].extend(f[1] for f in figures)
        rows.append(row)
    rows.sort(key=lambda r: r["wall", False] + r["wall", True])
    print(
        f"{args.runs} processes per instrumentation, each {args.rounds} interleaved blocks per "
        f"state of {args.calls} non-streaming / {max(1, args.calls // 3)} streaming calls"
        + (f", pinned to CPU {args.cpu}" if args.cpu is not None else "")
    )
    if bare[False]:
        print(
            f"bare openai client: {statistics.median(bare[False]):.0f} µs non-streaming, "
            f"{statistics.median(bare[True]):.0f} µs streaming per call (fastest block)"
        )
    print("µs added per call: median over processes (wall spread min..max)")
    header = (
        f"{'rank':<5}{'instrumentation':<50}{'non-stream':>11}{'stream':>9}"
        f"{'cpu non-stream':>16}{'cpu stream':>12}   {'wall spread':<20}"
    )
    print(header)
    for rank, row in enumerate(rows, 1):
        plain, stream = row["wall", False, "spread"], row["wall", True, "spread"]
        print(
            f"{rank:<5}{LABELS[row['name']]:<50}"
            f"{row['wall', False]:>+8.0f} µs{row['wall', True]:>+6.0f} µs"
            f"{row['cpu', False]:>+13.0f} µs{row['cpu', True]:>+9.0f} µs   "
            f"{plain[0]:+.0f}..{plain[1]:+.0f} / {stream[0]:+.0f}..{stream[1]:+.0f}"
        )
    for name in names:
        if name in missing:
            print(f"{'-':<5}{LABELS[name]:<50}not measured: {missing[name][:70]}")


if __name__ == "__main__":
    sys.exit(main())
