"""The validation report: an SVG plot per feature and an HTML fragment (``report/summary.html``).

Plots are small SVG files written by hand (bars, axes, ticks, a legend): no plotting library is
imported and a feature costs well under a millisecond. Kept instead of matplotlib (a dependency
anyway) because the benchmark shows the library costs more (bench ``libraries`` case, the same
plots drawn by matplotlib as SVG, medians of 5 interleaved runs, three runs): the 11 plots of the
diabetes table take 2-7 ms here against 0.9-2.2 s with matplotlib, its whole ``tfdv`` step
0.12-0.35 s against 1.0-2.6 s; the digits' 2 plots 0.5 ms against 0.12-0.30 s. The run report
(``beamline.run_report``) embeds the fragment and shows every plot of ``report/`` itself, so the
fragment holds tables, and for an image feature a grid of sample images per class (inline
``data:`` URIs, read from the examples) in place of the plot of its byte sizes.
"""

from __future__ import annotations

import html
import math
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

MAX_PLOTS = 60
TOP_VALUES = 10
#: Images per class in the sample grid of an image feature.
SAMPLES_PER_CLASS = 8
#: Plot size in pixels (the size of the former 6.4 x 3.2 inch, 90 dpi PNGs).
WIDTH, HEIGHT = 576, 288
#: One colour per split, in split order (matplotlib's default cycle, for familiar reports).
COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2")


def write_report(
    folder: Path,
    statistics: Mapping[str, Any],
    rows: list[dict[str, Any]],
    problems: Iterable[Any],
    measurements: Iterable[Any],
    schema_source: str,
    *,
    plots: bool = True,
    examples: Any = None,
) -> list[Path]:
    """Write ``summary.html`` and (with ``plots``) one SVG plot per feature into ``folder``.

    Given the ``examples`` artifact, an image feature gets a grid of sample images per class
    (inline in the fragment) instead of a plot of its byte sizes. Returns the plot files
    written."""
    folder.mkdir(parents=True, exist_ok=True)
    image_features = _image_features(examples) if examples is not None else []
    shown = {name: image_grid(examples, name) for name in image_features} if plots else {}
    images = plot_features(folder, statistics, skip=set(shown)) if plots else []
    fragment = summary_html(rows, list(problems), list(measurements), schema_source)
    (folder / "summary.html").write_text("".join(shown.values()) + fragment, encoding="utf-8")
    return images


def _image_features(examples: Any) -> list[str]:
    from beamline.examples import feature_spec

    features = feature_spec(examples).get("features", {})
    return [name for name, f in features.items() if f.get("modality") == "image"]


def image_grid(examples: Any, feature: str, per_class: int = SAMPLES_PER_CLASS) -> str:
    """An HTML grid of up to ``per_class`` images of each class (the first ones of the train
    split, else of the first split), as inline ``data:`` URIs: what the data looks like."""
    import base64

    from beamline.examples import feature_spec, iter_examples

    spec = feature_spec(examples)
    label = spec.get("label")
    split = "train" if "train" in spec.get("splits", {}) else next(iter(spec.get("splits", {})))
    classes = [str(c) for c in spec.get("classes") or []]
    found: dict[str, list[bytes]] = {c: [] for c in classes}
    for record in iter_examples(examples, split):
        values = record.get(label) if label else None
        name = _label_text(values[0], classes) if values else ""
        if not record.get(feature):
            continue
        samples = found.setdefault(name, [])
        if len(samples) < per_class:
            samples.append(record[feature][0])
        if found and all(len(v) >= per_class for v in found.values()):
            break
    rows = []
    for name, samples in found.items():
        cells = "".join(
            f"<img class='sample' src='data:{_mime(data)};base64,"
            f"{base64.b64encode(data).decode('ascii')}' alt='{html.escape(name)}'>"
            for data in samples
        )
        rows.append(f"<tr><th>{html.escape(name)}</th><td>{cells}</td></tr>")
    return (
        f"<h4>{html.escape(feature)}: samples per class ({html.escape(split)} split)</h4>"
        f"<table class='samples'>{''.join(rows)}</table>\n"
    )


def _label_text(value: Any, classes: list[str]) -> str:
    if isinstance(value, int) and 0 <= value < len(classes):
        return classes[value]
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _mime(data: bytes) -> str:
    if data[:3] == b"\xff\xd8\xff":
        return "image/jpeg"
    if data[:4] == b"GIF8":
        return "image/gif"
    if data[:2] == b"BM":
        return "image/bmp"
    return "image/png"


def plot_features(
    folder: Path, statistics: Mapping[str, Any], skip: set[str] | None = None
) -> list[Path]:
    """One SVG per feature comparing its distribution across splits (at most ``MAX_PLOTS``),
    but none for the features in ``skip``."""
    by_split = {split: _features(stats) for split, stats in statistics.items()}
    names: list[str] = []
    for features in by_split.values():
        names += [name for name in features if name not in names]
    written = []
    for name in [n for n in names if n not in (skip or set())][:MAX_PLOTS]:
        per_split = {s: f[name] for s, f in by_split.items() if name in f}
        svg = feature_svg(name, per_split)
        if svg is not None:
            path = folder / f"feature_{_safe(name)}.svg"
            path.write_text(svg, encoding="utf-8")
            written.append(path)
    return written


