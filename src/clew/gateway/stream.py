"""``clew.stream_completion`` and ``clew.astream_completion``: a completion as text deltas.

The connection is made (with retries and fallbacks, until a provider answers 200) when the
stream object is made, so a bad key or an unknown model raises there. Iterating yields the
text as it arrives (tool calls are not text: they are in ``.response.tool_calls``); once the
stream is exhausted, ``.response`` is the full
:class:`~clew.gateway.schemas.CompletionResponse`. Breaking off, ``close()`` or leaving the
``with`` block closes the upstream connection and ends the span with what arrived. An error
inside the stream raises :class:`~clew.errors.ProviderError` from the iteration. A cached
answer is replayed as a stream.
"""

from __future__ import annotations

import re
import time
from collections.abc import AsyncGenerator, Generator, Mapping
from types import TracebackType
from typing import Any, Self

import httpx2

from clew import attributes as a
from clew.errors import CompletionError, ProviderError
from clew.gateway.answer import Answer
from clew.gateway.call import CompletionCall, Gate
from clew.gateway.completion import aconnect, connect, start
from clew.gateway.request import Candidate
from clew.gateway.schemas import Completion, CompletionResponse
from clew.gateway.upstream import STREAM_BROKEN, error_of_transport
from clew.providers.engine import Outcome, record_first_chunk
from clew.providers.wire import Decoder

__all__ = ["AsyncCompletionStream", "CompletionStream", "astream_completion", "stream_completion"]

_PIECE = re.compile(r"\s*\S+\s*|\s+")


def replay_pieces(text: str) -> list[str]:
    """A cached text cut into word-sized deltas, as a provider would stream it."""
    return _PIECE.findall(text) or ([text] if text else [])


class _Core:
    """What a sync and an async stream share: decoding, recording, ending."""

    def __init__(
        self,
        call: CompletionCall,
        candidate: Candidate | None,
        index: int,
        attempt: Any,
        cached: Answer | None = None,
    ) -> None:
        self.call = call
        self.candidate = candidate
        self.index = index
        self.attempt = attempt
        self.cached = cached
        self.response: CompletionResponse | None = None
        self.ended = False
        self.decoder: Decoder | None = None
        self.state: Any = None
        self.first: float | None = None
        self.text: list[str] = []
        if candidate is not None:
            assert candidate.request is not None
            self.decoder = candidate.wire.decoder()
            factory = candidate.wire.route.stream_state
            self.state = factory(candidate.request.body) if factory is not None else None

    def deltas_of(self, data: bytes) -> list[str]:
        """Decode ``data`` into events, record them, and return their text."""
        assert self.decoder is not None
        return self._events(self.decoder.feed(data))

    def deltas_at_end(self) -> list[str]:
        """The text of the events left when the body ends."""
        assert self.decoder is not None
        return self._events(self.decoder.close())

    def _events(self, events: list[Any]) -> list[str]:
        candidate = self.candidate
        assert candidate is not None
        wire = candidate.wire
        out = []
        for event in events:
            if self.first is None:
                self.first = time.perf_counter()
            message = wire.stream_error(event)
            if message is not None:
                raise ProviderError(
                    f"{candidate.provider} sent an error inside the stream: {message}",
                    provider=candidate.provider,
                    provider_error=STREAM_BROKEN,
                )
            if self.state is not None:
                self.state.record(event)
            text = wire.delta(event)
            if text:
                out.append(text)
        return out

    def _answer(self) -> Answer:
        candidate = self.candidate
        assert candidate is not None
        outcome = self.state.outcome() if self.state is not None else Outcome()
        return Answer(candidate.provider, candidate.model, outcome, self.index)

    def _mark(self, how: str) -> None:
        live = self.call.live
        if live is not None and live.recording:
            live.set_attribute(a.CLEW_STREAM_END, how)
            if self.first is not None:
                record_first_chunk(live, self.first - self.call.started_perf)

    def complete(self) -> Answer | None:
        """The stream was read to its end: end the spans and make ``.response``. Returns the
        answer to cache (None for a replayed one)."""
        if self.ended:
            return None
        self.ended = True
        if self.cached is not None:
            self._mark("exhausted")
            self.response = self.call.finish(self.cached, cache_hit=True)
            return None
        answer = self._answer()
        self.call.end_attempt(self.attempt, 200, None)
        self._mark("exhausted")
        self.response = self.call.finish(answer)
        return answer

    def abandon(self, how: str = "closed") -> None:
        """The caller stopped reading: end the spans with what arrived."""
        if self.ended:
            return
        self.ended = True
        if self.cached is not None:
            self._mark(how)
            self.call.finish(self.cached, cache_hit=True)
            return
        self.call.end_attempt(self.attempt, 200, None)
        self._mark(how)
        self.call.finish(self._answer())

    def broken(self, exc: BaseException) -> BaseException:
        """The stream failed midway: end the spans with the error; returns what to raise."""
        error: BaseException = exc
        if isinstance(exc, httpx2.HTTPError):
            provider = self.candidate.provider if self.candidate is not None else "provider"
            error = error_of_transport(exc, provider, self.call.remaining() <= 0)
            if isinstance(error, CompletionError):
                error.provider_error = STREAM_BROKEN
        if not self.ended:
            self.ended = True
            self.call.end_attempt(
                self.attempt, 200, error if isinstance(error, CompletionError) else None
            )
            self._mark("error")
            self.call.fail(error)
        return error


