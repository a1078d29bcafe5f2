"""Shared fixtures: a runs folder, a pipeline-file writer and the core fixtures plugin."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

TESTS_DIR = Path(__file__).parent
PROJECT_DIR = TESTS_DIR.parent
SHARED_DATA = PROJECT_DIR.parent / "shared" / "data"

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

HEAVY = ("tensorflow", "apache_beam", "tensorflow_data_validation", "keras")


def heavy_imports(args: list[str]) -> list[str]:
    """The heavy libraries (``HEAVY``) a ``pipeline ARGS`` command imported (it must succeed)."""
    probe = (
        "import sys, runpy\n"
        f"sys.argv = ['pipeline', *{args!r}]\n"
        "try:\n    runpy.run_module('beamline', run_name='__main__')\n"
        "except SystemExit as e:\n    assert e.code == 0, e.code\n"
        f"print('HEAVY', [m for m in {HEAVY!r} if m in sys.modules])\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, cwd=PROJECT_DIR, timeout=120
    )
    assert out.returncode == 0, out.stderr
    line = next(x for x in out.stdout.splitlines() if x.startswith("HEAVY "))
    return ast.literal_eval(line.removeprefix("HEAVY "))


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
