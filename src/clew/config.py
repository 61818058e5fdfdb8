"""clew's one validated configuration, built from ``configure()`` arguments and the environment.

Arguments win over environment variables (:mod:`clew.environment` lists them all). A bad
argument raises :class:`~clew.errors.ConfigurationError`; a bad environment value is logged
and ignored, so a typo in a deployment's environment never takes the application down.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import Any

from opentelemetry.sdk.trace.export import SpanExporter
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from clew.environment import VARIABLES, Variable
from clew.errors import ConfigurationError

__all__ = [
    "Config",
    "ExportConfig",
    "GatewayConfig",
    "HttpConfig",
    "OtlpConfig",
    "ProviderConfig",
    "load_config",
]

logger = logging.getLogger(__name__)

DEFAULT_STORE_PATH = Path(".clew") / "traces.db"
DEFAULT_JSONL_PATH = Path(".clew") / "traces.jsonl"
DEFAULT_MAX_VALUE_BYTES = 64 * 1024
MIN_MAX_VALUE_BYTES = 256

_FROZEN = ConfigDict(frozen=True, extra="forbid")


class ExportConfig(BaseModel):
    """How every export pipeline queues, batches, retries to disk and ends."""

    model_config = _FROZEN

    max_queue_size: int = Field(default=2048, ge=1)  # OTEL_BSP_MAX_QUEUE_SIZE
    max_batch_size: int = Field(default=512, ge=1)  # OTEL_BSP_MAX_EXPORT_BATCH_SIZE
    schedule_delay: float = Field(default=1.0, gt=0)  # seconds; OTEL_BSP_SCHEDULE_DELAY is ms
    spill_dir: Path | None = None
    spill_max_bytes: int = Field(default=128 * 1024 * 1024, ge=1)
    exit_timeout: float = Field(default=2.0, ge=0)


class HttpConfig(BaseModel):
    """The ``http`` exporter's backend (``CLEW_HTTP_*``)."""

    model_config = _FROZEN

    endpoint: str | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    timeout: float = Field(default=10.0, gt=0)


class OtlpConfig(BaseModel):
    """What the standard ``OTEL_EXPORTER_OTLP_*`` variables say; None where they are unset.

    ``traces_endpoint`` is used as is; ``endpoint`` is a base URL (``/v1/traces`` is appended
    for HTTP). The ``…_TRACES_…`` variant of each variable wins over the generic one.
    """

    model_config = _FROZEN

    endpoint: str | None = None
    traces_endpoint: str | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    timeout: float | None = Field(default=None, gt=0)
    compression: str | None = Field(default=None, pattern="^(gzip|none)$")
    protocol: str | None = Field(default=None, pattern="^(http/protobuf|grpc)$")
    certificate_file: str | None = None
    client_certificate_file: str | None = None
    client_key_file: str | None = None
    insecure: bool | None = None


class ProviderConfig(BaseModel):
    """Where one provider of the completion gateway is and how to authenticate
    (``CLEW_<PROVIDER>_BASE_URL``, ``CLEW_<PROVIDER>_API_KEY``, the provider's usual variables).

    The key is a :class:`~pydantic.SecretStr`: it never shows in a repr, a log or an error.
    """

    model_config = _FROZEN

    base_url: str | None = None
    api_key: SecretStr | None = None
    api_version: str | None = None  # azure
    project: str | None = None  # vertexai (Vertex AI rather than the Gemini API)
    location: str | None = None  # vertexai
    region: str | None = None  # aws_bedrock


class GatewayConfig(BaseModel):
    """How :func:`clew.completion` calls providers and caches their answers."""

    model_config = _FROZEN

    timeout: float = Field(default=120.0, gt=0)  # CLEW_COMPLETION_TIMEOUT: the whole call
    max_retries: int = Field(default=2, ge=0, le=10)  # per model, on 408/429/5xx/connection
    cache_url: str | None = None  # CLEW_CACHE_URL: redis://… or a SQLite path
    cache_ttl: float | None = Field(default=7 * 24 * 3600.0, gt=0)  # CLEW_CACHE_TTL, seconds
    cache_max_bytes: int = Field(default=256 * 1024 * 1024, ge=1024)  # CLEW_CACHE_MAX_BYTES
    keys: tuple[SecretStr, ...] = ()  # CLEW_GATEWAY_KEYS: the keys clew serve lets in
    max_body_bytes: int = Field(default=4 * 1024 * 1024, ge=1024)  # CLEW_GATEWAY_MAX_BODY_BYTES
    metrics_dir: str | None = None  # PROMETHEUS_MULTIPROC_DIR: several workers' metrics
    models: tuple[str, ...] | None = None  # CLEW_GATEWAY_MODELS: what clew serve lets through

    def key_list(self) -> list[str]:
        """The gateway keys, in the clear (for comparing with a caller's)."""
        return [key.get_secret_value() for key in self.keys]


