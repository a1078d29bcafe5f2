"""Case ``taxi``: TFX's own flagship job, the Chicago taxi pipeline, in both frameworks.

The job: TFX's taxi sample (15,002 rows, ``bench.taxi_data.taxi_table``: each row's split drawn
once, 2/3 train, 1/6 eval, 1/6 test, the same rows on both sides) -> ingest -> statistics,
schema, validation -> preprocessing (big-tipper label, z-scores, vocabularies with OOV buckets,
train-quantile buckets, integer columns one-hot) -> a wide-and-deep model (a DNN 100-70-48-34
beside the one-hot columns) for 1,000 steps of batch 40 -> accuracy on the test split.

Three variants, what each framework's user runs and one like-for-like:

- ``tfx``: TFX 1.16 running ``bench/tfx_job/taxi_module.py``, our equivalent of TFX's example
  module as TFX ships it (its DNN without activation, one sigmoid unit, hour/day/month of the
  integer columns it lists), via ``bench/tfx_job/run_tfx.py ... taxi`` (CsvExampleGen,
  StatisticsGen, SchemaGen, ExampleValidator, Transform, Trainer, Evaluator on its
  LocalDagRunner with Beam's FnApiRunner) in its own environment (``TFX_PYTHON``, see
  ``bench/tfx_compare.py`` for how to build it);
- ``ours`` (the primary rows, the targets): the ready pipeline ``pipelines/taxi.yaml`` as we
  ship it, with only the benchmark's differences as ``--set`` overrides (``READY_OVERRIDES``:
  the table's ``split`` column, no deduplication, validation that reports, no slices) and
  ``--until evaluate`` (no export: TFX's job has no Pusher);
- ``ours, TFX's model``: ``bench/pipelines/taxi.yaml``, ours configured to TFX's model as its
  code trains it (the like-for-like check; ``bench/taxi_scale.py`` runs the same file).

Each runs as a subprocess from a cold start, once per seed (0 to 4), interleaved (the order
rotates per seed); wall time and peak memory are medians over the seeds, accuracy is the mean
and spread (population standard deviation) over them, with the paired difference per seed
against TFX. ``python -m bench.tfx_taxi --seeds 0 1 --samples FILE`` runs some seeds and adds
them to FILE (so that a measurement can be split over several holds of the bench lock);
``python -m bench.tfx_taxi --samples FILE --summary`` prints the rows of all seeds in FILE.
"""

from __future__ import annotations

import argparse
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
#: TFX's model as its code trains it (the like-for-like variant; also ``taxi_scale``'s job).
PIPELINE = ROOT / "bench" / "pipelines" / "taxi.yaml"
#: The ready pipeline, as users run it: the primary variant.
READY = ROOT / "pipelines" / "taxi.yaml"
#: The benchmark's only differences from the ready pipeline: the table's own split column
#: (TFX reads the same rows from train/, eval/, test/), every row kept (TFX deduplicates
#: nothing), a validation that reports without stopping (as TFX's ExampleValidator) and no
#: slices (its Evaluator computes the overall metric); no export (``--until evaluate``).
READY_OVERRIDES = (
    "steps.ingest.split={from_feature: split}",
    "steps.ingest.deduplicate=false",
    "steps.validate.fail_on=none",
    "steps.evaluate.slices=[]",
)
TFX_JOB = ROOT / "bench" / "tfx_job" / "run_tfx.py"
EPOCHS = 4
BATCH = 40
SEEDS = (0, 1, 2, 3, 4)
#: Variant name -> (pipeline file, its ``name:``, extra overrides, last step run).
OURS: dict[str, tuple[Path, str, tuple[str, ...], str]] = {
    "ours": (READY, "taxi", READY_OVERRIDES, "evaluate"),
    "ours_tfx_model": (PIPELINE, "taxi_bench", (), ""),
}
VARIANTS = ("ours", "tfx", "ours_tfx_model")
LABELS = {
    "tfx": "tfx (TFX's example module)",
    "ours": "ours (pipelines/taxi.yaml)",
    "ours_tfx_model": "ours, TFX's model (bench/pipelines/taxi.yaml)",
}


