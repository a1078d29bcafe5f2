"""The validation report's feature plots drawn with matplotlib, for the ``libraries`` case.

The plots ``beamline_plugins.validation.report`` draws as hand-written SVG (same content:
histograms, top values, byte sizes per split, legend), here drawn with matplotlib's
object-oriented API on an Agg canvas and saved as SVG, as the report did before it wrote SVG
itself. ``plot_features`` has the report's signature so a benchmark worker can swap it in.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from beamline_plugins.validation.report import MAX_PLOTS, TOP_VALUES, _features, _safe, _short


def plot_features(
    folder: Path, statistics: Mapping[str, Any], skip: set[str] | None = None
) -> list[Path]:
    """One matplotlib SVG per feature comparing its distribution across splits, but none for
    the features in ``skip`` (shown otherwise, as the report's own plotter does)."""
    by_split = {split: _features(stats) for split, stats in statistics.items()}
    names: list[str] = []
    for features in by_split.values():
        names += [name for name in features if name not in names]
    written = []
    for name in [n for n in names if n not in (skip or set())][:MAX_PLOTS]:
        per_split = {s: f[name] for s, f in by_split.items() if name in f}
        path = folder / f"feature_{_safe(name)}.svg"
        if _plot_feature(name, per_split, path):
            written.append(path)
    return written


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
    figure.savefig(path, format="svg")
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
