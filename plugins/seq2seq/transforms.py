"""The ``seq2seq_vocabulary`` transform: source and target vocabularies from the train split."""

from __future__ import annotations

from typing import Any

from beamline import StepContext, Transform, param
from beamline.ingest import record_stage

from .tokens import Level
from .vocabulary import SOURCE, TARGET, TRANSFORM


def identity(record: dict[str, Any]) -> dict[str, Any]:
    """Return the record unchanged."""
    return record


class Seq2SeqVocabulary(Transform):
    """Count source and target tokens on the TRAIN split in Beam and save both vocabularies.

    Records pass unchanged; ingest applies ``analyze`` to the train split only (nothing of eval
    or test enters a vocabulary) and writes ``assets/seq2seq_vocabulary/source.json`` and
    ``target.json``: ``[PAD]``, ``[UNK]``, ``[BOS]``, ``[EOS]``, then the ``max_tokens`` most
    frequent tokens with at least ``min_count`` train occurrences. ``seq2seq_input`` reads them;
    a token outside them is ``[UNK]``."""

    name = TRANSFORM
    source_level: Level = param("char", help="source tokens: char, space or word")
    target_level: Level = param("space", help="target tokens: char, space or word")
    lowercase_source: bool = param(False, help="lowercase the source (also in the export)")
    lowercase_target: bool = param(False, help="lowercase the target")
    max_tokens: int = param(30000, help="most tokens kept per side (besides the 4 reserved)", ge=1)
    min_count: int = param(1, help="fewest train occurrences of a kept token", ge=1)

    def settings(self) -> dict[str, dict[str, Any]]:
        """Level, lowercasing and limits per side."""
        limits = {"max_tokens": self.max_tokens, "min_count": self.min_count}
        return {
            SOURCE: {"level": self.source_level, "lowercase": self.lowercase_source, **limits},
            TARGET: {"level": self.target_level, "lowercase": self.lowercase_target, **limits},
        }

    def stage(self, ctx: StepContext) -> Any:
        """Records pass unchanged (the work is in ``analyze``)."""
        return record_stage(self.name, identity)

    def analyze(self, ctx: StepContext) -> Any:
        """The analyzer: train records -> ``(relative path, bytes)`` of both vocabularies."""
        from .vocabulary import vocabulary_analyzer

        return vocabulary_analyzer(self.settings(), "Seq2seq vocabulary")
