"""Continuous training: triggers, the durable window store, and a short loop end to end on a
real redis-server (a cycle on 120 mixed digits, a second one started by the drift alarm of a
window of only 3s, warm-started, the loop killed with SIGKILL during it and resumed)."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import redis
from broker_support import pending
from data_paths import DIGITS, PIPELINES, PROJECT_DIR

from beamline import api
from beamline.continuous import newest_parts, trigger_reason
from beamline.continuous_settings import ContinuousSettings
from beamline.window_store import Part, WindowStore
from beamline_plugins.broker.publish import messages_of, publish
from beamline_plugins.broker.server import start_server


def _part(window: str, count: int, drift: bool = False) -> Part:
    alarms = [{"category": "drift", "window": window}] if drift else []
    return Part(window, f"p{window}", "examples", count, (), {"alarms": alarms})


def test_a_cycle_starts_on_enough_new_examples_on_a_drift_alarm_or_after_its_period():
    settings = ContinuousSettings(every_examples=100, on_drift=True, every_seconds=30)
    assert trigger_reason(settings, [_part("w1", 60)], now=10, last_cycle=0) is None
    assert "100 new examples" in trigger_reason(settings, [_part("w1", 60), _part("w2", 40)], 10, 0)
    assert "drift alarm in w2" in trigger_reason(settings, [_part("w2", 5, drift=True)], 10, 0)
    assert "30s" in trigger_reason(settings, [_part("w1", 5)], now=31, last_cycle=0)
    assert trigger_reason(settings, [], now=99, last_cycle=0) is None  # nothing new: no cycle
    quiet = ContinuousSettings(every_examples=100, on_drift=False)
    assert trigger_reason(quiet, [_part("w2", 5, drift=True)], 10, 0) is None
    parts = [_part(w, 1) for w in ("w3", "w1", "w2", "w4")]
    assert [p.window for p in newest_parts(parts, 2)] == ["w3", "w4"]


def test_the_window_store_removes_uncommitted_files_and_never_commits_a_source_twice(tmp_path):
    store = WindowStore(tmp_path / "store")
    entries = [{"source": "s/1-0", "stage": "read", "reason": "bad"}]
    committed = store.write_rejected("window-a", entries)
    assert committed is not None and store.counts() == {"read": 1, "written": 0, "rejected": 1}
    assert store.write_rejected("window-a", entries) is None  # redelivered: already stored
    orphan = store.examples_path("window-a", "0123456789abcdef")  # a kill before its manifest
    orphan.parent.mkdir(parents=True)
    orphan.write_bytes(b"half")
    handle = store.lock()
    assert not orphan.exists() and store.stored_sources("window-a") == {"s/1-0"}
    with pytest.raises(Exception, match="another process"):
        WindowStore(tmp_path / "store").lock()
    handle.close()


def test_the_loop_imports_distutils_before_its_stream_thread_can_race_that_import():
    """setuptools' distutils shim imports a package tree holding Python's global import lock;
    the first ``import distutils`` (TensorFlow's) in a cycle while the stream thread imported
    Beam deadlocked a restarted loop. The loop settles that import before its second thread."""
    code = (
        "import sys; from beamline.continuous import settle_imports; "
        "before = 'distutils' in sys.modules; settle_imports(); "
        "print(before, 'distutils' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert out.stdout.split() == ["False", "True"], out.stdout + out.stderr


def _wait(condition, timeout: float, what: str, log: Path | None = None, process=None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.25)
    exited = "" if process is None else f" (the loop's exit code: {process.poll()})"
    tail = "" if log is None else "; its output ends:\n" + log.read_text(errors="replace")[-4000:]
    raise AssertionError(f"timed out waiting for {what}{exited}{tail}")


def _state(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {"cycles": [], "pending": None}


@pytest.mark.slow  # ~60 s: two loop processes, two small training cycles, a kill -9 between
def test_a_short_loop_blesses_swaps_and_resumes_after_kill_9(tmp_path):
    server = start_server(tmp_path / "redis")
    try:
        _short_loop(tmp_path, server)
    finally:
        server.stop()


def _short_loop(tmp_path: Path, server) -> None:
    runs, models = tmp_path / "runs", tmp_path / "models"
    settings = {
        "steps.ingest.url": server.url,
        "steps.ingest.window_seconds": 1,
        "steps.ingest.max_delay": 0.3,
        "steps.ingest.poll_interval": 0.3,
        "steps.train.epochs": 1,
        "steps.evaluate.thresholds": "{accuracy: 0.0}",
        "steps.export.publish": str(models),
        "continuous.every_examples": 100,
        "continuous.on_drift": "true",
        "continuous.windows": 2,
    }
    command = [sys.executable, "-m", "beamline", "run", str(PIPELINES / "digits_continuous.yaml")]
    command += ["--runs-dir", str(runs)]
    for key, value in settings.items():
        command += ["--set", f"{key}={value}"]
    state_file = runs / "digits_continuous" / ".streams" / "ingest" / "loop.json"
    client = redis.Redis.from_url(server.url)
    mixed, threes = (
        messages_of(DIGITS, extensions=[], label_column="", labels=labels, shuffle=True,
                    seed=1, limit=limit)[0]
        for labels, limit in (([], 120), (["3"], 60))
    )  # fmt: skip

    first = subprocess.Popen(
        [*command, "--set", "steps.ingest.idle_timeout=300"], cwd=PROJECT_DIR,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        publish(client, "digits", mixed)
        _wait(lambda: len(_state(state_file)["cycles"]) == 1, 150, "cycle 1")
        publish(client, "digits", threes)  # fewer than every_examples: only drift can trigger
        _wait(lambda: (_state(state_file)["pending"] or {}).get("cycle") == 2, 60, "cycle 2")
        time.sleep(random.Random(3).uniform(0.5, 4.0))  # somewhere inside cycle 2
        os.kill(first.pid, signal.SIGKILL)
    finally:
        first.kill()
        first.wait(timeout=30)
    assert len(_state(state_file)["cycles"]) == 1  # cycle 2 was still running

    again = subprocess.run(
        [*command, "--set", "steps.ingest.idle_timeout=3"], cwd=PROJECT_DIR,
        capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    assert "resuming pending cycle 2" in again.stdout + again.stderr

    state = _state(state_file)
    assert [c["cycle"] for c in state["cycles"]] == [1, 2] and state["pending"] is None
    one, two = state["cycles"]
    assert one["outcome"] == "blessed" and one["version"] == 1
    assert two["parent"]["cycle"] == 1  # lineage: the model it started from
    assert two["trigger"].startswith("drift alarm in") and two["drift_alarms"] >= 1
    assert two["outcome"] in ("blessed", "not blessed")
    assert isinstance(two["blessed_accuracy"], float)  # scored on the same held-out split
    run = api.open_run(f"digits_continuous/{two['run']}", runs)
    assert {"blessed", "evaluate_blessed", "champion"} <= set(run.steps())
    model = json.loads((run.path / "train" / "model.json").read_text())
    assert model["warm_start"]["loaded_layers"]  # warm-started from the blessed model
    lineage = json.loads((run.path / "ingest" / "lineage.json").read_text())
    assert lineage["windows"] == two["windows"]
    report = run.path / "champion" / "report"
    assert (report / "cycle_history.png").stat().st_size > 1000
    assert (report / "summary.html").read_text().count("<tr>") == 3  # header + two cycles
    # The model folder holds complete versions only, one per blessed cycle.
    versions = sorted(p.name for p in (models / "digits_continuous").iterdir())
    blessed = [c for c in state["cycles"] if c["outcome"] == "blessed"]
    assert versions == [str(c["version"]) for c in blessed]
    for version in versions:
        assert (models / "digits_continuous" / version / "saved_model.pb").is_file()
    # Every message was stored once and acknowledged.
    counts = WindowStore(state_file.parent).counts()
    assert counts["read"] == 180 and pending(client, "digits") == 0


def test_a_continuous_file_needs_a_stream_and_valid_settings_named_by_line(write_pipeline):
    from beamline import SpecError
    from beamline.continuous import run_loop

    batch = write_pipeline(
        "continuous: {every_examples: 10}\n"
        "steps:\n  ingest: {component: image_folder, root: data}\n",
    )
    (batch.parent / "data").mkdir()
    spec, plugins = api.load(batch)
    with pytest.raises(SpecError, match="exactly one stream step"):
        run_loop(spec, plugins, runs_dir=batch.parent / "runs")
    bad = write_pipeline(
        "steps:\n  ingest: {component: redis_stream, stream: s}\ncontinuous:\n  windows: 0\n",
        name="bad.yaml",
    )
    with pytest.raises(SpecError, match=r"bad.yaml:4.*windows"):
        api.load(bad)
    off = write_pipeline(
        "steps:\n  ingest: {component: redis_stream, stream: s}\ncontinuous: {on_drift: false}\n",
        name="off.yaml",
    )
    with pytest.raises(SpecError, match="set a trigger"):
        api.load(off)


KILLED_LOOP = """
name: killed_loop
runner: direct
continuous:
  every_examples: {every}
  on_drift: false
  windows: 100
  classes: ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"]
  split: {{train: 0.7, eval: 0.1, test: 0.2}}
steps:
  ingest:
    component: redis_stream
    url: {url}
    stream: digits
    window_seconds: 1
    max_delay: 0.3
    poll_interval: 0.3
    statistics: false
    transforms: [decode_image]
  train:
    component: keras_trainer
    examples: ingest
    model: {{component: cnn, filters: [4], dense_units: [8], dropout: 0.0}}
    epochs: 1
  evaluate:
    component: classification_evaluator
    model: train
    examples: ingest
    split: test
    thresholds: {{accuracy: 0.0}}
  export:
    component: saved_model_exporter
    model: train
    publish: models
"""


@pytest.mark.slow  # 247 s at load 17: eleven loop processes, ten killed with SIGKILL
def test_the_loop_killed_ten_times_at_random_moments_loses_and_repeats_nothing(
    tmp_path, write_pipeline
):
    server = start_server(tmp_path / "redis")
    try:
        _killed_loop(tmp_path, write_pipeline, server)
    finally:
        server.stop()


def _killed_loop(tmp_path: Path, write_pipeline, server) -> None:
    """The loop of a tiny continuous file (no validation step, a 4-filter CNN, one epoch) is
    killed ten times while digits arrive: each time at a random moment after its stream first
    polled, or, half the time while a cycle is pending, soon after one of the cycle's steps
    completed (so kills land in every step, the cycle moves on, and the next cycles run)."""
    every = 100
    path = write_pipeline(KILLED_LOOP.format(every=every, url=server.url))
    runs = tmp_path / "runs"
    command = [sys.executable, "-m", "beamline", "run", str(path), "--runs-dir", str(runs)]
    store = runs / "killed_loop" / ".streams" / "ingest"
    client = redis.Redis.from_url(server.url)
    digits = messages_of(DIGITS, extensions=[], label_column="", labels=[], shuffle=True,
                         seed=5, limit=2 * every + 20)[0]  # fmt: skip
    published: dict[str, bool] = {}  # entry id -> well-formed
    done = threading.Event()

    def publisher() -> None:  # a burst (cycle 1 soon), then a trickle while the kills go on
        for i, fields in enumerate(digits):
            if done.is_set():
                break
            published[client.xadd("digits", fields).decode()] = True
            if i % 23 == 7:  # a malformed message now and then: rejected, never lost
                published[client.xadd("digits", {"data": "x", "time": "soon"}).decode()] = False
            if i >= every + 10:
                time.sleep(0.15)

    thread = threading.Thread(target=publisher)
    thread.start()
    rng = random.Random(17)
    moments = []
    try:
        for kill in range(10):
            started = time.monotonic()
            log = tmp_path / f"loop-{kill}.log"  # shown when a wait times out
            with log.open("wb") as out:
                process = subprocess.Popen(
                    [*command, "--set", "steps.ingest.idle_timeout=300"], cwd=PROJECT_DIR,
                    stdout=out, stderr=subprocess.STDOUT,
                )  # fmt: skip
            try:
                _wait(
                    lambda t=started: _polled_since(client, t), 120, "the stream's first poll",
                    log=log, process=process,
                )  # fmt: skip
                cycle = (_state(store / "loop.json")["pending"] or {}).get("cycle")
                if cycle and rng.random() < 0.5:
                    step = _step_done_since(
                        runs / "killed_loop", time.time() - (time.monotonic() - started), 60
                    )
                    time.sleep(rng.uniform(0.0, 1.0))
                    moments.append(f"cycle {cycle} after {step}")
                else:
                    time.sleep(rng.uniform(0.0, 3.0))
                    moments.append(f"cycle {cycle}" if cycle else "stream")
                os.kill(process.pid, signal.SIGKILL)
            finally:  # also when a wait failed: no loop left running
                if process.poll() is None:
                    process.kill()
                process.wait(timeout=30)
    finally:
        done.set()
        thread.join()
    final = subprocess.run(
        [*command, "--set", "steps.ingest.idle_timeout=3"], cwd=PROJECT_DIR,
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert final.returncode == 0, final.stdout[-3000:] + final.stderr[-3000:]

    # Every published message is stored exactly once, as an example or as rejected, and acked.
    parts = WindowStore(store).parts()
    sources = [s for p in parts for s in p.sources]
    assert sorted(sources) == sorted(f"digits/{i}" for i in published)  # none lost or twice
    counts = WindowStore(store).counts()
    assert counts["written"] == sum(published.values()) > every
    assert counts["rejected"] == len(published) - counts["written"] > 0
    assert pending(client, "digits") == 0
    # Cycles: numbered once each, none pending; every window consumed by a cycle or too recent.
    state = _state(store / "loop.json")
    cycles = [c["cycle"] for c in state["cycles"]]
    assert cycles == list(range(1, len(cycles) + 1)) and cycles and state["pending"] is None
    assert len(state["consumed"]) == len(set(state["consumed"]))
    examples = [p for p in parts if p.kind == "examples"]
    assert set(state["consumed"]) <= {p.key for p in examples}
    assert sum(p.count for p in examples if p.key not in state["consumed"]) < every
    # No cycle trained twice: each completed (not reused) fit has its own fingerprint.
    fits = [json.loads(m.read_text()) for m in (runs / "killed_loop").glob("*/train/meta.json")]
    trained = [m["fingerprint"] for m in fits if "reused_from" not in m]
    assert (
        len(trained)
        == len(set(trained))
        == sum(1 for c in state["cycles"] if c["outcome"] in ("blessed", "not blessed"))
    )
    # Only whole models are visible: one complete version per blessed cycle, nothing else.
    blessed = [c["version"] for c in state["cycles"] if c["outcome"] == "blessed"]
    folder = tmp_path / "models" / "killed_loop"
    visible = sorted((p.name for p in folder.iterdir() if not p.name.startswith(".")), key=int)
    assert visible == [str(v) for v in blessed] and blessed == list(range(1, len(blessed) + 1))
    for version in visible:
        assert (folder / version / "saved_model.pb").is_file()
        assert (folder / version / "variables" / "variables.index").is_file()
        assert (folder / version / "published.json").is_file()
    print(f"killed: {moments}; cycles: {[(c['cycle'], c['outcome']) for c in state['cycles']]}")


def _step_done_since(runs: Path, since: float, timeout: float) -> str:
    """The first step of a cycle to run (not reused) to its end after ``since`` (epoch
    seconds): its name."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for meta in runs.glob("*/*/meta.json"):
            if meta.stat().st_mtime <= since:
                continue
            text = meta.read_text()
            if "reused_from" not in text and (
                meta.parent.name != "ingest" or "stream_windows" in text
            ):
                return meta.parent.name
        time.sleep(0.1)
    return "nothing (timed out)"


def _polled_since(client, started: float) -> bool:
    """Whether the loop's stream read the broker since ``started`` (its consumer's idle time,
    reset by every XREADGROUP, is shorter than the time since then)."""
    try:
        consumers = client.xinfo_consumers("digits", "beamline")
    except redis.ResponseError:  # no group yet
        return False
    since = (time.monotonic() - started) * 1000
    return any(c["name"] == b"ingest" and c["idle"] < since for c in consumers)
