"""The ``seq2seq_evaluator`` step: decode a split with beam search and greedily, and score it.

Metrics (beam search; the same prefixed ``greedy_`` for greedy decoding of the same model)::

    exact_match        share of outputs equal to the reference (G2P's "word accuracy")
    sequence_error_rate   1 - exact_match (G2P's "word error rate")
    token_error_rate   token edits / reference tokens over the split (G2P's "phoneme error
                       rate"; the word error rate of a translation)
    bleu               corpus BLEU-4 in [0, 1] (``bleu.corpus_bleu``; 0 when no output has
                       four tokens, as for digit strings of three)
    mean_log_prob      the model's mean log probability of its chosen outputs

Decoding is the exported model's own function (``decoding.translator``) on the raw source
strings, so the figures are those of the export. ``report/errors.txt`` lists the worst outputs
(most edits) with source, reference and both hypotheses. The model is blessed when every
threshold holds (a maximum for ``*error_rate``, a minimum for the others).
"""

from __future__ import annotations

from typing import Any

from beamline import Evaluator, Examples, Input, StepContext, StepResult, TrainedModel, param
from beamline.artifacts import write_json_atomic
from beamline.errors import PipelineError
from beamline_plugins.sequences.metrics import error_counts
from beamline_plugins.training.blessing import write_blessing

from .bleu import corpus_bleu
from .tokens import tokenize
from .vocabulary import SOURCE, TARGET


class Seq2SeqEvaluator(Evaluator):
    """Score an encoder-decoder on a split: exact match, token error rate, BLEU; beam vs greedy.

    Both decoders run on the raw source strings of ``split`` inside TensorFlow (the function
    the export serves). ``thresholds`` bound beam-search metrics, e.g. ``{token_error_rate:
    0.08, sequence_error_rate: 0.35}``; ``report/errors.txt`` shows the worst outputs."""

    name = "seq2seq_evaluator"
    model: Input[TrainedModel] = param(help="the seq2seq_trainer step whose model to evaluate")
    examples: Input[Examples] = param(help="the step whose examples artifact to evaluate on")
    split: str = param("test", help="split to evaluate")
    beam_size: int = param(4, help="beams of beam-search decoding", ge=1)
    length_penalty: float = param(0.0, help="length normalisation alpha (0: none)", ge=0)
    batch_size: int = param(256, help="sources decoded per batch", ge=1)
    limit: int = param(0, help="evaluate at most this many pairs (0: all)", ge=0)
    thresholds: dict[str, float] = param({}, help="e.g. {token_error_rate: 0.08}")
    worst: int = param(25, help="worst outputs listed in report/errors.txt", ge=0)

    def run(self, ctx: StepContext) -> StepResult:
        """Decode, score, write ``metrics.json``, the report and ``blessing.json``."""
        from beamline_plugins.training.artifact import load_keras_model, trained_model

        from .decoding import translator

        artifact, info, pipeline = trained_model(ctx, "model")
        inputs = info["inputs"]
        model = load_keras_model(artifact)
        sources, references = read_pairs(ctx.input("examples"), self.split, self.limit)
        if not sources:
            raise PipelineError(f"split '{self.split}' of step '{self.examples}' has no pairs")
        target = inputs[TARGET]
        level, lowercase = target["level"], bool(target["lowercase"])
        wanted = [tokenize(r, level, lowercase) for r in references]
        metrics: dict[str, float] = {"pairs": float(len(sources))}
        outputs = {}
        for prefix, beams in (("", self.beam_size), ("greedy_", 1)):
            translate = translator(model, inputs, pipeline, beams, self.length_penalty)
            texts, scores = decode_all(translate, sources, self.batch_size)
            got = [tokenize(t, level, False) for t in texts]
            metrics.update({prefix + k: v for k, v in score(wanted, got).items()})
            metrics[prefix + "mean_log_prob"] = sum(scores) / len(scores)
            outputs[prefix or "beam"] = texts
        write_json_atomic(ctx.output_dir / "metrics.json", {**metrics, "split": self.split})
        report = ctx.output_dir / "report"
        report.mkdir(parents=True, exist_ok=True)
        beam_tokens = [tokenize(t, level, False) for t in outputs["beam"]]
        rows = worst_rows(
            sources,
            references,
            outputs["beam"],
            outputs["greedy_"],
            wanted,
            beam_tokens,
            self.worst,
        )
        (report / "errors.txt").write_text(rows, encoding="utf-8")
        reasons = check(metrics, self.thresholds)
        verdict = write_blessing(ctx, reasons, self.thresholds)
        summary = (
            f"{self.split}: token error {metrics['token_error_rate']:.4f}, sequence error "
            f"{metrics['sequence_error_rate']:.4f}, BLEU {metrics['bleu']:.3f} (beam "
            f"{self.beam_size}; greedy {metrics['greedy_token_error_rate']:.4f} / "
            f"{metrics['greedy_sequence_error_rate']:.4f}) ({verdict})"
        )
        return StepResult(metrics={**metrics, "blessed": float(not reasons)}, summary=summary)


