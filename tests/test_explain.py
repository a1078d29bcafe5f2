"""``run --explain`` says what a run would reuse and why the rest would run; ``--only``/``--until``
run one step or a prefix of the file."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest
from core_plugin import NUMBERS_PIPELINE as PIPELINE
from data_paths import PROJECT_DIR

import beamline
from beamline import SpecError, api, fingerprint


def explained(path, runs, overrides=(), **kwargs) -> dict[str, tuple[str, list[str]]]:
    """Step -> (decision, reasons), as ``run --explain`` would print them."""
    steps = api.explain(path, list(overrides), runs_dir=runs, **kwargs)
    return {s.step: (s.decision, s.reasons) for s in steps}


def ran(log) -> list[str]:
    """The steps the fixtures' plugin really ran, in order."""
    lines = log.read_text().splitlines() if log.exists() else []
    return [line.removeprefix("run ") for line in lines if line.startswith("run ")]


def test_explain_before_any_run_says_each_step_would_run_and_writes_nothing(
    fixtures_plugin, write_pipeline, tmp_path
):
    runs = tmp_path / "runs"
    why = explained(write_pipeline(PIPELINE), runs)
    assert why == {step: ("run", ["no earlier run completed this step"]) for step in why}
    assert list(why) == ["data", "train", "again"]
    assert not runs.exists() and ran(fixtures_plugin) == []


def test_explain_names_the_changed_parameter_and_the_inputs_it_changed(
    fixtures_plugin, write_pipeline, tmp_path
):
    path, runs = write_pipeline(PIPELINE), tmp_path / "runs"
    first = beamline.run(path, runs_dir=runs)
    why = explained(path, runs)
    assert {s: d for s, (d, _) in why.items()} == {
        "data": "reuse",
        "train": "reuse",
        "again": "reuse",
    }
    assert why["data"][1] == [f"unchanged since run {first.run.run_id}"]
    why = explained(path, runs, ["steps.train.model.factor=3"])
    assert why["data"][0] == "reuse"
    assert why["train"] == ("run", ["parameter model.factor: 2.0 -> 3.0"])
    assert why["again"] == (
        "run",
        ["input 'examples' changed (step 'train' has a new fingerprint)"],
    )
    assert explained(path, runs, force=["again"])["again"] == ("run", ["forced (--force)"])
    assert ran(fixtures_plugin) == ["data", "train", "again"]  # explaining ran nothing


def test_explain_names_a_changed_library_version(
    fixtures_plugin, write_pipeline, tmp_path, monkeypatch
):
    path, runs = write_pipeline(PIPELINE), tmp_path / "runs"
    beamline.run(path, runs_dir=runs)
    real = fingerprint._version
    old = real("numpy")
    monkeypatch.setattr(fingerprint, "_version", lambda n: "99.0" if n == "numpy" else real(n))
    why = explained(path, runs)
    assert why["data"] == ("run", [f"library numpy {old} -> 99.0"])
    assert why["train"][1] == [
        "input 'examples' changed (step 'data' has a new fingerprint)",
        f"library numpy {old} -> 99.0",
    ]


DATA_PLUGIN = {
    "__init__.py": """
        from beamline import hookimpl

        from .steps import LineCount


        @hookimpl
        def register_sources(register):
            register(LineCount)
    """,
    "steps.py": """
        from pathlib import Path

        from beamline import Source, StepResult, param
        from beamline.fingerprint import files_digest


        class LineCount(Source):
            \"\"\"Counts the lines of a text file.\"\"\"

            name = "line_count"
            path: str = param(help="the text file")

            def data_fingerprint(self, ctx):
                return files_digest([ctx.resolve(self.path)])

            def run(self, ctx):
                lines = ctx.resolve(self.path).read_text().splitlines()
                (ctx.output_dir / "count").write_text(str(len(lines)))
                return StepResult(counts={"read": len(lines), "written": len(lines)})
    """,
}


def test_explain_names_changed_data_and_a_changed_module(tmp_path, monkeypatch):
    package = tmp_path / "src" / "explain_data_plugin"
    package.mkdir(parents=True)
    for name, text in DATA_PLUGIN.items():
        (package / name).write_text(textwrap.dedent(text).lstrip())
    monkeypatch.syspath_prepend(str(tmp_path / "src"))
    (tmp_path / "lines.txt").write_text("a\nb\n")
    path, runs = tmp_path / "p.yaml", tmp_path / "runs"
    path.write_text(
        "name: lines\nplugins: [explain_data_plugin]\n"
        "steps:\n  count:\n    component: line_count\n    path: lines.txt\n"
    )
    beamline.run(path, runs_dir=runs)
    (tmp_path / "lines.txt").write_text("a\nb\nc\n")
    decision, reasons = explained(path, runs)["count"]
    assert decision == "run" and len(reasons) == 1 and reasons[0].startswith("data changed (")
    beamline.run(path, runs_dir=runs)
    steps = package / "steps.py"
    steps.write_text(steps.read_text().replace("Counts the lines", "Counts lines"))
    assert explained(path, runs)["count"] == ("run", ["module explain_data_plugin.steps changed"])


