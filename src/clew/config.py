"""clew's one validated configuration, built from ``configure()`` arguments and the environment.

Arguments win over environment variables. A bad argument raises
:class:`~clew.errors.ConfigurationError`; a bad environment value is logged and ignored, so a
typo in a deployment's environment never takes the application down.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from opentelemetry.sdk.trace.export import SpanExporter
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from clew.errors import ConfigurationError

logger = logging.getLogger("clew")

EXPORTER_NAMES = ("sqlite", "console", "jsonl", "memory", "none", "otlp", "http")
DEFAULT_STORE_PATH = Path(".clew") / "traces.db"
DEFAULT_JSONL_PATH = Path(".clew") / "traces.jsonl"
DEFAULT_MAX_VALUE_BYTES = 64 * 1024
MIN_MAX_VALUE_BYTES = 256

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


class Config(BaseModel):
    """The settings in force. Built by :func:`load_config`; immutable once built."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True, extra="forbid")

    project: str = Field(default="default", min_length=1)
    exporters: tuple[str | SpanExporter, ...] = ("sqlite",)
    sample_rate: float = Field(default=1.0, ge=0.0, le=1.0)
    capture_content: bool = True
    store_path: Path = DEFAULT_STORE_PATH
    jsonl_path: Path = DEFAULT_JSONL_PATH
    max_value_bytes: int = Field(default=DEFAULT_MAX_VALUE_BYTES, ge=MIN_MAX_VALUE_BYTES)
    spill_dir: Path | None = None

    @field_validator("exporters")
    @classmethod
    def _known_exporters(
        cls, value: tuple[str | SpanExporter, ...]
    ) -> tuple[str | SpanExporter, ...]:
        for item in value:
            if isinstance(item, str) and item not in EXPORTER_NAMES:
                raise ValueError(
                    f"unknown exporter {item!r}; choose from {', '.join(EXPORTER_NAMES)}"
                    " or pass an OpenTelemetry SpanExporter instance"
                )
        return value


def _parse_exporters(value: str | SpanExporter | Sequence[str | SpanExporter]) -> tuple[Any, ...]:
    if isinstance(value, str):
        return tuple(part.strip().lower() for part in value.split(",") if part.strip())
    if isinstance(value, SpanExporter):
        return (value,)
    if isinstance(value, Sequence):
        return tuple(v.strip().lower() if isinstance(v, str) else v for v in value)
    raise ConfigurationError(
        "exporter must be a name such as 'sqlite', a comma-separated list such as"
        f" 'sqlite,console', a list of names, or a SpanExporter; got {type(value).__name__}"
    )


def _parse_bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ValueError(f"expected true or false, got {text!r}")


def _environment(env: Mapping[str, str]) -> dict[str, Any]:
    """Settings found in ``env``, each checked on its own; bad ones are logged and skipped."""
    found: dict[str, Any] = {}
    readers: list[tuple[str, str, Any]] = [
        ("CLEW_PROJECT", "project", str.strip),
        ("CLEW_EXPORTER", "exporters", _parse_exporters),
        ("CLEW_SAMPLE_RATE", "sample_rate", float),
        ("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "capture_content", _parse_bool),
        ("CLEW_CAPTURE_CONTENT", "capture_content", _parse_bool),  # wins over the OTel one
        ("CLEW_STORE", "store_path", Path),
        ("CLEW_JSONL", "jsonl_path", Path),
        ("CLEW_MAX_VALUE_BYTES", "max_value_bytes", int),
        ("CLEW_SPILL_DIR", "spill_dir", Path),
    ]
    for var, field, parse in readers:
        raw = env.get(var)
        if raw is None or raw.strip() == "":
            continue
        try:
            value = parse(raw)
            Config(**{field: value})  # validate this one field alone
        except (ValueError, ValidationError, ConfigurationError) as exc:
            logger.warning("clew: ignoring %s=%r: %s", var, raw, _first_error(exc))
            continue
        found[field] = value
    otlp_endpoint = env.get("OTEL_EXPORTER_OTLP_ENDPOINT") or env.get(
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
    )
    if "exporters" not in found and otlp_endpoint:
        found["exporters"] = ("sqlite", "otlp")  # a collector is configured: send there too
    return found


def _first_error(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        err = exc.errors()[0]
        return str(err.get("msg", exc))
    return str(exc)


def load_config(
    *,
    env: Mapping[str, str] | None = None,
    base: Config | None = None,
    **arguments: Any,
) -> Config:
    """Build a :class:`Config` from ``arguments`` (None means "not given") over the environment.

    Args:
        env: the environment to read; ``os.environ`` by default.
        base: settings already in force; arguments not given keep their value from here
            (environment values are read only when there is no base).
        **arguments: the keyword arguments of :func:`clew.configure`.

    Raises:
        ConfigurationError: an argument is invalid; the message says which and why.
    """
    given = {k: v for k, v in arguments.items() if v is not None}
    if "exporter" in given:
        given["exporters"] = _parse_exporters(given.pop("exporter"))
    if "store_path" in given:
        given["store_path"] = Path(given["store_path"])
    if "jsonl_path" in given:
        given["jsonl_path"] = Path(given["jsonl_path"])
    if isinstance(given.get("sample_rate"), bool) or isinstance(given.get("max_value_bytes"), bool):
        raise ConfigurationError("sample_rate and max_value_bytes take numbers, not booleans")
    settings: dict[str, Any] = (
        base.model_dump() if base is not None else _environment(os.environ if env is None else env)
    )
    settings.update(given)
    try:
        return Config(**settings)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'value'}: {err['msg']}"
            for err in exc.errors()
        )
        raise ConfigurationError(f"clew.configure(): {problems}") from None