class _Stream:
    """What the sync and the async stream objects show."""

    def __init__(self, core: _Core, response: httpx2.Response | None) -> None:
        self._core = core
        self._http = response

    @property
    def response(self) -> CompletionResponse | None:
        """The full response, once the stream is exhausted (None before)."""
        return self._core.response

    @property
    def trace_id(self) -> str:
        """The completion log's ``trace_id``."""
        return self._core.call.trace_id


class CompletionStream(_Stream):
    """A streamed completion: iterate for text deltas; ``.response`` once exhausted."""

    def __init__(self, core: _Core, response: httpx2.Response | None) -> None:
        super().__init__(core, response)
        self._iter = self._deltas()

    def _deltas(self) -> Generator[str, None, None]:
        core = self._core
        if core.cached is not None:
            text, _ = core.cached.text_and_calls()
            yield from replay_pieces(text)
            core.complete()
            return
        assert self._http is not None
        try:
            for data in self._http.iter_bytes():
                yield from core.deltas_of(data)
            yield from core.deltas_at_end()
        except (httpx2.HTTPError, CompletionError) as exc:
            self._http.close()
            raise core.broken(exc) from None
        self._http.close()
        answer = core.complete()
        if answer is not None:
            core.call.store(answer)

    def __iter__(self) -> Self:
        return self

    def __next__(self) -> str:
        return next(self._iter)

    def close(self) -> None:
        """Stop: close the connection and end the span with what arrived."""
        self._iter.close()
        if self._http is not None:
            self._http.close()
        self._core.abandon()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __del__(self) -> None:
        core = getattr(self, "_core", None)
        if core is not None and not core.ended:
            if self._http is not None:
                self._http.close()
            core.abandon("dropped")


class AsyncCompletionStream(_Stream):
    """:class:`CompletionStream`, for ``async for``."""

    def __init__(self, core: _Core, response: httpx2.Response | None) -> None:
        super().__init__(core, response)
        self._batches = self._read()
        self._iter = self._deltas()

    async def _read(self) -> AsyncGenerator[list[str], None]:
        core = self._core
        if core.cached is not None:
            text, _ = core.cached.text_and_calls()
            yield replay_pieces(text)
            core.complete()
            return
        assert self._http is not None
        try:
            async for data in self._http.aiter_bytes():
                pieces = core.deltas_of(data)
                if pieces:
                    yield pieces
            pieces = core.deltas_at_end()
            if pieces:
                yield pieces
        except (httpx2.HTTPError, CompletionError) as exc:
            await self._http.aclose()
            raise core.broken(exc) from None
        await self._http.aclose()
        answer = core.complete()
        if answer is not None:
            await core.call.astore(answer)

    async def _deltas(self) -> AsyncGenerator[str, None]:
        async for pieces in self._batches:
            for piece in pieces:
                yield piece

    def batches(self) -> AsyncGenerator[list[str], None]:
        """The text deltas as they arrive: a list per read from the provider (a relay writes
        each list at once). Iterate either this or the stream itself, not both."""
        return self._batches

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> str:
        return await self._iter.__anext__()

    async def aclose(self) -> None:
        """Stop: close the connection and end the span with what arrived."""
        await self._iter.aclose()
        await self._batches.aclose()
        if self._http is not None:
            await self._http.aclose()
        self._core.abandon()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    def __del__(self) -> None:
        core = getattr(self, "_core", None)
        if core is not None and not core.ended:
            core.abandon("dropped")


def stream_completion(
    request: Completion | Mapping[str, Any],
    *,
    scope: str = "",
    gate: Gate | None = None,
) -> CompletionStream:
    """Stream a completion: iterate the result for text; its ``.response`` is the full
    response once the stream is exhausted.

    Raises:
        CompletionError: as :func:`clew.completion`, before the first byte.

    Example:
        >>> import clew
        >>> with clew.stream_completion({"llm_configuration": {  # doctest: +SKIP
        ...         "provider": "openai", "model": "gpt-4o-mini",
        ...         "messages": [{"content": "Count to 3"}]}}) as stream:
        ...     for text in stream:
        ...         print(text, end="")
    """
    call = start(request, stream=True, scope=scope, gate=gate)
    try:
        hit = call.cached()
        if hit is not None:
            return CompletionStream(_Core(call, None, hit.fallback_index, None, hit), None)
        return _open(call)
    except BaseException as exc:
        call.fail(exc)
        raise


async def astream_completion(
    request: Completion | Mapping[str, Any],
    *,
    scope: str = "",
    gate: Gate | None = None,
) -> AsyncCompletionStream:
    """:func:`stream_completion`, for ``async for`` (``await`` it first)."""
    call = start(request, stream=True, scope=scope, gate=gate)
    try:
        hit = await call.acached()
        if hit is not None:
            return AsyncCompletionStream(_Core(call, None, hit.fallback_index, None, hit), None)
        return await _aopen(call)
    except BaseException as exc:
        call.fail(exc)
        raise


def _open(call: CompletionCall) -> CompletionStream:
    index, candidate, span, response = connect(call)
    return CompletionStream(_Core(call, candidate, index, span), response)


async def _aopen(call: CompletionCall) -> AsyncCompletionStream:
    index, candidate, span, response = await aconnect(call)
    return AsyncCompletionStream(_Core(call, candidate, index, span), response)
