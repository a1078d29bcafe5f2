"""The ``forecast_evaluator`` step: forecast errors on the test period against seasonal naive.

Metrics over every step of every window of ``split``::

    mae, rmse              the model's errors, in the target's units
    mase                   mae / the in-sample MAE of the one-step seasonal-naive forecast
                           (y[t] = y[t - season]) over the TRAIN period (Hyndman & Koehler
                           2006); below 1: better than seasonal naive is in sample
    naive_mae, naive_rmse  the seasonal-naive forecast of the same windows (each future value
                           is the value one season, or whole seasons, before it)
    relative_mae           mae / naive_mae: below 1 beats seasonal naive on these windows
    mae_step_<k>           the model's MAE k steps ahead (in metrics.json)

``report/forecast.png`` plots the actual series over the test period, the model's forecasts
from windows one horizon apart (each a multi-step forecast from its own look-back) and
seasonal naive. Blessing: every threshold holds (a maximum for errors and ratios).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from beamline import Evaluator, Examples, Input, StepContext, StepResult, TrainedModel, param
from beamline.artifacts import write_json_atomic
from beamline.errors import PipelineError
from beamline_plugins.training.blessing import write_blessing


class ForecastEvaluator(Evaluator):
    """Score a forecaster on a period: MAE, RMSE, MASE and seasonal naive, with a plot.

    ``season`` is the seasonal period in rows (12 for monthly data with a yearly cycle); the
    look-back must hold at least one season. ``thresholds`` bound metrics from above, e.g.
    ``{mase: 1.0}``."""

    name = "forecast_evaluator"
    model: Input[TrainedModel] = param(help="the forecast_trainer step whose model to evaluate")
    examples: Input[Examples] = param(help="the time_series step whose windows to evaluate on")
    split: str = param("test", help="split (period) to evaluate")
    season: int = param(12, help="seasonal period in rows (seasonal-naive baseline)", ge=1)
    thresholds: dict[str, float] = param({}, help="maxima of metrics, e.g. {mase: 1.0}")

    def run(self, ctx: StepContext) -> StepResult:
        """Forecast, score, plot, decide the blessing."""
        import numpy as np

        from beamline_plugins.training.artifact import load_keras_model, trained_model

        artifact, info, _ = trained_model(ctx, "model")
        examples = ctx.input("examples")
        spec = info["inputs"]["history"]
        lookback, values = spec["shape"]
        if lookback < self.season:
            raise PipelineError(
                f"season {self.season} is longer than the look-back {lookback}: seasonal naive "
                "needs one season of history (raise lookback of the time_series step)"
            )
        windows = read_windows(examples, self.split, lookback, values)
        if not windows["rows"]:
            raise PipelineError(f"split '{self.split}' of step '{examples.step}' has no windows")
        model = load_keras_model(artifact)
        forecast = np.asarray(model.predict({"history": windows["history"]}, verbose=0), np.float64)
        actual = windows["future"]
        naive = seasonal_naive(windows["history"][:, :, 0], actual.shape[1], self.season)
        train = read_windows(examples, "train", lookback, values)
        scale = in_sample_scale(train_series(train), self.season)
        metrics = error_metrics(actual, forecast, naive, scale)
        per_step = np.abs(actual - forecast).mean(axis=0)
        steps = {f"mae_step_{k + 1}": float(v) for k, v in enumerate(per_step)}
        write_json_atomic(
            ctx.output_dir / "metrics.json", {**metrics, **steps, "split": self.split}
        )
        plot_forecasts(windows, forecast, naive, ctx.output_dir / "report" / "forecast.png")
        reasons = [
            f"{name} {metrics[name]:.4f} > {bound}"
            for name, bound in self.thresholds.items()
            if _known(name, metrics) > bound
        ]
        verdict = write_blessing(ctx, reasons, self.thresholds)
        summary = (
            f"{self.split}: MAE {metrics['mae']:.4f}, RMSE {metrics['rmse']:.4f}, MASE "
            f"{metrics['mase']:.3f}; seasonal naive MAE {metrics['naive_mae']:.4f} ({verdict})"
        )
        return StepResult(metrics={**metrics, "blessed": float(not reasons)}, summary=summary)


def _known(name: str, metrics: dict[str, float]) -> float:
    if name not in metrics:
        raise PipelineError(f"thresholds: unknown metric '{name}' (metrics: {list(metrics)})")
    return metrics[name]


def read_windows(examples: Any, split: str, lookback: int, values: int) -> dict[str, Any]:
    """The windows of a split in time order: ``history``, ``future``, ``rows``, ``times``."""
    import numpy as np

    from beamline.examples import iter_examples

    items = sorted(
        (int(e["row"][0]), _text(e["time"][0]), e["history"], e["future"])
        for e in iter_examples(examples, split)
    )
    return {
        "rows": [i[0] for i in items],
        "times": [i[1] for i in items],
        "history": np.asarray([i[2] for i in items], np.float64).reshape(-1, lookback, values),
        "future": np.asarray([i[3] for i in items], np.float64),
    }


def _text(value: Any) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def train_series(windows: dict[str, Any]) -> dict[int, float]:
    """The target's values by row, as the train windows hold them (history and future)."""
    series: dict[int, float] = {}
    lookback = windows["history"].shape[1]
    for row, history, future in zip(
        windows["rows"], windows["history"], windows["future"], strict=True
    ):
        for k, value in enumerate(history[:, 0]):
            series[row - lookback + k] = float(value)
        for k, value in enumerate(future):
            series[row + k] = float(value)
    return series