def ours(
    data: Path,
    work: Path,
    seed: int,
    epochs: int = EPOCHS,
    runner: str = "direct",
    variant: str = "ours_tfx_model",
) -> dict[str, Any]:
    """``pipeline run`` of one of our variants (``OURS``) in a fresh runs folder.

    Adds ``accuracy`` (test), ``eval_accuracy`` (the eval split after the last epoch, from the
    training history) and ``steps`` (seconds of each step, from its ``meta.json``)."""
    pipeline, name, overrides, until = OURS[variant]
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    command = [
        sys.executable, "-m", "beamline", "--runs-dir", str(work / "runs"), "run", str(pipeline),
        "--runner", runner,
    ]  # fmt: skip
    if until:
        command += ["--until", until]
    for assignment in (
        *overrides,
        f"steps.ingest.path={data / 'all.csv'}",
        f"steps.validate.schema={work / 'schema.pbtxt'}",
        f"steps.train.seed={seed}",
        f"steps.train.epochs={epochs}",
    ):
        command += ["--set", assignment]
    facts = measured(command, timeout=7200)
    runs = sorted((work / "runs" / name).glob("*/"))
    if runs:
        metrics = runs[-1] / "evaluate" / "metrics.json"
        facts["accuracy"] = json.loads(metrics.read_text())["accuracy"]
        history = json.loads((runs[-1] / "train" / "report" / "history.json").read_text())
        facts["eval_accuracy"] = history["epochs"][-1].get("val_accuracy")
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


def paired(ours_by_seed: dict[int, float], tfx_by_seed: dict[int, float]) -> dict[str, Any]:
    """Ours minus TFX on the seeds both ran: mean, sample sd, and a paired t-test's p-value."""
    seeds = sorted(set(ours_by_seed) & set(tfx_by_seed))
    differences = [ours_by_seed[s] - tfx_by_seed[s] for s in seeds]
    out: dict[str, Any] = {"seeds": seeds, "differences": differences}
    if len(differences) < 2:
        return out
    from scipy import stats

    sd = statistics.stdev(differences)
    out["mean"], out["sd"] = statistics.fmean(differences), sd
    out["p"] = None if sd == 0 else float(stats.ttest_1samp(differences, 0.0).pvalue)
    return out


def _check() -> list[dict[str, Any]]:
    """Smoke mode: both pipeline files load (the ready one with its overrides); TFX's exist."""
    import time

    import beamline

    started = time.perf_counter()
    spec, _ = beamline.load(PIPELINE, [f"steps.ingest.path={SAMPLE}"])
    ready, _ = beamline.load(READY, [*READY_OVERRIDES, f"steps.ingest.path={SAMPLE}"])
    for name in ("taxi_module.py", "run_tfx.py"):
        if not (ROOT / "bench" / "tfx_job" / name).is_file():
            raise FileNotFoundError(f"bench/tfx_job/{name}")
    wall = time.perf_counter() - started
    return [
        row(CASE, f"smoke: {spec.name} and {ready.name} load ({len(ready.steps)} steps)", wall,
            wall, None)
    ]  # fmt: skip


def measure(seeds: tuple[int, ...] = SEEDS) -> list[dict[str, Any]]:
    """Every variant once per seed, interleaved (the order rotates per seed); one sample each."""
    data = taxi_table()
    steps = train_steps(data)
    work = CACHE / "work" / "taxi"
    names = [n for n in VARIANTS if n != "tfx" or TFX_PYTHON.exists()]
    samples = []
    for seed in seeds:
        shift = seed % len(names)
        for name in names[shift:] + names[:shift]:
            if name == "tfx":
                facts = theirs(data, work / "tfx", steps, seed)
            else:
                facts = ours(data, work / name, seed, variant=name)
            samples.append({"variant": name, "seed": seed, **facts})
            print(f"# taxi {name} seed {seed}: {facts.get('total_wall_s', 0):.1f} s, "
                  f"accuracy {facts.get('accuracy')}", file=sys.stderr, flush=True)  # fmt: skip
    return samples


def run(smoke: bool = False) -> list[dict[str, Any]]:
    """Wall time, peak memory and test accuracy of every variant over five seeds, interleaved."""
    if smoke:
        return _check()
    data = taxi_table()
    return summarise(measure(), train_steps(data), split_rows(data, "test"))


