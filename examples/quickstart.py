"""A small traced pipeline: retrieval, a streamed draft, a threaded check, and the tree it made.

Run it with ``python examples/quickstart.py``; then ``clew traces`` and ``clew show <id>``
read the same local store (``.clew/traces.db``).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor

import clew

DOCS = {
    "otel": "OpenTelemetry is a vendor-neutral standard for traces, metrics and logs.",
    "clew": "clew turns an LLM app's calls into one trace tree on OpenTelemetry.",
    "sqlite": "SQLite keeps the traces in one local file.",
}


@clew.trace(tags=["retrieval"])
def retrieve(question: str, k: int = 2) -> list[str]:
    words = set(question.lower().split())
    ranked = sorted(DOCS, key=lambda key: -len(words & set(DOCS[key].lower().split())))
    return [DOCS[key] for key in ranked[:k]]


@clew.trace
def stream_draft(docs: list[str]) -> Iterator[str]:
    for doc in docs:
        yield doc.split(".")[0] + ". "


@clew.trace
def check_length(text: str) -> bool:
    return len(text) < 500


@clew.trace
async def polish(draft: str) -> AsyncIterator[str]:
    for sentence in draft.split(". "):
        await asyncio.sleep(0)
        if sentence:
            yield sentence.strip() + ". "


@clew.trace(
    name="answer",
    tags=["quickstart"],
    end_user_identifier="user-42",
    session_id="session-1",
    metadata={"pipeline": "v1"},
)
async def answer(question: str) -> str:
    with clew.span("plan") as plan:
        plan.set_output({"steps": ["retrieve", "draft", "check", "polish"]})
    docs = retrieve(question)
    draft = "".join(stream_draft(docs))
    with ThreadPoolExecutor(max_workers=2) as pool:  # clew.wrap carries the trace over
        ok = pool.submit(clew.wrap(check_length), draft).result()
    clew.trace_insert({"metadata": {"length_ok": ok}})
    return "".join([part async for part in polish(draft)])


def main() -> None:
    clew.configure(project="quickstart", exporter="sqlite,console")
    reply = asyncio.run(answer("what does clew do with opentelemetry traces?"))
    clew.flush()
    print(f"\nanswer: {reply}")
    print("look again with:  clew traces   and   clew show <root_trace_id>")


if __name__ == "__main__":
    main()
