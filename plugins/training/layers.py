"""Keras pieces every classifier builder shares: the weight penalty and the output layer.

Keras is imported inside the functions (they run when a model is built, not when plugins load)."""

from __future__ import annotations

from typing import Any

TRAIN_LOGITS = "train_logits"


def regularizer(l2: float) -> Any:
    """An L2 weight penalty of ``l2``, or None when ``l2`` is 0."""
    import keras

    return keras.regularizers.L2(l2) if l2 > 0 else None


def class_scores(x: Any, num_classes: int, l2: float, name: str = "scores") -> Any:
    """The classifier's output: a float32 softmax over ``num_classes`` named ``scores`` (the
    name the trainer, the evaluator and the exported model look for; an ensemble's members
    take other names and are averaged into ``scores``)."""
    import keras

    return keras.layers.Dense(
        num_classes,
        activation="softmax",
        kernel_regularizer=regularizer(l2),
        dtype="float32",
        name=name,
    )(x)


def members_view(model: Any) -> Any:
    """A model over ``model``'s own layers whose outputs are its ensemble members' scores (the
    softmax layers ``scores_0``, ``scores_1``, ... that ``scores`` averages), for training each
    member on its own loss; None when ``model`` has no such members."""
    import keras

    names = {layer.name for layer in model.layers}
    count = 0
    while f"scores_{count}" in names:
        count += 1
    if count < 2:
        return None
    outputs = [model.get_layer(f"scores_{i}").output for i in range(count)]
    return keras.Model(model.input, outputs, name=f"{model.name}_members")


def training_view(model: Any) -> Any:
    """A model over ``model``'s own layers whose output is the softmax of its layer
    ``train_logits``, for a model that scores differently at inference than it should be
    trained (test-time augmentation averages several views; the fit trains on one); None when
    ``model`` has no such layer."""
    import keras

    if TRAIN_LOGITS not in {layer.name for layer in model.layers}:
        return None
    logits = model.get_layer(TRAIN_LOGITS).output
    scores = keras.layers.Activation("softmax", dtype="float32", name="scores_train")(logits)
    return keras.Model(model.input, scores, name=f"{model.name}_train")
