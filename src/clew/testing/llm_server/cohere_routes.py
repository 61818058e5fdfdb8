"""The fake cohere API (to be written)."""

from __future__ import annotations

import re

from clew.testing.llm_server.replies import Route

__all__ = ["COHERE_ROUTES"]

COHERE_ROUTES: tuple[tuple[str, re.Pattern[str], str, Route], ...] = ()
