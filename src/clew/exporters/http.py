"""The ``http`` exporter: clew's log records POSTed as a gzip-compressed JSON array.

For teams with their own log backend. Each batch is one ``POST`` to ``CLEW_HTTP_ENDPOINT`` with
``Content-Type: application/json`` and ``Content-Encoding: gzip``; the body is a JSON array of
the records :func:`clew.exporters.records.span_to_record` makes (the same records as the
``jsonl`` exporter). Headers come from ``CLEW_HTTP_HEADERS`` in the OTLP format
(``Authorization=Bearer%20xyz,x-team=ml``) and are never logged. Failures are handled by the
pipeline exactly as for OTLP: retried on connection errors, timeouts, 408, 429 and 5xx.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

from opentelemetry.sdk.trace import ReadableSpan

from clew.errors import ConfigurationError
from clew.exporters._env import env_float, first_env, merged_headers, parse_headers
from clew.exporters._transport import HttpTransport
from clew.exporters.base import PayloadExporter, PermanentExportError
from clew.exporters.records import span_to_record

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
    endpoint: str | None = None,
    headers: Mapping[str, str] | None = None,
    timeout: float | None = None,
    project_name: str | None = None,
) -> HttpJsonExporter:
    """The ``http`` exporter from arguments, else ``CLEW_HTTP_ENDPOINT``, ``CLEW_HTTP_HEADERS``
    and ``CLEW_HTTP_TIMEOUT`` (seconds, default 10). Argument headers override the variable's.

    Raises:
        ConfigurationError: no endpoint, or a bad one.
    """
    if endpoint is None:
        found = first_env("CLEW_HTTP_ENDPOINT")
        if found is None:
            raise ConfigurationError(
                "the http exporter needs an endpoint: set CLEW_HTTP_ENDPOINT "
                "(e.g. https://logs.example.com/ingest)"
            )
        endpoint = found[1]
    env_headers = first_env("CLEW_HTTP_HEADERS")
    resolved = merged_headers(
        parse_headers(env_headers[1], source="CLEW_HTTP_HEADERS") if env_headers else None,
        headers,
    )
    if timeout is None:
        timeout = env_float("CLEW_HTTP_TIMEOUT", default=DEFAULT_TIMEOUT, minimum=0.001)
    return HttpJsonExporter(endpoint, headers=resolved, timeout=timeout, project_name=project_name)
