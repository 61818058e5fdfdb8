"""The architecture DESIGN §2 states, checked on the source: dependencies point one way, no
import cycles, one module reads the environment, every exception type lives in errors.py, a
failure inside clew takes one path, and modules stay a readable size."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "clew"


def _module_name(path: Path) -> str:
    parts = path.relative_to(SRC).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _trees() -> Iterator[tuple[str, Path, ast.Module]]:
    for name, path in MODULES.items():
        yield name, path, ast.parse(path.read_text(), str(path))


def _imports(name: str, tree: ast.Module) -> set[str]:
    """The clew modules ``name`` imports, anywhere in it (``from clew import x`` counts as
    ``clew.x`` when that is a module)."""
    found: set[str] = set()
    package = name if MODULES[name].name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return {m for m in found if m in MODULES and m != name and m != "clew"}


GRAPH = {name: _imports(name, tree) for name, _, tree in _trees()}


def _layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "clew"


# What each part may import (besides itself), as DESIGN §2 has it: the tracer knows nothing of
# providers or exporters; exporters and the store depend only on the shared vocabulary
# (attributes, errors, the log record); one setup module wires configuration, tracer and
# exporters together; the CLI, the demo and the test helpers sit on top.
VOCABULARY = {"attributes", "errors", "log_record"}
ALLOWED = {
    "attributes": set(),
    "errors": set(),
    "log_record": {"attributes"},
    "environment": set(),
    "config": {"environment", "errors"},
    "render": {"attributes"},
    "tracer": VOCABULARY,
    "store": VOCABULARY,
    "exporters": VOCABULARY | {"render", "store"},
    "providers": VOCABULARY | {"tracer"},
    "setup": VOCABULARY | {"config", "exporters", "tracer"},
    "gateway": VOCABULARY | {"config", "providers", "setup", "store", "tracer"},
    "evals": VOCABULARY | {"config", "gateway", "providers", "setup", "store", "tracer"},
}


def test_dependencies_point_one_way() -> None:
    wrong = [
        f"{module} imports {imported}"
        for module, imports in GRAPH.items()
        if _layer(module) in ALLOWED
        for imported in sorted(imports)
        if _layer(imported) != _layer(module) and _layer(imported) not in ALLOWED[_layer(module)]
    ]
    assert wrong == []


def test_no_import_cycles() -> None:
    cycles: list[list[str]] = []
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(module: str, path: list[str]) -> None:
        state[module] = 1
        for imported in sorted(GRAPH[module]):
            if imported.startswith(module + "."):
                continue  # a package importing its own submodules is not a cycle
            if state.get(imported) == 1:
                cycles.append([*path[path.index(imported) :], imported])
            elif imported not in state:
                visit(imported, [*path, imported])
        state[module] = 2

    for module in sorted(GRAPH):
        if module not in state:
            visit(module, [module])
    # clew/__init__.py re-exports the public API: submodules importing `clew` itself are not
    # edges (see _imports), so any cycle found here is a real one.
    assert cycles == []


def test_only_the_environment_module_reads_environment_variables() -> None:
    readers = []
    for name, _, tree in _trees():
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Attribute)
                and node.attr in ("environ", "getenv")
                and isinstance(node.value, ast.Name)
                and node.value.id == "os"
            ):
                readers.append(name)
    assert sorted(set(readers)) == ["clew.config"]  # it hands os.environ to clew.environment


def test_every_exception_type_lives_in_errors() -> None:
    elsewhere = [
        f"{name}.{node.name}"
        for name, _, tree in _trees()
        if name != "clew.errors"
        for node in ast.walk(tree)
        if isinstance(node, ast.ClassDef)
        and any(
            isinstance(base, ast.Name) and re.search(r"(Exception|Error)$", base.id)
            for base in node.bases
        )
    ]
    assert elsewhere == []


def _handler_text(path: Path, handler: ast.ExceptHandler) -> str:
    lines = path.read_text().splitlines()
    return lines[handler.lineno - 1]


def _calls(node: ast.AST, names: set[str]) -> bool:
    return any(
        isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id in names
        for n in ast.walk(node)
    )


@pytest.mark.parametrize("part", ["tracer", "providers", "exporters", "store", "setup"])
def test_a_failure_inside_clew_takes_the_one_path(part: str) -> None:
    """On the instrumentation and export paths, a handler of every exception either re-raises
    (often translated into a clew error), hands the failure to ``internal_error``, or says on
    its ``except`` line whose failure it handles (``# foreign: ...``)."""
    silent = []
    for name, path, tree in _trees():
        if _layer(name) != part:
            continue
        for node in ast.walk(tree):
            if not isinstance(node, ast.ExceptHandler) or node.type is None:
                continue
            caught = ast.unparse(node.type)
            if caught not in ("Exception", "BaseException"):
                continue
            handled = (
                any(isinstance(n, ast.Raise) for n in ast.walk(node))
                or _calls(node, {"internal_error", "reraise_internal"})
                or "# foreign:" in _handler_text(path, node)
            )
            if not handled:
                silent.append(f"{path.relative_to(SRC)}:{node.lineno}")
    assert silent == []


def test_one_logger_per_module_named_after_it() -> None:
    wrong = []
    for name, _, tree in _trees():
        loggers = [
            node
            for node in ast.walk(tree)
            if isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "getLogger"
        ]
        if len(loggers) > 1 or any(ast.unparse(n.args[0]) != "__name__" for n in loggers):
            wrong.append(name)
    assert wrong == []


def test_modules_stay_a_readable_size() -> None:
    long = {name: n for name, p in MODULES.items() if (n := len(p.read_text().splitlines())) > 500}
    assert long == {}


def test_no_type_ignore_without_a_code() -> None:
    bare = [
        f"{path.relative_to(SRC)}:{number}"
        for path in MODULES.values()
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if re.search(r"#\s*type:\s*ignore(?!\[)", line)
    ]
    assert bare == []
