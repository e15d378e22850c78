"""Reading the offline CLI's input files strictly: CSV columns and JSON histogram files.

Nothing is guessed. Every problem is an :class:`InputError` that names the
file and, where the format has them, the line and column (CSV cells, JSON
syntax) or the JSON path (JSON structure), so a CI log points at the fix.

CSV: a header row, then one row per observation, parsed with the csv module.
A cell that is empty or one of ``NA``, ``NaN``, ``null``, ``None`` (any case) is
missing. A column is numeric when its first non-missing value in the
reference file is a number; every non-missing value of a numeric column, in
both files, must then be a finite number. Other columns are categorical, and
``categorical=`` forces a column to be categorical (identifiers, zip codes).

JSON histogram file (the DriftMonitor reference format; extra keys such as
``mean`` or ``model`` are ignored)::

    {"features": [
      {"name": "x", "type": "numeric", "edges": [0, 1, 2.5, "+Inf"], "counts": [10, 30, 5]},
      {"name": "sector", "type": "categorical", "categories": ["a", "b"], "counts": [7, 3]}
    ]}

``edges`` increase strictly; only the first may be ``"-Inf"`` and only the last
``"+Inf"``. ``counts`` are non-negative numbers, one per bin or category. An
optional ``missing`` count per feature is reported with the missing rate.
"""

from __future__ import annotations

import csv
import functools
import json
import math
import os
import sys
import time
from array import array
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

MISSING_CELLS = frozenset({"", "na", "nan", "null", "none"})
CHUNK_ROWS = 16_384
"""Rows parsed per block: numeric columns convert a block at a time; the block's text is all that is held."""
_INFINITIES = {"-inf": -math.inf, "+inf": math.inf, "inf": math.inf}


class InputError(Exception):
    """A malformed input file; ``str()`` is ``file:line:column: message`` with what is known."""

    def __init__(self, path: str | Path, message: str, *, line: int | None = None, column: int | None = None):
        self.path = str(path)
        self.message = message
        self.line = line
        self.column = column
        location = self.path
        if line is not None:
            location += f":{line}"
            if column is not None:
                location += f":{column}"
        super().__init__(f"{location}: {message}")


@dataclass(frozen=True, slots=True)
class Column:
    """One CSV column: numbers (numeric) or strings (categorical), and how many cells were missing.

    ``values`` keeps one float per data row, NaN where the cell was missing, so columns stay
    aligned row by row (a prediction and its target); ``numbers`` are the present ones.
    ``labels`` are a categorical column's present cells, in row order (each distinct string
    stored once).
    """

    name: str
    kind: str
    values: npt.NDArray[np.float64] = field(default_factory=lambda: np.empty(0))
    labels: list[str] = field(default_factory=list)
    missing: int = 0

    @property
    def numbers(self) -> npt.NDArray[np.float64]:
        return self.values[~np.isnan(self.values)]


@dataclass(frozen=True, slots=True)
class HistogramFeature:
    """One feature of a JSON histogram file; ``edges`` for numeric, ``categories`` for categorical."""

    name: str
    kind: str
    counts: list[float]
    edges: list[float] | None = None
    categories: list[str] | None = None
    missing: float = 0.0


def is_json(path: str | Path) -> bool:
    """JSON files are recognised by their ``.json`` extension; everything else is read as CSV."""
    return Path(path).suffix.lower() == ".json"


