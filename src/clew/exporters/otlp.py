"""OTLP export: HTTP/protobuf by default, gRPC with the ``grpc`` extra.

Configured like OpenTelemetry's official Python exporters, from the same variables
(``OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT``, ``…_HEADERS``, ``…_TIMEOUT`` in seconds as the
Python SDK reads it, ``…_COMPRESSION``, ``…_PROTOCOL``, ``…_CERTIFICATE``,
``…_CLIENT_CERTIFICATE``, ``…_CLIENT_KEY``) with the same precedence: they are read by
:mod:`clew.config` (:class:`~clew.config.OtlpConfig`) and handed to
:func:`create_otlp_exporter` by the setup module. Here every setting is an argument.

Why not wrap the official ``OTLPSpanExporter``: the payload is byte for byte what the official
encoder makes (``encode_spans(spans).SerializePartialToString()`` from
``opentelemetry-exporter-otlp-proto-common``), written ten times as fast by
:mod:`clew.exporters.otlp_wire` (its tests compare the two on random spans), but the official
class cannot sit behind clew's pipeline:
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
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceResponse,
)
from opentelemetry.sdk.trace import ReadableSpan

from clew.errors import ConfigurationError, PermanentExportError
from clew.exporters._protowire import status_message
from clew.exporters._sizing import ThrottledLog
from clew.exporters._transport import COMPRESSIONS, HttpTransport, text_excerpt
from clew.exporters._urls import merged_headers, redact_url
from clew.exporters.base import PayloadExporter
from clew.exporters.otlp_payload import DEFAULT_TIMEOUT, OTLP_PAYLOAD_KIND, otlp_encode

_logger = logging.getLogger(__name__)

DEFAULT_HTTP_ENDPOINT = "http://localhost:4318"
TRACES_PATH = "v1/traces"
PROTOCOLS = ("http/protobuf", "grpc")


def _user_agent() -> str:
    try:
        version = importlib.metadata.version("clew")
    except importlib.metadata.PackageNotFoundError:
        version = "0"
    return f"clew/{version} (OTLP exporter)"


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
    def create(
        cls,
        *,
        endpoint: str | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = None,
        compression: str | None = None,
        certificate_file: str | None = None,
        client_certificate_file: str | None = None,
        client_key_file: str | None = None,
    ) -> OtlpHttpSettings:
        """Settings from arguments; None takes the default.

        Args:
            endpoint: the full URL to POST to (default ``http://localhost:4318/v1/traces``).
            headers: extra request headers (never logged).
            timeout: seconds per request (default 10).
            compression: ``gzip``, ``deflate`` or ``none`` (default).
            certificate_file: the CA bundle to trust for ``https``.
            client_certificate_file: the client certificate (mutual TLS).
            client_key_file: the client certificate's key.

        Raises:
            ConfigurationError: a bad argument.
        """
        if timeout is None:
            timeout = DEFAULT_TIMEOUT
        elif not timeout > 0:
            raise ConfigurationError(f"timeout must be > 0 seconds, not {timeout!r}")
        return cls(
            endpoint=endpoint or traces_url(DEFAULT_HTTP_ENDPOINT),
            headers=merged_headers(
                {"content-type": "application/x-protobuf", "user-agent": _user_agent()}, headers
            ),
            timeout=timeout,
            compression=_compression(compression),
            certificate_file=certificate_file,
            client_certificate_file=client_certificate_file,
            client_key_file=client_key_file,
        )

    def ssl_context(self) -> ssl.SSLContext | None:
        """The TLS context for ``https`` endpoints (``None``: the system defaults)."""
        if not (self.certificate_file or self.client_certificate_file):
            return None
        context = ssl.create_default_context(cafile=self.certificate_file)
        if self.client_certificate_file:
            context.load_cert_chain(self.client_certificate_file, self.client_key_file)
        return context


def traces_url(base: str) -> str:
    """The traces URL under an OTLP/HTTP base URL (``OTEL_EXPORTER_OTLP_ENDPOINT``).

    Example:
        >>> traces_url("https://otlp.example.com/otel/")
        'https://otlp.example.com/otel/v1/traces'
    """
    return f"{base.removesuffix('/')}/{TRACES_PATH}"


def _compression(value: str | None) -> str:
    if value is None:
        return "none"
    value = value.strip().lower()
    if value not in COMPRESSIONS:
        raise ConfigurationError(f"compression must be one of {COMPRESSIONS}, not {value!r}")
    return value


def _otlp_error_text(content_type: str, body: bytes) -> str:
    if "protobuf" in content_type:
        message = status_message(body)
        if message is not None:
            return text_excerpt(message.encode())
    return text_excerpt(body)


class OtlpHttpSpanExporter(PayloadExporter):
    """OTLP over HTTP/protobuf, one POST per batch to ``…/v1/traces``.

    Args:
        settings: the settings; see :meth:`OtlpHttpSettings.create`.

    Example:
        >>> exporter = OtlpHttpSpanExporter(
        ...     OtlpHttpSettings.create(endpoint="http://localhost:4318/v1/traces"))
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
        """The ``ExportTraceServiceRequest`` bytes (see :func:`otlp_encode`)."""
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
        except Exception:  # foreign: a 2xx with a body we cannot read is still a success
            return
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


def create_otlp_exporter(
    *,
    endpoint: str | None = None,
    headers: Mapping[str, str] | None = None,
    timeout: float | None = None,
    compression: str | None = None,
    protocol: str | None = None,
    certificate_file: str | None = None,
    client_certificate_file: str | None = None,
    client_key_file: str | None = None,
    insecure: bool | None = None,
) -> PayloadExporter:
    """The OTLP exporter the arguments describe (None: the default).

    ``clew.configure(exporter="otlp")`` builds it from the ``OTEL_EXPORTER_OTLP_*`` variables;
    call this one to set everything yourself.

    Args:
        endpoint: for HTTP the full traces URL (default ``http://localhost:4318/v1/traces``),
            for gRPC ``http(s)://host:port`` (default ``http://localhost:4317``).
        headers: request headers or gRPC metadata (never logged).
        timeout: seconds per request (default 10).
        compression: ``gzip`` or ``none`` (HTTP also ``deflate``).
        protocol: ``http/protobuf`` (default) or ``grpc`` (the ``grpc`` extra).
        certificate_file: the CA bundle to trust.
        client_certificate_file: the client certificate (mutual TLS).
        client_key_file: the client certificate's key.
        insecure: gRPC only: plaintext (True) or TLS (False); default by the scheme.

    Example:
        >>> exporter = create_otlp_exporter(endpoint="http://collector:4318/v1/traces")
        >>> type(exporter).__name__, exporter.target
        ('OtlpHttpSpanExporter', 'http://collector:4318/v1/traces')
        >>> exporter.shutdown()

    Raises:
        ConfigurationError: a bad argument, or ``grpc`` without the ``grpc`` extra installed.
    """
    if protocol not in (None, *PROTOCOLS):
        raise ConfigurationError(f"OTLP protocol must be one of {PROTOCOLS}, not {protocol!r}")
    common: dict[str, Any] = {
        "endpoint": endpoint,
        "headers": headers,
        "timeout": timeout,
        "compression": compression,
        "certificate_file": certificate_file,
        "client_certificate_file": client_certificate_file,
        "client_key_file": client_key_file,
    }
    if protocol == "grpc":
        from clew.exporters.otlp_grpc import OtlpGrpcSpanExporter

        return OtlpGrpcSpanExporter(insecure=insecure, **common)
    return OtlpHttpSpanExporter(OtlpHttpSettings.create(**common))
