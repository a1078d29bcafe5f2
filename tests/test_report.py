"""The run report: one self-contained, well-formed HTML file, worth opening; run comparison."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from data_paths import PROJECT_DIR, TESTS_DIR

PNG = bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010806000000") + b"\0" * 20


@pytest.fixture(autouse=True)
def _importable_support(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(TESTS_DIR))


def _fake_run(root: Path, run_id: str, started: str, epochs: int, accuracy: float, f1: dict):
    """A run folder of pipeline 'toy' with a train and an evaluate step (what the core writes)."""
    folder = root / "toy" / run_id
    steps = {
        "train": {"params": {"component": "t", "epochs": epochs, "model": {"units": 8}}},
        "evaluate": {"params": {"component": "e"}, "metrics": {"accuracy": accuracy}},
    }
    for step, meta in steps.items():
        (folder / step / "report").mkdir(parents=True)
        meta = {"step": step, "component": meta["params"]["component"], "metrics": {}, **meta}
        (folder / step / "meta.json").write_text(json.dumps(meta))
    per_class = {c: {"precision": v, "recall": v, "f1": v, "support": 5} for c, v in f1.items()}
    (folder / "evaluate" / "metrics.json").write_text(json.dumps({"per_class": per_class}))
    (folder / "train" / "report" / "curve.png").write_bytes(PNG)
    (folder / "evaluate" / "report" / "plot.svg").write_text("<svg xmlns='x'></svg>")
    (folder / "evaluate" / "report" / "summary.html").write_text("<p>a <b>fragment</b></p>")
    info = {"pipeline": "toy", "status": "succeeded", "started": started, "steps": list(steps)}
    (folder / "run.json").write_text(json.dumps(info))
    return folder


def test_compare_shows_parameter_metric_and_per_class_changes(tmp_path: Path) -> None:
    from beamline.artifacts import Run
    from beamline.compare import compare_runs, comparison_text, previous_run

    a = Run.open(_fake_run(tmp_path, "r1", "2026-01-01T00", 3, 0.8, {"cat": 0.7, "dog": 0.9}))
    b = Run.open(_fake_run(tmp_path, "r2", "2026-01-02T00", 5, 0.9, {"cat": 0.9, "dog": 0.9}))

    assert previous_run(b).run_id == "r1" and previous_run(a) is None
    diffs = {d.step: d for d in compare_runs(a, b)}
    assert diffs["train"].params == {"epochs": (3, 5)}
    assert diffs["evaluate"].metrics == {"accuracy": (0.8, 0.9)}
    assert diffs["evaluate"].per_class["cat"]["f1"] == (0.7, 0.9)
    text = comparison_text(a, b, list(diffs.values()))
    assert "param epochs: 3 -> 5" in text and "accuracy: 0.8 -> 0.9 (+0.1)" in text
    assert "cat: precision 0.7 -> 0.9" in text and "dog:" not in text  # unchanged classes hidden


def test_pipeline_compare_takes_run_ids_and_paths_and_prints_json(tmp_path: Path) -> None:
    _fake_run(tmp_path, "r1", "2026-01-01T00", 3, 0.8, {"cat": 0.7})
    b = _fake_run(tmp_path, "r2", "2026-01-02T00", 5, 0.9, {"cat": 0.9})
    command = [sys.executable, "-m", "beamline", "compare", "--runs-dir", str(tmp_path)]
    out = subprocess.run(
        [*command, "r1", str(b), "--json"], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert (data["a"]["run_id"], data["b"]["run_id"]) == ("r1", "r2")
    evaluate = next(s for s in data["steps"] if s["step"] == "evaluate")
    assert evaluate["per_class"]["cat"]["f1"]["change"] == pytest.approx(0.2)
    alone = subprocess.run([*command, "toy"], capture_output=True, text=True, timeout=120)
    assert alone.returncode == 0 and "A: toy/r1" in alone.stdout  # the latest vs its previous
    first = subprocess.run([*command, "toy/r1"], capture_output=True, text=True, timeout=120)
    assert first.returncode == 2 and "no earlier run" in first.stderr


def test_run_report_is_one_self_contained_well_formed_file(tmp_path: Path) -> None:
    from insight_support import check_html

    from beamline.artifacts import Run
    from beamline.run_report import write_run_report

    _fake_run(tmp_path, "r1", "2026-01-01T00", 3, 0.8, {"cat": 0.7})
    run = Run.open(_fake_run(tmp_path, "r2", "2026-01-02T00", 5, 0.9, {"cat": 0.9}))
    page = write_run_report(run).read_text()

    checker = check_html(page)
    assert checker.problems == []
    assert len(checker.sources["img"]) == 2
    assert all(src.startswith("data:image/") for src in checker.sources["img"])
    assert "<b>fragment</b>" in page and "changes since the previous run" in page
    assert "<td>epochs</td><td>3</td><td>5</td>" in page


def test_gallery_shows_clips_with_an_audio_player_and_texts_as_text(tmp_path: Path) -> None:
    from insight_support import check_html

    from beamline_plugins.keras.eval_report import write_evaluation_report

    metrics = {
        "count": 4,
        "accuracy": 0.5,
        "macro_precision": 0.5,
        "macro_recall": 0.5,
        "macro_f1": 0.5,
        "per_class": {"yes": {"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 2}},
    }
    wav = b"RIFF\x24\x00\x00\x00WAVEfmt "
    gallery = [
        {
            "index": 3,
            "label": "yes",
            "predicted": "no",
            "confidence": 0.93,
            "raw": {"audio": wav, "text": b"say <yes>"},
        },
    ]
    inputs = {"audio": {"modality": "audio"}, "text": {"modality": "text"}}
    page = write_evaluation_report(tmp_path, metrics, {}, gallery, inputs).read_text()
    checker = check_html(page)
    assert checker.problems == []
    assert checker.sources["audio"][0].startswith("data:audio/wav;base64,UklGR")
    assert "say &lt;yes&gt;" in page and "(0.930)" in page


@pytest.mark.slow
def test_digits_report_shows_samples_mistakes_calibration_and_the_previous_run() -> None:
    from insight_support import DIGITS_OVERRIDES, check_html, digits_run, runs_dir

    import beamline

    digits_run()
    # 3 epochs may score below the 4-epoch run: no comparison with the last blessed model here
    overrides = {
        **DIGITS_OVERRIDES,
        "steps.train.epochs": 3,
        "steps.evaluate.compare_to_last_blessed": False,
    }
    run = beamline.run(
        PROJECT_DIR / "pipelines" / "digits.yaml", overrides, runs_dir=runs_dir()
    ).run
    page = (run.path / "report.html").read_text()

    checker = check_html(page)
    assert checker.problems == []
    assert all(src.startswith("data:image/") for src in checker.sources["img"])
    assert "image: samples per class (train split)" in page  # not byte sizes
    assert "feature_image" not in page
    assert page.count("<tr><th>") >= 10  # one grid row per class (and table heads)
    assert "alt='calibration'" in page and "misclassified examples" in page
    assert "<h3>per class</h3>" in page and "class='heat'" in page  # attributions of mistakes
    assert "<td>train</td><td>epochs</td><td>4</td><td>3</td>" in page
    metrics = json.loads(run.artifact("evaluate").file("metrics.json").read_text())
    assert 0.0 <= metrics["expected_calibration_error"] < 0.2
