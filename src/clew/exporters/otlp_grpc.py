"""OTLP over gRPC, behind the ``grpc`` extra (``pip install 'clew[grpc]'``).

Same payload as OTLP/HTTP (the ``ExportTraceServiceRequest`` bytes of :func:`otlp_encode`, passed
through gRPC unserialized, so retries and the spill directory reuse them), sent to
``opentelemetry.proto.collector.trace.v1.TraceService/Export``. Configured like the official
``opentelemetry-exporter-otlp-proto-grpc`` exporter, from the same ``OTEL_EXPORTER_OTLP_*``
variables (read by :mod:`clew.config`): the endpoint (default ``http://localhost:4317``; only
host and port are used), ``…_INSECURE`` (else plaintext exactly when the scheme is ``http``),
headers, timeout (seconds), compression (``gzip``), certificates. The status codes the official
exporter retries are reported as retryable, with the backend's ``RetryInfo`` delay; the others
are permanent.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from opentelemetry.sdk.trace import ReadableSpan

from clew.errors import ConfigurationError, PermanentExportError, RetryableExportError
from clew.exporters._protowire import retry_delay
from clew.exporters._transport import text_excerpt
from clew.exporters._urls import merged_headers
from clew.exporters.base import PayloadExporter
from clew.exporters.otlp_payload import DEFAULT_TIMEOUT, OTLP_PAYLOAD_KIND, otlp_encode

_logger = logging.getLogger(__name__)
EXPORT_METHOD = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
DEFAULT_GRPC_ENDPOINT = "http://localhost:4317"
# The codes opentelemetry-exporter-otlp-proto-grpc retries.
RETRYABLE_CODES = frozenset(
    {
        "CANCELLED",
        "DEADLINE_EXCEEDED",
        "RESOURCE_EXHAUSTED",
        "ABORTED",
        "OUT_OF_RANGE",
        "UNAVAILABLE",
        "DATA_LOSS",
    }
)
# Reconnect within seconds after an outage (gRPC's own default backoff grows to 2 minutes).
_CHANNEL_OPTIONS = (
    ("grpc.initial_reconnect_backoff_ms", 500),
    ("grpc.max_reconnect_backoff_ms", 5000),
)


def import_grpc() -> Any:
    """The ``grpc`` module, or a :class:`ConfigurationError` naming the extra to install."""
    try:
        import grpc  # type: ignore[import-untyped,unused-ignore]
    except ImportError as exc:
        raise ConfigurationError(
            "OTLP over gRPC needs the grpc extra: pip install 'clew[grpc]' "
            "(or use OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf)"
        ) from exc
    return grpc


def _read(path: str | None, what: str) -> bytes | None:
    if path is None:
        return None
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise ConfigurationError(f"cannot read the OTLP {what} {path}: {exc}") from exc


class OtlpGrpcSpanExporter(PayloadExporter):
    """OTLP over gRPC; arguments override the ``OTEL_EXPORTER_OTLP_*`` variables.

    Args:
        endpoint: ``http://host:4317`` (plaintext) or ``https://host:4317`` (TLS).
        headers: gRPC metadata sent with every call (never logged).
        timeout: seconds per call.
        compression: ``gzip`` or ``none``.
        insecure: force plaintext (``True``) or TLS (``False``).

    Raises:
        ConfigurationError: ``grpcio`` is missing, or a bad argument.
    """

    payload_kind = OTLP_PAYLOAD_KIND

    def __init__(
        self,
        *,
        endpoint: str | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = None,
        compression: str | None = None,
        insecure: bool | None = None,
        certificate_file: str | None = None,
        client_certificate_file: str | None = None,
        client_key_file: str | None = None,
    ) -> None:
        self._grpc = grpc = import_grpc()
        url = endpoint or DEFAULT_GRPC_ENDPOINT
        parsed = urlparse(url)
        if insecure is None:
            insecure = parsed.scheme == "http"
        if parsed.scheme == "https":
            insecure = False
        self._address = parsed.netloc or url
        self.target = f"grpc://{self._address}"
        self._insecure = insecure
        self._metadata = tuple(merged_headers(headers).items())
        if timeout is not None and not timeout > 0:
            raise ConfigurationError(f"timeout must be > 0 seconds, not {timeout!r}")
        self.timeout = timeout or DEFAULT_TIMEOUT
        wanted = (compression or "none").strip().lower()
        if wanted not in ("gzip", "none"):
            raise ConfigurationError(f"gRPC compression must be gzip or none, not {wanted!r}")
        self._compression = (
            grpc.Compression.Gzip if wanted == "gzip" else grpc.Compression.NoCompression
        )
        self._credentials = None
        if not insecure:
            self._credentials = grpc.ssl_channel_credentials(
                root_certificates=_read(certificate_file, "certificate"),
                private_key=_read(client_key_file, "client key"),
                certificate_chain=_read(client_certificate_file, "client certificate"),
            )
        self._channel: Any = None
        self._closed = False
        self._open()

    def _open(self) -> None:
        grpc = self._grpc
        if self._insecure:
            channel = grpc.insecure_channel(
                self._address, options=_CHANNEL_OPTIONS, compression=self._compression
            )
        else:
            channel = grpc.secure_channel(
                self._address,
                self._credentials,
                options=_CHANNEL_OPTIONS,
                compression=self._compression,
            )
        self._channel = channel
        self._pid = os.getpid()
        # No serializers: the payload is already the encoded request.
        self._export = channel.unary_unary(
            EXPORT_METHOD, request_serializer=None, response_deserializer=None
        )

    def encode(self, spans: Sequence[ReadableSpan]) -> bytes:
        """The ``ExportTraceServiceRequest`` bytes (see :func:`otlp_encode`)."""
        try:
            return otlp_encode(spans)
        except Exception as exc:
            raise PermanentExportError(f"OTLP encoding failed: {exc!r}") from exc

    def send(self, payload: bytes, timeout: float) -> None:
        """One ``Export`` call; gRPC status codes become retryable or permanent errors."""
        if self._closed:
            raise RetryableExportError(f"exporter to {self.target} is shut down")
        if self._pid != os.getpid():  # forked: the parent's channel is not ours
            self._open()
        try:
            self._export(payload, timeout=timeout, metadata=self._metadata)
        except self._grpc.RpcError as exc:
            code = exc.code()
            name = getattr(code, "name", str(code))
            message = f"gRPC {name} from {self.target}: {text_excerpt(str(exc.details()).encode())}"
            if name not in RETRYABLE_CODES:
                raise PermanentExportError(message) from exc
            if name == "UNAVAILABLE" and not self._closed:  # as the official exporter does
                self._channel.close()
                self._open()
            delay = None
            for key, value in exc.trailing_metadata() or ():
                if key == "google.rpc.retryinfo-bin" and isinstance(value, bytes):
                    delay = retry_delay(value)
            raise RetryableExportError(message, retry_after=delay) from exc

    def shutdown(self) -> None:
        """Close the channel; a call in flight is cancelled."""
        self._closed = True
        if self._channel is not None:
            self._channel.close()
