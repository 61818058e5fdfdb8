"""The OTLP payload both transports send: a serialized ``ExportTraceServiceRequest``."""

from __future__ import annotations

from collections.abc import Sequence

from opentelemetry.sdk.trace import ReadableSpan

from clew.exporters.otlp_wire import encode_trace_request

__all__ = ["DEFAULT_TIMEOUT", "OTLP_PAYLOAD_KIND", "otlp_encode"]

OTLP_PAYLOAD_KIND = "otlp.traces/protobuf"
"""The kind of spill file an OTLP exporter writes and replays (HTTP and gRPC alike)."""

DEFAULT_TIMEOUT = 10.0
"""Seconds per export request, unless configured."""


def otlp_encode(spans: Sequence[ReadableSpan]) -> bytes:
    """An ``ExportTraceServiceRequest`` for ``spans``, written by :mod:`clew.exporters.otlp_wire`.

    The bytes are those of the official encoder
    (``encode_spans(spans).SerializePartialToString()``), several times faster.
    """
    return encode_trace_request(spans)
