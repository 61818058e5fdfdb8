"""The OTLP payload both transports send: the official encoder's ``ExportTraceServiceRequest``."""

from __future__ import annotations

from collections.abc import Sequence

from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.trace import ReadableSpan

__all__ = ["DEFAULT_TIMEOUT", "OTLP_PAYLOAD_KIND", "otlp_encode"]

OTLP_PAYLOAD_KIND = "otlp.traces/protobuf"
"""The kind of spill file an OTLP exporter writes and replays (HTTP and gRPC alike)."""

DEFAULT_TIMEOUT = 10.0
"""Seconds per export request, unless configured."""


def otlp_encode(spans: Sequence[ReadableSpan]) -> bytes:
    """An ``ExportTraceServiceRequest`` for ``spans``, made by the official OTLP encoder."""
    payload: bytes = encode_spans(spans).SerializePartialToString()
    return payload
