"""``@clew.trace``: one span per call of a function, coroutine, generator or async generator."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any, TypeVar, Unpack, overload

from clew.errors import ConfigurationError
from clew.tracer.entry import open_span
from clew.tracer.generators import TracedAsyncGenerator, TracedGenerator
from clew.tracer.live import LIVE_KEY, current_context
from clew.tracer.options import SpanOptions, SpanSpec
from clew.tracer.sdk_shortcut import attach, detach

F = TypeVar("F", bound=Callable[..., Any])

_SIMPLE_KINDS = (
    inspect.Parameter.POSITIONAL_ONLY,
    inspect.Parameter.POSITIONAL_OR_KEYWORD,
    inspect.Parameter.KEYWORD_ONLY,
)


def make_binder(fn: Callable[..., Any]) -> Callable[[tuple[Any, ...], dict[str, Any]], Any]:
    """A function turning a call's ``(args, kwargs)`` into its inputs dict.

    The signature is inspected once, here. The inputs are the bound arguments with defaults
    applied, without ``self`` / ``cls``; ``**kwargs`` are merged in at the top level.
    """
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return lambda args, kwargs: {"args": list(args), **kwargs}
    params = list(sig.parameters.values())
    skip = 1 if params and params[0].name in ("self", "cls") else 0
    if len(params) == skip:
        return lambda args, kwargs: None  # nothing to capture: no inputs attribute at all
    if all(p.kind in _SIMPLE_KINDS for p in params):
        names = tuple(p.name for p in params)
        defaults = {
            p.name: p.default for p in params[skip:] if p.default is not inspect.Parameter.empty
        }
        if skip:

            def bind_method(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
                inputs = dict(defaults)
                inputs.update(zip(names[1:], args[1:], strict=False))
                if kwargs:
                    inputs.update(kwargs)
                return inputs

            return bind_method

        def bind(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
            inputs = dict(defaults)
            inputs.update(zip(names, args, strict=False))
            if kwargs:
                inputs.update(kwargs)
            return inputs

        return bind

    first = params[0].name if skip else None

    def bind_general(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        bound = sig.bind_partial(*args, **kwargs)
        bound.apply_defaults()
        inputs: dict[str, Any] = {}
        for name, value in bound.arguments.items():
            if name == first:
                continue
            kind = sig.parameters[name].kind
            if kind is inspect.Parameter.VAR_KEYWORD:
                inputs.update(value)
            elif kind is inspect.Parameter.VAR_POSITIONAL:
                inputs[name] = list(value)
            else:
                inputs[name] = value
        return inputs

    return bind_general


def _wrap(fn: Callable[..., Any], spec: SpanSpec) -> Callable[..., Any]:
    bind = make_binder(fn)

    if inspect.isasyncgenfunction(fn) or inspect.isgeneratorfunction(fn):
        traced = TracedAsyncGenerator if inspect.isasyncgenfunction(fn) else TracedGenerator

        @functools.wraps(fn)
        def iter_wrapper(*args: Any, **kwargs: Any) -> Any:
            context = current_context()
            parent: Any = context.get(LIVE_KEY)  # a LiveSpan or None
            if parent is not None and not parent.recording:  # open_span's first check, inline
                return fn(*args, **kwargs)
            live = open_span(spec, context, parent, bind, (args, kwargs))
            if live is None:
                return fn(*args, **kwargs)
            try:
                iterator = fn(*args, **kwargs)  # runs none of the body yet
            except BaseException as exc:
                live.fail(exc)
                raise
            return traced(iterator, live)

        return iter_wrapper

    if inspect.iscoroutinefunction(fn):

        @functools.wraps(fn)
        async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
            context = current_context()
            parent: Any = context.get(LIVE_KEY)  # a LiveSpan or None
            if parent is not None and not parent.recording:  # open_span's first check, inline
                return await fn(*args, **kwargs)
            live = open_span(spec, context, parent, bind, (args, kwargs))
            if live is None:
                return await fn(*args, **kwargs)
            token = attach(live.span, live)
            try:
                result = await fn(*args, **kwargs)
            except BaseException as exc:
                detach(token)
                live.fail(exc)
                raise
            detach(token)
            if live.recording:  # a dropped span has nothing to end
                live.end(result, True)
            return result

        return async_wrapper

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        context = current_context()
        parent: Any = context.get(LIVE_KEY)  # a LiveSpan or None
        if parent is not None and not parent.recording:  # open_span's first check, inline
            return fn(*args, **kwargs)
        live = open_span(spec, context, parent, bind, (args, kwargs))
        if live is None:
            return fn(*args, **kwargs)
        token = attach(live.span, live)
        try:
            result = fn(*args, **kwargs)
        except BaseException as exc:
            detach(token)
            live.fail(exc)
            raise
        detach(token)
        if live.recording:  # a dropped span has nothing to end
            live.end(result, True)
        return result

    return wrapper


@overload
def trace(fn: F, /) -> F: ...


@overload
def trace(*, name: str | None = None, **options: Unpack[SpanOptions]) -> Callable[[F], F]: ...


def trace(fn: Any = None, /, *, name: str | None = None, **options: Unpack[SpanOptions]) -> Any:
    """Trace every call of a function as a span: inputs, output, timing, status, error.

    Works bare (``@trace``) or with arguments, on functions, coroutines, generators, async
    generators, methods, classmethods and staticmethods. The signature, the return value and
    exceptions are kept (an exception is recorded as status ``error`` and re-raised unchanged).

    Args:
        fn: the function, when used bare.
        name: the span name; the function's name by default.
        **options: the :class:`~clew.tracer.options.SpanOptions`: ``kind``, ``tags``, ``metadata``,
            ``end_user_identifier``, ``session_id``, ``target``, ``deployment_id``,
            ``log_omit_inputs``, ``log_omit_outputs``, ``log_omit``, ``log_sample_rate``.

    Example:
        >>> import clew
        >>> @clew.trace(tags=["rag"])
        ... def answer(question: str) -> str:
        ...     return question.upper()

    Raises:
        ConfigurationError: an argument is invalid (at decoration time, never per call).
    """

    def decorate(target_fn: Any) -> Any:
        if isinstance(target_fn, classmethod):
            return classmethod(decorate(target_fn.__func__))
        if isinstance(target_fn, staticmethod):
            return staticmethod(decorate(target_fn.__func__))
        if not callable(target_fn):
            raise ConfigurationError(
                f"@clew.trace decorates functions, got {type(target_fn).__name__}"
            )
        span_name = getattr(target_fn, "__name__", type(target_fn).__name__)
        return _wrap(target_fn, SpanSpec(name if name is not None else span_name, options))

    if fn is not None:
        return decorate(fn)
    return decorate
