"""A process that exits with spans queued delivers them, or spills them, and never hangs."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from clew.testing.otlp_receiver import Fault, OtlpHttpReceiver, unused_port

from .conftest import Harness

EXIT_TIMEOUT = 1.0
# Interpreter start-up and imports, on a slow machine; the exit flush itself is bounded above.
SLACK = 8.0

CHILD = textwrap.dedent(
    """
    import sys
    from opentelemetry.sdk.trace import TracerProvider
    from clew.exporters.lifecycle import build_pipeline, install_exit_flush
    from clew.exporters.otlp import create_otlp_exporter

    url, count, spill, hook = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
    pipeline = build_pipeline(
        "otlp",
        create_otlp_exporter(endpoint=url, timeout=30.0),
        spill_dir=spill or None,
        schedule_delay=60.0,  # nothing is sent before exit
    )
    provider = TracerProvider(shutdown_on_exit=(hook == "sdk"))
    provider.add_span_processor(pipeline)
    if hook == "clew":
        install_exit_flush(lambda: [pipeline])
    tracer = provider.get_tracer("exit-test")
    for i in range(count):
        tracer.start_span(f"exit-{i}").end()
    assert pipeline.stats()["queued"] == count
    """
)


def _run_child(url: str, count: int, spill: Path | None, hook: str = "clew") -> float:
    env = dict(os.environ, CLEW_EXIT_TIMEOUT=str(EXIT_TIMEOUT))
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-c", CHILD, url, str(count), str(spill or ""), hook],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    elapsed = time.monotonic() - started
    assert done.returncode == 0, done.stderr
    return elapsed


@pytest.mark.parametrize("hook", ["clew", "sdk"])
def test_exit_flush_delivers_queued_spans(receiver: OtlpHttpReceiver, hook: str) -> None:
    _run_child(receiver.url, 300, None, hook)
    assert receiver.span_count() == 300


@pytest.mark.parametrize("hook", ["clew", "sdk"])
def test_exit_does_not_hang_on_a_hung_receiver(receiver: OtlpHttpReceiver, hook: str) -> None:
    receiver.set_default(Fault.hang())
    elapsed = _run_child(receiver.url, 300, None, hook)
    assert len(receiver.attempts) >= 1
    assert elapsed < EXIT_TIMEOUT + SLACK


def test_exit_with_receiver_down_spills_and_a_new_process_replays(
    harness: Harness, tmp_path: Path
) -> None:
    port = unused_port()
    url = f"http://127.0.0.1:{port}/v1/traces"
    _run_child(url, 120, tmp_path)
    spilled = list((tmp_path / "otlp").glob("*.spill"))
    assert spilled
    from clew.exporters.lifecycle import build_pipeline
    from clew.exporters.otlp import create_otlp_exporter

    # The new process starts while the receiver is still down: its first replay (at once)
    # fails, so the spill is still whole when counted here, whatever the threads' timing.
    pipeline = build_pipeline("otlp", create_otlp_exporter(endpoint=url), spill_dir=tmp_path)
    harness.pipelines.append(pipeline)
    assert pipeline.stats()["spill_pending"] == 120
    with OtlpHttpReceiver(port=port) as receiver:
        assert receiver.url == url
        assert pipeline.flush(5.0)
        assert sorted(s.name for s in receiver.spans()) == sorted(f"exit-{i}" for i in range(120))
    stats = pipeline.stats()  # the spans were enqueued by the other process
    assert (stats["enqueued"], stats["exported"], stats["replayed"]) == (0, 120, 120)
    assert stats["spill_pending"] == 0
