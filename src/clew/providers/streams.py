"""How a call ends when its result is not a plain response: streams and raw responses.

:func:`settle` ends the span of a plain response at once, and otherwise hooks what ends it: a
stream's chunk iterator (every chunk is seen by :meth:`~clew.providers.engine.Call.see`, the
one recording step the sync and async iterators share), the close of its HTTP response, or a
raw response's ``parse``. The span ends exactly once, whichever comes first.
"""

from __future__ import annotations

import inspect
import logging
import weakref
from collections.abc import Iterator
from typing import Any

from clew.errors import internal_error
from clew.providers.engine import Adapter, Call

__all__ = ["settle"]

logger = logging.getLogger(__name__)


def settle(adapter: Adapter, call: Call, result: Any) -> None:
    """Record a result: end the span now, or hook the stream / raw response that ends it."""
    try:
        if isinstance(result, adapter.stream_types):
            _hook_stream(call, result)
        elif isinstance(result, adapter.raw_types):
            _hook_raw(adapter, call, result)
        else:
            call.finish(result)
    except Exception:
        internal_error(logger, "recording an LLM response failed")
        call.finish_stream()


def _hook_stream(call: Call, stream: Any) -> None:
    if call.state is None:
        call.state = call.route.stream_state(call.body) if call.route.stream_state else None
    inner = stream._iterator
    is_async = hasattr(inner, "__anext__")
    stream.__dict__["_iterator"] = (
        _AsyncChunks(inner, call) if is_async else _SyncChunks(inner, call)
    )
    _hook_close(call, getattr(stream, "response", None), is_async)


def _hook_close(call: Call, response: Any, is_async: bool) -> None:
    """End the span when the HTTP response is closed outside clew's own iteration."""
    if response is None or not hasattr(response, "__dict__"):
        return
    # Only weak references and the class's own method: the hook must not tie the response into
    # a reference cycle, or every response would wait for the cyclic garbage collector.
    ref = weakref.ref(call)
    response_ref = weakref.ref(response)
    if is_async:
        class_aclose = type(response).aclose

        async def aclose() -> None:
            _closed(ref)
            owner = response_ref()
            if owner is not None:
                await class_aclose(owner)

        response.aclose = aclose
    else:
        class_close = type(response).close

        def close() -> None:
            _closed(ref)
            owner = response_ref()
            if owner is not None:
                class_close(owner)

        response.close = close


def _closed(ref: weakref.ReferenceType[Call]) -> None:
    call = ref()
    if call is not None and not call.busy and not call.live.ended:
        call.finish_stream()


class _SyncChunks:
    """Stands in for a stream's chunk iterator; sees each chunk and every way it can end."""

    __slots__ = ("_call", "_inner")

    def __init__(self, inner: Iterator[Any], call: Call) -> None:
        self._inner = inner
        self._call = call

    def __next__(self) -> Any:
        call = self._call
        call.busy = True
        try:
            item = next(self._inner)
        except StopIteration:
            call.busy = False
            call.finish_stream("exhausted")
            raise
        except BaseException as exc:
            call.busy = False
            call.fail(exc)
            raise
        call.busy = False
        call.see(item)
        return item

    def __iter__(self) -> Iterator[Any]:
        return self._loop()

    def _loop(self) -> Iterator[Any]:
        call = self._call
        try:
            call.busy = True
            for item in self._inner:
                call.busy = False
                call.see(item)
                yield item
                call.busy = True
            call.busy = False
            call.finish_stream("exhausted")
        except GeneratorExit:
            call.finish_stream()  # an early break: the consumer let go
            raise
        except BaseException as exc:
            call.busy = False
            call.fail(exc)
            raise


class _AsyncChunks:
    """The async twin of :class:`_SyncChunks` (the same steps, with ``await``)."""

    __slots__ = ("_call", "_inner")

    def __init__(self, inner: Any, call: Call) -> None:
        self._inner = inner
        self._call = call

    async def __anext__(self) -> Any:
        call = self._call
        call.busy = True
        try:
            item = await self._inner.__anext__()
        except StopAsyncIteration:
            call.busy = False
            call.finish_stream("exhausted")
            raise
        except BaseException as exc:
            call.busy = False
            call.fail(exc)
            raise
        call.busy = False
        call.see(item)
        return item

    def __aiter__(self) -> Any:
        return self._loop()

    async def _loop(self) -> Any:
        call = self._call
        try:
            call.busy = True
            async for item in self._inner:
                call.busy = False
                call.see(item)
                yield item
                call.busy = True
            call.busy = False
            call.finish_stream("exhausted")
        except GeneratorExit:
            call.finish_stream()  # an early break: the consumer let go
            raise
        except BaseException as exc:
            call.busy = False
            call.fail(exc)
            raise


def _hook_raw(adapter: Adapter, call: Call, raw: Any) -> None:
    """``with_raw_response`` / ``with_streaming_response``: the span ends when parsed.

    The hooked ``parse`` holds the raw response strongly: ``create(...).parse()`` drops the
    raw response before ``parse`` runs. (Raw response and hook form a cycle, which the
    collector reclaims; an unparsed response's span ends then, or when its body is closed.)
    """
    parse = type(raw).parse

    def settle_parsed(parsed: Any, to: Any) -> None:
        if to is None and not call.live.ended:
            settle(adapter, call, parsed)

    if inspect.iscoroutinefunction(parse):

        async def aparse(*args: Any, **kwargs: Any) -> Any:
            call.busy = True
            try:
                parsed = await parse(raw, *args, **kwargs)
            finally:
                call.busy = False
            settle_parsed(parsed, kwargs.get("to"))
            return parsed

        raw.parse = aparse
    else:

        def sync_parse(*args: Any, **kwargs: Any) -> Any:
            call.busy = True
            try:
                parsed = parse(raw, *args, **kwargs)
            finally:
                call.busy = False
            settle_parsed(parsed, kwargs.get("to"))
            return parsed

        raw.parse = sync_parse
    http = getattr(raw, "http_response", None)
    stream = getattr(http, "stream", None)
    is_async = hasattr(stream, "__aiter__") and not hasattr(stream, "__iter__")
    _hook_close(call, http, is_async)
