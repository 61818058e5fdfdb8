"""What ``clew.completion`` adds over a raw HTTP POST of the same provider request, and what
``litellm.completion`` adds, side by side in one run.

Run: ``python benchmarks/completion.py [--calls N] [--rounds K] [--only NAMES]``.

The fake LLM server runs in a process of its own (so it does not share the GIL with the
callers) on 127.0.0.1. For each variant the same OpenAI chat request is sent:

- ``raw``: an ``httpx2.Client`` POST of the exact body clew sends, the JSON response decoded
  (the floor: what any client must do; streamed, the SSE lines read and each event decoded);
- ``clew miss``: ``clew.completion`` with the cache on and a prompt never seen before (so it
  looks in the cache, calls the provider, stores the answer), a span per call and one per
  attempt (exporter ``none``: the spans are made, then dropped);
- ``clew cache=false``: the same without the cache (no lookup, no write);
- ``clew hit``: the same request again, answered from the cache (a SQLite file, with its
  in-process front);
- ``litellm``: ``litellm.completion`` on the same request (no callbacks, no cache);
- and the same four streamed (the text deltas read to the end).

Variants are interleaved in rounds of ``N`` calls, so each sees the same machine load. The
table gives p50 and p99 latency per call, and what each adds over ``raw`` at p50.

Targets (issue 11): a miss adds at most 150 µs at p50 over the raw POST, a hit returns in under
100 µs at p50, and clew adds at most a fifth of what LiteLLM adds.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

MODEL = "gpt-4o-mini"
_counter = itertools.count()


def _server() -> tuple[subprocess.Popen[str], str]:
    code = (
        "import sys, time\n"
        "from clew.testing.llm_server import FakeLLMServer\n"
        "server = FakeLLMServer(record_requests=False).start()\n"
        "print(server.url, flush=True)\n"
        "sys.stdin.read()\n"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert process.stdout is not None
    url = process.stdout.readline().strip()
    return process, url


def _messages(unique: bool) -> list[dict[str, str]]:
    tail = f" #{next(_counter)}" if unique else ""
    return [{"role": "user", "content": "Summarise the benefits of tracing LLM calls." + tail}]


def _variants(url: str, only: set[str] | None) -> dict[str, Callable[[], Any]]:
    import httpx2

    import clew

    base = url + "/v1"
    store = Path(tempfile.mkdtemp()) / "traces.db"
    clew.configure(
        exporter="none",
        store_path=store,
        providers={"openai": {"base_url": base, "api_key": "sk-bench"}},
    )
    client = httpx2.Client()
    headers = {"authorization": "Bearer sk-bench", "content-type": "application/json"}

    def body(messages: list[dict[str, str]], stream: bool) -> bytes:
        value: dict[str, Any] = {"model": MODEL, "messages": messages}
        if stream:
            value["stream"] = True
            value["stream_options"] = {"include_usage": True}
        return json.dumps(value, separators=(",", ":")).encode()

    def raw() -> Any:
        response = client.post(
            base + "/chat/completions", content=body(_messages(True), False), headers=headers
        )
        return json.loads(response.content)

    def raw_stream() -> Any:
        # The least a caller does to get the text of a stream: read the SSE lines and decode
        # each event's JSON.
        content = body(_messages(True), True)
        text = []
        with client.stream(
            "POST", base + "/chat/completions", content=content, headers=headers
        ) as response:
            for line in response.iter_lines():
                if line.startswith("data: ") and line != "data: [DONE]":
                    event = json.loads(line[6:])
                    if event.get("choices"):
                        text.append(event["choices"][0]["delta"].get("content") or "")
        return "".join(text)

    def request(unique: bool) -> dict[str, Any]:
        return {
            "llm_configuration": {
                "provider": "openai",
                "model": MODEL,
                "messages": _messages(unique),
            }
        }

    hit_request = request(False)
    clew.completion(hit_request)  # fill the cache

    def clew_miss() -> Any:
        return clew.completion(request(True))

    def clew_uncached() -> Any:
        return clew.completion({**request(True), "cache": False})

    def clew_hit() -> Any:
        reply = clew.completion(hit_request)
        assert reply.cache_hit
        return reply

    def clew_miss_stream() -> Any:
        with clew.stream_completion(request(True)) as stream:
            return sum(len(piece) for piece in stream)

    def clew_hit_stream() -> Any:
        with clew.stream_completion(hit_request) as stream:
            return sum(len(piece) for piece in stream)

    variants: dict[str, Callable[[], Any]] = {
        "raw": raw,
        "clew miss": clew_miss,
        "clew cache=false": clew_uncached,
        "clew hit": clew_hit,
        "raw stream": raw_stream,
        "clew miss stream": clew_miss_stream,
        "clew hit stream": clew_hit_stream,
    }
    try:
        import litellm

        litellm.telemetry = False

        def lite() -> Any:
            return litellm.completion(
                model="openai/" + MODEL,
                messages=_messages(True),
                api_base=base,
                api_key="sk-bench",
            )

        def lite_stream() -> Any:
            chunks = litellm.completion(
                model="openai/" + MODEL,
                messages=_messages(True),
                api_base=base,
                api_key="sk-bench",
                stream=True,
            )
            return sum(len(c.choices[0].delta.content or "") for c in chunks if c.choices)

        variants["litellm"] = lite
        variants["litellm stream"] = lite_stream
    except ImportError:
        print("litellm is not installed: its rows are left out (pip install litellm)")
    if only:
        variants = {k: v for k, v in variants.items() if k in only or k.startswith("raw")}
    return variants


def _measure(
    variants: dict[str, Callable[[], Any]], calls: int, rounds: int
) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {name: [] for name in variants}
    for fn in variants.values():  # warm up connections, imports, caches
        for _ in range(20):
            fn()
    for _ in range(rounds):
        for name, fn in variants.items():
            samples = times[name]
            for _ in range(calls):
                started = time.perf_counter()
                fn()
                samples.append(time.perf_counter() - started)
    return times


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--only", default="", help="comma-separated variant names")
    args = parser.parse_args()
    process, url = _server()
    try:
        only = {n.strip() for n in args.only.split(",") if n.strip()} or None
        variants = _variants(url, only)
        times = _measure(variants, args.calls, args.rounds)
    finally:
        assert process.stdin is not None
        process.stdin.close()
        process.wait(timeout=10)
    p50 = {name: statistics.median(values) for name, values in times.items()}
    print(
        f"{args.rounds} rounds x {args.calls} calls per variant, python {sys.version.split()[0]},"
        f" {os.cpu_count()} cpus"
    )
    print("| variant | p50 | p99 | adds at p50 over raw |")
    print("|---|---:|---:|---:|")
    for name, values in times.items():
        raw = "raw stream" if name.endswith("stream") else "raw"
        adds = p50[name] - p50[raw]
        shown = "" if name.startswith("raw") else f"{adds * 1e6:+.0f} µs"
        print(
            f"| {name} | {p50[name] * 1e6:.0f} µs | {_pct(values, 0.99) * 1e6:.0f} µs | {shown} |"
        )
    for suffix in ("", " stream"):
        lite = p50.get("litellm" + suffix)
        if lite is not None:
            raw = p50["raw" + suffix]
            ratio = (p50["clew miss" + suffix] - raw) / max(lite - raw, 1e-9)
            print(f"clew miss{suffix} adds {ratio:.2f}x what litellm{suffix} adds")


if __name__ == "__main__":
    main()