def read_csv_columns(
    path: str | Path,
    *,
    kinds: Mapping[str, str] | None = None,
    categorical: Collection[str] = (),
    progress: Progress | None = None,
) -> dict[str, Column]:
    """Read a CSV file column-wise: the one CSV reader of the CLI (``drift``, ``reference build``).

    ``kinds`` (column name to ``"numeric"`` or ``"categorical"``) fixes the
    columns and their kinds, typically those of the reference file; without it
    kinds are decided as the module docstring says. A UTF-8 byte order mark (as
    spreadsheets write it) is skipped. Memory: 8 bytes per numeric cell and per
    categorical cell (each distinct string kept once), so a file's columns take
    less room than its text (bench/bench_csv.py measures it).
    """
    try:
        with open(path, newline="", encoding="utf-8-sig") as stream:
            size = os.fstat(stream.fileno()).st_size
            if size == 0:
                raise InputError(path, "file is empty")
            reader = csv.reader(stream)
            if progress is not None:
                progress.start(str(path), size)
            try:
                return _parse_csv(
                    path,
                    reader,
                    kinds=kinds,
                    categorical=categorical,
                    offset=functools.partial(os.lseek, stream.fileno(), 0, os.SEEK_CUR),
                    progress=progress,
                )
            finally:
                if progress is not None:
                    progress.done()
    except OSError as error:
        raise InputError(path, f"cannot read: {error.strerror}") from None
    except UnicodeDecodeError as error:
        raise InputError(path, f"not UTF-8 text ({error.reason} at byte {error.start})") from None
    except csv.Error as error:
        raise InputError(path, f"malformed CSV: {error}") from None


class Progress:
    """Progress of long reads on stderr, only when it is a terminal and the work takes over a second."""

    AFTER_SECONDS = 1.0

    def __init__(self, stream: Any = None) -> None:
        self._stream = stream if stream is not None else sys.stderr
        self._enabled = bool(getattr(self._stream, "isatty", lambda: False)())
        self._name, self._size, self._began, self._shown = "", 1, 0.0, False

    def start(self, name: str, size: int) -> None:
        self._name, self._size, self._began, self._shown = name, max(size, 1), time.monotonic(), False

    def update(self, rows: int, read: int) -> None:
        if self._enabled and time.monotonic() - self._began >= self.AFTER_SECONDS:
            share = min(read / self._size, 1.0)
            self._stream.write(f"\rreading {self._name}: {share:4.0%} ({rows:,} rows)")
            self._stream.flush()
            self._shown = True

    def done(self) -> None:
        if self._shown:
            self._stream.write("\r\033[K")
            self._stream.flush()


def _parse_csv(
    path: str | Path,
    reader: Any,
    *,
    kinds: Mapping[str, str] | None,
    categorical: Collection[str],
    offset: Callable[[], int],
    progress: Progress | None,
) -> dict[str, Column]:
    header = next(reader, None)
    if not header or all(not name.strip() for name in header):
        raise InputError(path, "no header row", line=1)
    names = [name.strip() for name in header]
    for position, name in enumerate(names, start=1):
        if not name:
            raise InputError(path, "empty column name in the header", line=1, column=position)
        if names.index(name) != position - 1:
            raise InputError(path, f"duplicate column name {name!r}", line=1, column=position)
    if kinds is not None:
        missing_columns = [name for name in kinds if name not in names]
        if missing_columns:
            raise InputError(path, f"columns of the reference are missing: {', '.join(missing_columns)}", line=1)
        extra = [name for name in names if name not in kinds]
        if extra:
            raise InputError(path, f"columns not in the reference: {', '.join(extra)}", line=1)
    unknown = [name for name in categorical if name not in names]
    if unknown:
        raise InputError(path, f"--categorical names columns that do not exist: {', '.join(unknown)}", line=1)

    decided: dict[str, str] = dict(kinds) if kinds is not None else {}
    deciding_line: dict[str, tuple[int, str]] = {}
    values = [array("d") for _ in names]
    labels: list[list[str]] = [[] for _ in names]
    interned: dict[str, str] = {}
    missing = [0] * len(names)
    # Per column: NUMERIC, CATEGORICAL, or None until its first present cell decides.
    kind_of: list[str | None] = [decided.get(name) for name in names]
    rows = 0
    width = len(names)

    def consume(chunk: list[list[str]], lines: list[int]) -> None:
        """A block of rows, column by column: a numeric column in one C-level pass when every cell is a
        finite number; cell by cell (missing cells, first values, categories, errors) otherwise."""
        for index, cells in enumerate(zip(*chunk, strict=True)):
            if kind_of[index] == "numeric":
                try:
                    block = array("d", map(float, cells))
                except ValueError:
                    pass
                else:
                    if np.isfinite(np.frombuffer(block, dtype=np.float64)).all():
                        values[index].extend(block)
                        continue
            for raw, line in zip(cells, lines, strict=True):
                consume_cell(index, raw, line)

    def consume_cell(index: int, raw: str, line: int) -> None:
        cell = raw.strip()
        if cell.lower() in MISSING_CELLS:
            missing[index] += 1
            values[index].append(math.nan)
            return
        name, kind = names[index], kind_of[index]
        if kind is None:
            kind = "categorical" if name in categorical or _number(cell) is None else "numeric"
            decided[name] = kind_of[index] = kind
            deciding_line[name] = (line, cell)
        if kind == "categorical":
            labels[index].append(interned.setdefault(cell, cell))
            return
        value = _number(cell)
        if value is None or not math.isfinite(value):
            raise _not_a_number(
                path, name, cell, value=value, line=line, column=index + 1, decided=deciding_line.get(name)
            )
        values[index].append(value)

    chunk: list[list[str]] = []
    lines: list[int] = []
    for row in reader:
        if not row:
            continue
        if len(row) != width:
            consume(chunk, lines)  # an earlier bad cell is reported first, as read
            raise InputError(path, f"{len(row)} cells, but the header has {width} columns", line=reader.line_num)
        chunk.append(row)
        lines.append(reader.line_num)
        if len(chunk) == CHUNK_ROWS:
            consume(chunk, lines)
            rows += len(chunk)
            chunk, lines = [], []
            if progress is not None:
                progress.update(rows, offset())
    consume(chunk, lines)
    rows += len(chunk)
    if rows == 0:
        raise InputError(path, "no data rows", line=2)
    return {
        name: Column(
            name=name,
            kind=decided.get(name, "categorical" if name in categorical else "numeric"),
            values=np.frombuffer(values[index], dtype=np.float64) if kind_of[index] != "categorical" else np.empty(0),
            labels=labels[index],
            missing=missing[index],
        )
        for index, name in enumerate(names)
    }


