"""A :class:`~properties.programs.Program` as Python source: what runs is what a failure shows.

The same source runs twice: with ``clew`` bound to clew, and with ``clew`` bound to an
undecorated stand-in (:mod:`properties.runner`). :func:`script` wraps it into a standalone
script, the reproduction a failing example prints.

Each node ``K`` of program ``P`` takes the input ``CANARY-IN-P-K!`` and produces output
containing ``CANARY-OUT-P-K!`` (a generator: each item it yields). A node's result is its
canary followed by a digest of its children's results, so the program's result depends on every
node while no node's output contains another node's canary. ``log(event, K)`` records what ran:
``call`` (the parent calls K), ``start`` (K's body starts), ``yield`` (a generator hands out an
item), ``release`` (its consumer is done with it, after closing it or before dropping it), and
how the body ended: ``ok``, ``error`` or ``closed`` (GeneratorExit).

The canaries are built when the program runs (``cin(K)``, ``cout(K)``), never written in its
source: an exception's stack trace (an OTLP span event) quotes source lines, and code is not
captured content.
"""

from __future__ import annotations

from properties.programs import HOPS, TRACED, TRACED_ASYNC, Node, Program, child_mode

PRELUDE = '''\
import asyncio
import hashlib
import threading
from concurrent.futures import ThreadPoolExecutor

LOG = []


class UserError(Exception):
    pass


def log(event, nid):
    LOG.append((event, nid))


def digest(results):
    return hashlib.sha256("|".join(results).encode()).hexdigest()[:12]


def cin(nid):
    return f"CANARY-IN-{PID}-{nid}!"


def cout(nid):
    return f"CANARY-OUT-{PID}-{nid}!"


class outcome:
    """Logs how a node's body ended: ok, error, or closed (GeneratorExit)."""

    def __init__(self, nid):
        self.nid = nid

    def __enter__(self):
        return self

    def __exit__(self, typ, exc, tb):
        if typ is None:
            log("ok", self.nid)
        elif issubclass(typ, GeneratorExit):
            log("closed", self.nid)
        else:
            log("error", self.nid)
        return False


def run_into(box, fn):
    try:
        box["result"] = fn()
    except BaseException as exc:
        box["error"] = exc


def unbox(box):
    if "error" in box:
        raise box["error"]
    return box["result"]
'''


def canary_in(pid: int, nid: int) -> str:
    """Node ``nid``'s input (the prelude's ``cin``)."""
    return f"CANARY-IN-{pid}-{nid}!"


def canary_out(pid: int, nid: int) -> str:
    """What node ``nid``'s output contains (the prelude's ``cout``)."""
    return f"CANARY-OUT-{pid}-{nid}!"


def span_name(pid: int, nid: int) -> str:
    return f"p{pid}-n{nid}"


def _options(node: Node) -> str:
    parts = []
    if node.rate is not None:
        parts.append(f"log_sample_rate={node.rate!r}")
    for flag in ("omit_inputs", "omit_outputs", "omit"):
        if getattr(node, flag):
            parts.append(f"log_{flag}=True")
    return "".join(f", {p}" for p in parts)


