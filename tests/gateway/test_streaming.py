"""clew.stream_completion / astream_completion: deltas, the full response, early ends, errors."""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import clew
from clew.errors import AuthenticationError, ProviderError
from clew.testing import SpanCapture
from clew.testing.llm_server import FakeLLMServer

PROVIDERS = [
    ("openai", "gpt-4o-mini"),
    ("anthropic", "claude-sonnet-4-5"),
    ("groq", "llama-3.1-8b-instant"),
]


def request(provider: str, model: str, **extra: Any) -> dict[str, Any]:
    return {
        "cache": False,
        "llm_configuration": {
            "provider": provider,
            "model": model,
            "messages": [{"role": "user", "content": "Tell me about streams"}],
        },
        **extra,
    }


def llm_record(spans: SpanCapture) -> dict[str, Any]:
    (found,) = [r for r in spans.records() if r["name"].startswith("llm-")]
    return found


@pytest.mark.parametrize(("provider", "model"), PROVIDERS)
def test_a_stream_yields_text_and_then_the_same_response_as_a_plain_call(
    server: FakeLLMServer, spans: SpanCapture, provider: str, model: str
) -> None:
    plain = clew.completion(request(provider, model))
    spans.clear()
    with clew.stream_completion(request(provider, model)) as stream:
        assert stream.response is None
        pieces = list(stream)
    assert len(pieces) > 3
    response = stream.response
    assert response is not None
    assert "".join(pieces) == response.content == plain.content
    assert (response.input_tokens, response.output_tokens) == (
        plain.input_tokens,
        plain.output_tokens,
    )
    assert response.cost == pytest.approx(plain.cost)
    assert response.finish_reason == plain.finish_reason
    record = llm_record(spans)
    assert record["attributes"]["clew.stream.end"] == "exhausted"
    assert record["time_to_first_token"] is not None
    assert record["output"] == response.content
    assert record["trace_id"] == response.trace_id == stream.trace_id
    assert server.requests[-1].body.get("stream") is True


async def test_an_async_stream(server: FakeLLMServer, spans: SpanCapture) -> None:
    stream = await clew.astream_completion(request("anthropic", "claude-sonnet-4-5"))
    async with stream:
        pieces = [piece async for piece in stream]
    assert stream.response is not None
    assert "".join(pieces) == stream.response.content
    assert stream.response.output_tokens == 18
    assert llm_record(spans)["attributes"]["clew.stream.end"] == "exhausted"


@pytest.mark.parametrize(("provider", "model"), PROVIDERS)
def test_breaking_off_closes_the_stream_and_ends_the_span(
    server: FakeLLMServer, spans: SpanCapture, provider: str, model: str
) -> None:
    server.chunk_delay = 0.01
    with clew.stream_completion(request(provider, model)) as stream:
        for _ in stream:
            break
    assert stream.response is None
    record = llm_record(spans)
    assert record["attributes"]["clew.stream.end"] == "closed"
    assert record["status"] == "success"
    assert record["output_tokens"] is not None
    if provider != "anthropic":  # Anthropic reports usage in its first event; others at the end
        assert record["attributes"].get("clew.usage.estimated") is True


def test_a_dropped_stream_ends_its_span(server: FakeLLMServer, spans: SpanCapture) -> None:
    stream = clew.stream_completion(request("openai", "gpt-4o-mini"))
    next(stream)
    del stream
    gc.collect()
    assert llm_record(spans)["attributes"]["clew.stream.end"] in ("dropped", "closed")


@pytest.mark.parametrize(("provider", "model"), PROVIDERS)
def test_an_error_inside_the_stream_raises_from_the_iteration(
    server: FakeLLMServer, spans: SpanCapture, provider: str, model: str
) -> None:
    server.break_next_stream(after=6, mode="error")
    stream = clew.stream_completion(request(provider, model))
    received = []
    with pytest.raises(ProviderError) as caught, stream:
        for piece in stream:
            received.append(piece)
    assert received  # text arrived before the error
    assert caught.value.status_code == 502
    record = llm_record(spans)
    assert record["status"] == "error"
    assert record["attributes"]["clew.stream.end"] == "error"


