"""Every LLM span clew makes from a recorded provider call conforms to the GenAI conventions.

The recorded calls of ``shared/fixtures/cassettes`` are replayed through the real SDKs, each
client given the recorded base URL (``https://api.openai.com`` ...) as an application would
be; every recorded stream is also cut short, by the client and by the server
(:mod:`llm_corpus`). Each span is checked by :func:`genai_semconv.violations` against the
vendored conventions and against what its call said.
"""

from __future__ import annotations

from typing import Any

import pytest
from genai_semconv import CUSTOM_VALUES, conventions
from llm_corpus import Cut, cassette_spans, cut_stream_spans, recorded_streams

from clew.providers.registry import PROVIDER_NAMES, provider_attribute
from clew.testing.cassettes import Interaction
from replay_clients import cassette_rows

# The recordings name models the anthropic SDK now warns about as deprecated.
pytestmark = pytest.mark.filterwarnings("ignore:The model .* is deprecated:DeprecationWarning")


def _streams() -> list[Any]:
    return [
        pytest.param(label, provider, interaction, cut, id=f"{label}-{cut}")
        for label, provider, interaction in recorded_streams()
        for cut in ("client", "server")
    ]


@pytest.mark.parametrize("row", cassette_rows(), ids=lambda row: row["path"])
def test_the_spans_of_recorded_calls_conform(row: dict[str, str]) -> None:
    found = {t.label: t.violations() for t in cassette_spans(row)}
    assert {label: problems for label, problems in found.items() if problems} == {}


@pytest.mark.parametrize(("label", "provider", "interaction", "cut"), _streams())
def test_a_stream_cut_short_conforms(
    label: str, provider: str, interaction: Interaction, cut: Cut
) -> None:
    traced = cut_stream_spans(label, provider, interaction, cut)
    assert traced.violations() == []
    assert set(traced.attributes["gen_ai.response.finish_reasons"]) == {"error"}


def test_the_corpus_has_every_kind_of_call() -> None:
    streams = list(recorded_streams())
    routes = {interaction.route for _, _, interaction in streams}
    assert routes == {"/v1/chat/completions", "/v1/completions", "/v1/responses", "/v1/messages"}
    assert {provider for _, provider, _ in streams} == {"openai", "azure", "anthropic"}


@pytest.mark.parametrize("name", PROVIDER_NAMES)
def test_every_provider_is_named_by_a_well_known_value_where_there_is_one(name: str) -> None:
    members = conventions().attributes["gen_ai.provider.name"].members
    written = provider_attribute(name)
    assert written in members or written in CUSTOM_VALUES["gen_ai.provider.name"]
