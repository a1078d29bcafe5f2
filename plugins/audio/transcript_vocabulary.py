"""The ``transcript_vocabulary`` transform: the output tokens of a CTC model, from the train split.

Ingest applies ``analyze`` to the TRAIN split only and writes the asset::

    assets/transcripts/<feature>.json   {"feature", "level", "lowercase", "tokens": [id order],
                                         "counts": [train count per id], "blank": id of the CTC
                                         blank (= len(tokens), the last class), "records",
                                         "total_tokens", "unknown_tokens", "max_tokens",
                                         "min_count", "longest"}

Tokens are characters (the space among them) or words, in code point order, so ids are the same
on every runner. A transcript is normalised before it is split: whitespace runs become one space,
ends are stripped, and with ``lowercase`` it is lowercased; ``transcript_tokens`` (Python) and
``beamline_plugins.audio.speech_input`` (TensorFlow) apply the same rule. Tokens below
``min_count`` are not in the vocabulary: they are dropped from training targets.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from beamline import StepContext, Transform, param
from beamline.errors import PipelineError
from beamline.ingest import record_stage

Level = Literal["char", "word"]
ASSETS_DIR = "assets"
FOLDER = "transcripts"


def asset_path(feature: str) -> str:
    """The asset's path relative to ``assets/``."""
    return f"{FOLDER}/{feature}.json"


def normalized(text: str, lowercase: bool) -> str:
    """Whitespace runs as one space, ends stripped, lowercased on request."""
    text = " ".join(text.split())
    return text.lower() if lowercase else text


def transcript_tokens(text: str, level: str, lowercase: bool) -> list[str]:
    """The tokens of a transcript: its characters (spaces included) or its words."""
    text = normalized(text, lowercase)
    if level == "word":
        return text.split(" ") if text else []
    return list(text)


def join_tokens(tokens: list[str], level: str) -> str:
    """A transcript from tokens (the inverse of ``transcript_tokens`` on normalised text)."""
    return (" " if level == "word" else "").join(tokens)


def _text_of(record: dict[str, Any], feature: str) -> str | None:
    value = record.get(feature)
    if isinstance(value, list):
        value = value[0] if value else None
    if isinstance(value, bytes):
        value = value.decode("utf-8", errors="replace")
    return value if isinstance(value, str) else None


def _tokens(record: dict[str, Any], feature: str, level: str, lowercase: bool) -> list[str]:
    text = _text_of(record, feature)
    return transcript_tokens(text, level, lowercase) if text is not None else []


def _sizes(
    record: dict[str, Any], feature: str, level: str, lowercase: bool
) -> tuple[int, int, int]:
    size = len(_tokens(record, feature, level, lowercase))
    return 1, size, size


def _totals(triples: Any) -> tuple[int, int, int]:
    """(records, tokens, longest) of partial totals: Beam combines its own outputs again."""
    records = tokens = longest = 0
    for count, size, most in triples:
        records += count
        tokens += size
        longest = max(longest, most)
    return records, tokens, longest


def _files(counts: list[tuple[str, int]], totals: Any, settings: dict[str, Any]) -> Any:
    records, total, longest = totals if totals else (0, 0, 0)
    kept = sorted((t, c) for t, c in counts if c >= settings["min_count"])
    kept = sorted(sorted(kept, key=lambda tc: -tc[1])[: settings["max_tokens"]])
    document = {
        **settings,
        "tokens": [t for t, _ in kept],
        "counts": [c for _, c in kept],
        "blank": len(kept),
        "records": records,
        "total_tokens": total,
        "unknown_tokens": total - sum(c for _, c in kept),
        "longest": longest,
    }
    text = json.dumps(document, ensure_ascii=False, sort_keys=True, indent=1) + "\n"
    yield asset_path(settings["feature"]), text.encode("utf-8")


def _identity(record: dict[str, Any]) -> dict[str, Any]:
    return dict(record)


def transcript_analyzer(
    *, feature: str, level: str, lowercase: bool, min_count: int, max_tokens: int, label: str
) -> Any:
    """A Beam ``PTransform``: train records -> ``(relative path, bytes)`` of the asset."""
    import apache_beam as beam

    settings = {
        "feature": feature,
        "level": level,
        "lowercase": lowercase,
        "min_count": min_count,
        "max_tokens": max_tokens,
    }

    @beam.ptransform_fn
    def _analyze(records: Any) -> Any:
        counts = (
            records
            | f"{label}: tokens" >> beam.FlatMap(_tokens, feature, level, lowercase)
            | f"{label}: count" >> beam.combiners.Count.PerElement()
            | f"{label}: gather" >> beam.combiners.ToList()
        )
        totals = (
            records
            | f"{label}: sizes" >> beam.Map(_sizes, feature, level, lowercase)
            | f"{label}: totals" >> beam.CombineGlobally(_totals)
        )
        return counts | f"{label}: files" >> beam.FlatMap(
            _files, totals=beam.pvalue.AsSingleton(totals), settings=settings
        )

    return _analyze()


def load_transcript_vocabulary(examples: Any, feature: str) -> dict[str, Any]:
    """The vocabulary asset of ``feature`` in an examples artifact (see the module docstring)."""
    path = examples.path / ASSETS_DIR / asset_path(feature)
    if not path.is_file():
        raise PipelineError(
            f"{examples.path}: no transcript vocabulary for feature '{feature}': add "
            f"{{component: transcript_vocabulary, feature: {feature}}} to the transforms of step "
            f"'{examples.step}'"
        )
    document = json.loads(path.read_text(encoding="utf-8"))
    if not document["tokens"]:
        raise PipelineError(f"{path}: the train split's transcripts hold no tokens")
    return document


class TranscriptVocabulary(Transform):
    """Compute the output tokens of a speech-to-text model from the TRAIN split's transcripts.

    Characters (the space included) or words of the normalised transcripts (whitespace runs as
    one space, optionally lowercased), kept when seen ``min_count`` times, in code point order;
    the CTC blank is one more class after them. Records pass unchanged; ingest applies
    ``analyze`` to the train split only and writes ``assets/transcripts/<feature>.json``, which
    ``speech_input`` reads."""

    name = "transcript_vocabulary"
    feature: str = param("text", help="the transcript feature")
    level: Level = param("char", help="char (characters and space) or word tokens")
    lowercase: bool = param(False, help="lowercase transcripts before splitting them")
    min_count: int = param(1, help="fewest training occurrences of a kept token", ge=1)
    max_tokens: int = param(1000, help="most tokens kept (the most frequent)", ge=1)

    def stage(self, ctx: StepContext) -> Any:
        """Records pass unchanged (the work is in ``analyze``)."""
        return record_stage(self.name, _identity)

    def analyze(self, ctx: StepContext) -> Any:
        """The analyzer: train records -> ``(relative path, bytes)`` of the vocabulary asset."""
        return transcript_analyzer(
            feature=self.feature,
            level=self.level,
            lowercase=self.lowercase,
            min_count=self.min_count,
            max_tokens=self.max_tokens,
            label=f"Transcript vocabulary ({self.feature})",
        )
