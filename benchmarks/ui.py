"""What ``clew ui`` answers from a store of 100,000 traces (1,000,000 spans): the first page of
the trace list and each filter, through its HTTP API and in-process, and a trace of 5,000 spans
on screen in a browser.

Run: ``python benchmarks/ui.py [--traces N] [--spans-per-trace K] [--store PATH] [--keep]
[--repeat R] [--only api|page]``.

**The store.** Filled the way users get it: SDK spans (``ReadableSpan``) through
:class:`~clew.exporters.sqlite.SqliteSpanExporter`, in batches of 512 (a ``BatchSpanProcessor``'s
batch), so rows keep their attributes as JSON and score spans reach ``span_scores``. The spans
are built directly rather than by traced calls, which would take an hour for a million. ``N``
traces (100,000) of ``K`` spans (10) start over the 30 days before the fill, oldest first, in 3
projects: a root (inputs, output, tags from a small set, one of ~1,000 users, one of ~10,000
sessions), a guardrail, a retrieval with a vector search under it, 1-3 LLM calls (4 models, 3
providers, tokens, cost, GenAI messages of ~1-2 kB) with tool calls between them, and filler
steps. About 2% of traces fail (an LLM call, and mostly the root with it); a tenth are scored
(``helpfulness``, an eval's score span after the trace ends) and 2% have user feedback
(``thumbs``). The word ``refund`` is in about a fifth of the questions, ``zanzibar`` in one
trace in 10,000. One more trace of 5,000 spans (an agent's tree, up to 12 levels deep) starts
three days before the fill. The first fill writes ``PATH`` and ``PATH.json`` (what to query);
``--store PATH`` reuses them, and without ``--keep`` a store made by this run is deleted after.

**The API.** ``clew ui --store PATH`` runs in a process of its own; each request is timed from
a client on loopback (one keep-alive connection; the floor, a 404 answered by the app, is
printed): a warm-up, then ``R`` timed requests (p50; p95 is the nearest rank, the slowest of 5).
The same query is timed in-process (``TraceStore.list_traces``, ``get_trace``,
``dashboard.dashboard``), which leaves out HTTP and JSON and searches to the end. Queries: the
first page (50 traces, no filter); each filter alone: ``q`` (a rare word, a common one, and
one in no trace), ``status=error``, ``tag``, ``user``, ``session``, ``model`` (one model of
four, and one in no trace), ``project``, ``score`` (any value, and a rare value), ``since=1d``;
the page reached by following ``next`` 20 times; the 5,000-span trace; the dashboard over 30
days. The server answers a search after about 0.08 s with what it found (a ``partial``
page); the viewer asks on from there: "answers to a page" and "page found" count and time
those requests, as the viewer makes them. The OS file cache is warm (the store was just
written or read).

**The page.** Headless Chromium (``/usr/bin/chromium``, driven by Playwright) opens
``/#/trace/<id>`` of the 5,000-span trace in a fresh context (no cache) and waits until the span
tree has all its rows and a frame has been drawn: a warm-up, then 3 timed loads (p50), from
``page.goto`` on. Skipped, and said so, while the viewer has no ``index.html``.

Targets (the viewer's issue): the first page of the trace list and each filter answer in under
200 ms of server time; the 5,000-span trace is on screen in under 1 s.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceFlags

from clew import attributes as a
from clew.log_record import new_trace_id

TARGET_MS = 200.0
PAGE_TARGET_MS = 1000.0
PAGE = 50
BATCH = 512  # a BatchSpanProcessor's max_export_batch_size
DAYS = 30
BIG_SPANS = 5000
CHROMIUM = "/usr/bin/chromium"
ROW_SELECTOR = "[data-testid=span-row]"

PROJECTS = (("support-bot", 0.6), ("docs-search", 0.3), ("billing-agent", 0.1))
# (requested model, answering model, provider, $ per 1M input tokens, $ per 1M output tokens)
MODELS = (
    ("gpt-4o-mini", "gpt-4o-mini-2024-07-18", "openai", 0.15, 0.6),
    ("gpt-4o", "gpt-4o-2024-08-06", "openai", 2.5, 10.0),
    ("claude-3-5-haiku-latest", "claude-3-5-haiku-20241022", "anthropic", 0.8, 4.0),
    ("gemini-2.0-flash", "gemini-2.0-flash-001", "gcp.gemini", 0.1, 0.4),
)
MODEL_WEIGHTS = (0.5, 0.2, 0.2, 0.1)
USERS = 1000
SESSIONS = 10_000
RARE_WORD = "zanzibar"
COMMON_WORD = "refund"
TOOLS = ("get_order", "lookup_account", "search_kb", "create_ticket", "check_inventory")
FILLERS = ("format_reply", "cache_lookup", "moderate_output", "log_feedback", "rank_results")
SUBJECTS = (
    "my order", "the invoice", "my password", "the shipping label", "my subscription",
    "the mobile app", "my account", "the delivery", "a damaged item", "the warranty",
    "two-factor login", "the API key", "my payment method", "the export to CSV", "the discount",
)  # fmt: skip
ASKS = (
    "How do I change", "Why can't I find", "Can you help me with", "Something is wrong with",
    "I need an update on", "Please explain", "What happened to", "Is there a problem with",
)  # fmt: skip
WORDS = (
    "account", "billing", "customer", "delivery", "policy", "return", "warranty", "product",
    "update", "ticket", "team", "support", "order", "payment", "service", "plan", "premium",
    "basic", "export", "report", "settings", "login", "security", "password", "reset", "email",
    "notification", "mobile", "desktop", "browser", "cache", "sync", "upload", "download", "limit",
    "quota", "region", "europe", "america", "asia", "shipping", "tracking", "courier", "parcel",
    "invoice", "receipt", "tax", "discount",
)  # fmt: skip
SYSTEM = (
    "You are the support assistant of Acme Cloud. Answer in two or three short paragraphs,"
    " quote the handbook where it applies, never invent order numbers or prices, and hand the"
    " conversation to a human when the customer asks for one or is upset. Use the tools to look"
    " up orders and accounts before answering questions about them. "
) * 2


def _words(rng: random.Random, count: int) -> str:
    return " ".join(rng.choices(WORDS, k=count))


PASSAGES = tuple(_words(random.Random(i), 28).capitalize() + "." for i in range(200))


# --- the store ---------------------------------------------------------------------------------
@dataclass
class Plan:
    """What the queries ask for: values found in the store, and how it was made."""

    traces: int
    spans: int
    big_trace: str
    user: str
    session: str
    filled_at: float
    fill_seconds: float
    tag: str = "beta"
    model: str = "gemini-2.0-flash"
    project: str = "billing-agent"
    score: str = "helpfulness"
    rare_score: str = "thumbs<1"
    rare_word: str = RARE_WORD
    common_word: str = COMMON_WORD


class Spans:
    """Builds finished SDK spans the way clew's tracer and instrumentations make them."""

    def __init__(self, seed: int, traces: int) -> None:
        self.rng = random.Random(seed)
        self.traces = traces
        self.scope = InstrumentationScope("clew")
        self.resources = {name: Resource.create({"service.name": name}) for name, _ in PROJECTS}

    def span(
        self,
        name: str,
        trace_id: int,
        span_id: int,
        parent_id: int | None,
        start: int,
        end: int,
        project: str,
        attrs: dict[str, Any],
        error: str | None = None,
        kind: SpanKind = SpanKind.INTERNAL,
    ) -> ReadableSpan:
        parent = None
        if parent_id is not None:
            parent = SpanContext(trace_id, parent_id, False, TraceFlags(1))
        return ReadableSpan(
            name=name,
            context=SpanContext(trace_id, span_id, False, TraceFlags(1)),
            parent=parent,
            resource=self.resources[project],
            attributes=attrs,
            kind=kind,
            status=Status(StatusCode.ERROR, error) if error else Status(StatusCode.UNSET),
            start_time=start,
            end_time=end,
            instrumentation_scope=self.scope,
        )

    def span_id(self) -> int:
        return self.rng.getrandbits(64) | 1

    def llm(self, question: str, depth: int, order: int, turn: int) -> tuple[str, dict[str, Any]]:
        """A chat call's name and attributes: messages, model, tokens and cost."""
        rng = self.rng
        requested, answering, provider, price_in, price_out = rng.choices(MODELS, MODEL_WEIGHTS)[0]
        context = " ".join(rng.choices(PASSAGES, k=3))
        messages = [
            {"role": "system", "parts": [{"type": "text", "content": SYSTEM + context}]},
            {"role": "user", "parts": [{"type": "text", "content": question}]},
        ]
        answer = f"Thanks for asking. {_words(rng, rng.randint(25, 70))}."
        finish = "tool_calls" if turn == 0 and rng.random() < 0.5 else "stop"
        tokens_in = rng.randint(300, 3000)
        tokens_out = rng.randint(20, 500)
        attrs = {
            a.GEN_AI_OPERATION_NAME: "chat",
            a.GEN_AI_PROVIDER_NAME: provider,
            a.GEN_AI_REQUEST_MODEL: requested,
            a.SERVER_ADDRESS: "api.example.com",
            a.SERVER_PORT: 443,
            a.CLEW_DEPTH: depth,
            a.CLEW_EXECUTION_ORDER: order,
            a.GEN_AI_INPUT_MESSAGES: json.dumps(messages),
            a.GEN_AI_RESPONSE_ID: f"resp-{rng.getrandbits(48):012x}",
            a.GEN_AI_RESPONSE_FINISH_REASONS: (finish,),
            a.GEN_AI_OUTPUT_MESSAGES: json.dumps(
                [
                    {
                        "role": "assistant",
                        "parts": [{"type": "text", "content": answer}],
                        "finish_reason": finish,
                    }
                ]
            ),
            a.GEN_AI_RESPONSE_MODEL: answering,
            a.GEN_AI_USAGE_INPUT_TOKENS: tokens_in,
            a.GEN_AI_USAGE_OUTPUT_TOKENS: tokens_out,
            a.GEN_AI_USAGE_COST_AMOUNT: (tokens_in * price_in + tokens_out * price_out) / 1e6,
            a.GEN_AI_USAGE_COST_CURRENCY: "USD",
            a.GEN_AI_USAGE_COST_SOURCE: "genai-prices",
        }
        return f"chat {requested}", attrs

    def step(self, name: str, depth: int, order: int, inputs: Any, output: Any) -> dict[str, Any]:
        return {
            a.CLEW_DEPTH: depth,
            a.CLEW_EXECUTION_ORDER: order,
            a.CLEW_INPUTS: json.dumps(inputs),
            a.CLEW_OUTPUT: json.dumps(output),
        }

    def question(self, index: int) -> str:
        rng = self.rng
        text = f"{rng.choice(ASKS)} {rng.choice(SUBJECTS)}? {_words(rng, rng.randint(4, 16))}"
        if rng.random() < 0.2:
            text += f" I would like a {COMMON_WORD}."
        if index % 10_000 == 5_000:
            text += f" I am writing from {RARE_WORD.capitalize()}."
        return text

    def trace(self, index: int, start: int, size: int) -> tuple[list[ReadableSpan], str, str]:
        """The spans of one trace of ``size`` spans (and its score spans), in the order they
        end, with its user and session."""
        rng = self.rng
        trace_id = new_trace_id()
        root_id = trace_id & ((1 << 64) - 1)
        project = rng.choices([p for p, _ in PROJECTS], [w for _, w in PROJECTS])[0]
        # Sessions are a few minutes of one user's traces: neighbours in time share one.
        number = int(index / max(1, self.traces) * SESSIONS) + rng.randint(-3, 3)
        number = min(SESSIONS - 1, max(0, number))
        session = f"sess-{number:05d}"
        user = f"user-{number * 7919 % USERS:04d}"
        question = self.question(index)
        calls = rng.randint(1, 3)
        children = ["guardrail", "retrieve"]  # a retrieve is 2 spans: a vector search under it
        for turn in range(calls):
            children += [rng.choice(TOOLS), "chat"] if turn else ["chat"]
        children += [rng.choice(FILLERS) for _ in range(size)]
        children = children[: size - 2]  # the root, and the retrieve's second span
        failing = -1
        if rng.random() < 0.02:
            failing = rng.choice([i for i, name in enumerate(children) if name == "chat"] or [0])
        spans: list[ReadableSpan] = []
        at = start + rng.randint(1, 5) * 1_000_000
        order = 1
        for i, name in enumerate(children):
            span_id = self.span_id()
            error = "RateLimitError: 429 Too Many Requests" if i == failing else None
            if name == "chat":
                name, attrs = self.llm(question, 1, order, children[:i].count("chat"))
                kind = SpanKind.CLIENT
                end = at + int(rng.uniform(400, 3000) * 1e6)
            elif name == "retrieve":
                passages = rng.choices(PASSAGES, k=3)
                inner = at + 1_000_000
                inner_end = inner + int(rng.uniform(20, 150) * 1e6)
                attrs = self.step("vector_search", 2, order + 1, {"query": question}, passages)
                spans.append(
                    self.span(
                        "vector_search",
                        trace_id,
                        self.span_id(),
                        span_id,
                        inner,
                        inner_end,
                        project,
                        attrs,
                    )
                )
                attrs = self.step(name, 1, order, {"question": question}, passages)
                kind = SpanKind.INTERNAL
                end = inner_end + 1_000_000
                order += 1
            else:
                if name in TOOLS:
                    inputs: Any = {"id": f"ord-{rng.getrandbits(24):06x}"}
                    output: Any = {"status": rng.choice(["shipped", "open", "closed"])}
                else:
                    inputs, output = {"text": question[:80]}, {"ok": True}
                attrs = self.step(name, 1, order, inputs, output)
                kind = SpanKind.INTERNAL
                end = at + int(rng.uniform(2, 300) * 1e6)
            spans.append(
                self.span(name, trace_id, span_id, root_id, at, end, project, attrs, error, kind)
            )
            order += 1
            at = end + rng.randint(0, 3) * 1_000_000
        tags = ["prod" if rng.random() < 0.9 else "staging", rng.choice(["web", "mobile", "api"])]
        if rng.random() < 0.05:
            tags.append("beta")
        if rng.random() < 0.005:
            tags.append("vip")
        reply = f"Thanks for asking. {_words(rng, 40)}."
        root_attrs = self.step("answer", 0, 0, {"question": question}, reply)
        root_attrs[a.CLEW_TAGS] = tuple(tags)
        root_attrs[a.CLEW_END_USER_IDENTIFIER] = user
        root_attrs[a.CLEW_SESSION_ID] = session
        root_error = None
        if failing >= 0 and rng.random() < 0.7:  # else a retry or a fallback saved the call
            root_error = "RateLimitError: 429 Too Many Requests"
        root_end = at + rng.randint(1, 10) * 1_000_000
        spans.append(
            self.span(
                "answer", trace_id, root_id, None, start, root_end, project, root_attrs, root_error
            )
        )
        scores = []
        if rng.random() < 0.1:
            scores.append(("helpfulness", round(rng.random(), 3), "eval"))
        if rng.random() < 0.02:
            scores.append(("thumbs", float(rng.random() < 0.7), "feedback"))
        for name, value, source in scores:
            at = root_end + rng.randint(200, 5000) * 1_000_000  # an eval runs after the call
            score_attrs = {
                a.CLEW_SCORE_NAME: name,
                a.CLEW_SCORE_SOURCE: source,
                a.CLEW_SCORE_VALUE: value,
                a.CLEW_DEPTH: 1,
                a.CLEW_EXECUTION_ORDER: order,
            }
            spans.append(
                self.span(
                    f"score {name}",
                    trace_id,
                    self.span_id(),
                    root_id,
                    at,
                    at + 2_000_000,
                    project,
                    score_attrs,
                )
            )
        return spans, user, session

    def big_trace(
        self, start: int, size: int, max_depth: int = 12
    ) -> tuple[str, list[ReadableSpan]]:
        """An agent's trace of ``size`` spans: steps under the root, tools and LLM calls under
        those, nested up to ``max_depth`` levels."""
        rng = self.rng
        trace_id = new_trace_id()
        ids = [trace_id & ((1 << 64) - 1)]
        parents = [-1]
        depths = [0]
        path = [0]  # from the root to the last span made, one per level
        for _ in range(size - 1):
            # a random walk over the levels: under the last span (0.3), beside it (0.4), or
            # beside its parent (0.3)
            roll = rng.random()
            up = 0 if roll < 0.3 else 1 if roll < 0.7 else 2
            level = min(max(len(path) - 1 - up, 0), max_depth - 1)
            parent = path[level]
            ids.append(self.span_id())
            parents.append(parent)
            depths.append(level + 1)
            path = [*path[: level + 1], len(ids) - 1]
        children: list[list[int]] = [[] for _ in ids]
        for i, parent in enumerate(parents[1:], 1):
            children[parent].append(i)
        times: dict[int, tuple[int, int]] = {}

        def place(i: int, at: int) -> int:
            cursor = at + 1_000_000
            for child in children[i]:
                cursor = place(child, cursor) + rng.randint(0, 2) * 1_000_000
            end = cursor + rng.randint(1, 30 if not children[i] else 3) * 1_000_000
            times[i] = (at, end)
            return end

        place(0, start)
        question = f"Plan the migration of the {RARE_WORD} warehouse account to the new region."
        spans = []
        for i in sorted(times, key=lambda i: times[i][1]):
            begin, end = times[i]
            if i and not children[i] and rng.random() < 0.25:
                name, attrs = self.llm(question, depths[i], i, 1)
                kind = SpanKind.CLIENT
            else:
                name = "agent" if i == 0 else f"{rng.choice(TOOLS + FILLERS)}"
                attrs = self.step(name, depths[i], i, {"task": question, "step": i}, {"ok": True})
                kind = SpanKind.INTERNAL
            if i == 0:
                attrs[a.CLEW_TAGS] = ("prod", "agent")
            parent = ids[parents[i]] if i else None
            spans.append(
                self.span(
                    name, trace_id, ids[i], parent, begin, end, "support-bot", attrs, kind=kind
                )
            )
        return f"{trace_id:032x}", spans


