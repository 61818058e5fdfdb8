"""clew's exception types, and the one path a failure inside clew takes.

Public calls raise :class:`ClewError` subclasses with a message that says what to do.

Instrumentation, processors and exporters never raise into the user's code: a failure inside
clew is handed to :func:`internal_error`, which logs it and lets the user's call go on
untraced. Under pytest (the ``clew`` pytest plugin turns it on) and with ``CLEW_STRICT=1`` it
raises :class:`InternalError` instead, so a bug inside clew fails the test that found it
rather than leaving a log line nobody reads.
"""

from __future__ import annotations

import logging
import sys

__all__ = [
    "AuthenticationError",
    "ClewError",
    "CompletionError",
    "CompletionTimeoutError",
    "ConfigurationError",
    "ExportError",
    "InternalError",
    "InvalidRequestError",
    "PermanentExportError",
    "ProviderError",
    "RateLimitError",
    "RetryableExportError",
    "StoreError",
    "internal_error",
    "is_strict",
    "reraise_internal",
    "set_strict",
]


class ClewError(Exception):
    """Base class of every error clew raises."""


class ConfigurationError(ClewError, ValueError):
    """A bad argument to :func:`clew.configure`, :func:`clew.trace` or :func:`clew.span`."""


class StoreError(ClewError):
    """The local trace store is missing, unreadable, or does not hold the asked-for trace."""


class InternalError(ClewError):
    """A failure inside clew, raised only in strict mode (under pytest, ``CLEW_STRICT=1``).

    Its ``__cause__`` is the original exception. Code that guards a boundary with foreign code
    (a third-party exporter, a user's object) lets this one through.
    """


class ExportError(ClewError):
    """A batch could not be delivered. Raised by exporters, caught by the export pipeline only."""


class RetryableExportError(ExportError):
    """A failure worth retrying: connection error, timeout, 408, 429, 5xx.

    Args:
        message: what went wrong, safe to log (never includes request headers).
        retry_after: seconds the backend asked us to wait (``Retry-After``), if it said.
    """

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class PermanentExportError(ExportError):
    """A failure that retrying cannot fix (a 4xx other than 408/429, a payload the backend
    rejects). The message carries the backend's own explanation, safe to log."""


