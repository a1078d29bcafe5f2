"""Case: freshness, from a batch of messages published to a model trained on them answering.

Everything runs as a user would run the continuous-training walk-through, on one machine: a
local ``redis-server``, ``pipeline serve`` on the (still empty) model folder, and ``pipeline run
pipelines/digits_continuous.yaml`` (a cycle per 300 new examples, 5 s windows, 10 epochs,
warm start; published into the model folder; the accuracy gate lowered to 0.5, as this case
times the loop and does not judge the model). Once the loop reads the stream, batch 1 (600
shuffled shipped digits) is published; the clock stops when the server answers a predict
request with version 1. Batch 2 (600 other digits) then measures a warm cycle (the process has
TensorFlow loaded; the fit starts from the blessed model) up to version 2, when the candidate
wins (else the row says it was not blessed).

What the time holds: the window closing (5 s of event time + 1 s watermark delay), the cycle
(validate, train, evaluate, champion against the blessed model, export, publish), the server
noticing the version (``--poll-seconds 0.2``) and loading it. Not in smoke mode (it trains).
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from . import common

CACHE = common.CACHE / "freshness"
DIGITS = common.ROOT / "pipelines" / "data" / "digits"
CASE = "freshness"
NAME = "digits_continuous"
STREAM = "digits"
BATCH = 600


def _digit_files(seed: int = 0) -> list[Path]:
    files = sorted(DIGITS.rglob("*.png"))
    random.Random(seed).shuffle(files)
    return files


def _publish(url: str, files: list[Path]) -> float:
    """XADD one message per file (data + label); the time when the last one is in."""
    import redis

    client = redis.Redis.from_url(url)
    batch = client.pipeline(transaction=False)
    for path in files:
        batch.xadd(STREAM, {"data": path.read_bytes(), "label": path.parent.name})
    batch.execute()
    return time.perf_counter()


def _version_answering(base: str) -> int | None:
    """The version the server answers with (predict succeeds), or None."""
    import httpx

    try:
        status = httpx.get(f"{base}/v1/models/{NAME}", timeout=5).json()
        versions = [s for s in status["model_version_status"] if s["state"] == "AVAILABLE"]
        if not versions:
            return None
        png = sorted((DIGITS / "3").glob("*.png"))[0].read_bytes()
        import base64

        body = {"instances": [{"b64": base64.b64encode(png).decode()}]}
        answer = httpx.post(f"{base}/v1/models/{NAME}:predict", json=body, timeout=5)
        return int(versions[0]["version"]) if answer.status_code == 200 else None
    except (httpx.HTTPError, KeyError, ValueError):
        return None


def _wait(condition: Any, timeout: float, every: float = 0.05) -> Any:
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(every)
    return None


def _loop_cycles(runs: Path) -> list[dict[str, Any]]:
    state = runs / NAME / ".streams" / "ingest" / "loop.json"
    try:
        return json.loads(state.read_text(encoding="utf-8"))["cycles"]
    except (OSError, ValueError, KeyError):
        return []


def _cpu_seconds(pid: int) -> float:
    """User + system seconds of a process and of the children it waited for."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(f) for f in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def measure(timeout: float = 600) -> dict[str, Any]:
    """One walk-through: seconds from each batch published to its model answering."""
    import redis

    from beamline_plugins.broker.server import start_server

    from .serving import Server

    shutil.rmtree(CACHE, ignore_errors=True)
    runs, models = CACHE / "runs", CACHE / "models"
    broker = start_server(CACHE / "redis")
    server = loop = None
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    try:
        server = Server(models / NAME, "--poll-seconds", "0.2")
        base = f"http://{server.host}:{server.port}"
        command = [
            sys.executable, "-m", "beamline", "run", f"pipelines/{NAME}.yaml",
            "--runs-dir", str(runs),
            "--set", f"steps.ingest.url={broker.url}",
            "--set", f"steps.export.publish={models}",
            "--set", "continuous.max_cycles=2",
            "--set", "steps.evaluate.thresholds.accuracy=0.5",
        ]  # fmt: skip
        log = open(CACHE / "loop.log", "w")  # noqa: SIM115 - the loop's output, for debugging
        loop = subprocess.Popen(command, cwd=common.ROOT, stdout=log, stderr=log, env=env)
        client = redis.Redis.from_url(broker.url)

        def reading() -> bool:
            try:
                return any(g["consumers"] for g in client.xinfo_groups(STREAM))
            except redis.RedisError:
                return False

        if not _wait(reading, 180):
            raise RuntimeError(f"the loop never read the stream (see {CACHE / 'loop.log'})")
        files = _digit_files()
        result: dict[str, Any] = {}
        for batch, version in ((1, 1), (2, 2)):
            chunk = files[(batch - 1) * BATCH : batch * BATCH]
            published = _publish(broker.url, chunk)
            answered = _wait(
                lambda v=version, batch=batch: (
                    (_version_answering(base) or 0) >= v
                    or len(_loop_cycles(runs)) >= batch
                    and _loop_cycles(runs)[batch - 1].get("outcome") != "blessed"
                ),
                timeout,
            )
            cycles = _loop_cycles(runs)
            outcome = cycles[batch - 1].get("outcome") if len(cycles) >= batch else "no cycle"
            served = _version_answering(base) or 0
            result[f"batch{batch}"] = {
                "seconds": time.perf_counter() - published if answered else None,
                "outcome": outcome,
                "served_version": served,
                "examples": cycles[batch - 1].get("examples") if len(cycles) >= batch else None,
            }
            if served < version:
                break
        result["loop_cpu_s"] = _cpu_seconds(loop.pid)
        return result
    finally:
        if loop is not None:
            loop.terminate()
            try:
                loop.wait(timeout=30)
            except subprocess.TimeoutExpired:
                loop.kill()
        if server is not None:
            server.stop()
        broker.stop()


def run(smoke: bool = False) -> list[dict[str, Any]]:
    """Rows: seconds from publish to answer, cold first cycle and warm second cycle."""
    if smoke:
        return []  # trains two models for a minute: not a smoke-sized case
    result = measure()
    rows = []
    labels = {"batch1": "first cycle (cold)", "batch2": "second cycle (warm start)"}
    for key, label in labels.items():
        facts = result.get(key)
        if facts is None:
            continue
        seconds = facts["seconds"]
        rows.append(
            common.row(
                CASE,
                f"publish {BATCH} messages -> {label} answering "
                f"({facts['outcome']}, version {facts['served_version']})",
                seconds if seconds is not None else float("nan"),
                result["loop_cpu_s"],
                None,
                examples=facts["examples"],
            )
        )
    return rows


def main() -> None:
    """Print one walk-through's result as JSON."""
    print(json.dumps(measure()), flush=True)


if __name__ == "__main__":
    main()
