"""The public API is what ``clew/__init__.py`` exports, sorted, and nothing else."""

from __future__ import annotations

import clew

EXPECTED = {
    "AuthenticationError",
    "Completion",
    "CompletionError",
    "CompletionResponse",
    "CompletionTimeoutError",
    "InvalidRequestError",
    "ProviderError",
    "PermissionDeniedError",
    "RateLimitError",
    "acompletion",
    "astream_completion",
    "completion",
    "datasets",
    "deployments",
    "evals",
    "experiment",
    "EvalResult",
    "Log",
    "score",
    "stream_completion",
    "ClewError",
    "ConfigurationError",
    "Instrumentation",
    "LiveSpan",
    "StoreError",
    "ThreadInstrumentation",
    "__version__",
    "configure",
    "current_span",
    "flush",
    "get_current_trace_id",
    "get_root_trace_id",
    "instrument",
    "instrument_anthropic",
    "instrument_openai",
    "instrument_threads",
    "shutdown",
    "span",
    "stats",
    "trace",
    "trace_insert",
    "wrap",
    "wrap_openai_client",
}


def test_public_api_is_exactly_the_documented_names() -> None:
    assert set(clew.__all__) == EXPECTED
    assert sorted(clew.__all__) == list(clew.__all__)

    for name in clew.__all__:
        assert hasattr(clew, name), name


def test_errors_are_clew_errors() -> None:
    assert issubclass(clew.ConfigurationError, clew.ClewError)
    assert issubclass(clew.ConfigurationError, ValueError)
    assert issubclass(clew.StoreError, clew.ClewError)
