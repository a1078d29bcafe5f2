"""TFX module file of the digits-table job: Transform's ``preprocessing_fn`` and Trainer's
``run_fn``. The model and its preprocessing mirror ``bench/pipelines/digits_table.yaml``:
every pixel column standardised with statistics of the train split (``tft.scale_to_z_score``,
analysed on train only, as ours does), an MLP with one hidden layer of 128 ReLU units, Adam,
batch 32."""

from __future__ import annotations

from typing import Any

import tensorflow as tf
import tensorflow_transform as tft
import tf_keras as keras
from tfx_bsl.public import tfxio

PIXELS = [f"p{i:02d}" for i in range(64)]
LABEL = "label"
BATCH_SIZE = 32
LEARNING_RATE = 0.002
HIDDEN_UNITS = 128


def preprocessing_fn(inputs: dict[str, Any]) -> dict[str, Any]:
    """The 64 pixel columns, each standardised, as one float vector; and the label."""
    columns = [
        tf.reshape(tft.scale_to_z_score(tf.cast(inputs[name], tf.float32)), [-1, 1])
        for name in PIXELS
    ]
    return {"pixels": tf.concat(columns, axis=1), LABEL: tf.reshape(inputs[LABEL], [-1])}


def _dataset(files: list[str], accessor: Any, transform: Any, repeat: bool) -> Any:
    ds = accessor.tf_dataset_factory(
        files,
        tfxio.TensorFlowDatasetOptions(
            batch_size=BATCH_SIZE, label_key=LABEL, num_epochs=None if repeat else 1
        ),  # fmt: skip
        transform.transformed_metadata.schema,
    )
    return ds


def _serving_fn(model: Any, transform: Any) -> Any:
    model.tft_layer = transform.transform_features_layer()

    @tf.function(input_signature=[tf.TensorSpec(shape=[None], dtype=tf.string, name="examples")])
    def serve(serialized: Any) -> Any:
        spec = transform.raw_feature_spec()
        spec.pop(LABEL)
        raw = tf.io.parse_example(serialized, spec)
        return model(model.tft_layer(raw))

    return serve


def run_fn(fn_args: Any) -> None:
    """Train the MLP for ``fn_args.train_steps`` steps and save it with a serving signature."""
    transform = tft.TFTransformOutput(fn_args.transform_output)
    train = _dataset(fn_args.train_files, fn_args.data_accessor, transform, repeat=True)
    evaluation = _dataset(fn_args.eval_files, fn_args.data_accessor, transform, repeat=False)
    keras.utils.set_random_seed(0)
    inputs = keras.Input(shape=(64,), name="pixels")
    hidden = keras.layers.Dense(HIDDEN_UNITS, activation="relu")(inputs)
    outputs = keras.layers.Dense(10, activation="softmax")(hidden)
    model = keras.Model(inputs, outputs)
    model.compile(
        optimizer=keras.optimizers.Adam(LEARNING_RATE),
        loss="sparse_categorical_crossentropy",
        metrics=["sparse_categorical_accuracy"],
    )
    model.fit(
        train,
        steps_per_epoch=fn_args.train_steps,
        epochs=1,
        validation_data=evaluation,
        verbose=0,
    )
    model.save(
        fn_args.serving_model_dir,
        save_format="tf",
        signatures={"serving_default": _serving_fn(model, transform)},
    )