def test_meta_records_the_fingerprints_parts(fixtures_plugin, write_pipeline, tmp_path):
    result = beamline.run(write_pipeline(PIPELINE), runs_dir=tmp_path / "runs")
    data, train = result.run.artifact("data").meta, result.run.artifact("train").meta
    parts = train["fingerprint_parts"]
    assert set(parts) == {"component", "params", "modules", "libraries", "data", "inputs"}
    assert parts["inputs"] == {"examples": data["fingerprint"]}
    assert {"core_plugin", "beamline.kinds", "beamline.component_base"} <= set(parts["modules"])
    assert {"tensorflow", "keras", "apache-beam", "numpy"} <= set(parts["libraries"])


def test_until_runs_the_prefix_and_only_runs_one_step_on_borrowed_inputs(
    fixtures_plugin, write_pipeline, tmp_path
):
    path, runs = write_pipeline(PIPELINE), tmp_path / "runs"
    prefix = beamline.run(path, runs_dir=runs, until="train")
    assert [r.step for r in prefix.records] == ["data", "train"]
    assert ran(fixtures_plugin) == ["data", "train"]
    assert prefix.run.steps() == ["data", "train"]

    why = explained(path, runs, ["steps.again.model.factor=5"], only="again")
    assert why["data"] == ("skip", ["not selected"])
    assert why["train"] == ("borrow", [f"up to date (from run {prefix.run.run_id})"])
    assert why["again"] == ("run", ["no earlier run completed this step"])
    one = beamline.run(path, ["steps.again.model.factor=5"], runs_dir=runs, only="again")
    assert [(r.step, r.status) for r in one.records] == [("train", "reused"), ("again", "ran")]
    assert ran(fixtures_plugin) == ["data", "train", "again"]
    assert one.run.info["steps"] == ["train", "again"]
    assert json.loads(one.run.artifact("again").file("scaled.json").read_text()) == [
        10.0,
        20.0,
        30.0,
        40.0,
    ]


def test_only_borrows_an_out_of_date_input_and_says_so(fixtures_plugin, write_pipeline, tmp_path):
    path, runs = write_pipeline(PIPELINE), tmp_path / "runs"
    first = beamline.run(path, runs_dir=runs, until="train")
    why = explained(path, runs, ["steps.data.count=7"], only="train")
    assert why["data"] == (
        "borrow",
        [f"out of date, borrowed anyway from run {first.run.run_id}", "parameter count: 6 -> 7"],
    )
    assert why["train"][0] == "reuse"  # its real input is unchanged
    result = beamline.run(path, ["steps.data.count=7"], runs_dir=runs, only="train")
    assert [r.status for r in result.records] == ["reused", "reused"]
    assert result.run.artifact("data").meta["params"]["count"] == 6


def test_only_without_an_earlier_run_of_its_input_names_it_and_leaves_no_run(
    fixtures_plugin, write_pipeline, tmp_path
):
    path, runs = write_pipeline(PIPELINE), tmp_path / "runs"
    with pytest.raises(SpecError, match=r"step 'train'.*--until train"):
        beamline.run(path, runs_dir=runs, only="again")
    assert not (runs / "numbers").exists() or not list((runs / "numbers").iterdir())
    assert explained(path, runs, only="again")["train"][0] == "missing"
    with pytest.raises(SpecError, match="cannot be combined"):
        beamline.run(path, runs_dir=runs, only="again", until="again")
    with pytest.raises(SpecError, match="no step named 'trian'.*'train'"):
        beamline.run(path, runs_dir=runs, until="trian")
    assert ran(fixtures_plugin) == []


def test_cli_explain_prints_one_json_object_and_runs_nothing(
    fixtures_plugin, write_pipeline, tmp_path
):
    path, runs = write_pipeline(PIPELINE), tmp_path / "runs"
    beamline.run(path, runs_dir=runs, until="data")
    command = [sys.executable, "-m", "beamline", "--runs-dir", str(runs), "run", str(path)]
    out = subprocess.run(
        [*command, "--explain", "--json"],
        capture_output=True,
        text=True,
        cwd=PROJECT_DIR,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["exit_code"] == 0 and report["status"] == "explained"
    assert [s["decision"] for s in report["steps"]] == ["reuse", "run", "run"]
    assert report["steps"][1]["reasons"] == ["no earlier run completed this step"]
    assert len(list((runs / "numbers").iterdir())) == 2  # the run above and .cache
    text = subprocess.run(
        [*command, "--explain", "--until", "train"],
        capture_output=True,
        text=True,
        cwd=PROJECT_DIR,
        timeout=120,
    )
    assert text.returncode == 0, text.stderr
    assert (
        text.stdout.splitlines()[0]
        == "numbers: 1 reused, 1 to run, 1 skipped (explained; nothing ran)"
    )
