"""Datasets: named, versioned lists of rows kept in the local store (``clew.datasets``).

A row is what one call of the function under test needs: its ``inputs`` (the keyword arguments
it is called with), an optional ``target`` (the expected output, any JSON), and ``metadata``
(a JSON object). Rows come from Python (:func:`create`), from CSV, JSON or JSONL files
(:func:`load_file`), or from the stored traces (:func:`from_traces`). Creating a dataset whose
name exists stores a new version. A version never changes once stored, so ``rows[i]`` of a
version is the same row for good, and an experiment that names a version reads the same rows
every time.

The store is the one ``clew.configure(store_path=...)`` (or ``$CLEW_STORE``) names, by default
``.clew/traces.db``; each function takes ``store=`` to use another file.
"""

from __future__ import annotations

import builtins
import csv
import io
import json
import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, NamedTuple

from clew import setup
from clew.errors import ConfigurationError, StoreError
from clew.store import datasets as stored
from clew.store.trace_rows import root_records

__all__ = [
    "NAME_PATTERN",
    "Dataset",
    "DatasetSummary",
    "Row",
    "TraceRows",
    "create",
    "from_traces",
    "get",
    "list",
    "load_file",
    "rows",
    "rows_from_traces",
]

NAME_PATTERN = r"^[A-Za-z0-9._-]+$"
"""What a dataset name is made of: letters, digits, ``-``, ``_`` and ``.``."""

_FIELDS = ("inputs", "target", "metadata")
_ROW_SHAPE = '{"inputs": {...}, "target": ..., "metadata": {...}}'


@dataclass(frozen=True)
class Row:
    """One row of a dataset.

    Attributes:
        inputs: the keyword arguments the function under test is called with.
        target: the expected output (any JSON), or None when the row has none.
        metadata: anything else worth keeping with the row (a JSON object).
    """

    inputs: dict[str, Any]
    target: Any = None
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Dataset:
    """One version of a dataset.

    Attributes:
        name: letters, digits, ``-``, ``_`` and ``.``.
        version: 1, 2, ... in the order the versions were created.
        created: when this version was stored (ISO 8601, UTC).
        rows: the rows; a row's index in this tuple is its index in the version, for good.
    """

    name: str
    version: int
    created: str
    rows: tuple[Row, ...]


@dataclass(frozen=True)
class DatasetSummary:
    """A dataset in :func:`list`: its latest ``version`` (when it was ``created``, ISO 8601 UTC,
    and its ``row_count``) and how many ``versions`` it has."""

    name: str
    version: int
    versions: int
    row_count: int
    created: str


class TraceRows(NamedTuple):
    """The rows :func:`rows_from_traces` made, and what it left out."""

    rows: builtins.list[Row]
    matched: int
    """How many stored traces matched the filters."""
    skipped: int
    """Matching traces left out: no recorded inputs object on their (stored) root span."""


_KINDS: tuple[tuple[Any, str], ...] = (
    (type(None), "null"), (bool, "a boolean"), (int | float, "a number"), (str, "text"),
    (builtins.list | tuple, "a list"), (Mapping, "an object"),
)  # fmt: skip


def _kind(value: object) -> str:
    """What a value is, in JSON's words."""
    return next((kind for types, kind in _KINDS if isinstance(value, types)), type(value).__name__)


def _object(value: object, where: str, name: str) -> dict[str, Any]:
    """``value`` as a dict with text keys, or an error naming the row and the field."""
    if not isinstance(value, Mapping):
        raise ConfigurationError(f"{where}: {name}: expected an object, got {_kind(value)}")
    for key in value:
        if not isinstance(key, str):
            raise ConfigurationError(f"{where}: {name}: keys must be text, got {key!r}")
    return dict(value)


def _checked(row: object, where: str) -> Row:
    """A row given as a :class:`Row` or a mapping of its fields, checked; errors name ``where``."""
    if isinstance(row, Row):
        row = {"inputs": row.inputs, "target": row.target, "metadata": row.metadata}
    if not isinstance(row, Mapping):
        raise ConfigurationError(f"{where}: expected a row object {_ROW_SHAPE}, got {_kind(row)}")
    for key in row:
        if key not in _FIELDS:
            raise ConfigurationError(
                f"{where}: unknown field {key!r}; a row has only inputs, target and metadata:"
                f' put the arguments of the function under "inputs", as in {_ROW_SHAPE}'
            )
    if "inputs" not in row:
        raise ConfigurationError(
            f"{where}: inputs: missing; give the keyword arguments of the function under"
            f' "inputs", as in {_ROW_SHAPE}'
        )
    metadata = row.get("metadata")
    return Row(
        inputs=_object(row["inputs"], where, "inputs"),
        target=row.get("target"),
        metadata={} if metadata is None else _object(metadata, where, "metadata"),
    )


