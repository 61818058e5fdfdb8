"""Fixtures for the completion gateway: the fake LLM server configured as every provider, a
real redis-server, and ``clew serve`` processes."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx2
import pytest

import clew
from clew.testing import SpanCapture, capture_spans
from clew.testing.llm_server import FakeLLMServer


def providers_at(server: FakeLLMServer) -> dict[str, dict[str, str]]:
    """Every provider of the gateway pointed at ``server``, each with its own test key."""
    return {
        name: {**settings, "api_key": f"key-{name}"}
        for name, settings in server.providers().items()
    }


@pytest.fixture
def server() -> Iterator[FakeLLMServer]:
    """A fake LLM server configured as every gateway provider (quick deadline and retries)."""
    with FakeLLMServer() as fake:
        clew.configure(
            providers=providers_at(fake),
            gateway={"timeout": 10.0, "max_retries": 2, "cache_url": None},
        )
        try:
            yield fake
        finally:
            clew.configure(providers={}, gateway={})


@pytest.fixture
def spans() -> Iterator[SpanCapture]:
    """The spans the test makes."""
    with capture_spans() as capture:
        yield capture


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_gateway(env: dict[str, str], *args: str) -> tuple[subprocess.Popen[str], str]:
    """``clew serve`` in a process with ``env`` on a free loopback port, once it answers
    ``/healthz``: the process and its URL."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "clew.cli", "serve", "--port", str(port), *args],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(
                f"clew serve exited: {process.stderr.read() if process.stderr else ''}"
            )
        try:
            if httpx2.get(url + "/healthz", timeout=0.5).status_code == 200:
                return process, url
        except httpx2.HTTPError:
            time.sleep(0.1)
    process.kill()
    process.communicate()
    raise AssertionError("clew serve did not start")


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A redis-server of this module's own on a free port: its URL."""
    binary = shutil.which("redis-server") or "/usr/bin/redis-server"
    if not os.path.exists(binary):
        pytest.fail("redis-server is not installed: apt-get install redis-server")
    port = free_port()
    folder = tmp_path_factory.mktemp("redis")
    command = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--dir"]
    server = subprocess.Popen(
        [*command, str(folder), "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(16).startswith(b"+PONG"):
                        break
            except OSError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"redis-server did not start on port {port}")
            time.sleep(0.02)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        server.terminate()
        server.wait(10)
