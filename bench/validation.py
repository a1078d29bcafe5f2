"""Case 3: the ``tfdv`` step against TFDV called directly on the same TFRecords.

The examples are the ingest output of the photos (image bytes + label, three splits). Both
sides do the same TFDV work: statistics of every split (TFDV's in-memory path, or its Beam
``GenerateStatistics`` on the in-process runner), a schema inferred from train, validation of
every split, skew train vs eval and drift against the previous statistics. The step also
writes its report (tables, one SVG plot per feature) and the anomalies, and ``beamline.run``
around it loads the plugins, checks that the ingest step is current (a digest of the photo
folder) and reuses it by hard links, and writes run.json and report.html: that is its
overhead. Step time is the whole ``beamline.run`` after imports. On the Beam path the step
computes all splits in one sliced pass of TFDV's combiners; the direct side uses TFDV's public
``GenerateStatistics`` once per split, as its documentation shows.
"""

from __future__ import annotations

from typing import Any

from .common import CACHE, interleaved, median, photos, row, task

CASE = "validation"


def prepare(count: int, size: int) -> tuple[str, str]:
    """Ingest ``count`` photos once; return (work folder, examples artifact folder)."""
    out = str(CACHE / "work" / f"validation-{count}")
    facts = task("prepare_examples", root=str(photos(count)), out=out, size=size)
    return out, facts["examples"]


def run(smoke: bool = False) -> list[dict[str, Any]]:
    """Step vs direct TFDV, for the in-memory and the Beam statistics paths."""
    count, repeats, size = (100, 1, 32) if smoke else (10_000, 5, 64)
    out, examples = prepare(count, size)
    variants = {}
    for path in ("memory", "beam"):
        variants[f"tfdv step ({path})"] = lambda p=path: task("tfdv_step", out=out, path=p)
        variants[f"tfdv direct ({path})"] = lambda p=path: task(
            "tfdv_direct", examples=examples, out=out, path=p
        )
    # The step's report draws an SVG plot per feature; TFDV alone draws nothing.
    variants["tfdv step (memory, plots off)"] = lambda: task(
        "tfdv_step", out=out, path="memory", plots=False
    )
    for variant in variants.values():  # warm-up: previous statistics exist for drift
        variant()
    samples = interleaved(variants, repeats)
    rows = []
    for path in ("memory", "beam"):
        direct = samples[f"tfdv direct ({path})"]
        step = samples[f"tfdv step ({path})"]
        d_wall, d_cpu = median(s["work_s"] for s in direct), median(s["work_cpu_s"] for s in direct)
        s_wall, s_cpu = median(s["work_s"] for s in step), median(s["work_cpu_s"] for s in step)
        ratio = s_wall / d_wall
        rows.append(row(CASE, f"tfdv direct ({path}) {count}", d_wall, d_cpu, 1.0,
                        peak_rss_mib=median(s["peak_rss_mib"] for s in direct)))  # fmt: skip
        rows.append(
            row(
                CASE,
                f"tfdv step ({path}) {count}",
                s_wall,
                s_cpu,
                ratio,
                "<= 1.1x TFDV's time",
                ratio <= 1.1,
                peak_rss_mib=median(s["peak_rss_mib"] for s in step),
                step_only_s=round(median(s["step_s"] for s in step), 4),
            )
        )
    off = samples["tfdv step (memory, plots off)"]
    wall, cpu = median(s["work_s"] for s in off), median(s["work_cpu_s"] for s in off)
    direct = median(s["work_s"] for s in samples["tfdv direct (memory)"])
    rows.append(row(CASE, f"tfdv step (memory, plots off) {count}", wall, cpu, wall / direct,
                    "<= 1.1x TFDV's time", wall / direct <= 1.1,
                    peak_rss_mib=median(s["peak_rss_mib"] for s in off),
                    step_only_s=round(median(s["step_s"] for s in off), 4)))  # fmt: skip
    return rows