def read_pairs(examples: Any, split: str, limit: int = 0) -> tuple[list[str], list[str]]:
    """The ``source`` and ``target`` strings of a split, in shard order."""
    from beamline.examples import iter_examples

    sources, targets = [], []
    for example in iter_examples(examples, split):
        sources.append(_text(example[SOURCE]))
        targets.append(_text(example[TARGET]))
        if limit and len(sources) >= limit:
            break
    return sources, targets


def _text(values: Any) -> str:
    value = values[0] if isinstance(values, list) else values
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def decode_all(
    translate: Any, sources: list[str], batch_size: int
) -> tuple[list[str], list[float]]:
    """Texts and scores of ``translate`` (a ``decoding.translator``) over ``sources``."""
    import tensorflow as tf

    texts: list[str] = []
    scores: list[float] = []
    for start in range(0, len(sources), batch_size):
        out = translate(tf.constant(sources[start : start + batch_size]))
        texts += [t.decode("utf-8") for t in out["text"].numpy()]
        scores += [float(s) for s in out["score"].numpy()]
    return texts, scores


def score(references: list[list[str]], hypotheses: list[list[str]]) -> dict[str, float]:
    """Exact match, sequence and token error rates and BLEU of token sequences."""
    counts = error_counts(zip(references, hypotheses, strict=True))
    return {
        "exact_match": 1.0 - counts.sequence_error_rate,
        "sequence_error_rate": counts.sequence_error_rate,
        "token_error_rate": counts.rate,
        "bleu": corpus_bleu(references, hypotheses),
    }


def worst_rows(
    sources: list[str],
    references: list[str],
    beam: list[str],
    greedy: list[str],
    wanted: list[list[str]],
    got: list[list[str]],
    count: int,
) -> str:
    """The ``count`` outputs with the most token edits (``wanted`` vs ``got`` tokens), as
    aligned text lines."""
    from beamline_plugins.sequences.metrics import edit_distance

    edits = [edit_distance(r, h) for r, h in zip(wanted, got, strict=True)]
    order = sorted(range(len(sources)), key=lambda i: (-edits[i], sources[i]))[:count]
    lines = [f"# {count} outputs with the most token edits (beam search), worst first\n"]
    for i in order:
        lines.append(
            f"source     {sources[i]}\nreference  {references[i]}\nbeam       {beam[i]}"
            f"\ngreedy     {greedy[i]}\nedits      {edits[i]}\n\n"
        )
    return "".join(lines)


def check(metrics: dict[str, float], thresholds: dict[str, float]) -> list[str]:
    """Why the thresholds fail (empty when they all hold)."""
    reasons = []
    for name, bound in thresholds.items():
        if name not in metrics:
            raise PipelineError(f"thresholds: unknown metric '{name}' (metrics: {list(metrics)})")
        value = metrics[name]
        upper = name.endswith("error_rate")
        if upper and value > bound:
            reasons.append(f"{name} {value:.4f} > {bound}")
        elif not upper and value < bound:
            reasons.append(f"{name} {value:.4f} < {bound}")
    return reasons
