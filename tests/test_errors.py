"""A failure inside clew: logged and swallowed in production, raised under pytest and with
CLEW_STRICT=1, so a bug inside clew is never invisible to a test suite."""

from __future__ import annotations

import logging
import subprocess
import sys

import pytest

import clew
from clew import errors
from clew.errors import InternalError, internal_error
from clew.testing import SpanCapture, internal_errors_swallowed

logger = logging.getLogger(__name__)


def _fail_inside_clew() -> str:
    try:
        {}["missing"]
    except KeyError:
        internal_error(logger, "looking up %s failed", "a key")
    return "carried on"


def test_under_pytest_a_failure_inside_clew_raises() -> None:
    assert errors.is_strict()
    with pytest.raises(InternalError, match="looking up a key failed") as raised:
        _fail_inside_clew()
    assert isinstance(raised.value.__cause__, KeyError)


def test_in_production_it_is_logged_and_the_caller_carries_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with internal_errors_swallowed(), caplog.at_level(logging.ERROR):
        assert _fail_inside_clew() == "carried on"
    (record,) = caplog.records
    assert "looking up a key failed (a bug in clew; your code goes on)" in record.getMessage()
    assert record.exc_info is not None and record.exc_info[0] is KeyError
    assert errors.is_strict()  # back on after the block


def test_an_internal_error_passes_through_handlers_further_up() -> None:
    with pytest.raises(InternalError, match="inner"):
        try:
            try:
                raise ValueError("bug")
            except ValueError:
                internal_error(logger, "inner")
        except Exception:
            internal_error(logger, "outer")


def test_a_span_whose_output_cannot_be_ended_fails_the_test_not_the_app(
    clew_spans: SpanCapture, monkeypatch: pytest.MonkeyPatch
) -> None:
    from clew.tracer import live

    def broken(*args: object) -> None:
        raise RuntimeError("bug in clew")

    monkeypatch.setattr(live, "end_span", broken)

    @clew.trace
    def work() -> int:
        return 1

    with pytest.raises(InternalError, match="ending span"):
        work()
    with internal_errors_swallowed():
        assert work() == 1  # production: the user's result, whatever clew's state


_STRICT_PROBE = """
import logging
import clew
from clew import errors
from clew.tracer import live
clew.configure(exporter="none")
print(errors.is_strict())
def broken(*args):
    raise RuntimeError("bug in clew")
live.end_span = broken
@clew.trace
def work():
    return 1
try:
    print(work())
except errors.InternalError as exc:
    print("raised", exc)
"""


@pytest.mark.parametrize(("strict", "expected"), [("1", "True\nraised"), ("0", "False\n1")])
def test_clew_strict_turns_it_on_outside_pytest(strict: str, expected: str) -> None:
    out = subprocess.run(
        [sys.executable, "-c", _STRICT_PROBE],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        env={"CLEW_STRICT": strict, "PATH": "", "PYTHONPATH": ":".join(sys.path)},
    )
    assert out.stdout.startswith(expected), out.stdout + out.stderr
