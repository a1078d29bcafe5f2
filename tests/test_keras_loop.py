"""The custom training loop: several steps per graph call train (and evaluate) exactly like one by
one."""

from __future__ import annotations

import numpy as np


def _train(
    per_call: int, steps: int = 13, eval_per_call: int = 0
) -> tuple[list[np.ndarray], float]:
    import keras
    import tensorflow as tf

    from beamline_plugins.training.loop import make_loss, make_steps, run_epoch

    rng = np.random.default_rng(0)
    features = rng.normal(size=(96, 8)).astype("float32")
    labels = (features[:, 0] + features[:, 1] > 0).astype("int64")
    ds = tf.data.Dataset.from_tensor_slices((features, labels)).batch(16).repeat()
    strategy = tf.distribute.get_strategy()
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(2, activation="softmax")])
    optimizer = keras.optimizers.Adam(0.05)
    optimizer.build(model.trainable_variables)
    loss = make_loss("crossentropy", 2, 0.0)
    train_step, eval_step = make_steps(strategy, model, optimizer, loss)
    metrics = run_epoch(train_step, iter(ds), steps, per_call=per_call)
    if eval_per_call:  # 90 rows: batches of 16 with a short last one
        evaluation = tf.data.Dataset.from_tensor_slices((features[:90], labels[:90])).batch(16)
        one = run_epoch(eval_step, evaluation)
        for each in (eval_per_call, 3):  # 6 batches: calls of 4 and 2; of 3, 3 and none
            grouped = run_epoch(eval_step, evaluation, per_call=each)
            assert one.sums == grouped.sums and one.count == 90
    return [w.numpy() for w in model.weights], metrics.mean_loss


def test_steps_per_graph_call_train_exactly_like_single_steps() -> None:
    single, single_loss = _train(per_call=1)
    grouped, grouped_loss = _train(per_call=5, eval_per_call=4)  # 13 steps: calls of 5, 5, 3
    for a, b in zip(single, grouped, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    assert abs(single_loss - grouped_loss) < 1e-5
    assert not np.allclose(single[0], _train(per_call=5, steps=12)[0][0])  # the steps count
