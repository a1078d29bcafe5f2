"""Streaming ingest: TestStream replays with event-time windows, and a live folder watch."""

from __future__ import annotations

import json
import shutil
import textwrap
import threading
import time
from pathlib import Path

import pytest
from data_paths import DIGITS

from beamline import GateFailed, SpecError, api
from beamline.examples import feature_spec, iter_examples, rejected_records
from beamline_plugins.streaming.watch import FolderWatch, StopRule, watch_polls
from beamline_plugins.streaming.windows import window_name

# Event time 0 of the scripts: 2024-01-01T00:00:00Z; windows of 10 s.
W0 = "window-20240101T000000Z-20240101T000010Z"
W1 = "window-20240101T000010Z-20240101T000020Z"
W2 = "window-20240101T000020Z-20240101T000030Z"


def _digits(label: str, count: int, skip: int = 0) -> list[Path]:
    return sorted((DIGITS / label).glob("*.png"))[skip : skip + count]


@pytest.fixture
def inbox(tmp_path):
    """A folder of class sub-folders: 0/ and 1/ (digits), x/ (a label the schema never saw)
    and a text file named like a PNG."""
    root = tmp_path / "inbox"
    for label in ("0", "1"):
        (root / label).mkdir(parents=True)
        for path in _digits(label, 4):
            shutil.copy(path, root / label / path.name)
    (root / "x").mkdir()
    for path in _digits("7", 2):
        shutil.copy(path, root / "x" / path.name)
    (root / "1" / "broken.png").write_text("not an image")
    return root


def _replay(write_pipeline, tmp_path, events, **params) -> object:
    extra = "".join(f"    {k}: {json.dumps(v)}\n" for k, v in params.items())
    text = textwrap.dedent(
        f"""
        name: replay
        steps:
          ingest:
            component: replay_stream
            root: inbox
            window_seconds: 10
            transforms: [decode_image, {{component: resize_image, size: 8}}]
            events: {json.dumps(events)}
        """
    )
    path = write_pipeline(text.lstrip() + extra)
    return api.run(path, runs_dir=tmp_path / "runs")


def _labels(artifact_path: Path, window: str) -> list[str]:
    return sorted(e["label"][0].decode() for e in iter_examples(artifact_path, window))


EVENTS = [
    {"at": 1, "files": ["0/0000.png", "0/0010.png", "1/0001.png"]},
    {"at": 4, "files": ["1/0011.png", "1/broken.png", "0/0000.png"]},
    {"watermark": 10},
    {"at": 12, "files": ["0/0020.png", "1/0021.png"]},
    {"watermark": 20},
    {"at": 25, "files": ["x/0007.png", "0/0030.png"]},
]


@pytest.mark.slow  # the first TFDV/TensorFlow import of a session takes most of it
def test_replay_writes_one_folder_of_shards_per_event_time_window(write_pipeline, tmp_path, inbox):
    result = _replay(write_pipeline, tmp_path, EVENTS)
    record = result.records[0]
    art = result.run.artifact("ingest").path

    # read = written + rejected over all windows (the core checks it too).
    assert record.counts == {"read": 10, "written": 8, "rejected": 2}
    assert sorted(p.name for p in (art / "examples").iterdir()) == [W0, W1, W2]
    assert [p.name for p in (art / "examples" / W0).iterdir()] == [
        "part-00000-of-00001.tfrecord.gz"
    ]
    assert _labels(art, W0) == ["0", "0", "1", "1"]
    assert _labels(art, W1) == ["0", "1"]
    assert _labels(art, W2) == ["0", "x"]
    spec = feature_spec(art)
    assert spec["splits"] == {W0: 4, W1: 2, W2: 2}
    assert spec["label"] == "label" and spec["classes"] == ["0", "1", "x"]
    assert spec["features"]["image"]["height"] == 8
    reasons = {Path(r["source"]).name: r["stage"] for r in rejected_records(art)}
    assert reasons == {"broken.png": "decode_image", "0000.png": "deduplicate"}
    assert sorted(p.name for p in (art / "rejected").iterdir()) == [f"{W0}.jsonl"]

    # Windowed statistics, one TFDV proto per window.
    from beamline_plugins.tfdv_tools.stats import load_statistics, num_examples

    assert {
        p.stem: num_examples(load_statistics(p)) for p in (art / "statistics").glob("*.pb")
    } == {W0: 4, W1: 2, W2: 2}

    # The schema is inferred from the first window: label "x" in the last one is an alarm.
    alarms = [json.loads(line) for line in (art / "alarms.jsonl").read_text().splitlines()]
    assert [(a["window"], a["feature"]) for a in alarms] == [(W2, "label")]
    assert alarms[0]["category"] == "schema" and '"x"' in alarms[0]["reason"]
    assert "first window" in json.loads((art / "windows.json").read_text())["schema"]
    assert record.metrics == {"windows": 3.0, "alarms": 1.0}


