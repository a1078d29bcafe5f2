"""Evaluation by slice: metrics per feature value, the best-worst gap, and the fairness gate."""

from __future__ import annotations

import json

import numpy as np
import pytest
from data_paths import PIPELINES, TESTS_DIR

import beamline


@pytest.fixture(autouse=True)
def _importable_support(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(TESTS_DIR))


def _scores(predicted: list[int], k: int = 2) -> np.ndarray:
    out = np.full((len(predicted), k), 0.1 / (k - 1))
    out[np.arange(len(predicted)), predicted] = 0.9
    return out


def test_slice_metrics_give_per_value_accuracy_gap_and_leave_small_slices_unjudged() -> None:
    from beamline_plugins.keras.slices import slice_metrics, slice_threshold

    labels = np.array([0, 1] * 10 + [0, 1, 0])
    predicted = [0, 1] * 10 + [1, 0, 1]  # slice a: 20 right; slice b: 3 wrong
    values = ["a"] * 20 + ["b"] * 3
    result = slice_metrics(labels, _scores(predicted), values, ["0", "1"], min_size=5)

    assert result["values"]["a"]["accuracy"] == 1.0 and result["values"]["a"]["judged"]
    assert result["values"]["b"]["accuracy"] == 0.0 and not result["values"]["b"]["judged"]
    assert result["too_small"] == ["b"]
    assert result["gap"]["accuracy"] == 0.0  # only 'a' is judged
    assert slice_threshold({"site": result}, "slice_min.accuracy") == (1.0, "site=a")

    judged_all = slice_metrics(labels, _scores(predicted), values, ["0", "1"], min_size=3)
    assert judged_all["gap"]["accuracy"] == 1.0 and judged_all["worst"]["accuracy"] == "b"
    assert slice_threshold({"site": judged_all}, "slice_gap.site.accuracy") == (1.0, "site")


def test_length_and_numeric_slices_are_bucketed() -> None:
    from beamline_plugins.keras.slices import slice_values

    texts = [[b"one two"], [b"a b c d e f g h i j"], [b"x " * 40]]
    assert slice_values("text.words", texts, [8, 16], 4) == ["0-8 words", "9-16 words", ">16 words"]
    numbers = [[float(i)] for i in range(100)]
    buckets = slice_values("age", numbers, [], 4)
    assert len(set(buckets)) == 4 and buckets[0] == "[0, 24.75]"
    assert slice_values("source", [[b"yelp"], []], [], 4) == ["yelp", "(missing)"]


def test_slice_threshold_names_an_unknown_slice_or_metric() -> None:
    from beamline.errors import PipelineError
    from beamline_plugins.keras.slices import slice_threshold

    with pytest.raises(PipelineError, match="not one of this step's slices"):
        slice_threshold({"source": {}}, "slice_gap.speaker.accuracy")
    with pytest.raises(PipelineError, match="must be one of accuracy"):
        slice_threshold({"source": {}}, "slice_gap.source.precision")


@pytest.mark.slow
def test_sentiment_evaluates_by_source_and_length_out_of_the_box() -> None:
    from insight_support import sentiment_run

    run = sentiment_run()
    evaluate = run.artifact("evaluate")
    slices = json.loads(evaluate.file("slices.json").read_text())
    assert set(slices) == {"source", "text.words"}
    assert set(slices["source"]["values"]) == {"amazon", "imdb", "yelp"}
    assert sum(v["count"] for v in slices["source"]["values"].values()) == 238
    blessing = json.loads(evaluate.file("blessing.json").read_text())
    assert blessing["blessed"], blessing
    assert "slice_gap.source.accuracy" in blessing["thresholds"]
    assert evaluate.metrics["slice_gap.source.accuracy"] == slices["source"]["gap"]["accuracy"]
    summary = evaluate.file("report", "summary.html").read_text()
    assert "too small to judge" in summary and "<b>source</b>" in summary
    assert summary.count("<mark") >= 6 * 3  # the 6 top mistakes' tokens, highlighted


@pytest.mark.slow
def test_an_unfair_model_is_not_exported_and_a_small_slice_is_not_gated() -> None:
    from insight_support import runs_dir, sentiment_run

    sentiment_run()  # the earlier steps, reused
    overrides = {
        "steps.evaluate.thresholds": {"slice_min.source.accuracy": 0.99},
        "steps.evaluate.min_slice_size": 70,  # yelp has 65 test sentences
        "steps.evaluate.compare_to_last_blessed": False,
    }
    with pytest.raises(beamline.GateFailed, match="slice_min.source.accuracy"):
        beamline.run(PIPELINES / "sentiment.yaml", overrides, runs_dir=runs_dir())
    run = beamline.open_run("sentiment", runs_dir())
    blessing = json.loads(run.artifact("evaluate").file("blessing.json").read_text())
    assert not blessing["blessed"]
    (reason,) = blessing["reasons"]
    assert "source=amazon" in reason or "source=imdb" in reason  # the worst judged slice
    slices = json.loads(run.artifact("evaluate").file("slices.json").read_text())
    assert slices["source"]["too_small"] == ["yelp"]
    assert "export" not in run.steps()


def test_a_slice_threshold_naming_no_slice_is_refused_when_the_file_is_read(tmp_path) -> None:
    overrides = {"steps.evaluate.thresholds": {"slice_gap.speaker.accuracy": 0.1}}
    with pytest.raises(beamline.SpecError, match=r"'slice_gap.speaker.accuracy' names slice"):
        beamline.run(PIPELINES / "sentiment.yaml", overrides, runs_dir=tmp_path)
    assert not any(tmp_path.iterdir())  # refused before any step ran