def _uuid(hex_id: str) -> str:
    return f"{hex_id[:8]}-{hex_id[8:12]}-{hex_id[12:16]}-{hex_id[16:20]}-{hex_id[20:]}"


def fill(path: Path, traces: int, spans_per_trace: int, seed: int = 7) -> Plan:
    """Write the store at ``path`` through the SQLite exporter, and what to query in it."""
    from clew.exporters.sqlite import SqliteSpanExporter

    exporter = SqliteSpanExporter(path)
    maker = Spans(seed, traces)
    now = time.time_ns()
    first = now - DAYS * 86_400 * 10**9
    times = random.Random(seed)
    starts = sorted(times.randrange(first, now - 60 * 10**9) for _ in range(traces))
    big_at = now - 3 * 86_400 * 10**9
    big_id = ""
    pending: list[ReadableSpan] = []
    written = 0
    user = session = ""
    build = write = 0.0
    started = time.perf_counter()
    for index, start in enumerate(starts):
        mark = time.perf_counter()
        if not big_id and start >= big_at:
            big_id, big = maker.big_trace(big_at, BIG_SPANS)
            pending.extend(big)
        spans, user, session = maker.trace(index, start, spans_per_trace)
        pending.extend(spans)
        build += time.perf_counter() - mark
        while len(pending) >= BATCH:
            mark = time.perf_counter()
            exporter.export(pending[:BATCH])
            write += time.perf_counter() - mark
            written += BATCH
            del pending[:BATCH]
        if index % 10_000 == 9_999:
            rate = written / (time.perf_counter() - started)
            print(f"  {index + 1:,} traces, {written:,} spans ({rate:,.0f} spans/s)", flush=True)
    if pending:
        exporter.export(pending)
        written += len(pending)
    exporter.shutdown()
    elapsed = time.perf_counter() - started
    print(
        f"  filled in {elapsed:.0f} s: building spans {build:.0f} s, exporting {write:.0f} s"
        f" ({written / max(write, 1e-9):,.0f} spans/s)"
    )
    plan = Plan(
        traces=traces + 1,
        spans=written,
        big_trace=_uuid(big_id),
        user=user,
        session=session,
        filled_at=now / 1e9,
        fill_seconds=elapsed,
    )
    Path(f"{path}.json").write_text(json.dumps(plan.__dict__, indent=2))
    return plan


