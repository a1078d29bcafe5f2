"""The README cannot rot: its shell, Python, pipeline-file and plugin blocks run as written.

Every fenced ``bash``, ``python`` and ``yaml`` block of README.md runs, in README order, unless
the line just above it is ``<!-- not run: REASON -->`` (the two set-up commands: this very suite,
and the demo CI runs anyway). They run as a new user's commands would: in one working folder
that holds the repository's ``pipelines/`` (and ``data/``, for a file written as if it stood in
``pipelines/``), with ``.venv/bin`` first on ``PATH`` and runs kept in a temporary folder. Shell
blocks run as one ``bash -e`` script each, Python blocks as scripts, and a ``yaml`` block is a
pipeline file that must load. A block marked ``<!-- file: NAME -->`` is written to NAME in that
folder (a plugin module or a pipeline file that the next blocks use), and one marked
``<!-- not run: what the commands above print -->`` must match what the block before printed,
line by line.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

import beamline

PROJECT = Path(__file__).resolve().parents[1]
README = PROJECT / "README.md"
FENCE = re.compile(r"^```(\w+)\s*$")
MARKER = re.compile(r"^<!--\s*(not run|file):\s*(.+?)\s*-->$")
PRINTED = "what the commands above print"
RUN_LANGUAGES = ("bash", "python", "yaml")


@dataclass
class Block:
    """One fenced block of the README: where it starts, its language, text and marker."""

    line: int
    language: str
    text: str
    marker: tuple[str, str] | None


def readme_blocks(path: Path = README) -> list[Block]:
    """The fenced code blocks of a Markdown file, each with the marker comment above it."""
    lines = path.read_text(encoding="utf-8").splitlines()
    blocks: list[Block] = []
    i = 0
    while i < len(lines):
        opened = FENCE.match(lines[i])
        if not opened:
            i += 1
            continue
        start, body = i, []
        i += 1
        while i < len(lines) and lines[i].strip() != "```":
            body.append(lines[i])
            i += 1
        above = lines[start - 1].strip() if start else ""
        marked = MARKER.match(above)
        marker = (marked.group(1), marked.group(2)) if marked else None
        blocks.append(Block(start + 1, opened.group(1), "\n".join(body) + "\n", marker))
        i += 1
    return blocks


def runnable_blocks() -> list[Block]:
    """The blocks this test runs (and the plugin files they need, in README order)."""
    return [
        b
        for b in readme_blocks()
        if (b.marker is None and b.language in RUN_LANGUAGES)
        or (b.marker or ("",))[0] == "file"
        or (b.marker or ("", ""))[1] == PRINTED
    ]


def test_every_block_is_run_or_says_why_not():
    """A block in a language we cannot run is marked, so the choice is visible in the README."""
    for block in readme_blocks():
        if block.marker is None:
            assert block.language in RUN_LANGUAGES, (
                f"README.md:{block.line}: a ```{block.language} block must be marked "
                "'<!-- not run: why -->' or '<!-- file: PATH -->'"
            )


@pytest.mark.slow
def test_readme_blocks_run_as_written(tmp_path):
    """Run every runnable README block in order, in one folder, as a new user would."""
    work = tmp_path / "work"
    work.mkdir()
    (work / "pipelines").symlink_to(PROJECT / "pipelines")
    (work / "data").symlink_to(PROJECT / "pipelines" / "data")
    venv_bin = Path(sys.executable).parent
    env = {
        **os.environ,
        "PATH": f"{venv_bin}{os.pathsep}{os.environ.get('PATH', '')}",
        "PIPELINE_RUNS_DIR": str(tmp_path / "runs"),
    }
    blocks = runnable_blocks()
    assert any(b.language == "bash" for b in blocks) and any(b.language == "python" for b in blocks)
    printed = ""
    for block in blocks:
        where = f"README.md:{block.line} (```{block.language})"
        if block.marker == ("not run", PRINTED):
            missing = [line for line in block.text.splitlines() if line not in printed]
            assert not missing, f"{where}: the commands above did not print {missing}"
            continue
        if block.marker is not None:  # a file the next blocks use
            (work / block.marker[1]).write_text(block.text, encoding="utf-8")
            continue
        if block.language == "yaml":
            file = work / "readme_pipeline.yaml"
            file.write_text(block.text, encoding="utf-8")
            beamline.load(file)
            continue
        command = (
            ["bash", "-e", "-o", "pipefail", "-c", block.text]
            if block.language == "bash"
            else [sys.executable, "-c", block.text]
        )
        out = subprocess.run(
            command, cwd=work, env=env, capture_output=True, text=True, timeout=900
        )
        printed = out.stdout + out.stderr
        assert out.returncode == 0, (
            f"{where} failed ({out.returncode}):\n{out.stdout}\n{out.stderr}"
        )
