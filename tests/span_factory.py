"""Real OpenTelemetry spans carrying clew's attributes, for the store, exporter and CLI tests.

The clew tracer is not used here on purpose: these tests pin down what the exporters and the
store do with spans, whoever made them. Spans come from a real SDK ``TracerProvider`` with
clew's id generator, handed to each exporter synchronously by a ``SimpleSpanProcessor``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from opentelemetry import trace as trace_api
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, Span, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Status, StatusCode

from clew import attributes as a
from clew.log_record import root_trace_id_of, span_to_record
from clew.tracer.id_generator import ClewIdGenerator


class SpanFactory:
    """Makes nested spans the way clew would, exporting each to ``exporters`` when it ends.

    Every span also goes to an in-memory exporter, so a test can compare what an exporter
    wrote with :func:`span_to_record` of the very same spans.
    """

    def __init__(self, *exporters: SpanExporter, project: str = "tests") -> None:
        self.memory = InMemorySpanExporter()
        self.provider = TracerProvider(
            resource=Resource.create({"service.name": project}), id_generator=ClewIdGenerator()
        )
        for exporter in (self.memory, *exporters):
            self.provider.add_span_processor(SimpleSpanProcessor(exporter))
        self.tracer = self.provider.get_tracer("clew")
        self._stack: list[Span] = []
        self._order = 0

    @contextmanager
    def span(
        self,
        name: str,
        *,
        tags: Sequence[str] = (),
        user: str | None = None,
        session: str | None = None,
        inputs: Any = None,
        output: Any = None,
        model: str | None = None,
        input_tokens: int | None = None,
        output_tokens: int | None = None,
        cost: float | None = None,
        error: str | None = None,
        attributes: dict[str, Any] | None = None,
    ) -> Iterator[Span]:
        """A span nested in the enclosing one (a root when none), ended on exit."""
        if not self._stack:
            self._order = 0
        attrs: dict[str, Any] = {
            a.CLEW_DEPTH: len(self._stack),
            a.CLEW_EXECUTION_ORDER: self._order,
        }
        self._order += 1
        if tags:
            attrs[a.CLEW_TAGS] = list(tags)
        for key, value in (
            (a.CLEW_END_USER_IDENTIFIER, user),
            (a.CLEW_SESSION_ID, session),
            (a.GEN_AI_REQUEST_MODEL, model),
            (a.GEN_AI_USAGE_INPUT_TOKENS, input_tokens),
            (a.GEN_AI_USAGE_OUTPUT_TOKENS, output_tokens),
            (a.GEN_AI_USAGE_COST_AMOUNT, cost),
        ):
            if value is not None:
                attrs[key] = value
        if inputs is not None:
            attrs[a.CLEW_INPUTS] = json.dumps(inputs)
        if output is not None:
            attrs[a.CLEW_OUTPUT] = json.dumps(output)
        if model is not None:
            attrs[a.GEN_AI_OPERATION_NAME] = "chat"
        attrs.update(attributes or {})
        with self.tracer.start_as_current_span(name, attributes=attrs) as span:
            assert isinstance(span, Span)
            self._stack.append(span)
            try:
                yield span
                if error is not None:
                    span.set_status(Status(StatusCode.ERROR, error))
            finally:
                self._stack.pop()

    def open_span(self, name: str) -> Span:
        """A started span that is never ended (so never exported): a parent that is missing."""
        span = self.tracer.start_span(name, attributes={a.CLEW_DEPTH: len(self._stack)})
        assert isinstance(span, Span)
        return span

    @contextmanager
    def under(self, parent: Span) -> Iterator[None]:
        """Make ``parent`` (e.g. from :meth:`open_span`) the enclosing span."""
        with trace_api.use_span(parent, end_on_exit=False):
            self._stack.append(parent)
            try:
                yield
            finally:
                self._stack.pop()

    def spans(self) -> list[ReadableSpan]:
        """Every span ended so far, in the order they ended."""
        return list(self.memory.get_finished_spans())

    def records(self) -> list[dict[str, Any]]:
        """:func:`span_to_record` of every span ended so far."""
        return [span_to_record(s) for s in self.spans()]

    def shutdown(self) -> None:
        """Shut the provider and every exporter down."""
        self.provider.shutdown()


def root_id(span: Span) -> str:
    """The ``root_trace_id`` of the trace ``span`` belongs to."""
    return root_trace_id_of(span.get_span_context().trace_id)
