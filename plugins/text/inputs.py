"""The ``text_input`` input pipeline: an examples artifact -> batches of token ids and labels.

It follows the input pipeline contract of ``beamline_plugins.training.image_input``
(``model_inputs`` / ``dataset`` / ``serving``). ``model_inputs`` carries the vocabulary, so the
trainer stores it in ``model.json`` and the exported model holds it as constants. Training,
evaluation and serving call the same ``TokenEncoder`` (``beamline_plugins.text.tf_ops``): raw string
-> Unicode form of ingest's ``normalize_text`` (per character) -> lowercase (when ingest lowercased)
-> tokens -> ids -> padded to ``max_length``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from beamline import Artifact, InputPipeline, ModelInputs, param
from beamline.examples import feature_of_modality
from beamline_plugins.training.records import cached_and_shuffled, read_records


def text_feature(examples: Artifact, feature: str, component: str) -> str:
    """The text feature to read: ``feature`` or the one feature of modality text."""
    return feature_of_modality(examples, "text", feature, component)


def text_spec(examples: Artifact, name: str, component: str) -> dict[str, Any]:
    """The vocabulary facts every text model input carries (see ``model_inputs``)."""
    from .vocabulary import load_vocabulary

    vocabulary = load_vocabulary(examples, name)
    return {
        "dtype": "int64",
        "modality": "text",
        "level": vocabulary["level"],
        "lowercase": bool(vocabulary["lowercase"]),
        "normalization": str(vocabulary.get("normalization") or "none"),
        "vocabulary": list(vocabulary["tokens"]),
        "vocab_size": len(vocabulary["tokens"]),
    }


def encoder_of(spec: dict[str, Any]) -> Any:
    """The ``TokenEncoder`` of a model input's spec."""
    from .tf_ops import TokenEncoder

    return TokenEncoder(
        spec["vocabulary"],
        spec["level"],
        spec["lowercase"],
        normalization=spec.get("normalization", "none"),
    )


class TextInput(InputPipeline):
    """Texts from an examples artifact as token ids: tokenise, look up, pad or bucket, batch.

    Uses the vocabulary saved by ``text_vocabulary`` (computed on the train split). Texts are
    truncated to ``max_length`` tokens and padded with ``[PAD]`` (id 0); with
    ``bucket_boundaries`` the training and evaluation batches group texts of similar length
    (``tf.data`` bucketing) and are padded only to their longest text. The exported model takes
    a raw string and applies the very same TensorFlow function."""

    name = "text_input"
    feature: str = param("", help="text feature to read; default: the feature of modality text")
    max_length: int = param(64, help="tokens kept per text (the rest is cut)", ge=1)
    bucket_boundaries: list[int] = param(
        [], help="length boundaries for bucketing by sequence length ([] pads to max_length)"
    )
    shuffle_buffer: int = param(10000, help="shuffle buffer of the training split (examples)")
    cache: bool = param(True, help="keep parsed texts in memory after the first epoch")
    class_counts: bool = param(
        False,
        help="count, per class, the train texts holding each token (for bow_classifier nb_weights)",
    )

    def model_inputs(self, examples: Artifact) -> ModelInputs:
        """``{feature: {"shape": [max_length] or [None], "vocab_size", "vocabulary", ...}}``,
        with ``class_counts`` (``[class][token id]``) when asked for."""
        name = text_feature(examples, self.feature, self.name)
        spec = text_spec(examples, name, self.name)
        shape = [None] if self.bucket_boundaries else [self.max_length]
        inputs = {name: {**spec, "shape": shape, "max_length": self.max_length}}
        if self.class_counts:
            counts, pairs = self._class_counts(examples, inputs)
            inputs[name].update(class_counts=counts, pair_counts=pairs)
        return inputs

    def _class_counts(
        self, examples: Artifact, inputs: ModelInputs
    ) -> tuple[list[list[int]], list[list[int]]]:
        """How many train texts of each class hold each token id (``[class][id]``) and each
        adjacent pair of ids, padding excluded (``[[first, second, count per class...]]``, pairs
        in ascending order), read through the very encoder and label indices training uses."""
        import numpy as np

        from beamline_plugins.training.records import label_info

        ((name, spec),) = inputs.items()
        _, classes = label_info(examples)
        counts = np.zeros((len(classes), int(spec["vocab_size"])), dtype=np.int64)
        pairs: dict[tuple[int, int], list[int]] = {}
        batches = self.dataset(examples, "train", inputs=inputs, batch_size=256)
        for features, labels in batches.as_numpy_iterator():
            ids = features[name]
            present = np.zeros((len(ids), counts.shape[1]), dtype=np.int64)
            present[np.repeat(np.arange(len(ids)), ids.shape[1]), ids.reshape(-1)] = 1
            np.add.at(counts, labels, present)
            for row, label in zip(ids.tolist(), labels.tolist(), strict=True):
                for pair in {(a, b) for a, b in zip(row, row[1:], strict=False) if a and b}:
                    pairs.setdefault(pair, [0] * len(classes))[label] += 1
        return counts.tolist(), [[*pair, *pairs[pair]] for pair in sorted(pairs)]

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
        """Batches of ``({text: ids}, label index)`` (plus ids, the raw text among them)."""
        import tensorflow as tf

        from beamline_plugins.training.records import labelled_parser

        inputs = inputs or self.model_inputs(examples)
        ((name, spec),) = inputs.items()
        encoder = encoder_of(spec)
        max_length = int(spec["max_length"])
        parse_labelled = labelled_parser(examples, name, with_ids=with_ids)

        def parse(serialized: Any) -> Any:
            text, index, extra = parse_labelled(serialized)
            if with_ids:
                extra = {**extra, name: text}
            return (text, index, extra) if with_ids else (text, index)

        ds = read_records(examples, split, parse)
        ds = cached_and_shuffled(
            ds, cache=self.cache, training=training, buffer=self.shuffle_buffer, seed=seed
        )

        def to_model(text: Any, *rest: Any) -> Any:
            return ({name: encoder(text, max_length, fixed=not self.bucket_boundaries)}, *rest)

        if not self.bucket_boundaries:
            return ds.batch(batch_size).map(to_model).prefetch(tf.data.AUTOTUNE)

        def one(text: Any, *rest: Any) -> Any:
            tokens = encoder.encode(tf.reshape(text, [1]))[0][:max_length]
            return (tokens, *rest)

        bounds = sorted(b for b in self.bucket_boundaries if 0 < b < max_length)
        ds = ds.map(one, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        ds = ds.bucket_by_sequence_length(
            lambda tokens, *_: tf.shape(tokens)[0],
            bucket_boundaries=[b + 1 for b in bounds],
            bucket_batch_sizes=[batch_size] * (len(bounds) + 1),
            pad_to_bucket_boundary=False,
        )
        return ds.map(lambda tokens, *rest: ({name: tokens}, *rest)).prefetch(tf.data.AUTOTUNE)

    def serving(
        self, inputs: ModelInputs
    ) -> tuple[dict[str, Any], Callable[[dict[str, Any]], dict[str, Any]]]:
        """The serving signature (a batch of raw strings) and its preprocessing."""
        import tensorflow as tf

        ((name, spec),) = inputs.items()
        encoder = encoder_of(spec)
        max_length = int(spec["max_length"])
        fixed = spec["shape"][0] is not None
        signature = {name: tf.TensorSpec([None], tf.string, name=name)}

        def preprocess(raw: dict[str, Any]) -> dict[str, Any]:
            return {name: encoder(raw[name], max_length, fixed=fixed)}

        return signature, preprocess