CONVENTION_FAMILIES = ("openinference", "langfuse")
"""The extra OpenTelemetry conventions clew can write beside ``gen_ai.*`` and ``clew.*`` (see
:mod:`clew.tracer.conventions`): ``otel_conventions`` names some of them, ``all`` or ``genai``."""


def _convention_families(value: Any) -> tuple[str, ...]:
    """The families ``value`` names, in :data:`CONVENTION_FAMILIES` order.

    Raises:
        ValueError: an unknown name; the message lists the known ones.
    """
    names = value.split(",") if isinstance(value, str) else value
    if not isinstance(names, Sequence) or not all(isinstance(n, str) for n in names):
        raise ValueError("otel_conventions takes a name such as 'all' or a list of names")
    chosen: set[str] = set()
    for name in names:
        key = name.strip().lower()
        if key == "all":
            chosen.update(CONVENTION_FAMILIES)
        elif key in CONVENTION_FAMILIES:
            chosen.add(key)
        elif key not in ("genai", ""):
            raise ValueError(
                f"unknown conventions {name!r}; use 'all' (the default), 'genai' (only gen_ai.*"
                f" and clew.*) or a comma-separated list of {', '.join(CONVENTION_FAMILIES)}"
            )
    return tuple(f for f in CONVENTION_FAMILIES if f in chosen)


