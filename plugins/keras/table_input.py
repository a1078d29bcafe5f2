"""The ``table_input`` input pipeline: rows of a table (``csv_table``, ``jsonl_table``) for Keras.

It follows the input pipeline contract of ``beamline_plugins.training.image_input``
(``model_inputs`` / ``dataset`` / ``serving``) and adds what a regression needs: ``task`` and
``target_stats``.

What is learnt from data is learnt from the ``stats_split`` (train) only and written into the
model inputs (``model.json``), never from eval or test:

* numeric columns: mean and (population) variance, which the model builders bake into a
  ``keras.layers.Normalization`` layer, so a model takes raw values; missing values are left
  out, except that a constant ``fill`` counts them as that constant (the values the model sees,
  as TFX's ``tft.scale_to_z_score`` of filled values);
* categorical columns (text, or integer codes taken as categories): the vocabulary (the
  ``max_categories`` most frequent values), baked into a ``keras.layers.StringLookup``; values
  never seen in train are hashed into ``oov_buckets`` out-of-vocabulary slots;
* bucketised columns (``buckets``): the quantile boundaries the ``column_quantiles`` transform
  computed on the train split at ingest (in Beam), read from the examples' assets; the model
  bakes them into a ``keras.layers.Discretization`` (``wide_deep``);
* the label of a regression: its mean and variance (the trainer scales the model's output with
  them, and the evaluator's baseline predicts that mean).

A missing numeric value (an empty CSV cell) is filled by the column's ``fill`` rule: the train
mean (the default), a constant, or ``flag``: the train mean plus a 0/1 input ``<column>_missing``
the model can learn from. Training and the serving signature fill alike (``to_model_features``
is the one function both call). The serving signature takes one named tensor per column:
``float32 [None]`` for numeric columns (NaN: a missing value) and ``string [None]`` for
categorical ones (an integer code as its text; ``""``: missing).

TensorFlow is imported inside the functions only.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

from beamline import Artifact, InputPipeline, ModelInputs, param
from beamline.errors import PipelineError
from beamline.examples import feature_spec
from beamline_plugins.training.records import (
    cached_and_shuffled,
    id_features,
    label_indexer,
    label_info,
    read_records,
    split_size,
)

from .table_columns import (
    FLAG_SUFFIX,
    STATS_BATCH,
    column_stats,
    quantile_boundaries,
    raw_parser,
    to_model_features,
)

Task = Literal["regression", "classification"]
Encoding = Literal["one_hot", "embedding"]
NUMERIC_DTYPES = ("int64", "float")
CATEGORICAL_DTYPES = ("int64", "bytes")
NUMERIC_PACK = "__numeric__"
Fill = float | Literal["mean", "flag"]


class TableInput(InputPipeline):
    """Table rows: numeric columns (normalised in the model) and categorical columns, a label.

    Numeric columns default to every numeric feature except the label and id features.
    Normalisation statistics and category vocabularies come from the train split only and are
    baked into the model, so the exported model takes raw column values. ``task: regression``
    reads a numeric label; ``task: classification`` maps the label to the artifact's classes
    exactly as the image, text and audio input pipelines do."""

    name = "table_input"
    task: Task = param("regression", help="regression (numeric label) or classification")
    label: str = param("", help="label column; default: the label of the examples artifact")
    features: list[str] = param(
        [], help="numeric feature columns; default: every numeric feature but the label and ids"
    )
    categorical: list[str] = param([], help="categorical columns (text or integer codes)")
    buckets: list[str] = param(
        [], help="numeric columns bucketised at the train quantiles of 'column_quantiles'"
    )
    exclude: list[str] = param([], help="columns left out of the default numeric features")
    fill: dict[str, Fill] = param(
        {}, help="missing numeric values per column: mean (default), a number, or flag"
    )
    encoding: Encoding = param(
        "one_hot", help="categorical columns: one_hot, or a learned embedding"
    )
    embedding_dim: int = param(4, help="embedding width of each categorical column")
    max_categories: int = param(
        1000, help="most frequent train values kept per categorical column; others: OOV slots"
    )
    oov_buckets: int = param(
        1, help="out-of-vocabulary slots per categorical column (values hashed)", ge=1
    )
    stats_split: str = param(
        "train", help="split the normalisation statistics and vocabularies are computed on"
    )
    shuffle_buffer: int = param(10000, help="shuffle buffer of the training split (rows)")
    whole_batches: bool = param(
        False,
        help="training: every batch full; an epoch's last batch is filled from the next "
        "shuffled pass (as TFX's reader, whose batches run across epochs)",
    )
    cache: bool = param(True, help="keep parsed rows in memory after the first epoch")

    # --- columns ---------------------------------------------------------------------------

    def label_name(self, examples: Artifact) -> str:
        """The label column this pipeline reads."""
        spec = feature_spec(examples)
        features = spec.get("features", {})
        label = self.label or spec.get("label") or ""
        if not label:
            raise PipelineError(
                f"table_input: {examples.path} names no label; set 'label:' here or in the source"
            )
        if label not in features:
            raise PipelineError(
                f"table_input: no column '{label}' (the label) in {examples.path} "
                f"(columns: {', '.join(features)})"
            )
        if self.task == "regression" and features[label].get("dtype") not in NUMERIC_DTYPES:
            raise PipelineError(
                f"table_input: the label '{label}' holds {features[label].get('dtype')} values; "
                "a regression needs a numeric label (or use task: classification)"
            )
        if self.task == "classification":
            artifact_label, _ = label_info(examples)
            if artifact_label != label:
                raise PipelineError(
                    f"table_input: classification reads the artifact's label '{artifact_label}' "
                    f"and its classes; '{label}' has none (set it as the source's label)"
                )
        return label

    def columns(self, examples: Artifact) -> tuple[list[str], list[str]]:
        """The numeric (bucketised ones last) and the categorical feature columns, checked
        against the artifact."""
        features = feature_spec(examples).get("features", {})
        label = self.label_name(examples)
        for name in [*self.features, *self.categorical, *self.buckets, *self.fill]:
            if name not in features:
                raise PipelineError(
                    f"table_input: no column '{name}' in {examples.path} "
                    f"(columns: {', '.join(features)})"
                )
            if name == label:
                raise PipelineError(f"table_input: '{name}' is the label, not a feature")
        for a, b, what in (
            (self.features, self.categorical, "numeric and categorical"),
            (self.features, self.buckets, "numeric and bucketised"),
            (self.categorical, self.buckets, "categorical and bucketised"),
        ):
            both = sorted(set(a) & set(b))
            if both:
                raise PipelineError(f"table_input: {both} are both {what} features")
        taken = {label, *self.categorical, *self.buckets, *self.exclude}
        if self.features:
            numeric = list(self.features)
        else:
            numeric = [
                name
                for name, f in features.items()
                if f.get("modality") == "numeric" and name not in taken
            ]
        numeric += [name for name in self.buckets if name not in numeric]
        for name in self.fill:
            if name not in numeric:
                raise PipelineError(
                    f"table_input: fill.{name}: '{name}' is not a numeric feature of this input"
                )
        for name in numeric:
            if features[name].get("dtype") not in NUMERIC_DTYPES:
                raise PipelineError(
                    f"table_input: column '{name}' holds {features[name].get('dtype')} values, "
                    "not numbers; list it under 'categorical:'"
                )
        for name in self.categorical:
            if features[name].get("dtype") not in CATEGORICAL_DTYPES:
                raise PipelineError(
                    f"table_input: categorical column '{name}' holds float values; list it "
                    "under 'features:'"
                )
        for name in [*numeric, *self.categorical]:
            if features[name].get("length") not in (1, None):
                raise PipelineError(
                    f"table_input: column '{name}' holds {features[name]['length']} values per "
                    "row; table_input reads one value per column"
                )
        if not numeric and not self.categorical:
            raise PipelineError(f"table_input: {examples.path} has no numeric feature to use")
        return numeric, list(self.categorical)

    # --- statistics (train split only) -----------------------------------------------------

    def model_inputs(self, examples: Artifact) -> ModelInputs:
        """One input per column, with the train statistics the model bakes in.

        Numeric: ``{"shape": [1], "dtype": "float32", "modality": "numeric", "mean",
        "variance", "missing", "fill", "raw_dtype"}`` (a bucketised one also ``"boundaries"``); a
        ``fill: flag`` column adds ``<column>_missing`` (``"flag_of": column``, 0/1);
        categorical: ``{"shape": [1], "dtype": "string", "modality": "categorical",
        "vocabulary", "oov_buckets", "encoding", "embedding_dim", "raw_dtype"}``."""
        numeric, categorical = self.columns(examples)
        features = feature_spec(examples)["features"]
        kinds = dict.fromkeys(numeric, "numeric") | dict.fromkeys(categorical, "categorical")
        stats = column_stats(examples, self.stats_split, kinds)
        inputs: dict[str, dict[str, Any]] = {}
        for name in numeric:
            column = stats[name]
            if not column.count:
                raise PipelineError(
                    f"table_input: column '{name}' has no value in split '{self.stats_split}'"
                )
            rule = self.fill.get(name, "mean")
            moments = column if rule in ("mean", "flag") else column.filled(float(rule))
            inputs[name] = {
                "shape": [1],
                "dtype": "float32",
                "modality": "numeric",
                "mean": moments.mean,
                "variance": moments.variance if moments.variance > 0 else 1.0,
                "missing": column.missing,
                "fill": column.mean if rule in ("mean", "flag") else float(rule),
                "raw_dtype": features[name]["dtype"],
            }
            if name in self.buckets:
                inputs[name]["boundaries"] = quantile_boundaries(examples, name)
        for name in numeric:
            if self.fill.get(name) == "flag":
                inputs[name + FLAG_SUFFIX] = {
                    "shape": [1],
                    "dtype": "float32",
                    "modality": "numeric",
                    "mean": 0.0,
                    "variance": 1.0,
                    "flag_of": name,
                    "raw_dtype": "float",
                }
        for name in categorical:
            ranked = sorted(stats[name].values.items(), key=lambda kv: (-kv[1], kv[0]))
            inputs[name] = {
                "shape": [1],
                "dtype": "string",
                "modality": "categorical",
                "vocabulary": [value for value, _ in ranked[: self.max_categories]],
                "oov_buckets": self.oov_buckets,
                "encoding": self.encoding,
                "embedding_dim": self.embedding_dim,
                "raw_dtype": features[name]["dtype"],
            }
        return inputs

    def target_stats(self, examples: Artifact) -> dict[str, float]:
        """Mean, variance and count of a regression label over the ``stats_split``."""
        label = self.label_name(examples)
        stats = column_stats(examples, self.stats_split, {label: "numeric"})[label]
        if not stats.count:
            raise PipelineError(f"table_input: split '{self.stats_split}' has no label values")
        return {"mean": stats.mean, "variance": stats.variance, "count": stats.count}

    # --- tf.data and serving ---------------------------------------------------------------

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
        """Batches of ``(features, label)`` (and ``ids`` when ``with_ids``) of ``split``.

        The label is a float32 value for a regression, the class index for a classification.
        Training rows are reshuffled every epoch; the order depends on ``seed`` only."""
        import tensorflow as tf

        inputs = inputs or self.model_inputs(examples)
        label = self.label_name(examples)
        kinds = {
            name: spec.get("modality", "numeric")
            for name, spec in inputs.items()
            if not spec.get("flag_of")
        }
        numeric = [name for name, kind in kinds.items() if kind == "numeric"]
        parse_columns = raw_parser(examples, kinds)
        if self.task == "classification":
            label_spec, index_of = label_indexer(examples)
        else:
            label_spec, index_of = _float_label(examples, label)
        ids, ids_spec = id_features(examples) if with_ids else ([], {})
        extra_spec = {**label_spec, **ids_spec}

        def parse(serialized: Any) -> Any:
            # A batch of rows; numeric columns travel packed as one [rows, columns] tensor, so
            # caching, shuffling and batching move one component per row, not one per column.
            columns = parse_columns(serialized)
            record = tf.io.parse_example(serialized, extra_spec)
            packed = {name: v for name, v in columns.items() if name not in numeric}
            if numeric:
                packed[NUMERIC_PACK] = tf.stack([columns[name] for name in numeric], axis=1)
            out = (packed, index_of(record))
            return out + ({name: record[name] for name in ids},) if ids else out

        def unpack(packed: dict[str, Any]) -> dict[str, Any]:
            columns = {name: v for name, v in packed.items() if name != NUMERIC_PACK}
            if numeric:
                values = tf.split(packed[NUMERIC_PACK], len(numeric), axis=1)
                columns.update(
                    (n, tf.reshape(v, [-1])) for n, v in zip(numeric, values, strict=True)
                )
            return to_model_features(columns, inputs)

        ds = read_records(examples, split, None, shuffle_files=training, seed=seed)
        ds = ds.batch(STATS_BATCH).map(parse, num_parallel_calls=tf.data.AUTOTUNE).unbatch()
        ds = cached_and_shuffled(
            ds, cache=self.cache, training=training, buffer=self.shuffle_buffer, seed=seed
        )
        if training and self.whole_batches:
            # The same ceil(rows / batch) steps an epoch, all of them full: the pass after the
            # epoch's own (reshuffled) tops up its last batch, so over a fit every row is seen
            # as often as in one stream of repeated passes cut into batches.
            steps = max(1, -(-split_size(examples, split) // batch_size))
            ds = ds.repeat().batch(batch_size).take(steps)
        else:
            ds = ds.batch(batch_size)
        ds = ds.map(
            lambda x, y, *rest: (unpack(x), y, *rest),
            num_parallel_calls=tf.data.AUTOTUNE,
            deterministic=True,
        )
        return ds.prefetch(tf.data.AUTOTUNE)

    def serving(
        self, inputs: ModelInputs
    ) -> tuple[dict[str, Any], Callable[[dict[str, Any]], dict[str, Any]]]:
        """The serving signature (one raw tensor per column) and its preprocessing."""
        import tensorflow as tf

        raw_columns = {name: spec for name, spec in inputs.items() if not spec.get("flag_of")}
        signature = {}
        for name, spec in raw_columns.items():
            dtype = tf.float32 if spec.get("modality") == "numeric" else tf.string
            signature[name] = tf.TensorSpec([None], dtype, name=_tensor_name(name))

        def preprocess(raw: dict[str, Any]) -> dict[str, Any]:
            columns = {}
            for name, spec in raw_columns.items():
                value = raw[name]
                if spec.get("modality") == "numeric":
                    columns[name] = tf.cast(value, tf.float32)
                else:
                    columns[name] = value
            return to_model_features(columns, inputs)

        return signature, preprocess


def _float_label(
    examples: Artifact, label: str
) -> tuple[dict[str, Any], Callable[[dict[str, Any]], Any]]:
    import tensorflow as tf

    is_int = feature_spec(examples)["features"][label].get("dtype") == "int64"
    spec = {label: tf.io.FixedLenFeature([], tf.int64 if is_int else tf.float32)}

    def value_of(record: dict[str, Any]) -> Any:
        return tf.cast(record[label], tf.float32)

    return spec, value_of


def _tensor_name(name: str) -> str:
    """A TensorFlow-safe placeholder name for a column name."""
    safe = "".join(c if c.isalnum() or c in "_.-" else "_" for c in name)
    return safe if safe[:1].isalpha() else f"x_{safe}"