def test_a_connection_cut_midway_raises_a_provider_error(
    server: FakeLLMServer, spans: SpanCapture
) -> None:
    server.break_next_stream(after=3, mode="close")
    with (
        pytest.raises(ProviderError),
        clew.stream_completion(request("openai", "gpt-4o-mini")) as s,
    ):
        list(s)
    assert llm_record(spans)["status"] == "error"


def test_errors_before_the_first_byte_raise_at_the_call_and_fall_back(
    server: FakeLLMServer, spans: SpanCapture
) -> None:
    server.fail_next(401)
    with pytest.raises(AuthenticationError):
        clew.stream_completion(request("openai", "gpt-4o-mini"))
    server.fail_next(500, times=3)
    with clew.stream_completion(
        request("openai", "gpt-4o-mini", fallback_strategy=["anthropic/claude-sonnet-4-5"])
    ) as stream:
        text = "".join(stream)
    assert stream.response is not None and stream.response.provider == "anthropic"
    assert text == stream.response.content


def test_the_non_streaming_call_refuses_stream_true(server: FakeLLMServer) -> None:
    with pytest.raises(clew.InvalidRequestError, match="stream_completion"):
        clew.completion(request("openai", "gpt-4o-mini", stream=True))
    with clew.stream_completion(request("openai", "gpt-4o-mini", stream=True)) as stream:
        assert "".join(stream)


def test_a_stream_that_stalls_past_the_deadline_raises_a_timeout(
    server: FakeLLMServer, spans: SpanCapture
) -> None:
    clew.configure(gateway={"timeout": 0.5})
    server.chunk_delay = 2.0  # the provider stalls between events
    started = time.perf_counter()
    with (
        pytest.raises(clew.CompletionTimeoutError),
        clew.stream_completion(request("openai", "gpt-4o-mini")) as stream,
    ):
        list(stream)
    assert time.perf_counter() - started < 2.0
    assert llm_record(spans)["status"] == "error"


# -- the gateway's write coalescing ------------------------------------------------------------
@settings(max_examples=60, deadline=None)
@given(
    batches=st.lists(st.lists(st.text(max_size=3), max_size=3), max_size=12),
    pauses=st.lists(st.booleans(), max_size=12),
    fail_at=st.none() | st.integers(0, 12),
)
def test_coalescing_keeps_every_delta_in_order(
    batches: list[list[str]], pauses: list[bool], fail_at: int | None
) -> None:
    from clew.gateway.server import _coalesced

    async def source() -> AsyncIterator[list[str]]:
        for i, batch in enumerate(batches):
            if fail_at == i:
                raise ValueError("broken upstream")
            if i < len(pauses) and pauses[i]:
                await asyncio.sleep(0.001)  # the provider is slower than the writer
            yield batch

    async def relay() -> tuple[list[list[str]], BaseException | None]:
        written: list[list[str]] = []
        try:
            async for merged in _coalesced(source()):
                written.append(merged)
        except ValueError as exc:
            return written, exc
        return written, None

    written, error = asyncio.run(relay())
    sent = batches if fail_at is None else batches[:fail_at]
    assert [t for merged in written for t in merged] == [t for batch in sent for t in batch]
    assert len(written) <= max(1, len(sent))
    assert (error is not None) == (fail_at is not None and fail_at < len(batches))
    if not any(pauses) and sent and any(sent):
        assert len(written) == 1  # nothing waited between reads: one write


def test_a_relay_that_stops_early_stops_its_reader() -> None:
    from clew.gateway.server import _coalesced

    closed = []

    async def endless() -> AsyncIterator[list[str]]:
        try:
            while True:
                yield ["x"]
                await asyncio.sleep(0)
        finally:
            closed.append(True)

    async def take_two() -> list[list[str]]:
        out = []
        merged = _coalesced(endless())
        async for batch in merged:
            out.append(batch)
            if len(out) == 2:
                break
        await merged.aclose()
        return out

    assert len(asyncio.run(take_two())) == 2
    assert closed == [True]