CURATED = """
string_domain { name: "label" value: "0" value: "1" value: "x" }
feature {
  name: "label" type: BYTES domain: "label"
  presence { min_fraction: 1.0 min_count: 1 } value_count { min: 1 max: 1 }
}
feature { name: "image" type: BYTES image_domain {} presence { min_fraction: 1.0 min_count: 1 } }
"""


def test_curated_schema_alarms_on_a_missing_feature_and_fail_on_alarm_gates(
    write_pipeline, tmp_path, inbox
):
    (tmp_path / "curated.pbtxt").write_text(CURATED)
    shutil.copy(_digits("5", 1)[0], inbox / "loose.png")  # no class folder: no label
    events = [{"at": 3, "files": ["x/0007.png", "0/0010.png"]}, {"at": 15, "files": ["loose.png"]}]

    result = _replay(write_pipeline, tmp_path, events, schema="curated.pbtxt")
    art = result.run.artifact("ingest").path
    alarms = [json.loads(line) for line in (art / "alarms.jsonl").read_text().splitlines()]
    assert {(a["window"], a["feature"]) for a in alarms} == {(W1, "label")}
    assert result.records[0].counts == {"read": 3, "written": 3, "rejected": 0}
    assert (art / "schema.pbtxt").read_text().count('value: "x"') == 1

    with pytest.raises(GateFailed, match="label"):
        _replay(write_pipeline, tmp_path, events, schema="curated.pbtxt", fail_on_alarm=True)


def test_a_watch_without_a_stop_condition_is_refused(write_pipeline, tmp_path):
    path = write_pipeline(
        """
        steps:
          ingest: {component: watch_folder, root: inbox, max_duration: 0}
        """
    )
    with pytest.raises(SpecError, match="must end"):
        api.run(path, runs_dir=tmp_path / "runs")


def test_folder_watch_takes_each_settled_file_once_and_stops_when_idle(tmp_path):
    now = [time.time() + 1]
    watch = FolderWatch(
        tmp_path,
        extensions=[".png"],
        stop=StopRule(idle_timeout=5),
        settle_seconds=0,
        clock=lambda: now[0],
    )
    (tmp_path / "a.png").write_bytes(b"1")
    (tmp_path / ".b.png").write_bytes(b"hidden")
    (tmp_path / "c.png.part").write_bytes(b"partial")
    polls = watch_polls(watch, 1.0, sleep=lambda s: now.__setitem__(0, now[0] + s))
    assert next(polls)[0] == [str(tmp_path / "a.png")]
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "e.PNG").write_bytes(b"2")
    assert next(polls)[0] == [str(tmp_path / "d" / "e.PNG")]
    assert [files for files, _ in polls] == [[]] * 5  # idle for 5 s, then it ends
    assert watch.stop_reason == "no new file for idle_timeout=5s"


def test_window_names_sort_in_time_order():
    assert window_name(1704067200, 1704067210) == W0
    assert window_name(1704067200.5, 1704067201) == ("window-20240101T000000.500Z-20240101T000001Z")


