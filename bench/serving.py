"""Case: ``pipeline serve`` throughput and latency against the same SavedModel called in-process.

The model is the digits CNN (one run of ``pipelines/digits.yaml``, published into
``bench/.cache/serving/models/digits``); an example is one 8x8 PNG of the shipped digits.

- ``in-process loop``: ``tf.saved_model.load`` and the serving signature called in a loop,
  one request's examples per call (what an application embedding the model would do), with
  TensorFlow's default threads and with one op thread (what the server runs on 2 cores); the
  target is judged against the faster of the two;
- ``serve``: ``pipeline serve`` on the model folder, with a local client keeping
  ``connections`` HTTP/1.1 keep-alive connections busy, each sending TF Serving predict requests
  (``{"instances": [{"b64": ...}]}``) back to back; batching on (up to 32 examples, no wait
  when idle, on the event loop: the defaults), batching in an inference thread
  (``--inference-threads 1``) and off (``--max-batch 1``).

The client is a small asyncio loop over raw sockets with the request bytes built once, so it
costs little CPU beside the server on 2 cores. Throughput is examples per second; latency is per
request (per call in-process), p50 and p99; ``cpu_ms_per_example`` is the CPU spent per example
(the server's and the client's, or the loop's), which other jobs on a shared machine do not
change the way they change throughput. Every variant runs in its own process (one loop, or
one server and its client), which measures both request sizes one after the other (the client
first runs 1 s unmeasured, as the loop's 20 warm-up calls); variants interleaved, 3 repeats,
medians reported, and each repeat's ratio (``per_run``) in the JSON.

Subprocess tasks: ``python -m bench.serving inprocess|client 'JSON'``.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from . import common

CACHE = common.CACHE / "serving"
DIGITS = common.ROOT / "pipelines" / "data" / "digits"
CASE = "serving"


def example_png() -> bytes:
    """One shipped digit image (a 3)."""
    return sorted((DIGITS / "3").glob("*.png"))[0].read_bytes()


def predict_body(rows: int) -> bytes:
    """A TF Serving row-format request of ``rows`` copies of the example image."""
    image = {"b64": base64.b64encode(example_png()).decode("ascii")}
    return json.dumps({"instances": [image] * rows}).encode()


def model_folder(epochs: int = 2) -> Path:
    """``bench/.cache/serving/models/digits`` with one published version (trained once)."""
    from beamline.model_folder import latest_version

    folder = CACHE / "models" / "digits"
    if latest_version(folder) is None:
        command = [
            sys.executable, "-m", "beamline", "run", "pipelines/digits.yaml",
            "--runs-dir", str(CACHE / "runs"),
            "--set", f"steps.train.epochs={epochs}",
            "--set", "steps.evaluate.thresholds.accuracy=0.1",
            "--set", f"steps.export.publish={CACHE / 'models'}",
        ]  # fmt: skip
        subprocess.run(command, cwd=common.ROOT, check=True, capture_output=True, timeout=900)
    return folder


class Server:
    """``pipeline serve`` in a subprocess; its CPU seconds read from /proc."""

    def __init__(self, folder: Path, *args: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "beamline", "serve", str(folder), "--port", "0", *args],
            cwd=common.ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
        )
        line: list[str] = []
        reader = threading.Thread(target=lambda: line.append(self.process.stdout.readline()))
        reader.start()
        reader.join(timeout=180)
        if not line or not line[0].startswith("serving "):
            self.stop()
            raise RuntimeError(f"pipeline serve did not start: {line}")
        address = line[0].split("http://")[1].split("/")[0]
        self.host, port = address.rsplit(":", 1)
        self.port = int(port)

    def cpu_seconds(self) -> float:
        """User + system seconds of the server process so far."""
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        """SIGTERM, then wait."""
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()


# --- subprocess tasks ------------------------------------------------------------------------


def inprocess(
    model: str, shapes: list[int], seconds: float, threads: int = 0
) -> dict[str, dict[str, Any]]:
    """Call the SavedModel's serving signature in a loop, for each request size of ``shapes``
    (examples per call) ``seconds`` long (``threads``: TensorFlow's op threads, 0 for its
    default); the results by size."""
    import tensorflow as tf

    if threads:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(1)

    loaded = tf.saved_model.load(model)
    signature = loaded.signatures["serving_default"]
    results = {}
    for rows in shapes:
        batch = tf.constant([example_png()] * rows)
        for _ in range(20):  # warm-up
            signature(image=batch)
        latencies = []
        cpu, started = time.process_time(), time.perf_counter()
        while time.perf_counter() - started < seconds:
            t = time.perf_counter()
            signature(image=batch)["scores"].numpy()
            latencies.append(time.perf_counter() - t)
        wall = time.perf_counter() - started
        results[str(rows)] = _summary(latencies, rows, wall, time.process_time() - cpu, failures=0)
    return results


def client(
    host: str, port: int, rows: int, connections: int, seconds: float, name: str = "digits"
) -> dict[str, Any]:
    """Keep ``connections`` keep-alive connections busy with predict requests for ``seconds``."""
    body = predict_body(rows)
    request = (
        f"POST /v1/models/{name}:predict HTTP/1.1\r\nHost: {host}:{port}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    latencies: list[float] = []
    failures = [0]

    async def connection(stop_at: float) -> None:
        reader, writer = await asyncio.open_connection(host, port)
        try:
            while time.perf_counter() < stop_at:
                t = time.perf_counter()
                writer.write(request)
                await writer.drain()
                status = int((await reader.readline()).split()[1])
                length = 0
                while (line := await reader.readline()) not in (b"\r\n", b""):
                    if line[:15].lower() == b"content-length:":
                        length = int(line[15:])
                await reader.readexactly(length)
                latencies.append(time.perf_counter() - t)
                failures[0] += status != 200
        finally:
            writer.close()

    async def main() -> float:
        started = time.perf_counter()
        await asyncio.gather(*(connection(started + seconds) for _ in range(connections)))
        return time.perf_counter() - started

    cpu = time.process_time()
    wall = asyncio.run(main())
    return _summary(latencies, rows, wall, time.process_time() - cpu, failures=failures[0])


def _summary(
    latencies: list[float], rows: int, wall: float, cpu: float, failures: int
) -> dict[str, Any]:
    ordered = sorted(latencies)
    pick = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000  # noqa: E731
    return {
        "work_s": wall,
        "work_cpu_s": cpu,
        "requests": len(latencies),
        "failures": failures,
        "examples_per_s": len(latencies) * rows / wall,
        "p50_ms": pick(0.50),
        "p99_ms": pick(0.99),
    }


TASKS = {"inprocess": inprocess, "client": client}


# --- the case --------------------------------------------------------------------------------


def _task(name: str, **kwargs: Any) -> dict[str, Any]:
    return common.measured([sys.executable, "-m", "bench.serving", name, json.dumps(kwargs)])


SERVED = {  # variant: pipeline serve's arguments
    "serve, batching": (),
    "serve, batching in an inference thread": ("--inference-threads", "1"),  # default: 0
    "serve, no batching": ("--max-batch", "1"),
}


def run(smoke: bool = False) -> list[dict[str, Any]]:
    """Throughput and latency rows: in-process loop (reference), serve with and without
    batching, for requests of 1 example (16 connections) and of 8 examples (4 connections).

    Each variant's process (one loop, or one server) measures both request sizes, one after
    the other: half the process starts of one process per size, so that a full run (5
    variants, 3 repeats) takes about 5 minutes."""
    folder = model_folder()
    from beamline.model_folder import latest_version

    version = str(folder / str(latest_version(folder)))
    seconds, repeats, warm = (1.0, 1, 0.2) if smoke else (6.0, 3, 1.0)
    shapes = [(1, 16)] if smoke else [(1, 16), (8, 4)]

    def served(*args: str) -> dict[str, dict[str, Any]]:
        server = Server(folder, *args)
        results = {}
        try:
            for rows, connections in shapes:
                client = dict(
                    host=server.host, port=server.port, rows=rows, connections=connections
                )
                _task("client", **client, seconds=warm)  # as the loop's 20 warm-up calls
                cpu = server.cpu_seconds()
                result = _task("client", **client, seconds=seconds)
                result["server_cpu_s"] = server.cpu_seconds() - cpu
                results[str(rows)] = result
        finally:
            server.stop()
        return results

    def loop(threads: int = 0) -> dict[str, dict[str, Any]]:
        sizes = [rows for rows, _ in shapes]
        return _task("inprocess", model=version, shapes=sizes, seconds=seconds, threads=threads)

    variants: dict[str, Any] = {
        "in-process loop": loop,
        "in-process loop, 1 TF thread": lambda: loop(threads=1),
        **{name: lambda args=args: served(*args) for name, args in SERVED.items()},
    }
    if smoke:  # the code paths, at the least cost: one server start
        variants = {v: variants[v] for v in ("in-process loop", "serve, batching")}
    samples = common.interleaved(variants, repeats)
    rows_out: list[dict[str, Any]] = []
    for rows, connections in shapes:
        by_size = {v: [r[str(rows)] for r in results] for v, results in samples.items()}
        base = max(  # the faster in-process loop is the reference
            common.median(r["examples_per_s"] for r in by_size[v])
            for v in by_size
            if v.startswith("in-process")
        )
        for variant, results in by_size.items():
            rows_out.append(_row(variant, results, rows, connections, base))
    return rows_out


def _row(
    variant: str, results: list[dict[str, Any]], rows: int, connections: int, base: float
) -> dict[str, Any]:
    rate = common.median(r["examples_per_s"] for r in results)
    cpu = common.median(r["work_cpu_s"] + r.get("server_cpu_s", 0.0) for r in results)
    # CPU per example (server + client, or the loop): what contention does not change
    per_example = common.median(
        (r["work_cpu_s"] + r.get("server_cpu_s", 0.0))
        / max(r["examples_per_s"] * r["work_s"], 1)
        * 1000
        for r in results
    )
    judged = variant == "serve, batching"
    return common.row(
        CASE,
        f"{variant} ({rows}/request, {connections if 'serve' in variant else 1} conn)",
        common.median(r["work_s"] for r in results),
        cpu,
        rate / base,
        target=">= 0.8x in-process examples/s" if judged else "",
        met=(rate / base >= 0.8) if judged else None,
        examples_per_s=round(rate, 1),
        p50_ms=round(common.median(r["p50_ms"] for r in results), 3),
        p99_ms=round(common.median(r["p99_ms"] for r in results), 3),
        failures=sum(r["failures"] for r in results),
        cpu_ms_per_example=round(per_example, 4),
        per_run=[round(r["examples_per_s"] / base, 3) for r in results],
    )


def main() -> None:
    """Run a subprocess task and print its JSON result."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    result = TASKS[sys.argv[1]](**json.loads(sys.argv[2]))
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
