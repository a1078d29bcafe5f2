"""TFX module file of the taxi job: Transform's ``preprocessing_fn`` and Trainer's ``run_fn``.

What TFX's own taxi example computes (its ``taxi_utils_native_keras``), written for this
benchmark, and the same model ``bench/pipelines/taxi.yaml`` trains:

* label ``big_tipper``: tips > 0.2 * fare, 0 for a trip without a fare (the sample has none);
* trip_miles, fare, trip_seconds: missing -> 0, then z-scored with train statistics
  (``tft.scale_to_z_score``: the filled values' mean and population variance);
* payment_type, company: train vocabularies, top 1,000 plus 10 out-of-vocabulary buckets;
* pickup/dropoff latitude/longitude: missing -> 0, then 10 train-quantile buckets;
* trip_start_hour, trip_start_day, trip_start_month: the integer itself one-hot over 24, 31 and
  13 slots (TFX's example lists seven integer columns but zips them with these three sizes, so
  the census tracts and community areas never reach its model; they do not reach this one);
* wide and deep: the one-hot columns (the linear part) beside a DNN 100-70-48-34 over the three
  z-scored numbers, its layers without activation as in TFX's example (its ``Normalization``
  layer, never adapted, is the identity and left out), one sigmoid unit over both parts,
  binary crossentropy, Adam 0.001 (tf_keras' defaults otherwise), batch 40, Glorot-uniform
  kernels and zero biases;
* training data: tfxio's reader, shuffled in a 10,000-row buffer and repeated, so batches run
  across epoch boundaries (1,000 steps = 40,000 rows).

Transform analyses the train split only. ``custom_config["seed"]`` seeds Keras (and through
TensorFlow's global seed the shuffle).
"""

from __future__ import annotations

from typing import Any

import tensorflow as tf
import tensorflow_transform as tft
import tf_keras as keras
from tfx_bsl.public import tfxio

NUMERIC = ["trip_miles", "fare", "trip_seconds"]
VOCABULARY = ["payment_type", "company"]
BUCKETED = ["pickup_latitude", "pickup_longitude", "dropoff_latitude", "dropoff_longitude"]
#: The integer columns TFX's example one-hots, with its slot counts.
CATEGORIES = {"trip_start_hour": 24, "trip_start_day": 31, "trip_start_month": 13}
LABEL = "big_tipper"
TOP_K = 1000
OOV = 10
BUCKETS = 10
UNITS = [100, 70, 48, 34]
BATCH_SIZE = 40
LEARNING_RATE = 0.001


def _dense(value: Any) -> Any:
    """A dense ``[batch]`` tensor of a raw column: missing cells become '' or 0."""
    if not isinstance(value, tf.sparse.SparseTensor):
        return tf.reshape(value, [-1])
    default = "" if value.dtype == tf.string else tf.cast(0, value.dtype)
    shaped = tf.SparseTensor(value.indices, value.values, [value.dense_shape[0], 1])
    return tf.squeeze(tf.sparse.to_dense(shaped, default), axis=1)


def _width(name: str) -> int:
    """One-hot slots of a transformed column."""
    if name in BUCKETED:
        return BUCKETS
    return CATEGORIES.get(name, TOP_K + OOV)


def preprocessing_fn(inputs: dict[str, Any]) -> dict[str, Any]:
    """Raw taxi columns -> model features and the big-tipper label (analysers on train)."""
    out: dict[str, Any] = {}
    for name in NUMERIC:
        out[name] = tft.scale_to_z_score(tf.cast(_dense(inputs[name]), tf.float32))
    for name in VOCABULARY:
        out[name] = tft.compute_and_apply_vocabulary(
            _dense(inputs[name]), top_k=TOP_K, num_oov_buckets=OOV
        )
    for name in CATEGORIES:
        out[name] = _dense(inputs[name])
    for name in BUCKETED:
        out[name] = tft.bucketize(tf.cast(_dense(inputs[name]), tf.float32), BUCKETS)
    fare = inputs["fare"]
    if isinstance(fare, tf.sparse.SparseTensor):
        has_fare = _dense(tf.sparse.map_values(tf.ones_like, fare)) > 0
    else:
        has_fare = tf.ones_like(_dense(fare), tf.bool)
    fare = tf.cast(_dense(fare), tf.float32)
    tips = tf.cast(_dense(inputs["tips"]), tf.float32)
    out[LABEL] = tf.where(has_fare, tf.cast(tips > 0.2 * fare, tf.int64), tf.constant(0, tf.int64))
    return out


def _model() -> Any:
    inputs = {name: keras.Input(shape=(1,), name=name, dtype=tf.float32) for name in NUMERIC}
    inputs |= {
        name: keras.Input(shape=(1,), name=name, dtype=tf.int64)
        for name in [*VOCABULARY, *CATEGORIES, *BUCKETED]
    }
    deep = keras.layers.concatenate([inputs[name] for name in NUMERIC])
    for units in UNITS:
        deep = keras.layers.Dense(units)(deep)
    wide = [
        keras.layers.CategoryEncoding(num_tokens=_width(name), output_mode="one_hot")(inputs[name])
        for name in [*VOCABULARY, *CATEGORIES, *BUCKETED]
    ]
    both = keras.layers.concatenate([deep, *wide])
    outputs = keras.layers.Dense(1, activation="sigmoid")(both)
    model = keras.Model(inputs, outputs)
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=LEARNING_RATE),
        loss="binary_crossentropy",
        metrics=[keras.metrics.BinaryAccuracy()],
    )
    return model


def _dataset(files: list[str], accessor: Any, transform: Any, repeat: bool) -> Any:
    return accessor.tf_dataset_factory(
        files,
        tfxio.TensorFlowDatasetOptions(
            batch_size=BATCH_SIZE,
            label_key=LABEL,
            num_epochs=None if repeat else 1,
        ),
        transform.transformed_metadata.schema,
    )


def _signatures(model: Any, transform: Any) -> dict[str, Any]:
    model.tft_layer = transform.transform_features_layer()

    @tf.function(input_signature=[tf.TensorSpec(shape=[None], dtype=tf.string, name="examples")])
    def serve(serialized: Any) -> Any:
        spec = transform.raw_feature_spec()
        raw = tf.io.parse_example(serialized, spec)
        features = model.tft_layer(raw)
        features.pop(LABEL, None)
        return {"outputs": model(features)}

    @tf.function(input_signature=[tf.TensorSpec(shape=[None], dtype=tf.string, name="examples")])
    def transform_features(serialized: Any) -> Any:
        raw = tf.io.parse_example(serialized, transform.raw_feature_spec())
        return model.tft_layer(raw)

    return {"serving_default": serve, "transform_features": transform_features}


def run_fn(fn_args: Any) -> None:
    """Train for ``fn_args.train_steps`` steps and save the model with its signatures."""
    transform = tft.TFTransformOutput(fn_args.transform_output)
    seed = int((fn_args.custom_config or {}).get("seed", 0))
    keras.utils.set_random_seed(seed)
    train = _dataset(fn_args.train_files, fn_args.data_accessor, transform, repeat=True)
    evaluation = _dataset(fn_args.eval_files, fn_args.data_accessor, transform, repeat=False)
    model = _model()
    model.fit(
        train,
        steps_per_epoch=fn_args.train_steps,
        epochs=1,
        validation_data=evaluation,
        verbose=0,
    )
    model.save(
        fn_args.serving_model_dir, save_format="tf", signatures=_signatures(model, transform)
    )
