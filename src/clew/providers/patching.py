"""Patching an SDK's ``request`` method, and the handle that undoes it.

:func:`instrument_sdk` is the one generic instrumentation: ``instrument_openai`` and
``instrument_anthropic`` are it with their :class:`Sdk`. It wraps ``request`` on the SDK's
base client classes (every client, once per process) or on one client, with the wrappers
below; each wrapper opens the call's span (:func:`~clew.providers.engine.begin`), runs the
SDK's request with the span current, and settles the result
(:func:`~clew.providers.streams.settle`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self

import wrapt

from clew.errors import ConfigurationError, internal_error
from clew.providers.engine import Adapter, begin
from clew.providers.streams import settle

__all__ = ["Instrumentation", "Sdk", "instrument_sdk"]

logger = logging.getLogger(__name__)

_IN_CALL: ContextVar[bool] = ContextVar("clew_in_llm_call", default=False)
"""True while an instrumented request runs: a second wrapper on the same call stands aside."""


def _begin(adapter: Adapter, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """The call's span, or None: not traced (inside another wrapper's call, not an LLM route,
    a sampled-out trace, or starting it failed)."""
    if _IN_CALL.get():
        return None
    try:
        return begin(adapter, instance, args, kwargs)
    except Exception:
        internal_error(logger, "starting an LLM span failed")
        return None


def sync_wrapper(adapter: Adapter) -> Callable[..., Any]:
    """The wrapt wrapper of a sync ``request`` method."""

    def request(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        call = _begin(adapter, instance, args, kwargs)
        if call is None:
            return wrapped(*args, **kwargs)
        marker = _IN_CALL.set(True)
        token = call.live.activate()
        try:
            result = wrapped(*args, **kwargs)
        except BaseException as exc:
            call.live.deactivate(token)
            _IN_CALL.reset(marker)
            call.fail(exc)
            raise
        call.live.deactivate(token)
        _IN_CALL.reset(marker)
        settle(adapter, call, result)
        return result

    return request


def async_wrapper(adapter: Adapter) -> Callable[..., Any]:
    """The wrapt wrapper of an async ``request`` method (the same steps, with ``await``)."""

    async def request(
        wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        call = _begin(adapter, instance, args, kwargs)
        if call is None:
            return await wrapped(*args, **kwargs)
        marker = _IN_CALL.set(True)
        token = call.live.activate()
        try:
            result = await wrapped(*args, **kwargs)
        except BaseException as exc:
            call.live.deactivate(token)
            _IN_CALL.reset(marker)
            call.fail(exc)
            raise
        call.live.deactivate(token)
        _IN_CALL.reset(marker)
        settle(adapter, call, result)
        return result

    return request


class _Patch:
    """One wrapped attribute: ``owner.name`` (a class, or one client) and how to undo it."""

    __slots__ = ("name", "original", "owner", "wrapper")

    def __init__(self, owner: Any, name: str, wrapper: Callable[..., Any]) -> None:
        self.owner = owner
        self.name = name
        self.original: Any = None
        self.wrapper: Any = None
        if isinstance(owner, type):
            self.original = owner.__dict__[name]
            self.wrapper = wrapt.FunctionWrapper(self.original, wrapper)
        else:
            self.wrapper = wrapt.FunctionWrapper(getattr(owner, name), wrapper)
        setattr(owner, name, self.wrapper)

    def undo(self) -> None:
        owner = self.owner
        if isinstance(owner, type):
            if owner.__dict__.get(self.name) is self.wrapper:
                setattr(owner, self.name, self.original)
        elif vars(owner).get(self.name) is self.wrapper:
            delattr(owner, self.name)


class Instrumentation:
    """A handle on an instrumentation: undo it, or use it as a context manager.

    Example:
        >>> import clew
        >>> with clew.instrument_openai():  # doctest: +SKIP
        ...     client.chat.completions.create(...)  # traced
    """

    def __init__(
        self,
        name: str,
        patches: list[_Patch] | None = None,
        parts: list[Instrumentation] | None = None,
        on_undo: Callable[[], None] | None = None,
    ) -> None:
        self.name = name
        self._patches = patches or []
        self._parts = parts or []
        self._on_undo = on_undo
        self._active = True

    @property
    def active(self) -> bool:
        """True until :meth:`uninstrument` is called."""
        return self._active

    def uninstrument(self) -> None:
        """Undo the instrumentation (idempotent). Calls already running finish traced."""
        if not self._active:
            return
        self._active = False
        for patch in reversed(self._patches):
            try:
                patch.undo()
            except Exception:
                internal_error(logger, "undoing the %s instrumentation failed", self.name)
        for part in self._parts:
            part.uninstrument()
        if self._on_undo is not None:
            self._on_undo()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.uninstrument()

    def __repr__(self) -> str:
        state = "active" if self._active else "undone"
        return f"<clew.Instrumentation {self.name} {state}>"


_registry: dict[str, Instrumentation] = {}
_HANDLE_ATTRIBUTE = "_clew_instrumentation"


def patch(
    adapter: Adapter, targets: list[tuple[Any, bool]], label: str, client: Any = None
) -> Instrumentation:
    """Wrap ``request`` on each target (``(class or client, is_async)``), once.

    The SDK classes are instrumented once per process (``client`` None), a client once per
    client (the handle is kept on the client, so it dies with it). Calling again while the
    first is active returns the same handle.
    """
    holder: dict[str, Any] = _registry if client is None else vars(client)
    key = adapter.name if client is None else _HANDLE_ATTRIBUTE
    existing = holder.get(key)
    if isinstance(existing, Instrumentation) and existing.active:
        return existing
    patches = [
        _Patch(owner, "request", async_wrapper(adapter) if is_async else sync_wrapper(adapter))
        for owner, is_async in targets
    ]

    def forget() -> None:
        if holder.get(key) is handle:
            del holder[key]

    handle = Instrumentation(label, patches, on_undo=forget)
    holder[key] = handle
    return handle


@dataclass(frozen=True, slots=True)
class Sdk:
    """A provider SDK clew instruments.

    Attributes:
        name: the SDK's name (``openai``), as in ``instrument_openai``.
        package: what ``pip install`` takes.
        requirement: the versions clew supports, as a requirement (``openai >= 1.40``).
        load: imports the SDK and returns its adapter and its sync and async base client
            classes (the ones whose ``request`` every call goes through).
    """

    name: str
    package: str
    requirement: str
    load: Callable[[], tuple[Adapter, type, type]]


def instrument_sdk(sdk: Sdk, client: Any = None) -> Instrumentation:
    """Trace an SDK's calls: every client (no ``client``) or one client.

    With no client the SDK's base client classes are patched, so every client, existing and
    future, sync and async, is traced. Calling again while instrumented returns the same handle.

    Raises:
        ImportError: the SDK is not installed; the message names the install command.
        ConfigurationError: ``client`` is not a client of this SDK.
    """
    try:
        adapter, sync_client, async_client = sdk.load()
    except ImportError as exc:
        raise ImportError(
            f"instrument_{sdk.name}() needs the {sdk.package} package: pip install {sdk.package}"
        ) from exc
    if client is None:
        return patch(adapter, [(sync_client, False), (async_client, True)], sdk.name)
    if not isinstance(client, sync_client | async_client):
        raise ConfigurationError(
            f"instrument_{sdk.name}() takes a {sdk.package} client, got {type(client).__name__}"
        )
    is_async = isinstance(client, async_client)
    label = f"{sdk.name} client {id(client):#x}"
    return patch(adapter, [(client, is_async)], label, client=client)