class _Writer:
    def __init__(self, program: Program, pid: int) -> None:
        self.pid = pid
        self.lines: list[str] = []
        self.modes: dict[int, str] = {}
        self._place(program.root, "free")

    def _place(self, node: Node, mode: str) -> None:
        self.modes[node.nid] = mode
        for child in node.children:
            self._place(child, child_mode(node.kind, mode))

    def emit(self, indent: int, *lines: str) -> None:
        self.lines.extend("    " * indent + line if line else "" for line in lines)

    def is_async_call(self, node: Node) -> bool:
        return node.kind in TRACED_ASYNC and self.modes[node.nid] == "async"

    # -- pieces of a body ------------------------------------------------------------------
    def children(self, node: Node, indent: int, after_each: list[str] | None = None) -> None:
        """Call the children in order, collecting their results in ``r``."""
        self.emit(indent, "r = []")
        for i, child in enumerate(node.children):
            call = f"call_n{child.nid}()"
            if self.is_async_call(child):
                call = "await " + call
            if node.catches:
                self.emit(indent, "try:")
                self.emit(indent + 1, f"r.append({call})")
                self.emit(indent, "except UserError as exc:")
                self.emit(indent + 1, 'r.append(f"caught {exc}")')
            else:
                self.emit(indent, f"r.append({call})")
            if after_each:
                self.emit(indent, *(line.format(i=i) for line in after_each))

    def boom(self, node: Node, indent: int) -> None:
        self.emit(indent, f'raise UserError("boom {self.pid}/{node.nid}")')

    def body(self, node: Node, indent: int, result: str) -> None:
        """``log start``, the children, then ``result = ...`` or the node's exception."""
        self.emit(indent, f'log("start", {node.nid})', f"with outcome({node.nid}):")
        self.children(node, indent + 1)
        if node.raises:
            self.boom(node, indent + 1)
        else:
            self.emit(indent + 1, result)

    def call_header(self, node: Node, is_async: bool) -> None:
        self.emit(0, f"{'async ' if is_async else ''}def call_n{node.nid}():")
        self.emit(1, f'log("call", {node.nid})')

    # -- one definition block per node -----------------------------------------------------
    def node(self, node: Node) -> None:
        getattr(self, "_" + node.kind)(node)
        self.emit(0, "", "")
        for child in node.children:
            self.node(child)

    def _decorator(self, node: Node) -> None:
        self.emit(0, f'@clew.trace(name="{span_name(self.pid, node.nid)}"{_options(node)})')

    def _out(self, node: Node) -> str:
        return f'cout({node.nid}) + "|" + digest(r)'

    def _fn(self, node: Node) -> None:
        is_async = node.kind == "afn"
        self._decorator(node)
        self.emit(0, f"{'async ' if is_async else ''}def n{node.nid}(x):")
        self.body(node, 1, f"return {self._out(node)}")
        self.emit(0, "", "")
        call = f"n{node.nid}(cin({node.nid}))"
        if not is_async:
            self.call_header(node, False)
            self.emit(1, f"return {call}")
        elif self.is_async_call(node):
            self.call_header(node, True)
            self.emit(1, f"return await {call}")
        else:
            self.call_header(node, False)
            self.emit(1, f"return asyncio.run({call})")

    _afn = _fn

    def _gen(self, node: Node) -> None:
        is_async = node.kind == "agen"
        self._decorator(node)
        self.emit(0, f"{'async ' if is_async else ''}def n{node.nid}(x):")
        self.emit(1, f'log("start", {node.nid})', f"with outcome({node.nid}):")
        yield_lines = [
            f'log("yield", {node.nid})',
            f'yield cout({node.nid}) + "{{i}}:" + digest(r)',
        ]
        self.children(node, 2, after_each=yield_lines)
        if node.raises:
            self.boom(node, 2)
            if not node.children:
                self.emit(2, f"yield  # never reached: keeps n{node.nid} a generator")
        else:
            self.emit(2, f'log("yield", {node.nid})', f'yield cout({node.nid}) + "end"')
        self.emit(0, "", "")
        self._consumer(node, is_async)

    _agen = _gen

    def _consumer(self, node: Node, is_async: bool) -> None:
        """Iterate the generator, break off after ``take`` items, then close or drop it."""
        needs_loop = is_async and not self.is_async_call(node)
        if needs_loop:
            self.call_header(node, False)
            self.emit(1, f"return asyncio.run(run_n{node.nid}())", "", "")
            self.emit(0, f"async def run_n{node.nid}():")
        else:
            self.call_header(node, is_async)
        prefix = "async " if is_async else ""
        self.emit(1, "items = []", f"gen = n{node.nid}(cin({node.nid}))")
        if node.take != 0:
            self.emit(1, f"{prefix}for item in gen:", "    items.append(item)")
            if node.take is not None:
                self.emit(2, f"if len(items) == {node.take}:", "    break")
        if node.close:
            self.emit(1, "await gen.aclose()" if is_async else "gen.close()")
        self.emit(1, f'log("release", {node.nid})', "del gen")
        if is_async and node.take is not None and not node.close:
            self.emit(1, "await asyncio.sleep(0)  # let the loop finalize the dropped generator")
        self.emit(1, 'return "items|" + digest(items)')

    def _span(self, node: Node) -> None:
        is_async = node.kind == "aspan"
        opener = "async with" if is_async else "with"
        name = span_name(self.pid, node.nid)
        inputs = f'{{"x": cin({node.nid})}}'
        if is_async and not self.is_async_call(node):
            self.call_header(node, False)
            self.emit(1, f"return asyncio.run(run_n{node.nid}())", "", "")
            self.emit(0, f"async def run_n{node.nid}():")
        else:
            self.call_header(node, is_async)
        self.emit(1, f'{opener} clew.span("{name}", inputs={inputs}{_options(node)}) as span:')
        self.body(node, 2, f"out = {self._out(node)}")
        if not node.raises:
            self.emit(2, "span.set_output(out)")
            self.emit(1, "return out")

    _aspan = _span

    def _hop(self, node: Node) -> None:
        self.emit(0, f"def n{node.nid}():")
        self.body(node, 1, 'return "hop|" + digest(r)')
        self.emit(0, "", "")
        self.call_header(node, False)
        fn = f"n{node.nid}"
        if node.kind == "pool":
            self.emit(
                1, "with clew.instrument_threads(), ThreadPoolExecutor(max_workers=1) as pool:"
            )
            self.emit(2, f"return pool.submit({fn}).result()")
            return
        self.emit(1, "box = {}")
        indent = 1
        if node.kind == "wrap":
            fn = f"clew.wrap({fn})"
        else:
            self.emit(1, "with clew.instrument_threads():")
            indent = 2
        self.emit(
            indent,
            f"thread = threading.Thread(target=run_into, args=(box, {fn}))",
            "thread.start()",
            "thread.join()",
        )
        self.emit(1, "return unbox(box)")

    _wrap = _pool = _thread = _hop


assert all(hasattr(_Writer, "_" + kind) for kind in TRACED + HOPS)


def program_source(program: Program, pid: int) -> str:
    """The definitions of ``program``'s nodes; ``call_n0()`` runs it."""
    writer = _Writer(program, pid)
    writer.node(program.root)
    return "\n".join(writer.lines).rstrip() + "\n"


def script(program: Program, pid: int) -> str:
    """A standalone script running ``program`` with clew (the reproduction of a failure)."""
    settings = f"sample_rate={program.sample_rate}"
    if not program.capture_content:
        settings += ", capture_content=False"
    return (
        f"import clew\n\n{PRELUDE}\n\nPID = {pid}\nclew.configure({settings})\n\n\n"
        f"{program_source(program, pid)}\n\nprint(call_n0())\n"
    )
