"""The ``pipeline`` command: start-up cost, listings, JSON output and exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from data_paths import PROJECT_DIR, TESTS_DIR

PIPELINE = """
name: numbers
plugins: [core_fixtures]
steps:
  data: {component: numbers, count: 4}
  train: {component: fit, examples: data}
"""


def cli(*args, cwd=PROJECT_DIR):
    env = {**os.environ, "PYTHONPATH": str(TESTS_DIR)}
    return subprocess.run(
        [sys.executable, "-m", "beamline", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=300,
    )


@pytest.mark.parametrize(
    "args", [["--help"], ["plugins"], ["plugins", "--json"], ["run", "--help"]]
)
def test_listing_commands_do_not_import_heavy_libraries(args, heavy_imports):
    assert heavy_imports(command=args) == []


def test_console_script_is_installed():
    script = Path(sys.executable).parent / "pipeline"
    out = subprocess.run([str(script), "--version"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and "version" in out.stdout


def test_run_prints_summary_and_json(write_pipeline, tmp_path):
    path = write_pipeline(PIPELINE)
    out = cli("--runs-dir", str(tmp_path / "runs"), "run", str(path), "--json")
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert [s["status"] for s in result["steps"]] == ["ran", "ran"]
    assert result["steps"][0]["counts"] == {"read": 4, "written": 4, "rejected": 0}
    assert "summary" in out.stderr and "succeeded" in out.stderr
    again = json.loads(cli("--runs-dir", str(tmp_path / "runs"), "run", str(path), "--json").stdout)
    assert [s["status"] for s in again["steps"]] == ["reused", "reused"]


def test_runs_and_show_list_runs_as_json(write_pipeline, tmp_path):
    path = write_pipeline(PIPELINE)
    runs_dir = str(tmp_path / "runs")
    assert cli("--runs-dir", runs_dir, "run", str(path)).returncode == 0
    runs = json.loads(cli("--runs-dir", runs_dir, "runs", "--json").stdout)
    assert len(runs) == 1 and runs[0]["status"] == "succeeded"
    assert runs[0]["completed_steps"] == ["data", "train"]
    shown = json.loads(cli("--runs-dir", runs_dir, "show", "numbers", "--json").stdout)
    assert shown["run_id"] == runs[0]["run_id"]
    assert shown["step_details"][1]["metrics"] == {"total": 12.0}
    text = cli("--runs-dir", runs_dir, "show", f"numbers/{runs[0]['run_id']}").stdout
    assert "train (fit)" in text and "report.html" in text
    missing = cli("--runs-dir", runs_dir, "show", "nothing")
    assert missing.returncode == 1 and "no run 'nothing'" in missing.stderr


def test_plugins_and_describe(tmp_path):
    listing = json.loads(cli("--plugin", "core_fixtures", "plugins", "--json").stdout)
    fit = next(c for c in listing["components"] if c["name"] == "fit")
    assert fit == {
        "name": "fit",
        "kind": "trainer",
        "plugin": "core_fixtures",
        "summary": "Scales the numbers of ``examples``; waits for ``wait_for`` to vanish if set.",
    }
    described = json.loads(cli("--plugin", "core_fixtures", "describe", "fit", "--json").stdout)
    params = {p["name"]: p for p in described["parameters"]}
    assert params["examples"]["required"] and params["examples"]["type"] == "step name"
    assert params["model"]["default"] == {"component": "scale", "factor": 2.0}
    assert params["fail"] == {
        "name": "fail",
        "type": "true/false",
        "required": False,
        "default": False,
        "limits": "",
        "help": "raise instead of working",
    }
    scale = json.loads(cli("--plugin", "core_fixtures", "describe", "scale", "--json").stdout)
    assert scale["parameters"][0]["limits"] == "> 0"
    text = cli("--plugin", "core_fixtures", "describe", "numbers").stdout
    assert "count: integer (default 10)" in text
    unknown = cli("--plugin", "core_fixtures", "describe", "nubmers")
    assert unknown.returncode == 2 and "did you mean 'numbers'" in unknown.stderr


@pytest.mark.parametrize(
    ("text", "overrides", "code", "message"),
    [
        (None, [], 2, "no such file"),
        ("steps: [a\n", [], 2, "malformed YAML"),
        (PIPELINE, ["--set", "steps.data.component=numbrs"], 2, "did you mean 'numbers'"),
        (PIPELINE, ["--set", "steps.data.count=many"], 2, "expected integer, got 'many'"),
        (
            PIPELINE,
            ["--set", "steps.train.fail=true"],
            1,
            "step 'train' (component 'fit' of plugin 'core_fixtures') failed",
        ),
        (PIPELINE, ["--set", "steps.train.gate=true"], 3, "feature 'n': drift 0.5"),
        (PIPELINE, ["--set", "steps.data.lose=1"], 1, "lost records"),
        (PIPELINE, ["--force-step", "trian"], 2, "did you mean 'train'"),
    ],
)
def test_bad_input_gets_a_clear_message_and_exit_code(tmp_path, text, overrides, code, message):
    path = tmp_path / "p.yaml"
    if text is not None:
        path.write_text(text)
    out = cli("--runs-dir", str(tmp_path / "runs"), "run", str(path), *overrides)
    assert out.returncode == code, out.stderr
    assert message in out.stderr
    assert "Traceback" not in out.stderr
    if code in (1, 3) and "lost" not in message:
        assert str(tmp_path / "runs" / "numbers") in out.stderr


def test_usage_error_exits_2():
    out = cli("run")
    assert out.returncode == 2 and "Missing argument" in out.stderr
