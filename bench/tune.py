"""The tune step: trials per hour with 2 worker processes against 1 on the same budget, and
memory across 20 trials.

python -m bench.tune                # 8 trials per side, then 20 trials for memory
python -m bench.tune --smoke        # 2 trials per side, 4 for memory
python -m bench.tune --trials 0 --memory-workers 2   # memory only, 2 trials at a time

Both sides run the same pipeline (the digits, ingested once and reused: only the tune step
runs) with tiny trials (a one-epoch CNN on 8x8 images: what a trial costs besides its fit, a
process with its own TensorFlow, weighs most) and the same trial budget; ``workers`` alone
differs. The rate is trials / the tune step's seconds (from its meta.json). Memory: while the
20-trial search runs, the search process's resident set and the whole process tree's are
sampled every 0.2 s with the number of finished trials, and each trial process reports its
own peak (``peak_rss_mib`` in trials.jsonl).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from .common import ROOT, tree_rss_mib

PIPELINE = """\
name: tunebench
steps:
  ingest:
    component: image_folder
    root: {root}
    transforms: [decode_image]
  tune:
    component: optuna_tuner
    target: train
    space:
      learning_rate: {{log_uniform: [1.0e-3, 3.0e-2]}}
      model.dropout: {{uniform: [0, 0.5]}}
    objective: {{metric: val_accuracy}}
    trials: {trials}
    workers: {workers}
    pruner: none
  train:
    component: keras_trainer
    params_from: tune
    examples: ingest
    input: {{component: image_input, image_size: [8, 8]}}
    model: {{component: cnn, filters: [8], dense_units: [16]}}
    epochs: 1
"""


def _rss_mib(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/status") as handle:
            for line in handle:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def _finished(runs: Path) -> int:
    for db in (runs / "tunebench" / ".scratch").glob("tune-*/study.db"):
        try:
            with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
                row = conn.execute(
                    "select count(*) from trials where state in ('COMPLETE', 'PRUNED', 'FAIL')"
                ).fetchone()
                return int(row[0])
        except sqlite3.Error:
            return -1
    return 0


def _search(folder: Path, trials: int, workers: int, sample: bool = False) -> dict[str, Any]:
    """Run the tune step (ingest reused after the first call) and measure it."""
    path = folder / f"tune-{workers}-{trials}.yaml"
    root = ROOT / "pipelines" / "data" / "digits"
    path.write_text(PIPELINE.format(root=root, trials=trials, workers=workers), encoding="utf-8")
    runs = folder / "runs"
    command = [sys.executable, "-m", "beamline", "run", str(path), "--runs-dir", str(runs)]
    command += ["--until", "tune", "--json"]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    began = time.perf_counter()
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    samples = []
    while process.poll() is None:
        if sample:
            samples.append(
                {
                    "t": round(time.perf_counter() - began, 2),
                    "finished": _finished(runs),
                    "search_mib": round(_rss_mib(process.pid), 1),
                    "tree_mib": round(tree_rss_mib(process.pid), 1),
                }
            )
        time.sleep(0.2)
    out = json.loads(process.stdout.read().decode())
    if process.returncode != 0:
        raise RuntimeError(f"the search failed: {out}")
    run = Path(out["run"])
    meta = json.loads((run / "tune" / "meta.json").read_text())
    records = [json.loads(x) for x in (run / "tune" / "trials.jsonl").read_text().splitlines()]
    return {
        "workers": workers,
        "trials": trials,
        "tune_s": meta["seconds"],
        "trials_per_hour": round(trials / meta["seconds"] * 3600, 1),
        "trial_peak_mib": [r.get("peak_rss_mib") for r in records],
        "samples": samples,
    }


def _memory_summary(result: dict[str, Any]) -> dict[str, Any]:
    """Search-process and tree memory after the first, the middle and the last trial."""
    by_count: dict[int, dict[str, float]] = {}
    for s in result["samples"]:
        if s["finished"] >= 1:
            slot = by_count.setdefault(s["finished"], {"search_mib": 0.0, "tree_mib": 0.0})
            slot["search_mib"] = max(slot["search_mib"], s["search_mib"])
            slot["tree_mib"] = max(slot["tree_mib"], s["tree_mib"])
    peaks = [p for p in result["trial_peak_mib"] if p]
    return {
        "search_mib_by_finished_trials": by_count,
        "trial_peak_mib_first_last": [peaks[0], peaks[-1]] if peaks else [],
        "trial_peak_mib_min_max": [min(peaks), max(peaks)] if peaks else [],
    }


def run(
    smoke: bool = False, trials: int = 8, memory_trials: int = 20, memory_workers: int = 1
) -> dict[str, Any]:
    """Both comparisons (``trials`` per side, 0: none; ``memory_trials`` with ``memory_workers``
    for memory, 0: none); the folder is temporary. Each part is also printed to stderr."""
    if smoke:
        trials, memory_trials = 2, 4
    folder = Path(tempfile.mkdtemp(prefix="tunebench-"))
    out: dict[str, Any] = {"cores": os.cpu_count(), "load_average": os.getloadavg()}
    try:
        _search(folder, 1, 1)  # the ingest step, reused by every search below
        if trials:
            one = _search(folder, trials, 1)
            print(json.dumps({"one_worker": one}), file=sys.stderr, flush=True)
            two = _search(folder, trials, 2)
            ratio = two["trials_per_hour"] / one["trials_per_hour"]
            out.update(
                one_worker={k: v for k, v in one.items() if k != "samples"},
                two_workers={k: v for k, v in two.items() if k != "samples"},
                ratio=round(ratio, 2),
                target_ratio=1.6,
                met=ratio >= 1.6,
            )
            print(json.dumps(out), file=sys.stderr, flush=True)
        if memory_trials:
            memory = _search(folder, memory_trials, memory_workers, sample=True)
            out["memory"] = {
                "trials": memory_trials,
                "workers": memory_workers,
                **_memory_summary(memory),
                "trial_peak_mib": memory["trial_peak_mib"],
            }
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    out["load_average_after"] = os.getloadavg()
    return out


def main() -> None:
    """Print the results as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny budgets (a quick check)")
    parser.add_argument("--trials", type=int, default=8, help="trials per side (default 8)")
    parser.add_argument("--memory-trials", type=int, default=20, help="trials for memory")
    parser.add_argument("--memory-workers", type=int, default=1, help="workers for memory")
    args = parser.parse_args()
    result = run(args.smoke, args.trials, args.memory_trials, args.memory_workers)
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
