"""One completion in flight: its LLM span, its attempt spans, the cache, and the answer.

:class:`CompletionCall` holds everything the sync and async paths share; they differ only in
how they wait for the network (:mod:`clew.gateway.completion`).
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from opentelemetry.trace import SpanKind

from clew import attributes as a
from clew.config import Config
from clew.errors import (
    CompletionError,
    CompletionTimeoutError,
    ConfigurationError,
    InvalidRequestError,
    internal_error,
)
from clew.gateway.answer import Answer, normalized_finish
from clew.gateway.cache import MemoryFront
from clew.gateway.request import Candidate, Plan, cache_material
from clew.gateway.schemas import CompletionResponse, timestamp
from clew.gateway.upstream import backoff, may_help, retryable
from clew.log_record import new_trace_id, root_trace_id_of
from clew.providers.engine import record_outcome, refined_for
from clew.providers.pricing import Cost, cost_of
from clew.providers.registry import provider_attribute
from clew.tracer.entry import open_span, stitch
from clew.tracer.evaluation import registered
from clew.tracer.live import LIVE_KEY, LiveSpan, current_context
from clew.tracer.options import SpanOptions, SpanSpec

__all__ = ["CompletionCall", "Gate"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Gate:
    """What a gateway adds to a call: attributes for its span, a check of its plan before
    anything is sent or looked up (``admit`` raises a :class:`CompletionError` to refuse), and
    an observer of each upstream request's provider, model and seconds."""

    attributes: Mapping[str, Any] = field(default_factory=dict)
    admit: Callable[[Plan], None] | None = None
    upstream: Callable[[str, str, float], None] | None = None


def _options(plan: Plan) -> SpanOptions:
    request = plan.request
    options: SpanOptions = {}
    if request.tags:
        options["tags"] = list(request.tags)
    if request.metadata:
        options["metadata"] = dict(request.metadata)
    if request.end_user_identifier:
        options["end_user_identifier"] = request.end_user_identifier
    if request.target is not None:
        options["target"] = request.target
    if request.eval_metric_ids:
        try:
            options["eval_funcs"] = registered(request.eval_metric_ids)
        except KeyError as exc:
            raise InvalidRequestError(exc.args[0], param="eval_metric_ids") from None
    if plan.deployment_id:
        options["deployment_id"] = plan.deployment_id
    if request.log_omit_inputs:
        options["log_omit_inputs"] = True
    if request.log_omit_outputs:
        options["log_omit_outputs"] = True
    if request.log_omit:
        options["log_omit"] = True
    if "log_sample_rate" in request.model_fields_set and request.log_sample_rate is not None:
        options["log_sample_rate"] = request.log_sample_rate
    return options


