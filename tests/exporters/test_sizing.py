"""The queue's estimate of a span's memory: a value shared by two keys is counted once."""

from __future__ import annotations

from opentelemetry.sdk.trace import ReadableSpan

from clew.exporters._sizing import estimate_span_bytes


def _span(attributes: dict[str, object]) -> ReadableSpan:
    return ReadableSpan(name="step", attributes=attributes)


def test_a_copy_that_shares_its_value_adds_only_its_key() -> None:
    text = "x" * 10_000
    alone = estimate_span_bytes(_span({"clew.inputs": text}))
    shared = estimate_span_bytes(_span({"clew.inputs": text, "input.value": text}))
    copied = estimate_span_bytes(_span({"clew.inputs": text, "input.value": "x" * 10_000}))
    assert shared - alone < 200
    assert copied - alone > 10_000
