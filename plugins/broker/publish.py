"""Replay a folder of files or a CSV file into a Redis Stream, one message per record.

A folder is read in the class-folder layout of ``image_folder`` (the first sub-folder's name is
the label; files directly in the folder have none); a CSV file gives one message per row, its
columns as a JSON object (numbers as numbers) and the ``label_column`` as the label. The order
is shuffled with a seed (or kept sorted), so that windows see the classes mixed.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from beamline import SpecError
from beamline.files import csv_rows
from beamline.ingest import Reject

from .messages import encode


def folder_messages(root: Path, extensions: list[str]) -> Iterator[dict[str, bytes]]:
    """One message per file under ``root`` (sorted), labelled by its first sub-folder."""
    wanted = {e.lower() if e.startswith(".") else f".{e.lower()}" for e in extensions}
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        if path.name.startswith(".") or (wanted and path.suffix.lower() not in wanted):
            continue
        parts = path.relative_to(root).parts
        label = parts[0] if len(parts) > 1 else None
        yield encode(path.read_bytes(), label=label, name=str(path.relative_to(root)))


def _number(text: str) -> Any:
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            continue
    return text


def csv_messages(path: Path, label_column: str, delimiter: str = ",") -> Iterator[Any]:
    """One message per CSV row (a JSON object of its columns), or the ``Reject`` of a bad row."""
    for item in csv_rows(str(path), delimiter, line_numbers=True):
        if isinstance(item, Reject):
            yield item
            continue
        where, header, row, _ = item
        values = dict(zip(header, row, strict=True))
        label = values.pop(label_column, None) if label_column else None
        data = json.dumps({k: _number(v) for k, v in values.items()}).encode("utf-8")
        yield encode(data, label=label, name=where)


def messages_of(
    source: Path,
    *,
    extensions: list[str],
    label_column: str,
    labels: list[str],
    shuffle: bool,
    seed: int,
    limit: int,
) -> tuple[list[dict[str, bytes]], list[Reject]]:
    """The messages to publish from ``source`` (a folder or a .csv file), and bad CSV rows."""
    if source.is_dir():
        found: list[Any] = list(folder_messages(source, extensions))
    elif source.is_file() and source.suffix.lower() == ".csv":
        found = list(csv_messages(source, label_column))
    else:
        raise SpecError(f"{source}: expected a folder of class folders or a .csv file")
    bad = [m for m in found if isinstance(m, Reject)]
    messages = [m for m in found if not isinstance(m, Reject)]
    if labels:
        messages = [m for m in messages if m.get("label", b"").decode() in labels]
    if shuffle:
        random.Random(seed).shuffle(messages)
    return (messages[:limit] if limit else messages), bad


def publish(
    client: Any, stream: str, messages: list[dict[str, bytes]], rate: float = 0.0
) -> list[str]:
    """``XADD`` each message to ``stream`` (at most ``rate`` per second when > 0); their ids."""
    ids: list[str] = []
    started = time.monotonic()
    for start in range(0, len(messages), 200):
        batch = messages[start : start + 200] if not rate else messages[start : start + 1]
        pipe = client.pipeline(transaction=False)
        for fields in batch:
            pipe.xadd(stream, fields)
        ids += [i.decode() if isinstance(i, bytes) else str(i) for i in pipe.execute()]
        if rate:
            time.sleep(max(0.0, started + len(ids) / rate - time.monotonic()))
    return ids
