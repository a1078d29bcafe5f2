"""Forecasting end to end on the real Mauna Loa CO2 series (statsmodels): windows split in time
order, a forecaster beating seasonal naive, and the export forecasting from raw values.

One module-scoped run of ``pipelines/co2_forecast.yaml`` (the 1-D CNN, few epochs) feeds the
tests; the pure functions (seasonal naive, MASE's scale, period bounds) are checked on numbers
worked out by hand.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from data_paths import PIPELINES

import beamline
from beamline.examples import iter_examples
from beamline_plugins.forecast.evaluator import in_sample_scale, seasonal_naive
from beamline_plugins.forecast.series import period_bounds, period_of

LOOKBACK, HORIZON = 24, 6
OVERRIDES = {
    "steps.ingest.lookback": LOOKBACK,
    "steps.ingest.horizon": HORIZON,
    "steps.train.model": {"component": "cnn_forecaster", "filters": [16, 16, 16]},
    "steps.train.epochs": 25,
    "steps.train.early_stopping": 5,
}


@pytest.fixture(scope="module")
def co2_run(tmp_path_factory: pytest.TempPathFactory):
    """The CO2 pipeline, run once with small settings."""
    runs = tmp_path_factory.mktemp("co2") / "runs"
    return beamline.run(PIPELINES / "co2_forecast.yaml", OVERRIDES, runs_dir=runs).run


def _rows(run, split: str) -> list[int]:
    return sorted(int(e["row"][0]) for e in iter_examples(run.artifact("ingest").path, split))


@pytest.mark.slow
def test_windows_are_split_in_time_order_and_no_split_sees_a_later_future(co2_run) -> None:
    train, eval_, test = (_rows(co2_run, s) for s in ("train", "eval", "test"))
    assert train and eval_ and test
    # every target of train precedes every target of eval, which precede every target of test
    assert max(train) + HORIZON - 1 < min(eval_)
    assert max(eval_) + HORIZON - 1 < min(test)
    counts = co2_run.artifact("ingest").counts
    assert counts["read"] == counts["written"] + counts["rejected"]
    # windows whose future straddles a boundary are rejected, with the reason
    assert counts["rejected"] == 2 * (HORIZON - 1)
    rejected = (co2_run.artifact("ingest").path / "rejected").rglob("*.jsonl")
    reasons = [json.loads(line)["reason"] for f in rejected for line in f.read_text().splitlines()]
    assert len(reasons) == counts["rejected"] and all("straddles" in r for r in reasons)


@pytest.mark.slow
def test_windows_hold_the_monthly_series_in_order(co2_run) -> None:
    examples = {
        int(e["row"][0]): e for e in iter_examples(co2_run.artifact("ingest").path, "train")
    }
    first = min(examples)
    a, b = examples[first], examples[first + 1]
    assert len(a["history"]) == LOOKBACK and len(a["future"]) == HORIZON
    # the next window's history is this one's shifted by a month: one ordered series
    assert a["history"][1:] == b["history"][:-1]
    assert b["history"][-1] == a["future"][0]
    assert a["time"][0].decode().startswith("1960-03-01")  # March 1958 + 24 months
    assert 310 < min(a["history"]) < max(a["history"]) < 325  # ppm, the late 1950s


@pytest.mark.slow
def test_forecaster_beats_seasonal_naive_on_the_test_period(co2_run) -> None:
    metrics = json.loads(co2_run.artifact("evaluate").file("metrics.json").read_text())
    assert metrics["mase"] < 1.0
    assert metrics["mae"] < metrics["naive_mae"]
    assert metrics["rmse"] >= metrics["mae"]
    assert json.loads(co2_run.artifact("evaluate").file("blessing.json").read_text())["blessed"]
    assert (co2_run.artifact("evaluate").path / "report" / "forecast.png").stat().st_size > 10_000


@pytest.mark.slow
def test_export_forecasts_from_the_last_raw_window_as_the_evaluator_scored(co2_run) -> None:
    import tensorflow as tf

    export = co2_run.artifact("export")
    info = json.loads(export.file("export.json").read_text())
    assert (info["lookback"], info["values"], info["horizon"]) == (LOOKBACK, 1, HORIZON)
    serve = tf.saved_model.load(str(export.path / "saved_model")).signatures["serving_default"]
    windows = sorted(
        (int(e["row"][0]), e["history"], e["future"])
        for e in iter_examples(co2_run.artifact("ingest").path, "test")
    )
    history = np.array([w[1] for w in windows], np.float32)[:, :, None]
    future = np.array([w[2] for w in windows])
    forecast = serve(history=tf.constant(history))["forecast"].numpy()
    assert forecast.shape == (len(windows), HORIZON)
    metrics = json.loads(co2_run.artifact("evaluate").file("metrics.json").read_text())
    assert np.abs(forecast - future).mean() == pytest.approx(metrics["mae"], rel=1e-4)


def test_forecasters_scale_inside_the_model_so_a_shifted_window_shifts_the_forecast() -> None:
    import keras

    from beamline_plugins.forecast.models import CnnForecaster, RnnForecaster

    spec = {"shape": [24, 1], "horizon": 6, "target_index": 0, "change_std": [0.8]}
    window = np.linspace(320, 330, 24, dtype=np.float32).reshape(1, 24, 1)
    for builder in (RnnForecaster(cell="gru", units=[8]), CnnForecaster(filters=[4, 4])):
        keras.utils.set_random_seed(0)
        model = builder.build({"history": spec}, 6)
        low = model.predict({"history": window}, verbose=0)
        high = model.predict({"history": window + 100.0}, verbose=0)
        assert low.shape == (1, 6)
        np.testing.assert_allclose(high - low, 100.0, atol=1e-3)


def test_seasonal_naive_repeats_the_last_season_and_mase_scale_is_in_sample() -> None:
    history = np.array([[1.0, 2.0, 3.0, 4.0]])  # season 2: the last season is (3, 4)
    np.testing.assert_array_equal(seasonal_naive(history, 5, 2), [[3.0, 4.0, 3.0, 4.0, 3.0]])
    series = {0: 1.0, 1: 5.0, 2: 2.0, 3: 7.0}  # |2 - 1| and |7 - 5|
    assert in_sample_scale(series, 2) == pytest.approx(1.5)
    assert period_bounds(100, (0.7, 0.15, 0.15)) == (70, 85)
    assert [period_of(r, (70, 85)) for r in (69, 70, 84, 85)] == ["train", "eval", "eval", "test"]
