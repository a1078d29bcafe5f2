"""Source and target vocabularies of sequence pairs, counted in Beam on the train split only.

The ``seq2seq_vocabulary`` transform's analyzer writes, under ``assets/`` of the examples::

    seq2seq_vocabulary/source.json   {"feature", "level", "lowercase", "tokens": [id order],
    seq2seq_vocabulary/target.json    "counts", "records", "max_tokens", "min_count"}

Ids: ``[PAD]`` 0, ``[UNK]`` 1, ``[BOS]`` 2, ``[EOS]`` 3, then the tokens by train count
(descending), ties by token. ``load_vocabularies(examples)`` reads them back.
"""

from __future__ import annotations

import json
from typing import Any

from beamline.errors import PipelineError

from .tokens import RESERVED, tokenize

SOURCE, TARGET = "source", "target"
ASSET_DIR = "seq2seq_vocabulary"
TRANSFORM = "seq2seq_vocabulary"


def asset_path(feature: str) -> str:
    """The asset's path relative to ``assets/``."""
    return f"{ASSET_DIR}/{feature}.json"


def _text(record: dict[str, Any], feature: str) -> str:
    value = record.get(feature)
    if isinstance(value, list):
        value = value[0] if value else ""
    if isinstance(value, bytes):
        value = value.decode("utf-8", errors="replace")
    return value if isinstance(value, str) else ""


def _tagged_tokens(record: dict[str, Any], settings: dict[str, dict[str, Any]]) -> Any:
    for feature, s in settings.items():
        for token in tokenize(_text(record, feature), s["level"], s["lowercase"]):
            yield feature, token


def _rank(item: tuple[str, int]) -> tuple[int, tuple[int, ...]]:
    token, count = item
    return count, tuple(-ord(c) for c in token) + (1,)


def document(feature: str, top: list[tuple[str, int]], records: int, settings: dict[str, Any]):
    """The vocabulary document of ``feature`` from its top ``(token, count)`` pairs."""
    kept = [(t, c) for t, c in sorted(top, key=_rank, reverse=True) if t not in RESERVED]
    return {
        "feature": feature,
        **settings,
        "tokens": RESERVED + [t for t, _ in kept],
        "counts": [0] * len(RESERVED) + [c for _, c in kept],
        "records": records,
    }


def _files(item: tuple[str, list[tuple[str, int]]], records: int, settings: dict[str, Any]):
    feature, top = item
    doc = document(feature, top, records, settings[feature])
    text = json.dumps(doc, ensure_ascii=False, sort_keys=True, indent=1) + "\n"
    yield asset_path(feature), text.encode("utf-8")


def vocabulary_analyzer(settings: dict[str, dict[str, Any]], label: str) -> Any:
    """A Beam ``PTransform``: train records -> ``(relative path, bytes)`` of both vocabularies.

    ``settings`` maps ``source``/``target`` to ``{"level", "lowercase", "max_tokens",
    "min_count"}``."""
    import apache_beam as beam

    def big_enough(item: tuple[tuple[str, str], int]) -> bool:
        return item[1] >= settings[item[0][0]]["min_count"]

    def by_feature(item: tuple[tuple[str, str], int]) -> tuple[str, tuple[str, int]]:
        (feature, token), count = item
        return feature, (token, count)

    def top_of(item: tuple[str, Any]) -> tuple[str, list[tuple[str, int]]]:
        feature, pairs = item
        ranked = sorted(pairs, key=_rank, reverse=True)
        return feature, ranked[: settings[feature]["max_tokens"]]

    @beam.ptransform_fn
    def _analyze(records: Any) -> Any:
        count = records | f"{label}: records" >> beam.combiners.Count.Globally()
        return (
            records
            | f"{label}: tokens" >> beam.FlatMap(_tagged_tokens, settings)
            | f"{label}: count" >> beam.combiners.Count.PerElement()
            | f"{label}: min count" >> beam.Filter(big_enough)
            | f"{label}: by feature" >> beam.Map(by_feature)
            | f"{label}: group" >> beam.GroupByKey()
            | f"{label}: top" >> beam.Map(top_of)
            | f"{label}: files"
            >> beam.FlatMap(_files, records=beam.pvalue.AsSingleton(count), settings=settings)
        )

    return _analyze()


def load_vocabularies(examples: Any) -> dict[str, dict[str, Any]]:
    """``{"source": document, "target": document}`` saved with an examples artifact."""
    out = {}
    for feature in (SOURCE, TARGET):
        path = examples.path / "assets" / asset_path(feature)
        if not path.is_file():
            raise PipelineError(
                f"{examples.path}: no {feature} vocabulary ({path.name}); add the "
                f"'{TRANSFORM}' transform to the transforms of step '{examples.step}'"
            )
        out[feature] = json.loads(path.read_text(encoding="utf-8"))
    return out
