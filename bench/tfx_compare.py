"""Case 5: the same tabular job end to end in this framework and in TFX 1.16.

The job: a CSV of digits (64 pixel columns + label, ``bench.common.digits_table``, split once
8:1:1 so that both sides train, tune and test on the same rows) -> ingest
-> statistics, schema, validation -> preprocessing (pixels / 16) -> an MLP (128 ReLU units,
Adam 0.002, batch 32) trained for the same number of steps -> accuracy on a held-out test
split. Ours: ``pipeline run bench/pipelines/digits_table.yaml``; TFX: ``bench/tfx_job`` on
its LocalDagRunner with Beam's FnApiRunner, in its own virtual environment (``TFX_PYTHON``,
default ``bench/.cache/tfx-venv``; build it with
``.venv/bin/uv venv -p 3.11 bench/.cache/tfx-venv`` and
``VIRTUAL_ENV=bench/.cache/tfx-venv .venv/bin/uv pip install --compile-bytecode tfx==1.16.0 dill
pip``; both environments hold compiled bytecode, as pip leaves them).

Both run as a subprocess from a cold start (imports included: that is what a user waits
for); peak memory is the resident set of the whole process tree. Without the TFX environment
(or in smoke mode) only our side runs.
"""

from __future__ import annotations

import math
import os
import shutil
import sys
from pathlib import Path
from typing import Any

from .common import (
    CACHE,
    ROOT,
    digits_table,
    digits_table_rows,
    interleaved,
    measured,
    median,
    row,
)

CASE = "tfx"
PIPELINE = ROOT / "bench" / "pipelines" / "digits_table.yaml"
TFX_PYTHON = Path(os.environ.get("TFX_PYTHON", CACHE / "tfx-venv" / "bin" / "python"))
EPOCHS = 5
BATCH = 32


def ours(data: Path, work: Path) -> dict[str, Any]:
    """``pipeline run`` of the digits-table pipeline in a fresh runs folder; with accuracy."""
    import json

    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    command = [
        sys.executable,
        "-m",
        "beamline",
        "--runs-dir",
        str(work / "runs"),
        "run",
        str(PIPELINE),
        "--set",
        f"steps.ingest.path={data / 'all.csv'}",
        "--set",
        f"steps.validate.schema={work / 'schema.pbtxt'}",
    ]
    facts = measured(command)
    runs = sorted((work / "runs" / "digits_table").glob("*/evaluate/metrics.json"))
    facts["accuracy"] = json.loads(runs[-1].read_text())["accuracy"] if runs else None
    return facts


def theirs(data: Path, work: Path, steps: int) -> dict[str, Any]:
    """The TFX pipeline in its own environment, in a fresh pipeline root."""
    shutil.rmtree(work, ignore_errors=True)
    script = ROOT / "bench" / "tfx_job" / "run_tfx.py"
    return measured([str(TFX_PYTHON), str(script), str(data), str(work), str(steps)])


def _check(data: Path) -> list[dict[str, Any]]:
    """Smoke mode: the pipeline file loads (plugins, parameters) and the TFX job files exist."""
    import time

    import beamline

    started = time.perf_counter()
    spec, _ = beamline.load(PIPELINE, [f"steps.ingest.path={data / 'all.csv'}"])
    for name in ("digits_module.py", "run_tfx.py"):
        if not (ROOT / "bench" / "tfx_job" / name).is_file():
            raise FileNotFoundError(f"bench/tfx_job/{name}")
    wall = time.perf_counter() - started
    return [row(CASE, f"smoke: {spec.name} loads ({len(spec.steps)} steps)", wall, wall, None)]


def run(smoke: bool = False) -> list[dict[str, Any]]:
    """Wall time, CPU, peak memory and test accuracy of both sides, interleaved."""
    if smoke:
        return _check(digits_table(300))
    rows_count, repeats = 10_000, 3
    data = digits_table(rows_count)
    steps = EPOCHS * math.ceil(digits_table_rows(data, "train") / BATCH)
    work = CACHE / "work" / "tfx"
    variants = {"ours": lambda: ours(data, work / "ours")}
    have_tfx = TFX_PYTHON.exists()
    if have_tfx:
        variants["tfx"] = lambda: theirs(data, work / "tfx", steps)
    samples = interleaved(variants, repeats)
    out = []
    summary = {}
    for name, values in samples.items():
        summary[name] = {
            "wall": median(v["total_wall_s"] for v in values),
            "cpu": median(v["total_cpu_s"] for v in values),
            "peak": median(v["peak_rss_mib"] for v in values),
            "accuracy": median(v["accuracy"] for v in values if v.get("accuracy") is not None)
            if any(v.get("accuracy") is not None for v in values)
            else None,
        }
    if not have_tfx:
        s = summary["ours"]
        return [row(CASE, f"ours {rows_count} rows", s["wall"], s["cpu"], None,
                    "TFX not run: no TFX environment", None,
                    peak_rss_mib=s["peak"], accuracy=s["accuracy"])]  # fmt: skip
    t, s = summary["tfx"], summary["ours"]
    out.append(row(CASE, f"tfx {rows_count} rows, {steps} steps", t["wall"], t["cpu"], 1.0,
                   peak_rss_mib=t["peak"], accuracy=t["accuracy"]))  # fmt: skip
    ratio = s["wall"] / t["wall"]
    met = (
        ratio <= 1 / 3
        and s["peak"] <= t["peak"]
        and s["accuracy"] is not None
        and t["accuracy"] is not None
        and s["accuracy"] >= t["accuracy"]
    )
    out.append(
        row(
            CASE,
            f"ours {rows_count} rows, {steps} steps",
            s["wall"],
            s["cpu"],
            ratio,
            "<= 1/3 TFX wall, <= TFX peak RSS, accuracy >= TFX",
            met,
            peak_rss_mib=s["peak"],
            accuracy=s["accuracy"],
            wall_met=ratio <= 1 / 3,
            peak_met=s["peak"] <= t["peak"],
            accuracy_met=None
            if s["accuracy"] is None or t["accuracy"] is None
            else s["accuracy"] >= t["accuracy"],
        )
    )
    return out
