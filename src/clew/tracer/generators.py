"""Generators and async generators under a span that covers the whole iteration.

The span is made current only while the generator body runs (around each step), never across
a ``yield``: code that consumes the generator sees its own parent. The span ends exactly once:
on exhaustion, on an error, on ``close()``/``aclose()``, or when the generator is collected
(which is what an early ``break`` leads to).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, Generator
from typing import Any

from clew.errors import reraise_internal
from clew.tracer.live import LiveSpan

logger = logging.getLogger(__name__)

MAX_ITEMS = 10_000
"""Items kept for the output; the output notes how many more were yielded."""


class _Collector:
    __slots__ = ("items", "more")

    def __init__(self) -> None:
        self.items: list[Any] = []
        self.more = 0

    def add(self, item: Any) -> None:
        if len(self.items) < MAX_ITEMS:
            self.items.append(item)
        else:
            self.more += 1

    def output(self) -> Any:
        items = self.items
        if items and all(isinstance(i, str) for i in items):
            text = "".join(items)
            return f"{text}…[{self.more} more items]" if self.more else text
        if self.more:
            return [*items, f"…[{self.more} more items]"]
        return items


def _collector(live: LiveSpan) -> _Collector | None:
    wanted = not live.omit_outputs or live.evaluation is not None  # evals see omitted output
    return _Collector() if live.recording and wanted else None


class TracedGenerator(Generator[Any, Any, Any]):
    """Wraps a generator so its span covers the whole iteration."""

    __slots__ = ("__weakref__", "_collector", "_gen", "_live")

    def __init__(self, gen: Generator[Any, Any, Any], live: LiveSpan) -> None:
        self._gen = gen
        self._live = live
        self._collector = _collector(live)

    def __iter__(self) -> TracedGenerator:
        return self

    def __next__(self) -> Any:
        return self.send(None)

    def send(self, value: Any) -> Any:
        return self._step(self._gen.send, value)

    def throw(self, typ: Any, val: Any = None, tb: Any = None) -> Any:
        if val is None and tb is None:
            return self._step(self._gen.throw, typ)
        return self._step(lambda _: self._gen.throw(typ, val, tb), None)

    def _step(self, advance: Any, value: Any) -> Any:
        live = self._live
        if live.ended:
            return advance(value)
        token = live.activate()
        try:
            item = advance(value)
        except StopIteration:
            live.deactivate(token)
            self._finish()
            raise
        except BaseException as exc:
            live.deactivate(token)
            live.fail(exc)
            raise
        live.deactivate(token)
        if self._collector is not None:
            self._collector.add(item)
        return item

    def close(self) -> None:
        live = self._live
        if live.ended:
            self._gen.close()
            return
        token = live.activate()
        try:
            self._gen.close()
        except BaseException as exc:
            live.deactivate(token)
            live.fail(exc)
            raise
        live.deactivate(token)
        self._finish()

    def _finish(self) -> None:
        collector = self._collector
        if collector is None:
            self._live.end()
        else:
            self._live.end(collector.output(), True)

    def __del__(self) -> None:
        if not self._live.ended:
            try:
                self.close()
            except BaseException as exc:  # foreign: the user's generator raised as it closed
                reraise_internal(exc)
                logger.debug("clew: closing a collected generator raised", exc_info=True)

    def __getattr__(self, name: str) -> Any:  # gi_frame, gi_running, …
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self._gen, name)


class TracedAsyncGenerator(AsyncGenerator[Any, Any]):
    """Wraps an async generator so its span covers the whole iteration."""

    __slots__ = ("__weakref__", "_agen", "_collector", "_live")

    def __init__(self, agen: AsyncGenerator[Any, Any], live: LiveSpan) -> None:
        self._agen = agen
        self._live = live
        self._collector = _collector(live)

    def __aiter__(self) -> TracedAsyncGenerator:
        return self

    async def __anext__(self) -> Any:
        return await self.asend(None)

    async def asend(self, value: Any) -> Any:
        return await self._step(self._agen.asend, value)

    async def athrow(self, typ: Any, val: Any = None, tb: Any = None) -> Any:
        if val is None and tb is None:
            return await self._step(self._agen.athrow, typ)
        return await self._step(lambda _: self._agen.athrow(typ, val, tb), None)

    async def _step(self, advance: Any, value: Any) -> Any:
        live = self._live
        if live.ended:
            return await advance(value)
        token = live.activate()
        try:
            item = await advance(value)
        except StopAsyncIteration:
            live.deactivate(token)
            self._finish()
            raise
        except BaseException as exc:
            live.deactivate(token)
            live.fail(exc)
            raise
        live.deactivate(token)
        if self._collector is not None:
            self._collector.add(item)
        return item

    async def aclose(self) -> None:
        live = self._live
        if live.ended:
            await self._agen.aclose()
            return
        token = live.activate()
        try:
            await self._agen.aclose()
        except BaseException as exc:
            live.deactivate(token)
            live.fail(exc)
            raise
        live.deactivate(token)
        self._finish()

    def _finish(self) -> None:
        collector = self._collector
        if collector is None:
            self._live.end()
        else:
            self._live.end(collector.output(), True)

    def __del__(self) -> None:
        # No awaiting here: the event loop's async-generator hooks close the inner generator.
        if not self._live.ended:
            self._finish()

    def __getattr__(self, name: str) -> Any:  # ag_frame, ag_running, …
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self._agen, name)
