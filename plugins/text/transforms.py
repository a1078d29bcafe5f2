"""Text transforms: Beam stages that normalise and filter texts, and the vocabulary analyzer."""

from __future__ import annotations

import functools
from typing import Any, Literal

from beamline import ParamError, StepContext, Transform, param
from beamline.ingest import record_stage

from . import ops
from .tokens import Level
from .vocabulary import NORMALIZE_TEXT

NormalForm = Literal["NFKC", "NFC", "NFKD", "NFD", "none"]


class NormalizeText(Transform):
    """Normalise texts: Unicode normal form (NFKC), optional lowercasing, collapsed whitespace.

    Runs before deduplication, so texts that differ only in Unicode form, case (with
    ``lowercase``) or spacing become exact duplicates and are removed before the split. Rejects
    texts that are not valid UTF-8 and texts that are empty after normalisation. The exported
    model applies the same form (character by character: TensorFlow has no NFKC op) and the same
    lowercasing to raw input."""

    name = NORMALIZE_TEXT
    feature: str = param("text", help="the text feature")
    form: NormalForm = param("NFKC", help="Unicode normal form (NFKC, NFC, NFKD, NFD or none)")
    lowercase: bool = param(False, help="lowercase the text")
    collapse_whitespace: bool = param(True, help="strip and turn whitespace runs into one space")

    def stage(self, ctx: StepContext) -> Any:
        """The Beam stage: normalise each text; reject undecodable and empty texts."""
        fn = functools.partial(
            ops.normalize_record,
            feature=self.feature,
            form=self.form,
            lowercase=self.lowercase,
            collapse_whitespace=self.collapse_whitespace,
        )
        return record_stage(self.name, fn)


class FilterLength(Transform):
    """Keep texts whose length lies between ``min`` and ``max`` characters or tokens.

    Shorter or longer texts are rejected with their length and the bound in the reason."""

    name = "filter_length"
    feature: str = param("text", help="the text feature")
    unit: Literal["chars", "tokens"] = param("chars", help="count characters or tokens")
    level: Level = param("word", help="token level when unit is tokens: word or char")
    min: int = param(1, help="minimum length (inclusive)", ge=0)
    max: int = param(0, help="maximum length (inclusive); 0 for no maximum", ge=0)

    def check(self) -> None:
        """``min <= max`` unless ``max`` is 0 (no maximum)."""
        if self.max and self.max < self.min:
            raise ParamError("max", f"is {self.max}, below min {self.min} (0: no maximum)")

    def stage(self, ctx: StepContext) -> Any:
        """The Beam stage: reject texts outside the bounds."""
        fn = functools.partial(
            ops.length_record,
            feature=self.feature,
            unit=self.unit,
            level=self.level,
            minimum=self.min,
            maximum=self.max,
        )
        return record_stage(self.name, fn)


class TextVocabulary(Transform):
    """Compute a token vocabulary from the TRAIN split in Beam and save it with the examples.

    Top ``max_tokens`` tokens (words or characters) by training count with at least
    ``min_count`` occurrences, in a deterministic order (count descending, token ascending),
    after the reserved ``[PAD]`` (id 0) and ``[UNK]`` (id 1). Records pass unchanged; ingest
    applies ``analyze`` to the train split only (no leakage from eval or test) and writes
    ``assets/vocabulary/<feature>.json`` and ``.txt``. ``text_input`` and ``lm_input`` read it."""

    name = "text_vocabulary"
    feature: str = param("text", help="the text feature")
    level: Level = param("word", help="word or char tokens")
    max_tokens: int = param(20000, help="most tokens kept (besides [PAD] and [UNK])", ge=1)
    min_count: int = param(1, help="fewest training occurrences of a kept token", ge=1)

    def stage(self, ctx: StepContext) -> Any:
        """Records pass unchanged (the work is in ``analyze``)."""
        return record_stage(self.name, ops.identity)

    def analyze(self, ctx: StepContext) -> Any:
        """The analyzer: train records -> ``(relative path, bytes)`` of the vocabulary files."""
        from .vocabulary import text_settings, vocabulary_analyzer

        transforms = list(getattr(ctx.step.component, "transforms", []))
        return vocabulary_analyzer(
            feature=self.feature,
            level=self.level,
            max_tokens=self.max_tokens,
            min_count=self.min_count,
            label=f"Vocabulary ({self.feature})",
            **text_settings(transforms, self.feature),
        )