# --- measuring ---------------------------------------------------------------------------------
def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered) + 0.5) - 1))]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    """``clew ui`` over the store, in a process of its own."""

    def __init__(self, store: Path) -> None:
        self.port = _free_port()
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "clew.cli",
                "ui",
                "--port",
                str(self.port),
                "--store",
                str(store),
            ],
            stdout=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    self.close()
                    raise RuntimeError("clew ui did not start") from None
                time.sleep(0.1)
        self.url = f"http://127.0.0.1:{self.port}"
        self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=300)

    def get(self, path: str) -> tuple[int, bytes]:
        try:
            self.conn.request("GET", path, headers={"accept": "application/json"})
            response = self.conn.getresponse()
        except (http.client.RemoteDisconnected, ConnectionError):
            # uvicorn closes a connection idle for 5 s (while an in-process query ran): only a
            # warm-up request meets this
            self.conn.close()
            self.conn.request("GET", path, headers={"accept": "application/json"})
            response = self.conn.getresponse()
        return response.status, response.read()

    def close(self) -> None:
        self.conn.close()
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()


@dataclass
class Row:
    name: str
    http: list[float]
    local: list[float]
    size: int
    found: int | str
    target: float | None = TARGET_MS
    requests: int = 1  # the answers a page took (a search cut short goes on in the next)
    whole: float | None = None  # ms from the first request to the page found, over HTTP


