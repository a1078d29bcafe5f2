"""The ``saved_model_exporter`` step: a SavedModel that takes raw input and returns predictions.

Artifact::

    saved_model/   TF SavedModel; signature ``serving_default``: raw inputs (for images a batch
                   of encoded PNG/JPEG bytes, ``tf.string [None]``; for tables one tensor per
                   column, ``float32 [None]`` or for categorical columns ``string``/``int64``)
                   -> a classifier's ``scores`` (float32 [None, classes]) and ``label`` (class
                   names, tf.string [None]), or a regression's ``prediction`` (float32 [None])
    export.json    task, inputs and their modality and dtype, classes, signature, output names

The signature applies the input pipeline's own serving preprocessing, which calls the same
TensorFlow function as training (``beamline_plugins.training.image_input.decode_image``): no
train/serve skew.
"""

from __future__ import annotations

import json
from typing import Any

from beamline import Evaluation, Exporter, Input, StepContext, StepResult, TrainedModel, param
from beamline.artifacts import write_json_atomic
from beamline.errors import GateFailed

SAVED_MODEL_DIR = "saved_model"
EXPORT_INFO = "export.json"
SIGNATURE = "serving_default"


class SavedModelExporter(Exporter):
    """Export a trained model as a SavedModel whose signature takes raw encoded input.

    The serving function decodes and normalises the raw input exactly as training did, runs the
    model, and returns the scores and the predicted class name (a regression: the predicted
    value). Given ``blessing`` (an evaluator step), only a blessed model is exported; given
    ``publish``, it is also published as the next version of a versioned model folder
    (``beamline.model_folder``)."""

    name = "saved_model_exporter"
    model: Input[TrainedModel] = param(help="the trainer step whose model to export")
    blessing: Input[Evaluation] | None = param(
        None, help="an evaluator step that must have blessed the model"
    )
    publish: str | None = param(
        None,
        help="a model folder ROOT (relative to the pipeline file): the export is also published "
        "as ROOT/<pipeline name>/<next version>/, the layout TF Serving and pipeline serve load",
    )

    def run(self, ctx: StepContext) -> StepResult:
        """Write the SavedModel and ``export.json``."""
        if self.blessing:
            verdict = json.loads(ctx.input("blessing").file("blessing.json").read_text())
            if not verdict.get("blessed"):
                raise GateFailed(
                    f"step '{self.blessing}' did not bless the model: "
                    + "; ".join(verdict.get("reasons", []))
                )
        import tensorflow as tf

        from beamline_plugins.training.artifact import load_keras_model, trained_model
        from beamline_plugins.training.export_steps import write_saved_model
        from beamline_plugins.training.stable_save import fresh_names

        with fresh_names():  # the names a fresh process gives: same weights, same bytes
            artifact, info, pipeline = trained_model(ctx, "model")
            model = load_keras_model(artifact)
            signature, preprocess = pipeline.serving(info["inputs"])
            task = info.get("task", "classification")
            classes = tf.constant(info["classes"] or [""])

            def serve(raw: dict[str, Any]) -> dict[str, Any]:
                scores = tf.cast(model(preprocess(raw), training=False), tf.float32)
                return {"scores": scores, "label": tf.gather(classes, tf.argmax(scores, axis=-1))}

            def serve_regression(raw: dict[str, Any]) -> dict[str, Any]:
                outputs = tf.cast(model(preprocess(raw), training=False), tf.float32)
                return {"prediction": tf.reshape(outputs, [-1])}

            endpoint = serve_regression if task == "regression" else serve
            write_saved_model(
                model, ctx.output_dir / SAVED_MODEL_DIR, SIGNATURE, endpoint, [signature]
            )
        export = {
            "signature": SIGNATURE,
            "task": task,
            "inputs": {n: info["inputs"][n].get("modality", "") for n in signature},
            "input_dtypes": {n: spec.dtype.name for n, spec in signature.items()},
            "outputs": ["prediction"] if task == "regression" else ["scores", "label"],
            "classes": info["classes"],
            "label": info.get("label"),
            "trainer_step": artifact.step,
        }
        write_json_atomic(ctx.output_dir / EXPORT_INFO, export)
        names = ", ".join(signature)
        if task == "regression":
            summary = f"SavedModel taking raw {names}, predicting {info['label']}"
        else:
            summary = f"SavedModel taking raw {names}, {len(info['classes'])} classes"
        if self.publish:
            from beamline.model_folder import publish

            lineage = f"{ctx.spec.name}/{ctx.run.run_id}/{ctx.step.name}"
            published = publish(
                ctx.output_dir, ctx.resolve(self.publish), ctx.spec.name, source=lineage
            )
            summary += f"; published as {published.path}"
            return StepResult(summary=summary, metrics={"published_version": published.version})
        return StepResult(summary=summary)
