"""The ``forecast_exporter`` step: a SavedModel from the last look-back window to a forecast.

Artifact::

    saved_model/   signature ``serving_default``: ``history`` (float32 [None, lookback, values],
                   raw values, oldest row first, the target column first) -> ``forecast``
                   (float32 [None, horizon], in the target's units)
    export.json    task ``forecast``, lookback, values, horizon, the ingest step's columns

Scaling with the train statistics is inside the model: the export takes raw values. Equal
weights give a byte-identical ``saved_model/`` (``training.export_steps``).
"""

from __future__ import annotations

from typing import Any

from beamline import Evaluation, Exporter, Input, StepContext, StepResult, TrainedModel, param
from beamline.artifacts import write_json_atomic
from beamline_plugins.training.blessing import require_blessing
from beamline_plugins.training.export_steps import write_saved_model

from .trainer import TASK

SIGNATURE = "serving_default"


class ForecastExporter(Exporter):
    """Export a forecaster as a SavedModel: the last look-back window of raw values in, the
    forecast out. Given ``blessing`` (an evaluator step), only a blessed model is exported."""

    name = "forecast_exporter"
    model: Input[TrainedModel] = param(help="the forecast_trainer step whose model to export")
    blessing: Input[Evaluation] | None = param(
        None, help="an evaluator step that must have blessed the model"
    )

    def run(self, ctx: StepContext) -> StepResult:
        """Write the SavedModel and ``export.json``."""
        require_blessing(ctx, self.blessing)

        import tensorflow as tf

        from beamline_plugins.training.artifact import load_keras_model, trained_model
        from beamline_plugins.training.stable_save import fresh_names

        with fresh_names():  # the names a fresh process gives: same weights, same bytes
            artifact, info, pipeline = trained_model(ctx, "model")
            model = load_keras_model(artifact)
            signature, preprocess = pipeline.serving(info["inputs"])

            def serve(raw: dict[str, Any]) -> dict[str, Any]:
                forecast = model(preprocess(raw), training=False)
                return {"forecast": tf.cast(forecast, tf.float32)}

            out = ctx.output_dir / "saved_model"
            write_saved_model(model, out, SIGNATURE, serve, [signature])
        lookback, values = info["inputs"]["history"]["shape"]
        ingest = ctx.input("model").meta.get("inputs", {})
        export = {
            "signature": SIGNATURE,
            "task": TASK,
            "inputs": {"history": "numeric"},
            "input_dtypes": {"history": "float32"},
            "outputs": ["forecast"],
            "lookback": lookback,
            "values": values,
            "horizon": int(info["horizon"]),
            "trainer_step": artifact.step,
            "examples": ingest,
        }
        write_json_atomic(ctx.output_dir / "export.json", export)
        return StepResult(
            summary=f"SavedModel: last {lookback} rows x {values} values -> {info['horizon']} steps"
        )
