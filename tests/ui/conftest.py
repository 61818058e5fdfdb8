"""Fixtures for the viewer's browser tests: a store filled by real traced calls (an LLM call
through the fake LLM server, a tool round trip, a failure, an eval score, script canaries,
experiments and a dataset), one ``clew ui`` process over it, and headless Chromium driven
by Playwright.

Chromium is Debian's (``/usr/bin/chromium``); Playwright drives it as it is, so no
``playwright install`` is needed (nor possible offline).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx2
import pytest

import clew
from clew.store.sqlite import TraceStore
from clew.testing.llm_server import FakeLLMServer

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
CANARY_IMG = '<img src=x onerror="window.__pwned=1">'
CANARY_SCRIPT = "<script>window.__pwned=2</script>"
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"

MATH_ROWS = [
    {"inputs": {"question": "2+2"}, "target": "4"},
    {"inputs": {"question": "3+3"}, "target": "6"},
    {"inputs": {"question": "5+5"}, "target": "10"},
    {"inputs": {"question": "boom"}, "target": "?"},
]
WEATHER_TOOL = {
    "name": "get_weather",
    "description": "The weather in a city",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}


@dataclass(frozen=True)
class Sample:
    """The store the viewer shows, and the ids of its traces that the tests open."""

    store: Path
    answer_root: str
    """``answer``: its ``retrieve`` span and an LLM call (with its ``upstream`` attempt)."""
    llm_span: str
    """The LLM call of ``answer``."""
    llm_record: dict[str, Any]
    tool_root: str
    """``plan_trip``: a call that asks for a tool, then one given the tool's result."""
    scored_root: str
    failed_root: str
    canary_root: str
    """``echo``, whose inputs and output are script canaries."""
    big_root: str
    """``crawl``: 5,001 spans."""
    big_last_span: str
    """The last span of ``crawl`` to start."""


def _solve(question: str) -> str:
    if question == "boom":
        raise ValueError("cannot solve boom")
    left, right = question.split("+")
    return str(int(left) + int(right))


def _sloppy(question: str) -> str:
    return "4" if question != "boom" else "?"


def _chat(messages: list[dict[str, Any]], **extra: Any) -> clew.CompletionResponse:
    configuration = {"provider": "openai", "model": "gpt-4o-mini", "messages": messages}
    return clew.completion(
        {"llm_configuration": {**configuration, **extra.pop("llm", {})}, "cache": False, **extra}
    )


@clew.trace(
    tags=["support"], metadata={"ticket": "T-1"}, session_id="s-1", end_user_identifier="u-42"
)
def answer(question: str) -> str:
    with clew.span("retrieve") as retrieve:
        retrieve.set_output(["faq/returns.md", "faq/shipping.md"])
    system = {"role": "system", "content": "You are a helpful support agent."}
    reply = _chat(
        [system, {"role": "user", "content": question}],
        llm={"model_params": {"temp": 0.2, "max_length": 300}},
    )
    return reply.content


@clew.trace(tags=["travel"])
def plan_trip(city: str) -> str:
    system = {"role": "system", "content": "You plan trips."}
    ask = {"role": "user", "content": f"What is the weather in {city}? Use the get_weather tool."}
    first = _chat([system, ask], llm={"functions": [WEATHER_TOOL]})
    (call,) = first.tool_calls or []
    result = {"role": "tool", "tool_call_id": call.id, "content": '{"temp_c": 21, "sky": "clear"}'}
    called = {"role": "assistant", "content": None, "tool_calls": [call.model_dump()]}
    follow_up = {"role": "user", "content": "So, do I need a coat?"}
    second = _chat(
        [system, ask, called, result, follow_up],
        llm={"functions": [WEATHER_TOOL]},
        log_omit_outputs=True,
    )
    return second.content


@clew.trace(eval_funcs=[lambda log: clew.EvalResult("accuracy", 0.25, "half right, at best")])
def scored(question: str) -> str:
    return question.upper()


@clew.trace
def fails() -> None:
    raise ValueError("the index is offline")


@clew.trace
def crawl(pages: int) -> None:
    """A trace of 1 + 20 x ``pages`` spans."""
    for page in range(pages):
        with clew.span(f"page {page}"):
            for link in range(19):
                with clew.span(f"link {page}.{link}"):
                    pass
        if page % 20 == 0:
            clew.flush()  # the exporter's queue holds 2,048 spans


@clew.trace(session_id="s-canary")
def echo(text: str) -> str:
    return text


def _latest_root(store: Path, name: str) -> str:
    """The newest stored trace called ``name``."""
    with TraceStore(store) as traces:
        found = [t for t in traces.list_traces(limit=200) if t["name"] == name]
    assert found, f"no trace named {name} in {store}"
    return str(found[0]["root_trace_id"])


