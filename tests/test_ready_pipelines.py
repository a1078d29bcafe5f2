"""Every file in pipelines/ runs end to end from a clean runs folder and exits 0.

Each file runs as a user would (``python -m beamline run FILE``, a process of its own) from a copy
of ``pipelines/`` whose ``data/`` is the real one: a schema a validator infers and saves lands in
the copy, never in the repository. A file declares how it runs here with one comment line:

    # ready-test: skip REASON        a long-lived loop (a broker, a watched folder), not run
    # ready-test: --set KEY=VALUE    the file's documented short settings (options as on the CLI)

A file without the line runs as shipped, gates included: a threshold it misses fails the test.
The files in ``RUN_BY_README`` are not run again here: tests/test_readme.py makes exactly this run
(the README's ``pipeline run pipelines/NAME.yaml``, as shipped, the file's first run in a clean
runs folder, failing on a non-zero exit), and a test below holds the README to it.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

import pytest
from data_paths import PIPELINES
from keras_support import python_env

MARKER = re.compile(r"^#\s*ready-test:\s*(.*)$", re.MULTILINE)
TIMEOUT_S = 900
FILES = sorted(PIPELINES.glob("*.yaml"))
#: Files whose end-to-end run tests/test_readme.py already makes, as shipped (see above).
RUN_BY_README = ("diabetes", "digits")
RUN_HERE = [f for f in FILES if f.stem not in RUN_BY_README]


def declared(file: Path) -> tuple[str | None, list[str]]:
    """``(reason to skip or None, extra CLI arguments)`` from the file's ``# ready-test:`` line."""
    match = MARKER.search(file.read_text(encoding="utf-8"))
    if not match:
        return None, []
    text = match.group(1).strip()
    if text.startswith("skip"):
        return text.removeprefix("skip").strip() or "declared long-lived", []
    return None, shlex.split(text)


def _workspace(tmp_path: Path) -> Path:
    """A copy of pipelines/ (files only) beside a link to the real data."""
    work = tmp_path / "pipelines"
    work.mkdir()
    for item in PIPELINES.iterdir():
        if item.is_file():
            (work / item.name).write_bytes(item.read_bytes())
    (work / "data").symlink_to(PIPELINES / "data", target_is_directory=True)
    return work


def test_every_pipeline_file_declares_a_valid_ready_test_line_or_none() -> None:
    for file in FILES:
        reason, args = declared(file)
        assert reason is None or reason, file
        assert all(a.startswith("--") or "=" in a for a in args), f"{file.name}: {args}"


def test_the_readme_runs_as_shipped_the_files_not_run_here() -> None:
    """Each file of ``RUN_BY_README`` is first run by a README block that the README test runs,
    with no option: as shipped, into the README test's clean runs folder."""
    from test_readme import runnable_blocks

    commands = [
        line.split("#")[0].strip()
        for block in runnable_blocks()
        if block.language == "bash" and block.marker is None
        for line in block.text.splitlines()
    ]
    for name in RUN_BY_README:
        assert (PIPELINES / f"{name}.yaml").is_file(), name
        runs = [c for c in commands if c.startswith(f"pipeline run pipelines/{name}.yaml")]
        assert runs[:1] == [f"pipeline run pipelines/{name}.yaml"], (name, runs[:1])


@pytest.mark.slow
@pytest.mark.parametrize("file", RUN_HERE, ids=[f.stem for f in RUN_HERE])
def test_ready_pipeline_runs_end_to_end_from_a_clean_runs_folder(
    file: Path, tmp_path: Path
) -> None:
    reason, args = declared(file)
    if reason is not None:
        pytest.skip(f"{file.name}: {reason}")
    work = _workspace(tmp_path)
    command = [sys.executable, "-m", "beamline", "run", str(work / file.name)]
    began = time.monotonic()
    done = subprocess.run(
        [*command, "--runs-dir", str(tmp_path / "runs"), *args],
        env=python_env(),
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        cwd=tmp_path,
    )
    seconds = time.monotonic() - began
    assert done.returncode == 0, (
        f"{file.name} exited {done.returncode} after {seconds:.0f} s\n"
        f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    )


def test_the_results_table_replaces_the_rows_of_its_pipelines_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.syspath_prepend(str(PIPELINES.parent))
    from bench.ready_table import END, HEADER, START, write_readme

    readme = tmp_path / "README.md"
    old = "| `a` (demo) | x | y | 0.9 | >= 0.8 | 1 s |\n| `b` | x | y | 0.5 | - | 2 s |"
    readme.write_text(f"intro\n\n{START}\n{HEADER}\n{old}\n{END}\n\nafter\n", encoding="utf-8")
    write_readme({"b": "| `b` | new |", "c": "| `c` | added |"}, readme)
    text = readme.read_text(encoding="utf-8")
    assert text.startswith("intro\n\n") and text.endswith(f"{END}\n\nafter\n")
    rows = text.split(START)[1].split(END)[0].strip().splitlines()
    assert rows[2:] == [
        "| `a` (demo) | x | y | 0.9 | >= 0.8 | 1 s |",
        "| `b` | new |",
        "| `c` | added |",
    ]


