"""Streams of files: ``watch_folder`` (live, polls a folder) and ``replay_stream`` (TestStream).

Both are ``beamline.Stream`` components: ``read`` gives the core's streaming engine the files'
records stamped with their arrival (event) time, and ``window_checks`` adds TFDV statistics and
alarms per window (``tfdv_tools.window_checks``). Neither needs ``acknowledge``: a file stays
where it is.
"""

from __future__ import annotations

import functools
import secrets
from datetime import datetime
from pathlib import Path
from typing import Any

from beamline import ParamError, PipelineError, SpecError, StepContext, param
from beamline.fingerprint import files_digest
from beamline.records import MAIN, REJECTED
from beamline_plugins.tfdv_tools.window_checks import CheckedStream

from .readers import load_reader, read_labelled_file
from .watch import MAX_POLL_INTERVAL, FolderWatch, StopRule


class _FileStream(CheckedStream):
    """Shared parameters of the file streams (not registered)."""

    feature: str = param("image", help="the feature holding each file's bytes (default reader)")
    label: str = param(
        "label", help="feature set to the file's first sub-folder name ('' = no label)"
    )
    reader: str = param(
        "",
        help="'module:function' reading one file path into records (or yielding Reject); "
        "default: the file's bytes in 'feature' and its class folder in 'label'",
    )

    def _root(self, ctx: StepContext) -> Path:
        return ctx.resolve(getattr(self, "root"))  # noqa: B009 - both subclasses have it

    def location(self, ctx: StepContext) -> str:
        """The folder this source reads."""
        return str(self._root(ctx))

    def feature_info(self, ctx: StepContext) -> dict[str, Any]:
        """Features of the default reader: the file bytes and the label; none for a custom one."""
        if self.reader:
            return {"features": {}, "label": None, "warnings": []}
        features: dict[str, Any] = {self.feature: {"modality": "image"}}
        if self.feature != "image":
            features[self.feature] = {"modality": "binary"}
        if self.label:
            features[self.label] = {"modality": "label"}
        return {"features": features, "label": self.label or None, "warnings": []}

    def __getstate__(self) -> dict[str, Any]:
        """Pickled into Beam workers without the running watch (a local gRPC service)."""
        return {k: v for k, v in self.__dict__.items() if k != "_live"}

    def read(self, ctx: StepContext) -> Any:
        """The arriving files (with their event times) read into records, one stream."""
        return _read_files(self._arrivals(ctx), self._reader(ctx), self.name)

    def _arrivals(self, ctx: StepContext) -> Any:
        raise NotImplementedError

    def _reader(self, ctx: StepContext) -> Any:
        if self.reader:
            return load_reader(self.reader)
        return functools.partial(
            read_labelled_file, root=str(self._root(ctx)), feature=self.feature, label=self.label
        )


