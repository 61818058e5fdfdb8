"""A pytest plugin: the ``clew_spans`` fixture (registered through the ``pytest11`` entry point)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from clew.testing import SpanCapture, capture_spans


@pytest.fixture
def clew_spans() -> Iterator[SpanCapture]:
    """Every clew span that ends during the test, as a :class:`~clew.testing.SpanCapture`."""
    with capture_spans() as captured:
        yield captured