def test_each_seed_is_judged_by_its_own_gates_not_by_an_earlier_seeds_model(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.syspath_prepend(str(PIPELINES.parent))
    from bench.ready_table import passed_own_gates, seed_overrides

    sets = seed_overrides(PIPELINES / "digits.yaml", 3)
    assert "steps.train.seed=3" in sets
    assert "steps.evaluate.compare_to_last_blessed=false" in sets
    champion = "accuracy 0.9840 below the last blessed model's 0.9893 (run 20261201-1)"
    assert passed_own_gates({"blessed": False, "reasons": [champion]})
    assert not passed_own_gates({"blessed": False, "reasons": ["accuracy 0.9 < 0.97", champion]})
    assert not passed_own_gates({"blessed": False, "reasons": []})
    assert passed_own_gates({"blessed": True, "reasons": []})


def test_a_reused_step_counts_the_seconds_of_the_run_that_made_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import json

    monkeypatch.syspath_prepend(str(PIPELINES.parent))
    from bench.ready_table import _full_seconds

    pipeline = tmp_path / "digits"
    metas = {
        "r1/ingest": {"seconds": 12.0},
        "r2/ingest": {"seconds": 0.001, "original_seconds": 12.0, "reused_from": "r1/ingest"},
        # a reuse of the reuse: its original_seconds is the seconds of a link
        "r3/ingest": {"seconds": 0.002, "original_seconds": 0.001, "reused_from": "r2/ingest"},
        "r3/train": {"seconds": 30.0},
    }
    for step, meta in metas.items():
        (pipeline / step).mkdir(parents=True)
        (pipeline / step / "meta.json").write_text(json.dumps(meta), encoding="utf-8")
    run = {"dir": pipeline / "r3", "steps": {"ingest": {}, "train": {}}}
    assert _full_seconds(run) == 42.0


def test_a_seed_run_with_its_gate_off_is_judged_by_the_files_thresholds(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.syspath_prepend(str(PIPELINES.parent))
    from bench.ready_table import _passed

    gates = {"token_error_rate": 0.08, "sequence_error_rate": 0.34}  # ceilings

    def evaluation(token: float, sequence: float, thresholds: dict) -> dict:
        metrics = {"token_error_rate": token, "sequence_error_rate": sequence}
        meta = {"metrics": metrics, "params": {"thresholds": thresholds}}
        return {"meta": meta, "blessing": {"blessed": True, "reasons": []}, "metrics": metrics}

    assert _passed(evaluation(0.075, 0.31, {}), gates)
    assert not _passed(evaluation(0.085, 0.31, {}), gates)
    assert _passed(evaluation(0.085, 0.31, gates), gates)  # gated: its own blessing decides


def test_a_continuous_row_reads_both_cycles_of_every_seeds_loop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import json

    monkeypatch.syspath_prepend(str(PIPELINES.parent))
    from bench.continuous_seeds import read_seeds, row

    for seed, (one, two, blessed) in enumerate([(0.90, 0.97, 0.91), (0.94, 0.95, 0.93)]):
        pipeline = tmp_path / "continuous" / f"digits_continuous-seed{seed}" / "digits_continuous"
        cycles = [
            {"run": "r1", "candidate_accuracy": one, "blessed_accuracy": None, "examples": 600},
            {"run": "r2", "candidate_accuracy": two, "blessed_accuracy": blessed,
             "examples": 1200, "outcome": "blessed", "version": 2},
        ]  # fmt: skip
        state = pipeline / ".streams" / "ingest" / "loop.json"
        state.parent.mkdir(parents=True)
        state.write_text(json.dumps({"cycles": cycles}), encoding="utf-8")
        for run, seconds in (("r1", 40.0), ("r2", 60.0)):
            (pipeline / run / "evaluate").mkdir(parents=True)
            records = {"records": [{"step": "train", "seconds": seconds}]}
            (pipeline / run / "run.json").write_text(json.dumps(records), encoding="utf-8")
            meta = {"metrics": {"count": 190 + seed}}
            (pipeline / run / "evaluate" / "meta.json").write_text(json.dumps(meta))
    runs = read_seeds("digits_continuous", tmp_path)
    assert sorted(runs) == [0, 1]
    text = row("digits_continuous", PIPELINES / "digits_continuous.yaml", runs)
    assert "cycle 1 accuracy 0.920 ± 0.028 (0.900-0.940) (600 digits" in text
    assert "0.960 ± 0.014 (0.950-0.970) vs the blessed model's 0.920 ± 0.014" in text
    assert "same 190-191 test digits; 2/2 cycles 2 won" in text
    assert "accuracy >= 0.8" in text and "| 50 s a cycle |" in text
