"""The error contract of the ``pipeline`` command, run as a user runs it (a subprocess).

Bad input exits 2 and names the file, line and key where there is one, with the closest valid
name; a failing step exits 1; the gate 3. With ``--json`` every outcome prints one JSON object on
stdout (``exit_code``, ``message``, ``run``). Input refused before any step ran leaves no run
folder.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from data_paths import PROJECT_DIR, TESTS_DIR

PIPELINE = """\
name: numbers
plugins: [core_plugin]
steps:
  data: {component: numbers, count: 4}
  train: {component: fit, examples: data}
"""

# A source that looks at its folder only when the step is about to run (its parameter declares
# no path to check at load): the executor's own guard against a missing data folder.
LATE_LISTING_PLUGIN = '''
from beamline import Source, StepResult, hookimpl, param
from beamline.files import FileListing


class Listed(Source):
    """Lists the text files of ``root`` when the step runs."""

    name = "listed"
    root: str = param(help="a folder of class sub-folders")

    def data_fingerprint(self, ctx):
        return FileListing(self.name, ctx.resolve(self.root), (".txt",)).data_fingerprint()

    def run(self, ctx):
        return StepResult()


@hookimpl
def register_sources(register):
    register(Listed)
'''


def pipeline(*args: str, plugin_dir: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``python -m beamline ARGS`` with the test plugins importable."""
    path = [str(TESTS_DIR)] + ([str(plugin_dir)] if plugin_dir else [])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(path)}
    return subprocess.run(
        [sys.executable, "-m", "beamline", *args],
        capture_output=True,
        text=True,
        cwd=PROJECT_DIR,
        env=env,
        timeout=300,
    )


def outcome(out: subprocess.CompletedProcess[str]) -> dict:
    """The one JSON object on stdout (``json.loads`` fails on anything else there)."""
    return json.loads(out.stdout)


def run_folders(runs: Path) -> list[Path]:
    """Every run folder under ``runs`` (the ``.cache`` folders aside)."""
    if not runs.is_dir():
        return []
    return [r for p in runs.iterdir() for r in p.iterdir() if not r.name.startswith(".")]


def write(folder: Path, text: str, name: str = "p.yaml") -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("overrides", "parts"),
    [
        (
            ["--set", "steps.trian.count=3"],
            ["--set steps.trian.count=3", "no step named 'trian'", "did you mean 'train'?"],
        ),
        (
            ["--set", "steps.data.cont=3"],
            ["--set steps.data.cont=3", "steps.data.cont", "did you mean 'count'?"],
        ),
        (
            ["--set", "steps.data.count=many"],
            ["--set steps.data.count=many", "steps.data.count", "expected integer, got 'many'"],
        ),
        (
            ["--set", "steps.data.component=numbrs"],
            ["--set steps.data.component=numbrs", "did you mean 'numbers'?"],
        ),
        (["--force-step", "trian"], ["p.yaml", "no step named 'trian'", "did you mean 'train'?"]),
        (["--set", "steps.data"], ["--set steps.data", "expected KEY=VALUE"]),
    ],
)
def test_a_wrong_override_exits_2_naming_it_and_the_closest_name(tmp_path, overrides, parts):
    path = write(tmp_path, PIPELINE)
    runs = tmp_path / "runs"
    out = pipeline("run", str(path), "--runs-dir", str(runs), "--json", *overrides)
    assert out.returncode == 2, out.stderr
    result = outcome(out)
    assert result["exit_code"] == 2 and result["status"] == "bad input"
    assert result["run"] is None
    for part in parts:
        assert part in result["message"] and part in out.stderr
    assert "Traceback" not in out.stderr
    assert run_folders(runs) == []


def test_a_mistake_in_the_file_names_its_line_and_key(tmp_path):
    path = write(
        tmp_path,
        """\
        name: numbers
        plugins: [core_plugin]
        steps:
          data: {component: numbers, count: 4}
          train:
            component: fit
            examples: dta
        """,
    )
    out = pipeline("run", str(path), "--runs-dir", str(tmp_path / "runs"))
    assert out.returncode == 2
    assert f"{path}:7: steps.train.examples: no step named 'dta'" in out.stderr
    assert "did you mean 'data'?" in out.stderr
    assert out.stdout == ""


def test_a_missing_data_folder_exits_2_naming_the_key_and_leaves_no_run(tmp_path):
    path = write(
        tmp_path,
        """\
        name: pictures
        steps:
          ingest: {component: image_folder, root: no_such_folder}
        """,
    )
    runs = tmp_path / "runs"
    out = pipeline("run", str(path), "--runs-dir", str(runs), "--json")
    assert out.returncode == 2, out.stderr
    message = outcome(out)["message"]
    assert message.startswith(f"{path}:3: steps.ingest.root: folder not found")
    assert str(tmp_path / "no_such_folder") in message
    assert run_folders(runs) == []


