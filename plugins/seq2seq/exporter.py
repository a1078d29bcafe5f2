"""The ``seq2seq_exporter`` step: a SavedModel from raw source strings to decoded strings.

Artifact::

    saved_model/   signature ``serving_default``: ``source`` (tf.string [None]) -> ``text``
                   (tf.string [None], the decoded target), ``score`` (float32 [None], its
                   summed log probability) and ``tokens`` (int64 [None, time], 0 after the end)
    export.json    task ``seq2seq``, inputs, outputs, beam size, target vocabulary

Tokenisation, the encoder and beam search (``decoding.decode`` in a ``tf.while_loop``) all run
inside the graph: ``pipeline predict EXPORT --text WORD --json`` gives ``{"input", "text"}``.
Equal weights give a byte-identical ``saved_model/`` (``training.export_steps``).
"""

from __future__ import annotations

from beamline import Evaluation, Exporter, Input, StepContext, StepResult, TrainedModel, param
from beamline.artifacts import write_json_atomic
from beamline_plugins.training.blessing import require_blessing
from beamline_plugins.training.export_steps import write_saved_model

from .trainer import TASK

SAVED_MODEL_DIR = "saved_model"
SIGNATURE = "serving_default"


class Seq2SeqExporter(Exporter):
    """Export an encoder-decoder as a SavedModel: raw string in, decoded string out.

    Decoding is beam search with ``beam_size`` beams (1: greedy) inside the graph. Given
    ``blessing`` (an evaluator step), only a blessed model is exported."""

    name = "seq2seq_exporter"
    model: Input[TrainedModel] = param(help="the seq2seq_trainer step whose model to export")
    blessing: Input[Evaluation] | None = param(
        None, help="an evaluator step that must have blessed the model"
    )
    beam_size: int = param(4, help="beams of the exported decoder (1: greedy)", ge=1)
    length_penalty: float = param(0.0, help="length normalisation alpha (0: none)", ge=0)

    def run(self, ctx: StepContext) -> StepResult:
        """Write the SavedModel and ``export.json``."""
        require_blessing(ctx, self.blessing)

        from beamline_plugins.training.artifact import load_keras_model, trained_model
        from beamline_plugins.training.stable_save import fresh_names

        from .decoding import translator

        with fresh_names():  # the names a fresh process gives: same weights, same bytes
            artifact, info, pipeline = trained_model(ctx, "model")
            model = load_keras_model(artifact)
            inputs = info["inputs"]
            translate = translator(model, inputs, pipeline, self.beam_size, self.length_penalty)
            signature, _ = pipeline.serving(inputs)
            # translate is a tf.function with its own input signature: raw strings
            write_saved_model(model, ctx.output_dir / SAVED_MODEL_DIR, SIGNATURE, translate)
        export = {
            "signature": SIGNATURE,
            "task": TASK,
            "inputs": {n: inputs[n].get("modality", "text") for n in signature},
            "input_dtypes": {n: spec.dtype.name for n, spec in signature.items()},
            "outputs": ["text", "score", "tokens"],
            "beam_size": self.beam_size,
            "classes": info["classes"],
            "label": info.get("label"),
            "trainer_step": artifact.step,
        }
        write_json_atomic(ctx.output_dir / "export.json", export)
        names = ", ".join(signature)
        return StepResult(
            summary=f"SavedModel: raw {names} string -> text ({self.beam_size} beams)"
        )
