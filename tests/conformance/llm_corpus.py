"""The LLM spans that the recorded provider calls make, each beside what its call said.

Every interaction of every cassette in ``shared/fixtures/cassettes`` (``INDEX.tsv``) is replayed
through the real ``openai`` / ``anthropic`` SDK against a :class:`ReplayServer`, instrumented by
clew; every recorded stream is replayed twice more, cut short: once the client reads one chunk
and lets go, once the connection drops after the first event.

Run as a script, it prints how many spans conform and why the others do not::

    python tests/conformance/llm_corpus.py
"""

from __future__ import annotations

import re
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

if __name__ == "__main__":  # as a script: the tests directory is where pytest finds helpers
    sys.path[:0] = [str(Path(__file__).resolve().parents[1]), str(Path(__file__).parent)]

from genai_semconv import Call, violations

from clew.providers import instrument_anthropic, instrument_openai
from clew.testing import capture_spans
from clew.testing.cassettes import Interaction, fixtures_dir, load_cassette
from clew.testing.llm_server import ReplayServer
from replay_clients import cassette_rows, replay, replay_client, sse_json

__all__ = ["Cut", "Traced", "cassette_spans", "cut_stream_spans", "recorded_streams", "report"]

CASSETTES = fixtures_dir() / "cassettes"

Cut = Literal["client", "server"]
"""How a stream is cut short: the client stops reading, or the server drops the connection."""


@dataclass(frozen=True)
class Traced:
    """One LLM span and the call it recorded.

    Attributes:
        label: where it came from (cassette path and interaction number).
        name: the span's name.
        kind: the span's kind (``CLIENT`` ...).
        attributes: the span's attributes.
        call: what the recorded call said.
    """

    label: str
    name: str
    kind: str
    attributes: dict[str, Any]
    call: Call

    def violations(self) -> list[str]:
        """How the span falls short of the conventions."""
        return violations(self.attributes, self.call, name=self.name, kind=self.kind)


def call_of(interaction: Interaction, cut: Cut | None = None) -> Call:
    """What a recorded call said, as far as the client read it."""
    request = interaction.request_json()
    stream = bool(request.get("stream"))
    received: list[dict[str, Any]]
    if stream and interaction.status == 200:
        received = sse_json(interaction)[: 1 if cut else None]
    else:
        try:
            body = interaction.response_json()
        except ValueError:
            body = None
        received = [body] if isinstance(body, dict) else []
    return Call(
        route=interaction.route,
        request=request,
        received=received,
        stream=stream,
        cut=cut is not None,
        failed=interaction.status >= 400 or cut == "server",
    )


def _llm_spans(spans: list[Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (s.name, s.kind.name, dict(s.attributes or {}))
        for s in spans
        if "gen_ai.operation.name" in (s.attributes or {})
    ]


def cassette_spans(row: dict[str, str]) -> list[Traced]:
    """The spans of one cassette's interactions, replayed in order (recorded errors raise)."""
    path = CASSETTES / row["path"]
    interactions = load_cassette(path)
    traced = [(n, i) for n, i in enumerate(interactions) if i.route != "/v1/complete"]
    with (
        instrument_openai(),
        instrument_anthropic(),
        capture_spans() as captured,
        ReplayServer(path) as server,
        replay_client(row["provider"], server, interactions[0].uri, as_recorded=True) as client,
    ):
        for interaction in interactions:
            try:
                replay(client, row["provider"], interaction)
            except Exception:
                if interaction.status < 400:
                    raise
    spans = _llm_spans(captured.spans)
    assert len(spans) == len(traced), (row["path"], [s[0] for s in spans])
    return [
        Traced(f"{row['path']}#{number}", name, kind, attrs, call_of(interaction))
        for (number, interaction), (name, kind, attrs) in zip(traced, spans, strict=True)
    ]


def recorded_streams() -> Iterator[tuple[str, str, Interaction]]:
    """``(label, provider, interaction)`` of every recorded stream that succeeded."""
    for row in cassette_rows():
        for number, interaction in enumerate(load_cassette(CASSETTES / row["path"])):
            if interaction.is_stream and interaction.status == 200:
                yield f"{row['path']}#{number}", row["provider"], interaction


def cut_stream_spans(label: str, provider: str, interaction: Interaction, cut: Cut) -> Traced:
    """The span of one recorded stream cut short."""
    with (
        instrument_openai(),
        instrument_anthropic(),
        capture_spans() as captured,
        ReplayServer([interaction]) as server,
        replay_client(provider, server, interaction.uri, as_recorded=True) as client,
    ):
        if cut == "server":
            server.break_next_stream(after=1, mode="close")
            try:
                replay(client, provider, interaction)
            except Exception:
                pass  # the broken connection reaches the caller, as it should
            else:
                raise AssertionError(f"{label}: the stream did not break")
        else:
            replay(client, provider, interaction, cut=True)
    ((name, kind, attrs),) = _llm_spans(captured.spans)
    return Traced(f"{label} (cut: {cut})", name, kind, attrs, call_of(interaction, cut))


def corpus() -> Iterator[Traced]:
    """Every span: each cassette replayed, then each stream cut both ways."""
    for row in cassette_rows():
        yield from cassette_spans(row)
    for label, provider, interaction in recorded_streams():
        for cut in ("client", "server"):
            yield cut_stream_spans(label, provider, interaction, cut)


_DETAIL = re.compile(r"'[^']*'|\"[^\"]*\"|\[[^\]]*\]|\b[\w-]*\d[\w-]*\b")


def reason(problem: str) -> str:
    """A violation without its particulars (values, ids), to count alike ones together."""
    key, _, detail = problem.partition(": ")
    if detail.startswith("schema:"):
        return f"{key}: fails its JSON schema"
    return f"{key}: {_DETAIL.sub('…', detail)}"


def report() -> str:
    """How many spans of the corpus conform, and the reasons of the others, with counts."""
    spans = list(corpus())
    reasons: Counter[str] = Counter()
    failing = 0
    for traced in spans:
        found = {reason(p) for p in traced.violations()}
        failing += bool(found)
        reasons.update(found)
    lines = [f"{len(spans) - failing} of {len(spans)} LLM spans conform"]
    lines += [f"{count:5d}  {text}" for text, count in reasons.most_common()]
    return "\n".join(lines)


if __name__ == "__main__":
    import warnings

    warnings.simplefilter("ignore", DeprecationWarning)  # recorded models the SDK calls old
    print(report())
