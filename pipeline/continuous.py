"""Continuous training: a pipeline file whose ingest step is a stream, run as a long-lived loop.

``run_loop`` starts the stream step as an ordinary run in a background thread (its windows are
committed to the stream's durable store, ``beamline.window_store``) and watches the store. A
trigger (``continuous:`` of the file: every N new examples, every T seconds, a drift alarm of a
new window) starts a *cycle*: an ordinary run of the file's other steps over the newest K
windows, with the ingest step replaced by ``stream_windows`` (the parts of those windows) and,
once a model is blessed, three steps added: ``blessed`` (that model), ``evaluate_blessed`` (the
file's evaluator on it, same held-out split) and ``champion`` (the candidate must win); the
exporter's ``blessing`` is the champion, so only a winner is exported (and published, with the
exporter's ``publish``). The trainer warm-starts from ``blessed`` unless ``warm_start: false``.

Kill -9 anywhere: the loop's state (``<store>/loop.json``) is written atomically; a cycle is
recorded as *pending* (its parts fixed) before it runs and as done after, so a restart reruns
exactly the pending cycle, whose finished steps the executor reuses by fingerprint: no window
is lost (the store and the broker's redelivery), none is trained on twice by a repeated cycle,
and a model appears only through atomic renames (step folders, model-folder versions).

Runners: the stream runs on Beam's BundleBasedDirectRunner in streaming mode (``direct`` and
``local``); the cycles' Beam steps on the file's runner. Nothing here imports Beam or
TensorFlow.
"""

from __future__ import annotations

import copy
import json
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .artifacts import default_runs_dir
from .atomic import write_json
from .errors import GateFailed, PipelineError, SpecError
from .executor import RunResult, execute
from .live_stream import STARTED, STOP
from .planner import planning_context
from .plugins import Plugins
from .progress import Reporter
from .spec import PipelineSpec, load_spec
from .window_store import EXAMPLES, Part, WindowStore

STATE_FILE = "loop.json"
BLESSED_STEP, EVALUATE_BLESSED_STEP, CHAMPION_STEP = "blessed", "evaluate_blessed", "champion"
#: Longest wait for the stream to start reading before the loop's cycles go ahead anyway.
START_TIMEOUT = 120.0


@dataclass
class LoopResult:
    """What a loop did: its cycles (as recorded in ``loop.json``) and the stream's run."""

    cycles: list[dict[str, Any]]
    state_file: Path
    ingest: RunResult | None = None


@dataclass
class LoopState:
    """``loop.json``: cycles done, the pending one, the parts consumed, the blessed model."""

    path: Path
    cycles: list[dict[str, Any]] = field(default_factory=list)
    pending: dict[str, Any] | None = None
    consumed: list[str] = field(default_factory=list)
    blessed: dict[str, Any] | None = None

    @classmethod
    def load(cls, path: Path) -> LoopState:
        """The state at ``path`` (empty when none was written)."""
        if not path.is_file():
            return cls(path)
        data = json.loads(path.read_text(encoding="utf-8"))
        return cls(path, data["cycles"], data["pending"], data["consumed"], data["blessed"])

    def save(self) -> None:
        """Write the state atomically."""
        data = {
            "cycles": self.cycles,
            "pending": self.pending,
            "consumed": self.consumed,
            "blessed": self.blessed,
        }
        write_json(self.path, data, indent=2, ensure_ascii=False)


def stream_step(spec: PipelineSpec) -> Any:
    """The file's stream step (exactly one), or a ``SpecError``."""
    streams = [s for s in spec.steps if s.component.kind == "stream"]
    if len(streams) != 1:
        raise SpecError(
            f"{spec.path}: continuous: the file needs exactly one stream step (a redis_stream, "
            f"say) as its ingest; it has {len(streams)}"
        )
    return streams[0]


