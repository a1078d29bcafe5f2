"""What a search leaves for people: every trial as a record, the best trials, parameter
importances, and the plots and HTML fragment of the step's ``report/``.

Importances: Optuna's fANOVA when scikit-learn is installed (it is not a dependency), else
Optuna's PED-ANOVA; with too few trials for either, none (the report says why).
"""

from __future__ import annotations

import html
import importlib.util
import json
import math
import warnings
from pathlib import Path
from typing import Any

from beamline_plugins.training.plots import pyplot, save_figure

from .space import to_values

BEST_SHOWN = 5


def trial_records(study: Any, dims: list[Any], interrupted: set[int]) -> list[dict[str, Any]]:
    """One JSON-ready record per trial: number, state, values, objective, metric per epoch,
    seconds, peak memory of its process, and why it failed or was retried."""
    out = []
    for trial in study.get_trials(deepcopy=False):
        try:
            values = to_values(dims, trial.params)
        except KeyError:  # a queued trial not asked yet
            values = dict(trial.params)
        record: dict[str, Any] = {
            "number": trial.number,
            "state": trial.state.name.lower(),
            "values": values,
            "value": trial.value,
            "epochs": {str(k): v for k, v in sorted(trial.intermediate_values.items())},
        }
        record.update(trial.user_attrs)
        if trial.number in interrupted:
            record["interrupted"] = True
        out.append(record)
    return out


def best_trials(records: list[dict[str, Any]], direction: str, n: int = BEST_SHOWN) -> list[dict]:
    """The ``n`` best complete trials, best first."""
    complete = [r for r in records if r["state"] == "complete" and r["value"] is not None]
    return sorted(complete, key=lambda r: r["value"], reverse=direction == "maximize")[:n]


def importances(study: Any) -> tuple[dict[str, float], str]:
    """Parameter importances (summing to 1) and the method, or ``({}, why not)``."""
    import optuna
    from optuna.trial import TrialState

    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if len(complete) < 3:
        return {}, f"not computed: {len(complete)} complete trial(s), at least 3 needed"
    if importlib.util.find_spec("sklearn") is not None:
        evaluator, method = optuna.importance.FanovaImportanceEvaluator(seed=0), "fANOVA"
    else:
        evaluator, method = optuna.importance.PedAnovaImportanceEvaluator(), "PED-ANOVA"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            found = optuna.importance.get_param_importances(study, evaluator=evaluator)
    except (ValueError, RuntimeError, ZeroDivisionError) as exc:
        return {}, f"not computed: {method} failed: {exc}"
    total = sum(found.values())
    if not total or not all(math.isfinite(v) for v in found.values()):
        return {}, f"not computed: {method} found no differences between the trials"
    return {k: float(v) / total for k, v in found.items()}, method


def write_report(
    folder: Path,
    records: list[dict[str, Any]],
    dims: list[Any],
    study: Any,
    metric: str,
    direction: str,
) -> dict[str, Any]:
    """Write ``summary.html`` and the plots into ``folder``; return what ``meta.json`` keeps."""
    folder.mkdir(parents=True, exist_ok=True)
    best = best_trials(records, direction)
    weights, method = importances(study)
    history = _history(records, direction)
    _plot_history(history, metric, folder / "optimization_history.png")
    _plot_epochs(records, metric, folder / "trial_epochs.png")
    if weights:
        _plot_importances(weights, method, folder / "param_importances.png")
    fragment = _fragment(best, weights, method, records, metric, [d.key for d in dims])
    (folder / "summary.html").write_text(fragment, encoding="utf-8")
    return {
        "metric": metric,
        "direction": direction,
        "best_trials": [
            {"trial": r["number"], "value": r["value"], "values": r["values"]} for r in best
        ],
        "importances": weights,
        "importance_method": method,
        "history": history,
    }


