"""The ``transcript_evaluator`` step: word and character error rates of a speech-to-text model.

Artifact::

    metrics.json        wer, cer, sentence_error_rate (the chosen decoder), the same for greedy
                        and beam decoding (greedy_wer, beam_wer, ...), the mean CTC loss, counts
    predictions.jsonl   one line per clip: its ids (path), reference, greedy and beam
                        hypotheses, word edits
    blessing.json       {"blessed", "reasons", "thresholds"}
    report/summary.html the worst clips (most word edits): an audio player (the WAV inline,
                        base64), the reference and the hypothesis

Error rates are corpus rates (``beamline_plugins.sequences.metrics``): edits summed over the
split divided by the reference words (characters); the references are the transcripts as the
vocabulary normalised them (whitespace collapsed, lowercased if it was).
"""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path
from typing import Any

from beamline import Evaluator, Examples, Input, StepContext, StepResult, TrainedModel, param
from beamline.artifacts import write_json_atomic
from beamline.errors import PipelineError

from .ctc import Decoder

METRICS_FILE = "metrics.json"
PREDICTIONS_FILE = "predictions.jsonl"
BLESSING_FILE = "blessing.json"


class TranscriptEvaluator(Evaluator):
    """Evaluate a speech-to-text model on a split: WER, CER, sentence error rate, worst clips.

    Decodes every clip greedily and by beam search (``beam_width``) and reports both; the
    figures of ``decoder`` are the headline (``wer``, ``cer``, ``sentence_error_rate``).
    ``thresholds`` are maxima (every metric here is an error rate or a loss), e.g.
    ``{wer: 0.05}``; the model is blessed when all hold. ``worst`` clips with the most word
    edits go to the report with an audio player, their reference and hypothesis."""

    name = "transcript_evaluator"
    model: Input[TrainedModel] = param(help="the ctc_trainer step whose model to evaluate")
    examples: Input[Examples] = param(help="the step whose examples artifact to evaluate on")
    split: str = param("test", help="split to evaluate")
    decoder: Decoder = param("beam", help="decoder of the headline figures: greedy or beam")
    beam_width: int = param(16, help="prefixes kept by the beam search", ge=1)
    batch_size: int = param(32, help="clips per batch", ge=1)
    thresholds: dict[str, float] = param({}, help="maximum per metric, e.g. {wer: 0.05}")
    worst: int = param(8, help="worst clips shown in the report (with audio)", ge=0)

    def run(self, ctx: StepContext) -> StepResult:
        """Transcribe the split, compute the error rates, bless, write the artifact."""
        from beamline_plugins.sequences.metrics import error_counts, words

        from .ctc import transcribe

        artifact, info, pipeline = _trained(ctx)
        examples = ctx.input("examples")
        model = load_ctc_model(artifact)
        inputs = info["inputs"]
        name = next(n for n, s in inputs.items() if s.get("modality") == "audio")
        spec = inputs[name]
        batches = pipeline.dataset(
            examples,
            self.split,
            inputs=inputs,
            training=False,
            batch_size=self.batch_size,
            with_ids=True,
        )
        rows = transcribe(
            model,
            batches,
            spec["vocabulary"],
            spec["level"],
            spec["text_feature"],
            decoders=("greedy", "beam"),
            beam_width=self.beam_width,
        )
        if not rows:
            raise PipelineError(f"split '{self.split}' of step '{examples.step}' has no examples")
        metrics: dict[str, float] = {}
        for decoder in ("greedy", "beam"):
            pairs = [(words(r["reference"]), words(r[decoder])) for r in rows]
            by_word = error_counts(pairs)
            by_char = error_counts([(_chars(r["reference"]), _chars(r[decoder])) for r in rows])
            metrics[f"{decoder}_wer"] = by_word.rate
            metrics[f"{decoder}_cer"] = by_char.rate
            metrics[f"{decoder}_sentence_error_rate"] = by_word.sequence_error_rate
        for key in ("wer", "cer", "sentence_error_rate"):
            metrics[key] = metrics[f"{self.decoder}_{key}"]
        metrics["loss"] = sum(r["loss"] for r in rows) / len(rows)
        metrics["count"] = float(len(rows))
        metrics["reference_words"] = float(sum(len(words(r["reference"])) for r in rows))
        for row in rows:
            row["word_edits"] = error_counts(
                [(words(row["reference"]), words(row[self.decoder]))]
            ).edits
        write_json_atomic(
            ctx.output_dir / METRICS_FILE,
            {
                **metrics,
                "split": self.split,
                "decoder": self.decoder,
                "beam_width": self.beam_width,
            },
        )
        with (ctx.output_dir / PREDICTIONS_FILE).open("w", encoding="utf-8") as handle:
            for row in rows:
                handle.write(json.dumps(row, ensure_ascii=False) + "\n")
        report = ctx.output_dir / "report"
        report.mkdir(parents=True, exist_ok=True)
        worst = sorted(rows, key=lambda r: (-r["word_edits"], -r["loss"]))[: self.worst]
        worst = [r for r in worst if r["word_edits"] > 0]
        audio = _clips(examples, self.split, name, [r.get("path") for r in worst])
        (report / "summary.html").write_text(
            summary_html(worst, audio, metrics, self.split, self.decoder, len(rows)),
            encoding="utf-8",
        )
        reasons = [
            f"{k} {metrics[_known(k, metrics)]:.4f} > {bound}"
            for k, bound in self.thresholds.items()
            if metrics[_known(k, metrics)] > bound
        ]
        blessing = {"blessed": not reasons, "reasons": reasons, "thresholds": self.thresholds}
        write_json_atomic(ctx.output_dir / BLESSING_FILE, blessing)
        verdict = "blessed" if not reasons else "not blessed: " + "; ".join(reasons)
        ctx.log(verdict)
        summary = (
            f"{self.split} WER {metrics['wer']:.4f}, CER {metrics['cer']:.4f} ({self.decoder}; "
            f"greedy WER {metrics['greedy_wer']:.4f}) on {len(rows)} clips ({verdict})"
        )
        return StepResult(metrics={**metrics, "blessed": float(not reasons)}, summary=summary)


