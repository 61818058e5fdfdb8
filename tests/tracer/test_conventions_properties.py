"""What always holds of the extra conventions, over random trees of traced functions and blocks
(kinds, tags, metadata, users and sessions, omit rules, LLM calls) under every switch setting:
omitted content appears under no key, every copy equals clew's own key, the kind is right."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from openai import OpenAI
from opentelemetry.sdk.trace import ReadableSpan

import clew
from clew import attributes as a
from clew.testing import capture_spans
from clew.tracer.conventions import SPAN_KINDS

LANGFUSE_TYPES = {"llm": "generation", "reranker": "span", "prompt": "span"}
SWITCHES = {"all": 3, "genai": 0, "openinference": 1, "langfuse": 2}


@dataclass
class Node:
    via: str  # "trace" or "span"
    kind: str | None
    tags: list[str] | None
    metadata: dict[str, Any] | None
    user: str | None
    session: str | None
    omit: str  # "", "inputs", "outputs" or "both"
    set_output: bool  # set_output() rather than a return value
    llm: bool  # calls the LLM inside
    children: list[Node] = field(default_factory=list)
    id: int = 0


@st.composite
def nodes(draw: st.DrawFn, depth: int = 0) -> Node:
    return Node(
        via=draw(st.sampled_from(["trace", "span"])),
        kind=draw(st.none() | st.sampled_from(SPAN_KINDS)),
        tags=draw(st.none() | st.lists(st.sampled_from(["a", "b"]), min_size=1, max_size=2)),
        metadata=draw(
            st.none()
            | st.dictionaries(
                st.sampled_from(["k", "n"]),
                st.integers(0, 9) | st.sampled_from(["x", "y"]),
                min_size=1,
            )
        ),
        user=draw(st.none() | st.sampled_from(["u1", "u2"])),
        session=draw(st.none() | st.sampled_from(["s1", "s2"])),
        omit=draw(st.sampled_from(["", "inputs", "outputs", "both"])),
        set_output=draw(st.booleans()),
        llm=draw(st.booleans()),
        children=draw(st.lists(nodes(depth + 1), max_size=2)) if depth < 2 else [],
    )


def _number(node: Node, counter: list[int]) -> list[Node]:
    node.id = counter[0]
    counter[0] += 1
    found = [node]
    for child in node.children:
        found += _number(child, counter)
    return found


def cin(node: Node) -> str:
    return f"CIN{node.id}!"


def cout(node: Node) -> str:
    return f"COUT{node.id}!"


def cllm(node: Node) -> str:
    return f"CLLM{node.id}!"


def _options(node: Node) -> dict[str, Any]:
    options: dict[str, Any] = {
        "kind": node.kind,
        "tags": node.tags,
        "metadata": node.metadata,
        "end_user_identifier": node.user,
        "session_id": node.session,
    }
    if node.omit == "both":
        options["log_omit"] = True
    elif node.omit:
        options[f"log_omit_{node.omit}"] = True
    return options


def run(node: Node, client: OpenAI) -> None:
    def body() -> None:
        for child in node.children:
            run(child, client)
        if node.llm:  # the fake server echoes the prompt's first six words only
            words = f"one two three four five six {cllm(node)}"
            client.chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": words}]
            )

    if node.via == "trace":

        @clew.trace(name=f"n{node.id}", **_options(node))
        def traced(text: str) -> str | None:
            body()
            if node.set_output:
                span = clew.current_span()
                assert span is not None
                span.set_output(cout(node))
                return None
            return cout(node)

        traced(cin(node))
    else:
        with clew.span(f"n{node.id}", inputs={"text": cin(node)}, **_options(node)) as s:
            body()
            s.set_output(cout(node))


@dataclass
class Expected:
    omit_inputs: bool
    omit_outputs: bool
    user: str | None
    session: str | None


def _expectations(node: Node, up: Expected | None, into: dict[int, Expected]) -> None:
    mine = Expected(
        omit_inputs=(up is not None and up.omit_inputs) or node.omit in ("inputs", "both"),
        omit_outputs=(up is not None and up.omit_outputs) or node.omit in ("outputs", "both"),
        user=node.user if node.user is not None else (up.user if up else None),
        session=node.session if node.session is not None else (up.session if up else None),
    )
    into[node.id] = mine
    for child in node.children:
        _expectations(child, mine, into)


def _kind_of(span: ReadableSpan, by_id: dict[int, Node]) -> str:
    if span.name.startswith("chat "):
        return "llm"
    return by_id[int(span.name[1:])].kind or "chain"


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _langfuse_type(kind: str, given: bool) -> str:
    if not given:
        return "span"
    return LANGFUSE_TYPES.get(kind, kind)


@settings(max_examples=120)
@given(tree=nodes(), switch=st.sampled_from(sorted(SWITCHES)))
def test_what_always_holds(tree: Node, switch: str, client: OpenAI) -> None:
    all_nodes = _number(tree, [0])
    by_id = {n.id: n for n in all_nodes}
    expected: dict[int, Expected] = {}
    _expectations(tree, None, expected)
    chosen = SWITCHES[switch]
    clew.configure(otel_conventions=switch)
    try:
        with capture_spans() as captured:
            run(tree, client)
    finally:
        clew.configure(otel_conventions="all")
    spans = captured.spans
    names = {span.context.span_id: span.name for span in spans if span.context is not None}
    everything = json.dumps([{k: str(v) for k, v in (s.attributes or {}).items()} for s in spans])

    for node in all_nodes:  # omitted content is nowhere, under any key
        if expected[node.id].omit_inputs:
            assert cin(node) not in everything
            assert cllm(node) not in everything
        else:
            assert cin(node) in everything
        if expected[node.id].omit_outputs:
            assert cout(node) not in everything

    for span in spans:
        attrs = dict(span.attributes or {})
        llm = span.name.startswith("chat ")
        owner_name = names[span.parent.span_id] if llm and span.parent else span.name
        owner = by_id[int(owner_name[1:])]
        want = expected[owner.id]
        kind = _kind_of(span, by_id)
        if not chosen:  # only the GenAI conventions' keys (gen_ai, openai, server) and clew's
            genai = ("clew.", "gen_ai.", "openai.", "server.")
            assert all(k.startswith(genai) for k in attrs), attrs
        else:
            inputs = attrs.get(a.CLEW_INPUTS, attrs.get(a.GEN_AI_INPUT_MESSAGES))
            outputs = attrs.get(a.CLEW_OUTPUT, attrs.get(a.GEN_AI_OUTPUT_MESSAGES))
            assert attrs.get(a.INPUT_VALUE) == inputs
            assert attrs.get(a.OUTPUT_VALUE) == outputs
            assert (a.INPUT_MIME_TYPE in attrs) == (inputs is not None)
            assert (a.OUTPUT_MIME_TYPE in attrs) == (outputs is not None)
            assert attrs.get(a.USER_ID) == want.user
            assert attrs.get(a.SESSION_ID) == want.session
        if chosen & 1:
            assert attrs[a.OPENINFERENCE_SPAN_KIND] == kind.upper()
            assert attrs.get(a.TAG_TAGS) == attrs.get(a.CLEW_TAGS)
            assert attrs.get(a.METADATA) == attrs.get(a.CLEW_METADATA)
        else:
            assert not any(k.startswith(("openinference.", "tag.", "metadata")) for k in attrs)
        if chosen & 2:
            given_kind = llm or owner.kind is not None
            assert attrs[a.LANGFUSE_OBSERVATION_TYPE] == _langfuse_type(kind, given_kind)
            assert attrs.get(a.LANGFUSE_TRACE_TAGS) == attrs.get(a.CLEW_TAGS)
            prefix = a.LANGFUSE_OBSERVATION_METADATA
            copied = {k[len(prefix) :]: v for k, v in attrs.items() if k.startswith(prefix)}
            metadata = json.loads(attrs.get(a.CLEW_METADATA, "{}"))
            assert copied == {
                k: v if isinstance(v, str) else json.dumps(v) for k, v in metadata.items()
            }
        else:
            assert not any(k.startswith("langfuse.") for k in attrs)
        if llm:
            assert attrs.get(a.GEN_AI_CONVERSATION_ID) == want.session
        elif a.CLEW_KIND in attrs or owner.kind is not None:
            assert attrs[a.CLEW_KIND] == owner.kind
