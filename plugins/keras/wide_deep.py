"""The ``wide_deep`` model builder: a linear part over one-hot columns beside a DNN.

For table inputs (``table_input``), after Cheng et al. 2016 ("Wide & Deep Learning for
Recommender Systems"):

* wide: each categorical column one-hot over its train vocabulary (``StringLookup``, with the
  input pipeline's out-of-vocabulary slots) and each bucketised numeric column one-hot over its
  train quantile buckets (``Discretization``): sparse crosses of the data a linear model memorises;
* deep: the numeric columns (missing flags included) normalised with their train mean and
  variance, and the categorical columns with ``encoding: embedding`` as learned embeddings,
  through dense layers (``units``).

The output layer reads both parts at once (``[deep, wide]`` concatenated): the logits are a
linear function of the one-hot columns plus one of the last hidden layer, the wide-and-deep sum.
Every lookup table and boundary lives in the model, so the export takes raw column values.
"""

from __future__ import annotations

from typing import Any, Literal

from beamline import Model, ModelInputs, param
from beamline.errors import PipelineError
from beamline_plugins.training.layers import class_scores, regularizer

Activation = Literal["relu", "sigmoid", "tanh", "linear"]
Output = Literal["softmax", "logistic"]


def wide_columns(inputs: dict[str, Any], layers_in: dict[str, Any]) -> list[Any]:
    """One-hot tensors ``[batch, slots]`` of the categorical and bucketised columns."""
    import keras

    parts = []
    for name, spec in inputs.items():
        if spec.get("modality") == "numeric" and spec.get("boundaries"):
            boundaries = [float(b) for b in spec["boundaries"]]
            one_hot = keras.layers.Discretization(
                bin_boundaries=boundaries, output_mode="one_hot", name=f"{name}_buckets"
            )(layers_in[name])
            parts.append(keras.layers.Reshape((len(boundaries) + 1,), name=f"{name}_wide")(one_hot))
        elif spec.get("modality") == "categorical" and spec.get("encoding") != "embedding":
            vocabulary = list(spec["vocabulary"])
            oov = int(spec.get("oov_buckets", 1))
            one_hot = keras.layers.StringLookup(
                vocabulary=vocabulary,
                num_oov_indices=oov,
                output_mode="one_hot",
                name=f"{name}_one_hot",
            )(layers_in[name])
            parts.append(
                keras.layers.Reshape((len(vocabulary) + oov,), name=f"{name}_wide")(one_hot)
            )
    return parts


def deep_columns(inputs: dict[str, Any], layers_in: dict[str, Any]) -> list[Any]:
    """Float tensors of the deep part: normalised numeric columns and categorical embeddings."""
    import keras

    numeric = [
        (n, s)
        for n, s in inputs.items()
        if s.get("modality") == "numeric" and not s.get("boundaries")
    ]
    parts = []
    if numeric:
        columns = [layers_in[n] for n, _ in numeric]
        x = columns[0] if len(columns) == 1 else keras.layers.Concatenate(name="numeric")(columns)
        parts.append(
            keras.layers.Normalization(
                mean=[float(s["mean"]) for _, s in numeric],
                variance=[float(s["variance"]) for _, s in numeric],
                dtype="float32",
                name="normalize",
            )(x)
        )
    for name, spec in inputs.items():
        if spec.get("modality") != "categorical" or spec.get("encoding") != "embedding":
            continue
        vocabulary = list(spec["vocabulary"])
        oov = int(spec.get("oov_buckets", 1))
        index = keras.layers.StringLookup(
            vocabulary=vocabulary, num_oov_indices=oov, name=f"{name}_lookup"
        )(layers_in[name])
        embedded = keras.layers.Embedding(
            len(vocabulary) + oov, int(spec.get("embedding_dim", 4)), name=f"{name}_embedding"
        )(index)
        parts.append(keras.layers.Flatten(name=f"{name}_flat")(embedded))
    return parts


