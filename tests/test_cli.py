"""The ``pipeline`` command: start-up cost, listings, JSON output, exit codes and what it prints
where (results on stdout, progress on stderr, library noise hidden unless --verbose).

The error contract in detail: ``test_error_contract.py``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from data_paths import DIGITS, PROJECT_DIR, TESTS_DIR

PIPELINE = """
name: numbers
plugins: [core_plugin]
steps:
  data: {component: numbers, count: 4}
  train: {component: fit, examples: data}
"""


def cli(*args, cwd=PROJECT_DIR, env=None):
    env = {**os.environ, "PYTHONPATH": str(TESTS_DIR), **(env or {})}
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
    assert result["exit_code"] == 0 and result["status"] == "succeeded"
    assert result["run"].startswith(str(tmp_path / "runs" / "numbers"))
    assert [s["status"] for s in result["steps"]] == ["ran", "ran"]
    assert result["steps"][0]["counts"] == {"read": 4, "written": 4, "rejected": 0}
    assert "summary" in out.stderr and "succeeded" in out.stderr  # stdout holds the JSON alone
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
    assert missing.returncode == 2 and "no run 'nothing'" in missing.stderr


def test_plugins_and_describe(tmp_path):
    listing = json.loads(cli("--plugin", "core_plugin", "plugins", "--json").stdout)
    fit = next(c for c in listing["components"] if c["name"] == "fit")
    assert fit == {
        "name": "fit",
        "kind": "trainer",
        "plugin": "core_plugin",
        "summary": "Scales the numbers of ``examples``; waits for ``wait_for`` to vanish if set.",
    }
    described = json.loads(cli("--plugin", "core_plugin", "describe", "fit", "--json").stdout)
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
    scale = json.loads(cli("--plugin", "core_plugin", "describe", "scale", "--json").stdout)
    assert scale["parameters"][0]["limits"] == "> 0"
    text = cli("--plugin", "core_plugin", "describe", "numbers").stdout
    assert "count: integer (default 10)" in text
    unknown = cli("--plugin", "core_plugin", "describe", "nubmers")
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
            "step 'train' (component 'fit' of plugin 'core_plugin') failed",
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


def test_results_go_to_stdout_and_progress_to_stderr_in_whole_lines(write_pipeline, tmp_path):
    path = write_pipeline(PIPELINE)
    runs = tmp_path / "runs" / "with a long name so that the outcome line is over eighty columns"
    out = cli("run", str(path), "--runs-dir", str(runs))
    assert out.returncode == 0, out.stderr
    assert "summary" in out.stdout and "summary" not in out.stderr
    outcome = [line for line in out.stdout.splitlines() if " succeeded: " in line]
    run_id = outcome[0].split()[1].removeprefix("numbers/")
    assert outcome == [f"run numbers/{run_id} succeeded: {runs / 'numbers' / run_id}"]
    assert "… data (numbers) running" in out.stderr and "running" not in out.stdout
    assert "✓ train (fit) ran in" in out.stderr


def test_group_options_may_follow_the_command(write_pipeline, tmp_path):
    path = write_pipeline(PIPELINE)
    after = cli("run", str(path), "--runs-dir", str(tmp_path / "runs"), "--json", "--verbose")
    assert after.returncode == 0, after.stderr
    assert json.loads(after.stdout)["run"].startswith(str(tmp_path / "runs"))
    listed = cli("runs", "--json", f"--runs-dir={tmp_path / 'runs'}")
    assert [r["pipeline"] for r in json.loads(listed.stdout)] == ["numbers"]
    plugin_after = cli("describe", "fit", "--plugin", "core_plugin", cwd=tmp_path)
    assert plugin_after.returncode == 0 and "examples: step name" in plugin_after.stdout


def test_a_rejected_record_shows_its_reason_and_the_rejected_folder(tmp_path):
    for label, digit in (("zero", "0"), ("one", "1")):
        folder = tmp_path / "data" / label
        folder.mkdir(parents=True)
        for png in sorted((DIGITS / digit).glob("*.png"))[:2]:
            (folder / png.name).write_bytes(png.read_bytes())
    (tmp_path / "data" / "one" / "empty.png").write_bytes(b"")
    path = tmp_path / "p.yaml"
    path.write_text(
        "name: rejects\nsteps:\n"
        "  ingest: {component: image_folder, root: data, transforms: [decode_image]}\n",
        encoding="utf-8",
    )
    out = cli("run", str(path), "--runs-dir", str(tmp_path / "runs"))
    assert out.returncode == 0, out.stderr
    empty = tmp_path / "data" / "one" / "empty.png"
    assert f"rejected {empty}: empty file (0 bytes)" in out.stderr
    folder = next((tmp_path / "runs" / "rejects").glob("2*")) / "ingest" / "rejected"
    assert f"rejected records: {folder}" in out.stderr


NOISE = ("oneDNN", "cuda", "cuDNN", "TensorRT", "rendezvous", "crcmod", "FutureWarning")
FAST_DIGITS = ["--set", "steps.train.epochs=1", "--set", "steps.evaluate.thresholds.accuracy=0.1"]


@pytest.mark.slow
def test_library_noise_is_hidden_unless_verbose(tmp_path):
    env = {
        k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", "PYTHONWARNINGS")
    }
    runs = str(tmp_path / "runs")
    command = ["run", "pipelines/digits.yaml", "--runs-dir", runs, *FAST_DIGITS]
    quiet = subprocess.run(
        [sys.executable, "-m", "beamline", *command],
        capture_output=True,
        text=True,
        cwd=PROJECT_DIR,
        env=env,
        timeout=600,
    )
    assert quiet.returncode == 0, quiet.stderr
    assert [line for line in quiet.stderr.splitlines() if any(n in line for n in NOISE)] == []
    assert "learning_rate" not in quiet.stdout + quiet.stderr
    loud = subprocess.run(
        [sys.executable, "-m", "beamline", "--verbose", *command, "--force-step", "ingest"],
        capture_output=True,
        text=True,
        cwd=PROJECT_DIR,
        env=env,
        timeout=600,
    )
    assert loud.returncode == 0, loud.stderr
    assert "crcmod package not found" in loud.stderr


@pytest.mark.slow
def test_the_python_api_is_quiet_too(tmp_path):
    env = {
        k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", "PYTHONWARNINGS")
    }
    script = (
        "import beamline\n"
        f"beamline.run('pipelines/digits.yaml', {{'steps.train.epochs': 1, "
        f"'steps.evaluate.thresholds.accuracy': 0.1}}, runs_dir={str(tmp_path)!r})\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        cwd=PROJECT_DIR,
        env=env,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr
    assert [line for line in out.stderr.splitlines() if any(n in line for n in NOISE)] == []
