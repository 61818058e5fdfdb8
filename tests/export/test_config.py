"""The OTLP settings follow the official exporter's variables; secrets never reach the logs."""

from __future__ import annotations

import logging

import pytest

from clew.errors import ConfigurationError
from clew.exporters._env import parse_headers, redact_url
from clew.exporters._transport import parse_retry_after
from clew.exporters.otlp import (
    OtlpHttpSettings,
    OtlpHttpSpanExporter,
    create_otlp_exporter,
    resolve_protocol,
)


def test_default_endpoint_is_local_collector(clean_otlp_env: pytest.MonkeyPatch) -> None:
    settings = OtlpHttpSettings.resolve()
    assert settings.endpoint == "http://localhost:4318/v1/traces"
    assert (settings.timeout, settings.compression) == (10.0, "none")


@pytest.mark.parametrize(
    ("base", "expected"),
    [
        ("http://collector:4318", "http://collector:4318/v1/traces"),
        ("http://collector:4318/", "http://collector:4318/v1/traces"),
        (
            "https://otlp.example.com/api/public/otel",
            "https://otlp.example.com/api/public/otel/v1/traces",
        ),
    ],
)
def test_base_endpoint_gets_the_traces_path(
    clean_otlp_env: pytest.MonkeyPatch, base: str, expected: str
) -> None:
    clean_otlp_env.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", base)
    assert OtlpHttpSettings.resolve().endpoint == expected


def test_traces_endpoint_is_used_as_is_and_wins(clean_otlp_env: pytest.MonkeyPatch) -> None:
    clean_otlp_env.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://base:4318")
    clean_otlp_env.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://traces:9999/custom")
    assert OtlpHttpSettings.resolve().endpoint == "http://traces:9999/custom"
    assert OtlpHttpSettings.resolve(endpoint="http://arg/x").endpoint == "http://arg/x"


def test_traces_headers_replace_generic_ones_and_arguments_override(
    clean_otlp_env: pytest.MonkeyPatch,
) -> None:
    clean_otlp_env.setenv("OTEL_EXPORTER_OTLP_HEADERS", "a=generic,b=generic")
    clean_otlp_env.setenv("OTEL_EXPORTER_OTLP_TRACES_HEADERS", "A=tr%20aces")
    headers = OtlpHttpSettings.resolve(headers={"X-Arg": "1"}).headers
    assert headers["a"] == "tr aces" and "b" not in headers
    assert headers["x-arg"] == "1"
    assert headers["content-type"] == "application/x-protobuf"


def test_timeout_and_compression_from_env(clean_otlp_env: pytest.MonkeyPatch) -> None:
    clean_otlp_env.setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "3")
    clean_otlp_env.setenv("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "2.5")
    clean_otlp_env.setenv("OTEL_EXPORTER_OTLP_COMPRESSION", "GZIP")
    settings = OtlpHttpSettings.resolve()
    assert (settings.timeout, settings.compression) == (2.5, "gzip")


def test_bad_env_values_are_logged_and_fall_back(
    clean_otlp_env: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    clean_otlp_env.setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "soon")
    clean_otlp_env.setenv("OTEL_EXPORTER_OTLP_COMPRESSION", "brotli")
    clean_otlp_env.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json")
    with caplog.at_level(logging.WARNING):
        settings = OtlpHttpSettings.resolve()
        assert resolve_protocol() == "http/protobuf"
    assert (settings.timeout, settings.compression) == (10.0, "none")
    assert len(caplog.records) == 3


def test_bad_arguments_raise() -> None:
    with pytest.raises(ConfigurationError, match="compression"):
        OtlpHttpSettings.resolve(compression="brotli")
    with pytest.raises(ConfigurationError, match="protocol"):
        create_otlp_exporter(protocol="http/json")
    with pytest.raises(ConfigurationError, match="timeout"):
        OtlpHttpSettings.resolve(timeout=0)


def test_headers_never_appear_in_logs_or_repr(
    clean_otlp_env: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    clean_otlp_env.setenv(
        "OTEL_EXPORTER_OTLP_HEADERS", "authorization=Bearer sk-secret-1,bad entry sk-secret-2"
    )
    clean_otlp_env.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "https://u:sk-secret-3@host:4318")
    with caplog.at_level(logging.DEBUG):
        exporter = create_otlp_exporter()
    assert isinstance(exporter, OtlpHttpSpanExporter)
    assert exporter.settings.headers["authorization"] == "Bearer sk-secret-1"
    shown = caplog.text + repr(exporter.settings) + exporter.target
    assert "sk-secret" not in shown
    assert "entry #2 in OTEL_EXPORTER_OTLP_HEADERS" in caplog.text
    exporter.shutdown()


def test_header_format_matches_the_otlp_spec() -> None:
    assert parse_headers("k1=v1, K2 = v%2C2 ,=x,k3=a=b", source="T") == {
        "k1": "v1",
        "k2": "v,2",
        "k3": "a=b",
    }


def test_redact_url_drops_credentials_and_query() -> None:
    assert redact_url("https://u:p@h:1/p?api_key=s") == "https://h:1/p"


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("7", 7.0),
        ("0.5", 0.5),
        ("-3", 0.0),
        ("Wed, 21 Oct 2015 07:28:05 GMT", 5.0),
        ("Wed, 21 Oct 2015 07:27:00 GMT", 0.0),
        ("soon", None),
        (None, None),
        ("nan", None),
    ],
)
def test_retry_after_seconds_or_http_date(value: str | None, seconds: float | None) -> None:
    assert parse_retry_after(value, now=1445412480.0) == seconds
