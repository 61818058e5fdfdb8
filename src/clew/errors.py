"""clew's exception types. Public calls raise these, with a message that says what to do."""

from __future__ import annotations


class ClewError(Exception):
    """Base class of every error clew raises."""


class ConfigurationError(ClewError, ValueError):
    """A bad argument to :func:`clew.configure`, :func:`clew.trace` or :func:`clew.span`."""


class StoreError(ClewError):
    """The local trace store is missing, unreadable, or does not hold the asked-for trace."""
