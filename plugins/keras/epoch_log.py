"""What ``keras_trainer`` reports of each epoch: its record, TensorBoard scalars, progress text."""

from __future__ import annotations

from typing import Any

EPOCH_METRICS = ("loss", "accuracy", "mae", "rmse")


def epoch_metrics(metrics: Any, task: str) -> dict[str, float]:
    """The reported metrics of one pass (an ``EpochMetrics``) for the task."""
    if task == "regression":
        return {"loss": metrics.mean_loss, "mae": metrics.mae, "rmse": metrics.rmse}
    return {"loss": metrics.mean_loss, "accuracy": metrics.accuracy}


def summary_writers(logs: Any, with_eval: bool) -> dict[str, Any]:
    """TensorBoard writers of ``logs/train`` (and ``logs/eval``)."""
    import tensorflow as tf

    writers = {"train": tf.summary.create_file_writer(str(logs / "train"))}
    if with_eval:
        writers["eval"] = tf.summary.create_file_writer(str(logs / "eval"))
    return writers


def write_summaries(writers: dict[str, Any], record: dict[str, Any]) -> None:
    """One epoch's record as TensorBoard scalars (eval metrics under the eval writer)."""
    import tensorflow as tf

    step = record["epoch"]
    with writers["train"].as_default():
        for key in (*EPOCH_METRICS, "learning_rate"):
            if key in record:
                tf.summary.scalar(key, record[key], step=step)
    if "eval" in writers:
        with writers["eval"].as_default():
            for key in EPOCH_METRICS:
                if f"val_{key}" in record:
                    tf.summary.scalar(key, record[f"val_{key}"], step=step)
    for writer in writers.values():
        writer.flush()


def progress_text(record: dict[str, Any]) -> str:
    """One epoch's record as a progress line (``loss 0.1234 accuracy 0.987 ...``)."""
    if "accuracy" in record:
        text = f"loss {record['loss']:.4f} accuracy {record['accuracy']:.3f}"
        if "val_loss" in record:
            text += f" val_loss {record['val_loss']:.4f} val_accuracy {record['val_accuracy']:.3f}"
        return text
    text = f"loss {record['loss']:.4f} mae {record['mae']:.4g} rmse {record['rmse']:.4g}"
    if "val_loss" in record:
        text += (
            f" val_loss {record['val_loss']:.4f} val_mae {record['val_mae']:.4g} "
            f"val_rmse {record['val_rmse']:.4g}"
        )
    return text
