"""clew's spans as a user of Arize Phoenix sees them: a traced app (an agent that retrieves,
calls the real ``openai`` client with a tool, runs the tool and answers) sends its trace over
clew's OTLP exporter to a real Phoenix server, and Phoenix's REST API shows the kinds, inputs
and outputs, tokens, tools, session, user, project and tree.

With ``CLEW_SCREENSHOTS=1`` it also saves Phoenix's view of the trace to
docs/screenshots/phoenix.png (the README shows it).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx2
import pytest
from phoenix_server import Phoenix

APP = Path(__file__).with_name("support_app.py")
PROJECT = "clew-support"
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]


def _run_app(phoenix: Phoenix, **env: str) -> dict[str, Any]:
    """Run the support app in its own process, exporting over OTLP to ``phoenix``."""
    environment = {
        **os.environ,
        "CLEW_PROJECT": PROJECT,
        "CLEW_EXPORTER": "otlp",
        "OTEL_EXPORTER_OTLP_ENDPOINT": phoenix.url,
        **env,
    }
    done = subprocess.run(
        [sys.executable, str(APP)],
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["flushed"] and result["stats"]["otlp"]["exported"] == 5
    return result


def _spans(
    phoenix: Phoenix, trace_id: str, count: int, project: str = PROJECT
) -> dict[str, list[dict[str, Any]]]:
    """The trace's spans by name, once Phoenix has stored all ``count`` (it ingests in the
    background)."""
    deadline = time.monotonic() + 30
    while True:
        try:
            stored = phoenix.get(f"/v1/projects/{project}/spans", limit=1000)["data"]
        except httpx2.HTTPStatusError as exc:  # 404 until the project's first span is in
            if exc.response.status_code != 404 or time.monotonic() > deadline:
                raise
            stored = []
        found = [span for span in stored if span["context"]["trace_id"] == trace_id]
        if len(found) == count or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    by_name: dict[str, list[dict[str, Any]]] = {}
    for span in sorted(found, key=lambda s: s["start_time"]):
        by_name.setdefault(span["name"], []).append(span)
    return by_name


@pytest.fixture(scope="module")
def sent(phoenix: Phoenix) -> tuple[str, dict[str, list[dict[str, Any]]]]:
    """The app's trace id, and its spans as Phoenix stored them, by name."""
    trace_id = _run_app(phoenix)["trace_id"]
    return trace_id, _spans(phoenix, trace_id, 5)


def test_the_project_is_the_apps(phoenix: Phoenix, sent: Any) -> None:
    names = [project["name"] for project in phoenix.get("/v1/projects")["data"]]
    assert PROJECT in names


def test_the_tree_and_the_kinds(sent: Any) -> None:
    _, spans = sent
    assert {name: [s["span_kind"] for s in found] for name, found in spans.items()} == {
        "answer": ["AGENT"],
        "retrieve": ["RETRIEVER"],
        "chat gpt-4o-mini": ["LLM", "LLM"],
        "get_weather": ["TOOL"],
    }
    (root,) = spans["answer"]
    assert root["parent_id"] is None
    for name in ("retrieve", "chat gpt-4o-mini", "get_weather"):
        for span in spans[name]:
            assert span["parent_id"] == root["context"]["span_id"]


def test_inputs_and_outputs(sent: Any) -> None:
    _, spans = sent
    root = spans["answer"][0]["attributes"]
    assert json.loads(root["input.value"]) == {
        "question": "Is it warm enough in Lisbon for the offsite?"
    }
    assert root["input.mime_type"] == root["output.mime_type"] == "application/json"
    assert json.loads(root["output.value"]).startswith("Echo: Is it warm enough")
    tool = spans["get_weather"][0]["attributes"]
    assert json.loads(tool["output.value"])["temperature_c"] == 21
    first_call = spans["chat gpt-4o-mini"][0]["attributes"]  # Phoenix's messages view
    assert first_call["llm.input_messages.1.message.content"].startswith("Is it warm enough")
    assert json.loads(first_call["input.value"])[1]["role"] == "user"