def trigger_reason(settings: Any, new: list[Part], now: float, last_cycle: float) -> str | None:
    """Why a cycle starts now over the ``new`` (not yet consumed) parts, or None."""
    count = sum(p.count for p in new)
    if not count:
        return None
    if settings.every_examples and count >= settings.every_examples:
        return f"{count} new examples (every_examples {settings.every_examples})"
    if settings.on_drift:
        drifted = sorted(
            {
                p.window
                for p in new
                for a in p.info.get("alarms", [])
                if a.get("category") == "drift"
            }
        )
        if drifted:
            return f"drift alarm in {drifted[0]}"
    if settings.every_seconds and now - last_cycle >= settings.every_seconds:
        return f"{count} new examples after {settings.every_seconds:g}s (every_seconds)"
    return None


def newest_parts(parts: list[Part], windows: int) -> list[Part]:
    """The parts of the newest ``windows`` windows (window names sort in time order)."""
    names = sorted({p.window for p in parts})[-windows:]
    return [p for p in parts if p.window in names]


def cycle_spec(
    spec: PipelineSpec,
    plugins: Plugins,
    store: Path,
    parts: list[str],
    state: LoopState,
    current: dict[str, Any],
) -> PipelineSpec:
    """The file as one cycle: the stream step reads ``parts``; the blessed model's steps and the
    champion are added; the exporter requires the champion's blessing."""
    settings = spec.continuous
    ingest = stream_step(spec).name
    blessed = state.blessed

    def edit(data: dict[str, Any]) -> None:
        data.pop("continuous", None)
        steps = data["steps"]
        for role in (settings.trainer, settings.evaluator, settings.exporter):
            if role not in steps:
                raise SpecError(
                    f"{spec.path}: continuous: no step '{role}' (set continuous.trainer, "
                    "evaluator and exporter to the file's step names)"
                )
        split = {k: getattr(settings.split, k) for k in ("train", "eval", "test", "salt")}
        steps[ingest] = {
            "component": "stream_windows",
            "store": str(store),
            "parts": parts,
            "classes": list(settings.classes),
            "split": split,
        }
        steps[settings.evaluator] = {**steps[settings.evaluator], "compare_to_last_blessed": False}
        champion: dict[str, Any] = {
            "component": "champion",
            "candidate": settings.evaluator,
            "metric": settings.metric,
            "min_gain": settings.min_gain,
            "history": str(state.path),
            "current": current,
        }
        if blessed is not None:
            steps[BLESSED_STEP] = {"component": "blessed_model", "path": blessed["model"]}
            evaluate_blessed = copy.deepcopy(steps[settings.evaluator])
            evaluate_blessed["model"] = BLESSED_STEP
            steps[EVALUATE_BLESSED_STEP] = evaluate_blessed
            champion["blessed"] = EVALUATE_BLESSED_STEP
            if settings.warm_start:
                warm = {"from": BLESSED_STEP, "freeze": list(settings.freeze)}
                steps[settings.trainer] = {**steps[settings.trainer], "warm_start": warm}
        steps[CHAMPION_STEP] = champion
        steps[settings.exporter] = {**steps[settings.exporter], "blessing": CHAMPION_STEP}

    return load_spec(spec.path, plugins, spec.overrides, spec.runner.name, edit=edit)


