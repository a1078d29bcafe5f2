"""What an ingest step reports: the features its components declare, its counts, features.json.

Counts come from small files the ingest pipeline writes into its work folder (one per shard, one
for the records read, one for the rejected ones), summed once the pipeline finished: that works
on every runner, where Beam metrics do not. Nothing here imports Beam.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import examples as ex
from .atomic import atomic_write
from .components import StepResult
from .errors import PipelineError

if TYPE_CHECKING:
    from .components import Component, Source
    from .context import StepContext


def declared_features(source: Component, ctx: StepContext) -> dict[str, Any]:
    """What a source (or stream) and its transforms say about the features (``feature_info``;
    see ``beamline.examples``)."""
    info: dict[str, Any] = {"features": {}, "label": None, "warnings": []}
    describe = getattr(source, "feature_info", None)
    if callable(describe):
        info = _merge_info(info, describe(ctx), source.name)
    for transform in getattr(source, "transforms", []):
        describe = getattr(transform, "feature_info", None)
        if callable(describe):
            info = _merge_info(info, describe(ctx, info), transform.name)
    return info


def _merge_info(base: dict[str, Any], update: Any, who: str) -> dict[str, Any]:
    if not isinstance(update, dict):
        raise PipelineError(f"component '{who}': feature_info() must return a dict")
    return {
        "features": {k: dict(v) for k, v in (update.get("features") or base["features"]).items()},
        "label": update.get("label", base["label"]),
        "warnings": list(update.get("warnings") or base["warnings"]),
    }


def source_location(source: Component, ctx: StepContext) -> str:
    """What a source reads, for messages: its ``location(ctx)`` or its parameters."""
    locate = getattr(source, "location", None)
    if callable(locate):
        return str(locate(ctx))
    from .fingerprint import plain

    params = {k: v for k, v in plain(source).items() if k not in ("transforms", "split")}
    return f"{source.name} {params}"


def read_json(path: Path, default: Any = None) -> Any:
    """The JSON value in ``path``, or ``default`` when there is no such file."""
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else default


def write_features(out: Path, spec: dict[str, Any]) -> None:
    """Write ``features.json`` into the artifact folder ``out``."""
    text = json.dumps(spec, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    atomic_write(out / ex.FEATURES_FILE, text)


def finish_ingest(
    source: Source, ctx: StepContext, info: dict[str, Any], names: list[str], work: Path
) -> StepResult:
    """Sum the work folder's counts, write ``features.json`` and return the step's result.

    Raises ``PipelineError`` when nothing was read or every record was rejected."""
    out = Path(ctx.output_dir)
    read = int(read_json(work / "read-records", 0)) + int(read_json(work / "read-rejected", 0))
    rejected = int((read_json(work / "rejected") or {"count": 0})["count"])
    per_split = dict.fromkeys(names, 0)
    shards = dict.fromkeys(names, 0)
    for file in sorted((work / "shards").glob("*.json")):
        entry = read_json(file)
        per_split[entry["split"]] += entry["count"]
        shards[entry["split"]] += 1
    if source.split.from_feature:  # the data's own splits: only those it names
        per_split = {name: n for name, n in per_split.items() if n}
        shards = {name: n for name, n in shards.items() if name in per_split}
    written = sum(per_split.values())
    if read == 0:
        raise PipelineError(
            f"source '{source.name}' found no records in {source_location(source, ctx)}: "
            "the data set is empty"
        )
    if written == 0:
        reasons = top_reasons(ex.rejected_records(out))
        raise PipelineError(
            f"source '{source.name}': all {read} records read from "
            f"{source_location(source, ctx)} were rejected ({reasons})"
        )
    spec = features_json(read_json(work / "schema"), info, per_split, shards)
    (out / ex.REJECTED_DIR).mkdir(exist_ok=True)
    write_features(out, spec)
    counts = {"read": read, "written": written, "rejected": rejected}
    counts.update({f"written_{name}": n for name, n in per_split.items()})
    parts = " / ".join(f"{n} {name}" for name, n in per_split.items())
    summary = f"{written} examples ({parts}), {rejected} rejected"
    if spec["classes"] is not None:
        summary += f", {len(spec['classes'])} classes"
    if spec["warnings"]:
        summary += f", {len(spec['warnings'])} warning(s)"
    return StepResult(counts=counts, summary=summary)


def top_reasons(entries: list[dict[str, str]], limit: int = 3) -> str:
    """The most frequent rejection reasons, ``N x reason; ...``."""
    tally: dict[str, int] = {}
    for entry in entries:
        tally[entry["reason"]] = tally.get(entry["reason"], 0) + 1
    top = sorted(tally.items(), key=lambda kv: (-kv[1], kv[0]))[:limit]
    return "; ".join(f"{n} x {reason}" for reason, n in top) or "no reasons recorded"


def features_json(
    schema: dict[str, Any],
    info: dict[str, Any],
    per_split: dict[str, int],
    shards: dict[str, int],
) -> dict[str, Any]:
    """The ``features.json`` of an examples artifact (see ``beamline.examples``)."""
    features = {}
    declared = info["features"]
    for name, entry in schema["features"].items():
        inferred = entry.pop("inferred_modality")
        decl = dict(declared.get(name, {}))
        modality = decl.pop("modality", None) or inferred
        features[name] = {**decl, **entry, "modality": modality}
    label = info["label"] if info["label"] in features else None
    if label is None:
        label = next((n for n, f in features.items() if f["modality"] == "label"), None)
    warnings = list(info["warnings"])
    if info["label"] and label is None:
        warnings.append(f"label feature '{info['label']}' is in no record")
    classes = None
    if label is not None and features[label]["dtype"] != "float":
        classes = schema["labels"]
    return ex.features_document(features, label, classes, per_split, shards, warnings)
