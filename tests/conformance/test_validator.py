"""The validator catches each way a span can fall short of the vendored GenAI conventions."""

from __future__ import annotations

import json
from typing import Any

import pytest
from genai_semconv import CONDITIONS, SEMCONV, Call, conventions, violations

CHAT = Call(
    route="/v1/chat/completions",
    request={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Hi"}]},
    received=[
        {
            "id": "chatcmpl-1",
            "model": "gpt-4o-mini-2024-07-18",
            "service_tier": "default",
            "system_fingerprint": "fp_1",
            "choices": [{"message": {"role": "assistant", "content": "Hello"}}],
            "usage": {"prompt_tokens": 8, "completion_tokens": 2},
        }
    ],
)


def _chat_span(**changes: Any) -> dict[str, Any]:
    """The attributes of a conforming OpenAI chat span of :data:`CHAT`, changed."""
    span: dict[str, Any] = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "gpt-4o-mini",
        "server.address": "api.openai.com",
        "server.port": 443,
        "openai.api.type": "chat_completions",
        "gen_ai.response.id": "chatcmpl-1",
        "gen_ai.response.model": "gpt-4o-mini-2024-07-18",
        "gen_ai.response.finish_reasons": ("stop",),
        "openai.response.service_tier": "default",
        "openai.response.system_fingerprint": "fp_1",
        "gen_ai.usage.input_tokens": 8,
        "gen_ai.usage.output_tokens": 2,
        "gen_ai.usage.cost.amount": 0.00001,
        "clew.depth": 0,
        "gen_ai.input.messages": json.dumps(
            [{"role": "user", "parts": [{"type": "text", "content": "Hi"}]}]
        ),
        "gen_ai.output.messages": json.dumps(
            [{"role": "assistant", "parts": [{"type": "text", "content": "Hello"}]}]
        ),
    }
    span.update(changes)
    return {k: v for k, v in span.items() if v is not None}


def test_the_vendored_conventions_are_read() -> None:
    found = conventions()
    assert (SEMCONV / "README.md").exists() and (SEMCONV / "LICENSE").exists()
    assert found.attributes["gen_ai.request.temperature"].type == "double"
    assert found.attributes["server.port"].type == "int"
    assert "azure.ai.openai" in found.attributes["gen_ai.provider.name"].members
    assert found.attributes["gen_ai.tool.definitions"].schema is not None
    assert found.refinements[("gen_ai.client.inference", "openai")] == (
        "openai.gen_ai.client.inference"
    )
    assert found.levels["openai.gen_ai.client.inference"]["gen_ai.request.model"] == "required"


def test_a_conforming_span_passes() -> None:
    assert violations(_chat_span(), CHAT, name="chat gpt-4o-mini", kind="CLIENT") == []


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({"gen_ai.usage.cache_creation.input_tokens": 5}, "not in the registry"),
        ({"gen_ai.request.temprature": 0.5}, "not in the registry"),
        ({"langsmith.span.kind": "llm"}, "not in the conventions"),
        ({"gen_ai.request.temperature": 0}, "(int) is not double"),
        ({"gen_ai.request.stop_sequences": "END"}, "is not string[]"),
        ({"gen_ai.provider.name": "azure"}, "not a well-known value"),
        ({"gen_ai.provider.name": "mistral"}, "not a well-known value"),
        ({"server.port": None}, "server.port: conditionally required, missing"),
        ({"gen_ai.provider.name": None}, "gen_ai.provider.name: required, missing"),
        ({"openai.api.type": None}, "openai.api.type: recommended, missing"),
        ({"openai.api.type": "responses"}, "the call says 'chat_completions'"),
        ({"openai.response.service_tier": None}, "service_tier: conditionally required"),
        ({"openai.response.system_fingerprint": None}, "system_fingerprint: recommended"),
        ({"gen_ai.response.finish_reasons": None}, "finish_reasons: recommended"),
        ({"gen_ai.request.stream": True}, "set although its condition does not hold"),
        ({"gen_ai.output.messages": '"…[clew: truncated]"'}, "fails"),
    ],
)
def test_each_shortfall_is_reported(changes: dict[str, Any], problem: str) -> None:
    found = violations(_chat_span(**changes), CHAT)
    assert any(problem in p or (problem == "fails" and "schema" in p) for p in found), found


def test_open_enums_and_custom_providers_take_other_values() -> None:
    span = _chat_span(**{"error.type": "openai.APIConnectionError"})
    assert violations(span) == []  # error.type: the registry's examples are not members
    openai_only = dict.fromkeys(k for k in _chat_span() if k.startswith("openai."))
    other = _chat_span(**{"gen_ai.provider.name": "openrouter", **openai_only})
    assert violations(other) == []  # no well-known value for OpenRouter


def test_tool_definitions_must_be_flat() -> None:
    nested = [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]
    flat = [{"type": "function", "name": "f", "parameters": {"type": "object"}}]
    builtin = [{"type": "web_search_preview"}]
    for tools, ok in ((nested, False), (flat, True), (builtin, False)):
        found = violations(_chat_span(**{"gen_ai.tool.definitions": json.dumps(tools)}))
        assert (found == []) is ok, found


