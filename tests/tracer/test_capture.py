"""Omit rules, capture_content and secrets: what must never leave the process."""

from __future__ import annotations

import dataclasses
from typing import Any

import clew
from clew.testing import SpanCapture

CANARY = "canary-7f3a-do-not-export"


@clew.trace
def inner(text: str) -> str:
    return text + "!"


@clew.trace(log_omit_inputs=True)
def omit_in(secret_text: str) -> str:
    return inner(secret_text)


@clew.trace(log_omit_outputs=True)
def omit_out(text: str) -> str:
    return inner(CANARY)


@clew.trace(log_omit=True)
def omit_all(text: str) -> str:
    return inner(text)


def _exported_text(clew_spans: SpanCapture) -> str:
    return repr([dict(s.attributes or {}) for s in clew_spans.spans]) + repr(clew_spans.records())


def test_omit_inputs_cascades_to_the_subtree(clew_spans: SpanCapture) -> None:
    omit_in(CANARY)
    assert CANARY not in repr([r["inputs"] for r in clew_spans.records()])
    child = clew_spans.by_name("inner")
    assert child["inputs"] is None
    assert child["output"] == CANARY + "!"  # outputs were not omitted
    assert child["attributes"]["clew.inputs.omitted"] is True
    assert child["status"] == "success"
    assert child["latency"] is not None


def test_omit_outputs_cascades(clew_spans: SpanCapture) -> None:
    omit_out("hello")
    assert CANARY not in repr([r["output"] for r in clew_spans.records()])
    assert clew_spans.by_name("omit_out")["inputs"] == {"text": "hello"}
    assert clew_spans.by_name("inner")["inputs"] == {"text": CANARY}


def test_omit_drops_all_content_below(clew_spans: SpanCapture) -> None:
    omit_all(CANARY)
    assert CANARY not in _exported_text(clew_spans)
    assert len(clew_spans.records()) == 2


def test_omit_on_span_and_handle_setters(clew_spans: SpanCapture) -> None:
    with clew.span("s", log_omit=True) as s:
        s.set_inputs({"q": CANARY})
        s.set_output(CANARY)
        clew.trace_insert({"inputs": {"q": CANARY}, "output": CANARY})
    assert CANARY not in _exported_text(clew_spans)


def test_capture_content_false_omits_everywhere(clew_spans: SpanCapture) -> None:
    clew.configure(capture_content=False)
    inner(CANARY)
    with clew.span("s", inputs={"q": CANARY}) as s:
        s.set_output(CANARY)
    assert CANARY not in _exported_text(clew_spans)
    assert len(clew_spans.records()) == 2


def test_secret_parameters_and_values_are_never_captured(clew_spans: SpanCapture) -> None:
    @clew.trace
    def call(prompt: str, api_key: str, headers: dict[str, str], password: str = "hunter2") -> str:
        return f"used {api_key[:3]}"

    key = "sk-proj-" + "A1b2C3d4E5f6G7h8I9j0" * 2
    call("hello", key, {"Authorization": "Bearer abcdefghijklmnop123456"})
    text = _exported_text(clew_spans)
    assert key not in text
    assert "abcdefghijklmnop123456" not in text
    assert "hunter2" not in text
    assert clew_spans.by_name("call")["inputs"]["prompt"] == "hello"


def test_secret_looking_values_in_outputs_are_redacted(clew_spans: SpanCapture) -> None:
    key = "sk-ant-api03-" + "x" * 40

    @clew.trace
    def leak() -> dict[str, Any]:
        return {"note": f"the key is {key}", "provider_api_key": "plain-value-123"}

    leak()
    text = _exported_text(clew_spans)
    assert key not in text
    assert "plain-value-123" not in text


@dataclasses.dataclass
class Doc:
    title: str
    score: float


def test_rich_values_are_serialized(clew_spans: SpanCapture) -> None:
    @clew.trace
    def rank(docs: list[Doc], seen: set[int]) -> tuple[Doc, ...]:
        return tuple(docs)

    rank([Doc("a", 0.5)], {1})
    record = clew_spans.by_name("rank")
    assert record["inputs"] == {"docs": [{"title": "a", "score": 0.5}], "seen": [1]}
    assert record["output"] == [{"title": "a", "score": 0.5}]


def test_oversized_values_are_truncated_with_a_marker(clew_spans: SpanCapture) -> None:
    clew.configure(max_value_bytes=1024)
    inner("x" * 100_000)
    record = clew_spans.by_name("inner")
    captured = clew_spans.spans[0].attributes or {}
    assert len(str(captured["clew.inputs"]).encode()) <= 1024 + 128
    assert "truncated" in str(record["inputs"])
