"""Helpers shared by the provider tests."""

from __future__ import annotations

from typing import Any

from clew.testing import SpanCapture


def llm_spans(captured: SpanCapture) -> list[dict[str, Any]]:
    """The records of LLM spans (those with a ``gen_ai.operation.name``)."""
    return [r for r in captured.records() if "gen_ai.operation.name" in r["attributes"]]


def only_llm_span(captured: SpanCapture) -> dict[str, Any]:
    """The one LLM span record (AssertionError when there is not exactly one)."""
    spans = llm_spans(captured)
    assert len(spans) == 1, [s["name"] for s in spans]
    return spans[0]
