"""The OTLP settings follow the official exporter's variables; secrets never reach the logs."""

from __future__ import annotations

import logging

import pytest

from clew.config import load_config
from clew.environment import parse_headers
from clew.errors import ConfigurationError
from clew.exporters._transport import parse_retry_after
from clew.exporters._urls import redact_url
from clew.exporters.otlp import OtlpHttpSettings, OtlpHttpSpanExporter, create_otlp_exporter
from clew.setup import create_exporter


def _http_settings() -> OtlpHttpSettings:
    """The settings of the ``otlp`` exporter ``configure()`` builds from the environment."""
    exporter = create_exporter("otlp")
    assert isinstance(exporter, OtlpHttpSpanExporter)
    exporter.shutdown()
    return exporter.settings


def test_default_endpoint_is_local_collector(clean_otlp_env: pytest.MonkeyPatch) -> None:
    settings = _http_settings()
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
    assert _http_settings().endpoint == expected


def test_traces_endpoint_is_used_as_is_and_wins(clean_otlp_env: pytest.MonkeyPatch) -> None:
    clean_otlp_env.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://base:4318")
    clean_otlp_env.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://traces:9999/custom")
    assert _http_settings().endpoint == "http://traces:9999/custom"
    assert OtlpHttpSettings.create(endpoint="http://arg/x").endpoint == "http://arg/x"


def test_traces_headers_replace_generic_ones(clean_otlp_env: pytest.MonkeyPatch) -> None:
    clean_otlp_env.setenv("OTEL_EXPORTER_OTLP_HEADERS", "a=generic,b=generic")
    clean_otlp_env.setenv("OTEL_EXPORTER_OTLP_TRACES_HEADERS", "A=tr%20aces")
    headers = _http_settings().headers
    assert headers["a"] == "tr aces" and "b" not in headers
    assert headers["content-type"] == "application/x-protobuf"


def test_argument_headers_join_the_defaults() -> None:
    headers = OtlpHttpSettings.create(headers={"X-Arg": "1"}).headers
    assert headers["x-arg"] == "1"
    assert headers["content-type"] == "application/x-protobuf"


def test_timeout_and_compression_from_env(clean_otlp_env: pytest.MonkeyPatch) -> None:
    clean_otlp_env.setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "3")
    clean_otlp_env.setenv("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "2.5")
    clean_otlp_env.setenv("OTEL_EXPORTER_OTLP_COMPRESSION", "GZIP")
    settings = _http_settings()
    assert (settings.timeout, settings.compression) == (2.5, "gzip")


def test_bad_env_values_are_logged_and_fall_back(
    clean_otlp_env: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    clean_otlp_env.setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "soon")
    clean_otlp_env.setenv("OTEL_EXPORTER_OTLP_COMPRESSION", "brotli")
    clean_otlp_env.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json")
    with caplog.at_level(logging.WARNING):
        otlp = load_config().otlp
        settings = _http_settings()
    assert (otlp.timeout, otlp.compression, otlp.protocol) == (None, None, None)
    assert (settings.timeout, settings.compression) == (10.0, "none")
    warned = {r.getMessage().split("=")[0] for r in caplog.records}
    assert warned == {
        "clew: ignoring OTEL_EXPORTER_OTLP_TIMEOUT",
        "clew: ignoring OTEL_EXPORTER_OTLP_COMPRESSION",
        "clew: ignoring OTEL_EXPORTER_OTLP_PROTOCOL",
    }


def test_bad_arguments_raise() -> None:
    with pytest.raises(ConfigurationError, match="compression"):
        OtlpHttpSettings.create(compression="brotli")
    with pytest.raises(ConfigurationError, match="protocol"):
        create_otlp_exporter(protocol="http/json")
    with pytest.raises(ConfigurationError, match="timeout"):
        OtlpHttpSettings.create(timeout=0)


def test_headers_never_appear_in_logs_or_repr(
    clean_otlp_env: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    clean_otlp_env.setenv(
        "OTEL_EXPORTER_OTLP_HEADERS", "authorization=Bearer sk-secret-1,bad entry sk-secret-2"
    )
    clean_otlp_env.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "https://u:sk-secret-3@host:4318")
    with caplog.at_level(logging.DEBUG):
        exporter = create_exporter("otlp")
    assert isinstance(exporter, OtlpHttpSpanExporter)
    assert exporter.settings.headers["authorization"] == "Bearer sk-secret-1"
    shown = caplog.text + repr(exporter.settings) + exporter.target
    assert "sk-secret" not in shown
    assert "entry #2 in OTEL_EXPORTER_OTLP_HEADERS" in caplog.text
    exporter.shutdown()


def test_timeouts_out_of_range_are_logged_and_ignored(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        config = load_config(env={"CLEW_HTTP_TIMEOUT": "0", "OTEL_EXPORTER_OTLP_TIMEOUT": "-1"})
    assert (config.http.timeout, config.otlp.timeout) == (10.0, None)
    assert len(caplog.records) == 2


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
