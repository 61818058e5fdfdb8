"""The contract between the export pipeline and the exporters it drives.

An :class:`~clew.exporters.pipeline.ExportPipeline` owns the queue, the worker thread, retries,
spill to disk and the statistics; an exporter only turns spans into bytes and delivers bytes.
Splitting the two is what lets a retry or a replay from disk resend a batch without encoding it
again, and keeps every policy decision in one place.

Two kinds of exporter sit behind a pipeline:

- a :class:`PayloadExporter` (``otlp``, ``http``): ``encode`` once, ``send`` as often as the
  pipeline decides, reporting each failure as :class:`RetryableExportError` or
  :class:`PermanentExportError`; its payloads can be spilled to disk;
- any plain OpenTelemetry ``SpanExporter`` (``sqlite``, ``jsonl``, ``console``, ``memory`` or a
  third-party one), wrapped in :class:`SpanExporterAdapter`: ``FAILURE`` or an exception is
  retried a few times, and nothing is spilled (there is no payload to keep).
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Sequence

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from clew.errors import RetryableExportError, reraise_internal

_logger = logging.getLogger(__name__)


class PayloadExporter(ABC):
    """Encodes a batch of spans into one payload and delivers payloads to a backend.

    Contract:

    - Every method is called on the pipeline's worker thread only, except :meth:`shutdown`,
      which may be called from another thread while :meth:`send` is blocked.
    - :meth:`encode` is called once per batch; the pipeline keeps the bytes so retries and
      spill to disk reuse them. It must be deterministic and must not depend on connection
      state: a payload spilled by one process is replayed by another.
    - :meth:`send` may block, but for about ``timeout`` seconds at most. It returns on success
      and raises :class:`RetryableExportError` or :class:`PermanentExportError` on failure,
      never anything else. It must not retry by itself: the pipeline owns the retry policy.
    - Nothing here may log request headers: they often carry API keys.

    Attributes:
        payload_kind: names the payload format; spill files of another kind are never replayed
            through this exporter.
        timeout: default seconds for one :meth:`send`; the pipeline may pass less.
        target: where payloads go, safe to log (no credentials).
    """

    payload_kind: str = "bytes"
    timeout: float = 10.0
    target: str = ""

    @abstractmethod
    def encode(self, spans: Sequence[ReadableSpan]) -> bytes:
        """The payload for a batch of finished spans (uncompressed).

        Raises:
            PermanentExportError: the spans cannot be encoded.
        """

    @abstractmethod
    def send(self, payload: bytes, timeout: float) -> None:
        """Deliver one payload made by :meth:`encode` (possibly by an earlier process).

        Raises:
            RetryableExportError: the backend may accept it later.
            PermanentExportError: the backend will never accept it.
        """

    def shutdown(self) -> None:  # noqa: B027 - optional hook, empty by default
        """Release connections. Makes a :meth:`send` blocked on another thread return soon."""


class SpanExporterAdapter:
    """Lets a plain OpenTelemetry ``SpanExporter`` sit behind an export pipeline.

    ``export`` returning ``FAILURE`` or raising counts as retryable; the pipeline gives up after
    ``max_attempts`` attempts (the exporter has no way to tell a transient failure from a
    permanent one). Plain exporters take no timeout: a hung one holds its own worker only, and
    the pipeline's ``flush``/``shutdown`` still return within their timeout.

    Args:
        exporter: the wrapped exporter.
        max_attempts: attempts per batch before it is counted as failed.
    """

    def __init__(self, exporter: SpanExporter, *, max_attempts: int = 3) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self.exporter = exporter
        self.max_attempts = max_attempts
        self.target = type(exporter).__name__

    def export(self, spans: Sequence[ReadableSpan]) -> None:
        """Export one batch through the wrapped exporter.

        Raises:
            RetryableExportError: the exporter returned ``FAILURE`` or raised.
        """
        try:
            result = self.exporter.export(spans)
        except Exception as exc:  # foreign: a third-party exporter's bug must not reach the app
            reraise_internal(exc)  # one of clew's own exporters found a bug in clew
            raise RetryableExportError(f"{self.target}.export raised {exc!r}") from exc
        if result is not SpanExportResult.SUCCESS:
            raise RetryableExportError(f"{self.target}.export returned {result}")

    def shutdown(self) -> None:
        """Shut the wrapped exporter down, logging (not raising) its errors."""
        try:
            self.exporter.shutdown()
        except Exception as exc:  # foreign: a third-party exporter
            reraise_internal(exc)
            _logger.exception("clew: %s.shutdown failed", self.target)
