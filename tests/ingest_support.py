"""Helpers shared by the ingest, image and table tests: real data subsets, pipeline files, runs."""

from __future__ import annotations

import csv
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

import beamline
from beamline import examples


def copy_images(source: Path, dest: Path, classes: list[str], per_class: int) -> Path:
    """Copy the first ``per_class`` images of each class folder of ``source`` into ``dest``."""
    for name in classes:
        (dest / name).mkdir(parents=True, exist_ok=True)
        for file in sorted((source / name).iterdir())[:per_class]:
            shutil.copy(file, dest / name / file.name)
    return dest


def csv_rows(path: Path, count: int) -> list[dict[str, str]]:
    """The first ``count`` rows of a real CSV data set."""
    with path.open(encoding="utf-8", newline="") as handle:
        return [row for _, row in zip(range(count), csv.DictReader(handle), strict=False)]


def pipeline_file(folder: Path, step: dict[str, Any], runner: Any = None, name: str = "t") -> Path:
    """Write a one-step pipeline file ``folder/<name>.yaml`` whose step is ``ingest``."""
    doc: dict[str, Any] = {"name": name, "steps": {"ingest": step}}
    if runner is not None:
        doc["runner"] = runner
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    return path


def ingest(path: Path, runs: Path, **kwargs: Any) -> tuple[Any, Path]:
    """Run a pipeline file; return the ingest step's record and its artifact folder."""
    result = beamline.run(path, runs_dir=runs, **kwargs)
    record = result.records[0]
    counts = record.counts
    assert counts["read"] == counts["written"] + counts["rejected"], counts
    return record, Path(record.path)


def split_examples(artifact: Path, split: str) -> list[dict[str, list[Any]]]:
    """The decoded examples of one split."""
    return list(examples.iter_examples(artifact, split))


def shard_contents(artifact: Path) -> dict[str, bytes]:
    """Every file an ingest wrote but meta.json, by relative path: what runners must agree on."""
    return {
        str(p.relative_to(artifact)): p.read_bytes()
        for p in sorted(artifact.rglob("*"))
        if p.is_file() and p.name != "meta.json"
    }


def labels_by_source(artifact: Path) -> dict[str, list[bytes]]:
    """Labels per split, for comparing split membership."""
    spec = examples.feature_spec(artifact)
    return {
        split: sorted(ex[spec["label"]][0] for ex in split_examples(artifact, split))
        for split in spec["splits"]
    }


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_for_port(port: int, proc: subprocess.Popen[bytes], log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode}: {log.read_text()[-2000:]}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.2)
    raise TimeoutError(
        f"nothing listens on port {port} after {timeout} s: {log.read_text()[-2000:]}"
    )


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """Stop a process started in its own session, and the workers it started."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    try:  # the pool's SDK workers share its process group
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


@contextmanager
def beam_job_service(logs: Path, timeout: float = 90) -> Iterator[dict[str, str]]:
    """Start Beam's Python job service and an external worker pool on 127.0.0.1.

    Yields the ``runner:`` settings of a pipeline file for them; both processes (and the SDK
    workers the pool starts) are stopped on exit, whatever happens."""
    venv_bin = str(Path(sys.executable).parent)
    # The pool starts SDK workers as plain 'python': it must be this interpreter.
    env = {**os.environ, "PATH": venv_bin + os.pathsep + os.environ.get("PATH", "")}
    job_port, pool_port = free_port(), free_port()
    commands = {
        "job_service": [
            sys.executable,
            "-m",
            "apache_beam.runners.portability.local_job_service_main",
            "--port",
            str(job_port),
        ],
        "worker_pool": [
            sys.executable,
            "-m",
            "apache_beam.runners.worker.worker_pool_main",
            "--service_port",
            str(pool_port),
        ],
    }
    procs: list[subprocess.Popen[bytes]] = []
    logs.mkdir(parents=True, exist_ok=True)
    try:
        for (name, command), port in zip(commands.items(), (job_port, pool_port), strict=True):
            log = logs / f"{name}.log"
            with log.open("wb") as out:
                proc = subprocess.Popen(
                    command, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
                )
            procs.append(proc)
            _wait_for_port(port, proc, log, timeout)
        yield {
            "name": "portable",
            "job_endpoint": f"127.0.0.1:{job_port}",
            "environment_type": "EXTERNAL",
            "environment_config": f"127.0.0.1:{pool_port}",
        }
    finally:
        for proc in reversed(procs):
            _stop(proc)
