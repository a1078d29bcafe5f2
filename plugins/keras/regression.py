"""The ``regression_evaluator`` step: MAE, RMSE and R² against a train-mean baseline, a blessing.

Artifact::

    metrics.json                  count, mae, rmse, mse, r2, max_error, mean_residual, label
                                  mean and spread, and "baseline": the same metrics of a model
                                  that always predicts the label's train mean
    predictions.jsonl             one line per example in split order: id features, actual
                                  value, predicted value and residual (actual - predicted)
    blessing.json                 {"blessed": bool, "reasons": [...], "baseline": ...}
    report/predicted_vs_actual.png
    report/residuals.png
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Literal

from beamline import Evaluator, Examples, Input, StepContext, StepResult, TrainedModel, param
from beamline.artifacts import write_json_atomic
from beamline.errors import PipelineError

from .evaluator import (
    BLESSING_FILE,
    METRICS_FILE,
    PREDICTIONS_FILE,
    last_blessed,
    metric_value,
    predict_split,
)

#: Metrics where lower is better: a threshold on them is a maximum (all others: a minimum).
LOWER_IS_BETTER = ("mae", "rmse", "mse", "max_error", "loss")
COMPARED = Literal["rmse", "mae", "r2"]


def lower_is_better(name: str) -> bool:
    """Whether a (dotted) metric name is an error, where a threshold is a maximum."""
    last = name.rsplit(".", 1)[-1]
    return last in LOWER_IS_BETTER or last.endswith("loss") or last.endswith("_error")


def regression_metrics(labels: Any, predictions: Any, train_mean: float) -> dict[str, Any]:
    """MAE, RMSE, MSE, R², max error and mean residual, and the same for the train-mean baseline.

    R² is ``1 - SS_res / SS_tot`` with ``SS_tot`` around the mean of ``labels`` (the evaluated
    split), as scikit-learn computes it; the baseline predicts ``train_mean`` for every example,
    so its R² is at most 0 (exactly 0 only when the split's mean equals the train mean)."""
    import numpy as np

    y = np.asarray(labels, dtype=np.float64)
    p = np.asarray(predictions, dtype=np.float64)
    if y.shape != p.shape or y.ndim != 1 or not len(y):
        raise ValueError(f"labels {y.shape} and predictions {p.shape}: need equal, non-empty 1-D")
    baseline = np.full_like(y, float(train_mean))
    return {
        "count": int(len(y)),
        **_errors(y, p),
        "label_mean": float(y.mean()),
        "label_std": float(y.std()),
        "baseline": {"prediction": float(train_mean), **_errors(y, baseline)},
    }


def _errors(y: Any, p: Any) -> dict[str, float]:
    import numpy as np

    residual = y - p
    mse = float(np.mean(residual**2))
    total = float(np.sum((y - y.mean()) ** 2))
    r2 = 1.0 - float(np.sum(residual**2)) / total if total > 0 else float("nan")
    return {
        "mae": float(np.mean(np.abs(residual))),
        "rmse": math.sqrt(mse),
        "mse": mse,
        "r2": r2,
        "max_error": float(np.max(np.abs(residual))),
        "mean_residual": float(np.mean(residual)),
    }


def check_thresholds(metrics: dict[str, Any], thresholds: dict[str, float]) -> list[str]:
    """The reasons ``metrics`` fail ``thresholds`` (a maximum for errors, else a minimum)."""
    reasons = []
    for name, bound in thresholds.items():
        value = metric_value(metrics, name)
        if not isinstance(value, int | float) or isinstance(value, bool):
            known = ", ".join(k for k, v in metrics.items() if isinstance(v, int | float))
            raise PipelineError(
                f"thresholds: unknown metric '{name}' (metrics: {known}, or baseline.NAME)"
            )
        if lower_is_better(name) and not value <= bound:
            reasons.append(f"{name} {value:.4g} > {bound}")
        elif not lower_is_better(name) and not value >= bound:
            reasons.append(f"{name} {value:.4g} < {bound}")
    return reasons


class RegressionEvaluator(Evaluator):
    """Evaluate a regression on a split: MAE, RMSE, R² against a baseline predicting the train mean.

    Blesses the model when every threshold holds (a maximum for errors such as ``mae``,
    ``rmse``, ``mse``, ``max_error``; a minimum for ``r2``), when it beats the train-mean baseline
    (``beat_baseline``), and, with ``compare_to_last_blessed``, when ``compare_metric`` is not
    worse than that of the last blessed model of this step evaluated on the same examples (by
    more than ``tolerance``). Writes a predicted-vs-actual scatter and a residual histogram."""

    name = "regression_evaluator"
    model: Input[TrainedModel] = param(help="the trainer step whose model to evaluate")
    examples: Input[Examples] = param(help="the step whose examples artifact to evaluate on")
    split: str = param("test", help="split to evaluate")
    batch_size: int = param(256, help="examples per prediction batch", ge=1)
    thresholds: dict[str, float] = param(
        {},
        help="bound per metric: maximum for errors (mae, rmse...), minimum for r2; "
        "e.g. {r2: 0.3, mae: 50}",
    )
    beat_baseline: bool = param(True, help="require a lower RMSE than predicting the train mean")
    compare_to_last_blessed: bool = param(True, help="require no loss against the last blessed")
    compare_metric: COMPARED = param("rmse", help="the metric compared with the last blessed model")
    tolerance: float = param(
        0.0, help="how much worse than the last blessed model is allowed", ge=0
    )

    def run(self, ctx: StepContext) -> StepResult:
        """Predict the split, compute metrics and plots, decide the blessing, write the artifact."""
        import numpy as np

        from beamline_plugins.training.artifact import load_keras_model, trained_model
        from beamline_plugins.training.plots import plot_predictions, plot_residuals

        artifact, info, pipeline = trained_model(ctx, "model")
        if info.get("task") != "regression":
            raise PipelineError(
                f"step '{artifact.step}' trained a {info.get('task', 'classification')} model; "
                "use classification_evaluator (regression_evaluator needs task: regression)"
            )
        examples = ctx.input("examples")
        model = load_keras_model(artifact)
        y, p, ids = predict_split(model, pipeline, examples, self.split, info, self.batch_size)
        y, p = y.astype(np.float64).reshape(-1), p.reshape(-1)
        metrics = regression_metrics(y, p, float(info["target"]["mean"]))
        metrics["split"] = self.split
        metrics["label"] = info.get("label")
        write_json_atomic(ctx.output_dir / METRICS_FILE, metrics)
        _write_predictions(ctx.output_dir / PREDICTIONS_FILE, y, p, ids)
        report = ctx.output_dir / "report"
        plot_predictions(
            y,
            p,
            report / "predicted_vs_actual.png",
            f"{self.split}: R² {metrics['r2']:.3f}, MAE {metrics['mae']:.3g}",
        )
        plot_residuals(y - p, report / "residuals.png", f"{self.split}: RMSE {metrics['rmse']:.3g}")
        blessing = self._bless(ctx, metrics)
        write_json_atomic(ctx.output_dir / BLESSING_FILE, blessing)
        verdict = (
            "blessed" if blessing["blessed"] else "not blessed: " + "; ".join(blessing["reasons"])
        )
        ctx.log(verdict)
        base = metrics["baseline"]
        summary = (
            f"{self.split} R² {metrics['r2']:.3f} MAE {metrics['mae']:.4g} RMSE "
            f"{metrics['rmse']:.4g} (train-mean baseline: R² {base['r2']:.3f} MAE "
            f"{base['mae']:.4g}) ({verdict})"
        )
        first = ("r2", "mae", "rmse")  # what the run's summary table shows
        flat = {k: float(metrics[k]) for k in first}
        flat.update({k: float(v) for k, v in metrics.items() if isinstance(v, int | float)})
        flat.update({f"baseline_{k}": float(v) for k, v in base.items()})
        flat["blessed"] = 1.0 if blessing["blessed"] else 0.0
        return StepResult(metrics=flat, summary=summary)

    def _bless(self, ctx: StepContext, metrics: dict[str, Any]) -> dict[str, Any]:
        reasons = check_thresholds(metrics, dict(self.thresholds))
        base = metrics["baseline"]
        if self.beat_baseline and not metrics["rmse"] < base["rmse"]:
            reasons.append(
                f"rmse {metrics['rmse']:.4g} is not below the train-mean baseline's "
                f"{base['rmse']:.4g}"
            )
        last = None
        if self.compare_to_last_blessed:
            found = last_blessed(ctx)
            previous = {}
            if found is not None:
                previous = json.loads(found.file(METRICS_FILE).read_text(encoding="utf-8"))
            name = self.compare_metric
            if found is not None and isinstance(previous.get(name), int | float):
                value, before = float(metrics[name]), float(previous[name])
                last = {"run": found.meta.get("run_id", ""), name: before}
                worse = (
                    value > before + self.tolerance
                    if lower_is_better(name)
                    else value < before - self.tolerance
                )
                if worse:
                    reasons.append(
                        f"{name} {value:.4g} is worse than the last blessed model's "
                        f"{before:.4g} (run {last['run']})"
                    )
        return {
            "blessed": not reasons,
            "reasons": reasons,
            "thresholds": dict(self.thresholds),
            "baseline": last,
            "train_mean_baseline": base,
        }


def _write_predictions(
    path: Path, labels: Any, predictions: Any, ids: list[dict[str, Any]]
) -> None:
    with path.open("w", encoding="utf-8") as handle:
        for i, (label, predicted) in enumerate(zip(labels, predictions, strict=True)):
            entry = {
                "index": i,
                "ids": ids[i] if i < len(ids) else {},
                "label": float(label),
                "predicted": round(float(predicted), 6),
                "residual": round(float(label - predicted), 6),
            }
            handle.write(json.dumps(entry) + "\n")
