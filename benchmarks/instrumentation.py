"""What instrumenting the OpenAI client adds to a call: clew and its peers, side by side.

Run: ``python benchmarks/instrumentation.py [--calls N] [--blocks B] [--runs R] [--only NAMES]``.

The fake LLM server's answers (a chat completion, and a stream of about 20 chunks plus a usage
chunk) are fetched from it once over HTTP, then served to the real ``openai`` client by an
in-process ``MockTransport``: the socket round trip (about 1-2 ms on a loaded 2-core machine,
with as much jitter) would otherwise drown differences of tens of microseconds. Each
instrumentation is measured in a fresh process: first the bare client (warmed up), then the
same client after the instrumentation is turned on, ``B`` blocks of ``N`` calls each. A
block's mean is one sample; the overhead is the fastest instrumented block minus the fastest
bare block of the same process (the least disturbed by other load on the machine), and the
reported figure is the median over ``R`` processes, which run interleaved across peers.

Spans go nowhere (clew's ``exporter="none"``; an SDK ``TracerProvider`` without processors for
the OpenTelemetry-based peers; Langfuse and LangSmith pointed at a closed local port), so the
numbers are the instrumentation's own cost on the caller's thread.

Peers not installed are reported as such. Install them with the ``bench`` extra (they may need
their own virtualenv if they pin an older ``openai``).

Target (issue 3): clew adds less than every peer, at most 100 µs non-streaming and 120 µs
streaming per call.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
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


SETUPS: dict[str, Callable[[Any], Any]] = {
    "clew": _clew,
    "otel-openai-v2": _otel_v2,
    "openllmetry": _openllmetry,
    "openinference": _openinference,
    "langfuse": _langfuse,
    "langsmith": _langsmith,
    "logfire": _logfire,
}


def _call(client: Any, stream: bool) -> None:
    if stream:
        for _ in client.chat.completions.create(
            model=MODEL, messages=MESSAGES, stream=True, stream_options={"include_usage": True}
        ):
            pass
    else:
        client.chat.completions.create(model=MODEL, messages=MESSAGES)


def _samples(client: Any, stream: bool, calls: int, blocks: int) -> list[float]:
    for _ in range(max(100, calls)):
        _call(client, stream)
    out = []
    for _ in range(blocks):
        start = time.perf_counter()
        for _ in range(calls):
            _call(client, stream)
        out.append((time.perf_counter() - start) / calls * 1e6)
    return out


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


def _client(base_url: str) -> Any:
    import httpx2
    from openai import OpenAI

    plain, stream = _recorded(base_url)

    def handle(request: httpx2.Request) -> httpx2.Response:
        if b'"stream":true' in request.content or b'"stream": true' in request.content:
            return httpx2.Response(
                200, content=stream, headers={"content-type": "text/event-stream"}
            )
        return httpx2.Response(200, content=plain, headers={"content-type": "application/json"})

    http_client = httpx2.Client(transport=httpx2.MockTransport(handle))
    return OpenAI(base_url=base_url, api_key="sk-bench", max_retries=0, http_client=http_client)


def measure(name: str, base_url: str, calls: int, blocks: int) -> dict[str, Any]:
    """In this process: bare client, then instrumented; µs per call per block."""
    client = _client(base_url)
    result: dict[str, Any] = {"name": name}
    for stream in (False, True):
        result[f"bare_{stream}"] = _samples(client, stream, calls, blocks)
    try:
        traced = SETUPS[name](client)
    except ImportError as exc:
        return {"name": name, "missing": str(exc)}
    for stream in (False, True):
        result[f"traced_{stream}"] = _samples(traced, stream, calls, blocks)
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


def _run_child(name: str, base_url: str, calls: int, blocks: int) -> dict[str, Any]:
    command = [
        *(sys.executable, __file__, "--child", name, "--url", base_url),
        *("--calls", str(calls), "--blocks", str(blocks)),
    ]
    try:
        out = subprocess.run(
            command, capture_output=True, text=True, check=False, timeout=CHILD_TIMEOUT
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


def main(argv: list[str] | None = None) -> int:
    """Run the comparison and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=100)
    parser.add_argument("--blocks", type=int, default=9)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--only", default=",".join(PEERS))
    parser.add_argument("--child")
    parser.add_argument("--url")
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(measure(args.child, args.url, args.calls, args.blocks)), flush=True)
        return 0
    server, base_url = _start_server()
    names = [n for n in args.only.split(",") if n in PEERS]
    overheads: dict[str, dict[str, list[float]]] = {n: {"False": [], "True": []} for n in names}
    bare: dict[str, list[float]] = {"False": [], "True": []}
    missing: dict[str, str] = {}
    try:
        for _ in range(args.runs):
            for name in names:  # interleaved: machine noise hits every peer alike
                if name in missing:
                    continue
                result = _run_child(name, base_url, args.calls, args.blocks)
                if "missing" in result:
                    missing[name] = result["missing"]
                    continue
                for stream in ("False", "True"):
                    base = min(result[f"bare_{stream}"])
                    traced = min(result[f"traced_{stream}"])
                    overheads[name][stream].append(traced - base)
                    bare[stream].append(base)
    finally:
        assert server.stdin is not None
        server.stdin.close()
        server.wait(timeout=10)
    print(
        f"bare openai client: {statistics.median(bare['False']):.0f} µs non-streaming, "
        f"{statistics.median(bare['True']):.0f} µs streaming per call (fastest block)"
    )
    print(f"{'instrumentation':<52} {'non-streaming':>14} {'streaming':>10}")
    for name in names:
        label = PEERS[name]
        if name in missing:
            print(f"{label:<52} {'not measured: ' + missing[name][:60]}")
            continue
        plain = statistics.median(overheads[name]["False"])
        stream = statistics.median(overheads[name]["True"])
        print(f"{label:<52} {plain:>+11.0f} µs {stream:>+7.0f} µs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
