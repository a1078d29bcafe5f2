"""Fixtures shared by every test module (nothing imports this file: request a fixture by name).

How the tests share code:

- fixtures here, in ``conftest.py``;
- ``data_paths.py``: every path the tests read, named once (all of it ships in the repository);
- ``<area>_support.py``: helper functions of one area's tests (``ingest_support``,
  ``keras_support``, ``text_support``, ``validation_support``);
- ``<name>_plugin.py``: pipeline plugins that test pipeline files load through ``plugins: [...]``
  (``core_plugin``, ``analyzer_plugin``, ``examples_plugin``).
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest
from data_paths import PROJECT_DIR, TESTS_DIR

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

#: The longest test files (a minute or more each on 2 cores), longest first. They are collected
#: before the others so that pytest-xdist, which hands out whole files (``dev.py test``), starts
#: them early instead of ending the run on one of them while the other worker idles.
LONG_FILES = (
    "test_ready_pipelines.py",
    "test_keras_resume.py",
    "test_readme.py",
    "test_bench.py",
    "test_continuous.py",
    "test_attributions.py",
    "test_broker.py",
    "test_tune_search.py",
    "test_speech_pipeline.py",
    "test_seq2seq_resume.py",
    "test_text_pipeline.py",
    "test_keras_strategies.py",
    "test_wheel.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Under pytest-xdist, collect the files of ``LONG_FILES`` first (every file's tests stay
    together, in order); a serial run keeps the files in their usual order."""
    if "PYTEST_XDIST_WORKER" not in os.environ:
        return
    rank = {name: i for i, name in enumerate(LONG_FILES)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))


#: The libraries that must not be imported by a plugin's registration path or a listing command.
HEAVY = ("tensorflow", "keras", "apache_beam", "tensorflow_data_validation")


def _heavy_imports(
    code: str = "", *, command: list[str] | None = None, also: tuple[str, ...] = ()
) -> list[str]:
    """The modules of ``HEAVY + also`` that a fresh Python process imported.

    The process runs ``code`` (Python statements), or the ``pipeline COMMAND`` command in-process
    (which must exit 0)."""
    if command is not None:
        code = (
            "import runpy\n"
            f"sys.argv = ['pipeline', *{command!r}]\n"
            "try:\n    runpy.run_module('beamline', run_name='__main__')\n"
            "except SystemExit as e:\n    assert e.code in (0, None), e.code\n"
        )
    watched = (*HEAVY, *also)
    probe = f"import sys\n{code}\nprint('HEAVY', [m for m in {watched!r} if m in sys.modules])\n"
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, cwd=PROJECT_DIR, timeout=120
    )
    assert out.returncode == 0, out.stderr
    line = next(x for x in out.stdout.splitlines() if x.startswith("HEAVY "))
    return ast.literal_eval(line.removeprefix("HEAVY "))


@pytest.fixture
def heavy_imports() -> Callable[..., list[str]]:
    """The heavy-import probe: ``heavy_imports("import beamline_plugins.audio", also=("numpy",))``
    or ``heavy_imports(command=["plugins", "--json"])`` returns the heavy modules imported."""
    return _heavy_imports


@pytest.fixture
def fixtures_plugin(monkeypatch, tmp_path):
    """Make ``core_plugin`` importable and log its step runs to a file; return the log path."""
    monkeypatch.syspath_prepend(str(TESTS_DIR))
    log = tmp_path / "events.log"
    monkeypatch.setenv("CORE_PLUGIN_LOG", str(log))
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