class WatchFolder(_FileStream):
    """Watch a folder for new files and ingest them live, in event-time windows (streaming).

    Beam runs in streaming mode. Every ``poll_interval`` seconds new files (recursively; the
    first sub-folder name is the label, as with ``image_folder``) enter the stream with their
    arrival time as event time, and the watermark advances to the poll time, so each fixed
    window of ``window_seconds`` is written as soon as it is over:
    ``examples/window-<start>-<end>/part-*.tfrecord.gz``, its TFDV statistics and its rejected
    records. Each window is checked against the schema; anomalies are ALARMS (``alarms.jsonl``,
    the log; ``fail_on_alarm`` fails the step). The step ends on the first of ``max_duration``
    (seconds), ``max_files`` or ``idle_timeout`` (seconds without a new file); set at least one.
    A file is taken once its modification time is ``settle_seconds`` old; hidden files and
    *.tmp/*.part are skipped, so write under such a name and rename. Runs on the direct and
    local runners (Beam's BundleBasedDirectRunner with --streaming); never reused from cache.

    With ``durable: true`` the windows are committed to a durable store kept across runs
    (``store_dir``; default ``<runs>/<pipeline>/.streams/<step>``), as ``redis_stream`` does: a
    restart skips every file the store holds (as an example or as rejected) and takes the
    others, so after any number of kills each file is counted once; the step's artifact is the
    whole store. (A file is known by its path, the default reader's ``__source__``; a custom
    reader's records are never stored twice as long as their sources stay the same.)"""

    name = "watch_folder"
    sources_across_windows = True  # a file read again after a restart arrives in a new window

    root: str = param(help="folder to watch (relative to the pipeline file; created if missing)")
    extensions: list[str] = param([], help="file extensions taken (any case); [] = every file")
    poll_interval: float = param(
        1.0, help="seconds between two looks at the folder (<= 10)", gt=0, le=MAX_POLL_INTERVAL
    )
    settle_seconds: float = param(0.5, help="a file is taken once unchanged for this long", ge=0)
    include_existing: bool = param(True, help="also ingest the files there when the watch starts")
    max_duration: float = param(300.0, help="stop after this many seconds (0: no limit)", ge=0)
    max_files: int = param(0, help="stop after this many files (0: no limit)", ge=0)
    idle_timeout: float = param(
        0.0, help="stop after this many seconds with no new file (0: off)", ge=0
    )
    durable: bool = param(
        False, help="commit windows to a store kept across runs; a restart skips stored files"
    )
    store_dir: str = param(
        "",
        help="folder of the durable store (relative to the pipeline file); default "
        "<runs>/<pipeline>/.streams/<step>",
    )

    def check(self) -> None:
        """Check the stop rule when the pipeline file is read."""
        super().check()
        problem = self.stop_rule().problem()
        if problem:
            raise ParamError("", problem)

    def stop_rule(self) -> StopRule:
        """The stop conditions as a ``StopRule``."""
        return StopRule(self.max_duration, self.max_files, self.idle_timeout)

    def data_fingerprint(self, ctx: StepContext) -> str | None:
        """A fresh value each run: a live folder is never the same data twice."""
        return f"live:{secrets.token_hex(8)}"

    def store(self, ctx: StepContext) -> Path | None:
        """The durable window store when ``durable`` (``store_dir``, else beside the runs)."""
        if not self.durable:
            return None
        if self.store_dir:
            return ctx.resolve(self.store_dir)
        return ctx.run.path.parent / ".streams" / ctx.step.name

    def _arrivals(self, ctx: StepContext) -> Any:
        """Start watching the folder: a TestStream served with each poll's new files."""
        from beamline.window_store import WindowStore

        from .watch import watch_stream

        root = self._root(ctx)
        root.mkdir(parents=True, exist_ok=True)
        watch = FolderWatch(
            root,
            extensions=self.extensions,
            stop=self.stop_rule(),
            settle_seconds=self.settle_seconds,
            include_existing=self.include_existing,
        )
        store = self.store(ctx)
        if store is not None:  # stored by an earlier run: as if taken already
            stored = WindowStore(store).stored_sources(None)
            watch.seen.update(stored)
            ctx.log(f"{len(stored)} files are in the store already: skipped")
        ctx.log(f"watching {root} (stops when: {_describe(self.stop_rule())})")
        stream = watch_stream(watch, self.poll_interval)
        self._live = (watch, stream)
        return stream.transform

    def close(self, ctx: StepContext) -> None:
        """Stop the watch's event service; report why the watch ended (or failed)."""
        live = self.__dict__.pop("_live", None)
        if live is None:
            return
        watch, stream = live
        stream.stop()
        if stream.reader.error is not None:
            raise PipelineError(f"{self.name}: the folder watch failed: {stream.reader.error}")
        ctx.log(f"watch stopped: {watch.stop_reason}; {watch.taken} files taken")


