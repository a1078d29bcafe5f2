"""Shared fixtures: a runs folder, a pipeline-file writer and the core fixtures plugin."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest

TESTS_DIR = Path(__file__).parent
PROJECT_DIR = TESTS_DIR.parent
SHARED_DATA = PROJECT_DIR.parent / "shared" / "data"

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@pytest.fixture
def fixtures_plugin(monkeypatch, tmp_path):
    """Make ``core_fixtures`` importable and log its step runs to a file; return the log path."""
    monkeypatch.syspath_prepend(str(TESTS_DIR))
    log = tmp_path / "events.log"
    monkeypatch.setenv("CORE_FIXTURES_LOG", str(log))
    monkeypatch.setenv("PYTHONPATH", str(TESTS_DIR))
    return log


@pytest.fixture
def write_pipeline(tmp_path):
    """Write a pipeline file from indented YAML text and return its path."""

    def write(text: str, name: str = "p.yaml") -> Path:
        path = tmp_path / name
        path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
        return path

    return write


def events(log: Path) -> list[str]:
    """The lines the fixtures plugin logged."""
    return log.read_text().splitlines() if log.exists() else []
