"""What ``clew serve`` adds over calling the provider directly, and what LiteLLM's proxy adds,
side by side in one run.

Run: ``python benchmarks/gateway.py [--requests N] [--seconds S] [--rounds K] [--only NAMES]
[--workers 1,2]`` in an environment with ``clew[gateway]`` and ``litellm[proxy]``.

Every server runs in a process (group) of its own on 127.0.0.1, started by this script and
killed at its end. The same OpenAI chat request (``gpt-4o-mini``, one user message), plain or
with ``"stream": true``, is sent to three targets:

- ``direct``: the fake LLM server (:class:`~clew.testing.llm_server.FakeLLMServer`, one process,
  a thread per connection) itself, at ``/v1/chat/completions``: the floor;
- ``clew``: ``clew serve --workers W`` pointed at it (``CLEW_OPENAI_BASE_URL``), exporter
  ``none`` (each request's spans are made, then dropped), the cache off (the route's default),
  a gateway key (``CLEW_GATEWAY_KEYS``), uvicorn at log level warning (no access log);
- ``litellm``: ``litellm --config cfg.yaml --num_workers W`` with one ``model_list`` entry
  (``openai/gpt-4o-mini`` at the fake server), a master key and no database, so no spend logs
  or key lookups; no callbacks, no cache; ``LITELLM_LOCAL_MODEL_COST_MAP=True`` (no network)
  and ``LITELLM_LOG=WARNING`` (no access log, as clew); everything else its defaults. Both
  gateways check the same bearer key, which the direct target ignores, and both run on
  uvicorn with the event loop and HTTP parser it finds installed (the header line names them).

The load generator is this process: a minimal HTTP/1.1 keep-alive client on asyncio streams
(it writes the request bytes and reads the head, then the ``content-length`` or chunked body),
so that it takes little of the CPU it shares with the servers. Each measurement opens its own
connections, and the first request on each is not measured. Per round, every target gets,
plain and streamed (the SSE body read to ``data: [DONE]``):

- concurrency 1: ``N`` requests one after another on one connection: p50 and p99 latency, and
  what the gateway adds at p50 over ``direct``;
- concurrency 64: 64 connections, each sending its next request as soon as it has the
  answer. Measured: the requests sent during ``S`` seconds from the moment every connection
  has had a first answer (so that they no longer move in step), the 64 kept busy until the
  last of them is answered: their p50 and p99 latency, and the requests per second, which in
  such a closed loop is 64 / their mean latency (Little's law). (Counting the answers within
  the window instead is biased when the latency is near the window's length, as LiteLLM's is.)

Targets are warmed up, then interleaved in rounds (their order rotating each round) so that
each sees the same machine. The ``direct`` row is the ceiling of the fake provider (with this
load generator): a gateway cannot answer faster than it. Any non-200 answer, broken connection
or stream without ``[DONE]`` is counted as an error and printed under the table.

Targets (issue): at concurrency 1 clew adds under 1 ms at p50, and at most a third of what
LiteLLM adds; at concurrency 64 clew answers at least twice LiteLLM's requests per second.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.metadata
import json
import os
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

MODEL = "gpt-4o-mini"
CONCURRENCY = 64
_BIN = Path(sys.executable).parent
_STARTUP_SECONDS = 300.0
_FOREIGN = ("CLEW_", "OTEL_", "LITELLM_", "PROMETHEUS_MULTIPROC_DIR", "OPENAI_")
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # no proxy


@dataclass(frozen=True)
class Target:
    """A server to measure: where it listens and which request bytes it is sent."""

    name: str
    workers: int  # 0 for the fake provider itself
    port: int
    requests: dict[bool, bytes]  # by stream


@dataclass
class Results:
    """What one target measured, plain or streamed, over every round."""

    single: list[float] = field(default_factory=list)  # seconds per request, concurrency 1
    loaded: list[float] = field(default_factory=list)  # seconds per request, concurrency 64
    errors: int = 0


class Connection:
    """One keep-alive HTTP/1.1 connection that sends a request and reads its whole answer."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def open(self) -> None:
        """(Re)connect."""
        self.close()
        self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)

    def close(self) -> None:
        """Drop the connection, if any."""
        if self.writer is not None:
            self.writer.close()
            self.reader = self.writer = None

    async def send(self, request: bytes, stream: bool) -> bool:
        """Send ``request`` and read the answer; True for a 200 (a stream: ending in
        ``[DONE]``). A broken connection is reopened and counts as a failure."""
        try:
            return await self._exchange(request, stream)
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError):
            await self.open()
            return False

    async def _exchange(self, request: bytes, stream: bool) -> bool:
        reader, writer = self.reader, self.writer
        assert reader is not None and writer is not None
        writer.write(request)
        head = (await reader.readuntil(b"\r\n\r\n")).lower()
        ok = head.startswith((b"http/1.1 200", b"http/1.0 200"))
        at = head.find(b"\r\ncontent-length:")
        if at >= 0:
            await reader.readexactly(int(head[at + 17 : head.index(b"\r\n", at + 2)]))
            return ok and not stream
        last = b""
        while size := int((await reader.readuntil(b"\r\n")).split(b";")[0], 16):
            last = await reader.readexactly(size + 2)
        await reader.readuntil(b"\r\n")  # the end of the (empty) trailer
        return ok and (not stream or b"data: [DONE]" in last)


