"""The ``transcript_exporter`` step: a SavedModel from WAV bytes to the transcript.

Artifact::

    saved_model/   TF SavedModel; signature ``serving_default``: a batch of WAV file bytes
                   (``tf.string [None]``, PCM at the model's sample rate, any length) ->
                   ``text`` (``tf.string [None]``)
    export.json    task ``transcription``, inputs, outputs, decoder, beam width, vocabulary

Inside the signature: the training preprocessing (``speech_input``: decode, log-mel frames),
the model, CTC decoding (greedy or beam search) and the ids joined into text.
``pipeline predict EXPORT clip.wav --json`` prints ``{"input", "text"}`` per file.

The files are byte-identical for identical weights (``beamline_plugins.training.stable_save``:
variables in the model's order, Keras' and TensorFlow's per-process names counted as in a fresh
process), so the export's digest identifies the model.
"""

from __future__ import annotations

import json
from typing import Any

from beamline import Evaluation, Exporter, Input, StepContext, StepResult, TrainedModel, param
from beamline.artifacts import write_json_atomic
from beamline.errors import GateFailed

from .ctc import Decoder

SAVED_MODEL_DIR = "saved_model"
EXPORT_INFO = "export.json"
SIGNATURE = "serving_default"


class TranscriptExporter(Exporter):
    """Export a speech-to-text model as a SavedModel taking WAV bytes, returning the transcript.

    The signature decodes each WAV, computes the same log-mel frames as training, runs the
    model and decodes its CTC outputs (``decoder``: beam search with ``beam_width`` prefixes,
    or greedy) into text. Given ``blessing`` (an evaluator step), only a blessed model is
    exported."""

    name = "transcript_exporter"
    model: Input[TrainedModel] = param(help="the ctc_trainer step whose model to export")
    blessing: Input[Evaluation] | None = param(
        None, help="an evaluator step that must have blessed the model"
    )
    decoder: Decoder = param("beam", help="CTC decoding in the exported graph: beam or greedy")
    beam_width: int = param(16, help="prefixes kept by the beam search", ge=1)

    def run(self, ctx: StepContext) -> StepResult:
        """Write the SavedModel and ``export.json``."""
        if self.blessing:
            verdict = json.loads(ctx.input("blessing").file("blessing.json").read_text())
            if not verdict.get("blessed"):
                raise GateFailed(
                    f"step '{self.blessing}' did not bless the model: "
                    + "; ".join(verdict.get("reasons", []))
                )
        from beamline_plugins.training.artifact import trained_model
        from beamline_plugins.training.export_steps import write_saved_model
        from beamline_plugins.training.stable_save import fresh_names

        from .ctc import decode, to_text
        from .transcript_evaluator import load_ctc_model

        with fresh_names():  # the names a fresh process gives: same weights, same bytes
            artifact, info, pipeline = trained_model(ctx, "model")
            model = load_ctc_model(artifact)
            inputs = info["inputs"]
            name = next(n for n, s in inputs.items() if s.get("modality") == "audio")
            spec = inputs[name]
            signature, preprocess = pipeline.serving(inputs)

            def serve(raw: dict[str, Any]) -> dict[str, Any]:
                out = model(preprocess(raw), training=False)
                ids = decode(out["logits"], out["frames"], self.decoder, self.beam_width)
                return {"text": to_text(ids, spec["vocabulary"], spec["level"])}

            write_saved_model(
                model, ctx.output_dir / SAVED_MODEL_DIR, SIGNATURE, serve, [signature]
            )
        export = {
            "signature": SIGNATURE,
            "task": "transcription",
            "inputs": {n: inputs[n].get("modality", "") for n in signature},
            "input_dtypes": {n: s.dtype.name for n, s in signature.items()},
            "outputs": ["text"],
            "classes": info["classes"],
            "label": None,
            "decoder": self.decoder,
            "beam_width": self.beam_width,
            "sample_rate": spec["preprocessing"]["sample_rate"],
            "trainer_step": artifact.step,
        }
        write_json_atomic(ctx.output_dir / EXPORT_INFO, export)
        rate = spec["preprocessing"]["sample_rate"]
        return StepResult(
            summary=f"SavedModel from WAV bytes ({rate} Hz) to text ({self.decoder} decoding)"
        )
