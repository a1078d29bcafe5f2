"""``stream_windows``: chosen parts of a durable window store as a bounded, split examples artifact.

What a continuous-training cycle reads (``beamline.continuous`` fills ``parts`` with the parts of
the newest windows): each part's examples, dropped when their label is not one of ``classes``,
exact duplicates removed, and split into train, eval and test by a stable hash of each example's
bytes (the same on every run, so the candidate and the blessed model are evaluated on the same
held-out examples). Writes ``examples/<split>/part-00000-of-00001.tfrecord.gz``,
``features.json``, ``rejected/cycle.jsonl`` and ``lineage.json`` (the store and its parts).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from beamline import PipelineError, Source, StepContext, StepResult, param
from beamline.atomic import atomic_write, write_json
from beamline.examples import EXAMPLES_DIR, REJECTED_DIR, decode_example
from beamline.ingest_result import write_features
from beamline.shards import SHARD_SUFFIX, shard_name
from beamline.splits import split_of, split_shares
from beamline.tfrecord import read_tfrecords, write_tfrecords
from beamline.window_store import EXAMPLES, WindowStore
from beamline.windows import features_json, merge

LINEAGE_FILE = "lineage.json"


class StreamWindows(Source):
    """Read chosen parts of a stream's durable window store (a continuous cycle's data).

    ``parts`` are ``<window>/<part>`` names of the store (``beamline.window_store``); their
    examples are split by a stable hash of their bytes (``split``), exact duplicates removed,
    and examples whose label is not among ``classes`` rejected (a classifier keeps one class
    list from cycle to cycle)."""

    name = "stream_windows"

    store: str = param(help="the window store folder (relative to the pipeline file)")
    parts: list[str] = param(help="the parts read, as <window>/<part>")
    classes: list[str] = param([], help="class names in index order ([]: those in the parts)")

    def location(self, ctx: StepContext) -> str:
        """The store this source reads."""
        return str(ctx.resolve(self.store))

    def data_fingerprint(self, ctx: StepContext) -> str | None:
        """The part names: a part's id is a digest of its messages, and parts never change."""
        return hashlib.sha256("\n".join(sorted(self.parts)).encode()).hexdigest()

    def run(self, ctx: StepContext) -> StepResult:
        """Split the parts' examples and write the artifact."""
        store = WindowStore(ctx.resolve(self.store))
        known = {p.key: p for p in store.parts() if p.kind == EXAMPLES}
        missing = [key for key in self.parts if key not in known]
        if missing:
            raise PipelineError(
                f"{self.name}: {len(missing)} part(s) not in the store {store.root}, e.g. "
                f"{missing[0]} (was the store moved or cleaned?)"
            )
        declared = store.declared()
        label = declared.get("label")
        shares = split_shares(self.split)
        out = Path(ctx.output_dir)
        by_split: dict[str, dict[str, bytes]] = {name: {} for name, _ in shares}
        seen: dict[str, str] = {}
        rejected: list[dict[str, str]] = []
        read = 0
        for key in self.parts:
            part = known[key]
            for i, data in enumerate(read_tfrecords(store.examples_path(part.window, part.part))):
                read += 1
                where = f"{key}#{i}"
                digest = hashlib.sha256(data).hexdigest()
                reason = self._problem(data, label, digest, seen)
                if reason:
                    rejected.append({"source": where, "stage": self.name, "reason": reason})
                    continue
                seen[digest] = where
                by_split[split_of(digest.encode(), shares, self.split.salt)][digest] = data
        counts, shards = {}, {}
        for name, examples in by_split.items():
            ordered = [examples[d] for d in sorted(examples)]
            target = out / EXAMPLES_DIR / name / shard_name(0, 1, SHARD_SUFFIX)
            write_tfrecords(target, ordered)
            counts[name], shards[name] = len(ordered), 1
        lines = "".join(json.dumps(e, sort_keys=True) + "\n" for e in rejected)
        atomic_write(out / REJECTED_DIR / "cycle.jsonl", lines)
        merged = merge(known[k].info["summary"] for k in self.parts)
        document = features_json(merged, declared, counts, shards)
        if self.classes:
            document["classes"] = list(self.classes)
        write_features(out, document)
        windows = sorted({known[k].window for k in self.parts})
        write_json(
            out / LINEAGE_FILE,
            {"store": str(store.root), "windows": windows, "parts": list(self.parts)},
            indent=2,
        )
        written = sum(counts.values())
        sizes = ", ".join(f"{n} {c}" for n, c in counts.items())
        summary = f"{written} examples of {len(windows)} windows ({sizes})"
        summary += f", {len(rejected)} rejected"
        return StepResult(
            counts={"read": read, "written": written, "rejected": len(rejected)},
            metrics={"windows": float(len(windows))},
            summary=summary,
        )

    def _problem(
        self, data: bytes, label: str | None, digest: str, seen: dict[str, str]
    ) -> str | None:
        if digest in seen and self.deduplicate:
            return f"duplicate of {seen[digest]}"
        if self.classes and label:
            values = decode_example(data).get(label, ("", []))[1]
            value = values[0].decode() if values and isinstance(values[0], bytes) else None
            if value not in self.classes:
                return f"label {value!r} is not one of the classes {self.classes}"
        return None
