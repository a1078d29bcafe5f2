"""The vocabulary analyzer: token counts of the train split in Beam, written as an asset.

``vocabulary_analyzer(...)`` is a Beam ``PTransform`` from records (dicts) to ``(relative path,
bytes)`` pairs, the analyzer contract of ``beamline.ingest``: ingest applies a transform's
``analyze(ctx)`` to the train split only and writes the pairs under ``assets/`` of the examples
artifact. Two files per feature::

    assets/vocabulary/<feature>.json   {"feature", "level", "lowercase", "normalization",
                                        "tokens": [id order], "counts": [train count per id],
                                        "reserved": 2, "records", "total_tokens", "oov_tokens",
                                        "max_tokens", "min_count"}
    assets/vocabulary/<feature>.txt    the tokens, one per line, in id order

Order is deterministic: ``[PAD]``, ``[UNK]``, then count descending, token ascending.

``load_vocabulary(examples, feature)`` reads the asset. When the examples artifact has none
(an ingest that does not run analyzers yet), it runs the same analyzer with Beam over the
artifact's train split, configured from the ``text_vocabulary`` transform recorded in the
ingest step's parameters, so the result is identical.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from beamline.errors import PipelineError
from beamline.fingerprint import plain

from .tokens import OOV_TOKEN, PAD_TOKEN, Level, tokenize

#: The transform whose settings (Unicode form, lowercasing) the vocabulary records.
NORMALIZE_TEXT = "normalize_text"

ASSETS_DIR = "assets"
VOCABULARY_DIR = "vocabulary"


def asset_path(feature: str, suffix: str = ".json") -> str:
    """The asset's path relative to ``assets/``."""
    return f"{VOCABULARY_DIR}/{feature}{suffix}"


def _record_tokens(record: dict[str, Any], feature: str, level: Level, lowercase: bool) -> Any:
    value = record.get(feature)
    if isinstance(value, list):
        value = value[0] if value else None
    if isinstance(value, bytes):
        value = value.decode("utf-8", errors="replace")
    return tokenize(value, level, lowercase) if isinstance(value, str) else []


def _sizes(record: dict[str, Any], feature: str, level: Level, lowercase: bool) -> tuple[int, int]:
    return 1, len(_record_tokens(record, feature, level, lowercase))


def _add_pairs(pairs: Any) -> tuple[int, int]:
    records = tokens = 0
    for a, b in pairs:
        records += a
        tokens += b
    return records, tokens


def _at_least(item: tuple[str, int], minimum: int) -> bool:
    return item[1] >= minimum


def rank_key(item: tuple[str, int]) -> tuple[int, tuple[int, ...]]:
    """Larger is better: higher count, then the alphabetically smaller token."""
    token, count = item
    return count, tuple(-ord(c) for c in token) + (1,)


def vocabulary_document(
    top: list[tuple[str, int]], totals: tuple[int, int], settings: dict[str, Any]
) -> dict[str, Any]:
    """The vocabulary asset's JSON document from the top tokens and the train totals."""
    ordered = sorted(top, key=rank_key, reverse=True)
    reserved = [PAD_TOKEN, OOV_TOKEN]
    kept = [(t, c) for t, c in ordered if t not in reserved]
    records, total = totals
    in_vocabulary = sum(c for _, c in kept)
    return {
        **settings,
        "tokens": reserved + [t for t, _ in kept],
        "counts": [0, total - in_vocabulary] + [c for _, c in kept],
        "reserved": len(reserved),
        "records": records,
        "total_tokens": total,
        "oov_tokens": total - in_vocabulary,
    }


def _files(top: list[tuple[str, int]], totals: Any, settings: dict[str, Any]) -> Any:
    document = vocabulary_document(top, tuple(totals), settings)
    feature = settings["feature"]
    text = json.dumps(document, ensure_ascii=False, sort_keys=True, indent=1) + "\n"
    yield asset_path(feature, ".json"), text.encode("utf-8")
    lines = "".join(token.replace("\n", "\\n") + "\n" for token in document["tokens"])
    yield asset_path(feature, ".txt"), lines.encode("utf-8")


