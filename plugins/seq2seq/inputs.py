"""The ``seq2seq_input`` input pipeline: sequence pairs as teacher-forced id batches.

Model inputs ``source`` (source ids) and ``target`` (``[BOS]`` + target ids); the training
target is the target ids + ``[EOS]``, with weight 0 on padding. Both vocabularies come from
the ``seq2seq_vocabulary`` assets (train split). ``serving`` maps raw source strings to ids
with the same ``Encoder``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from beamline import Artifact, InputPipeline, ModelInputs, param
from beamline_plugins.training.records import cached_and_shuffled, read_records

from .tokens import BOS_ID, EOS_ID
from .vocabulary import SOURCE, TARGET, load_vocabularies


def vocabulary_of(spec: dict[str, Any]) -> dict[str, Any]:
    """The vocabulary document a model input's spec carries (for ``Encoder``/``Decoder``)."""
    return {"tokens": spec["vocabulary"], "level": spec["level"], "lowercase": spec["lowercase"]}


class Seq2SeqInput(InputPipeline):
    """Source and target token ids for an encoder-decoder, with teacher forcing.

    A pair longer than ``max_source_length`` source tokens or ``max_target_length - 1`` target
    tokens is cut (training) and the decoders stop at ``max_target_length - 1`` tokens. Batches
    are padded to their longest row."""

    name = "seq2seq_input"
    max_source_length: int = param(48, help="most source tokens the model reads", ge=1)
    max_target_length: int = param(48, help="most target positions ([BOS] or [EOS] included)", ge=2)
    shuffle_buffer: int = param(20000, help="shuffle buffer of training pairs")
    cache: bool = param(True, help="keep the encoded pairs in memory after the first epoch")

    def model_inputs(self, examples: Artifact) -> ModelInputs:
        """``source`` and ``target`` specs: vocabulary, level, lowercasing, lengths."""
        vocabularies = load_vocabularies(examples)
        out = {}
        for feature, length in ((SOURCE, self.max_source_length), (TARGET, self.max_target_length)):
            doc = vocabularies[feature]
            out[feature] = {
                "modality": "text",
                "dtype": "int64",
                "shape": [None],
                "vocabulary": doc["tokens"],
                "vocab_size": len(doc["tokens"]),
                "level": doc["level"],
                "lowercase": bool(doc["lowercase"]),
                "max_length": length,
                "bos_id": BOS_ID,
                "eos_id": EOS_ID,
            }
        return out

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
        """Batches of ``({"source", "target"}, next target ids, weights)``."""
        import tensorflow as tf

        from .tf_ops import Encoder

        inputs = inputs or self.model_inputs(examples)
        source_encoder = Encoder(vocabulary_of(inputs[SOURCE]))
        target_encoder = Encoder(vocabulary_of(inputs[TARGET]))
        source_length = int(inputs[SOURCE]["max_length"])
        target_length = int(inputs[TARGET]["max_length"]) - 1
        spec = {name: tf.io.FixedLenFeature([], tf.string) for name in (SOURCE, TARGET)}

        def encode(serialized: Any) -> Any:
            parsed = tf.io.parse_example(serialized, spec)
            source = source_encoder(parsed[SOURCE])[:, :source_length]
            target = target_encoder(parsed[TARGET])[:, :target_length]
            return (
                source.to_tensor(),
                source.row_lengths(),
                target.to_tensor(),
                target.row_lengths(),
            )

        def unpadded(source: Any, source_size: Any, target: Any, target_size: Any) -> Any:
            return source[:source_size], target[:target_size]

        ds = read_records(examples, split, None, shuffle_files=training, seed=seed)
        ds = ds.batch(1024).map(encode, num_parallel_calls=tf.data.AUTOTUNE).unbatch()
        ds = ds.map(unpadded, num_parallel_calls=tf.data.AUTOTUNE)
        ds = cached_and_shuffled(
            ds, cache=self.cache, training=training, buffer=self.shuffle_buffer, seed=seed
        )
        ds = ds.padded_batch(batch_size, padded_shapes=([None], [None]))

        def teacher_forced(source: Any, target: Any) -> Any:
            batch = tf.shape(target)[0]
            bos = tf.fill([batch, 1], tf.constant(BOS_ID, tf.int64))
            decoder_in = tf.concat([bos, target], 1)
            lengths = tf.reduce_sum(tf.cast(tf.not_equal(target, 0), tf.int32), axis=1)
            padded = tf.concat([target, tf.zeros([batch, 1], tf.int64)], 1)
            width = tf.shape(padded)[1]
            outputs = padded + tf.one_hot(lengths, width, dtype=tf.int64) * EOS_ID
            weights = tf.sequence_mask(lengths + 1, width, tf.float32)
            return {SOURCE: source, TARGET: decoder_in}, outputs, weights

        return ds.map(teacher_forced).prefetch(tf.data.AUTOTUNE)

    def serving(
        self, inputs: ModelInputs
    ) -> tuple[dict[str, Any], Callable[[dict[str, Any]], dict[str, Any]]]:
        """The signature (raw source strings) and its preprocessing (source ids)."""
        import tensorflow as tf

        from .tf_ops import Encoder

        encoder = Encoder(vocabulary_of(inputs[SOURCE]))
        length = int(inputs[SOURCE]["max_length"])
        signature = {SOURCE: tf.TensorSpec([None], tf.string, name=SOURCE)}

        def preprocess(raw: dict[str, Any]) -> dict[str, Any]:
            ids = encoder(tf.reshape(raw[SOURCE], [-1]))[:, :length]
            return {SOURCE: ids.to_tensor(default_value=0)}

        return signature, preprocess
