"""The Redis Streams source against a real redis-server: windows, rejects, acknowledgement,
redelivery after kill -9 with every message counted exactly once, and ``pipeline publish``."""

from __future__ import annotations

import json
import logging
import os
import random
import signal
import subprocess
import sys
import textwrap
import threading
import time

import pytest
import redis
from broker_support import pending, stored_rejects, stored_texts
from data_paths import DIGITS, PROJECT_DIR

from beamline import api
from beamline_plugins.broker.server import start_server

PIPELINE = """
name: broker
steps:
  ingest:
    component: redis_stream
    url: {url}
    stream: events
    format: text
    feature: text
    window_seconds: 1
    max_delay: 0.2
    poll_interval: 0.2
    idle_timeout: {idle}
    statistics: false
"""


@pytest.fixture
def server(tmp_path):
    """A persistent redis-server on a free port, its data in a temporary folder."""
    running = start_server(tmp_path / "redis")
    yield running
    running.stop()


def _pipeline(write_pipeline, server, idle: float = 1.0):
    return write_pipeline(textwrap.dedent(PIPELINE.format(url=server.url, idle=idle)).lstrip())


@pytest.mark.parametrize("reader_process", [True, False], ids=["reader process", "in process"])
def test_messages_are_windowed_malformed_ones_rejected_and_all_acknowledged(
    write_pipeline, tmp_path, server, reader_process
):
    client = redis.Redis.from_url(server.url)
    good = [client.xadd("events", {"data": f"m{i}", "label": "a"}).decode() for i in range(6)]
    bad = {
        client.xadd("events", {"label": "a"}).decode(): "no 'data' field",
        client.xadd("events", {"data": b"\xff\xfe", "label": "a"}).decode(): "not UTF-8",
        client.xadd("events", {"data": "x", "time": "soon"}).decode(): "field 'time'",
        client.xadd("events", {"data": "x", "colour": "red"}).decode(): "unknown message field",
    }
    text = textwrap.dedent(PIPELINE.format(url=server.url, idle=1.0)).lstrip()
    path = write_pipeline(text + f"    reader_process: {str(reader_process).lower()}\n")
    result = api.run(path, runs_dir=tmp_path / "runs")

    store = tmp_path / "runs" / "broker" / ".streams" / "ingest"
    assert result.records[0].counts == {"read": 10, "written": 6, "rejected": 4}
    assert sorted(stored_texts(store)) == [f"m{i}" for i in range(6)]
    reasons = stored_rejects(store)
    assert set(reasons) == {f"events/{i}" for i in bad}
    for entry_id, words in bad.items():
        assert words in reasons[f"events/{entry_id}"]
    assert pending(client, "events") == 0  # everything stored was acknowledged
    artifact = result.run.artifact("ingest").path  # the store, linked: the usual layout
    assert sum(json.loads((artifact / "features.json").read_text())["splits"].values()) == 6
    assert len(good) == 6


def test_a_restart_redelivers_what_was_read_and_never_stores_a_message_twice(
    write_pipeline, tmp_path, server
):
    client = redis.Redis.from_url(server.url)
    ids = [client.xadd("events", {"data": f"m{i}"}).decode() for i in range(5)]
    # An earlier reader took three messages and died before storing them: they stay pending.
    client.xgroup_create("events", "beamline", id="0")
    client.xreadgroup("beamline", "ingest", {"events": ">"}, count=3)
    assert pending(client, "events") == 3

    result = api.run(_pipeline(write_pipeline, server), runs_dir=tmp_path / "runs")
    assert result.records[0].counts == {"read": 5, "written": 5, "rejected": 0}
    assert pending(client, "events") == 0
    # The same messages delivered again (a kill between storing and XACK) are not stored twice.
    client.xgroup_setid("events", "beamline", id="0")
    again = api.run(_pipeline(write_pipeline, server), runs_dir=tmp_path / "runs")
    assert again.records[0].counts == {"read": 5, "written": 5, "rejected": 0}
    assert again.records[0].metrics["already_stored"] == 5
    store = tmp_path / "runs" / "broker" / ".streams" / "ingest"
    assert sorted(stored_texts(store)) == [f"m{i}" for i in range(5)] and len(ids) == 5


