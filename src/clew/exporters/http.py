"""The ``http`` exporter: clew's log records POSTed as a gzip-compressed JSON array.

For teams with their own log backend. Each batch is one ``POST`` to the endpoint
(``CLEW_HTTP_ENDPOINT``) with ``Content-Type: application/json`` and ``Content-Encoding:
gzip``; the body is a JSON array of the records :func:`clew.log_record.span_to_record` makes
(the same records as the ``jsonl`` exporter). Headers (``CLEW_HTTP_HEADERS``, in the OTLP
format ``Authorization=Bearer%20xyz,x-team=ml``) are never logged. Failures are handled by the
pipeline exactly as for OTLP: retried on connection errors, timeouts, 408, 429 and 5xx.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

from opentelemetry.sdk.trace import ReadableSpan

from clew.errors import ConfigurationError, PermanentExportError
from clew.exporters._transport import HttpTransport
from clew.exporters._urls import merged_headers
from clew.exporters.base import PayloadExporter
from clew.log_record import span_to_record

HTTP_PAYLOAD_KIND = "clew.records/json"
DEFAULT_TIMEOUT = 10.0


class HttpJsonExporter(PayloadExporter):
    """POSTs batches of log records as a gzip-compressed JSON array.

    Args:
        endpoint: the URL to POST to.
        headers: extra request headers, e.g. ``{"authorization": "Bearer …"}``.
        timeout: seconds per request.
        project_name: written in every record's ``project_name`` (default: the span
            resource's ``service.name``).

    Example:
        >>> exporter = HttpJsonExporter("https://logs.example.com/ingest", project_name="bot")
        >>> exporter.target
        'https://logs.example.com/ingest'
        >>> exporter.shutdown()
    """

    payload_kind = HTTP_PAYLOAD_KIND

    def __init__(
        self,
        endpoint: str,
        *,
        headers: Mapping[str, str] | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        project_name: str | None = None,
    ) -> None:
        if not timeout > 0:
            raise ConfigurationError(f"timeout must be > 0 seconds, not {timeout!r}")
        self.timeout = timeout
        self._project_name = project_name
        self._transport = HttpTransport(
            endpoint,
            merged_headers({"content-type": "application/json"}, headers),
            compression="gzip",
        )
        self.target = self._transport.target

    def encode(self, spans: Sequence[ReadableSpan]) -> bytes:
        """The JSON array of the spans' records (UTF-8, uncompressed)."""
        try:
            records = [span_to_record(span, self._project_name) for span in spans]
            return json.dumps(records, ensure_ascii=False, default=str).encode()
        except Exception as exc:
            raise PermanentExportError(f"cannot encode records: {exc!r}") from exc

    def send(self, payload: bytes, timeout: float) -> None:
        """POST one batch, gzip-compressed."""
        self._transport.post(payload, timeout)

    def shutdown(self) -> None:
        """Close the connection (aborting a request in flight)."""
        self._transport.close()


def create_http_exporter(
    *,
    endpoint: str | None,
    headers: Mapping[str, str] | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    project_name: str | None = None,
) -> HttpJsonExporter:
    """The ``http`` exporter (``clew.configure(exporter="http")`` passes the ``CLEW_HTTP_*``
    settings).

    Raises:
        ConfigurationError: no endpoint, or a bad one.
    """
    if endpoint is None:
        raise ConfigurationError(
            "the http exporter needs an endpoint: set CLEW_HTTP_ENDPOINT "
            "(e.g. https://logs.example.com/ingest)"
        )
    return HttpJsonExporter(endpoint, headers=headers, timeout=timeout, project_name=project_name)
