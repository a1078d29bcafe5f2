"""Case: start-up time of the CLI against a bare interpreter, wall and CPU seconds."""

from __future__ import annotations

import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _time(command: list[str]) -> tuple[float, float]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(
        command,
        cwd=ROOT,
        check=True,
        capture_output=True,
        env={**os.environ, "PIPELINE_PLUGINS": ""},
    )
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def run(smoke: bool = False) -> list[dict]:
    """Median wall and CPU seconds of each command, interleaved so noise hits all alike."""
    repeats = 2 if smoke else 15
    commands = {
        "python -c pass": [sys.executable, "-c", "pass"],
        "pipeline --help": [sys.executable, "-m", "beamline", "--help"],
        "pipeline plugins": [sys.executable, "-m", "beamline", "plugins"],
    }
    samples: dict[str, list[tuple[float, float]]] = {name: [] for name in commands}
    for _ in range(repeats):
        for name, command in commands.items():
            samples[name].append(_time(command))
    base = statistics.median(w for w, _ in samples["python -c pass"])
    rows = []
    for name, values in samples.items():
        wall = statistics.median(w for w, _ in values)
        rows.append(
            {
                "case": "cli_start",
                "variant": name,
                "wall_s": round(wall, 4),
                "cpu_s": round(statistics.median(c for _, c in values), 4),
                "ratio": round(wall / base, 2),  # to a bare interpreter
                "target": "< 0.5 s" if name != "python -c pass" else "",
                "met": wall < 0.5 if name != "python -c pass" else None,
            }
        )
    return rows
