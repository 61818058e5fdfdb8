"""``clew ui``'s JSON API, from a real ``clew ui`` process over a store filled by real traced
calls: the trace list and its filters and pages, a trace, a session, the dashboard,
experiments and datasets; the headers that keep content from running; the token."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest

import clew
from ui.conftest import serving

CANARY = '<img src=x onerror="window.__pwned=1">'


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    path = tmp_path_factory.mktemp("ui") / "traces.db"
    clew.configure(exporter="sqlite", store_path=path)

    @clew.trace(tags=["faq"], session_id="s-1", end_user_identifier="ana")
    def answer(question: str) -> str:
        return f"about {question}"

    @clew.trace(eval_funcs=[lambda log: clew.EvalResult("accuracy", 0.25, "so-so")])
    def scored(question: str) -> str:
        return question

    @clew.trace
    def broken() -> None:
        raise ValueError("no luck")

    answer("refunds")
    answer("shipping")
    scored(CANARY)
    with pytest.raises(ValueError):
        broken()
    clew.flush()
    clew.datasets.create("faq", [{"inputs": {"question": "refunds"}, "target": "about refunds"}])
    clew.experiment("v1", "faq", answer, evals=[clew.evals.exact_match]).run()
    clew.experiment("v2", "faq", scored, evals=[clew.evals.exact_match]).run()
    clew.flush()
    yield path


@pytest.fixture(scope="module")
def ui(store: Path) -> Iterator[str]:
    with serving(store) as url:
        yield url


def _get(url: str, **params: Any) -> Any:
    reply = httpx2.get(url, params=params, timeout=10)
    assert reply.status_code == 200, reply.text
    return reply.json()


def test_the_trace_list_filters_and_pages(ui: str) -> None:
    everything = _get(ui + "/api/traces")["traces"]
    names = [t["name"] for t in everything]
    assert names.count("answer") == 2 and "broken" in names and "scored" in names
    assert _get(ui + "/api/traces", q="shipping")["traces"][0]["name"] == "answer"
    (failed,) = _get(ui + "/api/traces", status="error")["traces"]
    assert failed["name"] == "broken"
    tagged = _get(ui + "/api/traces", tag="faq", user="ana", session="s-1")["traces"]
    # the two calls, and experiment v1's row, which calls answer() under its own root
    assert sorted(t["name"] for t in tagged) == ["answer", "answer", "experiment v1"]
    assert [t["tags"] for t in tagged if t["name"] == "answer"] == [["faq"], ["faq"]]
    (low,) = _get(ui + "/api/traces", score="accuracy<0.5", q="onerror")["traces"]
    assert low["name"] == "scored" and low["scores"] == {"accuracy": 0.25}
    seen, cursor = [], None
    while True:
        page = _get(ui + "/api/traces", limit=2, **({"cursor": cursor} if cursor else {}))
        seen += [t["root_trace_id"] for t in page["traces"]]
        cursor = page["next"]
        if cursor is None:
            break
    assert seen == [t["root_trace_id"] for t in everything]
    assert httpx2.get(ui + "/api/traces", params={"since": "soon"}).status_code == 400
    assert httpx2.get(ui + "/api/traces", params={"cursor": "x"}).status_code == 400
    bad = httpx2.get(ui + "/api/traces", params={"limit": 0, "status": "maybe"})
    assert bad.status_code == 400 and "limit" in bad.json()["error"]["message"]
    assert _get(ui + "/api/traces", since="1h")["traces"]


def test_a_trace_a_session_and_the_dashboard(ui: str) -> None:
    listed = _get(ui + "/api/traces", q="onerror")["traces"][0]
    trace = _get(ui + "/api/traces/" + listed["root_trace_id"])
    names = [span["name"] for span in trace["spans"]]
    assert names[0] == "scored" and "score accuracy" in names
    assert trace["spans"][0]["inputs"] == {"question": CANARY}  # as data; the page shows text
    missing = httpx2.get(ui + "/api/traces/00000000-0000-0000-0000-000000000000")
    assert missing.status_code == 404 and "no trace" in missing.json()["error"]["message"]
    session = _get(ui + "/api/sessions/s-1")
    assert [(t["name"], t["inputs"]) for t in session["traces"]] == [
        ("answer", {"question": "refunds"}),
        ("answer", {"question": "shipping"}),
        ("experiment v1", {"question": "refunds"}),  # its row called answer() in the session
    ]
    assert session["traces"][0]["output"] == "about refunds"
    board = _get(ui + "/api/dashboard", since="1h", buckets=6)
    assert len(board["series"]) == 6
    listed_all = _get(ui + "/api/traces", limit=200)["traces"]
    assert sum(b["requests"] for b in board["series"]) == len(listed_all)
    assert sum(b["errors"] for b in board["series"]) == 1
    assert {p["project"] for p in board["by_project"]} == {t["project_name"] for t in listed_all}


def test_experiments_compare_and_datasets(ui: str) -> None:
    runs = _get(ui + "/api/experiments")["experiments"]
    assert [r["name"] for r in runs] == ["v2", "v1"] and runs[0]["rows"] == []
    v1 = _get(ui + "/api/experiments/v1")
    assert v1["summary"]["evals"]["exact_match"]["mean"] == 1.0 and len(v1["rows"]) == 1
    compared = _get(ui + "/api/compare", a="v1", b="v2")
    assert compared["evals"][0]["diff"] == -1.0 and compared["rows"][0]["diff"] == -1.0
    (dataset,) = _get(ui + "/api/datasets")["datasets"]
    assert dataset["name"] == "faq" and dataset["row_count"] == 1
    rows = _get(ui + "/api/datasets/faq", version=1)["rows"]
    assert rows == [
        {"index": 0, "inputs": {"question": "refunds"}, "target": "about refunds", "metadata": {}}
    ]
    assert httpx2.get(ui + "/api/experiments/none").status_code == 404


def test_every_answer_forbids_inline_script_and_files_stay_in_place(ui: str) -> None:
    for path in ("/", "/api/traces", "/static/nothing.js"):
        reply = httpx2.get(ui + path, timeout=10)
        policy = reply.headers["content-security-policy"]
        assert "script-src 'self'" in policy and "default-src 'none'" in policy
        assert reply.headers["x-content-type-options"] == "nosniff"
    assert httpx2.get(ui + "/static/nothing.js").status_code == 404
    assert httpx2.get(ui + "/static/..%2Fapi.py").status_code == 404
    page = httpx2.get(ui + "/", timeout=10)
    assert page.status_code == 200 and "<script" in page.text and "inline" not in page.text


def test_a_token_guards_the_viewer(store: Path) -> None:
    with serving(store, "--token", "t0ken") as url:
        assert httpx2.get(url + "/api/traces").status_code == 401
        bearer = httpx2.get(url + "/api/traces", headers={"authorization": "Bearer t0ken"})
        assert bearer.status_code == 200
        with httpx2.Client(base_url=url, follow_redirects=True) as browser:
            opened = browser.get("/", params={"token": "t0ken"})
            assert opened.status_code == 200  # redirected to / with the cookie set
            assert browser.get("/api/traces").status_code == 200
            assert "t0ken" not in str(opened.url)
        assert (
            httpx2.get(url + "/api/traces", headers={"authorization": "Bearer no"}).status_code
            == 401
        )
    refused = subprocess.run(
        [sys.executable, "-m", "clew.cli", "ui", "--host", "0.0.0.0", "--port", "1"],
        capture_output=True,
        text=True,
        timeout=30,
        env={k: v for k, v in os.environ.items() if k != "CLEW_UI_TOKEN"},
    )
    assert refused.returncode == 1 and "--token" in refused.stderr


def test_a_store_not_made_yet_is_an_empty_list(tmp_path: Path) -> None:
    with serving(tmp_path / "later.db") as url:
        assert _get(url + "/api/traces") == {
            "traces": [],
            "next": None,
            "partial": False,
            "searched_to": None,
        }
        assert _get(url + "/api/experiments") == {"experiments": []}
