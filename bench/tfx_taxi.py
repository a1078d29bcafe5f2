"""Case ``taxi``: TFX's own flagship job, the Chicago taxi pipeline, in both frameworks.

The job: TFX's taxi sample (15,002 rows, ``bench.taxi_data.taxi_table``: each row's split drawn
once, 2/3 train, 1/6 eval, 1/6 test, the same rows on both sides) -> ingest -> statistics,
schema, validation -> preprocessing (big-tipper label, z-scores, vocabularies with OOV buckets,
train-quantile buckets, hour/day/month one-hot) -> TFX's wide-and-deep model (a DNN 100-70-48-34
without activation beside the one-hot columns, one sigmoid unit) for 1,000 full batches of 40
-> accuracy on the test split. Ours:
``pipeline run bench/pipelines/taxi.yaml``; TFX 1.16: ``bench/tfx_job/run_tfx.py ... taxi``
(``taxi_module.py``: CsvExampleGen, StatisticsGen, SchemaGen, ExampleValidator, Transform,
Trainer, Evaluator on its LocalDagRunner with Beam's FnApiRunner) in its own environment
(``TFX_PYTHON``, see ``bench/tfx_compare.py`` for how to build it).

Each side runs as a subprocess from a cold start, once per seed (0 to 4), interleaved (the
order alternates per seed); wall time and peak memory are medians over the seeds, accuracy is
the mean and spread (population standard deviation) over them.
"""

from __future__ import annotations

import json
import math
import shutil
import statistics
import sys
from pathlib import Path
from typing import Any

from .common import CACHE, ROOT, measured, median, row
from .taxi_data import SAMPLE, split_rows, taxi_table
from .tfx_compare import TFX_PYTHON

CASE = "taxi"
PIPELINE = ROOT / "bench" / "pipelines" / "taxi.yaml"
TFX_JOB = ROOT / "bench" / "tfx_job" / "run_tfx.py"
EPOCHS = 4
BATCH = 40
SEEDS = (0, 1, 2, 3, 4)


def ours(
    data: Path, work: Path, seed: int, epochs: int = EPOCHS, runner: str = "direct"
) -> dict[str, Any]:
    """``pipeline run`` of the taxi benchmark pipeline in a fresh runs folder.

    Adds ``accuracy`` (test) and ``steps`` (seconds of each step, from its ``meta.json``)."""
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
        "--runner",
        runner,
        "--set",
        f"steps.ingest.path={data / 'all.csv'}",
        "--set",
        f"steps.validate.schema={work / 'schema.pbtxt'}",
        "--set",
        f"steps.train.seed={seed}",
        "--set",
        f"steps.train.epochs={epochs}",
    ]
    facts = measured(command, timeout=7200)
    runs = sorted((work / "runs" / "taxi_bench").glob("*/"))
    if runs:
        metrics = runs[-1] / "evaluate" / "metrics.json"
        facts["accuracy"] = json.loads(metrics.read_text())["accuracy"]
        facts["steps"] = {
            step: json.loads((runs[-1] / step / "meta.json").read_text())["seconds"]
            for step in ("ingest", "validate", "train", "evaluate")
        }
    return facts


def theirs(
    data: Path, work: Path, steps: int, seed: int, runner: str = "direct", timeout: float = 7200
) -> dict[str, Any]:
    """The TFX taxi job in its own environment, in a fresh pipeline root."""
    shutil.rmtree(work, ignore_errors=True)
    command = [str(TFX_PYTHON), str(TFX_JOB), str(data), str(work), str(steps), "taxi"]
    return measured([*command, str(seed), runner], timeout=timeout)


def train_steps(data: Path, epochs: int = EPOCHS) -> int:
    """The number of training steps both sides take: ``epochs`` passes over train, batch 40."""
    return epochs * math.ceil(split_rows(data, "train") / BATCH)


def spread(values: list[float]) -> tuple[float, float]:
    """Mean and population standard deviation."""
    return statistics.fmean(values), statistics.pstdev(values) if len(values) > 1 else 0.0