def test_a_poll_is_decoded_transformed_deduplicated_and_stored_in_batches(
    write_pipeline, tmp_path, server, caplog
):
    client = redis.Redis.from_url(server.url)
    pngs = sorted(DIGITS.rglob("*.png"))[:3]
    ids = [client.xadd("events", {"data": f.read_bytes(), "label": "d"}).decode() for f in pngs]
    twin = client.xadd("events", {"data": pngs[0].read_bytes(), "label": "d"}).decode()
    broken = client.xadd("events", {"data": b"not a png", "label": "d"}).decode()
    text = textwrap.dedent(PIPELINE.format(url=server.url, idle=1.0)).lstrip()
    text = text.replace("format: text\n    feature: text", "format: image\n    feature: image")
    path = write_pipeline(text + "    transforms: [decode_image]\n")
    with caplog.at_level(logging.INFO):
        result = api.run(path, runs_dir=tmp_path / "runs")

    assert "handled in batches" in caplog.text  # one Beam element per poll, not per message
    assert result.records[0].counts == {"read": 5, "written": 3, "rejected": 2}
    reasons = stored_rejects(tmp_path / "runs" / "broker" / ".streams" / "ingest")
    assert reasons[f"events/{twin}"] == f"duplicate of events/{ids[0]} in the same window"
    assert reasons[f"events/{broken}"].startswith("not an image")  # decode_image, in bulk
    assert pending(client, "events") == 0


def test_the_reader_process_dies_with_its_parent_and_nothing_stays_read_for_it(tmp_path, server):
    client = redis.Redis.from_url(server.url)
    client.xadd("events", {"data": "m0"})
    parent = subprocess.Popen(  # reads one poll through a ReaderProcess, then waits to be killed
        [sys.executable, "-c", READER_PARENT.format(url=server.url)],
        cwd=PROJECT_DIR,
        stdout=subprocess.PIPE,
        text=True,
    )
    child = int(parent.stdout.readline())
    os.kill(parent.pid, signal.SIGKILL)
    parent.wait(timeout=30)
    deadline = time.monotonic() + 10
    while os.path.exists(f"/proc/{child}") and time.monotonic() < deadline:
        time.sleep(0.05)
    if os.path.exists(f"/proc/{child}"):  # a zombie (no parent to reap it yet) is dead too
        assert open(f"/proc/{child}/stat").read().rsplit(")", 1)[1].split()[0] in "ZX"
    client.xadd("events", {"data": "m1"})  # no reader left: it stays undelivered
    time.sleep(0.5)
    assert pending(client, "events") == 1  # the first, read and never acknowledged


def test_a_stream_the_loop_stopped_ends_cleanly_before_its_reader_reports_the_end(server):
    from types import SimpleNamespace

    from apache_beam.coders import BytesCoder

    from beamline.live_stream import STOP, live_stream
    from beamline_plugins.broker.reader import ReaderProcess
    from beamline_plugins.broker.redis_stream import RedisStream

    client = redis.Redis.from_url(server.url)
    client.xadd("events", {"data": "m0"})
    stream = RedisStream(url=server.url, stream="events", format="text", poll_interval=0.2)
    reader = ReaderProcess(stream)
    next(elements for elements, _ in reader.polls() if elements)  # its end is never read
    stream._live = (live_stream(iter([]), BytesCoder()), reader)
    logged: list[str] = []
    STOP.set()  # what the continuous loop does when it is done
    try:
        stream.close(SimpleNamespace(log=logged.append))
    finally:
        STOP.clear()
    assert logged == [
        "stream ended: asked to stop (the continuous loop ended); 1 messages delivered"
    ]
    assert pending(client, "events") == 1  # read, never stored: delivered again on the next run


READER_PARENT = """
from beamline_plugins.broker.reader import ReaderProcess
from beamline_plugins.broker.redis_stream import RedisStream
stream = RedisStream(url="{url}", stream="events", format="text", poll_interval=0.2)
reader = ReaderProcess(stream)
for elements, _ in reader.polls():
    if elements:
        print(reader.process.pid, flush=True)
        break
import time; time.sleep(60)
"""


