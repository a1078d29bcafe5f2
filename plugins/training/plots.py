"""Plots for the HTML report: training curves, confusion matrices, regression scatter and
residuals (matplotlib, Agg backend)."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def pyplot() -> Any:
    """``matplotlib.pyplot`` with the Agg backend (imported on first use)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig: Any, path: Path) -> None:
    """Lay ``fig`` out, write it as a PNG at ``path`` (its folder made) and close it."""
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    pyplot().close(fig)


def plot_history(history: list[dict[str, Any]], path: Path) -> None:
    """Loss and accuracy (a regression: MAE and RMSE) per epoch, training and evaluation split,
    into a PNG at ``path``."""
    plt = pyplot()
    epochs = [h["epoch"] for h in history]
    metrics = ["loss"]
    if any("mae" in h for h in history) and not any("accuracy" in h for h in history):
        metrics += ["mae", "rmse"]
    else:
        metrics.append("accuracy")
    fig, axes = plt.subplots(1, len(metrics), figsize=(4.5 * len(metrics), 3.5))
    for ax, metric in zip(axes, metrics, strict=True):
        ax.plot(epochs, [h.get(metric) for h in history], marker="o", label="train")
        if any(h.get(f"val_{metric}") is not None for h in history):
            ax.plot(epochs, [h.get(f"val_{metric}") for h in history], marker="o", label="eval")
        ax.set_xlabel("epoch")
        ax.set_title(metric)
        ax.grid(alpha=0.3)
        ax.legend()
    save_figure(fig, path)


def plot_confusion(matrix: list[list[int]], classes: list[str], path: Path, title: str) -> None:
    """A confusion matrix (rows: true class, columns: predicted) into a PNG at ``path``."""
    plt = pyplot()
    size = max(4.0, 0.5 * len(classes) + 2)
    fig, ax = plt.subplots(figsize=(size, size))
    ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(len(classes)), classes, rotation=90 if len(classes) > 12 else 0)
    ax.set_yticks(range(len(classes)), classes)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    peak = max((max(row) for row in matrix), default=0)
    for i, row in enumerate(matrix):
        for j, value in enumerate(row):
            if value:
                color = "white" if value > peak / 2 else "black"
                ax.text(j, i, str(value), ha="center", va="center", color=color, fontsize=8)
    save_figure(fig, path)


def plot_predictions(labels: Any, predictions: Any, path: Path, title: str) -> None:
    """Predicted against actual values (a regression), with the identity line, into a PNG."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(4.8, 4.5))
    ax.scatter(labels, predictions, s=14, alpha=0.7)
    low = float(min(min(labels), min(predictions)))
    high = float(max(max(labels), max(predictions)))
    ax.plot([low, high], [low, high], color="gray", linestyle="--", linewidth=1, label="y = x")
    ax.set_xlabel("actual")
    ax.set_ylabel("predicted")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left")
    save_figure(fig, path)


def plot_residuals(residuals: Any, path: Path, title: str) -> None:
    """A histogram of residuals (actual - predicted) into a PNG at ``path``."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 3.5))
    ax.hist(residuals, bins=min(30, max(5, len(residuals) // 4)), color="tab:orange", alpha=0.8)
    ax.axvline(0.0, color="gray", linestyle="--", linewidth=1)
    ax.set_xlabel("residual (actual - predicted)")
    ax.set_ylabel("examples")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    save_figure(fig, path)
