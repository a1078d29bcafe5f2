"""Case ``taxi_scale``: the taxi job at 100,000 and 1,000,000 rows, one epoch, both frameworks.

The tables are TFX's sample tiled with a seeded perturbation (``bench.taxi_data``). Ours runs
each step as its own process (``pipeline run --until ingest``, then ``--only validate``,
``--only train``, ``--only evaluate`` on the same runs folder), so every step has its own wall
time and peak resident memory (process start and imports included); the target is a peak
growth of at most 1.2x from 100,000 to 1,000,000 rows in every step (nothing holds the data
set). TFX runs as one process (``run_tfx.py`` measures wall, CPU and peak RSS per component),
with a 30-minute limit at 1,000,000 rows: a run stopped there keeps how far it got. Rows per
second: rows read by ingest and validation, train rows by training (one epoch), test rows by
evaluation; end to end: all rows over the summed step seconds.

Measurements are kept in ``bench/.cache/taxi_scale/<side>-<runner>-<rows>.json`` so that each
size can be measured on its own (``python -m bench.taxi_scale --rows 100000 --side ours``);
the case reads what is there and measures what is missing.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path
from typing import Any

from .common import CACHE, ROOT, measured, row, tree_rss_mib
from .taxi_data import SAMPLE, split_rows, taxi_table
from .tfx_compare import TFX_PYTHON
from .tfx_taxi import PIPELINE, TFX_JOB, train_steps

CASE = "taxi_scale"
SIZES = (100_000, 1_000_000)
RUNNERS = ("direct", "local")
STEPS = ("ingest", "validate", "train", "evaluate")
RESULTS = CACHE / "taxi_scale"
TFX_LIMIT_S = 1800


def ours_by_step(data: Path, work: Path, runner: str) -> dict[str, Any]:
    """Each step of ours as its own process: ``{step: {wall, cpu, peak, seconds}}``."""
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    base = [sys.executable, "-m", "beamline", "--runs-dir", str(work / "runs"), "run"]
    settings = [
        "--runner",
        runner,
        "--set",
        f"steps.ingest.path={data / 'all.csv'}",
        "--set",
        f"steps.validate.schema={work / 'schema.pbtxt'}",
        "--set",
        "steps.train.epochs=1",
        "--set",  # one epoch: a cache of parsed rows would only hold the data set in memory
        "steps.train.input.cache=false",
    ]
    out: dict[str, Any] = {}
    for step in STEPS:
        which = ["--until", step] if step == "ingest" else ["--only", step]
        facts = measured([*base, str(PIPELINE), *settings, *which], timeout=7200)
        runs = sorted((work / "runs" / "taxi_bench").glob(f"*/{step}/meta.json"))
        seconds = json.loads(runs[-1].read_text())["seconds"] if runs else None
        out[step] = {
            "wall_s": facts["total_wall_s"],
            "cpu_s": facts["total_cpu_s"],
            "peak_rss_mib": facts["peak_rss_mib"],
            "seconds": seconds,
        }
        if step == "evaluate" and runs:
            metrics = runs[-1].parent / "metrics.json"
            out["accuracy"] = json.loads(metrics.read_text())["accuracy"]
    return out


def _same_cpu_priority(pid: int) -> None:
    """Give the new session of ``pid`` this process's autogroup priority.

    With the kernel's autogroups (``/proc/sys/kernel/sched_autogroup_enabled``) each session's
    processes share one CPU weight and nice values count only inside it; a child in its own
    session (so that a time limit can stop its whole process group) would otherwise start at
    the default weight whatever its parent runs at."""
    try:
        nice = Path("/proc/self/autogroup").read_text().split()[-1]
        Path(f"/proc/{pid}/autogroup").write_text(nice)
    except (OSError, IndexError):
        pass  # no autogroups here: nice values are global


def tfx_capped(data: Path, work: Path, steps: int, runner: str, limit: float) -> dict[str, Any]:
    """The TFX taxi job, stopped (its whole process group) after ``limit`` seconds.

    Returns wall, CPU and peak RSS of the whole run, ``finished``, and per component (from the
    job's ``progress.json``, written as it goes) wall, CPU and peak RSS, with the component
    that was running when the limit struck marked ``running``."""
    import os
    import resource
    import signal
    import subprocess
    import threading
    import time

    shutil.rmtree(work, ignore_errors=True)
    command = [str(TFX_PYTHON), str(TFX_JOB), str(data), str(work), str(steps), "taxi", "0",
               runner]  # fmt: skip
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, start_new_session=True,
                               env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})  # fmt: skip
    peak, done = [0.0], threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], tree_rss_mib(process.pid))
            done.wait(0.05)

    _same_cpu_priority(process.pid)
    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    finished = True
    try:
        out, err = process.communicate(timeout=limit)
    except subprocess.TimeoutExpired:
        finished = False
        os.killpg(process.pid, signal.SIGTERM)
        try:
            out, err = process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            out, err = process.communicate()
    finally:
        done.set()
        sampler.join()
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if finished and process.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed ({process.returncode}):\n{err[-4000:]}")
    facts: dict[str, Any] = {}
    for line in reversed(out.splitlines()):
        if line.startswith("{"):
            facts = json.loads(line)
            break
    progress = work / "progress.json"
    if not finished and progress.is_file():
        facts["components"] = json.loads(progress.read_text())["components"]
    facts.update(
        finished=finished,
        limit_s=limit,
        total_wall_s=wall,
        total_cpu_s=(after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime),
        peak_rss_mib=peak[0],
    )
    return facts


def measure(side: str, runner: str, rows: int, tag: str = "") -> dict[str, Any]:
    """Measure one side at one size on one runner and keep the result in ``RESULTS`` (a
    ``tag`` names another file and work folder: a run beside the benchmark, for memory)."""
    data = taxi_table(rows)
    work = CACHE / "work" / f"taxi-scale-{side}{tag}"
    if side == "ours":
        facts: dict[str, Any] = {"steps": ours_by_step(data, work, runner)}
    else:
        try:
            limit = TFX_LIMIT_S if rows >= SIZES[-1] else 7200  # the 30-minute limit is at 1M
            facts = tfx_capped(data, work, train_steps(data, 1), runner, limit)
        except Exception as exc:  # noqa: BLE001 - a timeout or a failure is a result here
            facts = {"failed": f"{type(exc).__name__}: {str(exc)[-300:]}"}
        shutil.rmtree(work, ignore_errors=True)
    facts["rows"] = {
        "all": rows,
        "train": split_rows(data, "train"),
        "test": split_rows(data, "test"),
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{side}-{runner}-{rows}{tag}.json").write_text(json.dumps(facts, indent=1))
    return facts


def _rows_per_step(rows: dict[str, int]) -> dict[str, int]:
    return {"ingest": rows["all"], "validate": rows["all"], "train": rows["train"],
            "evaluate": rows["test"]}  # fmt: skip


def _load(side: str, runner: str, rows: int) -> dict[str, Any] | None:
    path = RESULTS / f"{side}-{runner}-{rows}.json"
    return json.loads(path.read_text()) if path.is_file() else None


def table_rows(runners: tuple[str, ...] = RUNNERS) -> list[dict[str, Any]]:
    """The case's rows from the kept measurements (missing ones are left out)."""
    out = []
    small, large = SIZES
    for runner in runners:
        per_size = {n: _load("ours", runner, n) for n in SIZES}
        for n, facts in per_size.items():
            if not facts:
                continue
            counts = _rows_per_step(facts["rows"])
            total = 0.0
            for step in STEPS:
                s = facts["steps"][step]
                total += s["seconds"] or 0.0
                low = (per_size.get(small) or {}).get("steps", {}).get(step)
                growth = s["peak_rss_mib"] / low["peak_rss_mib"] if low and n == large else None
                out.append(row(CASE, f"ours {runner} {n} {step}", s["wall_s"], s["cpu_s"], growth,
                               "peak growth <= 1.2x from 100k to 1M" if growth else "",
                               None if growth is None else growth <= 1.2,
                               peak_rss_mib=round(s["peak_rss_mib"], 1), step_s=s["seconds"],
                               rows_per_s=round(counts[step] / s["seconds"]) if s["seconds"]
                               else None))  # fmt: skip
            facts["end_to_end_rows_per_s"] = n / total if total else None
        for n in SIZES:
            theirs_facts = _load("tfx", runner, n)
            if not theirs_facts:
                continue
            if "failed" in theirs_facts:
                out.append(row(CASE, f"tfx {runner} {n}: {theirs_facts['failed'][:120]}", 0, 0,
                               None))  # fmt: skip
                continue
            wall = theirs_facts["total_wall_s"]
            ours_facts = per_size.get(n) or {}
            ours_rate = ours_facts.get("end_to_end_rows_per_s")
            tfx_rate = n / wall
            ratio = ours_rate / tfx_rate if ours_rate else None
            target = ">= 5x TFX end-to-end rows/s" if n == large else ""
            # A run stopped at its limit: its rows/s is an upper bound (n rows in more than wall).
            done = "whole run" if theirs_facts.get("finished", True) else "stopped at the limit"
            out.append(row(CASE, f"tfx {runner} {n} ({done})", wall, theirs_facts["total_cpu_s"],
                           ratio, target, None if ratio is None or n != large else ratio >= 5,
                           peak_rss_mib=round(theirs_facts["peak_rss_mib"], 1),
                           rows_per_s=round(tfx_rate), ours_rows_per_s=ours_rate and
                           round(ours_rate), component_seconds=theirs_facts.get("steps"),
                           accuracy=theirs_facts.get("accuracy"),
                           ours_accuracy=ours_facts.get("accuracy")))  # fmt: skip
    return out


def run(smoke: bool = False) -> list[dict[str, Any]]:
    """Measure what is missing (ours on both runners, TFX on direct), then report all."""
    if smoke:
        import time

        started = time.perf_counter()
        import beamline

        spec, _ = beamline.load(PIPELINE, [f"steps.ingest.path={SAMPLE}"])
        wall = time.perf_counter() - started
        return [row(CASE, f"smoke: {spec.name} loads", wall, wall, None)]
    for runner in RUNNERS:
        for n in SIZES:
            if _load("ours", runner, n) is None:
                measure("ours", runner, n)
    if TFX_PYTHON.exists():
        for n in SIZES:
            if _load("tfx", "direct", n) is None:
                measure("tfx", "direct", n)
    return table_rows()


def main() -> None:
    """Measure one side, runner and size: ``python -m bench.taxi_scale --rows N --side S``."""
    parser = argparse.ArgumentParser(prog="python -m bench.taxi_scale")
    parser.add_argument("--rows", type=int, choices=SIZES, required=True)
    parser.add_argument("--side", choices=("ours", "tfx"), required=True)
    parser.add_argument("--runner", choices=RUNNERS, default="direct")
    parser.add_argument("--tag", default="", help="suffix of the result file and work folder")
    args = parser.parse_args()
    print(json.dumps(measure(args.side, args.runner, args.rows, args.tag), indent=1))


if __name__ == "__main__":
    main()
