"""``csv_table``'s rows a batch of Arrow columns at a time (the in-process ingest's fast path).

Arrow's CSV reader parses a file into string columns; the cell kinds (for the column types),
the empty-label check and the conversion to int64/float64 are computed per column. Only what
is sure to read as the ``csv`` module reads it takes this path: a file with a header of at
least two distinct names and no quote character, NUL byte or row Arrow cannot parse (a wrong
number of fields, invalid UTF-8) is read a row at a time (``read_csv``) as a whole, and a
batch holding a cell outside printable ASCII in a numeric column, an empty label, or a cell that
does not fit its column's type is converted a row at a time, so a bad row is rejected with the
same reason, file and row (``file.csv:row N``)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv

from beamline.ingest import SOURCE_KEY, Reject
from beamline.ingest_columnar import ColumnBatch

from . import readers

#: Bytes Arrow parses at a time (a batch of rows).
BLOCK_BYTES = 1 << 20
_INT = r"^[+-]?[0-9]+$"
_FLOAT = r"^[+-]?([0-9]+\.?[0-9]*([eE][+-]?[0-9]+)?|\.[0-9]+([eE][+-]?[0-9]+)?)$"
#: Cells the vectorised checks leave to Python: anything outside printable ASCII.
_UNUSUAL = r"[^\x20-\x7e]"
_SCAN = re.compile(rb'["\x00]')


def arrow_header(path: str, delimiter: str) -> list[str] | None:
    """The header when Arrow may read ``path`` as the csv module does, else None."""
    try:
        with open(path, "rb") as handle:
            while chunk := handle.read(1 << 24):
                if _SCAN.search(chunk):
                    return None
    except OSError:
        return None
    header = readers.csv_header(path, delimiter)
    if len(header) < 2 or len(set(header)) != len(header):
        return None
    return header


def arrow_batches(
    path: str, delimiter: str, header: list[str], keep: list[str] | None
) -> Iterator[dict[str, pa.Array]]:
    """The kept columns of each parsed block as string arrays (empty cells as ``""``)."""
    names = [n for n in header if keep is None or n in keep]
    stream = pcsv.open_csv(
        path,
        read_options=pcsv.ReadOptions(column_names=header, skip_rows=1, block_size=BLOCK_BYTES),
        parse_options=pcsv.ParseOptions(delimiter=delimiter, quote_char=False),
        convert_options=pcsv.ConvertOptions(
            column_types={n: pa.string() for n in header},
            include_columns=names,
            strings_can_be_null=False,
            quoted_strings_can_be_null=False,
        ),
    )
    for batch in stream:
        yield {name: batch.column(name) for name in names}


def _plain(column: pa.Array) -> tuple[pa.Array, np.ndarray]:
    """``(cells stripped of spaces, mask of cells left to Python)``."""
    unusual = ~pc.ascii_is_printable(column).to_numpy(zero_copy_only=False)
    return pc.utf8_trim(column, " "), unusual


def _empty(stripped: pa.Array) -> np.ndarray:
    return pc.equal(pc.binary_length(stripped), 0).to_numpy(zero_copy_only=False)


def _matches(stripped: pa.Array, pattern: str) -> np.ndarray:
    return pc.match_substring_regex(stripped, pattern).to_numpy(zero_copy_only=False)


def _has(values: pa.Array, text: str) -> np.ndarray:
    return pc.match_substring(values, text).to_numpy(zero_copy_only=False)


def _numeric_kinds(values: pa.Array) -> set[str] | None:
    """The kinds of non-empty stripped printable cells when Arrow's number parsing decides
    them (every cell an int, or every cell a finite float), else None. Arrow parses
    ``-?digits``, and ``-?(digits[.digits]|.digits)([eE][+-]?digits)`` (or infinity and NaN,
    which are refused here), what ``readers.value_kind``'s patterns accept without a ``+``."""
    # A failing cast costs milliseconds a batch: a text column is told by its first cell.
    if readers.value_kind(values[0].as_py()) == "text" or _has(values, "+").any():
        return None
    marked = _has(values, ".") | _has(values, "e") | _has(values, "E")
    try:
        if not marked.any():
            pc.cast(values, pa.int64())
            return {"int"}
        numbers = pc.cast(values, pa.float64()).to_numpy(zero_copy_only=False)
    except pa.ArrowInvalid:
        return None
    if not np.isfinite(numbers).all():
        return None
    return {"float"} | ({"int"} if not marked.all() else set())


