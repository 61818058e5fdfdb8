"""The LLM judge, against clew's fake LLM server: scripted judge replies (served as recorded
interactions), the server's own generated replies, and its faults."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import clew
from clew.errors import ClewError, CompletionError, ConfigurationError
from clew.evals.judge import DEFAULT_RUBRIC, llm_judge
from clew.testing import SpanCapture
from clew.testing.cassettes import Interaction
from clew.testing.llm_server import FakeLLMServer, ReplayServer
from clew.tracer.scores import EvalResult, Log

QUESTION = Log(
    inputs={"question": "What is the capital of France?"}, output="Paris", target="Paris"
)
GATEWAY = {"timeout": 10.0, "max_retries": 0, "cache_url": None}


def chat_reply(content: str) -> Interaction:
    """A recorded OpenAI chat completion whose message is ``content``."""
    body = {
        "id": "chatcmpl-judge",
        "object": "chat.completion",
        "created": 1,
        "model": "gpt-4o-mini",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 50, "completion_tokens": 10, "total_tokens": 60},
    }
    return Interaction(
        "POST",
        "https://api.openai.com/v1/chat/completions",
        "{}",
        200,
        (("content-type", "application/json"),),
        json.dumps(body).encode(),
    )


@pytest.fixture
def judge_says() -> Iterator[Callable[..., FakeLLMServer]]:
    """Start a server whose model replies with the given texts, in order, and point every
    provider of clew.completion at it."""
    servers: list[FakeLLMServer] = []

    def start(*replies: str) -> FakeLLMServer:
        server = ReplayServer([chat_reply(reply) for reply in replies]).start()
        servers.append(server)
        clew.configure(providers=server.providers(), gateway=GATEWAY)
        return server

    try:
        yield start
    finally:
        clew.configure(providers={}, gateway={})
        for server in servers:
            server.close()


@pytest.fixture
def fake_model() -> Iterator[FakeLLMServer]:
    """The fake LLM server with its generated (echoing) replies, as every provider."""
    with FakeLLMServer() as server:
        clew.configure(providers=server.providers(), gateway=GATEWAY)
        try:
            yield server
        finally:
            clew.configure(providers={}, gateway={})


def messages_sent(server: FakeLLMServer) -> list[dict[str, Any]]:
    (request,) = server.requests
    messages: list[dict[str, Any]] = request.body["messages"]
    return messages


# -- the verdict ------------------------------------------------------------------------------


def test_the_judge_gives_the_models_score_and_reason(
    judge_says: Callable[..., FakeLLMServer],
) -> None:
    judge_says('{"score": 0.8, "reason": "Right city, terse."}')
    assert llm_judge()(QUESTION) == EvalResult("llm_judge", 0.8, "Right city, terse.")


@pytest.mark.parametrize(
    "reply",
    [
        '```json\n{"score": 1, "reason": "Correct."}\n```',
        'Here is my verdict: {"score": 1, "reason": "Correct."} Hope it helps.',
        '{"score": "1", "reason": "Correct."}',
    ],
)
def test_the_judge_reads_a_reply_wrapped_in_a_fence_or_prose(
    judge_says: Callable[..., FakeLLMServer], reply: str
) -> None:
    judge_says(reply)
    assert llm_judge()(QUESTION) == EvalResult("llm_judge", 1.0, "Correct.")


@pytest.mark.parametrize(
    ("reply", "problem"),
    [
        ("The answer is correct.", "is not a JSON object"),
        ('{"verdict": "correct"}', 'has no number "score"'),
        ('{"score": true, "reason": "yes"}', 'has no number "score"'),
        ('{"score": 8, "reason": "Good."}', "gives a score off the scale 0 to 1"),
    ],
)
def test_a_reply_that_breaks_the_format_raises(
    judge_says: Callable[..., FakeLLMServer], reply: str, problem: str
) -> None:
    judge_says(reply)
    with pytest.raises(ClewError, match=problem) as raised:
        llm_judge()(QUESTION)
    assert "use a model that follows the reply format" in str(raised.value)


def test_the_fake_models_own_json_reply_is_refused(fake_model: FakeLLMServer) -> None:
    # In JSON mode the fake model answers {"reply": "Echo: ..."}: JSON, but no score.
    with pytest.raises(ClewError, match='has no number "score"'):
        llm_judge()(QUESTION)


def test_a_failed_completion_raises_its_error(fake_model: FakeLLMServer) -> None:
    fake_model.fail_next(500)
    with pytest.raises(CompletionError):
        llm_judge()(QUESTION)


def test_a_scale_is_mapped_onto_0_to_1(judge_says: Callable[..., FakeLLMServer]) -> None:
    judge_says('{"score": 4, "reason": "Mostly right."}')
    assert llm_judge(scale=(1, 5), name="grade")(QUESTION) == EvalResult(
        "grade", 0.75, "score 4 on 1 to 5: Mostly right."
    )


def test_a_threshold_makes_the_score_pass_or_fail(
    judge_says: Callable[..., FakeLLMServer],
) -> None:
    judge_says('{"score": 4, "reason": "Good."}', '{"score": 3, "reason": "Vague."}')
    graded = llm_judge(scale=(1, 5), threshold=4)
    assert graded(QUESTION) == EvalResult(
        "llm_judge", 1.0, "score 4 on 1 to 5, at or above the threshold 4: Good."
    )
    assert graded(Log(output="Lyon", target="Paris")) == EvalResult(
        "llm_judge", 0.0, "score 3 on 1 to 5, below the threshold 4: Vague."
    )


def test_a_call_that_raised_scores_0_without_asking(fake_model: FakeLLMServer) -> None:
    failed = Log(inputs={"question": "?"}, error="TimeoutError: too slow")
    assert llm_judge()(failed) == EvalResult(
        "llm_judge", 0.0, "the call raised TimeoutError: too slow"
    )
    assert fake_model.requests == []


# -- the prompt -------------------------------------------------------------------------------


def test_the_judge_asks_for_json_at_temperature_0(
    judge_says: Callable[..., FakeLLMServer],
) -> None:
    server = judge_says('{"score": 1, "reason": "Correct."}')
    llm_judge(model="gpt-4o")(QUESTION)
    body = server.requests[0].body
    assert (body["model"], body["temperature"]) == ("gpt-4o", 0)
    assert body["response_format"] == {"type": "json_object"}
    system = messages_sent(server)[0]
    assert system["role"] == "system"
    assert '{"score": <a number from 0 to 1>, "reason":' in system["content"]


def test_the_user_message_holds_the_rubric_and_the_call(
    judge_says: Callable[..., FakeLLMServer],
) -> None:
    server = judge_says('{"score": 1, "reason": "Correct."}')
    llm_judge()(QUESTION)
    assert messages_sent(server)[1] == {
        "role": "user",
        "content": f"Rubric:\n{DEFAULT_RUBRIC}\n\n"
        'Input:\n{\n  "question": "What is the capital of France?"\n}\n\n'
        "Output:\nParis\n\n"
        "Expected output:\nParis",
    }


def test_without_a_target_the_prompt_has_no_expected_output(
    judge_says: Callable[..., FakeLLMServer],
) -> None:
    server = judge_says('{"score": 1, "reason": "Polite."}')
    llm_judge("Is it polite?")(Log(inputs={"q": "hi"}, output="Hello!"))
    assert messages_sent(server)[1]["content"] == (
        'Rubric:\nIs it polite?\n\nInput:\n{\n  "q": "hi"\n}\n\nOutput:\nHello!'
    )


def test_a_rubric_with_placeholders_is_the_whole_user_message(
    judge_says: Callable[..., FakeLLMServer],
) -> None:
    server = judge_says('{"score": 0, "reason": "Wrong city."}')
    rubric = 'Does "{output}" name {target}? Ignore {other} braces and {"json": 1}.'
    llm_judge(rubric)(Log(output="Lyon {target}", target="Paris"))
    assert messages_sent(server)[1]["content"] == (
        'Does "Lyon {target}" name Paris? Ignore {other} braces and {"json": 1}.'
    )


def test_model_params_override_the_judges_own(
    judge_says: Callable[..., FakeLLMServer],
) -> None:
    server = judge_says('{"score": 1, "reason": "Correct."}')
    llm_judge(model_params={"temp": None, "max_length": 50})(QUESTION)
    body = server.requests[0].body
    assert "temperature" not in body
    assert body["max_tokens"] == 50


def test_a_provider_without_json_mode_is_asked_by_the_prompt_alone(
    fake_model: FakeLLMServer,
) -> None:
    judge = llm_judge(provider="anthropic", model="claude-sonnet-4-5")
    with pytest.raises(ClewError):  # the fake model echoes text, not a verdict
        judge(QUESTION)
    (request,) = fake_model.requests
    assert request.path == "/v1/messages"
    assert "response_format" not in request.body
    assert "Reply with only a JSON object" in request.body["system"]


def test_the_judges_completion_is_traced(
    judge_says: Callable[..., FakeLLMServer], clew_spans: SpanCapture
) -> None:
    judge_says('{"score": 1, "reason": "Correct."}')
    llm_judge(name="correct")(QUESTION)
    record = clew_spans.by_name("correct")
    assert (record["provider"], record["model"]) == ("openai", "gpt-4o-mini")
    assert record["output_tokens"] == 10


# -- set-up errors ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"rubric": "  "}, "rubric is non-empty text"),
        ({"scale": (5, 1)}, "lowest < highest"),
        ({"scale": (0, float("inf"))}, "two numbers"),
        ({"threshold": 2}, "threshold 2 is not a number on the scale 0 to 1"),
        ({"provider": "opneai"}, "cannot ask opneai/gpt-4o-mini"),
        ({"model_params": {"temperature": 0}}, "cannot ask"),
        ({"name": ""}, "non-empty string"),
    ],
)
def test_bad_settings_fail_at_creation(arguments: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        llm_judge(**arguments)
