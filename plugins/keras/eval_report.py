"""The classification evaluator's report fragment: what a person opens the report for.

``report/summary.html`` holds the per-class precision/recall/F1 table, the slices (with those
too small to judge marked), and a gallery of misclassified examples as what they are: images
inline, texts as text, clips with an audio player, each with its true and predicted class and
confidence (the most confident mistakes first), and their attributions when the evaluator
computed them. ``report/calibration.png`` is the reliability diagram. Everything the fragment
shows is inline (``data:`` URIs), so the run report stays one self-contained file.
"""

from __future__ import annotations

import base64
import html
from pathlib import Path
from typing import Any

CALIBRATION_BINS = 10
TEXT_LIMIT = 400


def calibration(labels: Any, scores: Any, bins: int = CALIBRATION_BINS) -> dict[str, Any]:
    """Reliability of the top-class confidence: per bin its mean confidence, accuracy and count,
    and the expected calibration error (count-weighted mean gap between the two); whole arrays,
    through ``RunningMetrics`` over one batch."""
    from .eval_stream import RunningMetrics

    running = RunningMetrics(scores.shape[1], bins)
    running.add(labels, scores)
    return running.calibration()


def plot_calibration(reliability: dict[str, Any], path: Path, title: str) -> None:
    """The reliability diagram (accuracy against confidence per bin, and the bin counts)."""
    from beamline_plugins.training.plots import pyplot, save_figure

    plt = pyplot()
    fig, (ax, hist) = plt.subplots(
        2, 1, figsize=(4.8, 5.2), gridspec_kw={"height_ratios": [3, 1]}, sharex=True
    )
    bins = reliability["bins"]
    centers = [(b["low"] + b["high"]) / 2 for b in bins]
    width = bins[0]["high"] - bins[0]["low"]
    accuracy = [b["accuracy"] or 0.0 for b in bins]
    ax.bar(centers, accuracy, width=width * 0.9, color="tab:blue", alpha=0.8, label="accuracy")
    ax.plot([0, 1], [0, 1], color="gray", linestyle="--", linewidth=1, label="perfect")
    ax.set_ylabel("accuracy in bin")
    ax.set_ylim(0, 1)
    ax.set_title(f"{title}; ECE {reliability['ece']:.3f}")
    ax.legend(loc="upper left")
    ax.grid(alpha=0.3)
    hist.bar(centers, [b["count"] for b in bins], width=width * 0.9, color="tab:gray")
    hist.set_xlabel("confidence of the predicted class")
    hist.set_ylabel("examples")
    hist.set_xlim(0, 1)
    save_figure(fig, path)


def write_evaluation_report(
    report_dir: Path,
    metrics: dict[str, Any],
    slices: dict[str, Any],
    gallery: list[dict[str, Any]],
    inputs: dict[str, dict[str, Any]],
) -> Path:
    """Write ``summary.html`` into ``report_dir`` and return its path.

    ``gallery`` holds one dict per misclassified example: ``index``, ``label``, ``predicted``,
    ``confidence``, ``raw`` (feature -> raw value) and optionally ``attribution`` (an HTML
    fragment)."""
    parts = [_per_class_table(metrics)]
    if slices:
        parts.append(_slices_section(slices))
    parts.append(_gallery(gallery, inputs, metrics))
    report_dir.mkdir(parents=True, exist_ok=True)
    path = report_dir / "summary.html"
    path.write_text("".join(parts), encoding="utf-8")
    return path


def _per_class_table(metrics: dict[str, Any]) -> str:
    head = "<tr><th>class</th><th>precision</th><th>recall</th><th>F1</th><th>support</th></tr>"
    rows = []
    for name, m in metrics["per_class"].items():
        weak = " class='weak'" if m["f1"] < metrics["macro_f1"] - 0.1 else ""
        rows.append(
            f"<tr{weak}><td>{html.escape(name)}</td><td>{m['precision']:.3f}</td>"
            f"<td>{m['recall']:.3f}</td><td>{m['f1']:.3f}</td><td>{m['support']}</td></tr>"
        )
    rows.append(
        f"<tr><th>macro</th><th>{metrics['macro_precision']:.3f}</th>"
        f"<th>{metrics['macro_recall']:.3f}</th><th>{metrics['macro_f1']:.3f}</th>"
        f"<th>{metrics['count']}</th></tr>"
    )
    return f"<h3>per class</h3><table>{head}{''.join(rows)}</table>"


def _slices_section(slices: dict[str, Any]) -> str:
    out = ["<h3>slices</h3>"]
    for spec, result in slices.items():
        gap = result["gap"].get("accuracy")
        gap_text = f"accuracy gap (best - worst) {gap:.3f}" if gap is not None else "no gap"
        out.append(
            f"<p><b>{html.escape(spec)}</b>: {gap_text}; slices under "
            f"{result['min_slice_size']} examples are too small to judge</p>"
        )
        head = "<tr><th>value</th><th>examples</th><th>accuracy</th><th>macro F1</th>"
        rows = [f"{head}<th>loss</th><th></th></tr>"]
        for value, m in result["values"].items():
            note = "" if m["judged"] else "too small to judge"
            if m["judged"] and value == result["worst"].get("accuracy"):
                note = "worst"
            rows.append(
                f"<tr><td>{html.escape(value)}</td><td>{m['count']}</td>"
                f"<td>{m['accuracy']:.3f}</td><td>{m['macro_f1']:.3f}</td>"
                f"<td>{m['loss']:.3f}</td><td>{note}</td></tr>"
            )
        out.append(f"<table>{''.join(rows)}</table>")
    return "".join(out)


def _gallery(gallery: list[dict[str, Any]], inputs: dict[str, Any], metrics: dict) -> str:
    wrong = metrics["count"] - round(metrics["accuracy"] * metrics["count"])
    title = f"<h3>misclassified examples ({len(gallery)} of {wrong}, most confident first)</h3>"
    if not gallery:
        return title + "<p>none</p>"
    cards = []
    for item in gallery:
        body = "".join(_show(name, item["raw"].get(name), spec) for name, spec in inputs.items())
        extra = item.get("attribution") or ""
        cards.append(
            "<div class='card'>"
            f"{body}<div>true <b>{html.escape(item['label'])}</b>, predicted "
            f"<b class='failed'>{html.escape(item['predicted'])}</b> "
            f"({item['confidence']:.3f}); #{item['index']}</div>{extra}</div>"
        )
    return title + f"<div class='gallery'>{''.join(cards)}</div>"


def _show(name: str, value: Any, spec: dict[str, Any]) -> str:
    modality = spec.get("modality", "")
    if value is None:
        return f"<div>{html.escape(name)}: (missing)</div>"
    if modality == "image" and isinstance(value, bytes):
        return f"<img class='sample' src='{data_uri(value)}' alt='example'>"
    if modality == "audio" and isinstance(value, bytes):
        return f"<audio controls src='{data_uri(value, 'audio/wav')}'></audio>"
    text = value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
    if len(text) > TEXT_LIMIT:
        text = text[:TEXT_LIMIT] + "..."
    if modality == "text":
        return f"<blockquote>{html.escape(text)}</blockquote>"
    return f"<div>{html.escape(name)} = {html.escape(text)}</div>"


def data_uri(data: bytes, mime: str = "") -> str:
    """A ``data:`` URI of ``data``; the image type is read from its first bytes when not given."""
    if not mime:
        mime = "image/png"
        if data[:3] == b"\xff\xd8\xff":
            mime = "image/jpeg"
        elif data[:4] == b"GIF8":
            mime = "image/gif"
        elif data[:2] == b"BM":
            mime = "image/bmp"
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"
