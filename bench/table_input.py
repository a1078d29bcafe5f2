"""A benchmark-only plugin: ``pixel_table_input``, numeric pixel columns as one image input.

The digits table of case 5 holds an 8x8 image as 64 integer columns (0..16). This input
pipeline stacks them into a float32 ``[8, 8, 1]`` image in [0, 1] (divided by 16), so the
framework's ``mlp`` model trains on it. Loaded by ``bench/pipelines/digits_table.yaml``
through its ``plugins:`` list; not part of the framework.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pipeline import Artifact, InputPipeline, hookimpl, param
from pipeline.examples import example_files, feature_spec


class PixelTableInput(InputPipeline):
    """Pixel columns of a table (``prefix`` + number) as one ``[side, side, 1]`` image input."""

    name = "pixel_table_input"

    prefix: str = param("p", help="pixel columns are this prefix followed by their number")
    side: int = param(8, help="the image is side x side pixels")
    scale: float = param(16.0, help="pixel values are divided by this")
    cache: bool = param(True, help="keep parsed examples in memory after the first epoch")

    def columns(self) -> list[str]:
        """The pixel column names, in row-major order."""
        return [f"{self.prefix}{i:02d}" for i in range(self.side * self.side)]

    def model_inputs(self, examples: Artifact) -> dict[str, dict[str, Any]]:
        """One input, ``pixels``, of shape ``[side, side, 1]``."""
        return {
            "pixels": {"shape": [self.side, self.side, 1], "dtype": "float32", "modality": "image"}
        }

    def _image(self, columns: dict[str, Any]) -> Any:
        import tensorflow as tf

        values = tf.stack([tf.cast(columns[c], tf.float32) for c in self.columns()], axis=-1)
        shape = tf.concat([tf.shape(values)[:-1], [self.side, self.side, 1]], 0)
        return tf.reshape(values / self.scale, shape)

    def dataset(
        self,
        examples: Artifact,
        split: str,
        *,
        inputs: dict[str, dict[str, Any]] | None = None,
        training: bool = False,
        batch_size: int = 32,
        seed: int = 0,
        with_ids: bool = False,
    ) -> Any:
        """Batches of ``({"pixels": images}, label index)`` of ``split``."""
        import tensorflow as tf

        spec = feature_spec(examples)
        label, classes = spec["label"], [str(c) for c in spec["classes"]]
        parse_spec = {c: tf.io.FixedLenFeature([], tf.int64) for c in self.columns()}
        parse_spec[label] = tf.io.FixedLenFeature([], tf.int64)
        table = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(
                tf.constant(classes), tf.range(len(classes), dtype=tf.int64)
            ),
            default_value=-1,
        )

        def parse(serialized: Any) -> Any:
            record = tf.io.parse_example(serialized, parse_spec)
            index = table.lookup(tf.strings.as_string(record[label]))
            return {"pixels": self._image(record)}, index

        files = example_files(examples, split)
        ds = tf.data.TFRecordDataset(files, compression_type="GZIP", num_parallel_reads=len(files))
        ds = ds.batch(1024).map(parse, num_parallel_calls=tf.data.AUTOTUNE).unbatch()
        if self.cache:
            ds = ds.cache()
        if training:
            ds = ds.shuffle(10000, seed=seed, reshuffle_each_iteration=True)
        return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)

    def serving(
        self, inputs: dict[str, dict[str, Any]]
    ) -> tuple[dict[str, Any], Callable[[dict[str, Any]], dict[str, Any]]]:
        """Serving takes the pixel columns as int64 vectors."""
        import tensorflow as tf

        signature = {c: tf.TensorSpec([None], tf.int64, name=c) for c in self.columns()}
        return signature, lambda raw: {"pixels": self._image(raw)}


@hookimpl
def register_input_pipelines(register: Any) -> None:
    """Register ``pixel_table_input``."""
    register(PixelTableInput)
