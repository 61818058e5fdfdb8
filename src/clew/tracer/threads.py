"""Carrying the current trace into other threads.

Async tasks inherit the context by themselves; threads do not. ``wrap(fn)`` binds a function
to the caller's context; ``instrument_threads()`` makes ``ThreadPoolExecutor.submit`` and
``threading.Thread`` do it for every call.
"""

from __future__ import annotations

import contextvars
import functools
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from types import TracebackType
from typing import Any, ParamSpec, TypeVar

P = ParamSpec("P")
R = TypeVar("R")


def wrap(fn: Callable[P, R]) -> Callable[P, R]:
    """Bind ``fn`` to the current context, so spans it opens in another thread join this trace.

    Each call runs in its own copy of the context captured here, so the wrapped function may
    run in several threads at once.

    Example:
        >>> import clew, threading
        >>> @clew.trace
        ... def job() -> None: ...
        >>> t = threading.Thread(target=clew.wrap(job)); t.start(); t.join()
    """
    captured = contextvars.copy_context()

    @functools.wraps(fn)
    def in_context(*args: P.args, **kwargs: P.kwargs) -> R:
        return captured.copy().run(fn, *args, **kwargs)

    return in_context


class ThreadInstrumentation:
    """The handle :func:`instrument_threads` returns; ``uninstrument()`` or leave the ``with``."""

    def __init__(self, active: bool) -> None:
        self._active = active

    def uninstrument(self) -> None:
        """Stop carrying the context into new threads (only if this call turned it on)."""
        global _installed
        if not self._active:
            return
        self._active = False
        with _lock:
            if _installed is None:
                return
            submit, start = _installed
            ThreadPoolExecutor.submit = submit  # type: ignore[method-assign]
            threading.Thread.start = start  # type: ignore[method-assign]
            _installed = None

    def __enter__(self) -> ThreadInstrumentation:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.uninstrument()


_lock = threading.Lock()
_installed: tuple[Any, Any] | None = None


def instrument_threads() -> ThreadInstrumentation:
    """Make ``ThreadPoolExecutor.submit`` and ``threading.Thread.start`` carry the context.

    Calling it again while on does nothing (the second handle's ``uninstrument`` is a no-op).

    Example:
        >>> import clew
        >>> with clew.instrument_threads():
        ...     pass  # executors and threads started here see the caller's trace
    """
    global _installed
    with _lock:
        if _installed is not None:
            return ThreadInstrumentation(False)
        original_submit = ThreadPoolExecutor.submit
        original_start = threading.Thread.start

        def submit(
            self: ThreadPoolExecutor, fn: Callable[..., Any], /, *args: Any, **kwargs: Any
        ) -> Future[Any]:
            return original_submit(self, wrap(fn), *args, **kwargs)

        @functools.wraps(original_start)
        def start(self: threading.Thread) -> None:
            captured = contextvars.copy_context()
            run = self.run
            self.run = lambda: captured.run(run)  # type: ignore[method-assign]
            original_start(self)

        submit.__doc__ = original_submit.__doc__
        ThreadPoolExecutor.submit = submit  # type: ignore[assignment]
        threading.Thread.start = start  # type: ignore[method-assign]
        _installed = (original_submit, original_start)
    return ThreadInstrumentation(True)
