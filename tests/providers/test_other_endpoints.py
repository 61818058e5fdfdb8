"""Legacy completions, embeddings and the Responses API."""

from __future__ import annotations

import json

from openai import OpenAI
from provider_helpers import only_llm_span

from clew.testing import SpanCapture


def test_legacy_completions_with_a_prompt_list(
    openai_client: OpenAI, clew_spans: SpanCapture
) -> None:
    reply = openai_client.completions.create(
        model="gpt-3.5-turbo-instruct",
        prompt=["Say one", "Say two"],
        n=2,
        max_tokens=5,
        stop=["\n"],
        seed=3,
        echo=False,
    )
    record = only_llm_span(clew_spans)
    attrs = record["attributes"]
    assert record["name"] == "text_completion gpt-3.5-turbo-instruct"
    assert attrs["gen_ai.operation.name"] == "text_completion"
    assert attrs["gen_ai.request.stop_sequences"] == ["\n"]
    assert attrs["gen_ai.request.choice.count"] == 2
    assert attrs["gen_ai.response.finish_reasons"] == [c.finish_reason for c in reply.choices]
    assert record["input_tokens"] == reply.usage.prompt_tokens  # type: ignore[union-attr]
    assert record["output_tokens"] == reply.usage.completion_tokens  # type: ignore[union-attr]
    assert len(json.loads(attrs["gen_ai.input.messages"])) == 2
    assert len(json.loads(attrs["gen_ai.output.messages"])) == len(reply.choices)
    assert record["cost"] > 0


def test_legacy_completions_stream(openai_client: OpenAI, clew_spans: SpanCapture) -> None:
    chunks = list(
        openai_client.completions.create(
            model="gpt-3.5-turbo-instruct", prompt="Say this", stream=True
        )
    )
    record = only_llm_span(clew_spans)
    text = "".join(c.choices[0].text for c in chunks if c.choices)
    output = json.loads(record["attributes"]["gen_ai.output.messages"])
    assert output[0]["parts"][0]["content"] == text
    assert record["attributes"]["clew.usage.estimated"] is True


def test_embeddings(openai_client: OpenAI, clew_spans: SpanCapture) -> None:
    reply = openai_client.embeddings.create(
        model="text-embedding-3-small", input=["one two", "three"], dimensions=8
    )
    record = only_llm_span(clew_spans)
    assert record["name"] == "embeddings text-embedding-3-small"
    assert record["input_tokens"] == reply.usage.prompt_tokens
    assert record["output_tokens"] == 0
    assert record["attributes"]["gen_ai.embeddings.dimension.count"] == 8
    assert record["cost"] > 0


def test_responses(openai_client: OpenAI, clew_spans: SpanCapture) -> None:
    reply = openai_client.responses.create(
        model="gpt-4o-mini", input="Hello there", instructions="Be kind", max_output_tokens=50
    )
    record = only_llm_span(clew_spans)
    attrs = record["attributes"]
    assert attrs["gen_ai.response.id"] == reply.id
    assert attrs["gen_ai.request.max_tokens"] == 50
    assert record["input_tokens"] == reply.usage.input_tokens  # type: ignore[union-attr]
    assert record["output_tokens"] == reply.usage.output_tokens  # type: ignore[union-attr]
    assert json.loads(attrs["gen_ai.system_instructions"]) == [
        {"type": "text", "content": "Be kind"}
    ]
    output = json.loads(attrs["gen_ai.output.messages"])
    assert output[0]["parts"] == [{"type": "text", "content": reply.output_text}]


def test_responses_reasoning_tokens(openai_client: OpenAI, clew_spans: SpanCapture) -> None:
    reply = openai_client.responses.create(model="o4-mini", input="Think")
    record = only_llm_span(clew_spans)
    reasoning = reply.usage.output_tokens_details.reasoning_tokens  # type: ignore[union-attr]
    assert reasoning > 0
    assert record["reasoning_tokens"] == reasoning


def test_responses_stream(openai_client: OpenAI, clew_spans: SpanCapture) -> None:
    events = list(openai_client.responses.create(model="gpt-4o-mini", input="Hi", stream=True))
    final = events[-1].response  # type: ignore[union-attr]
    record = only_llm_span(clew_spans)
    assert record["attributes"]["gen_ai.response.id"] == final.id
    assert record["output_tokens"] == final.usage.output_tokens
    assert "clew.usage.estimated" not in record["attributes"]