def _describe(rule: StopRule) -> str:
    parts = []
    if rule.max_duration:
        parts.append(f"{rule.max_duration:g}s passed")
    if rule.max_files:
        parts.append(f"{rule.max_files} files taken")
    if rule.idle_timeout:
        parts.append(f"{rule.idle_timeout:g}s without a new file")
    return " or ".join(parts)


class ReplayStream(_FileStream):
    """Replay files of a folder as a stream with given event times (a Beam TestStream).

    For tests and demos of windowing: the same streaming ingest as ``watch_folder``, but the
    arrivals are scripted. ``events`` is a list of ``{at: SECONDS, files: [PATH, ...]}`` (files
    relative to ``root`` arriving with event time ``start`` + SECONDS) and
    ``{watermark: SECONDS}`` (the watermark advances to ``start`` + SECONDS, closing earlier
    windows); the watermark goes to infinity after the last event."""

    name = "replay_stream"

    root: str = param(
        help="folder the event files are relative to (relative to the pipeline)", path="folder"
    )
    events: list[dict[str, Any]] = param(help="the script: {at, files} and {watermark} entries")
    start: str = param("2024-01-01T00:00:00+00:00", help="event time 0 of the script (ISO 8601)")

    def check(self) -> None:
        """Check the script's shape when the pipeline file is read."""
        super().check()
        self.script(Path("."))

    def _epoch(self) -> float:
        try:
            moment = datetime.fromisoformat(self.start.replace("Z", "+00:00"))
        except ValueError as exc:
            raise SpecError(f"{self.name}: start: not an ISO 8601 time: {self.start!r}") from exc
        if moment.tzinfo is None:
            raise SpecError(f"{self.name}: start: give a time zone, e.g. {self.start}+00:00")
        return moment.timestamp()

    def script(self, root: Path) -> list[tuple[str, Any]]:
        """The events as ``("files", (paths, epoch seconds))`` / ``("watermark", seconds)``."""
        epoch = self._epoch()
        out: list[tuple[str, Any]] = []
        for i, event in enumerate(self.events):
            keys = set(event) if isinstance(event, dict) else set()
            if keys == {"watermark"} and isinstance(event["watermark"], int | float):
                out.append(("watermark", epoch + event["watermark"]))
            elif keys == {"at", "files"} and isinstance(event["at"], int | float):
                files = event["files"]
                if not isinstance(files, list) or not all(isinstance(f, str) for f in files):
                    raise SpecError(f"{self.name}: events[{i}].files: expected a list of paths")
                out.append(("files", ([str(root / f) for f in files], epoch + event["at"])))
            else:
                raise SpecError(
                    f"{self.name}: events[{i}]: expected {{at: SECONDS, files: [...]}} or "
                    f"{{watermark: SECONDS}}, got {event!r}"
                )
        return out

    def data_fingerprint(self, ctx: StepContext) -> str | None:
        """A digest of the replayed files (names, sizes, times)."""
        script = self.script(self._root(ctx))
        paths = [Path(p) for kind, value in script if kind == "files" for p in value[0]]
        return files_digest([p for p in paths if p.exists()])

    def _arrivals(self, ctx: StepContext) -> Any:
        """The scripted TestStream of file paths."""
        from .watch import replay_stream

        return replay_stream(self.script(self._root(ctx)))


def _read_files(arrivals: Any, reader: Any, name: str) -> Any:
    """A ``PTransform``: arriving paths (timestamped) -> ``{"main": records, "rejected": ...}``;
    records keep their file's event time."""
    import apache_beam as beam

    from beamline.ingest import read_item

    @beam.ptransform_fn
    def _read(root: Any) -> dict[str, Any]:
        outs = (
            root
            | f"Arrivals ({name})" >> arrivals
            | "Read" >> beam.FlatMap(read_item, reader, "read").with_outputs(REJECTED, main=MAIN)
        )
        return {MAIN: outs[MAIN], REJECTED: outs[REJECTED]}

    return _read()
