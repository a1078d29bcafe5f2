"""Two runs side by side: what changed in the parameters, the metrics and per class.

``compare_runs(a, b)`` gives, for every step either run completed, the parameters that differ
(dotted keys), each metric of ``meta.json`` with its change, and for steps that wrote a
``metrics.json`` with ``per_class`` entries (classifier evaluators) the change of each class's
precision, recall and F1. ``previous_run(run)`` is the run the report compares against: the
latest earlier run of the same pipeline that completed a step. ``pipeline compare`` prints it;
the run report shows it as a section.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from typing import Any

from .artifacts import META_FILE, Run, list_runs, read_json

#: The per-class figures compared.
CLASS_METRICS = ("precision", "recall", "f1")
STEP_METRICS_FILE = "metrics.json"


@dataclass
class StepDiff:
    """What changed in one step between run A and run B."""

    step: str
    in_a: bool
    in_b: bool
    params: dict[str, tuple[Any, Any]] = field(default_factory=dict)
    metrics: dict[str, tuple[float | None, float | None]] = field(default_factory=dict)
    per_class: dict[str, dict[str, tuple[float | None, float | None]]] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (pairs as ``{"a", "b", "change"}``)."""
        return {
            "step": self.step,
            "in_a": self.in_a,
            "in_b": self.in_b,
            "params": {k: {"a": a, "b": b} for k, (a, b) in self.params.items()},
            "metrics": {k: _pair(a, b) for k, (a, b) in self.metrics.items()},
            "per_class": {
                c: {k: _pair(a, b) for k, (a, b) in values.items()}
                for c, values in self.per_class.items()
            },
        }


def compare_runs(a: Run, b: Run) -> list[StepDiff]:
    """The differences between run ``a`` and run ``b``, step by step (in b's order, then a's)."""
    steps = list(dict.fromkeys([*b.info.get("steps", []), *a.info.get("steps", [])]))
    out = []
    for step in steps:
        meta_a, meta_b = _meta(a, step), _meta(b, step)
        if meta_a is None and meta_b is None:
            continue
        diff = StepDiff(step, meta_a is not None, meta_b is not None)
        flat_a = _flatten(meta_a.get("params", {})) if meta_a and meta_b else {}
        flat_b = _flatten(meta_b.get("params", {})) if meta_a and meta_b else {}
        for key in sorted(set(flat_a) | set(flat_b)):
            if flat_a.get(key, _MISSING) != flat_b.get(key, _MISSING):
                diff.params[key] = (flat_a.get(key), flat_b.get(key))
        metrics_a = (meta_a or {}).get("metrics", {})
        metrics_b = (meta_b or {}).get("metrics", {})
        for key in list(dict.fromkeys([*metrics_b, *metrics_a])):
            diff.metrics[key] = (_number(metrics_a.get(key)), _number(metrics_b.get(key)))
        classes_a, classes_b = _per_class(a, step), _per_class(b, step)
        for name in list(dict.fromkeys([*classes_b, *classes_a])):
            diff.per_class[name] = {
                m: (
                    _number(classes_a.get(name, {}).get(m)),
                    _number(classes_b.get(name, {}).get(m)),
                )
                for m in CLASS_METRICS
            }
        out.append(diff)
    return out


def previous_run(run: Run) -> Run | None:
    """The latest run of the same pipeline started before ``run`` that completed a step."""
    earlier = [
        r
        for r in list_runs(run.path.parent.parent, run.path.parent.name)
        if r.run_id != run.run_id
        and (str(r.info.get("started", "")), r.run_id)
        < (str(run.info.get("started", "")), run.run_id)
        and r.steps()
    ]
    return earlier[-1] if earlier else None


def comparison_text(a: Run, b: Run, diffs: list[StepDiff]) -> str:
    """The comparison as plain text, what ``pipeline compare`` prints."""
    lines = [f"A: {a.pipeline}/{a.run_id}  ({a.path})", f"B: {b.pipeline}/{b.run_id}  ({b.path})"]
    for diff in diffs:
        where = "" if diff.in_a and diff.in_b else (" (only in A)" if diff.in_a else " (only in B)")
        lines.append(f"{diff.step}{where}")
        for key, (va, vb) in diff.params.items():
            lines.append(f"  param {key}: {_show(va)} -> {_show(vb)}")
        for key, (va, vb) in diff.metrics.items():
            lines.append(f"  {key}: {_num(va)} -> {_num(vb)}{_change(va, vb)}")
        changed = {c: v for c, v in diff.per_class.items() if _moved(v)}
        if diff.per_class:
            lines.append(f"  per class ({len(changed)} of {len(diff.per_class)} changed):")
        for name, values in changed.items():
            cells = ", ".join(f"{m} {_num(x)} -> {_num(y)}" for m, (x, y) in values.items())
            lines.append(f"    {name}: {cells}")
    return "\n".join(lines)


