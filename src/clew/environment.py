"""The environment variables clew reads, and how each is parsed.

:func:`clew.config.load_config` is the only caller: it validates each value on its own and
logs and ignores a bad one, so a typo in a deployment's environment never takes the
application down. Nothing else in clew reads ``os.environ``.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import unquote

__all__ = ["VARIABLES", "Variable", "parse_bool", "parse_headers"]

logger = logging.getLogger(__name__)

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def parse_bool(text: str) -> bool:
    """``true``/``false`` (also ``1``/``0``, ``yes``/``no``, ``on``/``off``), any case.

    Raises:
        ValueError: anything else.
    """
    lowered = text.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ValueError(f"expected true or false, got {text!r}")


# The grammar of opentelemetry.util.re.parse_env_headers(liberal=True), which the official
# OTLP exporters use. It is restated here because the official parser logs a malformed entry
# verbatim, and header values carry API keys: clew logs the position of a bad entry only.
_OWS = r"[ \t]*"
_KEY = r"[\x21\x23-\x27\x2a\x2b\x2d\x2e\x30-\x39\x41-\x5a\x5e-\x7a\x7c\x7e]+"
_VALUE = r"[\x21\x23-\x2b\x2d-\x3a\x3c-\x5b\x5d-\x7e]*"
_LIBERAL_VALUE = r"[\x20\x21\x23-\x2b\x2d-\x3a\x3c-\x5b\x5d-\x7e]*"
_STRICT = re.compile(rf"{_OWS}{_KEY}{_OWS}={_OWS}{_VALUE}{_OWS}")
_LIBERAL = re.compile(rf"{_OWS}{_KEY}{_OWS}={_OWS}{_LIBERAL_VALUE}{_OWS}")
_DELIMITER = re.compile(r"[ \t]*,[ \t]*")


def parse_headers(text: str, *, source: str) -> dict[str, str]:
    """Parse ``k=v,k=v`` headers (values URL-encoded, as the OTLP exporter spec says).

    Names are lower-cased; a value that is not URL-encoded but has no comma is accepted, as
    the official Python exporters do. Malformed entries are skipped with a warning that names
    ``source`` and the entry's position, never its text.

    Example:
        >>> parse_headers("Authorization=Bearer%20tok,x-team=ml", source="EXAMPLE")
        {'authorization': 'Bearer tok', 'x-team': 'ml'}
    """
    headers: dict[str, str] = {}
    for position, entry in enumerate(_DELIMITER.split(text), start=1):
        entry = entry.strip()
        if not entry:
            continue
        if _STRICT.fullmatch(entry):
            name, value = entry.split("=", 1)
            headers[unquote(name).strip().lower()] = unquote(value).strip()
        elif _LIBERAL.fullmatch(entry):
            name, value = entry.split("=", 1)
            headers[name.strip().lower()] = value.strip()
        else:
            logger.warning("clew: ignoring malformed entry #%d in %s", position, source)
    return headers


def _exporter_names(text: str) -> tuple[str, ...]:
    return tuple(part.strip().lower() for part in text.split(",") if part.strip())


def _comma_list(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())


def _milliseconds(text: str) -> float:
    return float(text) / 1000


def _lower(text: str) -> str:
    return text.strip().lower()


class Variable:
    """One environment variable: the configuration field it sets and how to parse it.

    Attributes:
        name: the variable, e.g. ``CLEW_SAMPLE_RATE``.
        field: the path of the field in :class:`~clew.config.Config`, e.g.
            ``("otlp", "timeout")``.
        parse: turns the text into the field's value (raises ValueError when it cannot).
        secret: the value may hold credentials: a bad value is reported without it.
    """

    __slots__ = ("field", "name", "parse", "secret")

    def __init__(
        self, name: str, field: str, parse: Callable[[str], Any], *, secret: bool = False
    ) -> None:
        self.name = name
        self.field = tuple(field.split("."))
        self.parse = parse
        self.secret = secret

    def read(self, env: Mapping[str, str]) -> Any:
        """The parsed value, or None when the variable is unset or blank.

        Raises:
            ValueError: the text cannot be parsed.
        """
        raw = env.get(self.name)
        if raw is None or raw.strip() == "":
            return None
        return self.parse(raw)


def _headers(name: str, field: str) -> Variable:
    return Variable(name, field, lambda text: parse_headers(text, source=name), secret=True)


def _otlp(suffix: str, field: str, parse: Callable[[str], Any]) -> list[Variable]:
    # The signal-specific variable is read after the generic one, so it wins.
    return [
        Variable(f"OTEL_EXPORTER_OTLP_{suffix}", f"otlp.{field}", parse),
        Variable(f"OTEL_EXPORTER_OTLP_TRACES_{suffix}", f"otlp.{field}", parse),
    ]


# The providers of the completion gateway: each one's usual key variables (read first), then
# clew's own CLEW_<PROVIDER>_API_KEY and CLEW_<PROVIDER>_BASE_URL, which win.
_PROVIDER_KEYS: dict[str, tuple[str, ...]] = {
    "openai": ("OPENAI_API_KEY",),
    "azure": ("AZURE_OPENAI_API_KEY",),
    "anthropic": ("ANTHROPIC_API_KEY",),
    "anyscale": ("ANYSCALE_API_KEY",),
    "vertexai": ("GOOGLE_API_KEY", "GEMINI_API_KEY"),
    "aws_bedrock": ("AWS_BEARER_TOKEN_BEDROCK",),
    "openrouter": ("OPENROUTER_API_KEY",),
    "mistral": ("MISTRAL_API_KEY",),
    "litellm": ("LITELLM_API_KEY",),
    "groq": ("GROQ_API_KEY",),
    "fireworks": ("FIREWORKS_API_KEY",),
    "cohere": ("COHERE_API_KEY", "CO_API_KEY"),
}
_PROVIDER_SETTINGS: tuple[tuple[str, str], ...] = (
    ("AZURE_OPENAI_ENDPOINT", "providers.azure.base_url"),
    ("OPENAI_API_VERSION", "providers.azure.api_version"),
    ("CLEW_AZURE_API_VERSION", "providers.azure.api_version"),
    ("GOOGLE_CLOUD_PROJECT", "providers.vertexai.project"),
    ("CLEW_VERTEXAI_PROJECT", "providers.vertexai.project"),
    ("GOOGLE_CLOUD_LOCATION", "providers.vertexai.location"),
    ("CLEW_VERTEXAI_LOCATION", "providers.vertexai.location"),
    ("AWS_DEFAULT_REGION", "providers.aws_bedrock.region"),
    ("AWS_REGION", "providers.aws_bedrock.region"),
    ("CLEW_AWS_BEDROCK_REGION", "providers.aws_bedrock.region"),
)


def _provider_variables() -> list[Variable]:
    found: list[Variable] = []
    for provider, keys in _PROVIDER_KEYS.items():
        field = f"providers.{provider}"
        for name in (*keys, f"CLEW_{provider.upper()}_API_KEY"):
            found.append(Variable(name, f"{field}.api_key", str.strip, secret=True))
        found.append(Variable(f"CLEW_{provider.upper()}_BASE_URL", f"{field}.base_url", str.strip))
    found.extend(Variable(name, field, str.strip) for name, field in _PROVIDER_SETTINGS)
    return found


VARIABLES: tuple[Variable, ...] = (
    Variable("CLEW_PROJECT", "project", str.strip),
    Variable("CLEW_EXPORTER", "exporters", _exporter_names),
    Variable("CLEW_SAMPLE_RATE", "sample_rate", float),
    Variable("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "capture_content", parse_bool),
    Variable("CLEW_CAPTURE_CONTENT", "capture_content", parse_bool),  # wins over the OTel one
    Variable("CLEW_STORE", "store_path", Path),
    Variable("CLEW_JSONL", "jsonl_path", Path),
    Variable("CLEW_MAX_VALUE_BYTES", "max_value_bytes", int),
    Variable("CLEW_STRICT", "strict", parse_bool),
    Variable("CLEW_FIXTURES_DIR", "fixtures_dir", Path),
    Variable("CLEW_SPILL_DIR", "export.spill_dir", Path),
    Variable("CLEW_SPILL_MAX_BYTES", "export.spill_max_bytes", int),
    Variable("CLEW_EXIT_TIMEOUT", "export.exit_timeout", float),
    Variable("OTEL_BSP_MAX_QUEUE_SIZE", "export.max_queue_size", int),
    Variable("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "export.max_batch_size", int),
    Variable("OTEL_BSP_SCHEDULE_DELAY", "export.schedule_delay", _milliseconds),
    Variable("CLEW_HTTP_ENDPOINT", "http.endpoint", str.strip, secret=True),
    _headers("CLEW_HTTP_HEADERS", "http.headers"),
    Variable("CLEW_HTTP_TIMEOUT", "http.timeout", float),
    Variable("OTEL_EXPORTER_OTLP_ENDPOINT", "otlp.endpoint", str.strip, secret=True),
    Variable("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "otlp.traces_endpoint", str.strip, secret=True),
    _headers("OTEL_EXPORTER_OTLP_HEADERS", "otlp.headers"),
    _headers("OTEL_EXPORTER_OTLP_TRACES_HEADERS", "otlp.headers"),
    *_otlp("TIMEOUT", "timeout", float),
    *_otlp("COMPRESSION", "compression", _lower),
    *_otlp("PROTOCOL", "protocol", _lower),
    *_otlp("CERTIFICATE", "certificate_file", str.strip),
    *_otlp("CLIENT_CERTIFICATE", "client_certificate_file", str.strip),
    *_otlp("CLIENT_KEY", "client_key_file", str.strip),
    *_otlp("INSECURE", "insecure", parse_bool),
    *_provider_variables(),
    Variable("CLEW_COMPLETION_TIMEOUT", "gateway.timeout", float),
    Variable("CLEW_COMPLETION_MAX_RETRIES", "gateway.max_retries", int),
    Variable("CLEW_CACHE_URL", "gateway.cache_url", str.strip, secret=True),
    Variable("CLEW_CACHE_TTL", "gateway.cache_ttl", float),
    Variable("CLEW_CACHE_MAX_BYTES", "gateway.cache_max_bytes", int),
    Variable("CLEW_GATEWAY_KEYS", "gateway.keys", _comma_list, secret=True),
    Variable("CLEW_GATEWAY_MAX_BODY_BYTES", "gateway.max_body_bytes", int),
    Variable("CLEW_GATEWAY_MODELS", "gateway.models", _comma_list),
    Variable("CLEW_UI_TOKEN", "ui_token", str.strip, secret=True),
    Variable("CLEW_OTEL_CONVENTIONS", "otel_conventions", _comma_list),
    Variable("PROMETHEUS_MULTIPROC_DIR", "gateway.metrics_dir", str.strip),
)
"""Every variable clew reads, in the order they are applied (later ones win)."""
