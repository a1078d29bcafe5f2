"""Readers run inside Beam workers: CSV rows, JSON lines and text files into text records.

Each reader yields records ``{"text", "label", ["group"], extra columns..., "__source__"}`` and
``Reject`` for what cannot be used, naming ``file:row N`` (or the file) and the reason:
undecodable bytes (invalid UTF-8), empty text, missing label, malformed rows. Only the standard
library is used.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from beamline.files import csv_rows
from beamline.ingest import SOURCE_KEY, Reject


@dataclass(frozen=True)
class Columns:
    """Which columns of a table hold the text, the label, the group and extra features."""

    text: str = "text"
    label: str = ""
    group: str = ""
    extra: tuple[str, ...] = field(default_factory=tuple)

    def wanted(self) -> list[str]:
        """Every column the reader needs."""
        return [c for c in (self.text, self.label, self.group, *self.extra) if c]


def _bad_bytes(value: str) -> str | None:
    """Describe the first undecodable byte of a surrogate-escaped string, or None."""
    for index, char in enumerate(value):
        if "\udc80" <= char <= "\udcff":
            return f"byte 0x{ord(char) - 0xDC00:02x} at character {index}"
    return None


def _as_text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return value if isinstance(value, str) else str(value)


def make_record(row: dict[str, Any], columns: Columns, where: str) -> dict[str, Any]:
    """A record from one row's values; raise ``Reject`` for bad bytes, empty text, no label."""
    values = {name: _as_text(row.get(name)) for name in columns.wanted()}
    for name, value in values.items():
        problem = _bad_bytes(value) if value is not None else None
        if problem:
            raise Reject(f"undecodable bytes in column '{name}': invalid UTF-8 ({problem})", where)
    text = values[columns.text]
    if text is None:
        raise Reject(f"missing text: no '{columns.text}' value", where)
    if not text.strip():
        raise Reject(f"empty text in column '{columns.text}'", where)
    record: dict[str, Any] = {SOURCE_KEY: where, "text": text}
    if columns.label:
        label = values[columns.label]
        if label is None or not label.strip():
            raise Reject(f"missing label: column '{columns.label}' is empty", where)
        record["label"] = label.strip()
    if columns.group:
        group = values[columns.group]
        if group is None or not group.strip():
            raise Reject(f"missing group: column '{columns.group}' is empty", where)
        record["group"] = group.strip()
    for name in columns.extra:
        record[name] = values[name]
    return record


def read_csv_rows(item: tuple[str, str, Columns]) -> Iterator[Any]:
    """Yield the records of a CSV file with a header row (``item``: path, delimiter, columns)."""
    path, delimiter, columns = item

    def check(header: list[str]) -> str | None:
        missing = [c for c in columns.wanted() if c not in header]
        return f"no column {missing} in the header {header}" if missing else None

    for item in csv_rows(path, delimiter, check_header=check):
        if isinstance(item, Reject):
            yield item
            continue
        where, header, row, _ = item
        try:
            yield make_record(dict(zip(header, row, strict=True)), columns, where)
        except Reject as exc:
            yield exc


def read_jsonl_rows(item: tuple[str, str, Columns]) -> Iterator[Any]:
    """Yield the records of a JSON Lines file, one object per line (``item``: path, _, columns)."""
    path, _, columns = item
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        yield Reject(f"unreadable file: {exc.strerror or exc}", path)
        return
    number = 0
    for raw in data.split(b"\n"):
        if not raw.strip():
            continue
        number += 1
        where = f"{path}:row {number}"
        try:
            line = raw.decode("utf-8").removeprefix("\ufeff")
        except UnicodeDecodeError as exc:
            yield Reject(
                f"undecodable bytes: invalid UTF-8 (byte 0x{raw[exc.start]:02x} at {exc.start})",
                where,
            )
            continue
        try:
            row = json.loads(line)
        except ValueError as exc:
            yield Reject(f"invalid JSON: {exc}", where)
            continue
        if not isinstance(row, dict):
            yield Reject(f"expected a JSON object, got {type(row).__name__}", where)
            continue
        try:
            yield make_record(row, columns, where)
        except Reject as exc:
            yield exc


def read_text_file(item: tuple[str, str]) -> Iterator[Any]:
    """Yield the record of one text file (``item``: path, label), or its ``Reject``."""
    path, label = item
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        yield Reject(f"unreadable file: {exc.strerror or exc}", path)
        return
    try:
        text = data.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as exc:
        byte = data[exc.start]
        yield Reject(f"undecodable bytes: invalid UTF-8 (byte 0x{byte:02x} at {exc.start})", path)
        return
    if not text.strip():
        yield Reject("empty text (the file holds no text)", path)
        return
    yield {SOURCE_KEY: path, "text": text, "label": label}
