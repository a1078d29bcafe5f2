"""Image helpers of the GAN steps: sample grids, PNG encoding, loss and prediction plots.

Pillow and matplotlib are imported inside the functions.
"""

from __future__ import annotations

import io
import math
from pathlib import Path
from typing import Any

from beamline_plugins.training.plots import pyplot, save_figure


def to_uint8(images: Any) -> Any:
    """Float images in [0, 1] (``[n, h, w, c]``) as uint8, rounded like an 8-bit PNG stores them."""
    import numpy as np

    return np.clip(np.rint(np.asarray(images, dtype=np.float64) * 255.0), 0, 255).astype(np.uint8)


def _pil(image: Any) -> Any:
    """One uint8 ``[h, w, c]`` array as a Pillow image (gray for one channel, else RGB/RGBA)."""
    from PIL import Image

    channels = image.shape[-1]
    if channels == 1:
        return Image.fromarray(image[..., 0], mode="L")
    return Image.fromarray(image, mode="RGBA" if channels == 4 else "RGB")


def encode_png(images: Any) -> list[bytes]:
    """Encode float images in [0, 1] (``[n, h, w, c]``) as PNG files, one ``bytes`` each."""
    out = []
    for image in to_uint8(images):
        buffer = io.BytesIO()
        _pil(image).save(buffer, format="PNG")
        out.append(buffer.getvalue())
    return out


def save_grid(images: Any, path: Path, *, columns: int = 10, scale: int = 4) -> None:
    """Tile float images in [0, 1] into one PNG, ``columns`` wide, each pixel ``scale`` times."""
    import numpy as np
    from PIL import Image

    pixels = to_uint8(images)
    n, height, width, channels = pixels.shape
    columns = max(1, min(columns, n))
    rows = math.ceil(n / columns)
    gap = 2
    cell_h, cell_w = height * scale + gap, width * scale + gap
    canvas = np.full((rows * cell_h + gap, columns * cell_w + gap, channels), 128, np.uint8)
    for i, image in enumerate(pixels):
        big = image.repeat(scale, axis=0).repeat(scale, axis=1)
        top, left = gap + (i // columns) * cell_h, gap + (i % columns) * cell_w
        canvas[top : top + height * scale, left : left + width * scale] = big
    path.parent.mkdir(parents=True, exist_ok=True)
    picture: Image.Image = _pil(canvas)
    picture.save(path, format="PNG")


def plot_losses(history: list[dict[str, Any]], path: Path) -> None:
    """Discriminator and generator loss, and the discriminator's accuracy, per epoch."""
    plt = pyplot()
    epochs = [h["epoch"] for h in history]
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.5))
    axes[0].plot(epochs, [h["d_loss"] for h in history], marker="o", label="discriminator")
    axes[0].plot(epochs, [h["g_loss"] for h in history], marker="o", label="generator")
    axes[0].set_title("loss")
    axes[1].plot(epochs, [h["d_real_accuracy"] for h in history], marker="o", label="real")
    axes[1].plot(epochs, [h["d_fake_accuracy"] for h in history], marker="o", label="generated")
    axes[1].set_title("discriminator accuracy")
    axes[1].set_ylim(0, 1)
    for ax in axes:
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        ax.legend()
    save_figure(fig, path)


def plot_labelled_grid(
    images: Any, labels: list[str], confidences: Any, path: Path, title: str, columns: int = 10
) -> None:
    """A grid of images, each titled with the class a classifier predicts and its probability."""
    import numpy as np

    plt = pyplot()
    n = len(images)
    columns = max(1, min(columns, n))
    rows = math.ceil(n / columns)
    fig, axes = plt.subplots(rows, columns, figsize=(columns * 0.9, rows * 1.05 + 0.4))
    axes = np.atleast_1d(axes).ravel()
    for ax in axes:
        ax.axis("off")
    for ax, image, label, confidence in zip(axes, images, labels, confidences, strict=False):
        shown = image[..., 0] if image.shape[-1] == 1 else image
        ax.imshow(np.clip(shown, 0, 1), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
        ax.set_title(f"{label} {confidence:.2f}", fontsize=7, pad=2)
    fig.suptitle(title, fontsize=9)
    save_figure(fig, path)


def plot_class_histograms(histograms: dict[str, list[int]], classes: list[str], path: Path) -> None:
    """Bar charts of the predicted-class share of each image set (generated, real, noise)."""
    import numpy as np

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(max(5.0, 0.6 * len(classes) + 2), 3.5))
    width = 0.8 / max(1, len(histograms))
    positions = np.arange(len(classes))
    for i, (name, counts) in enumerate(histograms.items()):
        total = max(1, sum(counts))
        ax.bar(positions + i * width, [c / total for c in counts], width, label=name)
    ax.set_xticks(positions + width * (len(histograms) - 1) / 2, classes)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("share of images")
    ax.legend()
    ax.grid(alpha=0.3, axis="y")
    save_figure(fig, path)
