"""Readers run inside Beam workers: CSV rows, JSON lines and TFRecord files into records.

Each reader yields records (dicts with ``__source__`` = ``file:row N``) and ``Reject`` for rows
that cannot be read, with the reason. Only the standard library is used.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterable, Iterator
from typing import Any, TextIO

from beamline import examples
from beamline.files import csv_rows
from beamline.ingest import SOURCE_KEY, Reject

_INT = re.compile(r"^[+-]?\d+$")
_FLOAT = re.compile(r"^[+-]?(\d+\.?\d*([eE][+-]?\d+)?|\.\d+([eE][+-]?\d+)?)$")
COLUMN_TYPES = ("int", "float", "text")


#: The characters ``errors="surrogateescape"`` decodes undecodable bytes to.
_ESCAPED_BYTE = re.compile("[\udc80-\udcff]")


def _has_bad_utf8(values: Iterable[str]) -> bool:
    # One regex scan of the row, not a Python loop over its characters (the CSV hot path).
    return _ESCAPED_BYTE.search("".join(values)) is not None


def csv_header(path: str, delimiter: str) -> list[str]:
    """The header row of a CSV file (empty for an empty file)."""
    with open(path, encoding="utf-8", errors="replace", newline="") as handle:
        first = next(csv.reader(handle, delimiter=delimiter), [])
    return [name.strip().removeprefix("\ufeff") for name in first]


def read_csv(
    path: str, delimiter: str, keep: list[str] | None, label: str
) -> Iterator[dict[str, Any] | Reject]:
    """Yield each data row of a CSV file as ``{column: text}`` (or a ``Reject``)."""
    for item in csv_rows(path, delimiter, line_numbers=True):
        if isinstance(item, Reject):
            yield item
            continue
        where, header, row, line = item
        if _has_bad_utf8(row):
            yield Reject(f"invalid UTF-8 (line {line})", where)
            continue
        record: dict[str, Any] = {
            name: value
            for name, value in zip(header, row, strict=True)
            if keep is None or name in keep
        }
        if label and not record.get(label, "").strip():
            yield Reject(f"empty label in column '{label}'", where)
            continue
        record[SOURCE_KEY] = where
        yield record


def value_kind(text: str) -> str | None:
    """``int``, ``float`` or ``text`` for a CSV cell; None for an empty cell."""
    if not text.strip():
        return None
    stripped = text.strip()
    if _INT.match(stripped):
        return "int"
    if _FLOAT.match(stripped):
        return "float"
    return "text"


def row_kinds(row: dict[str, Any]) -> dict[str, list[str]]:
    """The kinds of a row's cells, in the form ``merge_kinds`` combines."""
    out: dict[str, list[str]] = {}
    for name, value in row.items():
        if name == SOURCE_KEY:
            continue
        kind = value_kind(value)
        out[name] = [kind] if kind else []
    return out


#: ``value_kind`` of cells seen (a cell's kind depends on its text alone; table columns repeat
#: their values), emptied when full.
_KIND_CACHE: dict[str, str | None] = {}
_KIND_CACHE_SIZE = 200_000


def add_row_kinds(kinds: dict[str, set[str]], row: dict[str, Any]) -> dict[str, set[str]]:
    """Add the kinds of a row's cells to ``kinds`` (column -> kinds): ``row_kinds`` of every row
    merged as ``merge_kinds`` merges them, without a dict per row."""
    cache = _KIND_CACHE
    for name, value in row.items():
        if name == SOURCE_KEY:
            continue
        mine = kinds.get(name)
        if mine is None:
            mine = kinds[name] = set()
        try:
            kind = cache[value]
        except KeyError:
            if len(cache) >= _KIND_CACHE_SIZE:
                cache.clear()
            kind = cache[value] = value_kind(value)
        if kind is not None:
            mine.add(kind)
    return kinds


