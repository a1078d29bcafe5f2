"""The tf.data pipelines of case 4: the framework's ``image_input``, a hand-tuned reference
and a naive one, all yielding ``({"image": float32 [B, H, W, C]}, label index)`` batches."""

from __future__ import annotations

from typing import Any

from beamline.artifacts import Artifact
from beamline.examples import example_files, feature_spec

VARIANTS = ("framework", "reference", "naive")


def _shape(artifact: Artifact) -> tuple[int, int, int]:
    image = feature_spec(artifact)["features"]["image"]
    return int(image["height"]), int(image["width"]), int(image["channels"])


def _table(classes: list[str]) -> Any:
    import tensorflow as tf

    return tf.lookup.StaticHashTable(
        tf.lookup.KeyValueTensorInitializer(
            tf.constant(classes), tf.range(len(classes), dtype=tf.int64)
        ),
        default_value=-1,
    )


def framework(artifact: Artifact, batch_size: int) -> Any:
    """The framework's ``image_input`` (defaults: cache on), training split, shuffled."""
    from beamline_plugins.training.image_input import ImageInput

    return ImageInput().dataset(artifact, "train", training=True, batch_size=batch_size, seed=0)


def reference(artifact: Artifact, batch_size: int) -> Any:
    """Hand-tuned: parallel interleave, batched parsing, parallel decode, cache, prefetch."""
    import tensorflow as tf

    height, width, channels = _shape(artifact)
    table = _table(feature_spec(artifact)["classes"])
    files = example_files(artifact, "train")
    spec = {
        "image": tf.io.FixedLenFeature([], tf.string),
        "label": tf.io.FixedLenFeature([], tf.string),
    }

    def decode(encoded: Any) -> Any:
        image = tf.io.decode_png(encoded, channels=channels)
        image = tf.image.convert_image_dtype(image, tf.float32)
        return tf.ensure_shape(image, [height, width, channels])

    def parse(serialized: Any) -> Any:
        record = tf.io.parse_example(serialized, spec)
        images = tf.map_fn(
            decode, record["image"], fn_output_signature=tf.TensorSpec([height, width, channels])
        )
        return images, table.lookup(record["label"])

    ds = tf.data.Dataset.from_tensor_slices(files).interleave(
        lambda f: tf.data.TFRecordDataset(f, compression_type="GZIP", buffer_size=1 << 20),
        cycle_length=len(files),
        num_parallel_calls=tf.data.AUTOTUNE,
    )
    ds = ds.batch(256).map(parse, num_parallel_calls=tf.data.AUTOTUNE).unbatch().cache()
    ds = ds.shuffle(10000, seed=0).batch(batch_size)
    ds = ds.map(lambda x, y: ({"image": x}, y), num_parallel_calls=tf.data.AUTOTUNE)
    return ds.prefetch(tf.data.AUTOTUNE)


def naive(artifact: Artifact, batch_size: int) -> Any:
    """No parallelism, no cache, no prefetch: read, parse one by one, decode, batch."""
    import tensorflow as tf

    from beamline_plugins.training.image_input import decode_image

    height, width, channels = _shape(artifact)
    table = _table(feature_spec(artifact)["classes"])
    spec = {
        "image": tf.io.FixedLenFeature([], tf.string),
        "label": tf.io.FixedLenFeature([], tf.string),
    }

    def parse(serialized: Any) -> Any:
        record = tf.io.parse_single_example(serialized, spec)
        image = decode_image(record["image"], height, width, channels)
        return {"image": image}, table.lookup(record["label"])

    ds = tf.data.TFRecordDataset(example_files(artifact, "train"), compression_type="GZIP")
    return ds.map(parse).batch(batch_size)


def build(variant: str, artifact: Artifact, batch_size: int) -> Any:
    """The dataset of ``variant`` (one of ``VARIANTS``)."""
    return {"framework": framework, "reference": reference, "naive": naive}[variant](
        artifact, batch_size
    )