def column_kinds(column: pa.Array) -> set[str]:
    """The kinds ``readers.value_kind`` gives the cells of ``column`` (empty cells none)."""
    stripped, unusual = _plain(column)
    out: set[str] = set()
    for i in np.flatnonzero(unusual).tolist():
        kind = readers.value_kind(column[i].as_py())
        if kind:
            out.add(kind)
    filled = ~unusual & ~_empty(stripped)
    if not filled.any():
        return out
    values = stripped.filter(pa.array(filled)) if not filled.all() else stripped
    found = _numeric_kinds(values)
    if found is not None:
        return out | found
    ints = _matches(values, _INT)
    floats = _matches(values, _FLOAT)
    if ints.any():
        out.add("int")
    if (~ints & floats).any():
        out.add("float")
    if (~ints & ~floats).any():
        out.add("text")
    return out


def labelled(columns: dict[str, pa.Array], label: str) -> np.ndarray:
    """Rows whose label cell is not empty (``read_csv`` rejects the others)."""
    column = columns[label]
    stripped, unusual = _plain(column)
    out = ~_empty(stripped)
    for i in np.flatnonzero(unusual).tolist():
        out[i] = bool(column[i].as_py().strip())
    return out


def file_kinds(
    path: str, delimiter: str, keep: list[str] | None, label: str
) -> dict[str, list[str]] | None:
    """``readers.file_kinds`` of a file Arrow can read, else None (read it a row at a time)."""
    header = arrow_header(path, delimiter)
    if header is None or (label and label not in header):
        return None
    kinds: dict[str, set[str]] = {}
    try:
        for columns in arrow_batches(path, delimiter, header, keep):
            rows = labelled(columns, label) if label else None
            for name, column in columns.items():
                if rows is not None and not rows.all():
                    column = column.filter(pa.array(rows))
                kinds.setdefault(name, set()).update(column_kinds(column))
    except (pa.ArrowInvalid, UnicodeDecodeError, OSError):
        return None
    return {name: sorted(k) for name, k in kinds.items()}


def convert(column: pa.Array, kind: str, checked: bool) -> pa.Array | None:
    """``column`` as ``readers.convert_row`` converts each cell to ``kind`` (int or float;
    empty cells missing), or None when a cell needs Python (or does not fit). ``checked``:
    every cell is known to be of the kind's pattern (an inferred type)."""
    stripped, unusual = _plain(column)
    if unusual.any():
        return None
    empty = _empty(stripped)
    if not checked:
        fits = _matches(stripped, _INT if kind == "int" else f"{_INT}|{_FLOAT}")
        if not (fits | empty).all():
            return None
    if _has(stripped, "+").any():
        stripped = pc.replace_substring_regex(stripped, r"^\+", "")
    cells = pc.if_else(pa.array(empty), pa.scalar(None, pa.string()), stripped)
    try:
        return pc.cast(cells, pa.int64() if kind == "int" else pa.float64())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None  # beyond int64: Python's int decides


def typed_batches(
    path: str,
    delimiter: str,
    keep: list[str] | None,
    label: str,
    types: Callable[[str], tuple[str, bool]],
    convert_row: Callable[[dict[str, Any]], dict[str, Any]],
) -> Iterator[ColumnBatch | dict[str, Any] | Reject]:
    """The rows of a file Arrow can read, each column typed ``types(column)`` (int, float or
    text, and whether its cells decided it rather than a declared type): a ``ColumnBatch`` per
    block, or that block's rows one at a time (``convert_row``, as ``readers.TypedCsvRows``
    yields them) where a cell needs it."""
    header = arrow_header(path, delimiter)
    if header is None:
        raise Reject("the file changed while it was read", path)
    number = 0
    for columns in arrow_batches(path, delimiter, header, keep):
        rows = len(next(iter(columns.values())))
        sources = [f"{path}:row {n}" for n in range(number + 1, number + rows + 1)]
        number += rows
        typed: dict[str, pa.Array] | None = None
        if not label or labelled(columns, label).all():
            typed = {}
            for name, column in columns.items():
                kind, checked = types(name)
                converted = column if kind == "text" else convert(column, kind, checked)
                if converted is None:
                    typed = None
                    break
                typed[name] = converted
        if typed is not None:
            yield ColumnBatch(typed, sources)
            continue
        names = list(columns)
        values = [columns[n].to_pylist() for n in names]
        for where, cells in zip(sources, zip(*values, strict=True), strict=True):
            record = dict(zip(names, cells, strict=True))
            if label and not record.get(label, "").strip():
                yield Reject(f"empty label in column '{label}'", where)
                continue
            record[SOURCE_KEY] = where
            try:
                yield convert_row(record)
            except Reject as exc:
                yield Reject(exc.reason, where)
