"""Random programs: trees of traced functions, spans, generators and thread hops.

A :class:`Program` is data; :mod:`properties.source` turns it into Python source, and
:mod:`properties.runner` runs that source with clew and with an undecorated stand-in. Each node
gets an id in preorder (the root is 0). Where a node runs decides which kinds its children may
be (its *mode*):

- ``free``: synchronous code with no event loop running in the thread (the program's top, a
  thread's body). Every kind is allowed; an async child runs under ``asyncio.run``.
- ``async``: inside a coroutine. Every kind; async children are awaited.
- ``loop``: synchronous code called from a coroutine. Sync kinds and thread hops only (there is
  no way to run a coroutine from here without a second thread).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass

from hypothesis import strategies as st

TRACED_SYNC = ("fn", "span", "gen")
TRACED_ASYNC = ("afn", "aspan", "agen")
TRACED = TRACED_SYNC + TRACED_ASYNC
HOPS = ("wrap", "pool", "thread")
"""``clew.wrap(fn)`` in a Thread; ``instrument_threads()`` + ``ThreadPoolExecutor.submit``;
a plain Thread started under ``instrument_threads()``."""
GENERATORS = ("gen", "agen")

MAX_NODES = 10
MAX_DEPTH = 5
MAX_CHILDREN = 3


@dataclass(frozen=True)
class Node:
    """One step of a program; its body calls its children in order."""

    nid: int
    kind: str
    children: tuple[Node, ...] = ()
    rate: float | None = None  # log_sample_rate (traced kinds)
    omit_inputs: bool = False
    omit_outputs: bool = False
    omit: bool = False
    raises: bool = False  # raise UserError once the children ran
    catches: bool = False  # catch a UserError from each child
    take: int | None = None  # generators: items consumed before breaking off (None: all)
    close: bool = False  # generators broken off: close() them (else they are dropped)

    @property
    def traced(self) -> bool:
        return self.kind in TRACED

    def items(self) -> int:
        """How many items a generator node yields when nothing raises."""
        return len(self.children) + 1


@dataclass(frozen=True)
class Program:
    """A tree of nodes and the settings it runs under."""

    root: Node
    sample_rate: float = 1.0  # clew.configure(sample_rate=...)
    capture_content: bool = True  # clew.configure(capture_content=...)

    def nodes(self) -> Iterator[Node]:
        """Every node, in preorder."""
        stack = [self.root]
        while stack:
            node = stack.pop()
            yield node
            stack.extend(reversed(node.children))

    def traced_parents(self) -> dict[int, Node | None]:
        """Each traced node's nearest traced ancestor (None for the root)."""
        parents: dict[int, Node | None] = {}

        def walk(node: Node, traced_parent: Node | None) -> None:
            if node.traced:
                parents[node.nid] = traced_parent
                traced_parent = node
            for child in node.children:
                walk(child, traced_parent)

        walk(self.root, None)
        return parents

    def chain(self, node: Node) -> list[Node]:
        """The traced ancestors of ``node`` from the root, and ``node`` itself."""
        parents = self.traced_parents()
        found: list[Node] = []
        current: Node | None = node
        while current is not None:
            found.append(current)
            current = parents[current.nid]
        return found[::-1]


def child_mode(kind: str, mode: str) -> str:
    """The mode of the children of a ``kind`` node that runs in ``mode``."""
    if kind in HOPS:
        return "free"
    if kind in TRACED_ASYNC:
        return "async"
    return "loop" if mode in ("async", "loop") else "free"


def kinds_in(mode: str) -> tuple[str, ...]:
    """The node kinds that may run in ``mode`` (simplest first, for shrinking)."""
    if mode == "loop":
        return TRACED_SYNC + HOPS
    return TRACED + HOPS


def _chance(percent: int) -> st.SearchStrategy[bool]:
    """True about ``percent`` % of the time; shrinks to False."""
    return st.sampled_from([False] * (100 - percent) + [True] * percent)


_RATES = st.sampled_from((None, None, None, 1.0, 0.0, 0.5))  # 0.5 last: repros are exact


@st.composite
def programs(draw: st.DrawFn, max_nodes: int = MAX_NODES) -> Program:
    """Random programs of up to ``max_nodes`` nodes whose root is traced."""
    ids = itertools.count()
    room = [max_nodes - 1]

    def node(kinds: tuple[str, ...], mode: str, depth: int) -> Node:
        nid = next(ids)
        kind = draw(st.sampled_from(kinds))
        inner = child_mode(kind, mode)
        children: list[Node] = []
        wanted = draw(st.integers(0, MAX_CHILDREN)) if depth < MAX_DEPTH else 0
        for _ in range(wanted):
            if room[0] == 0:
                break
            room[0] -= 1
            children.append(node(kinds_in(inner), inner, depth + 1))
        traced = kind in TRACED
        take = None
        close = False
        if kind in GENERATORS:
            take = draw(st.none() | st.integers(0, len(children) + 1))
            close = take is not None and draw(st.booleans())
        return Node(
            nid=nid,
            kind=kind,
            children=tuple(children),
            rate=draw(_RATES) if traced else None,
            omit_inputs=traced and draw(_chance(15)),
            omit_outputs=traced and draw(_chance(15)),
            omit=traced and draw(_chance(10)),
            raises=draw(_chance(15)),
            catches=bool(children) and draw(_chance(30)),
            take=take,
            close=close,
        )

    root = node(TRACED, "free", 0)
    return Program(
        root=root,
        sample_rate=draw(st.sampled_from((1.0, 0.0, 0.5))),
        capture_content=draw(st.sampled_from((True, True, True, False))),
    )


REPORTED_CRASH = Program(
    root=Node(0, "fn", children=(Node(1, "span"),)),
    sample_rate=0.0,
)
"""The program of the bug report: a span inside a traced function, with sample_rate 0."""
