"""clew.completion end to end against the fake LLM server: the request shape, the response,
tokens and cost, the span, fallbacks, retries, deadlines and the errors."""

from __future__ import annotations

import time
from typing import Any

import pytest
from genai_prices import Usage as PriceUsage
from genai_prices import calc_price

import clew
from clew.errors import (
    AuthenticationError,
    CompletionError,
    CompletionTimeoutError,
    InvalidRequestError,
    ProviderError,
    RateLimitError,
)
from clew.testing import SpanCapture
from clew.testing.llm_server import FakeLLMServer


def request(provider: str = "openai", model: str = "gpt-4o-mini", **extra: Any) -> dict[str, Any]:
    configuration = {
        "provider": provider,
        "model": model,
        "messages": [
            {"role": "system", "content": "You answer about {{topic}}."},
            {"role": "user", "content": "{{question}}"},
        ],
        "model_params": {"temp": 0, "max_length": 300},
    }
    configuration.update(extra.pop("llm_configuration", {}))
    return {
        "llm_configuration": configuration,
        "llm_inputs": {"topic": "refunds", "question": "Can I return shoes?"},
        "cache": False,
        **extra,
    }


def price(provider_id: str, model: str, input_tokens: int, output_tokens: int) -> float:
    usage = PriceUsage(input_tokens=input_tokens, output_tokens=output_tokens)
    return float(calc_price(usage, model, provider_id=provider_id).total_price)


def llm_record(spans: SpanCapture) -> dict[str, Any]:
    found = [r for r in spans.records() if r["name"].startswith("llm-")]
    assert len(found) == 1, [r["name"] for r in spans.records()]
    return found[0]


def attempts_of(spans: SpanCapture) -> list[dict[str, Any]]:
    return [r for r in spans.records() if r["name"] == "upstream"]


# -- the call and its response ------------------------------------------------------------
@pytest.mark.parametrize(
    ("provider", "model", "price_id"),
    [("openai", "gpt-4o-mini", "openai"), ("anthropic", "claude-sonnet-4-5", "anthropic")],
)
def test_a_completion_answers_with_the_seed_response(
    server: FakeLLMServer, spans: SpanCapture, provider: str, model: str, price_id: str
) -> None:
    reply = clew.completion(
        clew.Completion(
            **request(provider, model),
            tags=["support"],
            end_user_identifier="u-42",
            metadata={"ticket": "T-1"},
        )
    )
    assert reply.content.startswith("Echo: Can I return shoes?")
    assert reply.status == "success" and reply.error is None and reply.cache_hit is False
    assert (reply.input_tokens, reply.output_tokens) == (8, 18)
    assert reply.total_tokens == 26
    assert reply.cost == pytest.approx(price(price_id, model, 8, 18))
    assert (reply.provider, reply.model) == (provider, model)
    assert reply.finish_reason == "stop"
    assert reply.inference_id == reply.trace_id
    # the template was filled before anything was sent
    sent = server.requests[0].body
    text = str(sent)
    assert "Can I return shoes?" in text and "refunds" in text and "{{" not in text
    record = llm_record(spans)
    assert record["trace_id"] == reply.trace_id
    assert record["tags"] == ["support"] and record["metadata"] == {"ticket": "T-1"}
    assert record["end_user_identifier"] == "u-42"
    assert record["provider"] == provider and record["model"] == model
    assert (record["input_tokens"], record["output_tokens"]) == (8, 18)
    assert record["cost"] == pytest.approx(reply.cost)
    assert record["output"] == reply.content
    assert record["inputs"] == {"topic": "refunds", "question": "Can I return shoes?"}
    assert record["attributes"]["clew.cache_hit"] is False
    assert record["attributes"]["gen_ai.request.temperature"] == 0
    assert record["attributes"]["gen_ai.request.max_tokens"] == 300
    (attempt,) = attempts_of(spans)
    assert attempt["parent_trace_id"] == record["trace_id"]
    assert attempt["attributes"]["http.response.status_code"] == 200


