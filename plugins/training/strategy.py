"""Choosing a ``tf.distribute`` strategy and the mixed-precision policy for a trainer."""

from __future__ import annotations

import json
import os
from typing import Any, Literal

from beamline.errors import PipelineError

StrategyName = Literal["auto", "default", "mirrored", "multi_worker", "tpu"]


def cluster_workers() -> int:
    """How many workers ``TF_CONFIG`` describes (0 when it is not set)."""
    config = json.loads(os.environ.get("TF_CONFIG") or "{}")
    return len(config.get("cluster", {}).get("worker", []))


def worker_index() -> int:
    """This process's worker index in ``TF_CONFIG`` (0 when there is no cluster)."""
    config = json.loads(os.environ.get("TF_CONFIG") or "{}")
    task = config.get("task", {})
    return int(task.get("index", 0)) if task.get("type", "worker") in ("worker", "chief") else 0


def split_cpu(devices: int) -> str:
    """Split the physical CPU into ``devices`` logical devices (before TensorFlow uses devices).

    Returns an empty string on success, or why it could not be done."""
    import tensorflow as tf

    cpus = tf.config.list_physical_devices("CPU")
    try:
        tf.config.set_logical_device_configuration(
            cpus[0], [tf.config.LogicalDeviceConfiguration() for _ in range(devices)]
        )
    except RuntimeError as exc:  # devices already initialised in this process
        current = len(tf.config.list_logical_devices("CPU"))
        if current == devices:
            return ""
        return f"cannot split the CPU into {devices} devices ({current} exist already): {exc}"
    return ""


def make_strategy(name: str) -> tuple[Any, str]:
    """The strategy called ``name`` and the name it resolved to (``auto`` picks one).

    auto: several workers in ``TF_CONFIG`` -> multi_worker; a TPU -> tpu; several GPUs ->
    mirrored; otherwise default. mirrored on a machine without GPUs mirrors over the logical CPU
    devices (see ``split_cpu``)."""
    import tensorflow as tf

    if name == "auto":
        if cluster_workers() > 1:
            name = "multi_worker"
        elif tf.config.list_logical_devices("TPU"):
            name = "tpu"
        elif len(tf.config.list_logical_devices("GPU")) > 1:
            name = "mirrored"
        else:
            name = "default"
    if name == "default":
        return tf.distribute.get_strategy(), name
    if name == "mirrored":
        gpus = tf.config.list_logical_devices("GPU")
        if gpus:
            return tf.distribute.MirroredStrategy(), name
        cpus = [d.name for d in tf.config.list_logical_devices("CPU")]
        return (
            tf.distribute.MirroredStrategy(
                devices=cpus, cross_device_ops=tf.distribute.ReductionToOneDevice()
            ),
            name,
        )
    if name == "multi_worker":
        if not os.environ.get("TF_CONFIG"):
            raise PipelineError(
                "strategy multi_worker needs TF_CONFIG describing the cluster and this task"
            )
        options = tf.distribute.experimental.CommunicationOptions(
            implementation=tf.distribute.experimental.CommunicationImplementation.RING
        )
        return tf.distribute.MultiWorkerMirroredStrategy(communication_options=options), name
    if name == "tpu":
        try:
            resolver = tf.distribute.cluster_resolver.TPUClusterResolver()
            tf.config.experimental_connect_to_cluster(resolver)
            tf.tpu.experimental.initialize_tpu_system(resolver)
        except (ValueError, tf.errors.NotFoundError) as exc:
            raise PipelineError(f"strategy tpu: no TPU found: {exc}") from exc
        return tf.distribute.TPUStrategy(resolver), name
    raise PipelineError(f"unknown strategy '{name}'")


def is_chief(strategy: Any) -> bool:
    """Whether this process is the chief (writes checkpoints and logs to the real places)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not getattr(resolver, "task_type", None):
        return True
    if resolver.task_type == "chief":
        return True
    has_chief = "chief" in resolver.cluster_spec().as_dict()
    return resolver.task_type == "worker" and resolver.task_id == 0 and not has_chief


def mixed_precision_policy(strategy_name: str) -> str:
    """``mixed_float16`` on GPUs, ``mixed_bfloat16`` on CPUs and TPUs (no loss scaling needed)."""
    import tensorflow as tf

    if strategy_name != "tpu" and tf.config.list_logical_devices("GPU"):
        return "mixed_float16"
    return "mixed_bfloat16"