def test_a_folder_missing_when_the_step_starts_exits_2_and_leaves_no_run(tmp_path):
    (tmp_path / "plugin").mkdir()
    (tmp_path / "plugin" / "late_listing.py").write_text(LATE_LISTING_PLUGIN, encoding="utf-8")
    path = write(
        tmp_path,
        """\
        name: late
        plugins: [late_listing]
        steps:
          read: {component: listed, root: gone}
        """,
    )
    runs = tmp_path / "runs"
    out = pipeline(
        "run", str(path), "--runs-dir", str(runs), "--json", plugin_dir=tmp_path / "plugin"
    )
    assert out.returncode == 2, out.stderr
    result = outcome(out)
    assert result["run"] is None
    assert result["message"] == (
        f"{path}: steps.read.root: folder not found: {tmp_path / 'gone'} (listed)"
    )
    assert "no step ran: the run folder was removed" in out.stderr
    assert run_folders(runs) == []


def test_a_missing_pipeline_file_and_bad_usage_exit_2_with_json(tmp_path):
    missing = pipeline("run", str(tmp_path / "nope.yaml"), "--json")
    assert missing.returncode == 2
    assert outcome(missing) == {
        "exit_code": 2,
        "status": "bad input",
        "message": f"{tmp_path / 'nope.yaml'}: no such file",
        "run": None,
    }
    usage = pipeline("run", "--json")
    assert usage.returncode == 2
    assert outcome(usage)["message"] == "Missing argument 'PIPELINE_FILE'."
    assert "Usage: pipeline run" in usage.stderr


def test_an_unknown_run_exits_2_with_the_closest_name(tmp_path):
    runs = tmp_path / "runs"
    assert pipeline("run", str(write(tmp_path, PIPELINE)), "--runs-dir", str(runs)).returncode == 0
    out = pipeline("show", "numbrs", "--runs-dir", str(runs), "--json")
    assert out.returncode == 2
    result = outcome(out)
    assert "no run 'numbrs'" in result["message"]
    assert "did you mean 'numbers'?" in result["message"]
    nothing = pipeline("show", "anything", "--runs-dir", str(tmp_path / "empty"))
    assert nothing.returncode == 2 and "no run 'anything'" in nothing.stderr


def test_a_failing_step_exits_1_and_the_gate_3_with_their_run_folder(tmp_path):
    path = write(tmp_path, PIPELINE)
    runs = tmp_path / "runs"
    failed = pipeline(
        "run", str(path), "--runs-dir", str(runs), "--json", "--set", "steps.train.fail=true"
    )
    assert failed.returncode == 1, failed.stderr
    result = outcome(failed)
    assert result["exit_code"] == 1 and result["status"] == "failed"
    assert "step 'train' (component 'fit' of plugin 'core_plugin') failed" in result["message"]
    assert Path(result["run"]).is_dir() and Path(result["run"]).parent == runs / "numbers"
    gate = pipeline(
        "run", str(path), "--runs-dir", str(runs), "--json", "--set", "steps.train.gate=true"
    )
    assert gate.returncode == 3
    assert outcome(gate)["status"] == "gate failed"
    assert "feature 'n': drift 0.5" in outcome(gate)["message"]
    assert Path(outcome(gate)["run"]).is_dir()


def test_the_failed_step_is_in_the_summary_on_stdout(tmp_path):
    path = write(tmp_path, PIPELINE)
    out = pipeline(
        "run", str(path), "--runs-dir", str(tmp_path / "runs"), "--set", "steps.train.fail=true"
    )
    assert out.returncode == 1
    rows = {line.split()[1]: line.split()[5] for line in out.stdout.splitlines() if "│" in line}
    assert rows == {"data": "ran", "train": "failed"}
    assert "failed: " + str(tmp_path / "runs" / "numbers") in out.stdout
    assert out.stderr.startswith("run numbers/")
    assert "error: step 'train'" in out.stderr and "error:" not in out.stdout


def write_table_export(folder: Path) -> Path:
    """An export folder whose ``export.json`` names two table columns (no model is loaded:
    ``--row`` is checked against those names first)."""
    folder.mkdir()
    (folder / "saved_model.pb").write_bytes(b"")
    inputs = {"age": "numeric", "sex": "categorical"}
    (folder / "export.json").write_text(json.dumps({"inputs": inputs}), encoding="utf-8")
    return folder


@pytest.mark.parametrize(
    ("row", "parts"),
    [
        ("age=59,sx=2", ["--row 'age=59,sx=2': unknown column sx", "did you mean 'sex'?"]),
        ("age59", ["--row 'age59': expected NAME=VALUE pairs"]),
    ],
)
def test_a_bad_predict_row_exits_2(tmp_path, row, parts):
    export = write_table_export(tmp_path / "export")
    out = pipeline("predict", str(export), "--row", row, "--json")
    assert out.returncode == 2, out.stderr
    result = outcome(out)
    assert result["exit_code"] == 2 and result["run"] is None
    for part in parts:
        assert part in result["message"]
