"""``clew ui``'s server: the viewer's page and its JSON API over the local trace store.

Read-only: every route reads the store (SQLite, while applications keep writing to it) and the
experiment and dataset tables beside it. The page (``static/``) renders every value as text;
the server forbids inline script with a Content-Security-Policy on every response. Off
loopback, a token is required: ``Authorization: Bearer <token>``, or the cookie that
``/?token=<token>`` sets (so a browser can open the viewer from a link).

Routes (OpenAPI at ``/docs``):

- ``GET /api/traces``: a page of the trace list, newest first, filtered (``q``, ``status``,
  ``tag``, ``user``, ``session``, ``model``, ``project``, ``score``, ``since``), with the
  cursor of the next page (a search of about :data:`SEARCH_BUDGET` seconds may answer a
  ``partial`` page, and its cursor goes on with the search);
- ``GET /api/traces/{id}``: every span record of a trace;
- ``GET /api/sessions/{id}``: the traces of a session as a conversation, oldest first;
- ``GET /api/dashboard``: requests, errors, latency, tokens and cost over a time range;
- ``GET /api/experiments``, ``/api/experiments/{name or id}``, ``/api/compare?a=&b=``;
- ``GET /api/datasets``, ``/api/datasets/{name}``.
"""

from __future__ import annotations

import hmac
import time
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from fastapi import FastAPI, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse, Response
from pydantic_core import to_json

from clew import __version__
from clew.cli.common import since as parse_since
from clew.errors import StoreError
from clew.log_record import iso_timestamp
from clew.store import dashboard
from clew.store.queries import TraceFilter, TracePage, Window
from clew.store.sqlite import TraceStore

__all__ = ["CSP", "create_app"]

STATIC = Path(__file__).parent / "static"

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:;"
    " connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
"""No inline script or style, nothing from elsewhere: content shown as text cannot run."""

_COOKIE = "clew_ui_token"
_MAX_PAGE = 200
SEARCH_BUDGET = 0.08
"""Seconds a request searches the trace list for, about (a rare filter over a large store
takes several requests: the page goes on from where the last stopped)."""


def _refused(status: int, message: str) -> HTTPException:
    """An API error, answered as ``{"error": {"message"}}`` with ``status``."""
    return HTTPException(status, message)


def _ns(moment: datetime) -> int:
    return round(moment.timestamp() * 1e6) * 1000


def _since_ns(text: str | None, default: timedelta | None = None) -> int | None:
    if not text:
        return None if default is None else _ns(datetime.now(UTC) - default)
    try:
        found = parse_since(text)
    except Exception:
        raise _refused(400, f"since: expected 30m, 12h, 7d or an ISO time, got {text!r}") from None
    moment = datetime.now(UTC) - found if isinstance(found, timedelta) else found.astimezone()
    return _ns(moment)


def _cursor(text: str | None) -> tuple[int, str] | None:
    if not text:
        return None
    start, colon, root = text.partition(":")  # no root: a partial page's (see TracePage)
    if not start.isdigit() or not colon:
        raise _refused(400, "cursor: give back the `next` of the previous page")
    return int(start), root


def _score(text: str | None) -> tuple[str, str | None, float | None] | None:
    if not text:
        return None
    from clew.cli.traces import score_filter

    try:
        return score_filter(text)
    except Exception as exc:
        raise _refused(400, f"score: {exc}") from None


