"""Test support for the text plugin: small file writers and one-step pipeline files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def write_bytes_lines(path: Path, lines: list[bytes]) -> Path:
    """Write raw byte lines (joined by newlines) to ``path``."""
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


def write_jsonl(path: Path, rows: list[Any]) -> Path:
    """Write one JSON value per line."""
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def ingest_pipeline(folder: Path, source: str, name: str = "text_ingest") -> Path:
    """A pipeline file with one ingest step whose component block is ``source`` (YAML)."""
    text = f"name: {name}\nsteps:\n  ingest:\n" + "".join(
        f"    {line}\n" for line in source.strip().splitlines()
    )
    path = folder / f"{name}.yaml"
    path.write_text(text, encoding="utf-8")
    return path