@pytest.mark.slow
def test_watch_folder_ingests_files_copied_while_it_runs(write_pipeline, tmp_path):
    path = write_pipeline(
        """
        name: live
        steps:
          ingest:
            component: watch_folder
            root: inbox
            extensions: [.png]
            poll_interval: 0.3
            settle_seconds: 0.2
            window_seconds: 2
            idle_timeout: 4
            max_duration: 60
            transforms: [decode_image]
        """
    )
    outcome: dict[str, object] = {}

    def run() -> None:
        try:
            outcome["result"] = api.run(path, runs_dir=tmp_path / "runs")
        except BaseException as exc:  # reported by the assertions below
            outcome["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    started = time.monotonic()
    thread.start()
    inbox = tmp_path / "inbox"
    deadline = time.monotonic() + 60
    while not inbox.is_dir() and time.monotonic() < deadline:  # the step creates it
        time.sleep(0.1)
    copied = []
    for batch, label in enumerate(["3", "4", "3"]):
        time.sleep(1.5)
        (inbox / label).mkdir(exist_ok=True)
        for source in _digits(label, 3, skip=3 * batch):
            tmp = inbox / label / f".{source.name}.tmp"
            shutil.copy(source, tmp)
            tmp.rename(inbox / label / source.name)  # atomic arrival
            copied.append(source.name)
    thread.join(timeout=90)
    assert not thread.is_alive(), "the watch did not stop"
    assert "error" not in outcome, outcome.get("error")
    result = outcome["result"]
    record = result.records[0]
    art = result.run.artifact("ingest").path
    assert record.counts == {"read": 9, "written": 9, "rejected": 0}
    spec = feature_spec(art)
    assert sum(spec["splits"].values()) == 9
    assert len(spec["splits"]) >= 2  # batches 1.5 s apart fall into different 2 s windows
    labels = sorted(lbl for w in spec["splits"] for lbl in _labels(art, w))
    assert labels == ["3"] * 6 + ["4"] * 3
    assert time.monotonic() - started >= 4.5 + 4  # ran through the copies, then idled out


def test_a_stream_given_a_split_is_refused_when_the_file_loads_with_the_reason(
    write_pipeline, tmp_path
):
    (tmp_path / "inbox").mkdir()
    path = write_pipeline(
        """
        steps:
          ingest:
            component: replay_stream
            root: inbox
            events: []
            split: {train: 0.8, eval: 0.1, test: 0.1}
        """
    )
    with pytest.raises(SpecError, match=r"split.*each event-time window is written as its own"):
        api.load(path)
    assert not (tmp_path / "runs").exists()


def _memory_stream(write_pipeline, tmp_path, messages, **params):
    acks = tmp_path / "acks.jsonl"
    step = {"component": "memory_stream", "window_seconds": 10, "acks": str(acks)}
    step.update(messages=messages, **params)
    path = write_pipeline("plugins: [stream_plugin]\nsteps:\n  ingest: " + json.dumps(step) + "\n")
    result = api.run(path, runs_dir=tmp_path / "runs")
    lines = acks.read_text().splitlines() if acks.exists() else []
    return result, [json.loads(line) for line in lines]


def test_a_broker_like_stream_is_written_per_window_and_acknowledged_after_storing(
    write_pipeline, tmp_path
):
    messages = [
        {"at": 1, "offset": 0, "x": 1.5, "label": "a"},
        {"at": 2, "offset": 1, "x": 2.5, "label": "b"},
        {"at": 3, "offset": 2, "x": 1.5, "label": "a"},  # a duplicate of offset 0's content
        {"at": 14, "offset": 3, "x": 0.5, "label": "b"},
        {"at": 15, "offset": 4, "x": 4.0, "label": "a"},
    ]
    result, acks = _memory_stream(write_pipeline, tmp_path, messages, reject_odd=True)
    art = result.run.artifact("ingest").path

    assert result.records[0].counts == {"read": 5, "written": 2, "rejected": 3}
    assert feature_spec(art)["splits"] == {W0: 1, W1: 1}
    assert not (art / "statistics").exists()  # a stream without window checks
    reasons = sorted((r["source"], r["reason"]) for r in rejected_records(art))
    assert reasons == [
        ("topic/0/1", "odd offset"),
        ("topic/0/2", "duplicate of topic/0/0 in the same window"),
        ("topic/0/3", "odd offset"),
    ]
    acknowledged = sorted(s for a in acks for s in a["sources"])
    assert acknowledged == [f"topic/0/{i}" for i in range(5)]  # every message, once
    for ack in acks:  # each acknowledgement came after the files it covers were in place
        assert ack["stored"]["examples"] or ack["stored"]["rejected"]


@pytest.mark.slow  # TFDV statistics and drift of two windows
def test_the_ready_stream_alarms_when_a_window_of_3s_follows_a_window_of_5s(
    write_pipeline, tmp_path
):
    import yaml

    ready = yaml.safe_load((DIGITS.parent.parent / "digits_stream.yaml").read_text())
    drift = ready["steps"]["ingest"]["drift"]  # the shipped default, not one set for the test
    root = tmp_path / "inbox"
    for label in ("3", "5"):
        (root / label).mkdir(parents=True)
        for path in _digits(label, 6):
            shutil.copy(path, root / label / path.name)
    events = [
        {"at": 1, "files": [f"3/{p.name}" for p in _digits("3", 6)]},
        {"watermark": 10},
        {"at": 12, "files": [f"5/{p.name}" for p in _digits("5", 6)]},
    ]
    result = _replay(write_pipeline, tmp_path, events, drift=drift)
    art = result.run.artifact("ingest").path
    alarms = [json.loads(line) for line in (art / "alarms.jsonl").read_text().splitlines()]
    drifted = [a for a in alarms if a["category"] == "drift"]
    assert [(a["window"], a["feature"]) for a in drifted] == [(W1, "label")]
    assert "is 1 (" in drifted[0]["reason"]  # L-infinity 1.0: no class in common
    assert f"threshold {drift['label']}" in drifted[0]["reason"]


@pytest.mark.slow  # 75 s at load 19: three watch processes killed with SIGKILL, then one more
def test_a_durable_watch_killed_three_times_stores_each_file_exactly_once(write_pipeline, tmp_path):
    import os
    import random
    import signal
    import subprocess
    import sys

    from data_paths import PROJECT_DIR

    from beamline.window_store import WindowStore

    path = write_pipeline(
        """
        name: durable
        steps:
          ingest:
            component: watch_folder
            root: inbox
            extensions: [.png]
            durable: true
            poll_interval: 0.2
            settle_seconds: 0.1
            window_seconds: 1
            max_duration: 120
            statistics: false
            transforms: [decode_image]
        """
    )
    inbox = tmp_path / "inbox"
    sources = [p for label in ("1", "2", "7") for p in _digits(label, 12)]
    arrived: list[str] = []
    (inbox / "x").mkdir(parents=True)
    (inbox / "x" / "broken.png").write_bytes(b"not an image")  # rejected, once
    arrived.append(str(inbox / "x" / "broken.png"))

    def copy_some(count: int) -> None:
        for source in sources[len(arrived) - 1 :][:count]:
            (inbox / source.parent.name).mkdir(exist_ok=True)
            tmp = inbox / source.parent.name / f".{source.name}.tmp"
            shutil.copy(source, tmp)
            tmp.rename(inbox / source.parent.name / source.name)  # atomic arrival
            arrived.append(str(inbox / source.parent.name / source.name))
            time.sleep(0.05)

    command = [sys.executable, "-m", "beamline", "run", str(path), "--runs-dir", tmp_path / "runs"]
    store = WindowStore(tmp_path / "runs" / "durable" / ".streams" / "ingest")
    rng = random.Random(4)
    for _ in range(3):
        stored = len(store.parts()) if store.root.is_dir() else 0
        process = subprocess.Popen(
            command, cwd=PROJECT_DIR, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        copy_some(10)
        deadline = time.monotonic() + 90
        while (len(store.parts()) if store.root.is_dir() else 0) == stored:
            assert time.monotonic() < deadline, "the watch stored nothing"
            time.sleep(0.05)  # kill once this process commits: mid-window, mid-write...
        time.sleep(rng.uniform(0.0, 1.0))
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
    copy_some(len(sources))
    final = subprocess.run(
        [*command, "--set", "steps.ingest.idle_timeout=2"],
        cwd=PROJECT_DIR, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert final.returncode == 0, final.stdout[-2000:] + final.stderr[-2000:]

    stored_sources = [s for part in store.parts() for s in part.sources]
    assert sorted(stored_sources) == sorted(arrived)  # every file once: none lost, none twice
    assert store.counts() == {"read": 37, "written": 36, "rejected": 1}
    meta = next((tmp_path / "runs" / "durable").glob("*/ingest/meta.json"))
    assert json.loads(meta.read_text())["counts"] == store.counts()
