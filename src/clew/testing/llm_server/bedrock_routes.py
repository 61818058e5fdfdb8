"""The fake bedrock API (to be written)."""

from __future__ import annotations

import re

from clew.testing.llm_server.replies import Route

__all__ = ["BEDROCK_ROUTES"]

BEDROCK_ROUTES: tuple[tuple[str, re.Pattern[str], str, Route], ...] = ()