def comparison_html(a: Run, b: Run, diffs: list[StepDiff]) -> str:
    """The comparison as an HTML fragment (the run report's section against the previous run)."""
    e = html.escape
    out = [
        f"<p>A: <code>{e(a.pipeline)}/{e(a.run_id)}</code> &rarr; B (this run): "
        f"<code>{e(b.pipeline)}/{e(b.run_id)}</code></p>"
    ]
    params = [(d.step, k, va, vb) for d in diffs for k, (va, vb) in d.params.items()]
    out.append("<h3>parameters that changed</h3>")
    if params:
        rows = "".join(
            f"<tr><td>{e(s)}</td><td>{e(k)}</td><td>{e(_show(va))}</td><td>{e(_show(vb))}</td></tr>"
            for s, k, va, vb in params
        )
        out.append(
            f"<table><tr><th>step</th><th>parameter</th><th>A</th><th>B</th></tr>{rows}</table>"
        )
    else:
        out.append("<p>none</p>")
    metric_rows = [
        f"<tr><td>{e(d.step)}</td><td>{e(k)}</td><td>{_num(va)}</td><td>{_num(vb)}</td>"
        f"<td class='{_tone(k, va, vb)}'>{_change(va, vb).strip(' ()')}</td></tr>"
        for d in diffs
        for k, (va, vb) in d.metrics.items()
    ]
    out.append("<h3>metrics</h3>")
    head = "<tr><th>step</th><th>metric</th><th>A</th><th>B</th><th>change</th></tr>"
    out.append(f"<table>{head}{''.join(metric_rows)}</table>" if metric_rows else "<p>none</p>")
    for d in diffs:
        if not d.per_class:
            continue
        out.append(f"<h3>{e(d.step)}: per class</h3>")
        head = "<tr><th>class</th>" + "".join(
            f"<th>{m} A</th><th>{m} B</th>" for m in CLASS_METRICS
        )
        rows = []
        for name, values in d.per_class.items():
            cells = "".join(
                f"<td>{_num(x)}</td><td class='{_tone(m, x, y)}'>{_num(y)}</td>"
                for m, (x, y) in values.items()
            )
            rows.append(f"<tr><td>{e(name)}</td>{cells}</tr>")
        out.append(f"<table>{head}</tr>{''.join(rows)}</table>")
    return "".join(out)


_MISSING = object()


def _meta(run: Run, step: str) -> dict[str, Any] | None:
    path = run.path / step / META_FILE
    return read_json(path) if path.is_file() else None


def _per_class(run: Run, step: str) -> dict[str, dict[str, Any]]:
    path = run.path / step / STEP_METRICS_FILE
    if not path.is_file():
        return {}
    try:
        per_class = read_json(path).get("per_class")
    except ValueError:
        return {}
    return per_class if isinstance(per_class, dict) else {}


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict) and (value or not prefix):
        out: dict[str, Any] = {}
        for key, inner in value.items():
            out.update(_flatten(inner, f"{prefix}{key}."))
        return out
    return {prefix.rstrip("."): value}


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _pair(a: float | None, b: float | None) -> dict[str, float | None]:
    return {"a": a, "b": b, "change": None if a is None or b is None else b - a}


def _moved(values: dict[str, tuple[float | None, float | None]]) -> bool:
    return any(x != y for x, y in values.values())


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"


def _show(value: Any) -> str:
    return "(none)" if value is None else str(value)


def _change(a: float | None, b: float | None) -> str:
    if a is None or b is None or a == b:
        return ""
    return f" ({b - a:+.4g})"


def _tone(name: str, a: float | None, b: float | None) -> str:
    """``better``/``worse`` for the report's colours (losses and errors: lower is better)."""
    if a is None or b is None or a == b:
        return ""
    lower_is_better = any(w in name for w in ("loss", "error", "mae", "rmse", "mse", "gap"))
    return "better" if (b < a) == lower_is_better else "worse"