@pytest.fixture(scope="session")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Sample:
    """A store filled once for every browser test (tests add only traces of their own)."""
    store = tmp_path_factory.mktemp("ui-browser") / "traces.db"
    clew.configure(project="support-bot", exporter="sqlite", store_path=store)
    crawl(250)
    with FakeLLMServer() as fake:
        clew.configure(providers=fake.providers(), gateway={"cache_url": None})
        try:
            answer("Can I get a refund for my shoes?")
            answer("Do you ship to Norway?")
            plan_trip("Paris")
        finally:
            clew.configure(providers={}, gateway={})
    scored("is this right?")
    with pytest.raises(ValueError):
        fails()
    echo(f"{CANARY_IMG} and {CANARY_SCRIPT}")
    clew.flush()
    clew.datasets.create("sums", MATH_ROWS, store=store)
    evals = [clew.evals.exact_match]
    clew.experiment("math-v1", "sums", _solve, evals=evals, store=store).run()
    clew.experiment("math-v2", "sums", _sloppy, evals=evals, store=store).run()
    clew.datasets.create("sums", MATH_ROWS[:2], store=store)  # version 2, after the runs
    clew.flush()
    with TraceStore(store) as traces:
        answers = [t for t in traces.list_traces(limit=200) if t["name"] == "answer"]
        answer_root = str(answers[-1]["root_trace_id"])  # the first call: the refund question
        llm = next(s for s in traces.get_trace(answer_root) if s["name"].startswith("llm-"))
        big_root = _latest_root(store, "crawl")
        big_last = traces.get_trace(big_root)[-1]
    return Sample(
        store=store,
        answer_root=answer_root,
        llm_span=str(llm["trace_id"]),
        llm_record=llm,
        tool_root=_latest_root(store, "plan_trip"),
        scored_root=_latest_root(store, "scored"),
        failed_root=_latest_root(store, "fails"),
        canary_root=_latest_root(store, "echo"),
        big_root=big_root,
        big_last_span=str(big_last["trace_id"]),
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def viewer(sample: Sample) -> Iterator[str]:
    """``clew ui`` over the sample store, once it answers: its URL."""
    with serving(sample.store) as url:
        yield url


@pytest.fixture(scope="session")
def hasty_viewer(sample: Sample) -> Iterator[str]:
    """``clew ui`` over the sample store whose searches stop at every chance
    (``--search-budget 0``): every filtered page is found over many partial answers."""
    with serving(sample.store, "--search-budget", "0") as url:
        yield url


@contextmanager
def serving(store: Path, *options: str) -> Iterator[str]:
    """A ``clew ui`` process over ``store`` (with ``options``), once it answers: its URL."""
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k != "CLEW_UI_TOKEN"}
    command = [sys.executable, "-m", "clew.cli", "ui", "--port", str(port), *options]
    process = subprocess.Popen(
        [*command, "--store", str(store)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_up(process, url)
        yield url
    finally:
        process.kill()
        process.communicate(timeout=10)


def _wait_until_up(process: subprocess.Popen[str], url: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"clew ui exited: {process.stderr.read() if process.stderr else ''}")
        try:
            httpx2.get(url + "/api/traces", timeout=0.5)  # any answer: a token may guard it
            return
        except httpx2.HTTPError:
            time.sleep(0.1)
    pytest.fail("clew ui did not answer GET /api/traces within 30 s")


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    """Headless Debian Chromium under Playwright."""
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"Chromium is not at {CHROMIUM}: apt-get install chromium")
    from playwright.sync_api import sync_playwright  # test_browser.py says how to install it

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
        )
        yield launched
        launched.close()


@pytest.fixture
def problems() -> list[str]:
    """What went wrong in the page: errors on its console (CSP violations among them),
    uncaught exceptions, and dialogs (an ``alert`` that injected content opened)."""
    return []


@pytest.fixture
def page(browser: Browser, problems: list[str]) -> Iterator[Page]:
    """A fresh page (its own context: no cookies or history shared), watched for problems:
    any at the end fail the test (a test that expects one clears ``problems``)."""
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    opened = context.new_page()
    opened.set_default_timeout(10_000)
    opened.on("console", lambda m: m.type == "error" and problems.append(f"console: {m.text}"))
    opened.on("pageerror", lambda error: problems.append(f"page error: {error}"))

    def on_dialog(dialog: Any) -> None:
        problems.append(f"dialog: {dialog.message}")
        dialog.dismiss()

    opened.on("dialog", on_dialog)
    yield opened
    context.close()
    assert problems == [], "the page reported problems"


@pytest.fixture
def screenshots(tmp_path: Path) -> Path:
    """Where screenshots go: docs/screenshots with CLEW_SCREENSHOTS=1 (the README shows
    them), else the test's tmp_path."""
    if os.environ.get("CLEW_SCREENSHOTS") == "1":
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        return SCREENSHOTS
    return tmp_path
