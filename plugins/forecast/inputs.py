"""The ``window_input`` input pipeline: forecasting windows as ``(history, future)`` batches.

``model_inputs`` describes the one input ``history`` (``[lookback, values]`` raw values) with
the train split's statistics the models normalise with inside the graph: per value column the
standard deviation of its one-row changes, and the target column's index. Nothing from eval or
test enters them. ``serving`` takes raw windows as they are: the model does the rest.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from beamline import Artifact, InputPipeline, ModelInputs, param
from beamline.errors import PipelineError
from beamline_plugins.training.records import cached_and_shuffled, read_records

HISTORY, FUTURE = "history", "future"


class WindowInput(InputPipeline):
    """Windows of ``time_series`` as ``({"history": [lookback, values]}, future [horizon])``.

    Train statistics (the spread of each column's one-step changes, its mean and spread) are
    computed here from the train split and travel in the model inputs, so the model scales raw
    values itself and the export takes raw windows."""

    name = "window_input"
    shuffle_buffer: int = param(10000, help="shuffle buffer of training windows")

    def model_inputs(self, examples: Artifact) -> ModelInputs:
        """``{"history": {"shape": [lookback, values], "horizon", "target_index", stats}}``."""
        import numpy as np

        from beamline.examples import iter_examples

        params = examples.meta.get("params") or {}
        lookback, horizon = int(params.get("lookback", 0)), int(params.get("horizon", 0))
        if not lookback or not horizon:
            raise PipelineError(
                f"{examples.path}: not written by a time_series step (no lookback/horizon)"
            )
        histories = [e[HISTORY] for e in iter_examples(examples, "train")]
        if not histories:
            raise PipelineError(f"{examples.path}: the train split has no windows")
        values = len(histories[0]) // lookback
        windows = np.asarray(histories, np.float64).reshape(-1, lookback, values)
        changes = np.diff(windows, axis=1).reshape(-1, values)
        flat = windows.reshape(-1, values)
        return {
            HISTORY: {
                "modality": "numeric",
                "dtype": "float32",
                "shape": [lookback, values],
                "horizon": horizon,
                "target_index": 0,  # time_series puts the target column first
                "mean": flat.mean(axis=0).tolist(),
                "std": np.maximum(flat.std(axis=0), 1e-6).tolist(),
                "change_std": np.maximum(changes.std(axis=0), 1e-6).tolist(),
            }
        }

    def dataset(
        self,
        examples: Artifact,
        split: str,
        *,
        inputs: ModelInputs | None = None,
        training: bool = False,
        batch_size: int = 32,
        seed: int = 0,
        with_ids: bool = False,
    ) -> Any:
        """Batches of ``({"history": [batch, lookback, values]}, future [batch, horizon])``."""
        import tensorflow as tf

        inputs = inputs or self.model_inputs(examples)
        spec = inputs[HISTORY]
        lookback, values = spec["shape"]
        horizon = int(spec["horizon"])
        parse_spec = {
            HISTORY: tf.io.FixedLenFeature([lookback * values], tf.float32),
            FUTURE: tf.io.FixedLenFeature([horizon], tf.float32),
        }

        def parse(serialized: Any) -> Any:
            parsed = tf.io.parse_single_example(serialized, parse_spec)
            history = tf.reshape(parsed[HISTORY], [lookback, values])
            return {HISTORY: history}, parsed[FUTURE]

        ds = read_records(examples, split, parse)
        ds = cached_and_shuffled(
            ds, cache=True, training=training, buffer=self.shuffle_buffer, seed=seed
        )
        return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)

    def serving(
        self, inputs: ModelInputs
    ) -> tuple[dict[str, Any], Callable[[dict[str, Any]], dict[str, Any]]]:
        """The signature (raw windows ``[batch, lookback, values]``); the model scales them."""
        import tensorflow as tf

        lookback, values = inputs[HISTORY]["shape"]
        signature = {HISTORY: tf.TensorSpec([None, lookback, values], tf.float32, name=HISTORY)}

        def preprocess(raw: dict[str, Any]) -> dict[str, Any]:
            return {HISTORY: tf.cast(raw[HISTORY], tf.float32)}

        return signature, preprocess