def vocabulary_analyzer(
    *,
    feature: str,
    level: Level,
    max_tokens: int,
    min_count: int,
    lowercase: bool = False,
    normalization: str = "none",
    label: str = "Vocabulary",
) -> Any:
    """A Beam ``PTransform``: records -> ``(relative path, bytes)`` of the vocabulary asset."""
    import apache_beam as beam

    settings = {
        "feature": feature,
        "level": level,
        "lowercase": lowercase,
        "normalization": normalization,
        "max_tokens": max_tokens,
        "min_count": min_count,
    }

    @beam.ptransform_fn
    def _analyze(records: Any) -> Any:
        counts = (
            records
            | f"{label}: tokens" >> beam.FlatMap(_record_tokens, feature, level, lowercase)
            | f"{label}: count" >> beam.combiners.Count.PerElement()
            | f"{label}: min count" >> beam.Filter(_at_least, max(1, min_count))
        )
        top = counts | f"{label}: top k" >> beam.combiners.Top.Of(max_tokens, key=rank_key)
        totals = (
            records
            | f"{label}: sizes" >> beam.Map(_sizes, feature, level, lowercase)
            | f"{label}: totals" >> beam.CombineGlobally(_add_pairs)
        )
        return top | f"{label}: files" >> beam.FlatMap(
            _files, totals=beam.pvalue.AsSingleton(totals), settings=settings
        )

    return _analyze()


def _write_asset(item: tuple[str, bytes], folder: str) -> None:
    path = Path(folder) / item[0]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(item[1])


def run_analyzer(records: list[dict[str, Any]], analyzer: Any, folder: Path, options: Any) -> None:
    """Run ``analyzer`` over in-memory ``records`` with Beam and write its files into ``folder``."""
    import apache_beam as beam

    with beam.Pipeline(options=options) as p:
        (
            p
            | "Records" >> beam.Create(records, reshuffle=False)
            | "Analyze" >> analyzer
            | "Write assets" >> beam.Map(_write_asset, str(folder))
        )


def text_settings(transforms: list[Any], feature: str) -> dict[str, Any]:
    """``lowercase`` and ``normalization`` applied to ``feature`` by ``normalize_text`` stages.

    ``transforms`` are components or their recorded parameters (``{component: ..., ...}``)."""
    lowercase, form = False, "none"
    for transform in transforms:
        entry = plain(transform) if not isinstance(transform, dict) else transform
        if entry.get("component") == NORMALIZE_TEXT and entry.get("feature") == feature:
            lowercase = lowercase or bool(entry.get("lowercase"))
            form = entry.get("form") if entry.get("form") != "none" else form
    return {"lowercase": lowercase, "normalization": form}


def _recorded_transform(examples: Any, feature: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The ``text_vocabulary`` params of the ingest step and its text settings."""
    transforms = (examples.meta.get("params") or {}).get("transforms") or []
    for entry in transforms:
        if entry.get("component") == "text_vocabulary" and entry.get("feature") == feature:
            return entry, text_settings(transforms, feature)
    raise PipelineError(
        f"{examples.path}: no vocabulary for feature '{feature}': add the 'text_vocabulary' "
        f"transform (feature: {feature}) to the transforms of step '{examples.step}'"
    )


def load_vocabulary(examples: Any, feature: str, options: Any = None) -> dict[str, Any]:
    """The vocabulary document of ``feature`` in an examples artifact (see the module docstring).

    When the artifact has none, it is computed with Beam: with ``options`` (a step's
    ``ctx.beam_options()``), else the runner settings of the run the artifact belongs to."""
    path = examples.path / ASSETS_DIR / asset_path(feature)
    if path.is_file():
        return json.loads(path.read_text(encoding="utf-8"))
    from beamline.beam_options import run_options
    from beamline.examples import iter_examples

    params, settings = _recorded_transform(examples, feature)
    analyzer = vocabulary_analyzer(
        feature=feature,
        level=params["level"],
        max_tokens=int(params["max_tokens"]),
        min_count=int(params["min_count"]),
        **settings,
    )
    records = [
        {name: values[0] if len(values) == 1 else values for name, values in example.items()}
        for example in iter_examples(examples, "train")
    ]
    with tempfile.TemporaryDirectory(prefix="vocabulary-") as folder:
        run_analyzer(records, analyzer, Path(folder), options or run_options(examples.path))
        return json.loads((Path(folder) / asset_path(feature)).read_text(encoding="utf-8"))