class WideDeep(Model):
    """Wide and deep: a linear part over the one-hot categorical and bucketised columns beside
    a DNN over the normalised numeric columns (and categorical embeddings), for ``table_input``.

    Softmax over the classes of both parts (one linear unit for a regression; for two classes,
    ``output: logistic`` gives one sigmoid unit). TFX's taxi example uses ``units: [100, 70,
    48, 34]``, ``activation: linear`` (its hidden layers have none), ``output: logistic`` and
    ``output_fan_in: 2162`` (see ``glorot_uniform``)."""

    name = "wide_deep"

    units: list[int] = param([100, 70, 48, 34], help="units of each hidden layer of the DNN", ge=1)
    activation: Activation = param("relu", help="activation of the hidden layers")
    dropout: float = param(0.0, help="dropout rate after each hidden layer", ge=0, lt=1)
    l2: float = param(0.0, help="L2 weight penalty of every layer", ge=0)
    output: Output = param(
        "softmax",
        help="two classes: softmax over two units, or logistic: one unit and its sigmoid "
        "(TFX's taxi example), given as the same two-class scores",
    )
    output_fan_in: int = param(
        0,
        help="fan-in the output layer's Glorot-uniform initialisation assumes (0: its real "
        "inputs); for a model whose one-hot columns have more declared slots than values",
        ge=0,
    )

    def build(self, inputs: ModelInputs, num_classes: int) -> Any:
        """Return the Keras model for ``inputs`` and ``num_classes`` classes (0: a regression)."""
        import keras

        unknown = sorted(
            n for n, s in inputs.items() if s.get("modality") not in ("numeric", "categorical")
        )
        if unknown or not inputs:
            raise PipelineError(
                f"wide_deep takes table columns (input: table_input); got {unknown or 'none'}"
            )
        layers_in = {
            name: keras.Input(
                shape=(1,),
                name=name,
                dtype="float32" if spec.get("modality") == "numeric" else "string",
            )
            for name, spec in inputs.items()
        }
        parts = []
        deep = deep_columns(inputs, layers_in)
        if deep:
            x = deep[0] if len(deep) == 1 else keras.layers.Concatenate(name="deep_in")(deep)
            for units in self.units:
                x = keras.layers.Dense(
                    units, activation=self.activation, kernel_regularizer=regularizer(self.l2)
                )(x)
                if self.dropout > 0:
                    x = keras.layers.Dropout(self.dropout)(x)
            parts.append(x)
        parts += wide_columns(inputs, layers_in)
        x = parts[0] if len(parts) == 1 else keras.layers.Concatenate(name="wide_and_deep")(parts)
        if num_classes == 0:
            out = keras.layers.Dense(
                1, kernel_regularizer=regularizer(self.l2), dtype="float32", name="prediction"
            )(x)
        elif num_classes == 2 and self.output == "logistic":
            out = logistic_scores(x, self.l2, glorot_uniform(self.output_fan_in, 1))
        elif self.output_fan_in:
            out = keras.layers.Dense(
                num_classes,
                activation="softmax",
                kernel_initializer=glorot_uniform(self.output_fan_in, num_classes),
                kernel_regularizer=regularizer(self.l2),
                dtype="float32",
                name="scores",
            )(x)
        else:
            out = class_scores(x, num_classes, self.l2)
        return keras.Model(layers_in, out, name=self.name)


def glorot_uniform(fan_in: int, fan_out: int) -> Any:
    """Keras' Glorot-uniform initialiser, for ``fan_in`` inputs (0: the layer's own).

    TFX's taxi example one-hots its vocabularies into 1,010 slots each (top 1,000 + 10 OOV,
    however few values there are) and hour, day and month into 24, 31 and 13: its output layer
    reads 2,162 inputs and starts from U(+-0.053); the same model over the slots the values
    fill reads about 220 and would start three times wider."""
    import keras

    if not fan_in:
        return "glorot_uniform"
    limit = (6.0 / (fan_in + fan_out)) ** 0.5
    return keras.initializers.RandomUniform(-limit, limit)


def logistic_scores(x: Any, l2: float, initializer: Any = "glorot_uniform") -> Any:
    """Two-class scores ``[1 - sigmoid(z), sigmoid(z)]`` of one logit ``z`` (``Dense(1)``).

    They are ``softmax([0, z])``: the trainer's crossentropy on them is the binary
    crossentropy of a sigmoid unit, and they keep the ``scores`` layer the trainer, evaluator
    and export read. The constant 0 logit is a frozen zero-initialised unit."""
    import keras

    logit = keras.layers.Dense(
        1, kernel_initializer=initializer, kernel_regularizer=regularizer(l2), name="logit"
    )(x)
    zero = keras.layers.Dense(
        1, use_bias=False, kernel_initializer="zeros", trainable=False, name="zero_logit"
    )(logit)
    both = keras.layers.Concatenate(name="logits")([zero, logit])
    return keras.layers.Softmax(dtype="float32", name="scores")(both)
