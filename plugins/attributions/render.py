"""Drawing attributions: PNG heatmaps for images and spectrograms, highlighted HTML for text.

Red is evidence for the target class, blue against it; the colour scale is symmetric around
zero and set by the largest absolute attribution of the input.
"""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path
from typing import Any

from .explainer import Explained, heat


def heatmap_png(explained: Explained, title: str) -> bytes:
    """A PNG of the input beside its attribution map (image: also an overlay)."""
    import numpy as np

    from beamline_plugins.training.plots import pyplot

    plt = pyplot()
    values = heat(explained)
    limit = float(np.abs(values).max()) or 1.0
    if explained.modality == "image":
        image = explained.features
        shown = image[..., 0] if image.shape[-1] == 1 else image[..., :3]
        cmap = "gray" if image.shape[-1] == 1 else None
        fig, axes = plt.subplots(1, 3, figsize=(8.4, 3.0))
        axes[0].imshow(shown, cmap=cmap, vmin=0, vmax=1)
        axes[0].set_title("input")
        axes[1].imshow(values, cmap="bwr", vmin=-limit, vmax=limit)
        axes[1].set_title("attribution")
        axes[2].imshow(shown, cmap=cmap, vmin=0, vmax=1)
        axes[2].imshow(np.abs(values), cmap="Reds", alpha=0.6, vmin=0, vmax=limit)
        axes[2].set_title("|attribution| over input")
        for ax in axes:
            ax.set_xticks([])
            ax.set_yticks([])
    else:
        spectrogram = explained.features.reshape(explained.features.shape[0], -1).T
        fig, axes = plt.subplots(2, 1, figsize=(7.0, 4.6), sharex=True)
        axes[0].imshow(spectrogram, origin="lower", aspect="auto", cmap="magma")
        axes[0].set_title("input spectrogram")
        axes[0].set_ylabel("bin")
        axes[1].imshow(values, origin="lower", aspect="auto", cmap="bwr", vmin=-limit, vmax=limit)
        axes[1].set_title("attribution")
        axes[1].set_ylabel("bin")
        axes[1].set_xlabel("frame")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90)
    plt.close(fig)
    return buffer.getvalue()


def highlighted_html(explained: Explained) -> str:
    """The tokens of a text, each on a background whose colour and strength is its weight."""
    import numpy as np

    values = explained.attribution.values
    limit = float(np.abs(values).max()) or 1.0
    spans = []
    for token, value in zip(explained.tokens, values, strict=True):
        strength = min(1.0, abs(float(value)) / limit)
        colour = "220,40,40" if value > 0 else "40,90,220"
        spans.append(
            f"<mark style='background:rgba({colour},{strength:.2f})' "
            f"title='{float(value):+.4f}'>{html.escape(token)}</mark>"
        )
    return "<p class='tokens'>" + " ".join(spans) + "</p>"


def fragment(explained: Explained, title: str) -> str:
    """An HTML fragment of one explanation: an inline PNG, or highlighted text."""
    if explained.modality == "text":
        return f"<div class='attribution'><small>{html.escape(title)}</small>" + (
            highlighted_html(explained) + "</div>"
        )
    data = base64.b64encode(heatmap_png(explained, title)).decode("ascii")
    return f"<img class='heat' src='data:image/png;base64,{data}' alt='{html.escape(title)}'>"


def write_explanation(explained: Explained, folder: Path, stem: str, title: str) -> Path:
    """Write one explanation into ``folder``: ``STEM.png`` (images, audio) or ``STEM.html``."""
    folder.mkdir(parents=True, exist_ok=True)
    if explained.modality == "text":
        path = folder / f"{stem}.html"
        page = (
            "<!doctype html><html><head><meta charset='utf-8'>"
            f"<title>{html.escape(title)}</title></head><body><h3>{html.escape(title)}</h3>"
            f"{highlighted_html(explained)}<p><small>red: for the class, blue: against; hover a "
            "token for its weight</small></p></body></html>"
        )
        path.write_text(page, encoding="utf-8")
        return path
    path = folder / f"{stem}.png"
    path.write_bytes(heatmap_png(explained, title))
    return path


def describe(explained: Explained, classes: list[str]) -> dict[str, Any]:
    """The numbers of one explanation for ``--json``."""
    a = explained.attribution
    name = classes[a.target] if a.target < len(classes) else str(a.target)
    out: dict[str, Any] = {
        "modality": explained.modality,
        "target": name,
        "method": a.method,
        "steps": a.steps,
        "score": a.score,
        "baseline_score": a.baseline_score,
        "attribution_sum": float(a.values.sum()),
        "completeness_gap": a.completeness_gap if a.method == "integrated_gradients" else None,
        "scores": dict(zip(classes, explained.scores, strict=False)),
        "shape": list(heat(explained).shape),
        "attributions": heat(explained).round(6).tolist(),
    }
    if explained.tokens:
        out["tokens"] = explained.tokens
    return out
