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


def _register_hypothesis_profiles() -> None:
    """``ci`` (the default): a fixed, deterministic budget. ``long``: a longer random search,
    ``pytest tests/properties --hypothesis-profile=long``."""
    from hypothesis import HealthCheck, settings

    settings.register_profile(
        "ci",
        max_examples=300,
        derandomize=True,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
    settings.register_profile(
        "long",
        max_examples=3000,
        deadline=None,
        print_blob=True,
        suppress_health_check=[HealthCheck.too_slow],
    )
    settings.load_profile("ci")


_register_hypothesis_profiles()