def _timed(fn: Callable[[], Any], repeat: int) -> tuple[list[float], Any]:
    result = fn()  # warm-up
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        result = fn()
        times.append((time.perf_counter() - started) * 1000)
    return times, result


def measure_api(path: Path, plan: Plan, repeat: int) -> tuple[list[Row], float]:
    from clew.store import dashboard
    from clew.store.queries import TraceFilter, Window
    from clew.store.sqlite import TraceStore

    store = TraceStore(path)
    server = Server(path)
    try:
        floor, _ = _timed(lambda: server.get("/static/nothing-here.js"), max(repeat, 20))

        def api(query: dict[str, str]) -> Callable[[], tuple[int, bytes]]:
            return lambda: server.get("/api/traces?" + urllib.parse.urlencode(query))

        def local(**kwargs: Any) -> Callable[[], list[dict[str, Any]]]:
            extra = TraceFilter(
                kwargs.pop("project", None), kwargs.pop("model", None), kwargs.pop("text", None)
            )
            since = kwargs.pop("since", None)
            before = kwargs.pop("before", None)

            def run() -> list[dict[str, Any]]:
                since_ns = None if since is None else time.time_ns() - int(since * 1e9)
                window = Window(since_ns, before)
                return store.list_traces(limit=PAGE, extra=extra, window=window, **kwargs)

            return run

        from clew.cli.traces import score_filter

        cases: list[tuple[str, dict[str, str], Callable[[], Any]]] = [
            ("first page", {}, local()),
            (f"q={plan.rare_word} (rare)", {"q": plan.rare_word}, local(text=plan.rare_word)),
            (f"q={plan.common_word}", {"q": plan.common_word}, local(text=plan.common_word)),
            ("q=kilimanjaro (in no trace)", {"q": "kilimanjaro"}, local(text="kilimanjaro")),
            ("status=error", {"status": "error"}, local(status="error")),
            (f"tag={plan.tag}", {"tag": plan.tag}, local(tag=plan.tag)),
            (f"user={plan.user}", {"user": plan.user}, local(user=plan.user)),
            (f"session={plan.session}", {"session": plan.session}, local(session=plan.session)),
            (f"model={plan.model}", {"model": plan.model}, local(model=plan.model)),
            ("model=gpt-5 (in no trace)", {"model": "gpt-5"}, local(model="gpt-5")),
            (f"project={plan.project}", {"project": plan.project}, local(project=plan.project)),
            (f"score={plan.score}", {"score": plan.score}, local(score=score_filter(plan.score))),
            (
                f"score={plan.rare_score}",
                {"score": plan.rare_score},
                local(score=score_filter(plan.rare_score)),
            ),
            ("since=1d", {"since": "1d"}, local(since=86_400)),
        ]

        def whole(query: dict[str, str]) -> tuple[float, int, int]:
            """A page found by following partial answers: ms, answers, traces."""
            started = time.perf_counter()
            found, answers, cursor = 0, 0, None
            while True:
                wanted = {**query, "limit": str(PAGE - found)}
                _, body = server.get(
                    "/api/traces?"
                    + urllib.parse.urlencode({**wanted, **({"cursor": cursor} if cursor else {})})
                )
                page = json.loads(body)
                found, answers, cursor = found + len(page["traces"]), answers + 1, page["next"]
                if not page["partial"] or found >= PAGE:
                    return (time.perf_counter() - started) * 1000, answers, found

        rows = []
        for name, query, in_process in cases:
            print(f"  {name}", file=sys.stderr, flush=True)
            query = {"limit": str(PAGE), **query}
            http_times, (status, body) = _timed(api(query), repeat)
            local_times, _ = _timed(in_process, repeat)
            wholes = [whole(query) for _ in range(repeat)]
            _, answers, found = wholes[len(wholes) // 2]
            row = Row(
                name,
                http_times,
                local_times,
                len(body),
                found if status == 200 else f"HTTP {status}",
            )
            row.requests, row.whole = answers, statistics.median(w[0] for w in wholes)
            rows.append(row)

        cursor = None
        for _ in range(20):
            query = {"limit": str(PAGE), **({"cursor": cursor} if cursor else {})}
            cursor = json.loads(server.get("/api/traces?" + urllib.parse.urlencode(query))[1])[
                "next"
            ]
        assert cursor is not None
        start_ns, _, root = cursor.partition(":")
        http_times, (status, body) = _timed(api({"limit": str(PAGE), "cursor": cursor}), repeat)
        local_times, _ = _timed(local(before=(int(start_ns), root)), repeat)
        rows.append(
            Row(
                "page 21 (20 `next` followed)",
                http_times,
                local_times,
                len(body),
                len(json.loads(body)["traces"]),
            )
        )

        big = urllib.parse.quote(plan.big_trace)
        http_times, (status, body) = _timed(lambda: server.get(f"/api/traces/{big}"), repeat)
        local_times, _ = _timed(lambda: store.get_trace(plan.big_trace), repeat)
        spans = len(json.loads(body)["spans"]) if status == 200 else f"HTTP {status}"
        rows.append(
            Row(f"trace of {BIG_SPANS:,} spans", http_times, local_times, len(body), spans, None)
        )

        def board() -> Any:
            until = time.time_ns()
            return dashboard.dashboard(path, until - DAYS * 86_400 * 10**9, until, 30)

        http_times, (status, body) = _timed(
            lambda: server.get("/api/dashboard?since=30d&buckets=30"), repeat
        )
        local_times, _ = _timed(board, repeat)
        requests = sum(b["requests"] for b in json.loads(body)["series"]) if status == 200 else 0
        rows.append(
            Row(
                "dashboard since=30d", http_times, local_times, len(body), f"{requests:,} req", None
            )
        )
    finally:
        server.close()
    return rows, statistics.median(floor)


@dataclass
class PageRun:
    """One load of the 5,000-span trace, in ms: from ``page.goto`` until its rows are drawn
    (wall), and in the page's clock from navigation start: the API request sent (the page and
    its modules loaded), its answer fully received, the tree laid out, the next frame drawn."""

    wall: float
    asked: float
    fetched: float
    laid_out: float
    drawn: float
    in_document: int


# The tree is laid out when its first rows are in the document and either every row is, or the
# pane scrolls over every row (a viewer that draws only the rows on screen): the page's clock
# then, else false.
_LAID_OUT = """(n) => {
  const rows = document.querySelectorAll("ROWS");
  if (!rows.length) return false;
  const pane = document.querySelector("[data-testid=span-pane]");
  const tall = pane !== null && pane.scrollHeight >= n * rows[0].offsetHeight;
  return rows.length >= n || tall ? performance.now() : false;
}""".replace("ROWS", ROW_SELECTOR)
_NEXT_FRAME = "() => new Promise((done) => requestAnimationFrame(() => done(performance.now())))"
_FETCH = """() => performance.getEntriesByType("resource")
  .filter((e) => e.name.includes("/api/traces/")).map((e) => [e.startTime, e.responseEnd])[0]
  ?? [NaN, NaN]"""
# Scrolled to the end: the index of the last row drawn (the tree holds every span).
_LAST_ROW = """async () => {
  const pane = document.querySelector("[data-testid=span-pane]");
  if (pane) pane.scrollTop = pane.scrollHeight;
  for (let i = 0; i < 3; i++) await new Promise((done) => requestAnimationFrame(done));
  const rows = [...document.querySelectorAll("ROWS")];
  return Math.max(...rows.map((row) => Number(row.dataset.index ?? -1)));
}""".replace("ROWS", ROW_SELECTOR)


def measure_page(path: Path, plan: Plan, runs: int = 3) -> list[PageRun] | str:
    """Each load of the 5,000-span trace in a fresh browser context (or why it was not)."""
    from clew.ui.api import STATIC

    if not (STATIC / "index.html").is_file():
        return f"not measured: {STATIC / 'index.html'} does not exist yet"
    if not Path(CHROMIUM).is_file():
        return f"not measured: no Chromium at {CHROMIUM}"
    from playwright.sync_api import sync_playwright

    server = Server(path)
    found: list[PageRun] = []
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(
                executable_path=CHROMIUM,
                args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
            )
            url = f"{server.url}/#/trace/{plan.big_trace}"
            for run in range(runs + 1):  # the first is a warm-up
                context = browser.new_context(viewport={"width": 1440, "height": 900})
                page = context.new_page()
                started = time.perf_counter()
                page.goto(url)
                try:
                    handle = page.wait_for_function(
                        _LAID_OUT, arg=BIG_SPANS, polling="raf", timeout=60_000
                    )
                except Exception as exc:
                    rows = page.locator(ROW_SELECTOR).count()
                    context.close()
                    return f"not measured: {rows} rows in the page after 60 s ({exc})"
                drawn = page.evaluate(_NEXT_FRAME)
                wall = (time.perf_counter() - started) * 1000
                laid_out = handle.json_value()
                asked, fetched = page.evaluate(_FETCH)
                in_document = page.locator(ROW_SELECTOR).count()
                last = page.evaluate(_LAST_ROW)
                context.close()
                if last != BIG_SPANS - 1:
                    return f"not measured: the last row is number {last + 1}, not {BIG_SPANS}"
                if run:
                    found.append(PageRun(wall, asked, fetched, laid_out, drawn, in_document))
            browser.close()
    finally:
        server.close()
    return found


# --- the report --------------------------------------------------------------------------------
def _mb(size: int) -> str:
    return f"{size / 1e6:,.1f} MB" if size >= 1e6 else f"{size / 1e3:,.1f} kB"


def _report(rows: list[Row], floor: float) -> None:
    print(f"\nloopback floor (a 404 from the app): p50 {floor:.2f} ms\n")
    print(
        "| query | one answer p50 ms | p95 ms | target (<200 ms) met? | answers to a page |"
        " page found ms | in-process, no budget, ms | traces in the page (first answer) |"
    )
    print("|---|---:|---:|---|---:|---:|---:|---:|")
    for row in rows:
        p50 = statistics.median(row.http)
        met = "—" if row.target is None else ("yes" if p50 < row.target else "**no**")
        whole = "—" if row.whole is None else f"{row.whole:,.0f}"
        print(
            f"| {row.name} | {p50:,.1f} | {_pct(row.http, 0.95):,.1f} | {met} | {row.requests} |"
            f" {whole} | {statistics.median(row.local):,.1f} | {row.found} ({_mb(row.size)}) |"
        )


def _report_page(runs: list[PageRun]) -> None:
    walls = [run.wall for run in runs]
    p50 = statistics.median(walls)
    print(
        f"\ntrace of {BIG_SPANS:,} spans on screen, {len(runs)} loads in fresh contexts"
        f" ({runs[0].in_document} row elements in the document):\n"
    )
    print("| measure | p50 ms | each run ms |")
    print("|---|---:|---|")
    for name, values in (
        ("`page.goto` to the rows drawn (wall)", walls),
        ("in page: API request sent", [run.asked for run in runs]),
        ("in page: API answer received", [run.fetched for run in runs]),
        ("in page: tree laid out", [run.laid_out for run in runs]),
        ("in page: next frame drawn", [run.drawn for run in runs]),
    ):
        shown = ", ".join(f"{v:,.0f}" for v in values)
        print(f"| {name} | {statistics.median(values):,.0f} | {shown} |")
    met = "yes" if p50 < PAGE_TARGET_MS else "**no**"
    print(f"\ntarget (on screen in <1 s at p50) met? {met}")


def _file_size(path: Path) -> int:
    return sum(p.stat().st_size for p in (path, Path(f"{path}-wal")) if p.is_file())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--traces", type=int, default=100_000)
    parser.add_argument("--spans-per-trace", type=int, default=10)
    parser.add_argument("--store", type=Path, help="reuse this filled store (made if missing)")
    parser.add_argument("--keep", action="store_true", help="keep the store this run made")
    parser.add_argument("--repeat", type=int, default=5, help="timed requests per query")
    parser.add_argument("--only", choices=["api", "page"], help="measure only the API or the page")
    args = parser.parse_args()
    if args.spans_per_trace < 4:
        parser.error("--spans-per-trace must be at least 4")
    path: Path = args.store or Path(f"ui-bench-{os.getpid()}.db").resolve()
    made = not path.is_file()
    try:
        if made:
            print(f"filling {path}: {args.traces:,} traces of {args.spans_per_trace} spans")
            plan = fill(path, args.traces, args.spans_per_trace)
        else:
            plan = Plan(**json.loads(Path(f"{path}.json").read_text()))
        age = (time.time() - plan.filled_at) / 3600
        print(
            f"store {path}: {plan.traces:,} traces, {plan.spans:,} spans, {_mb(_file_size(path))},"
            f" filled in {plan.fill_seconds:.0f} s, {age:.1f} h ago; python"
            f" {sys.version.split()[0]}, SQLite {__import__('sqlite3').sqlite_version},"
            f" {os.cpu_count()} cpus"
        )
        if age > 20:
            print("  (filled over 20 h ago: since=1d finds fewer traces than a fresh store)")
        if args.only != "page":
            rows, floor = measure_api(path, plan, args.repeat)
            _report(rows, floor)
        if args.only != "api":
            page = measure_page(path, plan)
            if isinstance(page, str):
                print(f"\ntrace of {BIG_SPANS:,} spans on screen: {page}")
            else:
                _report_page(page)
    finally:
        if made and not args.keep:
            for leftover in _leftovers(path):
                leftover.unlink(missing_ok=True)


def _leftovers(path: Path) -> Iterator[Path]:
    for suffix in ("", "-wal", "-shm", ".json"):
        yield Path(f"{path}{suffix}")


if __name__ == "__main__":
    main()