def _not_a_number(
    path: str | Path,
    name: str,
    cell: str,
    *,
    value: float | None,
    line: int,
    column: int,
    decided: tuple[int, str] | None,
) -> InputError:
    problem = "is not a finite number" if value is not None else "is not a number"
    reason = (
        f"the column is numeric because its first value {decided[1]!r} "
        f"on line {decided[0]} is; pass --categorical {name} to treat it as categories"
        if decided is not None
        else "the column is numeric in the reference"
    )
    return InputError(path, f"column {name!r}: {cell!r} {problem} ({reason})", line=line, column=column)


def _number(cell: str) -> float | None:
    try:
        return float(cell)
    except ValueError:
        return None


def read_json(path: str | Path) -> Any:
    """Parse a JSON file; syntax errors carry the line and column."""
    try:
        with open(path, encoding="utf-8-sig") as stream:
            text = stream.read()
        if not text.strip():
            raise InputError(path, "file is empty")
        return json.loads(text)
    except OSError as error:
        raise InputError(path, f"cannot read: {error.strerror}") from None
    except UnicodeDecodeError as error:
        raise InputError(path, f"not UTF-8 text ({error.reason} at byte {error.start})") from None
    except json.JSONDecodeError as error:
        raise InputError(path, f"invalid JSON: {error.msg}", line=error.lineno, column=error.colno) from None