def _history(records: list[dict[str, Any]], direction: str) -> list[dict[str, Any]]:
    """Per trial, in order: its state, objective and the best objective so far."""
    out, best = [], None
    for r in records:
        if r.get("interrupted") or r["state"] in ("running", "waiting"):
            continue
        value = r["value"] if r["state"] == "complete" else None
        if value is not None and (
            best is None or (value > best if direction == "maximize" else value < best)
        ):
            best = value
        out.append({"trial": r["number"], "state": r["state"], "value": value, "best": best})
    return out


def _plot_history(history: list[dict[str, Any]], metric: str, path: Path) -> None:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.5))
    done = [h for h in history if h["value"] is not None]
    ax.scatter([h["trial"] for h in done], [h["value"] for h in done], label="trial", zorder=3)
    with_best = [h for h in history if h["best"] is not None]
    ax.step(
        [h["trial"] for h in with_best],
        [h["best"] for h in with_best],
        where="post",
        color="tab:red",
        label="best so far",
    )
    pruned = [h["trial"] for h in history if h["state"] == "pruned"]
    if pruned and done:
        low = min(h["value"] for h in done)
        ax.scatter(pruned, [low] * len(pruned), marker="x", color="grey", label="pruned")
    ax.set_xlabel("trial")
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.set_ylabel(metric)
    ax.set_title("optimisation history")
    ax.legend()
    save_figure(fig, path)


def _plot_epochs(records: list[dict[str, Any]], metric: str, path: Path) -> None:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for r in records:
        if not r["epochs"] or r.get("interrupted"):
            continue
        epochs = [int(k) for k in r["epochs"]]
        style = "--" if r["state"] == "pruned" else "-"
        ax.plot(epochs, list(r["epochs"].values()), style, marker=".", alpha=0.7)
    ax.set_xlabel("epoch")
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.set_ylabel(metric)
    ax.set_title(f"{metric} per epoch (dashed: pruned)")
    save_figure(fig, path)


def _plot_importances(weights: dict[str, float], method: str, path: Path) -> None:
    plt = pyplot()
    names = list(weights)[::-1]
    fig, ax = plt.subplots(figsize=(6, 0.5 + 0.45 * len(names)))
    ax.barh(names, [weights[n] for n in names])
    ax.set_xlabel(f"importance ({method})")
    ax.set_title("parameter importances")
    save_figure(fig, path)


def _fragment(
    best: list[dict[str, Any]],
    weights: dict[str, float],
    method: str,
    records: list[dict[str, Any]],
    metric: str,
    keys: list[str],
) -> str:
    counted = [r for r in records if not r.get("interrupted")]
    states = {s: sum(1 for r in counted if r["state"] == s) for s in ("complete", "pruned", "fail")}
    head = "".join(f"<th>{html.escape(k)}</th>" for k in keys)
    rows = "".join(
        f"<tr><td>{r['number']}</td><td>{r['value']:.4g}</td>"
        + "".join(f"<td>{html.escape(json.dumps(r['values'].get(k)))}</td>" for k in keys)
        + f"<td>{r.get('seconds', '')}</td></tr>"
        for r in best
    )
    parts = [
        f"<p>{len(counted)} trials: {states['complete']} complete, {states['pruned']} pruned, "
        f"{states['fail']} failed"
        + (
            f"; {len(records) - len(counted)} interrupted and retried"
            if len(counted) < len(records)
            else ""
        )
        + "</p>",
        f"<h3>best trials</h3><table><tr><th>trial</th><th>{html.escape(metric)}</th>{head}"
        f"<th>seconds</th></tr>{rows}</table>",
    ]
    if weights:
        cells = "".join(
            f"<tr><td>{html.escape(k)}</td><td>{v:.3f}</td></tr>" for k, v in weights.items()
        )
        parts.append(
            f"<h3>parameter importances ({html.escape(method)})</h3>"
            f"<table><tr><th>parameter</th><th>importance</th></tr>{cells}</table>"
        )
    else:
        parts.append(f"<p>parameter importances {html.escape(method)}</p>")
    return "".join(parts)