def create_app(
    store: Path, token: str | None = None, search_budget: float | None = None
) -> FastAPI:
    """The viewer's ASGI app over the store file ``store``.

    Args:
        token: when given, every request must carry it (see the module's docstring).
        search_budget: seconds a request searches the trace list for (:data:`SEARCH_BUDGET`).
    """
    budget = SEARCH_BUDGET if search_budget is None else search_budget
    app = FastAPI(title="clew ui", version=__version__, docs_url="/docs", redoc_url=None)
    traces = TraceStore(store)

    @app.middleware("http")
    async def guard(request: Request, call_next: Any) -> Response:
        if token is not None and not _allowed(request, token):
            if request.url.path == "/" and request.query_params.get("token") == token:
                answer: Response = RedirectResponse("/")
                answer.set_cookie(_COOKIE, token, httponly=True, samesite="strict")
            else:
                answer = JSONResponse(
                    {"error": {"message": "a token is required: open /?token=... once"}},
                    status_code=401,
                )
        else:
            try:
                answer = await call_next(request)
            except StoreError as exc:
                answer = JSONResponse({"error": {"message": str(exc)}}, 404)
        if not request.url.path.startswith("/docs") and request.url.path != "/openapi.json":
            answer.headers["content-security-policy"] = CSP
        answer.headers["x-content-type-options"] = "nosniff"
        answer.headers["referrer-policy"] = "no-referrer"
        return answer

    @app.exception_handler(HTTPException)
    async def refused(request: Request, exc: HTTPException) -> JSONResponse:
        return JSONResponse({"error": {"message": exc.detail}}, exc.status_code)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first.get("loc", ()))
        return JSONResponse({"error": {"message": f"{where}: {first.get('msg')}"}}, 400)

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(STATIC / "index.html", headers={"cache-control": "no-cache"})

    @app.get("/static/{name}", include_in_schema=False)
    async def asset(name: str) -> FileResponse:
        path = (STATIC / name).resolve()
        if path.parent != STATIC.resolve() or not path.is_file():
            raise _refused(404, f"no file {name!r}")
        return FileResponse(path, headers={"cache-control": "no-cache"})

    @app.get("/api/traces")
    def list_traces(
        limit: int = Query(50, ge=1, le=_MAX_PAGE),
        cursor: str | None = None,
        q: str | None = None,
        status: str | None = Query(None, pattern="^(error|success)$"),
        tag: str | None = None,
        user: str | None = None,
        session: str | None = None,
        model: str | None = None,
        project: str | None = None,
        score: str | None = None,
        since: str | None = None,
    ) -> dict[str, Any]:
        """A page of traces, newest first; ``next`` is the cursor of the following page.

        A search stops after about :data:`SEARCH_BUDGET` seconds: a page with fewer traces
        than ``limit`` and a ``next`` is ``partial``, searched back to ``searched_to``; its
        ``next`` goes on from there.
        """
        found = _quiet(
            lambda: traces.trace_page(
                limit=limit,
                tag=tag or None,
                user=user or None,
                session=session or None,
                status=status,
                score=_score(score),
                extra=TraceFilter(project or None, model or None, q or None),
                window=Window(_since_ns(since), _cursor(cursor)),
                budget=budget,
            ),
            TracePage([], None),
        )
        after = found.next
        return {
            "traces": found.traces,
            "next": None if after is None else f"{after[0]}:{after[1]}",
            "partial": found.partial,
            "searched_to": iso_timestamp(after[0]) if found.partial and after else None,
        }

    @app.get("/api/traces/{root_trace_id}", response_class=Response)
    def get_trace(root_trace_id: str) -> Response:
        """Every span of a trace, in start order (a 404 when the store has no such trace):
        ``{"root_trace_id", "spans"}``, each span a record as ``clew show --json`` prints it."""
        # A trace of thousands of spans is megabytes: pydantic-core writes it directly, rather
        # than FastAPI's encoder (26 ms against 760 ms for a trace of 5,000 spans).
        body = {"root_trace_id": root_trace_id, "spans": traces.get_trace(root_trace_id)}
        return Response(
            to_json(body, fallback=str, inf_nan_mode="null"), media_type="application/json"
        )

    @app.get("/api/sessions/{session_id}")
    def get_session(session_id: str, limit: int = Query(200, ge=1, le=1000)) -> dict[str, Any]:
        """A session's traces, oldest first, each with its root's inputs and output."""
        found = _quiet(lambda: traces.list_traces(limit=limit, session=session_id), [])
        turns = []
        for summary in reversed(found):
            spans = traces.get_trace(summary["root_trace_id"])
            root = next((s for s in spans if s["parent_trace_id"] is None), spans[0])
            turns.append(
                {
                    **{k: summary[k] for k in ("root_trace_id", "name", "start_timestamp")},
                    **{k: summary[k] for k in ("status", "latency")},
                    "inputs": root["inputs"],
                    "output": root["output"],
                }
            )
        return {"session_id": session_id, "traces": turns}

    @app.get("/api/dashboard")
    def get_dashboard(
        since: str = "24h", until: str | None = None, buckets: int = Query(24, ge=1, le=500)
    ) -> dict[str, Any]:
        """Requests, errors, latency, tokens and cost over time, by model and project."""
        start = _since_ns(since, timedelta(hours=24)) or 0
        end = _since_ns(until) if until else time.time_ns()
        if end is None or end <= start:
            raise _refused(400, "until must come after since")
        return dashboard.dashboard(store, start, end, buckets)

    @app.get("/api/experiments")
    def list_experiments() -> dict[str, Any]:
        """Every experiment run, newest first, without its rows."""
        from clew.evals import results

        return {"experiments": [run.to_dict() for run in results.list(store=store)]}

    @app.get("/api/experiments/{name_or_id}")
    def get_experiment(name_or_id: str) -> dict[str, Any]:
        """One run with its rows: the latest of a name, or the run whose id starts so."""
        from clew.evals import results

        return results.load(name_or_id, store=store).to_dict()

    @app.get("/api/compare")
    def compare_runs(a: str, b: str) -> dict[str, Any]:
        """Run ``b`` against run ``a``: per eval, and the rows that got worse first."""
        from clew.evals import results
        from clew.evals.compare import compare

        found = compare(results.load(a, store=store), results.load(b, store=store))
        return {
            "a": {"name": found.a.name, "uuid": found.a.uuid},
            "b": {"name": found.b.name, "uuid": found.b.uuid},
            "evals": [{**asdict(e), "significant": e.significant} for e in found.evals],
            "rows": [asdict(row) for row in found.rows],
        }

    @app.get("/api/datasets")
    def list_datasets() -> dict[str, Any]:
        """Every dataset with its latest version."""
        from clew.evals import datasets

        return {"datasets": [asdict(d) for d in datasets.list(store=store)]}

    @app.get("/api/datasets/{name}")
    def get_dataset(name: str, version: int | None = Query(None, ge=1)) -> dict[str, Any]:
        """One version of a dataset (the latest by default) with its rows."""
        from clew.evals import datasets

        found = datasets.get(name, version, store=store)
        rows = [{"index": i, **asdict(row)} for i, row in enumerate(found.rows)]
        return {
            "name": found.name,
            "version": found.version,
            "created": found.created,
            "rows": rows,
        }

    return app


def _allowed(request: Request, token: str) -> bool:
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer":
        given = request.cookies.get(_COOKIE, "")
    return bool(given) and hmac.compare_digest(given.encode(), token.encode())


def _quiet(read: Any, empty: Any) -> Any:
    """``read()``, or ``empty`` while the store does not exist yet (nothing traced so far)."""
    try:
        return read()
    except StoreError as exc:
        if "no trace store" in str(exc):
            return empty
        raise