class CompletionCall:
    """One completion: the span around it, its attempts, its cache entry, its answer."""

    def __init__(
        self,
        plan: Plan,
        config: Config,
        cache: MemoryFront | None,
        upstream: Callable[[str, str, float], None] | None = None,
    ) -> None:
        self.plan = plan
        self.config = config
        self.cache = cache if plan.request.cache else None
        self.material = cache_material(plan) if self.cache is not None else b""
        self.started = time.time()
        self.started_perf = time.perf_counter()
        self.deadline = self.started_perf + config.gateway.timeout
        self.attempts = 0
        self.errors: list[CompletionError] = []
        self._position = 0  # the candidate being tried
        self._retries = 0  # its retries so far
        self._failed: str | None = None  # the provider of the last candidate that failed
        self._upstream = upstream
        self._attempt: tuple[Candidate, float] | None = None  # in flight, since when
        self.live = self._open()

    # -- the span --------------------------------------------------------------------------
    def _open(self) -> LiveSpan | None:
        plan = self.plan
        request = plan.request
        first = plan.primary
        name = request.trace_name or request.name or f"llm-{first.provider}"
        try:
            options = _options(plan)
            spec = _spec(name) if not options else SpanSpec(name, options)
            parent_id = request.parent_trace_id or request.trace_id or request.inference_id
            stitched = (
                stitch(parent_id, request.root_trace_id)
                if parent_id or request.root_trace_id
                else None
            )
        except ConfigurationError as exc:
            raise InvalidRequestError(str(exc), param="trace_id") from None
        context = current_context()
        found = None if stitched is not None else context.get(LIVE_KEY)
        parent = found if isinstance(found, LiveSpan) else None
        extra = self._request_attributes(first)
        inputs = request.llm_inputs
        live = open_span(
            spec,
            context,
            parent,
            (lambda: inputs) if inputs else None,
            stitched=stitched,
            extra=extra,
            kind=SpanKind.CLIENT,
        )
        if live is not None and live.recording and not live.omit_inputs:
            body = first.request.body if first.request is not None else {}
            try:
                live.update_attributes(first.wire.route.content(body, live.max_bytes))
            except Exception:
                internal_error(logger, "recording a completion's messages failed")
        return live

    def _request_attributes(self, candidate: Candidate) -> dict[str, Any]:
        plan = self.plan
        request = plan.request
        body = candidate.request.body if candidate.request is not None else {}
        attrs = refined_for(candidate.provider, candidate.wire.route.request(body))
        attrs[a.GEN_AI_OPERATION_NAME] = candidate.wire.operation
        attrs[a.GEN_AI_PROVIDER_NAME] = provider_attribute(candidate.provider)
        attrs[a.GEN_AI_REQUEST_MODEL] = candidate.model
        attrs.update(_server(candidate.target.base_url))
        if plan.stream:
            attrs[a.GEN_AI_REQUEST_STREAM] = True
        if request.project_name and request.project_name != "default":
            attrs[a.CLEW_PROJECT_NAME] = request.project_name
        if request.project_uuid:
            attrs[a.CLEW_PROJECT_UUID] = request.project_uuid
        if request.experiment_uuid:
            attrs[a.CLEW_EXPERIMENT_UUID] = request.experiment_uuid
        if request.eval_metric_ids:
            attrs[a.CLEW_EVAL_METRIC_IDS] = tuple(request.eval_metric_ids)
        if plan.deployment_version is not None:
            attrs[a.CLEW_DEPLOYMENT_VERSION] = plan.deployment_version
        if plan.extra:
            attrs.update(plan.extra)
        return attrs

    @property
    def trace_id(self) -> str:
        """The completion log's ``trace_id`` (also its ``inference_id``)."""
        live = self.live
        return live.trace_id if live is not None else root_trace_id_of(new_trace_id())

    def remaining(self) -> float:
        """Seconds left before the deadline."""
        return self.deadline - time.perf_counter()

    # -- attempts --------------------------------------------------------------------------
    def next_attempt(self) -> tuple[int, Candidate] | None:
        """The model to try next (its index in the fallback order), or None when none is
        left or the deadline passed (then raise :meth:`failure`)."""
        candidates = self.plan.candidates
        while self._position < len(candidates):
            candidate = candidates[self._position]
            if self._retries == 0:  # a model's first try: can it help, can it be tried?
                last = self.errors[-1] if self.errors else None
                if (
                    last is not None
                    and self._failed is not None
                    and not may_help(last, self._failed, candidate.provider)
                ):
                    self._position += 1
                    continue
                if candidate.error is not None:
                    self.errors.append(candidate.error)
                    self._failed = candidate.provider
                    self._position += 1
                    continue
            if self.remaining() <= 0:
                return None
            return self._position, candidate
        return None

    def after_failure(self, error: CompletionError) -> float:
        """Seconds to wait before the next attempt: a backoff to retry the same model, or 0
        to move on to the next one."""
        self._retries += 1
        if retryable(error) and self._retries <= self.config.gateway.max_retries:
            delay = backoff(self._retries, error, self.remaining())
            if delay is not None:
                return delay
        self._failed = self.plan.candidates[self._position].provider
        self._position += 1
        self._retries = 0
        return 0.0

    def begin_attempt(self, candidate: Candidate, index: int) -> LiveSpan | None:
        """Open the span of one upstream request (a child of the completion's span)."""
        self.attempts += 1
        if self._upstream is not None:
            self._attempt = (candidate, time.perf_counter())
        live = self.live
        if live is None or not live.recording:
            return None
        assert candidate.request is not None
        attrs = {
            a.CLEW_ATTEMPT: self.attempts,
            a.CLEW_FALLBACK_INDEX: index,
            a.GEN_AI_PROVIDER_NAME: provider_attribute(candidate.provider),
            a.GEN_AI_REQUEST_MODEL: candidate.model,
            a.HTTP_REQUEST_METHOD: "POST",
            a.URL_FULL: candidate.request.url.split("?", 1)[0],
            **_server(candidate.target.base_url),
        }
        token = live.activate()
        try:
            return open_span(
                _ATTEMPT_SPEC, current_context(), live, extra=attrs, kind=SpanKind.CLIENT
            )
        finally:
            live.deactivate(token)

    def end_attempt(
        self, span: LiveSpan | None, status: int | None, error: CompletionError | None
    ) -> None:
        """End an attempt's span with its HTTP status and error."""
        if error is not None:
            self.errors.append(error)
        if self._attempt is not None and self._upstream is not None:
            candidate, began = self._attempt
            self._attempt = None
            try:
                self._upstream(candidate.provider, candidate.model, time.perf_counter() - began)
            except Exception:
                internal_error(logger, "observing an upstream request failed")
        if span is None:
            return
        if status is not None:
            span.set_attribute(a.HTTP_RESPONSE_STATUS_CODE, status)
        if error is None:
            span.end()
        else:
            span.set_attribute(a.ERROR_TYPE, type(error).__name__)
            span.fail(error)

    def failure(self) -> CompletionError:
        """The error the whole call ends with, once every model failed."""
        errors = self.errors
        if not errors:
            return CompletionTimeoutError(
                f"no model answered within {self.config.gateway.timeout:g} s"
                " (CLEW_COMPLETION_TIMEOUT)"
            )
        last = errors[-1]
        if self.remaining() <= 0 and not isinstance(last, CompletionTimeoutError):
            last = CompletionTimeoutError(
                f"{last.message}; then the deadline of {self.config.gateway.timeout:g} s"
                " (CLEW_COMPLETION_TIMEOUT) passed",
                provider=last.provider,
                provider_error=last.provider_error,
            )
        if self.attempts > 1:
            last.message = f"{last.message} (after {self.attempts} attempts)"
            last.args = (last.message,)
        return last

    # -- the cache -------------------------------------------------------------------------
    def cached(self) -> Answer | None:
        """The cached answer, if the cache has one."""
        if self.cache is None:
            return None
        data = self.cache.get(self.material)
        return self._answer(data)

    async def acached(self) -> Answer | None:
        """:meth:`cached`, for async callers."""
        if self.cache is None:
            return None
        return self._answer(await self.cache.aget(self.material))

    def _answer(self, data: bytes | None) -> Answer | None:
        if data is None:
            return None
        answer = _decoded.get(data)  # a repeat: the same bytes, decoded once
        if answer is not None:
            return answer
        try:
            answer = Answer.from_bytes(data)
        except (ValueError, KeyError, TypeError, IndexError):
            return None  # an entry of another shape: a miss
        if answer is not None:
            if len(_decoded) >= 256:
                _decoded.clear()
            _decoded[data] = answer
        return answer

    def store(self, answer: Answer) -> None:
        """Keep a successful answer."""
        if self.cache is not None:
            self.cache.put(self.material, answer.to_bytes())

    async def astore(self, answer: Answer) -> None:
        """:meth:`store`, for async callers."""
        if self.cache is not None:
            await self.cache.aput(self.material, answer.to_bytes())

    # -- endings ---------------------------------------------------------------------------
    def finish(self, answer: Answer, cache_hit: bool = False) -> CompletionResponse:
        """End the span with the answer and make the response."""
        live = self.live
        _, calls, content = answer.parts()
        cost: Cost
        if live is not None and live.recording:
            candidate = self.plan.candidates[
                min(answer.fallback_index, len(self.plan.candidates) - 1)
            ]
            if answer.fallback_index:
                live.update_attributes(self._request_attributes(candidate))
            messages_json, content_json = answer.rendered(live.max_bytes)
            cost = record_outcome(
                live, answer.outcome, answer.request_model, answer.provider, messages_json
            )
            if not live.omit_outputs:
                live.set_attribute(a.CLEW_OUTPUT, content_json)  # what end(content) would write
            attrs: dict[str, Any] = {
                a.CLEW_CACHE_HIT: cache_hit,
                a.CLEW_ATTEMPTS: self.attempts,
                a.CLEW_FALLBACK_INDEX: answer.fallback_index,
            }
            if cache_hit:
                attrs[a.CLEW_COST_SAVED] = cost.amount if cost.amount is not None else 0.0
                attrs.update(Cost(0.0, "cache").attributes())
            live.update_attributes(attrs)
            live.end(content, True)
        elif answer.outcome.usage is not None:
            cost = cost_of(
                answer.outcome.usage, answer.model, answer.provider, answer.outcome.reported_cost
            )
        else:
            cost = Cost(None)
        usage = answer.outcome.usage
        ended = time.time()
        native = answer.outcome.finish_reasons[0] if answer.outcome.finish_reasons else None
        input_tokens = usage.input_tokens if usage is not None else 0
        output_tokens = usage.output if usage is not None else 0
        trace_id = self.trace_id
        return CompletionResponse(
            inference_id=trace_id,
            content=content,
            latency=round(time.perf_counter() - self.started_perf, 6),
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            total_tokens=input_tokens + output_tokens,
            cost=0.0 if cache_hit else cost.amount,
            model=answer.model,
            provider=answer.provider,
            cache_hit=cache_hit,
            start_timestamp=timestamp(self.started),
            end_timestamp=timestamp(ended),
            trace_id=trace_id,
            finish_reason=normalized_finish(native, bool(calls)),
            native_finish_reason=native,
            tool_calls=calls,
        )

    def fail(self, exc: BaseException) -> None:
        """End the span with the error (the caller raises it)."""
        live = self.live
        if live is None or live.ended:
            return
        if isinstance(exc, CompletionError):
            live.update_attributes(
                {a.CLEW_ATTEMPTS: self.attempts, a.HTTP_RESPONSE_STATUS_CODE: exc.status_code}
            )
        live.fail(exc)


_ATTEMPT_SPEC = SpanSpec("upstream")
_decoded: dict[bytes, Answer] = {}
"""Cached answers decoded lately (an answer is never changed once made)."""
_specs: dict[str, SpanSpec] = {}


def _spec(name: str) -> SpanSpec:
    """The span spec of a call without options, made once per name."""
    spec = _specs.get(name)
    if spec is None:
        spec = SpanSpec(name)
        if len(_specs) < 1024:
            _specs[name] = spec
    return spec


@functools.lru_cache(maxsize=256)
def _server(base_url: str) -> Mapping[str, Any]:
    try:
        parts = urlsplit(base_url)
        host, port = parts.hostname, parts.port
    except ValueError:
        return {}
    attrs: dict[str, Any] = {}
    if host:
        attrs[a.SERVER_ADDRESS] = host
        attrs[a.SERVER_PORT] = port or (443 if parts.scheme == "https" else 80)
    return attrs
