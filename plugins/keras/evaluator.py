"""The ``classification_evaluator`` step: metrics per class, a confusion matrix and a blessing.

Artifact::

    metrics.json                  accuracy, loss, macro and per-class precision/recall/F1,
                                  confusion matrix (rows: true class, columns: predicted)
    predictions.jsonl             one line per example in split order: id features, true label,
                                  predicted label and scores
    slices.json                   with ``slices:``: metrics per slice value, gap and minimum
                                  per slice feature, slices too small to judge (``slices``)
    blessing.json                 {"blessed": bool, "reasons": [...], "baseline": ...}
    report/confusion_matrix.png, report/calibration.png
    report/summary.html           per-class table, slices, the misclassified examples as they
                                  are (images, texts, audio players) with their confidence

The split is read a batch at a time and never held: every figure is a running count or sum
(``eval_stream``), so the step's memory does not grow with the split.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from beamline import (
    Evaluator,
    Examples,
    Input,
    ParamError,
    StepContext,
    StepResult,
    TrainedModel,
    param,
)
from beamline.artifacts import META_FILE, Artifact, list_runs, write_json_atomic
from beamline.errors import PipelineError
from beamline.examples import decode_example, feature_spec
from beamline_plugins.training.records import label_info

from .eval_rows import FileOrderRows
from .slices import slice_feature

if TYPE_CHECKING:
    from .eval_stream import RunningMetrics

BLESSING_FILE = "blessing.json"
METRICS_FILE = "metrics.json"
PREDICTIONS_FILE = "predictions.jsonl"
SLICES_FILE = "slices.json"


class ClassificationEvaluator(Evaluator):
    """Evaluate a trained classifier on a split: accuracy, per-class P/R/F1, confusion matrix.

    With ``slices``, also per value of features ingest kept (``source``, ``group``, a text
    length ``text.words``, a table column) and the gap between the best and the worst slice.
    Blesses the model when every threshold holds (a minimum; for metrics named ``*loss`` and for
    ``slice_gap.*`` a maximum; ``slice_min.*`` is the worst slice's value; slices with fewer than
    ``min_slice_size`` examples are reported, not gated) and, with ``compare_to_last_blessed``,
    when its accuracy is not below that of the last blessed model of this step in earlier runs
    (minus ``tolerance``)."""

    name = "classification_evaluator"
    model: Input[TrainedModel] = param(help="the trainer step whose model to evaluate")
    examples: Input[Examples] = param(help="the step whose examples artifact to evaluate on")
    split: str = param("test", help="split to evaluate")
    batch_size: int = param(256, help="examples per prediction batch", ge=1)
    thresholds: dict[str, float] = param(
        {},
        help="minimum value per metric (maximum for *loss and slice_gap.*), e.g. {accuracy: "
        "0.9, per_class.spam.f1: 0.9, slice_gap.accuracy: 0.1, slice_min.accuracy: 0.8}",
    )
    slices: list[str] = param(
        [],
        help="features to slice by: any feature of the examples (source, group, a column), "
        "or a text length FEATURE.words / FEATURE.chars",
    )
    min_slice_size: int = param(
        10, help="slices with fewer examples are reported as too small to judge, not gated", ge=1
    )
    length_edges: list[int] = param(
        [8, 16, 32], help="upper edges of the text length buckets (FEATURE.words/.chars)"
    )
    numeric_buckets: int = param(
        4, help="quantile buckets for a numeric slice feature with many values", ge=2
    )
    gallery: int = param(
        24, help="misclassified examples shown in the report (most confident first)", ge=0
    )
    attributions: int = param(
        0,
        help="integrated-gradient attributions for this many most confident mistakes "
        "(image, text and audio models) in the report",
        ge=0,
    )
    compare_to_last_blessed: bool = param(True, help="also require no drop from the last blessed")
    tolerance: float = param(0.0, help="accuracy drop allowed against the last blessed model", ge=0)

    def check(self) -> None:
        """Slice thresholds must name a metric and one of ``slices`` (when the file is read)."""
        super().check()
        from .slices import SLICE_METRICS, is_slice_threshold

        for name in self.thresholds:
            if not is_slice_threshold(name):
                continue
            feature, _, metric = name.partition(".")[2].rpartition(".")
            if not self.slices:
                raise ParamError("thresholds", f"'{name}' needs slices: (e.g. slices: [source])")
            if metric not in SLICE_METRICS:
                raise ParamError(
                    "thresholds", f"'{name}': the metric must be one of {', '.join(SLICE_METRICS)}"
                )
            if feature and feature not in self.slices:
                raise ParamError(
                    "thresholds",
                    f"'{name}' names slice '{feature}', not one of slices: {self.slices}",
                )

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
        from .eval_report import plot_calibration, write_evaluation_report
        from .slices import check_slices

        check_slices(self.slices, feature_spec(examples).get("features", {}), examples.step)
        model = load_keras_model(artifact)
        running, slices, gallery = self._evaluate(ctx, model, pipeline, info, examples)
        metrics = running.metrics(classes)
        metrics["split"] = self.split
        reliability = running.calibration()
        metrics["expected_calibration_error"] = reliability["ece"]
        write_json_atomic(ctx.output_dir / METRICS_FILE, metrics)
        plot_calibration(
            reliability, ctx.output_dir / "report" / "calibration.png", f"{self.split} reliability"
        )
        plot_confusion(
            metrics["confusion_matrix"],
            classes,
            ctx.output_dir / "report" / "confusion_matrix.png",
            f"{self.split}: accuracy {metrics['accuracy']:.3f}",
        )
        if self.slices:
            write_json_atomic(ctx.output_dir / SLICES_FILE, slices)
        if self.attributions and gallery:
            self._attribute(ctx, model, pipeline, info, gallery[: self.attributions])
        write_evaluation_report(ctx.output_dir / "report", metrics, slices, gallery, info["inputs"])
        blessing = self._bless(ctx, metrics, slices)
        write_json_atomic(ctx.output_dir / BLESSING_FILE, blessing)
        verdict = (
            "blessed" if blessing["blessed"] else "not blessed: " + "; ".join(blessing["reasons"])
        )
        ctx.log(verdict)
        summary = f"{self.split} accuracy {metrics['accuracy']:.4f} ({verdict})"
        flat = {k: float(v) for k, v in metrics.items() if isinstance(v, int | float)}
        for spec, result in slices.items():
            for metric in ("accuracy",):
                if metric in result["gap"]:
                    flat[f"slice_gap.{spec}.{metric}"] = result["gap"][metric]
                    flat[f"slice_min.{spec}.{metric}"] = result["min"][metric]
        flat["blessed"] = 1.0 if blessing["blessed"] else 0.0
        return StepResult(metrics=flat, summary=summary)

    def _evaluate(
        self, ctx: StepContext, model: Any, pipeline: Any, info: dict[str, Any], examples: Artifact
    ) -> tuple[RunningMetrics, dict[str, Any], list[dict[str, Any]]]:
        """One pass over the split, a batch at a time (nothing holds the split): the running
        metrics, ``predictions.jsonl``, and, read beside it in file order, the slices and the
        gallery of the most confident mistakes. When the input pipeline regroups the split
        (``bucket_boundaries``), a second pass scores the file order through the serving
        preprocessing (what the export runs) for the slices and the gallery."""
        import numpy as np

        from .eval_stream import RunningMetrics

        classes = info["classes"]
        inputs = list(info["inputs"])
        wanted = list(dict.fromkeys([*(slice_feature(s)[0] for s in self.slices), *inputs]))
        running = RunningMetrics(len(classes))
        by_file = self._by_file_order(classes, inputs)
        label_name, _ = label_info(examples)
        specs = feature_spec(examples).get("features", {})
        read = [label_name, *(slice_feature(s)[0] for s in self.slices)]
        in_order = FileOrderRows(examples, self.split, label_name, classes,
                                 {name: specs[name]["dtype"] for name in read})  # fmt: skip
        aligned, index = True, 0
        with (ctx.output_dir / PREDICTIONS_FILE).open("w", encoding="utf-8") as handle:
            batches = predicted_batches(model, pipeline, examples, self.split, info,
                                        self.batch_size)  # fmt: skip
            for labels, scores, ids in batches:
                running.add(labels, scores)
                _write_prediction_lines(handle, index, labels, scores, classes, ids)
                if aligned:
                    batch = in_order.take(len(labels))
                    aligned = len(batch) == len(labels) and np.array_equal(batch.labels, labels)
                    if aligned:
                        by_file.add(index, labels, scores, batch.firsts, batch.raw(inputs))
                index += len(labels)
        if not index:
            raise PipelineError(f"split '{self.split}' of step '{examples.step}' has no examples")
        if aligned and len(in_order.take(1)):
            aligned = False  # the input pipeline yielded fewer examples than the split holds
        if not aligned:  # the input pipeline reordered the split (bucketing): score file order
            by_file = self._by_file_order(classes, inputs)
            signature, preprocess = pipeline.serving(info["inputs"])
            rows = file_order_rows(examples, self.split, wanted, classes)
            index = 0
            while batch := _take(rows, self.batch_size):
                values = [v for _, v in batch]
                scores = serving_scores(model, signature, preprocess, values)
                labels = np.asarray([label for label, _ in batch], dtype=np.int64)
                firsts = {name: [(v.get(name) or [None])[0] for v in values] for name in wanted}
                by_file.add(index, labels, scores, firsts, _raw_of(values, inputs))
                index += len(batch)
        return running, by_file.slices(self.min_slice_size), by_file.gallery()

    def _by_file_order(self, classes: list[str], inputs: list[str]) -> _ByFileOrder:
        return _ByFileOrder(self.slices, classes, inputs, self.length_edges,
                            self.numeric_buckets, self.gallery)  # fmt: skip

    def _attribute(
        self, ctx: StepContext, model: Any, pipeline: Any, info: dict, items: list[dict]
    ) -> None:
        """Add integrated-gradient attributions (an HTML fragment) to the gallery's first items.

        A model whose input is no image, clip or text gets none (and a note in the log)."""
        from beamline_plugins.attributions.explainer import Explainer
        from beamline_plugins.attributions.render import fragment

        try:
            explainer = Explainer(model, pipeline, info)
        except ValueError as exc:
            ctx.log(f"no attributions: {exc}")
            return
        ctx.log(f"attributions for the {len(items)} most confident mistakes")
        for item in items:
            raw = item["raw"].get(explainer.name)
            if not isinstance(raw, bytes):
                continue
            target = info["classes"].index(item["predicted"])
            try:
                explained = explainer.explain(raw, target)
            except ValueError as exc:  # a model whose input no attribution reaches
                ctx.log(f"no attributions: {exc}")
                return
            title = f"#{item['index']}: why {item['predicted']}"
            item["attribution"] = fragment(explained, title)

    def _bless(
        self, ctx: StepContext, metrics: dict[str, Any], slices: dict[str, Any]
    ) -> dict[str, Any]:
        from .slices import is_slice_threshold, slice_threshold

        reasons = []
        notes = []
        for name, bound in self.thresholds.items():
            if is_slice_threshold(name):
                if not slices:
                    raise PipelineError(
                        f"thresholds: '{name}' needs slices: (e.g. slices: [source]) on this step"
                    )
                value, where = slice_threshold(slices, name)
                if value is None:
                    notes.append(f"{name}: every slice is smaller than {self.min_slice_size}")
                elif name.startswith("slice_gap.") or name.endswith(".loss"):
                    if value > bound:
                        reasons.append(f"{name} {value:.4f} > {bound} ({where})")
                elif value < bound:
                    reasons.append(f"{name} {value:.4f} < {bound} ({where})")
                continue
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
            **({"notes": notes} if notes else {}),  # slice gates that had nothing to judge
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
    """Accuracy, mean cross-entropy, macro and per-class precision/recall/F1, confusion matrix
    of whole arrays (class indices ``labels`` [n], scores [n, k]): ``RunningMetrics`` over one
    batch."""
    from .eval_stream import RunningMetrics

    running = RunningMetrics(len(classes))
    running.add(labels, scores)
    return running.metrics(classes)


def _write_prediction_lines(
    handle: Any, start: int, labels: Any, scores: Any, classes: list[str], ids: list[dict]
) -> None:
    """``predictions.jsonl`` lines of a batch whose first example is number ``start``."""
    for i, (label, row) in enumerate(zip(labels, scores, strict=True)):
        entry = {
            "index": start + i,
            "ids": ids[i] if i < len(ids) else {},
            "label": classes[int(label)],
            "predicted": classes[int(row.argmax())],
            "scores": [round(float(s), 7) for s in row],
        }
        handle.write(json.dumps(entry) + "\n")


def predicted_batches(
    model: Any, pipeline: Any, examples: Artifact, split: str, info: dict[str, Any], batch: int
) -> Iterator[tuple[Any, Any, list[dict[str, Any]]]]:
    """``(labels, outputs, ids)`` per batch of a model over one split, read once by its input
    pipeline (no cache: the split is not held).

    ``outputs`` are the model's outputs as float64 rows (class scores, or one value); ``ids``
    one dict per example of the id features the pipeline yields (paths, raw text)."""
    import numpy as np
    import tensorflow as tf

    from beamline_plugins.training.records import one_pass

    with one_pass():
        ds = pipeline.dataset(
            examples, split, inputs=info["inputs"], training=False, batch_size=batch, with_ids=True
        )
    # One traced graph for every batch: an eager call of a small model costs tens of ms of
    # per-layer dispatch (~26 ms a batch for taxi's wide_deep), the graph a fraction of that.
    predict = tf.function(lambda features: model(features, training=False), reduce_retracing=True)
    for entry in ds:
        features, label = entry[0], entry[1]
        id_values = entry[2] if len(entry) > 2 else {}
        outputs = np.asarray(predict(features), dtype=np.float64)
        named = {k: [_text(x) for x in v.numpy()] for k, v in id_values.items()}
        rows = zip(*named.values(), strict=True) if named else ((),) * len(label)
        yield label.numpy(), outputs, [dict(zip(named, row, strict=True)) for row in rows]


def predict_split(
    model: Any, pipeline: Any, examples: Artifact, split: str, info: dict[str, Any], batch: int
) -> tuple[Any, Any, list[dict[str, Any]]]:
    """``(labels, outputs, ids)`` of a model over one whole split (see ``predicted_batches``)."""
    import numpy as np

    labels, outputs, ids = [], [], []
    for label, output, named in predicted_batches(model, pipeline, examples, split, info, batch):
        labels.append(label)
        outputs.append(output)
        ids.extend(named)
    if not labels:
        raise PipelineError(f"split '{split}' of step '{examples.step}' has no examples")
    return np.concatenate(labels), np.concatenate(outputs), ids


def _text(value: Any) -> Any:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else int(value)


def confident_mistakes(labels: Any, scores: Any, limit: int) -> list[int]:
    """Indices of up to ``limit`` misclassified examples, the most confident first."""
    import numpy as np

    predicted = scores.argmax(axis=1)
    wrong = np.flatnonzero(predicted != labels)
    confidence = scores[wrong, predicted[wrong]]
    return [int(i) for i in wrong[np.argsort(-confidence, kind="stable")][:limit]]


class _ByFileOrder:
    """The slices and the gallery, fed batches in the split's file order."""

    def __init__(
        self,
        specs: list[str],
        classes: list[str],
        inputs: list[str],
        length_edges: list[int],
        numeric_buckets: int,
        gallery: int,
    ) -> None:
        from .eval_stream import RunningSlices, WorstExamples

        self.specs, self.classes, self.inputs = specs, classes, inputs
        self.running = {
            spec: RunningSlices(spec, len(classes), list(length_edges), numeric_buckets)
            for spec in specs
        }
        self.worst = WorstExamples(gallery)

    def add(
        self,
        start: int,
        labels: Any,
        scores: Any,
        firsts: dict[str, list[Any]],
        raw: Callable[[int], dict[str, Any]],
    ) -> None:
        """A batch: labels, scores, each slice feature's first value per example (None:
        missing), and ``raw(i)``: the ``i``-th example's inputs (asked for the gallery's)."""
        for spec, running in self.running.items():
            running.add(firsts[slice_feature(spec)[0]], labels, scores)

        def item(i: int) -> dict[str, Any]:
            return {
                "label": self.classes[int(labels[i])],
                "predicted": self.classes[int(scores[i].argmax())],
                "confidence": float(scores[i].max()),
                "raw": raw(i),
            }

        self.worst.add(start, labels, scores, item)

    def slices(self, min_size: int) -> dict[str, Any]:
        """Metrics by slice (``slices.json``)."""
        return {spec: running.result(min_size) for spec, running in self.running.items()}

    def gallery(self) -> list[dict[str, Any]]:
        """The most confident mistakes, the most confident first."""
        return self.worst.items()