def _features(stats: Any) -> dict[str, Any]:
    """The features of a statistics list's first dataset, by name (path steps joined by dots)."""
    if not stats.datasets:
        return {}
    return {".".join(f.path.step) or f.name: f for f in stats.datasets[0].features}


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name) or "feature"


def feature_svg(name: str, per_split: Mapping[str, Any]) -> str | None:
    """The SVG plot of one feature (``FeatureNameStatistics`` per split); None for no plot.

    Numbers: the standard histogram's share of values per bucket; strings: the shares of the
    most frequent values; bytes (images, audio): min, mean and max size."""
    if not per_split:
        return None
    kind = next(iter(per_split.values())).WhichOneof("stats")
    if kind == "num_stats":
        return _numeric(f"{name}: value histogram", per_split)
    if kind == "string_stats":
        return _top_values(f"{name}: most frequent values", per_split)
    if kind == "bytes_stats":
        return _byte_sizes(f"{name}: size in bytes", per_split)
    return None


def _numeric(title: str, per_split: Mapping[str, Any]) -> str:
    bars: dict[str, list[tuple[float, float, float]]] = {}
    for split, feature in per_split.items():
        histograms = feature.num_stats.histograms
        standard = [h for h in histograms if h.type == h.STANDARD] or list(histograms)
        if not standard:
            continue
        buckets = [b for b in standard[0].buckets if math.isfinite(b.low_value + b.high_value)]
        total = sum(b.sample_count for b in buckets) or 1.0
        bars[split] = [(b.low_value, b.high_value, b.sample_count / total) for b in buckets]
    edges = [x for rows in bars.values() for low, high, _ in rows for x in (low, high)]
    x_lo, x_hi = (min(edges), max(edges)) if edges else (0.0, 1.0)
    if x_hi <= x_lo:
        x_lo, x_hi = x_lo - 0.5, x_hi + 0.5
    y_hi = max((share for rows in bars.values() for _, _, share in rows), default=0.0)
    chart = _Chart(title, (x_lo, x_hi), (0.0, 1.05 * y_hi or 1.0), left=62)
    for i, rows in enumerate(bars.values()):
        for low, high, share in rows:
            chart.rect(low, 0.0, max(high, low), share, COLOURS[i % len(COLOURS)], 0.45)
    chart.x_ticks(_ticks(x_lo, x_hi))
    chart.y_ticks(_ticks(0.0, y_hi or 1.0), label="share of values")
    return chart.svg(list(bars))


def _top_values(title: str, per_split: Mapping[str, Any]) -> str:
    first = next(iter(per_split.values())).string_stats
    values = [v.value for v in first.top_values[:TOP_VALUES]]
    shares: dict[str, list[float]] = {}
    for split, feature in per_split.items():
        s = feature.string_stats
        count = s.common_stats.num_non_missing or 1
        freq = {v.value: v.frequency for v in s.top_values}
        shares[split] = [freq.get(v, 0.0) / count for v in values]
    x_hi = max((x for row in shares.values() for x in row), default=0.0) or 1.0
    rows = max(len(values), 1)
    chart = _Chart(title, (0.0, 1.05 * x_hi), (float(rows), 0.0), left=170)
    width = 0.8 / max(len(shares), 1)
    for i, row in enumerate(shares.values()):
        for position, share in enumerate(row):
            top = position + 0.1 + i * width
            chart.rect(0.0, top, share, top + width, COLOURS[i % len(COLOURS)])
    chart.x_ticks(_ticks(0.0, x_hi), label="share of examples")
    chart.y_labels([(p + 0.5, _short(v)) for p, v in enumerate(values)])
    return chart.svg(list(shares))


def _byte_sizes(title: str, per_split: Mapping[str, Any]) -> str:
    sizes = {
        split: [
            f.bytes_stats.min_num_bytes,
            f.bytes_stats.avg_num_bytes,
            f.bytes_stats.max_num_bytes,
        ]
        for split, f in per_split.items()
    }
    y_hi = max((v for row in sizes.values() for v in row), default=0.0) or 1.0
    chart = _Chart(title, (0.0, 3.0), (0.0, 1.05 * y_hi), left=62)
    width = 0.8 / max(len(sizes), 1)
    for i, row in enumerate(sizes.values()):
        for position, value in enumerate(row):
            left = position + 0.1 + i * width
            chart.rect(left, 0.0, left + width, value, COLOURS[i % len(COLOURS)])
    chart.x_labels([(p + 0.5, label) for p, label in enumerate(("min", "mean", "max"))])
    chart.y_ticks(_ticks(0.0, y_hi), label="bytes")
    return chart.svg(list(sizes))