def _chars(text: str) -> list[str]:
    from beamline_plugins.sequences.metrics import chars

    return chars(text)


def _known(name: str, metrics: dict[str, float]) -> str:
    if name not in metrics:
        raise PipelineError(f"thresholds: unknown metric '{name}' (metrics: {', '.join(metrics)})")
    return name


def load_ctc_model(artifact: Any) -> Any:
    """The trained Keras model of a ``ctc_trainer`` artifact (its custom layers registered)."""
    from beamline_plugins.training.artifact import load_keras_model

    from .ctc_model import ctc_layers

    ctc_layers()
    return load_keras_model(artifact)


def _trained(ctx: StepContext) -> tuple[Any, dict[str, Any], Any]:
    from beamline_plugins.training.artifact import trained_model

    artifact, info, pipeline = trained_model(ctx, "model")
    if info.get("task") != "transcription":
        raise PipelineError(
            f"step '{artifact.step}' did not train a speech-to-text model (task "
            f"{info.get('task', 'classification')!r}); transcript_evaluator needs a ctc_trainer "
            "step"
        )
    return artifact, info, pipeline


def _clips(examples: Any, split: str, feature: str, paths: list[Any]) -> dict[str, bytes]:
    """The WAV bytes of the clips whose ``path`` id is in ``paths``."""
    from beamline.examples import iter_examples

    wanted = {p for p in paths if p}
    found: dict[str, bytes] = {}
    if not wanted:
        return found
    for example in iter_examples(examples, split):
        path = example.get("path", [b""])[0]
        path = path.decode("utf-8", "replace") if isinstance(path, bytes) else str(path)
        if path in wanted:
            found[path] = example[feature][0]
            if len(found) == len(wanted):
                break
    return found


def summary_html(
    worst: list[dict[str, Any]],
    audio: dict[str, bytes],
    metrics: dict[str, float],
    split: str,
    decoder: str,
    total: int,
) -> str:
    """The report fragment: the error rates and a table of the worst clips with audio."""
    e = html.escape
    head = (
        f"<h3>{e(split)}: WER {metrics['wer']:.2%}, CER {metrics['cer']:.2%} ({e(decoder)}); "
        f"greedy WER {metrics['greedy_wer']:.2%}, beam WER {metrics['beam_wer']:.2%}</h3>"
    )
    if not worst:
        return head + f"<p>All {total} clips transcribed without a word error.</p>"
    rows = []
    for row in worst:
        path = row.get("path") or ""
        data = audio.get(path)
        player = (
            f"<audio controls preload='none' src='data:audio/wav;base64,"
            f"{base64.b64encode(data).decode('ascii')}'></audio>"
            if data
            else ""
        )
        rows.append(
            f"<tr><td><code>{e(path)}</code><br>{player}</td><td>{e(row['reference'])}</td>"
            f"<td>{e(row[decoder])}</td><td>{row['word_edits']}</td></tr>"
        )
    return (
        head
        + f"<p>The {len(worst)} clips of {total} with the most word errors:</p><table>"
        + "<tr><th>clip</th><th>reference</th><th>hypothesis</th><th>word edits</th></tr>"
        + "".join(rows)
        + "</table>"
    )


def read_predictions(folder: Path) -> list[dict[str, Any]]:
    """The rows of an evaluator artifact's ``predictions.jsonl``."""
    lines = (folder / PREDICTIONS_FILE).read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]