def test_tokens(sent: Any) -> None:
    _, spans = sent
    for call in spans["chat gpt-4o-mini"]:
        attrs = call["attributes"]
        assert attrs["llm.token_count.prompt"] == attrs["gen_ai.usage.input_tokens"] > 0
        assert attrs["llm.token_count.completion"] == attrs["gen_ai.usage.output_tokens"] > 0


def test_the_tool_call(sent: Any) -> None:
    _, spans = sent
    attrs = spans["chat gpt-4o-mini"][0]["attributes"]
    call = "llm.output_messages.0.message.tool_calls.0.tool_call"
    assert attrs[f"{call}.function.name"] == "get_weather"
    assert "city" in json.loads(attrs[f"{call}.function.arguments"])


def test_the_tool_list(sent: Any) -> None:
    _, spans = sent
    attrs = spans["chat gpt-4o-mini"][0]["attributes"]
    schema = json.loads(attrs["llm.tools.0.tool.json_schema"])
    assert "get_weather" in json.dumps(schema)


def test_session_and_user(phoenix: Phoenix, sent: Any) -> None:
    trace_id, spans = sent
    sessions = phoenix.get(f"/v1/projects/{PROJECT}/sessions")["data"]
    (session,) = [s for s in sessions if s["session_id"] == "session-42"]
    assert [t["trace_id"] for t in session["traces"]] == [trace_id]
    for found in spans.values():
        for span in found:
            assert span["attributes"]["user.id"] == "user-7"
            assert span["attributes"]["session.id"] == "session-42"


def test_tags_and_metadata(sent: Any) -> None:
    _, spans = sent
    root = spans["answer"][0]["attributes"]
    assert root["tag.tags"] == ["support", "offsite"]
    metadata = {k: v for k, v in root.items() if k.startswith("metadata.")}  # as Phoenix shows it
    assert metadata == {"metadata.tier": "gold", "metadata.channel": "chat"}


def test_over_grpc_too(phoenix: Phoenix) -> None:
    endpoint = f"http://127.0.0.1:{phoenix.grpc_port}"
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": endpoint, "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}
    trace_id = _run_app(phoenix, **env)["trace_id"]
    spans = _spans(phoenix, trace_id, 5)
    assert spans["answer"][0]["span_kind"] == "AGENT"


def test_without_the_extra_conventions_phoenix_falls_back(phoenix: Phoenix) -> None:
    trace_id = _run_app(phoenix, CLEW_OTEL_CONVENTIONS="genai")["trace_id"]
    spans = _spans(phoenix, trace_id, 5, project="default")  # no project name: the default
    kinds = {name: found[0]["span_kind"] for name, found in spans.items()}
    assert kinds["answer"] == "UNKNOWN" and kinds["chat gpt-4o-mini"] == "LLM"


def test_a_screenshot_of_the_trace(phoenix: Phoenix, sent: Any, tmp_path: Path) -> None:
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"Chromium is not at {CHROMIUM}: apt-get install chromium")
    from playwright.sync_api import sync_playwright

    trace_id, _ = sent
    (project,) = [p for p in phoenix.get("/v1/projects")["data"] if p["name"] == PROJECT]
    folder = SCREENSHOTS if os.environ.get("CLEW_SCREENSHOTS") == "1" else tmp_path
    folder.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
        )
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 860})
            page.goto(f"{phoenix.url}/projects/{project['id']}/traces/{trace_id}")
            page.get_by_text("get_weather").first.wait_for()
            page.get_by_text("Is it warm enough in Lisbon for the offsite?").first.wait_for()
            page.screenshot(path=folder / "phoenix.png")
        finally:
            browser.close()
    assert (folder / "phoenix.png").stat().st_size > 10_000
