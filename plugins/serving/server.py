"""``serve()``: what to serve (an export, a run, a model folder), under which name, on uvicorn.

uvicorn runs on uvloop's event loop and parses HTTP with httptools (both C; uvicorn's
``standard`` extras) when they are installed, else on asyncio's loop and the pure-Python h11;
either protocol sends each answer's head and body in one write (``one_write``).
"""

from __future__ import annotations

import gc
import importlib
import json
import socket
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from beamline.errors import PipelineError
from beamline.model_folder import is_model_folder, saved_model_dir

from .app import ServeOptions, create_app
from .loader import configure_threads, default_threads
from .manager import ModelManager
from .metrics import ServingMetrics
from .one_write import one_write_protocol


@dataclass(frozen=True)
class Target:
    """What a server serves: a model folder it watches, or one export as a fixed version."""

    path: Path
    name: str
    watch: bool
    version: int = 1


def resolve_target(ref: str | Path, name: str | None = None, runs_dir: Any = None) -> Target:
    """The target named by ``ref``: a model folder (``ROOT/NAME``, its versions watched), an
    export folder or SavedModel folder (served as version 1, or as its number when it is a
    published version), or a run (as ``pipeline show`` takes it) whose exporter step is served.

    An empty folder, or a path (not a bare name) that does not exist yet, is a model folder
    watched until a first version is published into it. The name defaults to the model
    folder's name, else the pipeline's of the run."""
    path = Path(ref)
    if path.is_dir() and (is_model_folder(path) or _only_hidden(path)):
        return Target(path, name or path.name, watch=True)
    if path.is_dir() and not (path / "run.json").is_file():
        saved_model_dir(path)  # says what a SavedModel folder needs when this is not one
        version = int(path.name) if path.name.isdigit() else 1
        return Target(path, name or _pipeline_of(path) or path.name, watch=False, version=version)
    from beamline.artifacts import open_run

    try:
        run = open_run(ref, runs_dir)
    except PipelineError:
        # A model folder no one has published into yet (a loop about to): wait for it. A bare
        # word stays a run name, so that a misspelt pipeline is still an error.
        if not path.exists() and len(path.parts) > 1:
            return Target(path, name or path.name, watch=True)
        raise
    exports = [s for s in run.steps() if run.artifact(s).meta.get("kind") == "exporter"]
    if not exports:
        raise PipelineError(
            f"run {run.pipeline}/{run.run_id} has no completed exporter step "
            f"(steps: {', '.join(run.steps()) or 'none'}); run the pipeline to its export step"
        )
    return Target(run.path / exports[-1], name or run.pipeline, watch=False)


def event_loop_and_parser() -> dict[str, str]:
    """uvicorn's ``loop`` and ``http``: uvloop and httptools where they import."""
    return {
        "loop": "uvloop" if _imports("uvloop") else "asyncio",
        "http": "httptools" if _imports("httptools") else "h11",
    }


def _imports(module: str) -> bool:
    try:
        importlib.import_module(module)
    except ImportError:  # not installed, or a build that does not load here
        return False
    return True


def _only_hidden(folder: Path) -> bool:
    """Whether ``folder`` is empty but for hidden entries (a publisher's temporary folder)."""
    return all(child.name.startswith(".") for child in folder.iterdir())


def _pipeline_of(export: Path) -> str:
    """The pipeline name of an exporter step inside a run folder (``''`` elsewhere)."""
    run_file = export.parent / "run.json"
    try:
        return str(json.loads(run_file.read_text(encoding="utf-8")).get("pipeline", ""))
    except (OSError, ValueError):
        return ""


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` (port 0: a free port)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise PipelineError(
            f"cannot listen on {host}:{port} ({exc.strerror}); choose another --port"
        ) from None
    sock.listen(2048)
    return sock


def serve(
    target: Target,
    *,
    host: str = "127.0.0.1",
    port: int = 8501,
    options: ServeOptions | None = None,
    poll_seconds: float = 1.0,
) -> None:
    """Load the target, listen, and serve until interrupted (Ctrl-C or SIGTERM).

    Prints one line when ready: ``serving NAME version V at http://HOST:PORT/v1/models/NAME``."""
    import uvicorn
    from uvicorn.config import HTTP_PROTOCOLS
    from uvicorn.importer import import_from_string

    options = options or ServeOptions()
    threads = options.tf_threads
    configure_threads(default_threads() if threads is None else threads)
    # TensorFlow's modules are ~350,000 objects that live as long as the process: frozen out of
    # the collector, a full collection walks the few thousand of the loaded versions and the
    # requests instead (0.8 ms, against 3.6 s at load 16, stalling every request in flight).
    import tensorflow  # noqa: F401

    gc.freeze()
    metrics = ServingMetrics(target.name)
    manager = ModelManager(
        target.name,
        target.path,
        watch=target.watch,
        version=target.version,
        poll_seconds=poll_seconds,
        on_swap=lambda loaded: metrics.loaded(loaded.version),
        on_failure=lambda version, reason: metrics.load_failed(),
    )
    first = manager.start()
    sock = bind(host, port)
    bound_host, bound_port = sock.getsockname()[:2]
    url = f"http://{bound_host}:{bound_port}/v1/models/{target.name}"
    watched = f", watching {target.path}" if target.watch else ""

    class Server(uvicorn.Server):
        async def startup(self, sockets: Any = None) -> None:
            await super().startup(sockets=sockets)
            version = f"version {first.version}" if first else "(no version yet)"
            print(f"serving {target.name} {version} at {url}{watched}", flush=True)

    stack = event_loop_and_parser()
    config = uvicorn.Config(
        create_app(manager, metrics, options),
        loop=stack["loop"],
        http=one_write_protocol(import_from_string(HTTP_PROTOCOLS[stack["http"]])),
        log_level="warning",
        access_log=False,
        proxy_headers=False,  # no X-Forwarded-* rewriting: one middleware less per request
        lifespan="on",
        timeout_graceful_shutdown=5,
    )
    try:
        Server(config).run(sockets=[sock])
    finally:
        manager.stop()
        sock.close()
        sys.stdout.flush()