def test_a_poll_larger_than_grpc_messages_reaches_beam_in_pieces(write_pipeline, tmp_path, server):
    client = redis.Redis.from_url(server.url)
    for i in range(40):  # 6 MB in one poll: Beam's event stream refuses messages over 4 MiB
        client.xadd("events", {"data": f"{i:03d}" + "x" * 150_000})
    result = api.run(_pipeline(write_pipeline, server), runs_dir=tmp_path / "runs")
    assert result.records[0].counts == {"read": 40, "written": 40, "rejected": 0}
    assert pending(client, "events") == 0


def test_poll_elements_are_grouped_by_the_fixed_window_beam_assigns():
    from beamline.live_stream import window_batches

    polls = [([("a", 10.5), ("b", 11.0), ("c", 10.2), ("d", 12.999999)], 9.0), ([], 12.0)]
    out = list(window_batches(iter(polls), 1.0))
    assert out == [([(["a", "c"], 10.2), (["b"], 11.0), (["d"], 12.999999)], 9.0), ([], 12.0)]
    # A window's values are cut where their bytes pass max_bytes (Beam's events stay small).
    cut = list(window_batches(iter(polls[:1]), 1.0, size=lambda v: 600, max_bytes=1000))
    assert cut[0][0] == [(["a"], 10.5), (["c"], 10.2), (["b"], 11.0), (["d"], 12.999999)]