def _json(value: object, where: str, name: str) -> str:
    try:
        return json.dumps(value, ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ConfigurationError(
            f"{where}: {name}: cannot be stored as JSON ({exc}); give text, numbers, booleans,"
            " null, lists and objects"
        ) from None


def _encoded(row: Row, where: str) -> stored.StoredRow:
    return stored.StoredRow(
        _json(row.inputs, where, "inputs"),
        None if row.target is None else _json(row.target, where, "target"),
        _json(row.metadata, where, "metadata"),
    )


def _decoded(row: stored.StoredRow) -> Row:
    target = None if row.target is None else json.loads(row.target)
    return Row(json.loads(row.inputs), target, json.loads(row.metadata))


def _store_path(store: str | Path | None) -> Path:
    return Path(store) if store is not None else setup.store_path()


def _iso(created: float) -> str:
    return datetime.fromtimestamp(created, UTC).isoformat()


def _checked_name(name: object) -> None:
    if not isinstance(name, str) or not re.fullmatch(NAME_PATTERN, name):
        raise ConfigurationError(f"{name!r} is not a dataset name: use letters, digits, -, _, .")


# --- the public calls ------------------------------------------------------------------------


def _checked_rows(given: Iterable[Row | Mapping[str, Any]]) -> builtins.list[Row]:
    if isinstance(given, str | bytes | Mapping):
        raise ConfigurationError(
            f"rows: expected a list of rows, got {_kind(given)}; give [{_ROW_SHAPE}, ...]"
        )
    checked = [_checked(row, f"rows[{i}]") for i, row in enumerate(given)]
    if not checked:
        raise ConfigurationError("rows: none given; a dataset needs at least one row")
    return checked


def rows(given: Iterable[Row | Mapping[str, Any]]) -> builtins.list[Row]:
    """Rows given as :func:`create` takes them, checked as it checks them but not stored: for
    code that runs rows given in Python (experiments).

    Raises:
        ConfigurationError: as :func:`create`, for the rows.
    """
    return _checked_rows(given)


def create(
    name: str, rows: Iterable[Row | Mapping[str, Any]], *, store: str | Path | None = None
) -> Dataset:
    """Store ``rows`` as the next version of dataset ``name`` (version 1 for a new name).

    Rows are stored as JSON: tuples read back as lists, and keys of nested objects as text.

    Example:
        >>> import clew
        >>> clew.datasets.create("faq", [{"inputs": {"q": "Hours?"}}]).version  # doctest: +SKIP
        1

    Args:
        name: letters, digits, ``-``, ``_`` and ``.``.
        rows: :class:`Row` objects, or mappings with ``inputs`` (an object: the keyword
            arguments of the function under test), and optionally ``target`` (any JSON) and
            ``metadata`` (an object). Any other key is refused: put it under ``inputs``.
        store: the store file; default: the configured one (``.clew/traces.db``).

    Returns:
        The dataset as stored, with its ``version`` and ``created``; equal to what :func:`get`
        gives back.

    Raises:
        ConfigurationError: the name is invalid, there are no rows, or a row is invalid (the
            message names the row, ``rows[i]``, and the field). Nothing is stored then.
        StoreError: the store cannot be written.
    """
    _checked_name(name)
    encoded = [_encoded(row, f"rows[{i}]") for i, row in enumerate(_checked_rows(rows))]
    created = time.time()
    version = stored.add(_store_path(store), name, encoded, created=created)
    return Dataset(name, version, _iso(created), tuple(_decoded(row) for row in encoded))


def get(name: str, version: int | None = None, *, store: str | Path | None = None) -> Dataset:
    """A dataset: its latest version, or the given one.

    Example:
        >>> import clew
        >>> for index, row in enumerate(clew.datasets.get("faq", 1).rows):  # doctest: +SKIP
        ...     print(index, row.inputs, row.target)

    Raises:
        StoreError: no dataset with this name, or no such version of it; or the store cannot
            be read.
    """
    path = _store_path(store)
    found = stored.get(path, name, version)
    if found is None:
        latest = stored.latest_version(path, name) if version is not None else None
        if latest is not None:
            raise StoreError(
                f"dataset {name!r} has no version {version}; its versions are 1 to {latest}"
            )
        raise StoreError(
            f"no dataset named {name!r} in {str(path)!r}; create it with"
            " `clew datasets create NAME FILE`, or `clew datasets list` to see the names"
        )
    rows = tuple(_decoded(row) for row in found.rows)
    return Dataset(name, found.version, _iso(found.created), rows)


def list(*, store: str | Path | None = None) -> builtins.list[DatasetSummary]:
    """Every dataset, by name: its latest version, how many versions and rows it has.

    Raises:
        StoreError: the store cannot be read.
    """
    return [
        DatasetSummary(d.name, d.version, d.versions, d.row_count, _iso(d.created))
        for d in stored.list(_store_path(store))
    ]


def rows_from_traces(
    *,
    tag: str | None = None,
    user: str | None = None,
    since: datetime | timedelta | None = None,
    limit: int | None = None,
    store: str | Path | None = None,
) -> TraceRows:
    """A row per stored trace that matches every filter given, oldest trace first.

    A row's ``inputs`` are the recorded inputs of the trace's root span, its ``target`` the
    recorded output (None if there is none), and its ``metadata`` the trace's
    ``root_trace_id`` and ``name``. Traces whose root span has no recorded inputs object are
    left out and counted in ``skipped``.

    Args:
        tag: only traces with a span carrying this tag.
        user: only traces with a span for this ``end_user_identifier``.
        since: only traces that started then or later: a datetime (local time if naive), or
            a timedelta back from now (``timedelta(days=7)``).
        limit: only the newest ``limit`` rows.
        store: the trace store; default: the configured one (``.clew/traces.db``).

    Raises:
        ConfigurationError: ``since`` is not a datetime or timedelta, or ``limit`` is below 1.
        StoreError: the store is missing or cannot be read, or no matching trace makes a row
            (the message says how many matched and why they were left out).
    """
    since_ns = _since_ns(since)
    if limit is not None and limit < 1:
        raise ConfigurationError(f"limit: expected a whole number >= 1, got {limit!r}")
    path = _store_path(store)
    roots = root_records(path, tag=tag, user=user, since_ns=since_ns)
    rows = [
        Row(r["inputs"], r["output"], {"root_trace_id": r["root_trace_id"], "name": r["name"]})
        for r in roots.records
        if isinstance(r["inputs"], dict)
    ]
    matched = len(roots.records) + roots.rootless
    skipped = matched - len(rows)
    if not rows:
        why = (
            f"the {matched} that match have no recorded inputs on their root span (inputs"
            " omitted, content capture off, or the root span not ended yet)"
        )
        raise StoreError(
            f"no trace in {str(path)!r} makes a row: {why if matched else 'none matches'};"
            " `clew traces` lists the stored traces"
        )
    return TraceRows(rows if limit is None else rows[-limit:], matched, skipped)


def from_traces(
    name: str,
    *,
    tag: str | None = None,
    user: str | None = None,
    since: datetime | timedelta | None = None,
    limit: int | None = None,
    store: str | Path | None = None,
) -> Dataset:
    """Store a row per matching stored trace (see :func:`rows_from_traces`) as the next
    version of dataset ``name``, in the same store.

    Example:
        >>> import clew
        >>> week = clew.datasets.from_traces("week", since=timedelta(days=7))  # doctest: +SKIP

    Raises:
        ConfigurationError: as :func:`rows_from_traces`, or the name is invalid.
        StoreError: as :func:`rows_from_traces`, or the store cannot be written.
    """
    _checked_name(name)
    found = rows_from_traces(tag=tag, user=user, since=since, limit=limit, store=store)
    return create(name, found.rows, store=store)


def _since_ns(since: datetime | timedelta | None) -> int | None:
    """``since`` as Unix nanoseconds."""
    if since is None:
        return None
    if not isinstance(since, datetime | timedelta):
        raise ConfigurationError(f"since: give a datetime or a timedelta, got {_kind(since)}")
    moment = datetime.now(UTC) - since if isinstance(since, timedelta) else since.astimezone()
    return round(moment.timestamp() * 1e6) * 1000


# --- files -----------------------------------------------------------------------------------


def load_file(path: str | Path) -> builtins.list[Row]:
    """Read the rows of a CSV, JSON or JSONL file (by the name's ending: ``.csv``, ``.json``,
    ``.jsonl`` or ``.ndjson``), checked.

    - JSONL: one row object (``{"inputs": {...}, "target": ..., "metadata": {...}}``) per line;
      blank lines are skipped.
    - JSON: a list of row objects, or ``{"rows": [...]}``.
    - CSV: a header names the columns. A ``target`` column is the target (an empty cell: no
      target), a ``metadata`` column holds a JSON object (an empty cell: ``{}``), and every
      other column is an input. Cells are text, never parsed: give numbers, lists or objects
      as inputs in a JSON or JSONL file.

    Raises:
        ConfigurationError: the file cannot be read, is empty, or has a bad row; the message
            names the file, the line (CSV, JSONL) or the row's index (JSON, ``[i]``), and the
            field at fault.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    parse = {".csv": _csv_rows, ".json": _json_rows, ".jsonl": _jsonl_rows, ".ndjson": _jsonl_rows}
    if suffix not in parse:
        raise ConfigurationError(
            f"{path}: give a .csv, .json or .jsonl file (the name's ending says which it is)"
        )
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigurationError(f"cannot read the dataset file {str(path)!r}: {exc}") from None
    if not text.strip():
        raise ConfigurationError(f"{path}: empty; a dataset needs at least one row")
    rows = parse[suffix](path, text)
    if not rows:
        raise ConfigurationError(f"{path}: no rows; a dataset needs at least one row")
    return rows


def _jsonl_rows(path: Path, text: str) -> builtins.list[Row]:
    rows = []
    # Not str.splitlines(): it also splits on characters JSON leaves raw in strings (U+2028).
    for number, line in enumerate(text.split("\n"), 1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ConfigurationError(
                f"{path} line {number}: not valid JSON: {exc.msg} (column {exc.colno}); a .jsonl"
                " file holds one row object per line"
            ) from None
        rows.append(_checked(value, f"{path} line {number}"))
    return rows


def _json_rows(path: Path, text: str) -> builtins.list[Row]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigurationError(
            f"{path}: not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})"
        ) from None
    where = f"{path} "
    if isinstance(value, dict) and set(value) == {"rows"}:
        value, where = value["rows"], f"{path} rows"
    if not isinstance(value, builtins.list):
        raise ConfigurationError(
            f'{path}: expected a list of row objects, or {{"rows": [...]}}, got {_kind(value)}'
        )
    return [_checked(item, f"{where}[{i}]") for i, item in enumerate(value)]


def _csv_rows(path: Path, text: str) -> builtins.list[Row]:
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    rows: builtins.list[Row] = []
    header: builtins.list[str] | None = None
    line = 1  # where the next record starts
    try:
        for cells in reader:
            start, line = line, reader.line_num + 1
            if not cells:  # a blank line
                continue
            if header is None:
                header = _csv_header(path, start, cells)
                continue
            rows.append(_csv_row(f"{path} line {start}", header, cells))
    except csv.Error as exc:
        raise ConfigurationError(f"{path} line {reader.line_num}: not valid CSV: {exc}") from None
    return rows


def _csv_header(path: Path, line: int, cells: builtins.list[str]) -> builtins.list[str]:
    names = [cell.strip() for cell in cells]
    if "" in names or len(set(names)) < len(names):
        raise ConfigurationError(
            f"{path} line {line}: every column of the header needs a name of its own, got {names}"
        )
    return names


def _csv_row(where: str, header: builtins.list[str], cells: builtins.list[str]) -> Row:
    if len(cells) != len(header):
        raise ConfigurationError(
            f"{where}: {len(cells)} cells, but the header names {len(header)} columns;"
            ' put cells holding commas in double quotes ("a, b")'
        )
    named = dict(zip(header, cells, strict=True))
    target = named.pop("target", "") or None
    metadata: dict[str, Any] = {}
    if text := named.pop("metadata", "").strip():
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigurationError(
                f"{where}: metadata: not valid JSON: {exc.msg} (column {exc.colno} of the cell);"
                ' write a JSON object such as {"source": "faq"}, or leave the cell empty'
            ) from None
        metadata = _object(value, where, "metadata")
    return Row(named, target, metadata)