def file_kinds(
    path: str, delimiter: str, keep: list[str] | None, label: str
) -> dict[str, list[str]]:
    """The kinds of every column's cells over the rows ``read_csv`` reads from one file (as
    ``merge_kinds`` of each row's ``row_kinds``): one value per file for the types pass, not
    one element per row."""
    # read_csv's rows without a dict per row: its checks on the cells, then each cell's kind.
    cache = _KIND_CACHE
    kinds: dict[str, set[str]] = {}
    last: list[str] | None = None
    names: dict[str, int] = {}
    where: int | None = None
    plan: list[tuple[int, set[str]]] | None = None
    for item in csv_rows(path, delimiter, line_numbers=True):
        if isinstance(item, Reject):
            continue
        _, header, row, _ = item
        if _has_bad_utf8(row):
            continue
        if header is not last:  # one header per file: the kept columns (the last of a name)
            last, plan = header, None
            names = {n: i for i, n in enumerate(header) if keep is None or n in keep}
            where = names.get(label) if label else None
        if label and (where is None or not row[where].strip()):
            continue  # read_csv rejects it: an empty label
        if plan is None:
            plan = [(i, kinds.setdefault(n, set())) for n, i in names.items()]
        for i, mine in plan:
            value = row[i]
            try:
                kind = cache[value]
            except KeyError:
                if len(cache) >= _KIND_CACHE_SIZE:
                    cache.clear()
                kind = cache[value] = value_kind(value)
            if kind is not None:
                mine.add(kind)
    return {name: sorted(k) for name, k in kinds.items()}


def merge_kinds(parts: Iterable[dict[str, list[str]]]) -> dict[str, list[str]]:
    """Combine cell kinds per column (associative and commutative: a Beam combine)."""
    out: dict[str, set[str]] = {}
    for part in parts:
        for name, kinds in part.items():
            out.setdefault(name, set()).update(kinds)
    return {name: sorted(kinds) for name, kinds in out.items()}


def column_type(kinds: list[str], explicit: str | None, infer: bool) -> str:
    """The type of a column from its cells' kinds (``explicit`` wins)."""
    if explicit:
        return explicit
    if not infer or not kinds or "text" in kinds:
        return "text"
    return "float" if "float" in kinds else "int"


_TYPES: tuple[Any, ...] = (None, None, None, {})


def _column_types(
    kinds: dict[str, list[str]], explicit: dict[str, str], infer: bool
) -> dict[str, str]:
    """``column_type`` of every column in ``kinds``, kept for the last arguments seen (the same
    side input for every row of a bundle)."""
    global _TYPES
    last = _TYPES  # one read: another thread may replace it, never change it
    if last[0] is kinds and last[1] is explicit and last[2] is infer:
        return last[3]
    types = {name: column_type(k, explicit.get(name), infer) for name, k in kinds.items()}
    _TYPES = (kinds, explicit, infer, types)
    return types


def convert_row(
    row: dict[str, Any], kinds: dict[str, list[str]], explicit: dict[str, str], infer: bool
) -> dict[str, Any]:
    """Convert a row's cells to their column's type; raise ``Reject`` when a cell does not fit.

    Empty cells of numeric columns become missing values."""
    types = _column_types(kinds, explicit, infer)
    out: dict[str, Any] = {SOURCE_KEY: row[SOURCE_KEY]}
    for name, value in row.items():
        if name == SOURCE_KEY:
            continue
        kind = types.get(name) or column_type(kinds.get(name, []), explicit.get(name), infer)
        if kind == "text":
            out[name] = value
            continue
        if not value.strip():
            out[name] = None
            continue
        try:
            out[name] = int(value) if kind == "int" else float(value)
        except ValueError:
            raise Reject(f"column '{name}': {value!r} is not {'an' if kind == 'int' else 'a'} "
                         f"{kind}") from None  # fmt: skip
    return out


class TypedCsvRows:
    """``csv_table``'s rows typed without Beam (the ``direct`` runner's in-process ingest):
    called on each file, it yields the rows ``read_csv`` reads converted by ``convert_row`` with
    the column types of all ``files`` (computed on the first call, as Beam's types pass does), a
    cell that does not fit as a ``Reject`` of its row."""

    def __init__(
        self,
        files: list[str],
        delimiter: str,
        keep: list[str] | None,
        label: str,
        explicit: dict[str, str],
        infer: bool,
    ) -> None:
        self.files, self.delimiter, self.keep, self.label = list(files), delimiter, keep, label
        self.explicit, self.infer = explicit, infer
        self.kinds: dict[str, list[str]] | None = None
        self.arrow_files: set[str] = set()  # the files column_batches reads with Arrow

    def column_batches(self, path: str) -> Iterator[Any]:
        """The rows of one file as ``__call__`` yields them, a ``ColumnBatch`` of typed Arrow
        columns at a time where Arrow can read the file (``columnar``; the column types then
        come from Arrow's pass over every file, equal to ``file_kinds``')."""
        from . import columnar  # imports pyarrow

        if self.kinds is None:
            parts = []
            for file in self.files:
                found = columnar.file_kinds(file, self.delimiter, self.keep, self.label)
                if found is None:
                    found = file_kinds(file, self.delimiter, self.keep, self.label)
                else:
                    self.arrow_files.add(file)
                parts.append(found)
            self.kinds = merge_kinds(parts)
        if path not in self.arrow_files:
            yield from self(path)
            return
        kinds, explicit, infer = self.kinds, self.explicit, self.infer

        def types(name: str) -> tuple[str, bool]:  # the type, and whether the cells decided it
            found = explicit.get(name)
            return column_type(kinds.get(name, []), found, infer), not found

        def convert(row: dict[str, Any]) -> dict[str, Any]:
            return convert_row(row, kinds, explicit, infer)

        yield from columnar.typed_batches(
            path, self.delimiter, self.keep, self.label, types, convert
        )

    def __call__(self, path: str) -> Iterator[dict[str, Any] | Reject]:
        """The typed rows of one file (and its rejected rows)."""
        if self.kinds is None:
            self.kinds = merge_kinds(
                file_kinds(f, self.delimiter, self.keep, self.label) for f in self.files
            )
        kinds, explicit, infer = self.kinds, self.explicit, self.infer
        for row in read_csv(path, self.delimiter, self.keep, self.label):
            if isinstance(row, Reject):
                yield row
                continue
            try:
                yield convert_row(row, kinds, explicit, infer)
            except Reject as exc:
                yield Reject(exc.reason, row[SOURCE_KEY])