def file_order_rows(
    examples: Artifact, split: str, features: list[str], classes: list[str]
) -> Iterator[tuple[int, dict[str, list[Any]]]]:
    """``(label index, {feature: values})`` per example of ``split`` in file order (the order
    the input pipelines read when they do not regroup), one at a time."""
    from beamline_plugins.training.records import read_records

    label_name, _ = label_info(examples)
    for serialized in read_records(examples, split, None).as_numpy_iterator():
        decoded = {name: values for name, (_, values) in decode_example(serialized).items()}
        label = (decoded.get(label_name) or [None])[0]
        index = label if isinstance(label, int) else classes.index(label.decode("utf-8"))
        yield index, {name: list(decoded.get(name, [])) for name in features}


def _raw_of(values: list[dict[str, list]], inputs: list[str]) -> Callable[[int], dict[str, Any]]:
    def raw(i: int) -> dict[str, Any]:
        return {name: (values[i].get(name) or [None])[0] for name in inputs}

    return raw


def _take(rows: Iterator[Any], count: int) -> list[Any]:
    return list(itertools.islice(rows, count))


def serving_scores(
    model: Any, signature: dict[str, Any], preprocess: Any, values: list[dict[str, list]]
) -> Any:
    """The model's scores for a batch of raw examples (feature: values) through the serving
    preprocessing (what the export runs)."""
    import numpy as np
    import tensorflow as tf

    raw = {
        name: tf.constant(
            [(v.get(name) or [b"" if spec.dtype == tf.string else 0])[0] for v in values],
            dtype=spec.dtype,
        )
        for name, spec in signature.items()
    }
    return np.asarray(model(preprocess(raw), training=False), dtype=np.float64)
