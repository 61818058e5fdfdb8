"""A local, deterministic fake of the LLM providers' HTTP APIs: OpenAI (and every
OpenAI-compatible provider), Anthropic, Cohere v2, Gemini / Vertex AI and Bedrock Converse.

:class:`FakeLLMServer` listens on ``127.0.0.1`` (a free port) in daemon threads and answers
the real ``openai`` and ``anthropic`` SDK clients as the providers would, without network
access or keys. Tests, benchmarks and ``clew demo`` point a client at it::

    with FakeLLMServer() as server:
        with OpenAI(base_url=server.openai_base_url, api_key="test") as client:
            reply = client.chat.completions.create(model="gpt-4o-mini", messages=[...])
    assert server.requests[0].path == "/v1/chat/completions"

Endpoints (non-stream and ``"stream": true`` SSE for each, except embeddings):

- OpenAI ``POST /v1/chat/completions`` (``n``, ``stop``, ``max_tokens`` /
  ``max_completion_tokens``, ``tools`` / legacy ``functions`` with streamed argument deltas,
  ``response_format`` json_object / json_schema, ``stream_options.include_usage``),
  ``POST /v1/completions`` (``prompt`` str or list, ``n``, ``echo``, ``logprobs``, ``stop``;
  ``max_tokens`` defaults to 16 as on the real API), ``POST /v1/embeddings`` (float and
  base64), ``POST /v1/responses``. Azure paths (``/openai/deployments/<name>/...``) work too.
- Anthropic ``POST /v1/messages`` (text, ``tool_use`` with ``input_json_delta``,
  ``thinking``, ``stop_sequences``, ``cache_control`` usage) and
  ``POST /v1/messages/count_tokens``.
- Cohere ``POST /v2/chat``; Gemini ``POST /v1beta/models/{model}:generateContent`` and
  ``:streamGenerateContent`` (and the Vertex AI path
  ``/v1/projects/{p}/locations/{l}/publishers/google/models/{model}:...``); Bedrock
  ``POST /model/{modelId}/converse`` and ``/converse-stream`` (binary event-stream frames).
  ``server.providers()`` gives :func:`clew.configure` settings that send every provider of
  :func:`clew.completion` here.

Replies are deterministic: the text echoes the start of the last user message, then filler,
``reply_words`` words long (18 by default, so a chat stream has about 20 chunks). A token is
a whitespace-separated word, so usage agrees between stream and non-stream. A tool is
called when ``tool_choice`` forces one or the last user message names it (or a word of its
name, or says "tool"); arguments are built from the tool's JSON schema. Ids come from a
per-server counter (``chatcmpl-fake00000001`` ...). Caching is simulated per server:
Anthropic counts the prefix up to the last ``cache_control`` block as a cache write the first
time and a cache read afterwards; OpenAI reports cached tokens for a repeated prompt of at
least 1024 tokens. Models named ``o1``/``o3``/``o4``/``gpt-5``... report 16 reasoning tokens.

Faults, per server or per request (request headers, e.g. via the SDK's ``extra_headers``):

- ``fail_next(status, times, retry_after, body)`` / header ``x-fake-status: 500`` (with
  ``x-fake-retry-after``): a provider-style error response.
- ``latency`` / header ``x-fake-latency``: seconds before the first byte.
- ``chunk_delay``: seconds between SSE events.
- ``break_next_stream(after, mode)`` / headers ``x-fake-break-after: 3`` and
  ``x-fake-break-mode: error|close``: send ``after`` events, then an SSE error event
  (``mode="error"``) or drop the connection (``mode="close"``).
- header ``x-fake-reply-words``: the reply length for one request.

Replay: ``FakeLLMServer(cassette=path)`` or :class:`ReplayServer` serves recorded responses
(see :mod:`clew.testing.cassettes`) instead of generated ones.
"""

from __future__ import annotations

from clew.testing.llm_server.faults import (
    FAKE_BREAK_AFTER_HEADER,
    FAKE_BREAK_MODE_HEADER,
    FAKE_LATENCY_HEADER,
    FAKE_REPLY_WORDS_HEADER,
    FAKE_RETRY_AFTER_HEADER,
    FAKE_STATUS_HEADER,
    BreakMode,
)
from clew.testing.llm_server.server import (
    REDACTED,
    CassetteSource,
    FakeLLMServer,
    RecordedRequest,
    ReplayServer,
)

__all__ = [
    "FAKE_BREAK_AFTER_HEADER",
    "FAKE_BREAK_MODE_HEADER",
    "FAKE_LATENCY_HEADER",
    "FAKE_REPLY_WORDS_HEADER",
    "FAKE_RETRY_AFTER_HEADER",
    "FAKE_STATUS_HEADER",
    "REDACTED",
    "BreakMode",
    "CassetteSource",
    "FakeLLMServer",
    "RecordedRequest",
    "ReplayServer",
]
