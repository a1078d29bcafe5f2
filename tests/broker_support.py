"""Helpers of the broker tests: a real redis-server on 127.0.0.1 and the store's contents."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from beamline.examples import decode_example
from beamline.tfrecord import read_tfrecords
from beamline.window_store import WindowStore


def stored_texts(store: Path, feature: str = "text") -> list[str]:
    """Every example's ``feature`` in the store's committed parts (duplicates kept)."""
    out = []
    target = WindowStore(store)
    for part in target.parts():
        if part.kind != "examples":
            continue
        for data in read_tfrecords(target.examples_path(part.window, part.part)):
            out.append(decode_example(data)[feature][1][0].decode())
    return out


def stored_rejects(store: Path) -> dict[str, str]:
    """``{source: reason}`` of the store's rejected records."""
    out = {}
    for path in sorted((store / "rejected").glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            entry: dict[str, Any] = json.loads(line)
            out[entry["source"]] = entry["reason"]
    return out


def pending(client: Any, stream: str, group: str = "beamline") -> int:
    """Messages delivered to the group and not acknowledged."""
    return int(client.xpending(stream, group)["pending"])
