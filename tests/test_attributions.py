"""Attributions mean something: deletion tests and completeness on the shipped models.

Deletion: removing the most-attributed pixels (set to black, the baseline) or tokens (replaced
by padding, which the model ignores) first lowers the predicted class's score faster than
removing random ones, averaged over several test inputs. Completeness: integrated gradients
sum to score(x) - score(baseline) within 5% of that difference, with 64 intervals for pixels
and spectrogram bins and 128 for tokens (a bag of words' multi-hot vector, the largest token
weight per slot, has kinks the trapezoid rule needs more points for: 3.8% at 64, 2.1% at 128).
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from data_paths import TESTS_DIR

#: Relative completeness tolerance of integrated gradients with 64 trapezoid intervals.
COMPLETENESS = 0.05
STEPS = 64
TOKEN_STEPS = 128


@pytest.fixture(autouse=True)
def _importable_support(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(TESTS_DIR))


def _explainer(run):
    from beamline_plugins.attributions.explainer import Explainer
    from beamline_plugins.training.artifact import (
        MODEL_INFO,
        load_keras_model,
        rebuild_input_pipeline,
    )

    train = run.artifact("train")
    info = json.loads(train.file(MODEL_INFO).read_text())
    pipeline = rebuild_input_pipeline(info, train.file(MODEL_INFO))
    return Explainer(load_keras_model(train), pipeline, info)


def _test_inputs(run, feature: str, count: int) -> list[bytes]:
    from beamline.examples import iter_examples

    out = []
    for record in iter_examples(run.artifact("ingest"), "test"):
        out.append(record[feature][0])
        if len(out) == count:
            break
    return out


@pytest.mark.slow
def test_image_attributions_pass_deletion_and_completeness_on_digits() -> None:
    from insight_support import digits_run

    explainer = _explainer(digits_run())
    rng = np.random.default_rng(0)
    ig_scores, random_scores, gaps = [], [], []
    for raw in _test_inputs(digits_run(), "image", 12):
        explained = explainer.explain(raw, steps=STEPS)
        a = explained.attribution
        gaps.append(a.completeness_gap)
        x = explained.features
        order = np.argsort(-a.values.sum(axis=-1).ravel())
        for k in (4, 8, 16):
            top = x.reshape(-1, x.shape[-1]).copy()
            top[order[:k]] = 0.0
            guess = x.reshape(-1, x.shape[-1]).copy()
            guess[rng.choice(len(guess), k, replace=False)] = 0.0
            batch = np.stack([top.reshape(x.shape), guess.reshape(x.shape)])
            scores = explainer.scores(batch)[:, a.target]
            ig_scores.append(scores[0])
            random_scores.append(scores[1])
    assert max(gaps) < COMPLETENESS, gaps
    assert np.mean(ig_scores) < np.mean(random_scores) - 0.2, (
        np.mean(ig_scores),
        np.mean(random_scores),
    )


@pytest.mark.slow
def test_spectrogram_attributions_pass_deletion_and_completeness_on_spoken_digits() -> None:
    from insight_support import spoken_digits_run

    explainer = _explainer(spoken_digits_run())
    rng = np.random.default_rng(0)
    ig_scores, random_scores, gaps = [], [], []
    for raw in _test_inputs(spoken_digits_run(), "audio", 8):
        explained = explainer.explain(raw, steps=STEPS)
        a = explained.attribution
        gaps.append(a.completeness_gap)
        x = explained.features.reshape(-1)
        order = np.argsort(-a.values.reshape(-1))
        top, guess = x.copy(), x.copy()
        top[order[:100]] = 0.0  # 100 of the 98 x 40 spectrogram bins
        guess[rng.choice(len(x), 100, replace=False)] = 0.0
        batch = np.stack([top, guess]).reshape(2, *explained.features.shape)
        scores = explainer.scores(batch)[:, a.target]
        ig_scores.append(scores[0])
        random_scores.append(scores[1])
    assert max(gaps) < COMPLETENESS, gaps
    assert np.mean(ig_scores) < np.mean(random_scores) - 0.2, (
        np.mean(ig_scores),
        np.mean(random_scores),
    )


@pytest.mark.slow
def test_token_attributions_pass_deletion_and_completeness_on_sentiment() -> None:
    from insight_support import sentiment_run

    explainer = _explainer(sentiment_run())
    rng = np.random.default_rng(0)
    ig_drop, random_drop, gaps = [], [], []
    texts = [t for t in _test_inputs(sentiment_run(), "text", 40) if len(t.split()) >= 6][:12]
    assert len(texts) >= 8
    for raw in texts:
        explained = explainer.explain(raw, steps=TOKEN_STEPS)
        a = explained.attribution
        # relative to the score's change from the baseline, or to 0.1 where that change is
        # smaller (a text the model scores almost as the empty one: a relative gap means nothing)
        difference = a.score - a.baseline_score
        gaps.append(abs(float(a.values.sum()) - difference) / max(abs(difference), 0.1))
        ids = explainer.features([raw])[0]
        positions = np.flatnonzero(ids != 0)  # explained.tokens are these, in order
        top = ids.copy()
        top[positions[np.argsort(-a.values)[:2]]] = 0
        guess = ids.copy()
        guess[rng.choice(positions, 2, replace=False)] = 0
        scores = explainer.scores(np.stack([ids, top, guess]))[:, a.target]
        ig_drop.append(scores[0] - scores[1])
        random_drop.append(scores[0] - scores[2])
    assert max(gaps) < COMPLETENESS, gaps
    assert np.mean(ig_drop) > np.mean(random_drop) + 0.1, (np.mean(ig_drop), np.mean(random_drop))


@pytest.mark.slow
def test_pipeline_explain_writes_heatmaps_highlighted_text_and_json(tmp_path) -> None:
    from insight_support import digits_run, runs_dir, sentiment_run

    image = tmp_path / ("folder_" * 12) / "digit.png"  # a long path: the output keeps its name
    image.parent.mkdir()
    image.write_bytes(_test_inputs(digits_run(), "image", 1)[0])
    command = [sys.executable, "-m", "beamline", "explain", "--runs-dir", str(runs_dir())]
    out = subprocess.run(
        [
            *command,
            str(digits_run().path / "export"),
            str(image),
            "--out",
            str(tmp_path / "a"),
            "--target",
            "3",
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    (result,) = json.loads(out.stdout)
    assert result["target"] == "3" and result["shape"] == [8, 8]
    assert abs(result["attribution_sum"] - (result["score"] - result["baseline_score"])) < 0.05
    assert (tmp_path / "a" / "001_digit.png").read_bytes().startswith(b"\x89PNG")

    sentiment = str(sentiment_run().path)  # a run folder: the latest may hold no export
    text = subprocess.run(
        [
            *command,
            sentiment,
            "--text",
            "a wonderful little phone",
            "--out",
            str(tmp_path / "t"),
            "--method",
            "saliency",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert text.returncode == 0, text.stderr
    (page,) = (tmp_path / "t").glob("*.html")
    assert "<mark" in page.read_text() and ">wonderful</mark>" in page.read_text()
    bad = subprocess.run(
        [*command, sentiment, "--text", "x", "--target", "maybe"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert bad.returncode != 0 and "unknown class 'maybe'" in bad.stderr
