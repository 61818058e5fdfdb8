"""The local trace store (SQLite): schema, writes, and the queries behind the CLI and UI."""

from __future__ import annotations

from clew.store.sqlite import DEFAULT_STORE_PATH, TraceStore

__all__ = ["DEFAULT_STORE_PATH", "TraceStore"]