class Loop:
    """One loop over a continuous file (see the module docstring)."""

    def __init__(
        self,
        spec: PipelineSpec,
        plugins: Plugins,
        runs_dir: str | Path | None,
        reporter: Reporter,
        log: Callable[[str], None],
    ) -> None:
        if spec.continuous is None:
            raise SpecError(f"{spec.path}: no 'continuous:' section")
        self.spec, self.plugins, self.reporter, self.log = spec, plugins, reporter, log
        self.runs_dir = Path(runs_dir) if runs_dir is not None else default_runs_dir()
        self.settings = spec.continuous
        step = stream_step(spec)
        ctx = planning_context(step, spec, self.runs_dir / spec.name)
        store = step.component.store(ctx)
        if store is None:
            raise SpecError(
                f"{spec.path}: continuous: stream '{step.component.name}' keeps no durable "
                "window store; use a broker stream (redis_stream)"
            )
        self.store = WindowStore(store)
        self.state = LoopState.load(self.store.root / STATE_FILE)
        self.ingest_result: RunResult | None = None
        self.ingest_error: BaseException | None = None

    def _ingest(self) -> None:
        try:
            self.ingest_result = execute(
                self.spec, self.plugins, runs_dir=self.runs_dir, until=stream_step(self.spec).name
            )
        except BaseException as exc:  # surfaced by the loop
            self.ingest_error = exc

    def run(self) -> LoopResult:
        """Run until the stream ended and no trigger fires, or ``max_cycles`` cycles ran.

        The stream starts first: cycles (a resumed pending one too) wait until it is reading,
        so the two threads never import their libraries (Beam, TensorFlow) at the same time."""
        STOP.clear()
        STARTED.clear()
        settle_imports()
        thread = threading.Thread(target=self._ingest, name="stream ingest", daemon=True)
        thread.start()
        try:
            _wait_started(thread, START_TIMEOUT)
            self._loop(thread)
        finally:  # end the stream: its windows are written and acknowledged, its run completes
            STOP.set()
            thread.join(timeout=120)
        if self.ingest_error is not None and not isinstance(self.ingest_error, KeyboardInterrupt):
            raise self.ingest_error
        return LoopResult(self.state.cycles, self.state.path, self.ingest_result)

    def _loop(self, thread: threading.Thread) -> None:
        settings = self.settings
        self.log(f"loop: windows in {self.store.root}; a cycle on {_triggers(settings)}")
        if self.state.pending is not None:
            self.log(f"loop: resuming pending cycle {self.state.pending['cycle']}")
            self._cycle(self.state.pending)
        last_cycle = time.time()
        while not (settings.max_cycles and len(self.state.cycles) >= settings.max_cycles):
            ended = not thread.is_alive()
            if self.ingest_error is not None:
                raise self.ingest_error
            parts = [p for p in self.store.parts() if p.kind == EXAMPLES]
            consumed = set(self.state.consumed)
            new = [p for p in parts if p.key not in consumed]
            reason = trigger_reason(settings, new, time.time(), last_cycle)
            if reason is not None:
                self._start_cycle(parts, new, reason)
                last_cycle = time.time()
                continue
            if ended:
                break
            time.sleep(settings.poll_seconds)

    def _start_cycle(self, parts: list[Part], new: list[Part], reason: str) -> None:
        chosen = newest_parts(parts, self.settings.windows)
        drift = sum(
            1 for p in chosen for a in p.info.get("alarms", []) if a.get("category") == "drift"
        )
        pending = {
            "cycle": len(self.state.cycles) + 1,
            "trigger": reason,
            "parts": [p.key for p in chosen],
            "windows": sorted({p.window for p in chosen}),
            "consumed": [p.key for p in parts],
            "examples": sum(p.count for p in chosen),
            "new_examples": sum(p.count for p in new),
            "drift_alarms": drift,
            "parent": self.state.blessed,
        }
        self.state.pending = pending
        self.state.save()
        self._cycle(pending)

    def _cycle(self, pending: dict[str, Any]) -> None:
        n = pending["cycle"]
        self.log(
            f"cycle {n}: {pending['trigger']}; {pending['examples']} examples of "
            f"{len(pending['windows'])} windows"
        )
        current = {k: pending[k] for k in ("cycle", "examples", "drift_alarms", "trigger")}
        spec = cycle_spec(
            self.spec, self.plugins, self.store.root, pending["parts"], self.state, current
        )
        entry = {k: v for k, v in pending.items() if k not in ("consumed", "parts")}
        try:
            result = execute(spec, self.plugins, runs_dir=self.runs_dir, reporter=self.reporter)
            run_path = result.run.path
            entry.update(outcome="blessed", run=result.run.run_id)
        except GateFailed as exc:
            run_path = _run_of(exc)
            step = _failed_step(exc)
            won = step == self.settings.exporter
            entry.update(
                outcome="not blessed" if won else f"skipped: gate of step '{step}'",
                reason=_reason(exc),
                run=run_path.name if run_path else None,
            )
        except PipelineError as exc:
            run_path = _run_of(exc)
            entry.update(
                outcome="failed",
                reason=_reason(exc),
                run=run_path.name if run_path else None,
            )
        if run_path is not None:
            entry.update(_scores(run_path, self.settings))
        if entry["outcome"] == "blessed" and run_path is not None:
            export = run_path / self.settings.exporter
            meta = json.loads((export / "meta.json").read_text(encoding="utf-8"))
            version = meta.get("metrics", {}).get("published_version")
            self.state.blessed = {
                "run": run_path.name,
                "model": str(run_path / self.settings.trainer),
                "export": str(export),
                "version": int(version) if version is not None else None,
                "cycle": n,
            }
            entry["version"] = self.state.blessed["version"]
        self.state.cycles.append(entry)
        done = set(self.state.consumed) | set(pending["consumed"])
        self.state.consumed = sorted(done)
        self.state.pending = None
        self.state.save()
        detail = f" (published version {entry['version']})" if entry.get("version") else ""
        if entry.get("reason"):
            detail = f": {entry['reason']}"
        self.log(f"cycle {n}: {entry['outcome']}{detail}")


