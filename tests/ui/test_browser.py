"""The viewer in a real browser (headless Chromium) against a real ``clew ui``: the trace list
and its filters, pages and live updates; a trace's tree, waterfall and spans; LLM calls as
conversations; content that must never run; links that restore a view; back and forward;
the dashboard; sessions; experiments, comparisons and datasets.

With ``CLEW_SCREENSHOTS=1`` the main views are saved to docs/screenshots for the README.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import clew
from ui.conftest import CANARY_IMG, CANARY_SCRIPT, Sample

try:
    from playwright.sync_api import Browser, Locator, Page, expect
except ImportError:
    pytest.fail(
        "Playwright is not installed: pip install -e '.[dev]' (it brings playwright; no"
        " `playwright install` is needed: the tests drive /usr/bin/chromium)",
        pytrace=False,
    )


def trace_rows(page: Page) -> Locator:
    return page.get_by_test_id("trace-row")


def trace_row(page: Page, root: str) -> Locator:
    return page.locator(f'[data-testid="trace-row"][data-root="{root}"]')


def roots_shown(page: Page) -> list[str]:
    return trace_rows(page).evaluate_all("rows => rows.map(row => row.dataset.root)")


def span_names(page: Page) -> list[str]:
    return page.locator("[data-testid=span-row] .span-name").all_inner_texts()


def open_list(page: Page, viewer: str, query: str = "") -> None:
    page.goto(f"{viewer}/#/traces{query}")
    expect(trace_rows(page).first).to_be_visible()


def open_trace(page: Page, viewer: str, root: str, span: str | None = None) -> None:
    page.goto(f"{viewer}/#/trace/{root}" + (f"?span={span}" if span else ""))
    expect(page.get_by_test_id("span-tree")).to_be_visible()


# -- the trace list ----------------------------------------------------------------------------
def test_the_list_shows_the_traces_newest_first_with_their_facts(
    page: Page, viewer: str, sample: Sample, screenshots: Path
) -> None:
    open_list(page, viewer)
    roots = roots_shown(page)
    assert {sample.answer_root, sample.tool_root, sample.failed_root} <= set(roots)
    assert roots.index(sample.canary_root) < roots.index(sample.answer_root)
    row = trace_row(page, sample.answer_root)
    for text in ("answer", "support", "gpt-4o-mini", "u-42", "s-1", "$"):
        expect(row).to_contain_text(text)
    expect(trace_row(page, sample.scored_root)).to_contain_text("accuracy 0.25")
    expect(trace_row(page, sample.failed_root).get_by_test_id("status")).to_have_text("error")
    page.screenshot(path=screenshots / "traces.png")


def test_text_search_keeps_the_traces_that_mention_it(
    page: Page, viewer: str, sample: Sample
) -> None:
    open_list(page, viewer)
    page.get_by_test_id("filter-q").fill("refund")
    page.get_by_test_id("filter-q").press("Enter")
    expect(page).to_have_url(re.compile(r"#/traces\?q=refund$"))
    expect(trace_rows(page)).to_have_count(1)
    assert roots_shown(page) == [sample.answer_root]


def test_a_search_cut_short_goes_on_until_the_page_is_found(
    page: Page, viewer: str, hasty_viewer: str, sample: Sample
) -> None:
    """A server whose searches stop at every chance answers in many partial pages: the list
    follows them and shows what a search to the end shows."""
    for query in ("?q=Norway", "?q=answer&limit=2", "?status=error", "?model=gpt-4o-mini"):
        open_list(page, viewer, query)
        expect(page.get_by_test_id("searching")).to_be_hidden()
        whole = roots_shown(page)
        page.goto(f"{hasty_viewer}/#/traces{query}")
        expect(trace_rows(page)).to_have_count(len(whole))
        expect(page.get_by_test_id("searching")).to_be_hidden()
        assert roots_shown(page) == whole, query
    assert whole and sample.answer_root in roots_shown(page)


def test_a_column_sorts_the_traces_loaded(page: Page, viewer: str) -> None:
    open_list(page, viewer)
    newest_first = roots_shown(page)
    listed = page.request.get(f"{viewer}/api/traces").json()["traces"]
    latency = {t["root_trace_id"]: t["latency"] for t in listed}

    def first_is_one_of(roots: list[str]) -> None:  # latencies tie: any of them may lead
        expect(trace_rows(page).first).to_have_attribute(
            "data-root", re.compile("^(" + "|".join(map(re.escape, roots)) + ")$")
        )

    page.get_by_role("link", name="Latency").click()
    expect(page).to_have_url(re.compile(r"sort=-latency"))
    expect(page.get_by_test_id("sort-note")).to_contain_text("largest first")
    first_is_one_of([r for r in newest_first if latency[r] == max(latency.values())])
    shown = [latency[root] for root in roots_shown(page)]
    assert shown == sorted(shown, reverse=True)
    assert sorted(roots_shown(page)) == sorted(newest_first)
    page.get_by_role("link", name="Latency ↓").click()
    expect(page).to_have_url(re.compile(r"sort=latency"))
    first_is_one_of([r for r in newest_first if latency[r] == min(latency.values())])
    shown = [latency[root] for root in roots_shown(page)]
    assert shown == sorted(shown)
    page.get_by_role("link", name="Name").click()
    expect(page).to_have_url(re.compile(r"sort=name"))
    # the name view's own rows (the latency view's stay until it has loaded)
    expect(page.get_by_test_id("sort-note")).to_contain_text("Sorted by name")
    expect(trace_rows(page)).to_have_count(len(newest_first))
    names = page.locator("[data-testid=trace-row] td.name").all_inner_texts()
    assert names == page.evaluate("names => [...names].sort((a, b) => a.localeCompare(b))", names)
    assert len(set(names)) > 3


def test_the_status_filter_keeps_the_failed_traces(page: Page, viewer: str, sample: Sample) -> None:
    open_list(page, viewer)
    page.get_by_test_id("filter-status").select_option("error")
    expect(page).to_have_url(re.compile(r"status=error"))
    statuses = page.locator("[data-testid=trace-row] [data-testid=status]")
    expect(statuses.filter(has_text="success")).to_have_count(0)
    expect(trace_row(page, sample.failed_root)).to_be_visible()
    assert set(statuses.all_inner_texts()) == {"error"}


def test_a_score_filter_keeps_the_traces_scored_so(page: Page, viewer: str, sample: Sample) -> None:
    open_list(page, viewer)
    page.get_by_test_id("filter-score").fill("accuracy<0.5")
    page.get_by_test_id("filter-score").press("Enter")
    expect(trace_rows(page)).to_have_count(1)
    assert roots_shown(page) == [sample.scored_root]


def test_load_more_brings_the_next_page(page: Page, viewer: str) -> None:
    open_list(page, viewer, "?limit=2")
    expect(trace_rows(page)).to_have_count(2)
    first = roots_shown(page)
    page.get_by_test_id("load-more").click()
    expect(trace_rows(page)).to_have_count(4)
    assert roots_shown(page)[:2] == first and len(set(roots_shown(page))) == 4


def test_new_traces_appear_without_a_reload(page: Page, viewer: str, sample: Sample) -> None:
    page.goto(f"{viewer}/#/traces?tag=live")
    expect(page.get_by_text("No traces match these filters.")).to_be_visible()
    page.evaluate("window.__sameDocument = true")
    clew.configure(exporter="sqlite", store_path=sample.store)

    @clew.trace(tags=["live"])
    def arrived() -> str:
        return "hello"

    arrived()
    clew.flush()
    expect(trace_rows(page)).to_have_count(1, timeout=10_000)
    expect(trace_rows(page)).to_contain_text("arrived")
    assert page.evaluate("window.__sameDocument") is True


# -- a trace -----------------------------------------------------------------------------------
def test_a_trace_opens_with_its_tree_and_waterfall(page: Page, viewer: str, sample: Sample) -> None:
    open_list(page, viewer)
    trace_row(page, sample.answer_root).locator("td").first.click()
    expect(page).to_have_url(re.compile(f"#/trace/{sample.answer_root}$"))
    expect(page.get_by_test_id("span-row")).to_have_count(4)
    assert span_names(page) == ["answer", "retrieve", "llm-openai", "upstream"]
    bars = page.locator("[data-testid=waterfall] .bar")
    expect(bars).to_have_count(4)
    lefts = bars.evaluate_all("bars => bars.map(bar => parseFloat(bar.style.left))")
    assert lefts[0] == 0 and lefts[2] > lefts[1] >= 0  # the LLM call starts after retrieve
    widths = bars.evaluate_all("bars => bars.map(bar => parseFloat(bar.style.width))")
    assert widths[0] == pytest.approx(100, abs=0.01) and all(0 < w <= 100 for w in widths)
    expect(page.get_by_test_id("span-detail")).to_contain_text("answer")


def test_spans_collapse_and_the_arrow_keys_walk_them(
    page: Page, viewer: str, sample: Sample
) -> None:
    open_trace(page, viewer, sample.answer_root)
    page.get_by_test_id("span-row").filter(has_text="llm-openai").locator(".toggle").click()
    assert span_names(page) == ["answer", "retrieve", "llm-openai"]
    page.get_by_test_id("span-tree").press("ArrowDown")
    expect(page.get_by_test_id("span-detail").locator("h2")).to_have_text("retrieve")
    page.get_by_test_id("span-tree").press("ArrowDown")
    page.get_by_test_id("span-tree").press("ArrowRight")  # expands the selected llm-openai
    assert span_names(page) == ["answer", "retrieve", "llm-openai", "upstream"]
    expect(page).to_have_url(re.compile(f"span={sample.llm_span}$"))


def test_a_trace_of_5000_spans_draws_only_the_rows_on_screen(
    page: Page, viewer: str, sample: Sample
) -> None:
    open_trace(page, viewer, sample.big_root, span=sample.big_last_span)
    selected = page.locator("[data-testid=span-row].selected")
    expect(selected).to_have_attribute("data-trace", sample.big_last_span)
    expect(selected).to_be_in_viewport()
    expect(page.get_by_test_id("span-detail").locator("h2")).to_have_text("link 249.18")
    assert page.get_by_test_id("span-row").count() < 200
    page.get_by_test_id("span-pane").evaluate("pane => { pane.scrollTop = 0 }")
    expect(page.get_by_test_id("span-row").first).to_contain_text("crawl")
    assert page.get_by_test_id("span-row").count() < 200


def test_an_llm_span_shows_its_conversation_tokens_and_cost(
    page: Page, viewer: str, sample: Sample, screenshots: Path
) -> None:
    open_trace(page, viewer, sample.answer_root)
    page.get_by_test_id("span-row").filter(has_text="llm-openai").click()
    expect(page).to_have_url(re.compile(f"span={sample.llm_span}"))
    detail = page.get_by_test_id("span-detail")
    expect(detail.locator("h2")).to_have_text("llm-openai")
    messages = detail.get_by_test_id("message")
    expect(messages).to_have_count(3)
    roles = messages.evaluate_all("items => items.map(item => item.dataset.role)")
    assert roles == ["system", "user", "assistant"]
    expect(messages.nth(1)).to_contain_text("Can I get a refund for my shoes?")
    record = sample.llm_record
    expect(detail.get_by_test_id("tokens-input")).to_contain_text(str(record["input_tokens"]))
    expect(detail.get_by_test_id("tokens-output")).to_contain_text(str(record["output_tokens"]))
    expect(detail.get_by_test_id("cost")).to_contain_text("$0.0000")
    expect(detail.get_by_test_id("parameters")).to_contain_text("temperature")
    page.screenshot(path=screenshots / "trace.png")


def test_tool_calls_and_results_show_in_the_conversation(
    page: Page, viewer: str, sample: Sample
) -> None:
    open_trace(page, viewer, sample.tool_root)
    page.get_by_test_id("span-row").filter(has_text="llm-").last.click()
    detail = page.get_by_test_id("span-detail")
    expect(detail.get_by_test_id("tool-call")).to_contain_text("get_weather")
    expect(detail.locator('[data-testid=message][data-role="tool"]')).to_contain_text("temp_c")
    # this call's output was not recorded (log_omit_outputs): it says so
    expect(detail.get_by_test_id("conversation").get_by_test_id("omitted")).to_be_visible()
    expect(detail.get_by_test_id("output")).to_have_text("omitted (not recorded for this span)")


def test_scores_show_on_their_span_not_as_spans(page: Page, viewer: str, sample: Sample) -> None:
    open_trace(page, viewer, sample.scored_root)
    assert span_names(page) == ["scored"]
    expect(page.get_by_test_id("scores")).to_contain_text("accuracy 0.25")
    expect(page.get_by_test_id("span-scores")).to_contain_text("half right, at best")


def test_content_shows_as_text_and_never_runs(
    page: Page, viewer: str, sample: Sample, problems: list[str]
) -> None:
    open_trace(page, viewer, sample.canary_root)
    detail = page.get_by_test_id("span-detail")
    expect(detail.get_by_test_id("inputs")).to_contain_text(CANARY_IMG)
    expect(detail.get_by_test_id("output")).to_contain_text(CANARY_SCRIPT)
    page.goto(f"{viewer}/#/sessions/s-canary")
    expect(page.get_by_test_id("conversation")).to_contain_text(CANARY_SCRIPT)
    page.goto(f"{viewer}/#/traces?q=onerror")
    expect(trace_rows(page)).to_have_count(1)
    assert page.locator("main img, main script").count() == 0
    assert page.evaluate("window.__pwned") is None
    assert problems == []


def test_an_unknown_trace_says_so(page: Page, viewer: str, problems: list[str]) -> None:
    page.goto(f"{viewer}/#/trace/00000000-0000-0000-0000-000000000000")
    expect(page.get_by_test_id("error")).to_contain_text("no trace")
    assert [p for p in problems if "404" not in p] == []
    problems.clear()  # the console's note of the 404
    page.get_by_role("link", name="Back to the traces").click()
    expect(trace_rows(page).first).to_be_visible()


# -- links and history -------------------------------------------------------------------------
def test_a_shared_link_restores_the_view(browser: Browser, viewer: str, sample: Sample) -> None:
    context = browser.new_context()
    try:
        fresh = context.new_page()
        fresh.goto(f"{viewer}/#/trace/{sample.answer_root}?span={sample.llm_span}")
        selected = fresh.locator("[data-testid=span-row].selected")
        expect(selected).to_have_attribute("data-trace", sample.llm_span)
        expect(fresh.get_by_test_id("span-detail").get_by_test_id("conversation")).to_be_visible()
        fresh.goto(f"{viewer}/#/traces?status=error")
        expect(fresh.get_by_test_id("filter-status")).to_have_value("error")
    finally:
        context.close()


def test_back_and_forward_step_through_the_views(page: Page, viewer: str, sample: Sample) -> None:
    open_list(page, viewer)
    page.get_by_test_id("filter-status").select_option("error")
    expect(page).to_have_url(re.compile(r"status=error"))
    trace_row(page, sample.failed_root).locator("td").first.click()
    expect(page.get_by_test_id("span-detail")).to_contain_text("the index is offline")
    page.go_back()
    expect(page).to_have_url(re.compile(r"#/traces\?status=error$"))
    expect(page.get_by_test_id("filter-status")).to_have_value("error")
    page.go_back()
    expect(page).to_have_url(re.compile(r"#/traces$"))
    expect(page.get_by_test_id("filter-status")).to_have_value("")
    page.go_forward()
    page.go_forward()
    expect(page.get_by_test_id("span-tree")).to_be_visible()
    assert span_names(page) == ["fails"]


# -- the other views ---------------------------------------------------------------------------
def test_the_dashboard_charts_requests_latency_tokens_and_cost(
    page: Page, viewer: str, screenshots: Path
) -> None:
    page.goto(f"{viewer}/#/dashboard?since=24h")
    expect(page.get_by_test_id("dashboard-chart")).to_have_count(5)
    requests = page.get_by_test_id("dashboard-chart").first
    heights = requests.locator("rect.series-0").evaluate_all(
        "bars => bars.map(bar => Number(bar.getAttribute('height')))"
    )
    assert len(heights) == 24 and max(heights) > 0
    expect(page.get_by_test_id("by-model")).to_contain_text("gpt-4o-mini")
    expect(page.get_by_test_id("by-project")).to_contain_text("support-bot")
    page.screenshot(path=screenshots / "dashboard.png", full_page=True)


def test_a_session_reads_as_one_conversation(page: Page, viewer: str, sample: Sample) -> None:
    page.goto(f"{viewer}/#/sessions/s-1")
    turns = page.get_by_test_id("session-turn")
    expect(turns).to_have_count(2)
    expect(turns.first).to_contain_text("Can I get a refund for my shoes?")
    expect(turns.last).to_contain_text("Do you ship to Norway?")
    turns.first.get_by_role("link", name="answer").click()
    expect(page).to_have_url(re.compile(f"#/trace/{sample.answer_root}$"))


def test_an_experiment_shows_its_summary_and_rows(
    page: Page, viewer: str, screenshots: Path
) -> None:
    page.goto(f"{viewer}/#/experiments")
    table = page.get_by_test_id("experiments-table")
    expect(table).to_contain_text("math-v2")
    table.get_by_role("link", name="math-v1").click()
    summary = page.get_by_test_id("experiment-summary")
    expect(summary.get_by_test_id("evals-table")).to_contain_text("exact_match")
    expect(summary.get_by_test_id("evals-table")).to_contain_text("0.75")
    rows = page.get_by_test_id("experiment-row")
    expect(rows).to_have_count(4)
    expect(rows.last).to_contain_text("ValueError: cannot solve boom")
    page.screenshot(path=screenshots / "experiment.png", full_page=True)
    rows.first.get_by_role("link", name="trace").click()
    expect(page.get_by_test_id("span-tree")).to_contain_text("experiment math-v1")


def test_two_runs_compare_side_by_side(page: Page, viewer: str) -> None:
    page.goto(f"{viewer}/#/experiments")
    picker = page.get_by_test_id("compare-picker")
    expect(picker.get_by_test_id("compare-a")).to_contain_text("math-v1")
    picker.get_by_role("button", name="Compare").click()
    expect(page).to_have_url(re.compile(r"#/compare\?a=[0-9a-f-]{36}&b=[0-9a-f-]{36}$"))
    expect(page.get_by_test_id("compare-runs")).to_have_text("A math-v1 vs B math-v2")
    evals = page.get_by_test_id("compare-table")
    expect(evals).to_contain_text("exact_match")
    expect(evals.locator(".diff-worse")).to_have_text("-0.25")
    expect(page.locator("[data-testid=compare-rows] tr.row-worse")).to_have_count(2)


def test_datasets_list_and_show_the_rows_of_a_version(page: Page, viewer: str) -> None:
    page.goto(f"{viewer}/#/datasets")
    page.get_by_test_id("datasets-table").get_by_role("link", name="sums").click()
    expect(page).to_have_url(re.compile(r"#/datasets/sums$"))
    rows = page.locator("[data-testid=dataset-rows] tbody tr")
    expect(rows).to_have_count(2)  # the latest version
    page.get_by_test_id("dataset-version").select_option("1")
    expect(page).to_have_url(re.compile(r"#/datasets/sums\?version=1$"))
    expect(rows).to_have_count(4)
    expect(rows.last).to_contain_text("boom")