def in_sample_scale(series: dict[int, float], season: int) -> float:
    """The mean absolute one-step seasonal-naive error over ``series`` (MASE's denominator)."""
    errors = [abs(v - series[r - season]) for r, v in series.items() if r - season in series]
    if not errors:
        raise PipelineError(f"the train period is shorter than one season ({season} rows)")
    return max(sum(errors) / len(errors), 1e-12)


def seasonal_naive(history: Any, horizon: int, season: int) -> Any:
    """Each future value is the last observed value whole seasons before it."""
    import numpy as np

    lookback = history.shape[1]
    columns = [lookback + j - season * (j // season + 1) for j in range(horizon)]
    return np.asarray(history)[:, columns]


def error_metrics(actual: Any, forecast: Any, naive: Any, scale: float) -> dict[str, float]:
    """MAE, RMSE, MASE of the forecast; MAE and RMSE of seasonal naive; their MAE ratio."""
    import numpy as np

    mae = float(np.abs(actual - forecast).mean())
    naive_mae = float(np.abs(actual - naive).mean())
    return {
        "mae": mae,
        "rmse": float(np.sqrt(((actual - forecast) ** 2).mean())),
        "mase": mae / scale,
        "naive_mae": naive_mae,
        "naive_rmse": float(np.sqrt(((actual - naive) ** 2).mean())),
        "naive_mase": naive_mae / scale,
        "relative_mae": mae / max(naive_mae, 1e-12),
        "windows": float(len(actual)),
    }


def plot_forecasts(windows: dict[str, Any], forecast: Any, naive: Any, path: Path) -> None:
    """Actual values of the period, and forecasts of windows one horizon apart."""
    import numpy as np

    from beamline_plugins.training.plots import pyplot, save_figure

    plt = pyplot()
    rows, horizon = windows["rows"], forecast.shape[1]
    actual: dict[int, float] = {}
    for row, future in zip(rows, windows["future"], strict=True):
        for k, value in enumerate(future):
            actual[row + k] = float(value)
    labels = {row: time[:10] for row, time in zip(rows, windows["times"], strict=True)}
    fig, ax = plt.subplots(figsize=(9, 3.8))
    xs = sorted(actual)
    ax.plot(xs, [actual[x] for x in xs], color="black", label="actual")
    first = rows[0]
    for n, i in enumerate(i for i, row in enumerate(rows) if (row - first) % horizon == 0):
        span = np.arange(rows[i], rows[i] + horizon)
        ax.plot(span, forecast[i], color="tab:blue", label="model" if n == 0 else None)
        ax.plot(
            span, naive[i], color="tab:orange", ls="--", label="seasonal naive" if not n else None
        )
    ticks = rows[:: max(1, len(rows) // 6)]
    ax.set_xticks(ticks, [labels.get(t, str(t)) for t in ticks])
    ax.set_title("forecast vs actual on the test period (one forecast per horizon)")
    ax.legend()
    save_figure(fig, path)