def summarise(samples: list[dict[str, Any]], steps: int, test_rows: int) -> list[dict[str, Any]]:
    """The table rows: medians of wall and peak, accuracy mean +- spread, paired against TFX.

    The targets are the primary variant's (``ours``); the like-for-like variant reports its
    ratios and its paired accuracy difference with no target of its own."""
    by: dict[str, list[dict[str, Any]]] = {}
    for sample in samples:
        by.setdefault(sample["variant"], []).append(sample)
    summary = {}
    for name, values in by.items():
        accuracy = {v["seed"]: v["accuracy"] for v in values if v.get("accuracy") is not None}
        mean, sd = spread(list(accuracy.values())) if accuracy else (None, None)
        summary[name] = {
            "wall": median(v["total_wall_s"] for v in values),
            "cpu": median(v["total_cpu_s"] for v in values),
            "peak": median(v["peak_rss_mib"] for v in values),
            "accuracy": mean,
            "accuracy_sd": sd,
            "by_seed": accuracy,
            "eval": [v["eval_accuracy"] for v in values if v.get("eval_accuracy") is not None],
            "steps": values[0].get("steps"),
        }
    seeds = sorted({s["seed"] for s in samples})
    variant = f"{steps} steps, {test_rows} test rows, seeds {seeds[0]}-{seeds[-1]}"
    t = summary.get("tfx")
    out = []
    if t is not None:
        out.append(row(CASE, f"{LABELS['tfx']} {variant}", t["wall"], t["cpu"], 1.0,
                       peak_rss_mib=t["peak"], accuracy=t["accuracy"],
                       accuracy_sd=t["accuracy_sd"], accuracy_by_seed=t["by_seed"],
                       step_seconds=t["steps"]))  # fmt: skip
    for name in ("ours", "ours_tfx_model"):
        s = summary.get(name)
        if s is None:
            continue
        extra = {"peak_rss_mib": s["peak"], "accuracy": s["accuracy"],
                 "accuracy_sd": s["accuracy_sd"], "accuracy_by_seed": s["by_seed"],
                 "eval_accuracy": spread(s["eval"]) if s["eval"] else None,
                 "step_seconds": s["steps"]}  # fmt: skip
        label = f"{LABELS[name]} {variant}"
        if t is None:
            out.append(row(CASE, label, s["wall"], s["cpu"], None,
                           "TFX not run: no TFX environment", None, **extra))  # fmt: skip
            continue
        ratio = s["wall"] / t["wall"]
        extra["peak_ratio"] = s["peak"] / t["peak"]
        extra["accuracy_vs_tfx"] = paired(s["by_seed"], t["by_seed"])
        if name != "ours":
            out.append(row(CASE, label, s["wall"], s["cpu"], ratio, "like-for-like, no target",
                           None, **extra))  # fmt: skip
            continue
        wall_met, peak_met = ratio <= 0.25, s["peak"] <= t["peak"]
        accuracy_met = s["accuracy"] >= t["accuracy"]
        out.append(
            row(CASE, label, s["wall"], s["cpu"], ratio,
                "<= 0.25x TFX wall, <= TFX peak RSS, accuracy >= TFX",
                wall_met and peak_met and accuracy_met, wall_met=wall_met, peak_met=peak_met,
                accuracy_met=accuracy_met, **extra)
        )  # fmt: skip
    return out


def main() -> None:
    """Run some seeds into a samples file, or print the rows of the seeds a samples file holds."""
    parser = argparse.ArgumentParser(prog="python -m bench.tfx_taxi")
    parser.add_argument("--seeds", type=int, nargs="+", default=list(SEEDS))
    parser.add_argument("--samples", type=Path, default=CACHE / "work" / "taxi-samples.json")
    parser.add_argument("--summary", action="store_true", help="only summarise the samples")
    args = parser.parse_args()
    samples = json.loads(args.samples.read_text()) if args.samples.exists() else []
    if not args.summary:
        samples += measure(tuple(args.seeds))
        args.samples.parent.mkdir(parents=True, exist_ok=True)
        args.samples.write_text(json.dumps(samples, indent=1, default=str))
    data = taxi_table()
    print(json.dumps(summarise(samples, train_steps(data), split_rows(data, "test")), indent=1,
                     default=str))  # fmt: skip


if __name__ == "__main__":
    main()