class CompletionError(ClewError):
    """A completion (:func:`clew.completion`) failed; what the gateway needs for the error body
    ``{"error": {"code", "message", "param", "type"}}``.

    Attributes:
        status_code: the HTTP status that stands for it (400, 401, 429, 5xx).
        code: a short machine-readable code (``invalid_request``, ``missing_variable`` ...).
        message: what went wrong and what to do (never a key).
        param: the request field at fault, if one is.
        type: the error type of the OpenAI-style body.
        provider: the provider that answered, if one did.
        provider_error: the provider's own error text, if it sent one.
        retry_after: seconds the provider asked to wait (429), if it said.
    """

    status_code = 500
    code = "internal_error"
    type = "server_error"

    def __init__(
        self,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        status_code: int | None = None,
        provider: str | None = None,
        provider_error: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        if code is not None:
            self.code = code
        if status_code is not None:
            self.status_code = status_code
        self.provider = provider
        self.provider_error = provider_error
        self.retry_after = retry_after

    def to_dict(self) -> dict[str, object]:
        """The OpenAI-style error body."""
        return {
            "error": {
                "code": self.code,
                "message": self.message,
                "param": self.param,
                "type": self.type,
            }
        }


class InvalidRequestError(CompletionError, ValueError):
    """The request cannot be sent: unknown provider or deployment, a missing template
    variable, a parameter the provider cannot honour, a bad field (400). Nothing was sent."""

    status_code = 400
    code = "invalid_request"
    type = "invalid_request_error"


class AuthenticationError(CompletionError):
    """No key, or the provider refused it (401)."""

    status_code = 401
    code = "authentication_error"
    type = "authentication_error"


class PermissionDeniedError(CompletionError):
    """The gateway key may not use this model (403)."""

    status_code = 403
    code = "model_not_allowed"
    type = "permission_error"


class RateLimitError(CompletionError):
    """The provider kept answering 429 until the retries or the deadline ran out, or a gateway
    key is over one of its limits."""

    status_code = 429
    code = "rate_limit_exceeded"
    type = "rate_limit_error"


class ProviderError(CompletionError):
    """The provider failed (5xx, a broken connection, an error inside a stream): 502, or
    the provider's own status for a 4xx it refused the request with."""

    status_code = 502
    code = "provider_error"
    type = "api_error"


class CompletionTimeoutError(CompletionError, TimeoutError):
    """The overall deadline (``CLEW_COMPLETION_TIMEOUT``) passed before any model answered."""

    status_code = 504
    code = "timeout"
    type = "timeout_error"


class EvalError(ClewError):
    """An eval could not score (an LLM judge's reply it cannot read): its score is recorded as
    failed."""


class EvalTimeoutError(ClewError, TimeoutError):
    """An eval function ran longer than its time limit: the reason of its failed score."""


class BodyTooLarge(BaseException):
    """Inside ``clew serve``'s body limit: a request body passed the limit while it arrived.
    A BaseException, so that the framework's own handlers (which turn an ``Exception`` met while
    reading a body into a 400) let it reach the limit, which answers 413."""


class AmbiguousIdError(LookupError):
    """Inside the store: an id prefix matches several traces; ``args[0]`` lists some of them.
    The store turns it into a :class:`StoreError` for the user."""


class StaleConnectionError(Exception):
    """Inside an HTTP exporter: the server closed a kept-alive connection before answering
    (the request is sent again on a new connection)."""


class SerializationHazard(Exception):
    """Inside the serializer: a value the fast path must not hand to ``pydantic_core``."""


class SerializationFull(BaseException):
    """Inside the serializer's walker: the output budget is spent (not an error)."""


class _Mode:
    """Whether internal errors raise: set by configuration and by the pytest plugin."""

    configured = False
    testing = False


def set_strict(*, configured: bool | None = None, testing: bool | None = None) -> None:
    """Turn strict mode on or off, from configuration (``CLEW_STRICT``) or for a test run.

    Strict mode is on when either is on.
    """
    if configured is not None:
        _Mode.configured = configured
    if testing is not None:
        _Mode.testing = testing


def is_strict() -> bool:
    """True when :func:`internal_error` raises instead of logging."""
    return _Mode.configured or _Mode.testing


def internal_error(logger: logging.Logger, what: str, *args: object) -> None:
    """Handle the exception being handled as a failure inside clew.

    Call it from an ``except`` block. In production it logs ``what`` (a ``%``-format with
    ``args``) with the traceback and returns, so the caller can carry on without clew. In
    strict mode it raises :class:`InternalError` from the exception instead. An
    :class:`InternalError` raised further down (strict mode) goes on unchanged.

    Example:
        >>> import logging
        >>> set_strict(configured=True)
        >>> try:
        ...     {}["missing"]
        ... except KeyError:
        ...     internal_error(logging.getLogger("demo"), "reading %s failed", "a dict")
        Traceback (most recent call last):
        ...
        clew.errors.InternalError: reading a dict failed
        >>> set_strict(configured=False)
    """
    exc = sys.exc_info()[1]
    if isinstance(exc, InternalError):
        raise exc
    if _Mode.configured or _Mode.testing:
        raise InternalError(what % args if args else what) from exc
    logger.error("clew: %s (a bug in clew; your code goes on)", what % args, exc_info=True)


def reraise_internal(exc: BaseException) -> None:
    """Raise ``exc`` again when it is an :class:`InternalError`: for a boundary with foreign
    code that otherwise turns every failure into a result."""
    if isinstance(exc, InternalError):
        raise exc
