"""OTLP export: HTTP/protobuf by default, gRPC with the ``grpc`` extra.

Configured exactly like OpenTelemetry's official Python exporters, from the same variables:

- ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` (used as is) or ``OTEL_EXPORTER_OTLP_ENDPOINT`` (the
  base URL: ``/v1/traces`` is appended); default ``http://localhost:4318/v1/traces``;
- ``OTEL_EXPORTER_OTLP_TRACES_HEADERS`` or else ``OTEL_EXPORTER_OTLP_HEADERS``
  (``k=v,k=v``, values URL-encoded);
- ``OTEL_EXPORTER_OTLP_TRACES_TIMEOUT`` or ``OTEL_EXPORTER_OTLP_TIMEOUT``, in seconds as the
  Python SDK reads it (default 10);
- ``OTEL_EXPORTER_OTLP_TRACES_COMPRESSION`` or ``OTEL_EXPORTER_OTLP_COMPRESSION``
  (``gzip``, ``deflate``, ``none``);
- ``OTEL_EXPORTER_OTLP_TRACES_PROTOCOL`` or ``OTEL_EXPORTER_OTLP_PROTOCOL`` (``http/protobuf``,
  or ``grpc``: see :mod:`clew.exporters.otlp_grpc`);
- ``OTEL_EXPORTER_OTLP_[TRACES_]CERTIFICATE``, ``…_CLIENT_CERTIFICATE``, ``…_CLIENT_KEY``.

Why not wrap the official ``OTLPSpanExporter``: the payload is made by the official encoder
(``encode_spans(spans).SerializePartialToString()`` from
``opentelemetry-exporter-otlp-proto-common``), so what reaches the collector is byte for byte
what the official exporter sends, but the official class cannot sit behind clew's pipeline:
it retries internally (up to 6 attempts within its timeout), which would multiply with the
pipeline's retries and hold a shutdown; it reports only SUCCESS or FAILURE, losing the status
code and ``Retry-After`` the pipeline needs to choose between retry, spill and give-up; it
encodes again on every call, so a batch spilled to disk could not be replayed as bytes; and its
configuration helpers are private and have moved between SDK releases. So clew reads the same
variables with the same precedence and POSTs with a small ``http.client`` transport
(:mod:`clew.exporters._transport`), which adds no dependency, keeps the connection alive, and
can be aborted from the shutdown path. Headers are never logged.
"""

from __future__ import annotations

import importlib.metadata
import logging
import ssl
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceResponse,
)
from opentelemetry.sdk.trace import ReadableSpan

from clew.errors import ConfigurationError
from clew.exporters._env import env_float, first_env, merged_headers, parse_headers, redact_url
from clew.exporters._protowire import status_message
from clew.exporters._sizing import ThrottledLog
from clew.exporters._transport import COMPRESSIONS, HttpTransport, text_excerpt
from clew.exporters.base import PayloadExporter, PermanentExportError

_logger = logging.getLogger("clew.exporters")

OTLP_PAYLOAD_KIND = "otlp.traces/protobuf"
DEFAULT_HTTP_ENDPOINT = "http://localhost:4318"
TRACES_PATH = "v1/traces"
DEFAULT_TIMEOUT = 10.0
PROTOCOLS = ("http/protobuf", "grpc")


def _env_pair(suffix: str) -> tuple[str, str]:
    return f"OTEL_EXPORTER_OTLP_TRACES_{suffix}", f"OTEL_EXPORTER_OTLP_{suffix}"


def _user_agent() -> str:
    try:
        version = importlib.metadata.version("clew")
    except importlib.metadata.PackageNotFoundError:
        version = "0"
    return f"clew/{version} (OTLP exporter)"


def otlp_encode(spans: Sequence[ReadableSpan]) -> bytes:
    """An ``ExportTraceServiceRequest`` for ``spans``, made by the official OTLP encoder."""
    payload: bytes = encode_spans(spans).SerializePartialToString()
    return payload