def _request(port: int, path: str, key: str, stream: bool) -> bytes:
    body: dict[str, object] = {
        "model": MODEL,
        "messages": [{"role": "user", "content": "Summarise the benefits of tracing LLM calls."}],
    }
    if stream:
        body["stream"] = True
    data = json.dumps(body, separators=(",", ":")).encode()
    head = (
        f"POST {path} HTTP/1.1\r\nhost: 127.0.0.1:{port}\r\nauthorization: Bearer {key}\r\n"
        f"content-type: application/json\r\ncontent-length: {len(data)}\r\n\r\n"
    )
    return head.encode() + data


async def _open(port: int, count: int) -> list[Connection]:
    """``count`` open connections."""
    connections = [Connection(port) for _ in range(count)]
    for connection in connections:  # one at a time: the fake server's accept queue is short
        await connection.open()
    return connections


async def _single(target: Target, stream: bool, count: int, results: Results) -> None:
    """``count`` requests one after another on one connection."""
    request = target.requests[stream]
    (connection,) = await _open(target.port, 1)
    await connection.send(request, stream)  # not measured
    clock = time.perf_counter
    for _ in range(count):
        started = clock()
        if await connection.send(request, stream):
            results.single.append(clock() - started)
        else:
            results.errors += 1
    connection.close()


async def _loaded(target: Target, stream: bool, seconds: float, results: Results) -> None:
    """``CONCURRENCY`` connections, each sending its next request as soon as it has the answer.
    Measured: the requests sent during ``seconds`` from the moment every connection has had an
    answer (so that they no longer move in step); until the last of those is answered, the
    others keep sending, so that every measured request sees the same load."""
    request = target.requests[stream]
    connections = await _open(target.port, CONCURRENCY)
    clock = time.perf_counter
    window: list[float] = []  # start and end, once every connection has had an answer
    primed = pending = 0  # connections answered once; measured requests not answered yet

    async def run(connection: Connection) -> None:
        nonlocal primed, pending
        first = True
        while True:
            started = clock()
            measured = bool(window) and started < window[1]
            if window and not measured and not pending:
                return
            pending += measured
            ok = await connection.send(request, stream)
            ended = clock()
            pending -= measured
            if not ok:
                results.errors += 1
            elif measured:
                results.loaded.append(ended - started)
            if first:
                first = False
                primed += 1
                if primed == CONCURRENCY:
                    window.extend((ended, ended + seconds))

    await asyncio.gather(*(run(c) for c in connections))
    for connection in connections:
        connection.close()


def _key(target: Target, stream: bool) -> tuple[str, int, bool]:
    return target.name, target.workers, stream


async def _measure(
    targets: list[Target], requests: int, seconds: float, rounds: int
) -> dict[tuple[str, int, bool], Results]:
    results = {_key(t, s): Results() for t in targets for s in (False, True)}
    for target in targets:  # warm up: imports, connection pools, every worker
        for stream in (False, True):
            scratch = Results()
            await _single(target, stream, 20, scratch)
            await _loaded(target, stream, 0.5, scratch)
    for n in range(rounds):
        order = targets[n % len(targets) :] + targets[: n % len(targets)]
        for stream in (False, True):
            for target in order:
                await _single(target, stream, requests, results[_key(target, stream)])
            for target in order:
                await _loaded(target, stream, seconds, results[_key(target, stream)])
    return results


