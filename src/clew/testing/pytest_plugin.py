"""A pytest plugin (registered through the ``pytest11`` entry point): the ``clew_spans``
fixture, and strict mode for the test run (a failure inside clew fails the test)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from clew import errors
from clew.testing import SpanCapture, capture_spans


def pytest_configure(config: pytest.Config) -> None:
    """Raise failures inside clew in the tests that cause them, instead of logging them."""
    errors.set_strict(testing=True)


@pytest.fixture
def clew_spans() -> Iterator[SpanCapture]:
    """Every clew span that ends during the test, as a :class:`~clew.testing.SpanCapture`."""
    with capture_spans() as captured:
        yield captured
