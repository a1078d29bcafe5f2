"""The two steps a continuous cycle adds around its evaluator: the blessed model, and the match.

``blessed_model`` makes the currently blessed model (a trainer step of an earlier cycle) a step
of this run, so the pipeline's own evaluator can score it on this cycle's held-out examples;
``champion`` compares the two evaluations and blesses the candidate only when it wins, which
the exporter's ``blessing`` then requires.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

from beamline import (
    Evaluation,
    Evaluator,
    Input,
    PipelineError,
    StepContext,
    StepResult,
    Trainer,
    param,
)
from beamline.artifacts import META_FILE, write_json_atomic

BLESSING_FILE = "blessing.json"
METRICS_FILE = "metrics.json"


class BlessedModel(Trainer):
    """The trained model of an earlier run's trainer step (the blessed one), as this run's step.

    Links the folder's files (the model and its ``model.json``); nothing is trained."""

    name = "blessed_model"
    path: str = param(help="the earlier trainer step's folder (runs/<pipeline>/<run>/<step>)")

    def data_fingerprint(self, ctx: StepContext) -> str | None:
        """The earlier step's own fingerprint (its folder never changes once complete)."""
        meta = self._folder(ctx) / META_FILE
        return str(json.loads(meta.read_text(encoding="utf-8")).get("fingerprint", ""))

    def _folder(self, ctx: StepContext) -> Path:
        folder = ctx.resolve(self.path)
        if not (folder / META_FILE).is_file():
            raise PipelineError(f"{self.name}: no completed trainer step at {folder}")
        return folder

    def run(self, ctx: StepContext) -> StepResult:
        """Link the earlier model's files into this step."""
        folder = self._folder(ctx)
        for source in folder.rglob("*"):
            target = ctx.output_dir / source.relative_to(folder)
            if source.is_dir() or source.name == META_FILE:
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.link(source, target)
            except OSError:
                shutil.copy2(source, target)
        return StepResult(summary=f"the blessed model of {folder.parent.name}/{folder.name}")


class Champion(Evaluator):
    """Bless the candidate only when it beats the blessed model on the same examples.

    ``candidate`` and ``blessed`` are evaluator steps that scored the new model and the
    currently blessed one on this run's held-out split. The candidate wins when its own
    evaluator blessed it (its thresholds) and its ``metric`` is at least the blessed model's
    plus ``min_gain`` (for a metric named ``*loss``: at most, minus ``min_gain``). Without a
    blessed model (the first cycle) the candidate's own blessing decides."""

    name = "champion"
    candidate: Input[Evaluation] = param(help="the evaluator step of the new model")
    blessed: Input[Evaluation] | None = param(None, help="the evaluator step of the blessed one")
    metric: str = param("accuracy", help="the metric compared (metrics.json of both)")
    min_gain: float = param(0.0, help="how much better the candidate must be", ge=0)
    history: str = param("", help="a continuous loop's loop.json: the report shows its cycles")
    current: dict[str, Any] = param({}, help="this cycle's entry for the history (the loop's)")

    def run(self, ctx: StepContext) -> StepResult:
        """Compare, write ``blessing.json`` and ``metrics.json``."""
        mine = _evaluation(ctx, "candidate")
        reasons = list(mine["blessing"].get("reasons", []))
        value = _metric(mine["metrics"], self.metric, self.candidate)
        result: dict[str, Any] = {"candidate": value, "metric": self.metric}
        if self.blessed:
            theirs = _evaluation(ctx, "blessed")
            other = _metric(theirs["metrics"], self.metric, self.blessed)
            result["blessed"] = other
            lower = self.metric.endswith("loss")
            wins = value <= other - self.min_gain if lower else value >= other + self.min_gain
            if not wins:
                reasons.append(
                    f"{self.metric} {value:.4f} does not beat the blessed model's {other:.4f}"
                    + (f" by {self.min_gain:g}" if self.min_gain else "")
                )
        blessing = {"blessed": not reasons, "reasons": reasons, "comparison": result}
        write_json_atomic(ctx.output_dir / BLESSING_FILE, blessing)
        write_json_atomic(ctx.output_dir / METRICS_FILE, result)
        if self.history:
            self._write_history(ctx, result, reasons)
        against = f" vs blessed {result['blessed']:.4f}" if "blessed" in result else ""
        verdict = "candidate wins" if not reasons else "blessed model stays: " + "; ".join(reasons)
        metrics = {f"candidate_{self.metric}": value, "blessed": 0.0 if reasons else 1.0}
        if "blessed" in result:
            metrics[f"blessed_{self.metric}"] = result["blessed"]
        return StepResult(metrics=metrics, summary=f"{self.metric} {value:.4f}{against}: {verdict}")

    def _write_history(self, ctx: StepContext, result: dict[str, Any], reasons: list[str]) -> None:
        from .history import history_rows, write_history

        path = ctx.resolve(self.history)
        cycles = json.loads(path.read_text(encoding="utf-8"))["cycles"] if path.is_file() else []
        current = dict(self.current)
        current[f"candidate_{self.metric}"] = result["candidate"]
        current[f"blessed_{self.metric}"] = result.get("blessed")
        current["outcome"] = "blessed" if not reasons else "not blessed"
        current["run"] = ctx.run.run_id
        write_history(ctx.output_dir, history_rows(cycles, current), self.metric)


def _evaluation(ctx: StepContext, name: str) -> dict[str, Any]:
    artifact = ctx.input(name)
    out = {}
    for key, file in (("metrics", METRICS_FILE), ("blessing", BLESSING_FILE)):
        path = artifact.file(file)
        if not path.is_file():
            raise PipelineError(f"step '{artifact.step}' wrote no {file}: is it an evaluator?")
        out[key] = json.loads(path.read_text(encoding="utf-8"))
    return out


def _metric(metrics: dict[str, Any], name: str, step: str | None) -> float:
    value = metrics.get(name)
    if not isinstance(value, int | float):
        raise PipelineError(f"step '{step}' has no metric '{name}' in {METRICS_FILE}")
    return float(value)
