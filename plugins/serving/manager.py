"""Which version answers: the newest in a watched model folder, swapped in whole.

A new version is loaded completely in a background thread while the current one keeps
answering; then one reference is switched. A request takes the reference once, so it is
answered by one version from start to end, and no request waits for or fails on a swap.
A version that fails to load is reported in the status (and the metrics) and skipped; the
current one keeps serving. TF Serving's default policy is the same: serve the newest version,
unload the one it replaced.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from beamline.errors import PipelineError
from beamline.model_folder import latest_version

from .loader import LoadedVersion, load_version

log = logging.getLogger("beamline.serving")


@dataclass
class VersionState:
    """A version's state as TF Serving reports it (``AVAILABLE``, ``LOADING``, ``END``)."""

    state: str
    error: str = ""


class ModelManager:
    """Serve model ``name`` from an export (one fixed version) or a model folder (watched)."""

    def __init__(
        self,
        name: str,
        path: Path,
        *,
        watch: bool,
        version: int = 1,
        poll_seconds: float = 1.0,
        on_swap: Callable[[LoadedVersion], None] | None = None,
        on_failure: Callable[[int, str], None] | None = None,
    ) -> None:
        self.name = name
        self.path = path
        self.watch = watch
        self.poll_seconds = poll_seconds
        self.states: dict[int, VersionState] = {}
        self._fixed_version = version
        self._current: LoadedVersion | None = None
        self._on_swap = on_swap
        self._on_failure = on_failure
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def current(self) -> LoadedVersion | None:
        """The version that answers unversioned requests now."""
        return self._current

    def get(self, version: int | None) -> LoadedVersion | None:
        """The loaded version ``version`` (the current one for ``None``), or ``None``."""
        current = self._current
        if version is None or (current is not None and current.version == version):
            return current
        return None

    def start(self) -> LoadedVersion | None:
        """Load the first version (errors stop here, naming the folder) and start watching.

        A model folder with no version yet is watched until one appears (``None``)."""
        if self.watch:
            version = latest_version(self.path)
            if version is not None and not self._load(version):
                raise PipelineError(
                    f"{self.path / str(version)}: cannot load: {self.states[version].error}"
                )
            self._thread = threading.Thread(target=self._poll, name="model-watch", daemon=True)
            self._thread.start()
        elif not self._load(self._fixed_version, self.path):
            raise PipelineError(
                f"{self.path}: cannot load: {self.states[self._fixed_version].error}"
            )
        return self._current

    def stop(self) -> None:
        """Stop watching the folder."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def check_now(self) -> None:
        """Look at the model folder once (what the watcher does every ``poll_seconds``)."""
        newest = latest_version(self.path)
        current = self._current
        if newest is None or (current is not None and newest == current.version):
            return
        if newest in self.states and self.states[newest].state == "END":
            return  # failed to load before; a newer version will be tried
        self._load(newest)

    def _poll(self) -> None:
        while not self._stop.wait(self.poll_seconds):
            try:
                self.check_now()
            except Exception:  # a folder being rewritten under us: try again next time
                log.exception("watching %s", self.path)

    def _load(self, version: int, path: Path | None = None) -> bool:
        self.states[version] = VersionState("LOADING")
        started = time.perf_counter()
        try:
            loaded = load_version(path or self.path / str(version), version)
        except Exception as exc:  # any failure to load leaves the current version serving
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            self.states[version] = VersionState("END", reason)
            log.warning("model %s version %s failed to load: %s", self.name, version, reason)
            if self._on_failure:
                self._on_failure(version, reason)
            return False
        previous = self._current
        self._current = loaded  # the swap: one reference
        self.states[version] = VersionState("AVAILABLE")
        if previous is not None:
            self.states[previous.version] = VersionState("END")
        log.info(
            "model %s version %s loaded in %.2f s",
            self.name,
            version,
            time.perf_counter() - started,
        )
        if self._on_swap:
            self._on_swap(loaded)
        return True