def read_histogram_file(path: str | Path) -> list[HistogramFeature]:
    """Read and validate a JSON histogram file (format in the module docstring)."""
    document = read_json(path)
    fields = JsonFields(path)
    features = fields.list_of(fields.mapping(document, "$").get("features"), "features", min_length=1)
    result: list[HistogramFeature] = []
    seen: set[str] = set()
    for index, raw in enumerate(features):
        where = f"features[{index}]"
        item = fields.mapping(raw, where)
        name = fields.text(item.get("name"), f"{where}.name")
        if name in seen:
            raise InputError(path, f"{where}.name: duplicate feature {name!r}")
        seen.add(name)
        kind = item.get("type")
        counts = fields.counts(item.get("counts"), f"{where}.counts")
        missing = fields.count(item.get("missing", 0), f"{where}.missing")
        if kind == "numeric":
            edges = fields.edges(item.get("edges"), f"{where}.edges")
            if len(counts) != len(edges) - 1:
                raise InputError(
                    path, f"{where}.counts: {len(edges)} edges need {len(edges) - 1} counts, got {len(counts)}"
                )
            result.append(HistogramFeature(name, "numeric", counts, edges=edges, missing=missing))
        elif kind == "categorical":
            categories = [
                fields.text(c, f"{where}.categories[{i}]")
                for i, c in enumerate(fields.list_of(item.get("categories"), f"{where}.categories", min_length=1))
            ]
            if len(set(categories)) != len(categories):
                raise InputError(path, f"{where}.categories: categories must be unique")
            if len(counts) != len(categories):
                raise InputError(
                    path,
                    f"{where}.counts: {len(categories)} categories need {len(categories)} counts, got {len(counts)}",
                )
            result.append(HistogramFeature(name, "categorical", counts, categories=categories, missing=missing))
        else:
            raise InputError(path, f'{where}.type: must be "numeric" or "categorical", got {kind!r}')
    return result


class JsonFields:
    """Typed access to parsed JSON that reports problems by JSON path."""

    def __init__(self, path: str | Path):
        self.path = path

    def fail(self, where: str, message: str) -> InputError:
        return InputError(self.path, f"{where}: {message}")

    def mapping(self, value: Any, where: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(where, f"expected an object, got {_describe(value)}")
        return value

    def list_of(self, value: Any, where: str, *, min_length: int = 0) -> list[Any]:
        if not isinstance(value, list):
            raise self.fail(where, f"expected a list, got {_describe(value)}")
        if len(value) < min_length:
            raise self.fail(where, f"expected at least {min_length} item{'s' if min_length != 1 else ''}")
        return value

    def text(self, value: Any, where: str) -> str:
        if not isinstance(value, str) or not value:
            raise self.fail(where, f"expected a non-empty string, got {_describe(value)}")
        return value

    def number(self, value: Any, where: str) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise self.fail(where, f"expected a finite number, got {_describe(value)}")
        return float(value)

    def optional_number(self, value: Any, where: str) -> float | None:
        return None if value is None else self.number(value, where)

    def count(self, value: Any, where: str) -> float:
        number = self.number(value, where)
        if number < 0:
            raise self.fail(where, f"expected a non-negative count, got {number:g}")
        return number

    def probability(self, value: Any, where: str) -> float:
        number = self.number(value, where)
        if not 0 < number < 1:
            raise self.fail(where, f"expected a number strictly between 0 and 1, got {number:g}")
        return number

    def boolean(self, value: Any, where: str) -> bool:
        if not isinstance(value, bool):
            raise self.fail(where, f"expected true or false, got {_describe(value)}")
        return value

    def counts(self, value: Any, where: str) -> list[float]:
        items = self.list_of(value, where, min_length=1)
        return [self.count(item, f"{where}[{index}]") for index, item in enumerate(items)]

    def edges(self, value: Any, where: str) -> list[float]:
        items = self.list_of(value, where, min_length=2)
        edges: list[float] = []
        for index, item in enumerate(items):
            if isinstance(item, str) and item.lower() in _INFINITIES:
                edge = _INFINITIES[item.lower()]
                if (edge < 0 and index != 0) or (edge > 0 and index != len(items) - 1):
                    raise self.fail(f"{where}[{index}]", f"{item!r} is only allowed as the first or last edge")
            else:
                edge = self.number(item, f"{where}[{index}]")
            if edges and not edge > edges[-1]:
                raise self.fail(f"{where}[{index}]", f"edges must increase strictly ({edges[-1]:g} then {edge:g})")
            edges.append(edge)
        return edges


def _describe(value: Any) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return json.dumps(value)
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, int | float):
        return f"{value:g}"
    return {"dict": "an object", "list": "a list"}.get(type(value).__name__, type(value).__name__)