def test_a_dict_and_a_completion_are_the_same_request(server: FakeLLMServer) -> None:
    by_dict = clew.completion(request())
    by_model = clew.completion(clew.Completion(**request()))
    assert by_dict.content.split()[:5] == by_model.content.split()[:5]
    assert server.requests[0].body == server.requests[1].body


async def test_acompletion(server: FakeLLMServer, spans: SpanCapture) -> None:
    reply = await clew.acompletion(request("anthropic", "claude-sonnet-4-5"))
    assert reply.output_tokens == 18 and reply.provider == "anthropic"
    assert llm_record(spans)["trace_id"] == reply.trace_id


def test_tool_calls_are_returned_and_content_is_their_json(server: FakeLLMServer) -> None:
    functions = [
        {
            "name": "get_weather",
            "description": "Weather of a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        }
    ]
    for provider, model in (("openai", "gpt-4o-mini"), ("anthropic", "claude-sonnet-4-5")):
        reply = clew.completion(
            {
                "cache": False,
                "llm_configuration": {
                    "provider": provider,
                    "model": model,
                    "messages": [{"content": "Use the get_weather tool for Paris"}],
                    "functions": functions,
                    "function_call": {"name": "get_weather"},
                },
            }
        )
        assert reply.finish_reason == "tool_calls", provider
        (call,) = reply.tool_calls
        assert call.name == "get_weather" and isinstance(call.arguments, dict)
        import json

        assert json.loads(reply.content) == [c.model_dump() for c in reply.tool_calls]


# -- bad input never reaches a provider ----------------------------------------------------
@pytest.mark.parametrize(
    ("change", "param"),
    [
        ({"llm_inputs": {"topic": "x"}}, "llm_inputs.question"),
        ({"llm_configuration": {"provider": None}}, "llm_configuration.provider"),
        ({"llm_configuration": {"model": None}}, "llm_configuration.model"),
        ({"llm_configuration": {"provider": "nobody"}}, "llm_configuration.provider"),
        (
            {"llm_configuration": {"model_params": {"temp": 3}}},
            "llm_configuration.model_params.temp",
        ),
        (
            {"llm_configuration": {"model_params": {"safe_prompt": True}}},
            "llm_configuration.model_params.safe_prompt",
        ),
        ({"stream": True}, "stream"),
        ({"deployment_id": "no-such-prompt"}, "deployment_id"),
        ({"log_sample_rate": 2}, "log_sample_rate"),
        ({"llm_input": {}}, "llm_input"),
    ],
)
def test_invalid_requests_are_400s_naming_the_field(
    server: FakeLLMServer, change: dict[str, Any], param: str
) -> None:
    body = request()
    for key, value in change.items():
        if key == "llm_configuration":
            body["llm_configuration"].update(value)
        else:
            body[key] = value
    with pytest.raises(InvalidRequestError) as caught:
        clew.completion(body)
    assert caught.value.status_code == 400
    assert caught.value.param is not None and caught.value.param.startswith(param)
    assert caught.value.to_dict()["error"]["param"] == caught.value.param
    assert server.requests == []


def test_a_parameter_the_provider_cannot_honour_is_an_error(server: FakeLLMServer) -> None:
    body = request("anthropic", "claude-sonnet-4-5")
    body["llm_configuration"]["model_params"]["presence_penalty"] = 0.5
    with pytest.raises(InvalidRequestError, match="presence_penalty"):
        clew.completion(body)
    body["llm_configuration"]["model_params"]["presence_penalty"] = 0  # asks for nothing
    assert clew.completion(body).content
    mistral = request("mistral", "mistral-small-latest")
    mistral["llm_configuration"]["model_params"]["safe_prompt"] = True
    clew.completion(mistral)
    assert server.requests[-1].body["safe_prompt"] is True


def test_a_missing_key_names_the_variable_and_sends_nothing(server: FakeLLMServer) -> None:
    clew.configure(providers={"openai": {"base_url": server.openai_base_url, "api_key": None}})
    with pytest.raises(AuthenticationError, match="OPENAI_API_KEY") as caught:
        clew.completion(request())
    assert caught.value.status_code == 401
    assert server.requests == []
    reply = clew.completion({**request(), "provider_api_key": "sk-from-request"})
    assert reply.content
    assert server.requests[-1].headers["authorization"] == "REDACTED"


def test_the_key_is_never_in_a_span(server: FakeLLMServer, spans: SpanCapture) -> None:
    secret = "sk-secret-canary-7731"
    clew.completion({**request(), "provider_api_key": secret})
    assert secret not in repr(spans.records())
    assert secret not in repr(clew.Completion(**{**request(), "provider_api_key": secret}))


# -- parents and the deprecated fields ----------------------------------------------------
def test_the_span_nests_under_the_current_clew_span(
    server: FakeLLMServer, spans: SpanCapture
) -> None:
    @clew.trace
    def answer() -> str:
        return clew.completion(request()).content

    answer()
    outer = spans.by_name("answer")
    assert llm_record(spans)["parent_trace_id"] == outer["trace_id"]
    assert llm_record(spans)["root_trace_id"] == outer["root_trace_id"]


def test_ids_in_the_request_stitch_the_span_and_inference_id_is_trace_id(
    server: FakeLLMServer, spans: SpanCapture
) -> None:
    with clew.span("elsewhere") as outer:
        parent, root = outer.trace_id, outer.root_trace_id
    spans.clear()
    reply = clew.completion({**request(), "parent_trace_id": parent, "root_trace_id": root})
    record = llm_record(spans)
    assert (record["parent_trace_id"], record["root_trace_id"]) == (parent, root)
    assert reply.trace_id == record["trace_id"]
    spans.clear()
    clew.completion({**request(), "inference_id": parent})  # deprecated: the same as trace_id
    assert llm_record(spans)["parent_trace_id"] == parent


def test_the_seed_fields_are_recorded(server: FakeLLMServer, spans: SpanCapture) -> None:
    for id in (3, 4):  # evals that score nothing: no score span joins the records
        clew.evals.register(id, lambda log: None)
    clew.completion(
        {
            **request(),
            "project_name": "billing",
            "experiment_uuid": "exp-1",
            "eval_metric_ids": [3, 4],
            "target": "Yes, within 30 days.",
            "trace_name": "refund-answer",
        }
    )
    (record,) = [r for r in spans.records() if r["name"] == "refund-answer"]
    assert record["project_name"] == "billing"
    assert record["target"] == "Yes, within 30 days."
    assert record["attributes"]["clew.experiment_uuid"] == "exp-1"
    assert record["attributes"]["clew.eval_metric_ids"] == [3, 4]


def test_a_sampled_out_call_still_answers(server: FakeLLMServer, spans: SpanCapture) -> None:
    reply = clew.completion({**request(), "log_sample_rate": 0})
    assert reply.content and reply.cost is not None
    assert spans.records() == []


# -- fallbacks, retries, deadlines ------------------------------------------------------------
def test_5xx_is_retried_then_the_fallback_model_serves(
    server: FakeLLMServer, spans: SpanCapture
) -> None:
    server.fail_next(500, times=3)
    reply = clew.completion({**request(), "fallback_strategy": ["anthropic/claude-sonnet-4-5"]})
    assert (reply.provider, reply.model) == ("anthropic", "claude-sonnet-4-5")
    statuses = [r["attributes"]["http.response.status_code"] for r in attempts_of(spans)]
    assert statuses == [500, 500, 500, 200]
    record = llm_record(spans)
    assert record["provider"] == "anthropic"
    assert record["attributes"]["clew.fallback_index"] == 1
    assert record["attributes"]["clew.attempts"] == 4


def test_429_honours_retry_after(server: FakeLLMServer) -> None:
    server.fail_next(429, retry_after=0.3)
    started = time.perf_counter()
    reply = clew.completion(request())
    assert time.perf_counter() - started >= 0.3
    assert reply.content and len(server.requests) == 2


def test_429_until_the_retries_run_out_is_a_rate_limit_error(server: FakeLLMServer) -> None:
    server.fail_next(429, times=10, retry_after=0)
    with pytest.raises(RateLimitError) as caught:
        clew.completion(request())
    assert caught.value.status_code == 429
    assert "Rate limit" in (caught.value.provider_error or "")
    assert len(server.requests) == 3  # one try and max_retries=2


def test_400_is_not_retried_but_another_model_is_tried(server: FakeLLMServer) -> None:
    server.fail_next(400)
    reply = clew.completion({**request(), "fallback_strategy": ["gpt-4o"]})
    assert reply.model == "gpt-4o" and len(server.requests) == 2


def test_401_skips_models_of_the_same_provider(server: FakeLLMServer) -> None:
    server.fail_next(401, times=5)
    with pytest.raises(AuthenticationError) as caught:
        clew.completion({**request(), "fallback_strategy": ["gpt-4o", "openai/gpt-4.1"]})
    assert len(server.requests) == 1 and caught.value.status_code == 401
    server.reset_faults()
    server.fail_next(401)
    reply = clew.completion(
        {**request(), "fallback_strategy": ["gpt-4o", "anthropic/claude-3-5-haiku-latest"]}
    )
    assert reply.provider == "anthropic"


def test_the_deadline_bounds_the_whole_call(server: FakeLLMServer) -> None:
    clew.configure(gateway={"timeout": 0.5})
    server.latency = 2.0
    started = time.perf_counter()
    with pytest.raises(CompletionTimeoutError) as caught:
        clew.completion({**request(), "fallback_strategy": ["gpt-4o"]})
    assert time.perf_counter() - started < 1.5
    assert caught.value.status_code == 504


def test_a_connection_error_is_a_provider_error_after_retries() -> None:
    with FakeLLMServer() as gone:
        url = gone.openai_base_url
    clew.configure(
        providers={"openai": {"base_url": url, "api_key": "k"}}, gateway={"max_retries": 1}
    )
    try:
        with pytest.raises(ProviderError) as caught:
            clew.completion(request())
        assert caught.value.status_code == 502
        assert "after 2 attempts" in caught.value.message
    finally:
        clew.configure(providers={}, gateway={})


def test_every_error_is_a_completion_error_with_a_body(server: FakeLLMServer) -> None:
    server.fail_next(503, times=5)
    with pytest.raises(CompletionError) as caught:
        clew.completion(request())
    body = caught.value.to_dict()["error"]
    assert set(body) == {"code", "message", "param", "type"}
    assert caught.value.status_code == 502


def test_a_key_the_provider_echoes_back_is_redacted(
    server: FakeLLMServer, spans: SpanCapture
) -> None:
    key = "sk-live-abcdefghijklmnopqrstuvwxyz012345"
    server.fail_next(401, body={"error": {"message": f"Incorrect API key provided: {key}"}})
    with pytest.raises(AuthenticationError) as caught:
        clew.completion({**request(), "provider_api_key": key})
    assert key not in str(caught.value) and key not in (caught.value.provider_error or "")
    assert "Incorrect API key provided" in caught.value.message
    assert key not in repr(spans.records())


@pytest.mark.parametrize(
    "provider", sorted(__import__("clew.providers.wires").providers.wires.GATEWAY_PROVIDERS)
)
@pytest.mark.parametrize(
    ("choice", "functions"),
    [("sometimes", True), ({"name": "not_given"}, True), ("required", False), (7, True)],
)
def test_every_provider_checks_function_call_the_same_way(
    server: FakeLLMServer, provider: str, choice: Any, functions: bool
) -> None:
    configuration: dict[str, Any] = {
        "provider": provider,
        "model": "some-model",
        "messages": [{"role": "user", "content": "hi"}],
        "function_call": choice,
    }
    if functions:
        configuration["functions"] = [{"name": "lookup", "parameters": {"type": "object"}}]
    with pytest.raises(InvalidRequestError) as caught:
        clew.completion({"llm_configuration": configuration, "cache": False})
    assert caught.value.param is not None
    assert "function_call" in caught.value.param
    assert server.requests == []