def test_a_stream_needs_its_flag_and_its_first_chunk_time() -> None:
    stream = Call(
        route="/v1/chat/completions",
        request={**CHAT.request, "stream": True},
        received=[{**CHAT.received[0], "choices": []}],
        stream=True,
    )
    found = violations(_chat_span(), stream)
    assert "gen_ai.request.stream: conditionally required, missing" in found
    assert any(p.startswith("gen_ai.response.time_to_first_chunk") for p in found)
    fixed = _chat_span(
        **{"gen_ai.request.stream": True, "gen_ai.response.time_to_first_chunk": 0.2}
    )
    assert violations(fixed, stream) == []


def test_a_stream_cut_short_reports_error_as_its_finish_reason() -> None:
    cut = Call(
        route="/v1/chat/completions",
        request={**CHAT.request, "stream": True},
        received=CHAT.received,
        stream=True,
        cut=True,
    )
    streamed = {"gen_ai.request.stream": True, "gen_ai.response.time_to_first_chunk": 0.2}
    missing = violations(_chat_span(**streamed, **{"gen_ai.response.finish_reasons": None}), cut)
    assert any(p.startswith("gen_ai.response.finish_reasons: recommended") for p in missing)
    wrong = violations(_chat_span(**streamed), cut)  # "stop" was never received
    assert any("for a stream cut short" in p for p in wrong)
    right = _chat_span(**streamed, **{"gen_ai.response.finish_reasons": ("error",)})
    assert violations(right, cut) == []


def _messages(*parts: dict[str, Any]) -> str:
    return json.dumps([{"role": "assistant", "parts": list(parts)}])


def test_a_server_tool_is_not_a_client_tool_call() -> None:
    use = {"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search", "input": {}}
    result = {"type": "web_search_tool_result", "tool_use_id": "srvtoolu_1", "content": []}
    call = Call(
        route="/v1/messages",
        request={"model": "claude", "max_tokens": 10, "messages": []},
        received=[{"id": "msg_1", "model": "claude", "content": [use, result]}],
    )
    as_client = {
        "gen_ai.output.messages": _messages(
            {"type": "tool_call", "id": "srvtoolu_1", "name": "web_search", "arguments": {}},
            {"type": "blob", "modality": "web_search_tool_result", "content": "[omitted]"},
        )
    }
    found = violations(_chat_span(**as_client), call)
    assert "messages: srvtoolu_1 is a server_tool_call, recorded as tool_call" in found
    assert "messages: srvtoolu_1 is a server_tool_call_response, recorded as tool_call" in found
    as_server = {
        "gen_ai.output.messages": _messages(
            {
                "type": "server_tool_call",
                "id": "srvtoolu_1",
                "name": "web_search",
                "server_tool_call": {"type": "web_search"},
            },
            {
                "type": "server_tool_call_response",
                "id": "srvtoolu_1",
                "server_tool_call_response": {"type": "web_search_tool_result"},
            },
        )
    }
    assert not [p for p in violations(_chat_span(**as_server), call) if "messages" in p]


def test_a_custom_tool_call_goes_by_its_name() -> None:
    tool_call = {"id": "call_1", "type": "custom", "custom": {"name": "math", "input": "1+1"}}
    call = Call(
        route="/v1/chat/completions",
        request=CHAT.request,
        received=[{**CHAT.received[0], "choices": [{"message": {"tool_calls": [tool_call]}}]}],
    )
    named = {"type": "tool_call", "id": "call_1", "name": "custom", "arguments": "1+1"}
    found = violations(_chat_span(**{"gen_ai.output.messages": _messages(named)}), call)
    assert "messages: tool_call call_1 is named 'math'" in found


def test_the_span_name_and_kind_are_checked() -> None:
    found = violations(_chat_span(), CHAT, name="openai.chat", kind="INTERNAL")
    assert "span kind INTERNAL, not CLIENT" in found
    assert any(p.startswith("span name 'openai.chat'") for p in found)


@pytest.mark.parametrize(
    "definition",
    [
        "gen_ai.client.inference",
        "openai.gen_ai.client.inference",
        "anthropic.gen_ai.client.inference",
        "gen_ai.embeddings.client",
    ],
)
def test_every_condition_of_the_spans_clew_makes_is_judged(definition: str) -> None:
    """A new vendored version that adds a conditionally required attribute fails here until
    the validator knows its condition (rather than skipping it silently)."""
    conditional = {
        key
        for key, level in conventions().levels[definition].items()
        if level == "conditionally_required"
    }
    assert conditional <= CONDITIONS.keys()


def test_a_refinements_keys_stay_on_its_providers_spans() -> None:
    azure = _chat_span(
        **{
            "gen_ai.provider.name": "azure.ai.openai",
            "openai.response.service_tier": None,
            "openai.response.system_fingerprint": None,
        }
    )
    assert violations(azure) == [
        "openai.api.type: openai's refinement, on a span of 'azure.ai.openai'"
    ]
