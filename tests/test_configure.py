"""configure(): validation, environment, reconfiguration, the global provider, flush bounds."""

from __future__ import annotations

import logging
import subprocess
import sys
import threading
import time
from collections.abc import Sequence

import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

import clew
from clew import setup
from clew.config import load_config
from clew.exporters.memory import MemorySpanExporter


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"sample_rate": 1.5}, "sample_rate"),
        ({"sample_rate": True}, "numbers, not booleans"),
        ({"exporter": "kafka"}, "unknown exporter 'kafka'"),
        ({"exporter": 42}, "exporter must be a name"),
        ({"project": ""}, "project"),
        ({"max_value_bytes": 10}, "max_value_bytes"),
    ],
)
def test_bad_arguments_raise_clear_errors(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(clew.ConfigurationError, match=message):
        clew.configure(**kwargs)  # type: ignore[arg-type]


def test_environment_is_read_and_bad_values_are_logged_and_ignored(
    caplog: pytest.LogCaptureFixture,
) -> None:
    env = {
        "CLEW_PROJECT": "from-env",
        "CLEW_EXPORTER": "memory, console",
        "CLEW_SAMPLE_RATE": "2.5",
        "CLEW_CAPTURE_CONTENT": "maybe",
        "CLEW_STORE": "/tmp/x.db",
    }
    with caplog.at_level(logging.WARNING, logger="clew"):
        config = load_config(env=env)
    assert config.project == "from-env"
    assert config.exporters == ("memory", "console")
    assert config.sample_rate == 1.0
    assert config.capture_content is True
    assert str(config.store_path) == "/tmp/x.db"
    assert "CLEW_SAMPLE_RATE" in caplog.text
    assert "CLEW_CAPTURE_CONTENT" in caplog.text


def test_arguments_win_over_environment() -> None:
    config = load_config(env={"CLEW_PROJECT": "env"}, project="arg")
    assert config.project == "arg"


def test_otel_capture_switch_is_honoured_and_clew_switch_wins() -> None:
    off = {"OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "false"}
    assert load_config(env=off).capture_content is False
    assert load_config(env={**off, "CLEW_CAPTURE_CONTENT": "true"}).capture_content is True


def test_reconfigure_swaps_exporters() -> None:
    first = MemorySpanExporter()
    clew.configure(exporter=first)

    @clew.trace
    def f() -> int:
        return 1

    f()
    second = MemorySpanExporter()
    clew.configure(exporter=[second])
    f()
    assert clew.flush(5.0)
    assert len(first.get_finished_spans()) == 1
    assert len(second.get_finished_spans()) == 1


def test_memory_exporter_by_name() -> None:
    clew.configure(exporter="memory")
    with clew.span("s"):
        pass
    exporter = setup.exporter("memory")
    assert isinstance(exporter, MemorySpanExporter)
    assert [r["name"] for r in exporter.records()] == ["s"]


class HangingExporter(SpanExporter):
    def __init__(self) -> None:
        self.release = threading.Event()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.release.wait(30)
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        self.release.set()


def test_flush_and_shutdown_are_bounded_by_their_timeout() -> None:
    hanging = HangingExporter()
    clew.configure(exporter=hanging)
    with clew.span("stuck"):
        pass
    started = time.monotonic()
    assert clew.flush(timeout=0.3) is False
    clew.shutdown(timeout=0.3)
    assert time.monotonic() - started < 5.0  # bounded, with a generous margin
    hanging.release.set()


_EXISTING_PROVIDER = """
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
theirs = InMemorySpanExporter()
provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(theirs))
trace.set_tracer_provider(provider)
import clew
clew.configure(exporter="memory")
assert trace.get_tracer_provider() is provider
tracer = trace.get_tracer("app")
with tracer.start_as_current_span("app-request"):
    with clew.span("clew-step"):
        with tracer.start_as_current_span("http-call"):
            pass
names = sorted(s.name for s in theirs.get_finished_spans())
ours = clew.setup.exporter("memory").records()
by_name = {s.name: s for s in theirs.get_finished_spans()}
assert by_name["clew-step"].parent.span_id == by_name["app-request"].context.span_id
assert by_name["http-call"].parent.span_id == by_name["clew-step"].context.span_id
print(names, sorted(r["name"] for r in ours))
"""


def test_existing_global_provider_is_used_and_foreign_spans_are_not_exported() -> None:
    out = subprocess.run(
        [sys.executable, "-c", _EXISTING_PROVIDER],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    assert out.strip() == "['app-request', 'clew-step', 'http-call'] ['clew-step']"