# -- servers ---------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _environment(**values: str) -> dict[str, str]:
    """This process's environment without settings that would change what is measured (a
    proxy, too: the servers talk to 127.0.0.1)."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(_FOREIGN) and not k.upper().endswith("_PROXY")
    }
    return {**env, **values}


def _fake_server(workdir: Path) -> tuple[subprocess.Popen[str], str]:
    # socketserver's listen backlog of 5 drops connections that 64 clients (or a gateway's
    # pool) open at once, and the kernel retries them a second or more later.
    code = (
        "import sys\n"
        "from clew.testing.llm_server import FakeLLMServer\n"
        "server = FakeLLMServer(record_requests=False).start()\n"
        "print(server.url, flush=True)\n"
        "sys.stdin.read()\n"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", code],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=workdir,
        start_new_session=True,
    )
    assert process.stdout is not None
    return process, process.stdout.readline().strip()


def _spawn(command: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[str]:
    with log.open("w") as out:  # a file, not a pipe: a full pipe would stall the server
        return subprocess.Popen(
            command,
            env=env,
            cwd=log.parent,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )


def _wait_ready(process: subprocess.Popen[str], port: int, path: str, log: Path) -> None:
    """Poll ``path`` until it answers 200; raise if the server exits or takes too long."""
    deadline = time.monotonic() + _STARTUP_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = log.read_text(errors="replace")[-3000:]
            raise RuntimeError(f"{log.stem} exited with {process.returncode}:\n{tail}")
        try:
            with _DIRECT.open(f"http://127.0.0.1:{port}{path}", timeout=5) as answer:
                if answer.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"{log.stem} did not answer {path} within {_STARTUP_SECONDS:.0f} s")


def _stop(process: subprocess.Popen[str]) -> None:
    """Stop the process and everything it started (its process group)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=15)
    with contextlib.suppress(ProcessLookupError):  # whatever is left of the group
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def _start_gateways(
    names: list[str], workers: list[int], base_url: str, key: str, workdir: Path
) -> list[tuple[Target, subprocess.Popen[str], str, Path]]:
    """Start every gateway at once (they take a while to import); not yet waited for."""
    started = []
    for name in names:
        for count in workers:
            port = _free_port()
            log = workdir / f"{name}-{count}.log"
            requests = {s: _request(port, "/v1/chat/completions", key, s) for s in (False, True)}
            if name == "clew":
                command = [str(_BIN / "clew"), "serve", "--host", "127.0.0.1"]
                command += ["--port", str(port), "--workers", str(count)]
                env = _environment(
                    CLEW_OPENAI_BASE_URL=base_url,
                    CLEW_OPENAI_API_KEY="sk-bench",
                    CLEW_EXPORTER="none",
                    CLEW_GATEWAY_KEYS=key,
                    CLEW_STORE=str(workdir / "traces.db"),
                )
                health = "/healthz"
            else:
                config = workdir / "litellm.yaml"
                entry = {
                    "model_name": MODEL,
                    "litellm_params": {
                        "model": f"openai/{MODEL}",
                        "api_base": base_url,
                        "api_key": "sk-bench",
                    },
                }
                config.write_text(json.dumps({"model_list": [entry]}))  # JSON is YAML
                command = [str(_BIN / "litellm"), "--config", str(config), "--host", "127.0.0.1"]
                command += ["--port", str(port), "--num_workers", str(count)]
                env = _environment(
                    LITELLM_MASTER_KEY=key,
                    LITELLM_LOCAL_MODEL_COST_MAP="True",
                    LITELLM_LOG="WARNING",
                )
                health = "/health/liveliness"
            process = _spawn(command, env, log)
            started.append((Target(name, count, port, requests), process, health, log))
    return started


# -- report ----------------------------------------------------------------------------------


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _ms(seconds: float) -> str:
    return f"{seconds * 1e3:.2f}"


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


