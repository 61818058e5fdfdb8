"""The traced app the backend tests send: a support agent that retrieves, calls the real
``openai`` client (against clew's fake LLM server) with a tool, runs the tool, and answers.

Run as its own process (``python support_app.py``), configured by the environment as an
application would be (``CLEW_PROJECT``, ``CLEW_EXPORTER``, ``OTEL_EXPORTER_OTLP_ENDPOINT``),
so the OpenTelemetry provider and its resource are this app's own. It prints one JSON line:
the root span's OTLP trace id and what it sent.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from openai import OpenAI

import clew
from clew.demo import TOOLS  # the demo's get_weather tool, offered the same way
from clew.testing.llm_server import FakeLLMServer

MODEL = "gpt-4o-mini"
QUESTION = "Is it warm enough in Lisbon for the offsite?"
SESSION = "session-42"
USER = "user-7"
TAGS = ["support", "offsite"]

client: OpenAI
roots: list[str | None] = []


@clew.trace(kind="retriever")
def retrieve(question: str) -> list[str]:
    return ["Offsites move indoors under 15 °C."]


@clew.trace(kind="tool")
def get_weather(city: str) -> dict[str, Any]:
    return {"city": city, "temperature_c": 21}


@clew.trace(
    kind="agent",
    tags=TAGS,
    metadata={"tier": "gold", "channel": "chat"},
    session_id=SESSION,
    end_user_identifier=USER,
)
def answer(question: str) -> str:
    roots.append(clew.get_root_trace_id())
    passages = retrieve(question)
    messages: list[Any] = [
        {"role": "system", "content": "Answer from the handbook: " + " ".join(passages)},
        {"role": "user", "content": question},
    ]
    reply = client.chat.completions.create(
        model=MODEL, messages=messages, tools=TOOLS, tool_choice="required"
    )
    message = reply.choices[0].message
    messages.append(message)
    for call in message.tool_calls or ():
        result = get_weather(json.loads(call.function.arguments or "{}").get("city", "Lisbon"))
        messages.append({"role": "tool", "tool_call_id": call.id, "content": json.dumps(result)})
    final = client.chat.completions.create(model=MODEL, messages=messages)
    return final.choices[0].message.content or ""


@contextmanager
def fake_openai() -> Iterator[OpenAI]:
    """The real ``openai`` client, instrumented, against a fresh fake LLM server."""
    with (
        FakeLLMServer() as server,
        clew.instrument_openai(),
        OpenAI(base_url=server.openai_base_url, api_key="sk-not-a-key", max_retries=0) as openai,
    ):
        yield openai


def main() -> None:
    global client
    with fake_openai() as client:
        text = answer(QUESTION)
    sent = clew.flush(10.0)
    trace_id = str(roots[0]).replace("-", "")
    print(
        json.dumps({"answer": text, "trace_id": trace_id, "flushed": sent, "stats": clew.stats()})
    )


if __name__ == "__main__":
    main()
