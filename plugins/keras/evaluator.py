"""The ``classification_evaluator`` step: metrics per class, a confusion matrix and a blessing.

Artifact::

    metrics.json                  accuracy, loss, macro and per-class precision/recall/F1,
                                  confusion matrix (rows: true class, columns: predicted)
    predictions.jsonl             one line per example in split order: id features, true label,
                                  predicted label and scores
    blessing.json                 {"blessed": bool, "reasons": [...], "baseline": ...}
    report/confusion_matrix.png
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from beamline import Evaluator, Examples, Input, StepContext, StepResult, TrainedModel, param
from beamline.artifacts import META_FILE, Artifact, list_runs, write_json_atomic
from beamline.errors import PipelineError
from beamline_plugins.training.records import label_info

BLESSING_FILE = "blessing.json"
METRICS_FILE = "metrics.json"
PREDICTIONS_FILE = "predictions.jsonl"


class ClassificationEvaluator(Evaluator):
    """Evaluate a trained classifier on a split: accuracy, per-class P/R/F1, confusion matrix.

    Blesses the model when every threshold holds (a minimum; for metrics named ``*loss`` a
    maximum) and, with ``compare_to_last_blessed``, when its accuracy is not below that of the
    last blessed model of this step in earlier runs (minus ``tolerance``)."""

    name = "classification_evaluator"
    model: Input[TrainedModel] = param(help="the trainer step whose model to evaluate")
    examples: Input[Examples] = param(help="the step whose examples artifact to evaluate on")
    split: str = param("test", help="split to evaluate")
    batch_size: int = param(256, help="examples per prediction batch", ge=1)
    thresholds: dict[str, float] = param(
        {},
        help="minimum value per metric (maximum for *loss), e.g. {accuracy: 0.9, "
        "per_class.spam.f1: 0.9}",
    )
    compare_to_last_blessed: bool = param(True, help="also require no drop from the last blessed")
    tolerance: float = param(0.0, help="accuracy drop allowed against the last blessed model", ge=0)

    def run(self, ctx: StepContext) -> StepResult:
        """Predict the split, compute metrics, decide the blessing and write the artifact."""

        from beamline_plugins.training.artifact import load_keras_model, trained_model
        from beamline_plugins.training.plots import plot_confusion

        artifact, info, pipeline = trained_model(ctx, "model")
        if info.get("task") == "regression":
            raise PipelineError(
                f"step '{artifact.step}' trained a regression model; use regression_evaluator"
            )
        examples = ctx.input("examples")
        _, classes = label_info(examples)
        if classes != info["classes"]:
            raise PipelineError(
                f"the examples of step '{examples.step}' have classes {classes}, but the model "
                f"was trained on {info['classes']}"
            )
        model = load_keras_model(artifact)
        y, p, ids = predict_split(model, pipeline, examples, self.split, info, self.batch_size)
        metrics = classification_metrics(y, p, classes)
        metrics["split"] = self.split
        write_json_atomic(ctx.output_dir / METRICS_FILE, metrics)
        _write_predictions(ctx.output_dir / PREDICTIONS_FILE, y, p, classes, ids)
        plot_confusion(
            metrics["confusion_matrix"],
            classes,
            ctx.output_dir / "report" / "confusion_matrix.png",
            f"{self.split}: accuracy {metrics['accuracy']:.3f}",
        )
        blessing = self._bless(ctx, metrics)
        write_json_atomic(ctx.output_dir / BLESSING_FILE, blessing)
        verdict = (
            "blessed" if blessing["blessed"] else "not blessed: " + "; ".join(blessing["reasons"])
        )
        ctx.log(verdict)
        summary = f"{self.split} accuracy {metrics['accuracy']:.4f} ({verdict})"
        flat = {k: float(v) for k, v in metrics.items() if isinstance(v, int | float)}
        flat["blessed"] = 1.0 if blessing["blessed"] else 0.0
        return StepResult(metrics=flat, summary=summary)

    def _bless(self, ctx: StepContext, metrics: dict[str, Any]) -> dict[str, Any]:
        reasons = []
        for name, bound in self.thresholds.items():
            value = metric_value(metrics, name)
            if not isinstance(value, int | float):
                known = ", ".join(k for k, v in metrics.items() if isinstance(v, int | float))
                raise PipelineError(
                    f"thresholds: unknown metric '{name}' (metrics: {known}, or "
                    "per_class.CLASS.precision|recall|f1)"
                )
            if name.endswith("loss") and value > bound:
                reasons.append(f"{name} {value:.4f} > {bound}")
            elif not name.endswith("loss") and value < bound:
                reasons.append(f"{name} {value:.4f} < {bound}")
        baseline = None
        if self.compare_to_last_blessed:
            last = last_blessed(ctx)
            if last is not None:
                accuracy = float(json.loads(last.file(METRICS_FILE).read_text())["accuracy"])
                baseline = {"run": last.meta.get("run_id", ""), "accuracy": accuracy}
                if metrics["accuracy"] < accuracy - self.tolerance:
                    reasons.append(
                        f"accuracy {metrics['accuracy']:.4f} below the last blessed model's "
                        f"{accuracy:.4f} (run {baseline['run']})"
                    )
        return {
            "blessed": not reasons,
            "reasons": reasons,
            "thresholds": dict(self.thresholds),
            "baseline": baseline,
        }


def metric_value(metrics: dict[str, Any], name: str) -> Any:
    """A metric by name; dotted names reach nested ones, e.g. ``per_class.spam.f1``."""
    value: Any = metrics
    for part in name.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def last_blessed(ctx: StepContext) -> Artifact | None:
    """The latest blessed artifact of this step in an earlier run, evaluated on the same examples.

    Accuracy on another split or data set is no baseline, so runs whose examples had another
    fingerprint are skipped."""
    examples = ctx.inputs.get("examples")
    runs = list_runs(ctx.run.path.parent.parent, ctx.run.path.parent.name)
    for run in reversed(runs):
        if run.run_id >= ctx.run.run_id:
            continue
        folder = run.path / ctx.step.name
        if not (folder / META_FILE).is_file() or not (folder / BLESSING_FILE).is_file():
            continue
        artifact = Artifact.open(folder)
        evaluated_on = artifact.meta.get("inputs", {}).get("examples", {}).get("fingerprint")
        if examples is not None and evaluated_on != examples.fingerprint:
            continue
        if json.loads((folder / BLESSING_FILE).read_text(encoding="utf-8")).get("blessed"):
            return artifact
    return None


def classification_metrics(labels: Any, scores: Any, classes: list[str]) -> dict[str, Any]:
    """Accuracy, mean cross-entropy, macro and per-class precision/recall/F1, confusion matrix."""
    import numpy as np

    k = len(classes)
    predicted = scores.argmax(axis=1)
    matrix = np.zeros((k, k), dtype=np.int64)
    np.add.at(matrix, (labels, predicted), 1)
    true_pos = np.diag(matrix).astype(np.float64)
    support = matrix.sum(axis=1)
    predicted_count = matrix.sum(axis=0)
    precision = np.divide(true_pos, predicted_count, out=np.zeros(k), where=predicted_count > 0)
    recall = np.divide(true_pos, support, out=np.zeros(k), where=support > 0)
    denominator = precision + recall
    f1 = np.divide(2 * precision * recall, denominator, out=np.zeros(k), where=denominator > 0)
    picked = scores[np.arange(len(labels)), labels]
    loss = float(-np.mean(np.log(np.clip(picked, 1e-12, 1.0))))
    return {
        "count": int(len(labels)),
        "accuracy": float(true_pos.sum() / max(1, len(labels))),
        "loss": loss,
        "macro_precision": float(precision.mean()),
        "macro_recall": float(recall.mean()),
        "macro_f1": float(f1.mean()),
        "per_class": {
            name: {
                "precision": float(precision[i]),
                "recall": float(recall[i]),
                "f1": float(f1[i]),
                "support": int(support[i]),
            }
            for i, name in enumerate(classes)
        },
        "classes": list(classes),
        "confusion_matrix": matrix.tolist(),
    }


def _write_predictions(
    path: Path, labels: Any, scores: Any, classes: list[str], ids: list[dict[str, Any]]
) -> None:
    with path.open("w", encoding="utf-8") as handle:
        for i, (label, row) in enumerate(zip(labels, scores, strict=True)):
            entry = {
                "index": i,
                "ids": ids[i] if i < len(ids) else {},
                "label": classes[int(label)],
                "predicted": classes[int(row.argmax())],
                "scores": [round(float(s), 7) for s in row],
            }
            handle.write(json.dumps(entry) + "\n")


def predict_split(
    model: Any, pipeline: Any, examples: Artifact, split: str, info: dict[str, Any], batch: int
) -> tuple[Any, Any, list[dict[str, Any]]]:
    """``(labels, outputs, ids)`` of a model over one split, read by its input pipeline.

    ``outputs`` are the model's outputs as float64 rows (class scores, or one value); ``ids``
    one dict per example of the id features the pipeline yields (paths, raw text)."""
    import numpy as np

    ds = pipeline.dataset(
        examples, split, inputs=info["inputs"], training=False, batch_size=batch, with_ids=True
    )
    labels, outputs, ids = [], [], []
    for entry in ds:
        features, label = entry[0], entry[1]
        id_values = entry[2] if len(entry) > 2 else {}
        outputs.append(np.asarray(model(features, training=False), dtype=np.float64))
        labels.append(label.numpy())
        named = {k: [_text(x) for x in v.numpy()] for k, v in id_values.items()}
        rows = zip(*named.values(), strict=True) if named else ((),) * len(label)
        ids.extend(dict(zip(named, row, strict=True)) for row in rows)
    if not labels:
        raise PipelineError(f"split '{split}' of step '{examples.step}' has no examples")
    return np.concatenate(labels), np.concatenate(outputs), ids


def _text(value: Any) -> Any:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else int(value)
