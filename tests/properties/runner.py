"""Running a program's source with clew, or with an undecorated stand-in for clew."""

from __future__ import annotations

import contextlib
import linecache
import logging
import sys
import threading
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from types import CodeType
from typing import Any

from properties.source import PRELUDE

_PRELUDE_CODE = compile(PRELUDE, "<program prelude>", "exec")


class _PlainSpan:
    """``clew.span`` doing nothing."""

    def __init__(self, name: str, **options: Any) -> None:
        pass

    def __enter__(self) -> _PlainSpan:
        return self

    def __exit__(self, *exc_info: object) -> None:
        return None

    async def __aenter__(self) -> _PlainSpan:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        return None

    def set_output(self, output: Any) -> None:
        pass


class PlainClew:
    """The part of clew's API the programs use, doing nothing: the undecorated program."""

    span = _PlainSpan

    @staticmethod
    def trace(fn: Any = None, /, **options: Any) -> Any:
        return fn if fn is not None else (lambda f: f)

    @staticmethod
    def wrap(fn: Callable[..., Any]) -> Callable[..., Any]:
        return fn

    @staticmethod
    def instrument_threads() -> contextlib.AbstractContextManager[None]:
        return contextlib.nullcontext()


@dataclass
class Run:
    """What one run of a program did."""

    outcome: tuple[str, ...]  # ("returned", value) or ("raised", type name, message)
    log: list[tuple[str, int]]
    problems: list[str]  # unraisable and thread exceptions, errors clew logged
    traceback: str | None  # of the exception the program raised


def compile_program(source: str, pid: int) -> CodeType:
    """Compile a program's source so that tracebacks show its lines."""
    filename = f"<program {pid}>"
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    return compile(source, filename, "exec")


class _ErrorLog(logging.Handler):
    def __init__(self, problems: list[str]) -> None:
        super().__init__(logging.ERROR)
        self.problems = problems

    def emit(self, record: logging.LogRecord) -> None:
        if record.name == "clew":  # the tracer's logger; exporters log under clew.exporters
            text = record.getMessage()
            if record.exc_info and record.exc_info[1] is not None:
                text += "\n" + "".join(traceback.format_exception(record.exc_info[1]))
            self.problems.append(f"clew logged an error: {text}")


@contextlib.contextmanager
def _watch() -> Iterator[list[str]]:
    """Collect exceptions that escape by side channels while a program runs."""
    problems: list[str] = []

    def unraisable(u: Any) -> None:
        text = "".join(traceback.format_exception(u.exc_value)) if u.exc_value else ""
        problems.append(f"unraisable exception ({u.err_msg}, {u.object!r}):\n{text}")

    def in_thread(a: Any) -> None:
        text = "".join(traceback.format_exception(a.exc_value)) if a.exc_value else ""
        problems.append(f"exception in thread {a.thread!r}:\n{text}")

    handler = _ErrorLog(problems)
    logger = logging.getLogger("clew")
    old_unraisable, old_thread = sys.unraisablehook, threading.excepthook
    sys.unraisablehook, threading.excepthook = unraisable, in_thread
    logger.addHandler(handler)
    try:
        yield problems
    finally:
        logger.removeHandler(handler)
        sys.unraisablehook, threading.excepthook = old_unraisable, old_thread


def run(code: CodeType, pid: int, clew_api: Any) -> Run:
    """Run program ``pid`` with ``clew`` bound to ``clew_api`` (clew or :class:`PlainClew`)."""
    namespace: dict[str, Any] = {"__name__": "program", "clew": clew_api, "PID": pid}
    error: str | None = None
    with _watch() as problems:
        exec(_PRELUDE_CODE, namespace)
        exec(code, namespace)
        try:
            outcome: tuple[str, ...] = ("returned", namespace["call_n0"]())
        except Exception as exc:
            outcome = ("raised", type(exc).__name__, str(exc))
            error = "".join(traceback.format_exception(exc))
    return Run(outcome, list(namespace["LOG"]), problems, error)