GATEWAY_PROVIDER_NAMES = (
    "openai",
    "azure",
    "anthropic",
    "anyscale",
    "vertexai",
    "aws_bedrock",
    "openrouter",
    "mistral",
    "litellm",
    "groq",
    "fireworks",
    "cohere",
)
"""The seed's ``ProviderName`` values, which ``providers`` settings are keyed by."""


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
    strict: bool = False
    fixtures_dir: Path | None = None
    export: ExportConfig = Field(default_factory=ExportConfig)
    http: HttpConfig = Field(default_factory=HttpConfig)
    otlp: OtlpConfig = Field(default_factory=OtlpConfig)
    providers: dict[str, ProviderConfig] = Field(default_factory=dict)
    gateway: GatewayConfig = Field(default_factory=GatewayConfig)
    ui_token: SecretStr | None = None  # CLEW_UI_TOKEN: what clew ui asks for off loopback
    otel_conventions: tuple[str, ...] = CONVENTION_FAMILIES  # CLEW_OTEL_CONVENTIONS

    @field_validator("otel_conventions", mode="before")
    @classmethod
    def _known_conventions(cls, value: Any) -> tuple[str, ...]:
        return _convention_families(value)

    @field_validator("providers")
    @classmethod
    def _known_providers(cls, value: dict[str, ProviderConfig]) -> dict[str, ProviderConfig]:
        for name in value:
            if name not in GATEWAY_PROVIDER_NAMES:
                raise ValueError(
                    f"unknown provider {name!r}; choose from {', '.join(GATEWAY_PROVIDER_NAMES)}"
                )
        return value

    @field_validator("exporters")
    @classmethod
    def _known_exporters(
        cls, value: tuple[str | SpanExporter, ...], info: ValidationInfo
    ) -> tuple[str | SpanExporter, ...]:
        known: Collection[str] | None = (info.context or {}).get("exporters")
        if known is None:  # no registry given: the setup module checks names when it builds
            return value
        for item in value:
            if isinstance(item, str) and item not in known:
                raise ValueError(
                    f"unknown exporter {item!r}; choose from {', '.join(known)}"
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


def _nest(path: tuple[str, ...], value: Any) -> dict[str, Any]:
    nested: dict[str, Any] = {path[-1]: value}
    for key in reversed(path[:-1]):
        nested = {key: nested}
    return nested


def _put(into: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    for key in path[:-1]:
        into = into.setdefault(key, {})
    into[path[-1]] = value  # a later variable replaces the value, dicts included


def _merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in over.items():
        if isinstance(value, BaseModel):
            value = value.model_dump(exclude_unset=True)
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _first_error(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        return str(exc.errors()[0].get("msg", exc))
    return str(exc)


def _read(variable: Variable, env: Mapping[str, str], context: dict[str, Any]) -> Any:
    """The variable's value, checked on its own; None (and a warning) when it is bad."""
    try:
        value = variable.read(env)
        if value is not None:
            Config.model_validate(_nest(variable.field, value), context=context)
        return value
    except (ValueError, ValidationError) as exc:
        shown = "<hidden>" if variable.secret else repr(env.get(variable.name))
        reason = "not a valid value" if variable.secret else _first_error(exc)
        logger.warning("clew: ignoring %s=%s: %s", variable.name, shown, reason)
        return None


def _environment(env: Mapping[str, str], context: dict[str, Any]) -> dict[str, Any]:
    """Settings found in ``env``, each checked on its own; bad ones are logged and skipped."""
    found: dict[str, Any] = {}
    for variable in VARIABLES:
        value = _read(variable, env, context)
        if value is not None:
            _put(found, variable.field, value)
    otlp = found.get("otlp", {})
    if "exporters" not in found and (otlp.get("endpoint") or otlp.get("traces_endpoint")):
        found["exporters"] = ("sqlite", "otlp")  # a collector is configured: send there too
    return found


CONFIG_VARIABLE = "CLEW_SERVE_CONFIG"
"""The settings file ``clew serve --config FILE`` hands to its workers."""


def hand_settings_file(path: str | Path) -> dict[str, Any]:
    """Check a settings file, and hand it to the worker processes started from now on (they
    read it with :func:`handed_settings`); returns its settings.

    Raises:
        ConfigurationError: the file or one of its settings is bad; says which.
    """
    settings = settings_file(path)
    try:
        load_config(**settings)  # a bad setting stops here, not in every worker
    except ConfigurationError as exc:
        raise ConfigurationError(f"{path}: {exc}") from None
    os.environ[CONFIG_VARIABLE] = str(Path(path).resolve())
    return settings


def handed_settings() -> dict[str, Any]:
    """The settings of the file a parent process handed over (empty: none)."""
    path = os.environ.get(CONFIG_VARIABLE)
    return settings_file(path) if path else {}


def settings_file(path: str | Path) -> dict[str, Any]:
    """The settings in a file (YAML, or JSON if the name ends in ``.json``): a mapping of
    :func:`clew.configure`'s keyword arguments.

    Raises:
        ConfigurationError: the file cannot be read or is not such a mapping; says which.
    """
    path = Path(path)
    as_json = path.suffix == ".json"
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigurationError(f"cannot read the settings file {path}: {exc.strerror}") from None
    import yaml

    try:
        data = json.loads(text) if as_json else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:  # both say where
        raise ConfigurationError(
            f"{path} is not valid {'JSON' if as_json else 'YAML'}: {exc}"
        ) from None
    if not isinstance(data, dict) or not all(isinstance(k, str) for k in data):
        raise ConfigurationError(
            f"{path} must hold a mapping of settings, such as 'providers:' or 'gateway:'"
        )
    return data


def load_config(
    *,
    env: Mapping[str, str] | None = None,
    exporters: Collection[str] | None = None,
    **arguments: Any,
) -> Config:
    """Build a :class:`Config` from ``arguments`` (None means "not given") over the environment.

    Args:
        env: the environment to read; ``os.environ`` by default.
        exporters: the exporter names that exist (the setup module's registry); names are
            not checked when None.
        **arguments: the keyword arguments of :func:`clew.configure`.

    Raises:
        ConfigurationError: an argument is invalid; the message says which and why.

    Example:
        >>> load_config(env={"CLEW_SAMPLE_RATE": "0.25"}).sample_rate
        0.25
    """
    given = {k: v for k, v in arguments.items() if v is not None}
    if "exporter" in given:
        given["exporters"] = _parse_exporters(given.pop("exporter"))
    for key in ("store_path", "jsonl_path"):
        if key in given:
            given[key] = Path(given[key])
    if isinstance(given.get("sample_rate"), bool) or isinstance(given.get("max_value_bytes"), bool):
        raise ConfigurationError("sample_rate and max_value_bytes take numbers, not booleans")
    context = {"exporters": exporters} if exporters is not None else {}
    settings = _environment(os.environ if env is None else env, context)
    for key in ("providers", "gateway"):  # merged field by field over the environment's
        if isinstance(given.get(key), Mapping):
            given[key] = _merge(settings.get(key, {}), given[key])
    settings.update(given)
    try:
        return Config.model_validate(settings, context=context)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'value'}: {err['msg']}"
            for err in exc.errors()
        )
        raise ConfigurationError(f"clew.configure(): {problems}") from None
