"""The routes of the gateway's other providers, whose paths carry parameters: Cohere v2 chat,
Gemini / Vertex AI ``generateContent`` and ``streamGenerateContent``, Bedrock ``converse`` and
``converse-stream``.

Each entry is ``(method, path pattern, provider, builder)``: the pattern's named groups reach
the builder as :attr:`Call.params <clew.testing.llm_server.replies.Call.params>`, and
``provider`` picks the error shape of faults (see :func:`~.faults.error_reply`).
"""

from __future__ import annotations

import re

from clew.testing.llm_server.bedrock_routes import BEDROCK_ROUTES
from clew.testing.llm_server.cohere_routes import COHERE_ROUTES
from clew.testing.llm_server.gemini_routes import GEMINI_ROUTES
from clew.testing.llm_server.replies import Route

__all__ = ["PATTERN_ROUTES", "PatternRoute"]

PatternRoute = tuple[str, re.Pattern[str], str, Route]

PATTERN_ROUTES: tuple[PatternRoute, ...] = (*COHERE_ROUTES, *GEMINI_ROUTES, *BEDROCK_ROUTES)
"""Every parameterised route, tried in order before the fixed OpenAI and Anthropic routes."""