def _versions() -> str:
    found = []
    for name in ("clew", "litellm", "fastapi", "uvicorn", "uvloop", "httptools"):
        try:
            found.append(f"{name} {importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            found.append(f"no {name}")
    return ", ".join(found)


def _report(targets: list[Target], results: dict[tuple[str, int, bool], Results]) -> None:
    print(
        "| target | workers | stream | c=1 p50 ms | c=1 p99 ms | added p50 ms"
        " | c=64 rps | c=64 p50 ms | c=64 p99 ms |"
    )
    print("|---|---:|---|---:|---:|---:|---:|---:|---:|")
    p50: dict[tuple[str, int, bool], float] = {}
    rps: dict[tuple[str, int, bool], float] = {}
    for stream in (False, True):
        for target in targets:
            key = _key(target, stream)
            r = results[key]
            if not r.single or not r.loaded:
                print(f"| {target.name} | {target.workers or '-'} | {_yes(stream)} | no answers |")
                continue
            p50[key] = statistics.median(r.single)
            rps[key] = CONCURRENCY / statistics.fmean(r.loaded)  # Little's law
            floor = p50.get(("direct", 0, stream))
            added = "" if target.workers == 0 or floor is None else _ms(p50[key] - floor)
            print(
                f"| {target.name} | {target.workers or '-'} | {_yes(stream)}"
                f" | {_ms(p50[key])} | {_ms(_pct(r.single, 0.99))} | {added}"
                f" | {rps[key]:.0f} | {_ms(statistics.median(r.loaded))}"
                f" | {_ms(_pct(r.loaded, 0.99))} |"
            )
    print()
    for key, r in results.items():
        if r.errors:
            print(f"{key[0]} workers={key[1]} stream={key[2]}: {r.errors} failed requests")
    _verdicts(p50, rps, sorted({t.workers for t in targets if t.workers}))


def _verdicts(
    p50: dict[tuple[str, int, bool], float],
    rps: dict[tuple[str, int, bool], float],
    workers: list[int],
) -> None:
    """A line per variant: clew against the targets of the issue."""
    for stream in (False, True):
        kind = "stream" if stream else "non-stream"
        floor = p50.get(("direct", 0, stream))
        for count in workers:
            clew, lite = ("clew", count, stream), ("litellm", count, stream)
            if clew not in p50 or floor is None:
                continue
            extra = p50[clew] - floor
            line = f"{kind}, {count} worker(s): clew adds {_ms(extra)} ms at c=1 p50 (< 1 ms:"
            line += f" {'met' if extra < 1e-3 else 'MISSED'})"
            if lite in p50:
                ratio = extra / max(p50[lite] - floor, 1e-9)
                times = rps[clew] / rps[lite]
                line += (
                    f", {ratio:.2f}x LiteLLM's {_ms(p50[lite] - floor)} ms (<= 0.33x:"
                    f" {'met' if ratio <= 1 / 3 else 'MISSED'}); at c=64 {times:.1f}x LiteLLM's"
                    f" requests per second (>= 2x: {'met' if times >= 2 else 'MISSED'})"
                )
            print(line)


def _run(
    names: list[str], workers: list[int], args: argparse.Namespace, workdir: Path
) -> tuple[list[Target], dict[tuple[str, int, bool], Results]]:
    """Start the servers, measure them, stop them."""
    key = "sk-" + secrets.token_hex(32)
    fake, url = _fake_server(workdir)
    processes = [fake]
    try:
        port = int(url.rsplit(":", 1)[1])
        requests = {s: _request(port, "/v1/chat/completions", key, s) for s in (False, True)}
        direct = Target("direct", 0, port, requests)
        gateways = _start_gateways(names, workers, url + "/v1", key, workdir)
        processes += [process for _, process, _, _ in gateways]
        for target, process, health, log in gateways:
            _wait_ready(process, target.port, health, log)
        targets = [direct, *(target for target, _, _, _ in gateways)]
        return targets, asyncio.run(_measure(targets, args.requests, args.seconds, args.rounds))
    finally:
        for process in processes:
            _stop(process)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=100, help="per round, concurrency 1")
    parser.add_argument("--seconds", type=float, default=2.0, help="per round, concurrency 64")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--only", default="", help="comma-separated gateways (clew, litellm)")
    parser.add_argument("--workers", default="1,2", help="comma-separated worker counts")
    args = parser.parse_args()
    only = {n.strip() for n in args.only.split(",") if n.strip()}
    names = [n for n in ("clew", "litellm") if not only or n in only]
    if "litellm" in names and not (_BIN / "litellm").exists():
        print("litellm is not installed: its rows are left out (pip install 'litellm[proxy]')")
        names.remove("litellm")
    workers = [int(w) for w in args.workers.split(",") if w.strip()]
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="clew-gateway-bench-") as scratch:
        targets, results = _run(names, workers, args, Path(scratch))
    print(
        f"{args.rounds} rounds of {args.requests} requests at concurrency 1 and {args.seconds:g} s"
        f" at concurrency {CONCURRENCY} per target; {time.monotonic() - started:.0f} s in all"
    )
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cpus; {_versions()}")
    print()
    _report(targets, results)
    print()
    print(
        "Reproduce: pip install 'clew[gateway]' 'litellm[proxy]';"
        f" python benchmarks/gateway.py --requests {args.requests} --seconds {args.seconds:g}"
        f" --rounds {args.rounds} --workers {args.workers}"
    )


if __name__ == "__main__":
    main()