@dataclass(frozen=True, slots=True, repr=False)
class OtlpHttpSettings:
    """Where and how OTLP/HTTP payloads are sent. ``repr`` shows no header and no credential."""

    endpoint: str
    headers: dict[str, str]
    timeout: float = DEFAULT_TIMEOUT
    compression: str = "none"
    certificate_file: str | None = None
    client_certificate_file: str | None = None
    client_key_file: str | None = None

    def __repr__(self) -> str:
        return (
            f"OtlpHttpSettings(endpoint={redact_url(self.endpoint)!r}, "
            f"headers=<{len(self.headers)} hidden>, timeout={self.timeout}, "
            f"compression={self.compression!r})"
        )

    @classmethod
    def resolve(
        cls,
        *,
        endpoint: str | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = None,
        compression: str | None = None,
    ) -> OtlpHttpSettings:
        """Arguments first, then the environment, then the defaults, like the official exporter.

        Raises:
            ConfigurationError: a bad argument (a bad environment value is logged and ignored).
        """
        if endpoint is None:
            found = first_env("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
            if found is not None:
                endpoint = found[1]
            else:
                base = first_env("OTEL_EXPORTER_OTLP_ENDPOINT")
                base_url = base[1] if base else DEFAULT_HTTP_ENDPOINT
                endpoint = f"{base_url.removesuffix('/')}/{TRACES_PATH}"
        env_headers = first_env(*_env_pair("HEADERS"))
        resolved_headers = merged_headers(
            {"content-type": "application/x-protobuf", "user-agent": _user_agent()},
            parse_headers(env_headers[1], source=env_headers[0]) if env_headers else None,
            headers,
        )
        if timeout is None:
            timeout = env_float(*_env_pair("TIMEOUT"), default=DEFAULT_TIMEOUT, minimum=0.001)
        elif not timeout > 0:
            raise ConfigurationError(f"timeout must be > 0 seconds, not {timeout!r}")
        return cls(
            endpoint=endpoint,
            headers=resolved_headers,
            timeout=timeout,
            compression=_compression(compression),
            certificate_file=_file_setting("CERTIFICATE"),
            client_certificate_file=_file_setting("CLIENT_CERTIFICATE"),
            client_key_file=_file_setting("CLIENT_KEY"),
        )

    def ssl_context(self) -> ssl.SSLContext | None:
        """The TLS context for ``https`` endpoints (``None``: the system defaults)."""
        if not (self.certificate_file or self.client_certificate_file):
            return None
        context = ssl.create_default_context(cafile=self.certificate_file)
        if self.client_certificate_file:
            context.load_cert_chain(self.client_certificate_file, self.client_key_file)
        return context


def _file_setting(suffix: str) -> str | None:
    found = first_env(*_env_pair(suffix))
    return found[1] if found else None


def _compression(value: str | None) -> str:
    if value is not None:
        value = value.strip().lower()
        if value not in COMPRESSIONS:
            raise ConfigurationError(f"compression must be one of {COMPRESSIONS}, not {value!r}")
        return value
    found = first_env(*_env_pair("COMPRESSION"))
    if found is None:
        return "none"
    name, raw = found
    if raw.strip().lower() not in COMPRESSIONS:
        _logger.warning("clew: unsupported %s=%r; sending uncompressed", name, raw)
        return "none"
    return raw.strip().lower()


def _otlp_error_text(content_type: str, body: bytes) -> str:
    if "protobuf" in content_type:
        message = status_message(body)
        if message is not None:
            return text_excerpt(message.encode())
    return text_excerpt(body)


class OtlpHttpSpanExporter(PayloadExporter):
    """OTLP over HTTP/protobuf, one POST per batch to ``…/v1/traces``.

    Args:
        settings: the resolved settings; see :meth:`OtlpHttpSettings.resolve`.

    Example:
        >>> exporter = OtlpHttpSpanExporter(
        ...     OtlpHttpSettings.resolve(endpoint="http://localhost:4318/v1/traces"))
        >>> exporter.target
        'http://localhost:4318/v1/traces'
        >>> exporter.shutdown()
    """

    payload_kind = OTLP_PAYLOAD_KIND

    def __init__(self, settings: OtlpHttpSettings) -> None:
        self.settings = settings
        self.timeout = settings.timeout
        try:
            context = settings.ssl_context()
        except (OSError, ssl.SSLError) as exc:
            raise ConfigurationError(f"cannot load the OTLP TLS certificates: {exc}") from exc
        self._transport = HttpTransport(
            settings.endpoint,
            settings.headers,
            compression=settings.compression,
            ssl_context=context,
            error_text=_otlp_error_text,
        )
        self.target = self._transport.target
        self._log = ThrottledLog(_logger, f"otlp {self.target}")

    def encode(self, spans: Sequence[ReadableSpan]) -> bytes:
        """The ``ExportTraceServiceRequest`` bytes, from the official encoder."""
        try:
            return otlp_encode(spans)
        except Exception as exc:
            raise PermanentExportError(f"OTLP encoding failed: {exc!r}") from exc

    def send(self, payload: bytes, timeout: float) -> None:
        """POST one request; a partial success (spans the backend rejected) is logged."""
        body = self._transport.post(payload, timeout)
        if not body:
            return
        try:
            response = ExportTraceServiceResponse.FromString(body)
        except Exception:
            return  # a 2xx with a body we cannot read is still a success
        partial = response.partial_success
        if partial.rejected_spans or partial.error_message:
            self._log.warning(
                "partial",
                "the backend rejected %d spans: %s",
                partial.rejected_spans,
                text_excerpt(partial.error_message.encode()),
            )

    def shutdown(self) -> None:
        """Close the connection (aborting a request in flight)."""
        self._transport.close()


def resolve_protocol(protocol: str | None = None) -> str:
    """``http/protobuf`` or ``grpc``: the argument, else the environment, else HTTP.

    Raises:
        ConfigurationError: the argument names another protocol.
    """
    if protocol is not None:
        if protocol not in PROTOCOLS:
            raise ConfigurationError(f"OTLP protocol must be one of {PROTOCOLS}, not {protocol!r}")
        return protocol
    found = first_env(*_env_pair("PROTOCOL"))
    if found is None:
        return "http/protobuf"
    name, raw = found
    value = raw.strip().lower()
    if value not in PROTOCOLS:
        _logger.warning("clew: unsupported %s=%r; using http/protobuf", name, raw)
        return "http/protobuf"
    return value


def create_otlp_exporter(
    *,
    endpoint: str | None = None,
    headers: Mapping[str, str] | None = None,
    timeout: float | None = None,
    compression: str | None = None,
    protocol: str | None = None,
) -> PayloadExporter:
    """The OTLP exporter the arguments and ``OTEL_EXPORTER_OTLP_*`` variables describe.

    Example:
        >>> exporter = create_otlp_exporter(endpoint="http://collector:4318/v1/traces")
        >>> type(exporter).__name__, exporter.target
        ('OtlpHttpSpanExporter', 'http://collector:4318/v1/traces')
        >>> exporter.shutdown()

    Raises:
        ConfigurationError: a bad argument, or ``grpc`` without the ``grpc`` extra installed.
    """
    if resolve_protocol(protocol) == "grpc":
        from clew.exporters.otlp_grpc import OtlpGrpcSpanExporter

        return OtlpGrpcSpanExporter(
            endpoint=endpoint, headers=headers, timeout=timeout, compression=compression
        )
    settings = OtlpHttpSettings.resolve(
        endpoint=endpoint, headers=headers, timeout=timeout, compression=compression
    )
    return OtlpHttpSpanExporter(settings)
