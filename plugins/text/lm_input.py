"""The ``lm_input`` input pipeline: texts -> (tokens[:-1], tokens[1:]) windows for a language model.

Each text becomes ``[EOS] t1 ... tn [EOS]`` (``[EOS]`` is appended to the vocabulary as its
last id); the sequence is cut into windows of ``sequence_length`` inputs whose targets are the
same tokens shifted by one. Windows are padded with ``[PAD]`` (id 0) and padded targets get
weight 0. ``dataset`` yields ``({text: inputs}, targets, weights)``; ``serving`` maps a raw
prompt to ``[EOS] + ids`` with the same ``TokenEncoder`` as training.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from beamline import Artifact, InputPipeline, ModelInputs, param
from beamline_plugins.training.records import cached_and_shuffled, read_records

from .inputs import encoder_of, text_feature, text_spec

EOS_TOKEN = "[EOS]"


class LmInput(InputPipeline):
    """Texts as next-token windows for a language model: inputs tokens[:-1], targets tokens[1:].

    Uses the vocabulary saved by ``text_vocabulary`` (train split) plus an end-of-text token
    that separates texts; a text longer than ``sequence_length`` gives several windows."""

    name = "lm_input"
    feature: str = param("", help="text feature to read; default: the feature of modality text")
    sequence_length: int = param(128, help="tokens per training window", ge=2)
    shuffle_buffer: int = param(10000, help="shuffle buffer of training windows")
    cache: bool = param(True, help="keep the windows in memory after the first epoch")

    def model_inputs(self, examples: Artifact) -> ModelInputs:
        """``{text feature: {"shape": [None], "vocabulary": [... "[EOS]"], "eos_id", ...}}``."""
        name = text_feature(examples, self.feature, self.name)
        spec = text_spec(examples, name, self.name)
        vocabulary = spec["vocabulary"] + [EOS_TOKEN]
        return {
            name: {
                **spec,
                "vocabulary": vocabulary,
                "vocab_size": len(vocabulary),
                "eos_id": len(vocabulary) - 1,
                "shape": [None],
                "max_length": self.sequence_length,
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
        """Batches of ``({text: inputs [batch, length]}, targets, weights)``."""
        import tensorflow as tf

        inputs = inputs or self.model_inputs(examples)
        ((name, spec),) = inputs.items()
        encoder = encoder_of({**spec, "vocabulary": spec["vocabulary"][:-1]})
        eos = tf.constant([spec["eos_id"]], tf.int64)
        length = int(spec["max_length"])
        parse_spec = {name: tf.io.FixedLenFeature([], tf.string)}

        def parse(serialized: Any) -> Any:
            return tf.io.parse_single_example(serialized, parse_spec)[name]

        def windows(text: Any) -> Any:
            ids = encoder.encode(tf.reshape(text, [1]))[0]
            sequence = tf.concat([eos, ids, eos], 0)
            steps = tf.shape(sequence, out_type=tf.int64)[0] - 1
            starts = tf.range(0, steps, length, dtype=tf.int64)
            ends = tf.minimum(starts + length, steps)

            def window(bounds: Any) -> Any:
                start, end = bounds[0], bounds[1]
                return sequence[start:end], sequence[start + 1 : end + 1]

            return tf.data.Dataset.from_tensor_slices(tf.stack([starts, ends], 1)).map(window)

        ds = read_records(examples, split, parse).flat_map(windows)
        ds = cached_and_shuffled(
            ds, cache=self.cache, training=training, buffer=self.shuffle_buffer, seed=seed
        )
        ds = ds.padded_batch(batch_size, padded_shapes=([length], [length]))

        def weighted(x: Any, y: Any) -> Any:
            return {name: x}, y, tf.cast(tf.not_equal(y, 0), tf.float32)

        return ds.map(weighted).prefetch(tf.data.AUTOTUNE)

    def serving(
        self, inputs: ModelInputs
    ) -> tuple[dict[str, Any], Callable[[dict[str, Any]], dict[str, Any]]]:
        """The serving signature (raw prompts) and its preprocessing (``[EOS]`` + ids)."""
        import tensorflow as tf

        ((name, spec),) = inputs.items()
        encoder = encoder_of({**spec, "vocabulary": spec["vocabulary"][:-1]})
        eos_id = int(spec["eos_id"])
        signature = {name: tf.TensorSpec([None], tf.string, name=name)}

        def preprocess(raw: dict[str, Any]) -> dict[str, Any]:
            ids = encoder.encode(raw[name])
            starts = tf.fill([ids.nrows(), 1], tf.constant(eos_id, tf.int64))
            return {name: tf.concat([starts, ids], axis=1).to_tensor(default_value=0)}

        return signature, preprocess
