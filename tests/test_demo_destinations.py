"""``clew demo`` says where its trace went: the local store, an OTLP endpoint, both, or none,
and what went wrong on the way."""

from __future__ import annotations

import io
from collections.abc import Iterator

import pytest

import clew
from clew.demo import run_demo
from clew.testing.otlp_receiver import OtlpHttpReceiver, unused_port


@pytest.fixture
def receiver(monkeypatch: pytest.MonkeyPatch) -> Iterator[OtlpHttpReceiver]:
    """An OTLP/HTTP collector on 127.0.0.1 that the environment points clew at."""
    with OtlpHttpReceiver() as collector:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", collector.endpoint)
        yield collector
    clew.configure(exporter="none", project="tests")


def _demo() -> str:
    out = io.StringIO()
    assert run_demo([], out=out) == 0
    return out.getvalue()


def _root_trace_hex(text: str) -> str:
    return text.split("(trace id ")[1].split(")")[0]


def test_otlp_only_names_the_endpoint_and_never_the_store(receiver: OtlpHttpReceiver) -> None:
    clew.configure(exporter="otlp")
    text = _demo()
    assert f"Sent over OTLP to {receiver.url} (trace id " in text
    assert "store" not in text
    assert "clew show" not in text
    assert "answer" in text and text.count("chat gpt-4o-mini") == 3  # the tree, all the same
    trace_ids = {span.trace_id.hex() for span in receiver.spans()}
    assert _root_trace_hex(text) in trace_ids


def test_store_and_otlp_are_both_named(receiver: OtlpHttpReceiver) -> None:
    clew.configure(exporter="sqlite,otlp")
    text = _demo()
    assert "Stored in the local trace store (" in text
    assert "  clew show " in text
    assert f"Sent over OTLP to {receiver.url}" in text
    assert "but " not in text  # nothing failed, nothing waits


def test_an_unreachable_endpoint_is_said_to_be_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://127.0.0.1:{unused_port()}")
    clew.configure(exporter="otlp")
    try:
        text = _demo()
    finally:
        clew.configure(exporter="none", project="tests")
    assert "Sent over OTLP to http://127.0.0.1:" in text
    assert "spans are still waiting to be sent" in text or "spans failed" in text
    assert "connection refused" in text


def test_no_exporter_is_said_plainly() -> None:
    text = _demo()  # the tests' configuration: exporter "none"
    assert "Not exported anywhere: no exporter is configured" in text
    assert "answer" in text  # the tree is printed all the same