@pytest.mark.slow  # ~30 s idle: ten ingest processes killed with SIGKILL while messages arrive
def test_every_message_is_counted_exactly_once_across_ten_kill_9s(write_pipeline, tmp_path, server):
    client = redis.Redis.from_url(server.url)
    path = _pipeline(write_pipeline, server, idle=1.0)
    published: dict[str, str] = {}  # entry id -> text ('' for a malformed message)
    done = threading.Event()

    def publish() -> None:  # 20 messages a second until the kills are over
        i = 0
        while not done.is_set():
            if i % 37 == 5:
                published[client.xadd("events", {"time": "x", "data": "y"}).decode()] = ""
            else:
                published[client.xadd("events", {"data": f"m{i}"}).decode()] = f"m{i}"
            i += 1
            time.sleep(0.05)

    def delivered() -> str:
        groups = client.xinfo_groups("events") if client.exists("events") else []
        return next((g["last-delivered-id"].decode() for g in groups), "")

    publisher = threading.Thread(target=publish)
    publisher.start()
    command = [sys.executable, "-m", "beamline", "run", str(path), "--runs-dir", tmp_path / "runs"]
    rng = random.Random(11)
    try:
        for _ in range(10):
            before = delivered()
            process = subprocess.Popen(  # a stream that would wait long: only the kill ends it
                [*command, "--set", "steps.ingest.idle_timeout=60"],
                cwd=PROJECT_DIR,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            deadline = time.monotonic() + 120
            while delivered() == before and time.monotonic() < deadline:
                time.sleep(0.05)  # kill only once this process reads: mid-window, mid-write...
            time.sleep(rng.uniform(0.0, 1.5))
            os.kill(process.pid, signal.SIGKILL)
            process.wait(timeout=30)
    finally:
        done.set()
        publisher.join()
    final = subprocess.run(command, cwd=PROJECT_DIR, capture_output=True, text=True, timeout=120)
    assert final.returncode == 0, final.stdout + final.stderr

    store = tmp_path / "runs" / "broker" / ".streams" / "ingest"
    texts = stored_texts(store)
    rejects = stored_rejects(store)
    assert len(texts) == len(set(texts))  # none stored twice
    assert sorted(texts) == sorted(t for t in published.values() if t)
    assert set(rejects) == {f"events/{i}" for i, t in published.items() if not t}
    assert len(texts) + len(rejects) == len(published) > 100
    assert pending(client, "events") == 0
    meta = json.loads(next((tmp_path / "runs" / "broker").glob("*/ingest/meta.json")).read_text())
    expected = {"read": len(published), "written": len(texts), "rejected": len(rejects)}
    assert meta["counts"] == expected


def test_publish_replays_class_folders_and_csv_rows_into_a_stream(tmp_path, server):
    csv = tmp_path / "rows.csv"
    csv.write_text("x,y,label\n1,2.5,a\n3,4,b\n")
    run = [sys.executable, "-m", "beamline", "publish", "--url", server.url, "--json"]
    folder = subprocess.run(
        [*run, str(DIGITS), "--stream", "img", "--labels", "3,5", "--limit", "12"],
        capture_output=True, text=True, timeout=60, cwd=PROJECT_DIR,
    )  # fmt: skip
    assert folder.returncode == 0, folder.stderr
    assert json.loads(folder.stdout)["published"] == 12
    rows = subprocess.run(
        [*run, str(csv), "--stream", "rows", "--sorted"],
        capture_output=True, text=True, timeout=60, cwd=PROJECT_DIR,
    )  # fmt: skip
    assert rows.returncode == 0, rows.stderr
    client = redis.Redis.from_url(server.url)
    entries = client.xrange("img")
    assert len(entries) == 12 and {e[1][b"label"] for e in entries} <= {b"3", b"5"}
    assert entries[0][1][b"data"].startswith(b"\x89PNG")
    first = client.xrange("rows")[0][1]
    assert json.loads(first[b"data"]) == {"x": 1, "y": 2.5} and first[b"label"] == b"a"


def test_a_message_decodes_by_format_into_a_record_or_a_reject_with_the_reason():
    from beamline.ingest import Reject
    from beamline_plugins.broker.messages import decode, event_time

    row = decode("s/1-0", {b"data": b'{"x": 1.5, "kind": "a"}', b"label": b"b"}, "row", "", "y")
    assert row == {"__source__": "s/1-0", "x": 1.5, "kind": "a", "y": "b"}
    wav = decode("s/2-0", {b"data": b"RIFF...."}, "audio", "audio", "label")
    assert wav == {"__source__": "s/2-0", "audio": b"RIFF...."}
    for fields, fmt, words in [
        ({b"data": b"[1, 2]"}, "row", "JSON object"),
        ({b"data": b'{"x": [1]}'}, "row", "not a number or a text"),
        ({b"data": b"{"}, "row", "not a JSON object"),
        ({b"data": b""}, "image", "empty"),
        ({b"data": b"a", b"label": b"\xff"}, "text", "'label' is not UTF-8"),
    ]:
        out = decode("s/3-0", fields, fmt, "f", "label")
        assert isinstance(out, Reject) and words in out.reason, (fields, out)
    assert event_time("1700000000123-0", {}) == 1700000000.123  # arrival time by default
    assert event_time("1-0", {b"time": b"12.5"}) == 12.5
    assert "not a time" in event_time("1-0", {b"time": b"-3"})


def test_the_batched_window_encoder_and_hash_give_the_per_record_bytes_and_digests(tmp_path):
    from beamline.records import content_hash
    from beamline.shards import encode_record
    from beamline.stream_batches import apply_in_bulk, deduplicated, window_hash
    from beamline.stream_durable import encode_window
    from beamline.window_hash import DIGEST_KEY

    png = sorted(DIGITS.rglob("*.png"))[0].read_bytes()
    records = [
        {"__source__": "s/1", "image": png, "label": "3"},
        {"__source__": "s/2", "image": b"", "label": "é" * 200, "name": None},
        {"__source__": "s/3", "image": png * 200, "label": "3"},  # lengths over 2 varint bytes
        {"__source__": "s/0", "image": png, "label": "3", "__meta__": {"image": {"w": 8}}},
    ]
    dtypes = {"image": {"dtype": "bytes"}, "label": {"dtype": "bytes"}}
    schema = {"features": dtypes}
    assert encode_window(records, dtypes) == [encode_record(r, schema) for r in records]
    mixed = {"__source__": "s/4", "n": 3, "x": [1.5, 2.0]}  # not bytes: the general encoder
    kinds = {"n": {"dtype": "int64"}, "x": {"dtype": "float"}}
    assert encode_window([mixed], kinds) == [encode_record(mixed, {"features": kinds})]
    assert [window_hash(r) for r in [*records, mixed]] == [
        content_hash(r) for r in [*records, mixed]
    ]
    carried = [{**r, DIGEST_KEY: window_hash(r)} for r in records]  # as the reader sends them
    assert deduplicated(carried, True) == deduplicated([dict(r) for r in records], True)
    stale = {"__source__": "s/9", "text": "a", DIGEST_KEY: window_hash({"text": "a"})}
    (changed,), _, _ = apply_in_bulk(([stale], [], 1), [("t", lambda r: {**r, "text": "b"}, {})])
    assert deduplicated([changed], True)[0][0][0] == window_hash({"text": "b"})
    kept, duplicates = deduplicated(records, True)  # equal contents: the first by source kept
    assert [r["__source__"] for _, r in kept].count("s/0") == 1
    assert [d["source"] for d in duplicates] == ["s/1"]
    # The reader's framed examples: the records' own, and the same file written from them
    from beamline.stream_durable import FRAMED_KEY, attach_framed
    from beamline.tfrecord import frame, write_framed, write_tfrecords

    framed = [dict(r) for r in [*records, mixed]]
    attach_framed(framed, max_bytes=10_000)
    assert FRAMED_KEY not in framed[-1]  # not all bytes: encoded in the step
    assert FRAMED_KEY not in framed[2]  # 25 kB: over the limit, left to the step too
    attach_framed(framed)
    assert [r[FRAMED_KEY] for r in framed[:-1]] == [
        frame(e) for e in encode_window(records, dtypes)
    ]
    write_framed(tmp_path / "a.gz", [r[FRAMED_KEY] for r in framed[:-1]] * 50, level=1)
    write_tfrecords(tmp_path / "b.gz", encode_window(records, dtypes) * 50, level=1)
    assert (tmp_path / "a.gz").read_bytes() == (tmp_path / "b.gz").read_bytes()
    (changed,), _, _ = apply_in_bulk(([framed[0]], [], 1), [("t", lambda r: r, {})])
    assert FRAMED_KEY not in changed  # a transform drops it
    # A window's summary a column at a time: the record loop's (an iterator takes that one)
    from beamline.windows import summarize

    rows = [{"a": 1, "b": None, "label": "x"}, {"b": 2.5, "a": True, "label": "y"}]
    for window in ([*framed[:1], framed[2]], rows, rows[::-1], [{"a": b"\xff", "label": b"\xff"}]):
        for label in ("label", None, "a"):
            assert summarize(window, label) == summarize(iter(window), label)
            assert list(summarize(window, label)["features"]) == list(
                summarize(iter(window), label)["features"]
            )


def test_the_reader_connection_parses_new_entries_as_redis_py_does_in_any_chunking(server):
    from beamline_plugins.broker.resp import RespError, StreamConnection

    client = redis.Redis.from_url(server.url)
    png = sorted(DIGITS.rglob("*.png"))[0].read_bytes()
    fields = [{"data": png, "label": "3", "time": "12.5"}, {"data": b"a\r\nb" * 300}, {"x": b""}]
    for i in range(30):
        client.xadd("fast", fields[i % 3])
    for group in ("py", "fast"):
        client.xgroup_create("fast", group, id="0")
    expected = client.xreadgroup("py", "c", {"fast": ">"}, count=30)[0][1]
    connection = StreamConnection(server.url, timeout=10)
    connection.CHUNK = 7  # replies arrive in pieces that end anywhere: inside lengths, values
    got = connection.read_new("fast", "c", "fast", 11, None)
    got += connection.read_new("fast", "c", "fast", 100, 50)
    assert got == expected and len(got) == 30
    assert connection.read_new("fast", "c", "fast", 10, 50) == []  # BLOCK ran out: nil reply
    with pytest.raises(RespError, match="NOGROUP"):
        connection.read_new("none", "c", "fast", 10, None)
    assert connection.call("PING") == b"PONG"  # the connection is still in step after an error
    assert not StreamConnection.supported("rediss://127.0.0.1:6379/0")


def test_a_stream_that_has_seen_no_message_keeps_beams_event_channel_alive():
    # Beam stops a TestStream after 30 s without an event: a loop (re)started on a quiet stream
    # sends an event that changes nothing for each empty poll until it has a watermark.
    from apache_beam import coders

    from beamline.live_stream import PollEvents

    polls = iter([([], None), ([], None), ([], 5.0)])
    events = list(PollEvents(polls, coders.PickleCoder()).read_multiple(None))
    assert [e.WhichOneof("event") for e in events] == [
        "processing_time_event",
        "processing_time_event",
        "watermark_event",
    ]
    assert events[0].processing_time_event.advance_duration == 0
