"""A record reads the GenAI conventions' keys, and the keys older clew versions wrote (old stores
hold them), into the seed's fields."""

from __future__ import annotations

from typing import Any

import pytest

from clew.log_record import RECORD_FIELDS, apply_attributes


def _record(attrs: dict[str, Any]) -> dict[str, Any]:
    record: dict[str, Any] = dict.fromkeys(RECORD_FIELDS)
    apply_attributes(record, attrs)
    return record


@pytest.mark.parametrize(
    "key", ["gen_ai.usage.cache_write.input_tokens", "gen_ai.usage.cache_creation.input_tokens"]
)
def test_cache_writes_are_read_under_either_name(key: str) -> None:
    record = _record({"gen_ai.usage.input_tokens": 100, key: 40})
    assert record["cache_creation_input_tokens"] == 40
    assert key not in record["attributes"]


@pytest.mark.parametrize("key", ["gen_ai.response.time_to_first_chunk", "clew.time_to_first_token"])
def test_the_time_to_first_chunk_is_read_under_either_name(key: str) -> None:
    assert _record({key: 0.25})["time_to_first_token"] == 0.25


@pytest.mark.parametrize(
    ("written", "provider"),
    [
        ("azure.ai.openai", "azure"),
        ("azure", "azure"),  # a span of an older version
        ("gcp.vertex_ai", "vertexai"),
        ("aws.bedrock", "aws_bedrock"),
        ("mistral_ai", "mistral"),
        ("openai", "openai"),
        ("openrouter", "openrouter"),
    ],
)
def test_the_record_names_the_provider_as_the_seed_does(written: str, provider: str) -> None:
    record = _record({"gen_ai.provider.name": written})
    assert record["provider"] == provider
    assert record["attributes"]["gen_ai.provider.name"] == written
