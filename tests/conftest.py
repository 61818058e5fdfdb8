"""Shared test set-up: clew exports nowhere but the per-test capture, unless a test says so."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import clew


@pytest.fixture(autouse=True)
def _clew_quiet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    store = tmp_path_factory.mktemp("store") / "traces.db"
    clew.configure(
        project="tests", exporter="none", sample_rate=1.0, capture_content=True, store_path=store
    )
    yield
