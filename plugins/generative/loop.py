"""The GAN training step: one ``tf.function`` that updates discriminator and generator together.

Per replica (``strategy.run``), a batch of real images gets as many generated images from fresh
noise; the discriminator learns real (target ``1 - label_smoothing``) against generated (target
0) and the generator learns to make the discriminator say real (target 1), both with sigmoid
cross-entropy on logits, both updated from the same forward pass (simultaneous gradient steps).
As in ``beamline_plugins.training.loop``, each replica divides its summed per-example losses by the
*global* batch size, so the optimizers' all-reduced gradients are those of the global mean.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .models import IMAGE, LABEL, NOISE


@dataclass
class GanEpoch:
    """Summed losses, discriminator hits and image count over one pass of the training data."""

    d_loss: float = 0.0
    g_loss: float = 0.0
    real_correct: float = 0.0
    fake_correct: float = 0.0
    count: float = 0.0

    def add(self, values: Any) -> None:
        """Add one step's reduced ``(d_loss, g_loss, real_correct, fake_correct, count)``."""
        d_loss, g_loss, real, fake, count = (float(v) for v in values)
        self.d_loss += d_loss
        self.g_loss += g_loss
        self.real_correct += real
        self.fake_correct += fake
        self.count += count

    def record(self) -> dict[str, float]:
        """Per-image means: losses and the discriminator's accuracy on real and on fake images."""
        n = self.count or float("nan")
        return {
            "d_loss": self.d_loss / n,
            "g_loss": self.g_loss / n,
            "d_real_accuracy": self.real_correct / n,
            "d_fake_accuracy": self.fake_correct / n,
        }


def make_gan_step(
    strategy: Any,
    generator: Any,
    discriminator: Any,
    g_optimizer: Any,
    d_optimizer: Any,
    rng: Any,
    *,
    latent_dim: int,
    label_smoothing: float,
    conditional: bool,
) -> Callable[[Any], Any]:
    """A step taking a distributed ``(features, labels)`` batch of real images (``features``
    holds one image tensor) and returning the reduced sums of ``GanEpoch.add``."""
    import tensorflow as tf

    real_target = 1.0 - label_smoothing

    def bce(target: float, logits: Any) -> Any:
        logits = tf.reshape(tf.cast(logits, tf.float32), [-1])
        return tf.nn.sigmoid_cross_entropy_with_logits(tf.fill(tf.shape(logits), target), logits)

    def replica_step(images: Any, labels: Any) -> Any:
        local = tf.shape(images)[0]
        count = tf.cast(local, tf.float32)
        total = tf.distribute.get_replica_context().all_reduce("SUM", count)
        total = tf.maximum(total, 1.0)
        noise = rng.normal([local, latent_dim])
        g_inputs = {NOISE: noise}
        real_inputs = {IMAGE: images}
        if conditional:
            labels = tf.cast(labels, tf.int32)
            g_inputs[LABEL] = labels
            real_inputs[LABEL] = labels
        with tf.GradientTape() as d_tape, tf.GradientTape() as g_tape:
            fake = generator(g_inputs, training=True)
            fake_inputs = {**real_inputs, IMAGE: fake}
            real_logits = discriminator(real_inputs, training=True)
            fake_logits = discriminator(fake_inputs, training=True)
            d_per_image = bce(real_target, real_logits) + bce(0.0, fake_logits)
            g_per_image = bce(1.0, fake_logits)
            d_loss = tf.reduce_sum(d_per_image) / total
            g_loss = tf.reduce_sum(g_per_image) / total
        d_grads = d_tape.gradient(d_loss, discriminator.trainable_variables)
        g_grads = g_tape.gradient(g_loss, generator.trainable_variables)
        d_optimizer.apply_gradients(zip(d_grads, discriminator.trainable_variables, strict=True))
        g_optimizer.apply_gradients(zip(g_grads, generator.trainable_variables, strict=True))
        real_correct = tf.reduce_sum(tf.cast(tf.reshape(real_logits, [-1]) > 0, tf.float32))
        fake_correct = tf.reduce_sum(tf.cast(tf.reshape(fake_logits, [-1]) < 0, tf.float32))
        return (
            tf.reduce_sum(d_per_image),
            tf.reduce_sum(g_per_image),
            real_correct,
            fake_correct,
            count,
        )

    @tf.function(reduce_retracing=True)
    def step(batch: Any) -> Any:
        features, labels = batch[0], batch[1]
        (images,) = features.values() if isinstance(features, dict) else (features,)
        out = strategy.run(replica_step, args=(images, labels))
        return [strategy.reduce("SUM", value, axis=None) for value in out]

    return step


def run_gan_epoch(step: Callable[[Any], Any], dataset: Any) -> GanEpoch:
    """Run ``step`` over every batch of a (distributed) dataset and sum what it returns."""
    epoch = GanEpoch()
    for batch in dataset:
        epoch.add(step(batch))
    return epoch
