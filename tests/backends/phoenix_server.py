"""A real Arize Phoenix server on 127.0.0.1 for the backend tests, started from its own venv
(the ``phoenix`` fixture; conftest.py makes it available).

arize-phoenix pins dependencies that clew's locked dev environment cannot share (anthropic 1.x
among them), so it lives in a venv of its own: ``.venv-phoenix`` at the repository's root
(the README's test command makes it from ``.ci/phoenix.txt``), or the one ``CLEW_PHOENIX_VENV``
names. Without it the tests fail, saying how to make it.

The server runs ``phoenix serve`` with its HTTP port on 127.0.0.1 (``PHOENIX_HOST``), its
data in the test's temporary directory (``PHOENIX_WORKING_DIR``) and telemetry off. Phoenix
binds its gRPC port to every interface with no setting to change that, so the server is started
through a few lines (:data:`LAUNCHER`) that bind it to 127.0.0.1 instead, then run Phoenix's own
``main``. The same lines make the server stop by itself: when the test process ends, however it
ends, the server's standard input closes and it exits; and it never runs longer than
:data:`LIFETIME` seconds.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2
import pytest

from clew.testing.otlp_receiver import unused_port

REPO = Path(__file__).resolve().parents[2]
LIFETIME = 900
"""Seconds a Phoenix server lives at most."""

LAUNCHER = f"""\
import os, sys, threading

import grpc.aio

_server = grpc.aio.server


def _loopback_server(*args, **kwargs):
    server = _server(*args, **kwargs)
    bind = server.add_insecure_port
    server.add_insecure_port = lambda address: bind(address.replace("[::]", "127.0.0.1", 1))
    return server


grpc.aio.server = _loopback_server


def _stop_with_the_test():
    sys.stdin.read()  # returns when the test process closes the pipe, or dies
    os._exit(0)


threading.Thread(target=_stop_with_the_test, daemon=True).start()
threading.Timer({LIFETIME}, lambda: os._exit(3)).start()
from phoenix.server.main import main

sys.argv = ["phoenix", "serve"]
sys.exit(main())
"""


@dataclass(frozen=True)
class Phoenix:
    """A running Phoenix server."""

    url: str
    """Its HTTP base URL: UI, REST API (``/v1/...``) and OTLP/HTTP (``/v1/traces``)."""
    grpc_port: int

    def get(self, path: str, **params: Any) -> Any:
        """GET ``path`` of the REST API, as JSON."""
        response = httpx2.get(self.url + path, params=params, timeout=10)
        response.raise_for_status()
        return response.json()


def _phoenix_venv() -> Path:
    path = Path(os.environ.get("CLEW_PHOENIX_VENV") or REPO / ".venv-phoenix")
    if not (path / "bin" / "phoenix").exists():
        pytest.fail(
            f"no phoenix in {path}/bin: python3 -m venv .venv-phoenix &&"
            " .venv-phoenix/bin/pip install -r .ci/phoenix.txt (the README's test command does;"
            " or point CLEW_PHOENIX_VENV at a venv with arize-phoenix)",
            pytrace=False,
        )
    return path


@pytest.fixture(scope="session")
def phoenix(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Phoenix]:
    """A Phoenix server on 127.0.0.1, stopped when the tests end."""
    venv = _phoenix_venv()
    port, grpc_port = unused_port(), unused_port()
    env = {
        **os.environ,
        "PHOENIX_HOST": "127.0.0.1",
        "PHOENIX_PORT": str(port),
        "PHOENIX_GRPC_PORT": str(grpc_port),
        "PHOENIX_WORKING_DIR": str(tmp_path_factory.mktemp("phoenix")),
        "PHOENIX_TELEMETRY_ENABLED": "false",
    }
    log = tmp_path_factory.mktemp("phoenix-log") / "phoenix.log"
    with open(log, "wb") as output:
        process = subprocess.Popen(
            [str(venv / "bin" / "python"), "-c", LAUNCHER],
            stdin=subprocess.PIPE,
            stdout=output,
            stderr=subprocess.STDOUT,
            env=env,
        )
    server = Phoenix(f"http://127.0.0.1:{port}", grpc_port)
    try:
        _wait_until_up(process, server, log)
        yield server
    finally:
        if process.stdin is not None:
            process.stdin.close()  # the launcher exits at once
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def _wait_until_up(process: subprocess.Popen[bytes], server: Phoenix, log: Path) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"phoenix serve exited ({process.returncode}): {log.read_text()[-2000:]}")
        try:
            if httpx2.get(server.url + "/healthz", timeout=1).status_code == 200:
                return
        except httpx2.HTTPError:
            pass
        time.sleep(0.2)
    pytest.fail(f"phoenix serve did not answer /healthz within 120 s: {log.read_text()[-2000:]}")