def _check() -> list[dict[str, Any]]:
    """Smoke mode: the pipeline file loads and the TFX job files exist."""
    import time

    import beamline

    started = time.perf_counter()
    spec, _ = beamline.load(PIPELINE, [f"steps.ingest.path={SAMPLE}"])
    for name in ("taxi_module.py", "run_tfx.py"):
        if not (ROOT / "bench" / "tfx_job" / name).is_file():
            raise FileNotFoundError(f"bench/tfx_job/{name}")
    wall = time.perf_counter() - started
    return [row(CASE, f"smoke: {spec.name} loads ({len(spec.steps)} steps)", wall, wall, None)]


def run(smoke: bool = False) -> list[dict[str, Any]]:
    """Wall time, peak memory and test accuracy of both sides over five seeds, interleaved."""
    if smoke:
        return _check()
    data = taxi_table()
    steps = train_steps(data)
    work = CACHE / "work" / "taxi"
    have_tfx = TFX_PYTHON.exists()
    samples: dict[str, list[dict[str, Any]]] = {"ours": [], "tfx": []}
    for i, seed in enumerate(SEEDS):
        order = ["ours", "tfx"] if i % 2 == 0 else ["tfx", "ours"]
        for name in order:
            if name == "ours":
                samples["ours"].append(ours(data, work / "ours", seed))
            elif have_tfx:
                samples["tfx"].append(theirs(data, work / "tfx", steps, seed))
    return summarise(samples, steps, split_rows(data, "test"))


def summarise(
    samples: dict[str, list[dict[str, Any]]], steps: int, test_rows: int
) -> list[dict[str, Any]]:
    """The table rows of both sides: medians of wall and peak, accuracy mean +- spread."""
    out = []
    summary = {}
    for name, values in samples.items():
        if not values:
            continue
        accuracies = [v["accuracy"] for v in values if v.get("accuracy") is not None]
        mean, sd = spread(accuracies) if accuracies else (None, None)
        summary[name] = {
            "wall": median(v["total_wall_s"] for v in values),
            "cpu": median(v["total_cpu_s"] for v in values),
            "peak": median(v["peak_rss_mib"] for v in values),
            "accuracy": mean,
            "accuracy_sd": sd,
            "accuracies": accuracies,
            "steps": values[0].get("steps"),
        }
    variant = f"{steps} steps, {test_rows} test rows, seeds {len(SEEDS)}"
    s = summary["ours"]
    if "tfx" not in summary:
        return [row(CASE, f"ours {variant}", s["wall"], s["cpu"], None,
                    "TFX not run: no TFX environment", None, peak_rss_mib=s["peak"],
                    accuracy=s["accuracy"], accuracy_sd=s["accuracy_sd"])]  # fmt: skip
    t = summary["tfx"]
    out.append(row(CASE, f"tfx {variant}", t["wall"], t["cpu"], 1.0, peak_rss_mib=t["peak"],
                   accuracy=t["accuracy"], accuracy_sd=t["accuracy_sd"],
                   accuracies=t["accuracies"], step_seconds=t["steps"]))  # fmt: skip
    ratio = s["wall"] / t["wall"]
    wall_met, peak_met = ratio <= 0.25, s["peak"] <= t["peak"]
    accuracy_met = s["accuracy"] >= t["accuracy"]
    out.append(
        row(
            CASE,
            f"ours {variant}",
            s["wall"],
            s["cpu"],
            ratio,
            "<= 0.25x TFX wall, <= TFX peak RSS, accuracy >= TFX",
            wall_met and peak_met and accuracy_met,
            peak_rss_mib=s["peak"],
            accuracy=s["accuracy"],
            accuracy_sd=s["accuracy_sd"],
            accuracies=s["accuracies"],
            step_seconds=s["steps"],
            wall_met=wall_met,
            peak_met=peak_met,
            accuracy_met=accuracy_met,
        )
    )
    return out
