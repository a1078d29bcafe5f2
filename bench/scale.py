"""Case 6: peak memory of ingest and validation at 1x and 10x the data.

Peak resident memory of the whole process tree (sampled every 50 ms), for the ingest step on
the direct runner and the ``tfdv`` step (in-memory and Beam statistics paths), at N and 10 N
photos. The target: at most 1.2x growth from 1x to 10x.
"""

from __future__ import annotations

from typing import Any

from .common import CACHE, photos, row, task
from .validation import prepare

CASE = "scale"


def run(smoke: bool = False) -> list[dict[str, Any]]:
    """Peak RSS at 1x and 10x for ingest (direct) and validation (memory, Beam)."""
    small, size = (20, 32) if smoke else (1_000, 64)
    counts = (small, small * 10)
    peaks: dict[str, dict[int, dict[str, Any]]] = {}
    for count in counts:
        out = str(CACHE / "work" / f"scale-ingest-{count}")
        facts = task(
            "ingest_pipeline", root=str(photos(count)), out=out, runner="direct", size=size
        )
        peaks.setdefault("ingest (direct)", {})[count] = facts
        work, _ = prepare(count, size)
        for path in ("memory", "beam"):
            task("tfdv_step", out=work, path=path)  # previous statistics for drift
            facts = task("tfdv_step", out=work, path=path)
            peaks.setdefault(f"tfdv step ({path})", {})[count] = facts
    rows = []
    for name, by_count in peaks.items():
        low, high = by_count[counts[0]], by_count[counts[1]]
        growth = high["peak_rss_mib"] / low["peak_rss_mib"]
        for count, facts in by_count.items():
            last = count == counts[1]
            rows.append(
                row(
                    CASE,
                    f"{name} {count}",
                    facts["work_s"],
                    facts["work_cpu_s"],
                    growth if last else 1.0,
                    "peak RSS growth <= 1.2x at 10x data" if last else "",
                    growth <= 1.2 if last else None,
                    peak_rss_mib=round(facts["peak_rss_mib"], 1),
                )
            )
    return rows