class _Chart:
    """A plot area in data coordinates on a ``WIDTH`` x ``HEIGHT`` SVG canvas."""

    def __init__(
        self, title: str, x: tuple[float, float], y: tuple[float, float], *, left: int
    ) -> None:
        self.title, self.x, self.y = title, x, y
        self.left, self.right, self.top, self.bottom = left, WIDTH - 84, 30, HEIGHT - 40
        self.parts: list[str] = []

    def px(self, value: float) -> float:
        """The canvas x of data ``value``."""
        lo, hi = self.x
        return self.left + (value - lo) / ((hi - lo) or 1.0) * (self.right - self.left)

    def py(self, value: float) -> float:
        """The canvas y of data ``value`` (data grows upwards unless the range is reversed)."""
        lo, hi = self.y
        return self.bottom - (value - lo) / ((hi - lo) or 1.0) * (self.bottom - self.top)

    def rect(
        self, x0: float, y0: float, x1: float, y1: float, colour: str, opacity: float = 1.0
    ) -> None:
        """A filled rectangle between data corners (x0, y0) and (x1, y1)."""
        a, b = sorted((self.px(x0), self.px(x1)))
        c, d = sorted((self.py(y0), self.py(y1)))
        fill = f' fill-opacity="{opacity:g}"' if opacity < 1.0 else ""
        self.parts.append(
            f'<rect x="{a:.1f}" y="{c:.1f}" width="{max(b - a, 0.5):.1f}" '
            f'height="{d - c:.1f}" fill="{colour}"{fill}/>'
        )

    def x_ticks(self, ticks: list[float], label: str = "") -> None:
        """Tick marks and numbers along the bottom axis, and an axis label."""
        self.x_labels([(t, _tick_text(t)) for t in ticks])
        if label:
            self._text((self.left + self.right) / 2, HEIGHT - 6, label, "middle")

    def x_labels(self, labels: list[tuple[float, str]]) -> None:
        """Text labels under the bottom axis at data positions."""
        for value, text in labels:
            x = self.px(value)
            self.parts.append(_line(x, self.bottom, x, self.bottom + 4))
            self._text(x, self.bottom + 16, text, "middle")

    def y_ticks(self, ticks: list[float], label: str = "") -> None:
        """Tick marks and numbers along the left axis, and an axis label."""
        self.y_labels([(t, _tick_text(t)) for t in ticks])
        if label:
            x, y = 12, (self.top + self.bottom) / 2
            self.parts.append(
                f'<text x="{x}" y="{y:.1f}" font-size="10" text-anchor="middle" '
                f'transform="rotate(-90 {x} {y:.1f})">{html.escape(label)}</text>'
            )

    def y_labels(self, labels: list[tuple[float, str]]) -> None:
        """Text labels left of the left axis at data positions."""
        for value, text in labels:
            y = self.py(value)
            self.parts.append(_line(self.left - 4, y, self.left, y))
            self._text(self.left - 6, y + 3, text, "end")

    def _text(self, x: float, y: float, text: str, anchor: str) -> None:
        self.parts.append(
            f'<text x="{x:.1f}" y="{y:.1f}" font-size="9" text-anchor="{anchor}">'
            f"{html.escape(text)}</text>"
        )

    def svg(self, legend: list[str]) -> str:
        """The finished SVG document: title, axes, the drawn parts and a legend of ``legend``."""
        out = [
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
            f'viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif">',
            f"<title>{html.escape(self.title)}</title>",
            f'<rect width="{WIDTH}" height="{HEIGHT}" fill="white"/>',
            f'<text x="{(self.left + self.right) / 2:.1f}" y="18" font-size="12" '
            f'text-anchor="middle">{html.escape(self.title)}</text>',
            *self.parts,
            _line(self.left, self.top, self.left, self.bottom),
            _line(self.left, self.bottom, self.right, self.bottom),
        ]
        for i, split in enumerate(legend):
            y = self.top + 6 + 14 * i
            colour = COLOURS[i % len(COLOURS)]
            out.append(
                f'<rect x="{self.right + 10}" y="{y}" width="10" height="10" fill="{colour}"/>'
            )
            out.append(
                f'<text x="{self.right + 24}" y="{y + 9}" font-size="9">{html.escape(split)}</text>'
            )
        out.append("</svg>")
        return "\n".join(out) + "\n"


def _line(x0: float, y0: float, x1: float, y1: float) -> str:
    return f'<line x1="{x0:.1f}" y1="{y0:.1f}" x2="{x1:.1f}" y2="{y1:.1f}" stroke="#333"/>'


def _ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """About ``count`` round tick values covering ``lo``..``hi`` (steps of 1, 2 or 5 x 10^k)."""
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi <= lo:
        return [lo] if math.isfinite(lo) else []
    raw = (hi - lo) / count
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    first = math.ceil(lo / step - 1e-9)
    return [round(i * step, 12) for i in range(first, math.floor(hi / step + 1e-9) + 1)]


def _tick_text(value: float) -> str:
    return f"{value:.4g}"


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
