"""``clew demo``: a small traced LLM app, stored and shown, with no API key needed.

Without ``--live`` it starts clew's fake OpenAI server on 127.0.0.1 and points the real
``openai`` client at it; with ``--live`` and ``OPENAI_API_KEY`` set it calls the real API.
The app answers a support question: a retrieval step, a streamed chat call, a tool call, the
tool itself, and a follow-up call. The demo prints the trace as a tree with tokens, cost and
latency, then says where it went — the local store, an OTLP endpoint, both, or whatever
``CLEW_EXPORTER`` names — and how to look at it again.

Offline, it then asks the same question through :func:`clew.completion` of each of the
twelve providers (the fake server speaks every wire format), answers a repeat from the cache,
and falls back to another provider when the first one fails.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TextIO

import clew
from clew.providers import instrument_openai
from clew.testing import capture_spans

__all__ = ["run_demo"]

DEMO_MODEL = "gpt-4o-mini"
QUESTION = "Is it warm enough in Lisbon for the team offsite? Check the get_weather tool."
HANDBOOK = {
    "offsite": "Offsites run Thursday to Saturday; the team picks the city by vote.",
    "travel": "Book trains under 6 hours, flights otherwise; economy class.",
    "weather": "If it is under 15 °C, the offsite moves indoors.",
}
TOOLS: list[dict[str, Any]] = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Current temperature in a city, in °C.",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}},
                "required": ["city"],
            },
        },
    }
]


@clew.trace(name="retrieve")
def retrieve(question: str) -> list[str]:
    """Find handbook passages sharing a word with the question (the app's "vector search")."""
    words = {w.strip("?.,").lower() for w in question.split()}
    return [text for key, text in HANDBOOK.items() if key in words or "offsite" in key]


@clew.trace(name="get_weather")
def get_weather(city: str) -> dict[str, Any]:
    """The tool the model calls (a canned answer)."""
    return {"city": city, "temperature_c": 21}


class SupportBot:
    """The traced app: retrieval, a streamed call, a tool call, the tool, a follow-up call."""

    def __init__(self, client: Any, out: TextIO) -> None:
        self.client = client
        self.out = out

    @clew.trace(name="answer", tags=["demo"], end_user_identifier="demo-user")
    def answer(self, question: str) -> str:
        """Answer ``question`` from the handbook, checking the weather with a tool."""
        passages = retrieve(question)
        system = "Answer from the handbook:\n" + "\n".join(passages)
        messages: list[Any] = [
            {"role": "system", "content": system},
            {"role": "user", "content": question},
        ]
        self.out.write("  streaming: ")
        stream = self.client.chat.completions.create(
            model=DEMO_MODEL,
            messages=messages,
            stream=True,
            stream_options={"include_usage": True},
        )
        for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                self.out.write(chunk.choices[0].delta.content)
                self.out.flush()
        self.out.write("\n")
        reply = self.client.chat.completions.create(
            model=DEMO_MODEL, messages=messages, tools=TOOLS, tool_choice="required"
        )
        message = reply.choices[0].message
        messages.append(message)
        for tool_call in message.tool_calls or ():
            arguments = json.loads(tool_call.function.arguments or "{}")
            result = get_weather(str(arguments.get("city") or "Lisbon"))
            messages.append(
                {"role": "tool", "tool_call_id": tool_call.id, "content": json.dumps(result)}
            )
        final = self.client.chat.completions.create(model=DEMO_MODEL, messages=messages)
        text: str = final.choices[0].message.content or ""
        return text


GATEWAY_MODELS = {
    "openai": "gpt-4o-mini",
    "azure": "gpt-4o-mini",
    "anthropic": "claude-sonnet-4-5",
    "vertexai": "gemini-2.5-flash",
    "aws_bedrock": "amazon.nova-micro-v1:0",
    "cohere": "command-r-plus-08-2024",
    "mistral": "mistral-small-latest",
    "groq": "llama-3.1-8b-instant",
    "openrouter": "openai/gpt-4o-mini",
    "fireworks": "accounts/fireworks/models/llama-v3p1-8b-instruct",
    "anyscale": "meta-llama/Llama-3-8b-chat-hf",
    "litellm": "gpt-4o-mini",
}


def _gateway(out: TextIO) -> None:
    """One question through clew.completion of every provider, a cache hit and a fallback."""
    from clew.testing.llm_server import FakeLLMServer

    with FakeLLMServer() as server:
        clew.configure(providers=server.providers())
        out.write("clew.completion: one request shape, twelve providers (fake server)\n")
        out.write(f"  {'provider':<12} {'model':<34} {'tokens':>9} {'cost':>11} {'latency':>9}\n")

        @clew.trace(name="gateway-demo", tags=["demo"])
        def ask_everyone() -> None:
            for provider, model in GATEWAY_MODELS.items():
                reply = clew.completion(
                    {
                        "llm_configuration": {
                            "provider": provider,
                            "model": model,
                            "messages": [
                                {"role": "system", "content": "You answer about {{topic}}."},
                                {"role": "user", "content": "{{question}}"},
                            ],
                            "model_params": {"temp": 0, "max_length": 200},
                        },
                        "llm_inputs": {"topic": "offsites", "question": QUESTION},
                        "cache": False,
                    }
                )
                cost = "unknown" if reply.cost is None else f"${reply.cost:.6f}"
                tokens = f"{reply.input_tokens}+{reply.output_tokens}"
                out.write(
                    f"  {provider:<12} {model[:34]:<34} {tokens:>9} {cost:>11}"
                    f" {reply.latency * 1000:>7.1f}ms\n"
                )
            request = {
                "llm_configuration": {
                    "provider": "openai",
                    "model": "gpt-4o-mini",
                    "messages": [{"role": "user", "content": QUESTION}],
                },
            }
            clew.completion(request)
            again = clew.completion(request)
            out.write(f"  the same request again: cache_hit={again.cache_hit}, cost={again.cost}\n")

        @clew.trace(name="fallback-demo", tags=["demo"])
        def fall_back() -> None:
            server.fail_next(500, times=3)
            served = clew.completion(
                {
                    "llm_configuration": {
                        "provider": "openai",
                        "model": "gpt-4o-mini",
                        "messages": [{"role": "user", "content": QUESTION}],
                    },
                    "fallback_strategy": ["anthropic/claude-sonnet-4-5"],
                    "cache": False,
                }
            )
            out.write(
                f"  openai failing (500 x3, retried): served by {served.provider}/{served.model}"
                " (its trace keeps the failed attempts)\n\n"
            )

        ask_everyone()
        fall_back()
        clew.configure(providers={})


@contextmanager
def _openai_client(live: bool) -> Iterator[Any]:
    from openai import OpenAI

    if live:
        with OpenAI() as client:
            yield client
        return
    from clew.testing.llm_server import FakeLLMServer

    with (
        FakeLLMServer(latency=0.05, chunk_delay=0.01) as server,
        OpenAI(base_url=server.openai_base_url, api_key="sk-demo-not-a-real-key") as client,
    ):
        yield client


def _destinations(root_trace_id: str) -> list[str]:
    """Where the configuration in force sent the trace, one line (or three) per exporter, with
    what its export pipeline reports (after a flush): sent, still queued, or failed and why."""
    from clew import setup

    config = setup.current_config()
    stats = setup.stats()
    lines: list[str] = []
    for item in config.exporters:
        name = item if isinstance(item, str) else type(item).__name__
        if name == "none":
            continue
        try:
            exporter = setup.exporter(name)
        except KeyError:
            continue
        target = getattr(exporter, "target", None)
        if name == "sqlite":
            lines += [
                f"Stored in the local trace store ({config.store_path}). Look again with:",
                f"  clew show {root_trace_id}",
                "  clew traces",
            ]
        elif name == "otlp":
            trace_id = root_trace_id.replace("-", "")
            lines.append(f"Sent over OTLP to {target} (trace id {trace_id}).")
        elif name == "jsonl":
            lines.append(f"Appended to {config.jsonl_path} (one JSON record per span).")
        elif name == "console":
            lines.append("Printed to the console (above).")
        elif name == "http":
            lines.append(f"POSTed as JSON records to {target}.")
        else:
            lines.append(f"Handed to the {name} exporter.")
        lines.extend(_trouble(stats.get(name)))
    return lines or ["Not exported anywhere: no exporter is configured (CLEW_EXPORTER=none)."]


def _trouble(stats: dict[str, Any] | None) -> list[str]:
    """What went wrong with one exporter's spans so far, if anything."""
    if not stats:
        return []
    failed = int(stats.get("failed") or 0) + int(stats.get("dropped") or 0)
    waiting = int(stats.get("queued") or 0) + int(stats.get("spill_pending") or 0)
    if not failed and not waiting:
        return []
    problems = [f"{failed} spans failed"] if failed else []
    if waiting:
        problems.append(f"{waiting} spans are still waiting to be sent")
    error = stats.get("last_error") or "no error reported yet"
    return [f"  but {' and '.join(problems)} ({error})"]


def _renderer() -> Callable[[list[dict[str, Any]]], str]:
    try:
        from clew.render import render_tree
    except ImportError:  # pragma: no cover - render ships with clew
        return lambda records: "\n".join(
            f"{r['name']}  {r.get('latency')} s  {r.get('cost')}" for r in records
        )
    return render_tree


def run_demo(argv: list[str], out: TextIO | None = None) -> int:
    """Run the demo; the exit code of ``clew demo``.

    Args:
        argv: the arguments after ``clew demo`` (``--live`` calls the real OpenAI API).
        out: where to write (standard output by default).

    Returns:
        0 on success, 2 when ``--live`` is asked without ``OPENAI_API_KEY`` or a package is
        missing.

    Example:
        >>> run_demo([])  # doctest: +SKIP
    """
    out = out or sys.stdout
    parser = argparse.ArgumentParser(prog="clew demo", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--live", action="store_true", help="call the real OpenAI API (needs OPENAI_API_KEY)"
    )
    args = parser.parse_args(argv)
    try:
        import openai
    except ImportError:
        out.write("clew demo needs the openai package: pip install openai\n")
        return 2
    if args.live:
        try:
            openai.OpenAI().close()  # the SDK reads OPENAI_API_KEY and refuses without it
        except openai.OpenAIError:
            out.write("clew demo --live needs OPENAI_API_KEY; without --live it runs offline.\n")
            return 2
    clew.configure(project="clew-demo")
    where = "the OpenAI API" if args.live else "clew's fake OpenAI server (no key needed)"
    out.write(f"clew demo: a support bot answering one question, through {where}\n")
    with (
        capture_spans() as captured,
        instrument_openai(),
        _openai_client(args.live) as client,
        clew.span("demo") as root,
    ):
        reply = SupportBot(client, out).answer(QUESTION)
        root_trace_id = root.root_trace_id
    out.write(f"  answer: {reply}\n\n")
    records = [r for r in captured.records() if r["root_trace_id"] == root_trace_id]
    if records:
        out.write(_renderer()(records) + "\n\n")
    clew.flush()
    went = _destinations(root_trace_id)  # before the gateway's spans join the counts
    if not args.live:
        _gateway(out)
        clew.flush()
    out.write("\n".join(went) + "\n")
    return 0