def settle_imports() -> None:
    """Import ``distutils`` once, before the loop starts its second thread.

    setuptools' ``distutils`` shim (``_distutils_hack``, a ``.pth`` hook of every virtualenv
    with setuptools) imports a whole package tree from inside its ``find_spec``, which Python
    3.11 calls holding the global import lock. The first ``import distutils`` (TensorFlow's
    ``__init__`` does one) in one thread while another thread imports a module of that tree
    (Beam's start imports ``http.client``) deadlocks both for good: a restarted loop resuming a
    cycle at its export hung so, its stream never read. Once imported, nothing runs there."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the standard library's own distutils is deprecated
        try:
            import distutils  # noqa: F401
        except ImportError:  # Python 3.12+ without setuptools: no shim either
            pass


def _wait_started(thread: threading.Thread, timeout: float) -> None:
    """Until the stream's Beam pipeline is reading its polls (``STARTED``), the ingest thread
    ended (it failed: the loop reports it), or ``timeout`` seconds passed."""
    deadline = time.monotonic() + timeout
    while thread.is_alive() and time.monotonic() < deadline:
        if STARTED.wait(0.2):
            return


def _triggers(settings: Any) -> str:
    parts = []
    if settings.every_examples:
        parts.append(f"{settings.every_examples} new examples")
    if settings.every_seconds:
        parts.append(f"{settings.every_seconds:g}s")
    if settings.on_drift:
        parts.append("a drift alarm")
    return ", ".join(parts)


def _scores(run_path: Path, settings: Any) -> dict[str, Any]:
    path = run_path / CHAMPION_STEP / "metrics.json"
    if not path.is_file():
        return {}
    data = json.loads(path.read_text(encoding="utf-8"))
    return {
        f"candidate_{settings.metric}": data.get("candidate"),
        f"blessed_{settings.metric}": data.get("blessed"),
    }


def _reason(exc: Exception) -> str:
    """The first line of a step failure, without the executor's 'step ... failed: ' prefix."""
    return str(exc).splitlines()[0].split(" failed: ", 1)[-1]


def _failed_step(exc: Exception) -> str | None:
    match = re.match(r"step '([^']+)'", str(exc))
    return match.group(1) if match else None


def _run_of(exc: Exception) -> Path | None:
    match = re.search(r"run directory: (.+)$", str(exc), re.MULTILINE)
    return Path(match.group(1).strip()) if match else None


def run_loop(
    spec: PipelineSpec,
    plugins: Plugins,
    *,
    runs_dir: str | Path | None = None,
    reporter: Reporter | None = None,
    log: Callable[[str], None] = print,
) -> LoopResult:
    """Run a continuous pipeline file's loop (see the module docstring)."""
    return Loop(spec, plugins, runs_dir, reporter or Reporter(), log).run()
