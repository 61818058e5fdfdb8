"""The ``http`` exporter POSTs gzip-compressed JSON arrays of log records."""

from __future__ import annotations

import pytest

from clew import attributes as a
from clew.config import load_config
from clew.errors import ConfigurationError
from clew.exporters.http import create_http_exporter
from clew.log_record import RECORD_FIELDS
from clew.setup import create_exporter

from .conftest import Harness, JsonReceiver, assert_accounted, emit


def test_records_arrive_as_gzip_json_with_configured_headers(
    harness: Harness, json_receiver: JsonReceiver, clean_otlp_env: pytest.MonkeyPatch
) -> None:
    clean_otlp_env.setenv("CLEW_HTTP_ENDPOINT", json_receiver.url)
    clean_otlp_env.setenv("CLEW_HTTP_HEADERS", "Authorization=Bearer%20tok,x-team=ml")
    config = load_config().model_copy(update={"project": "bot"})
    pipeline = harness.pipeline(create_exporter("http", config))
    tracer = harness.tracer(pipeline)
    with tracer.start_as_current_span("answer") as span:
        span.set_attribute(a.CLEW_TAGS, ("rag",))
        span.set_attribute(a.GEN_AI_USAGE_INPUT_TOKENS, 12)
    assert pipeline.flush(5.0)
    (body,) = json_receiver.bodies
    (record,) = body
    assert tuple(record) == RECORD_FIELDS
    assert (record["name"], record["project_name"], record["tags"]) == ("answer", "bot", ["rag"])
    assert record["input_tokens"] == 12
    headers = json_receiver.headers[0]
    assert headers["authorization"] == "Bearer tok"
    assert headers["x-team"] == "ml"
    assert headers["content-type"] == "application/json"
    assert_accounted(pipeline, received=1)


def test_http_exporter_retries_like_otlp(harness: Harness, json_receiver: JsonReceiver) -> None:
    json_receiver.statuses = [503, 429]
    pipeline = harness.pipeline(create_http_exporter(endpoint=json_receiver.url))
    emit(harness.tracer(pipeline), 9)
    assert pipeline.flush(5.0)
    assert [len(b) for b in json_receiver.bodies] == [9]
    assert_accounted(pipeline, received=9)


def test_http_exporter_without_endpoint_says_what_to_set(
    clean_otlp_env: pytest.MonkeyPatch,
) -> None:
    with pytest.raises(ConfigurationError, match="CLEW_HTTP_ENDPOINT"):
        create_exporter("http")


def test_http_exporter_rejects_a_non_http_url() -> None:
    with pytest.raises(ConfigurationError, match="http:// or https://"):
        create_http_exporter(endpoint="ftp://logs.example.com/x")