def read_jsonl(path: str, keep: list[str] | None, label: str) -> Iterator[dict[str, Any] | Reject]:
    """Yield each JSON object of a JSON Lines file as a record (or a ``Reject``)."""
    try:
        handle = open(path, encoding="utf-8-sig", errors="surrogateescape", newline="")
    except OSError as exc:
        yield Reject(f"unreadable file: {exc.strerror or exc}", path)
        return
    with handle:
        yield from _jsonl_records(path, _lines(handle), keep, label)


def _lines(handle: TextIO) -> Iterator[str]:
    # Read as a stream (a whole file's text would grow memory with the file), cut where
    # str.splitlines cuts: each physical line split again on the rarer line boundaries.
    for physical in handle:
        yield from physical.splitlines()


def _jsonl_records(
    path: str, lines: Iterator[str], keep: list[str] | None, label: str
) -> Iterator[dict[str, Any] | Reject]:
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        where = f"{path}:row {number}"
        if _has_bad_utf8([line]):
            yield Reject("invalid UTF-8", where)
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            yield Reject(f"invalid JSON: {exc.msg} (column {exc.colno})", where)
            continue
        if not isinstance(value, dict):
            yield Reject(f"expected a JSON object, got {type(value).__name__}", where)
            continue
        try:
            record = _json_record(value, keep)
        except Reject as exc:
            yield Reject(exc.reason, where)
            continue
        if label and (record.get(label) is None or record.get(label) == ""):
            yield Reject(f"no value for the label '{label}'", where)
            continue
        record[SOURCE_KEY] = where
        yield record


def _json_record(value: dict[str, Any], keep: list[str] | None) -> dict[str, Any]:
    record: dict[str, Any] = {}
    for name, item in value.items():
        if keep is not None and name not in keep:
            continue
        if isinstance(item, dict) or (
            isinstance(item, list) and any(isinstance(v, dict | list) for v in item)
        ):
            raise Reject(f"field '{name}' holds a nested object or list: not a feature value")
        if isinstance(item, list):
            item = [v for v in item if v is not None]
        record[name] = item
    return record


def read_tfrecord(path: str, compression: str, label: str) -> Iterator[dict[str, Any] | Reject]:
    """Yield each ``tf.train.Example`` of a TFRecord file as a record (or a ``Reject``).

    A single value becomes a scalar; several stay a list. A corrupt or truncated file is
    rejected from the first bad record on (the rest cannot be framed)."""
    number = 0
    try:
        for number, data in enumerate(examples.read_tfrecords(path, compression=compression), 1):
            where = f"{path}:record {number}"
            try:
                parsed = examples.decode_example(data)
            except (ValueError, UnicodeDecodeError) as exc:
                yield Reject(f"not a tf.train.Example: {exc}", where)
                continue
            record: dict[str, Any] = {
                name: values[0] if len(values) == 1 else values
                for name, (_, values) in parsed.items()
            }
            if label and label not in record:
                yield Reject(f"no feature '{label}' (the label)", where)
                continue
            record[SOURCE_KEY] = where
            yield record
    except OSError as exc:
        yield Reject(f"unreadable file: {exc.strerror or exc}", path)
    except ValueError as exc:
        reason = str(exc).removeprefix(f"{path}: ")
        yield Reject(f"corrupt TFRecord file, rest of the file skipped: {reason}",
                     f"{path}:record {number + 1}")  # fmt: skip
