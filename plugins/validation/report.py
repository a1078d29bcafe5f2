"""The validation report: a PNG per feature and an HTML fragment (``report/summary.html``).

Plots use matplotlib's object-oriented API on an Agg canvas: no global backend is touched.
The run report (``pipeline.report``) embeds the fragment and shows every PNG of ``report/``
itself, so the fragment holds tables only.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

MAX_PLOTS = 60
TOP_VALUES = 10


def write_report(
    folder: Path,
    statistics: Mapping[str, Any],
    rows: list[dict[str, Any]],
    problems: Iterable[Any],
    measurements: Iterable[Any],
    schema_source: str,
    *,
    plots: bool = True,
) -> list[Path]:
    """Write ``summary.html`` and (with ``plots``) one PNG per feature into ``folder``.

    Returns the PNG files written."""
    folder.mkdir(parents=True, exist_ok=True)
    images = plot_features(folder, statistics) if plots else []
    fragment = summary_html(rows, list(problems), list(measurements), schema_source)
    (folder / "summary.html").write_text(fragment, encoding="utf-8")
    return images


def plot_features(folder: Path, statistics: Mapping[str, Any]) -> list[Path]:
    """One PNG per feature comparing its distribution across splits (at most ``MAX_PLOTS``)."""
    names: list[str] = []
    for stats in statistics.values():
        for feature in stats.datasets[0].features if stats.datasets else []:
            name = ".".join(feature.path.step) or feature.name
            if name not in names:
                names.append(name)
    written = []
    for name in names[:MAX_PLOTS]:
        per_split = {
            split: _feature(stats, name)
            for split, stats in statistics.items()
            if _feature(stats, name) is not None
        }
        path = folder / f"feature_{_safe(name)}.png"
        if _plot_feature(name, per_split, path):
            written.append(path)
    return written


def _feature(stats: Any, name: str) -> Any:
    if not stats.datasets:
        return None
    for feature in stats.datasets[0].features:
        if (".".join(feature.path.step) or feature.name) == name:
            return feature
    return None


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name) or "feature"


def _plot_feature(name: str, per_split: Mapping[str, Any], path: Path) -> bool:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    if not per_split:
        return False
    kind = next(iter(per_split.values())).WhichOneof("stats")
    figure = Figure(figsize=(6.4, 3.2), dpi=90)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot(1, 1, 1)
    if kind == "num_stats":
        _numeric(axes, per_split)
        title = f"{name}: value histogram"
    elif kind == "string_stats":
        _top_values(axes, per_split)
        title = f"{name}: most frequent values"
    elif kind == "bytes_stats":
        _byte_sizes(axes, per_split)
        title = f"{name}: size in bytes"
    else:
        return False
    axes.set_title(title, fontsize=10)
    axes.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, format="png")
    return True


def _numeric(axes: Any, per_split: Mapping[str, Any]) -> None:
    for split, feature in per_split.items():
        histograms = feature.num_stats.histograms
        standard = [h for h in histograms if h.type == h.STANDARD] or list(histograms)
        if not standard:
            continue
        buckets = standard[0].buckets
        total = sum(b.sample_count for b in buckets) or 1.0
        lefts = [b.low_value for b in buckets]
        widths = [max(b.high_value - b.low_value, 1e-9) for b in buckets]
        heights = [b.sample_count / total for b in buckets]
        axes.bar(lefts, heights, width=widths, align="edge", alpha=0.45, label=split)
    axes.set_ylabel("share of values")


def _top_values(axes: Any, per_split: Mapping[str, Any]) -> None:
    first = next(iter(per_split.values())).string_stats
    values = [v.value for v in first.top_values[:TOP_VALUES]]
    positions = list(range(len(values)))
    width = 0.8 / max(len(per_split), 1)
    for i, (split, feature) in enumerate(per_split.items()):
        s = feature.string_stats
        count = s.common_stats.num_non_missing or 1
        freq = {v.value: v.frequency for v in s.top_values}
        shares = [freq.get(v, 0.0) / count for v in values]
        axes.barh([p + i * width for p in positions], shares, height=width, label=split)
    axes.set_yticks([p + 0.4 - width / 2 for p in positions])
    axes.set_yticklabels([_short(v) for v in values], fontsize=7)
    axes.invert_yaxis()
    axes.locator_params(axis="x", nbins=5)
    axes.set_xlabel("share of examples")


def _byte_sizes(axes: Any, per_split: Mapping[str, Any]) -> None:
    labels = ["min", "mean", "max"]
    width = 0.8 / max(len(per_split), 1)
    for i, (split, feature) in enumerate(per_split.items()):
        s = feature.bytes_stats
        values = [s.min_num_bytes, s.avg_num_bytes, s.max_num_bytes]
        axes.bar([p + i * width for p in range(3)], values, width=width, label=split)
    axes.set_xticks([p + 0.4 - width / 2 for p in range(3)])
    axes.set_xticklabels(labels)
    axes.set_ylabel("bytes")


def _short(value: str, limit: int = 32) -> str:
    value = value.replace("\n", " ")
    return value if len(value) <= limit else value[: limit - 1] + "…"


def _number(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def summary_html(
    rows: list[dict[str, Any]],
    problems: list[Any],
    measurements: list[Any],
    schema_source: str,
) -> str:
    """The HTML fragment: a features table, the anomalies and the skew/drift distances."""
    e = html.escape
    out = ['<section class="validation">', f"<p>Schema: {e(schema_source)}</p>"]
    out.append("<h4>Features</h4>")
    out.append(
        "<table><thead><tr><th>feature</th><th>split</th><th>type</th><th>examples</th>"
        "<th>missing %</th><th>unique</th><th>min</th><th>max</th><th>mean</th><th>note</th>"
        "</tr></thead><tbody>"
    )
    for row in sorted(rows, key=lambda r: (r["feature"], r["split"])):
        missing = "" if row["missing_pct"] is None else f"{row['missing_pct']:.1f}"
        cells = [
            row["feature"],
            row["split"],
            row["type"],
            str(row["examples"]),
            missing,
            _number(row["unique"]),
            _number(row["min"]),
            _number(row["max"]),
            _number(row["mean"]),
            row["note"],
        ]
        out.append("<tr>" + "".join(f"<td>{e(str(c))}</td>" for c in cells) + "</tr>")
    out.append("</tbody></table>")
    out.append(f"<h4>Anomalies ({len(problems)})</h4>")
    if problems:
        out.append(
            "<table><thead><tr><th>split</th><th>feature</th><th>class</th><th>type</th>"
            "<th>description</th></tr></thead><tbody>"
        )
        for p in problems:
            cells = [p.split, p.feature, p.category, p.type, _short(p.description, 600)]
            out.append("<tr>" + "".join(f"<td>{e(str(c))}</td>" for c in cells) + "</tr>")
        out.append("</tbody></table>")
    else:
        out.append("<p>No anomalies.</p>")
    out.append("<h4>Skew and drift</h4>")
    if measurements:
        out.append(
            "<table><thead><tr><th>feature</th><th>kind</th><th>split</th><th>distance</th>"
            "<th>value</th><th>threshold</th></tr></thead><tbody>"
        )
        for m in measurements:
            threshold = "not checked" if m.threshold is None else f"{m.threshold:.4g}"
            cells = [m.feature, m.kind, m.split, m.measure, f"{m.value:.4g}", threshold]
            out.append("<tr>" + "".join(f"<td>{e(str(c))}</td>" for c in cells) + "</tr>")
        out.append("</tbody></table>")
    else:
        out.append("<p>Not measured (no eval split and no previous run).</p>")
    out.append("</section>")
    return "\n".join(out) + "\n"
