"""The ``gan_trainer`` step: train a generator against a discriminator in a custom loop.

Artifact::

    generator.keras                 the generator ({"noise"[, "label"]} -> images in [0, 1])
    discriminator.keras             the discriminator (image [, label] -> logit)
    gan.json                        image feature and shape, latent_dim, conditional, classes,
                                    input pipeline params, trainer step
    report/history.json             d_loss, g_loss and discriminator accuracies per epoch
    report/samples_epoch_NNN.png    the fixed-noise sample grid every ``sample_every`` epochs
    report/samples.png              the fixed-noise sample grid of the final generator
    report/losses.png               the curves of history.json

Each epoch's batches are drawn from (seed, epoch) alone. Resume works as in ``keras_trainer``
(``beamline_plugins.training.checkpoints``: the same scratch folder and ``EpochCheckpoints``):
every completed epoch saves a ``tf.train.Checkpoint`` of both models, both optimizers and the
noise generator's state, plus ``state.json`` (history) and that epoch's sample grid; a run
killed mid-epoch continues after the last completed epoch and ends with exactly the weights of
an uninterrupted run (``tests/test_keras_resume.py``), and the folder is removed once the step
completes. Batches are read from ``image_input`` (the images only; labels only for a
conditional GAN), or, for examples without a label, straight from the image feature with the
same ``decode_image``.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

from beamline import (
    DiscriminatorModel,
    Examples,
    GeneratorModel,
    Input,
    InputPipeline,
    StepContext,
    StepResult,
    Trainer,
    param,
)
from beamline.artifacts import Artifact, write_json_atomic
from beamline.errors import PipelineError
from beamline.examples import example_files, feature_spec
from beamline.fingerprint import plain
from beamline_plugins.training.image_input import ImageInput, decode_image
from beamline_plugins.training.records import epoch_seed, one_pass
from beamline_plugins.training.stable_save import normalise_keras_file
from beamline_plugins.training.strategy import StrategyName

from .models import DcganDiscriminator, DcganGenerator

GENERATOR_FILE = "generator.keras"
DISCRIMINATOR_FILE = "discriminator.keras"
GAN_INFO = "gan.json"
SAMPLES_FILE = "samples.png"


class GanTrainer(Trainer):
    """Train a GAN (generator against discriminator) on the images of an examples artifact.

    A custom training loop (a GAN is not ``fit``) under a ``tf.distribute`` strategy: Adam for
    both models, one-sided label smoothing of the real target, a fixed-noise sample grid every
    ``sample_every`` epochs, checkpoints and resume. ``conditional`` trains a class-conditional
    GAN on the examples' labels. Writes both models, history.json and the sample grids."""

    name = "gan_trainer"
    examples: Input[Examples] = param(
        help="the step whose examples artifact holds the training images"
    )
    generator: GeneratorModel = param(DcganGenerator(), help="the generator model component")
    discriminator: DiscriminatorModel = param(
        DcganDiscriminator(), help="the discriminator model component"
    )
    input: InputPipeline = param(ImageInput(), help="the input pipeline reading the images")
    split: str = param("train", help="split whose images are learnt")
    epochs: int = param(30, help="passes over the training images", ge=1)
    batch_size: int = param(32, help="real images per step (as many are generated)", ge=1)
    latent_dim: int = param(32, help="size of the generator's noise vector", ge=1)
    generator_learning_rate: float = param(0.0001, help="Adam learning rate of the generator", gt=0)
    discriminator_learning_rate: float = param(
        0.0004, help="Adam learning rate of the discriminator (faster than the generator's)", gt=0
    )
    beta_1: float = param(0.5, help="Adam beta_1 of both optimizers", ge=0, lt=1)
    beta_2: float = param(0.999, help="Adam beta_2 of both optimizers", ge=0, lt=1)
    label_smoothing: float = param(
        0.1, help="real images are labelled 1 - this (one-sided)", ge=0, lt=1
    )
    conditional: bool = param(False, help="condition both models on the class label")
    sample_every: int = param(5, help="write a sample grid every N epochs (0: final only)", ge=0)
    grid_size: int = param(10, help="the sample grid is grid_size x grid_size images", ge=1)
    strategy: StrategyName = param("auto", help="auto, default, mirrored, multi_worker or tpu")
    seed: int = param(0, help="seed of weights, shuffling, noise and the fixed sample noise")

    def run(self, ctx: StepContext) -> StepResult:
        """Train and write the artifact (see the module docstring)."""
        return _train(self, ctx, ctx.input("examples"))


def labelled(examples: Artifact) -> tuple[str | None, list[str]]:
    """The label feature and classes of an examples artifact, ``(None, [])`` when unlabelled."""
    spec = feature_spec(examples)
    label, classes = spec.get("label"), spec.get("classes")
    if not label or not classes:
        return None, []
    return str(label), [str(c) for c in classes]


def image_batches(
    trainer: GanTrainer, examples: Artifact, inputs: dict[str, dict[str, Any]], epoch: int = 1
) -> Any:
    """One epoch's shuffled training batches of ``({image feature: images}, label index)``,
    in an order drawn from (seed, epoch) alone (``epoch_seed``), so a resumed fit sees the
    epochs an uninterrupted one would have.

    Labelled examples go through ``trainer.input``; unlabelled ones are read here with the same
    ``decode_image`` and get label 0."""
    import tensorflow as tf

    seed = epoch_seed(trainer.seed, epoch)
    if labelled(examples)[0] is not None:
        with one_pass():  # read once: no cache to fill
            return trainer.input.dataset(
                examples,
                trainer.split,
                inputs=inputs,
                training=True,
                batch_size=trainer.batch_size,
                seed=seed,
            )
    ((name, spec),) = inputs.items()
    height, width, channels = spec["shape"]
    parse_spec = {name: tf.io.FixedLenFeature([], tf.string)}

    def parse(serialized: Any) -> Any:
        record = tf.io.parse_single_example(serialized, parse_spec)
        image = decode_image(record[name], height, width, channels)
        return {name: image}, tf.constant(0, tf.int64)

    files = example_files(examples, trainer.split)
    ds = tf.data.TFRecordDataset(files, compression_type="GZIP")
    ds = ds.map(parse, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    ds = ds.shuffle(10000, seed=seed, reshuffle_each_iteration=True)
    return ds.batch(trainer.batch_size).prefetch(tf.data.AUTOTUNE)


def fixed_noise(count: int, latent_dim: int, seed: int) -> Any:
    """The same standard-normal noise for a seed on every machine (numpy, float32)."""
    import numpy as np

    return np.random.default_rng(seed).standard_normal((count, latent_dim)).astype(np.float32)


def generator_inputs(noise: Any, labels: Any | None) -> dict[str, Any]:
    """The generator's input dict for noise and (conditional GANs) class indices."""
    import numpy as np

    from .models import LABEL, NOISE

    inputs = {NOISE: noise}
    if labels is not None:
        inputs[LABEL] = np.asarray(labels, dtype=np.int32)
    return inputs


def _train(trainer: GanTrainer, ctx: StepContext, examples: Artifact) -> StepResult:
    import keras
    import numpy as np
    import tensorflow as tf

    from beamline_plugins.training.checkpoints import EpochCheckpoints, scratch_dir
    from beamline_plugins.training.strategy import is_chief, make_strategy, worker_index

    from .images import plot_losses, save_grid
    from .loop import make_gan_step, run_gan_epoch

    label, classes = labelled(examples)
    if trainer.conditional and label is None:
        raise PipelineError(
            f"gan_trainer: conditional needs labelled examples; step '{examples.step}' has none"
        )
    num_classes = len(classes) if trainer.conditional else 0
    inputs = trainer.input.model_inputs(examples)
    if len(inputs) != 1:
        raise PipelineError(f"gan_trainer: the input pipeline must give one image, got {inputs}")
    ((feature, spec),) = inputs.items()
    shape = [int(s) for s in spec["shape"]]

    strategy, strategy_name = make_strategy(trainer.strategy)
    scratch = scratch_dir(ctx, trainer, examples)
    if not is_chief(strategy):
        scratch = scratch / f"worker-{worker_index()}"
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA

    def epoch_batches(epoch: int) -> Any:
        dataset = image_batches(trainer, examples, inputs, epoch)
        if strategy_name == "default":
            return dataset
        return strategy.experimental_distribute_dataset(dataset.with_options(options))

    with strategy.scope():
        keras.utils.set_random_seed(trainer.seed)
        generator = trainer.generator.build(shape, trainer.latent_dim, num_classes)
        discriminator = trainer.discriminator.build(shape, num_classes)
        g_optimizer = keras.optimizers.Adam(
            trainer.generator_learning_rate, beta_1=trainer.beta_1, beta_2=trainer.beta_2
        )
        d_optimizer = keras.optimizers.Adam(
            trainer.discriminator_learning_rate, beta_1=trainer.beta_1, beta_2=trainer.beta_2
        )
        g_optimizer.build(generator.trainable_variables)
        d_optimizer.build(discriminator.trainable_variables)
        rng = tf.random.Generator.from_seed(trainer.seed)
    out_shape = [int(s) for s in generator.output_shape[1:]]
    if out_shape != shape:
        raise PipelineError(
            f"gan_trainer: the generator makes images of shape {out_shape}, the data has {shape}"
        )
    step = make_gan_step(
        strategy,
        generator,
        discriminator,
        g_optimizer,
        d_optimizer,
        rng,
        latent_dim=trainer.latent_dim,
        label_smoothing=trainer.label_smoothing,
        conditional=trainer.conditional,
    )
    checkpoints = EpochCheckpoints.of(
        scratch,
        generator=generator,
        discriminator=discriminator,
        g_optimizer=g_optimizer,
        d_optimizer=d_optimizer,
        rng=rng,
    )
    state = checkpoints.resume({"epoch": 0, "history": []})
    start = state["resumed_from_epoch"]
    if start:
        ctx.log(f"resuming after epoch {start} of {trainer.epochs} from {scratch}")

    count = trainer.grid_size**2
    noise = fixed_noise(count, trainer.latent_dim, trainer.seed)
    grid_labels = np.arange(count) // trainer.grid_size % num_classes if num_classes else None

    def sample_grid(path: Path) -> None:
        images = generator(generator_inputs(noise, grid_labels), training=False)
        save_grid(np.asarray(images), path, columns=trainer.grid_size)

    samples_dir = scratch / "samples"
    for epoch in range(start + 1, trainer.epochs + 1):
        began = time.perf_counter()
        batches = epoch_batches(epoch)
        record: dict[str, Any] = {"epoch": epoch, **run_gan_epoch(step, batches).record()}
        record["seconds"] = round(time.perf_counter() - began, 3)
        state["history"].append(record)
        if trainer.sample_every and epoch % trainer.sample_every == 0:
            sample_grid(samples_dir / f"samples_epoch_{epoch:03d}.png")
        state["epoch"] = epoch
        checkpoints.save(state)
        ctx.progress(epoch, trainer.epochs, _progress_text(record))

    out = ctx.output_dir
    report = out / "report"
    report.mkdir(parents=True, exist_ok=True)
    for model, name in ((generator, GENERATOR_FILE), (discriminator, DISCRIMINATOR_FILE)):
        model.save(str(out / name))
        normalise_keras_file(out / name)  # same weights, same bytes
    info = {
        "image_feature": feature,
        "image_shape": shape,
        "latent_dim": trainer.latent_dim,
        "conditional": trainer.conditional,
        "classes": classes,
        "label": label,
        "output_range": [0.0, 1.0],
        "input_pipeline": plain(trainer.input),
        "generator": plain(trainer.generator),
        "discriminator": plain(trainer.discriminator),
        "trainer_step": ctx.step.name,
    }
    write_json_atomic(out / GAN_INFO, info)
    if samples_dir.is_dir():
        for grid in sorted(samples_dir.glob("*.png")):
            shutil.copy2(grid, report / grid.name)
    sample_grid(report / SAMPLES_FILE)
    history = {
        "epochs": state["history"],
        "resumed_from_epoch": state["resumed_from_epoch"],
        "strategy": strategy_name,
        "replicas": int(strategy.num_replicas_in_sync),
    }
    write_json_atomic(report / "history.json", history)
    if state["history"]:
        plot_losses(state["history"], report / "losses.png")
    shutil.rmtree(scratch, ignore_errors=True)
    last = state["history"][-1] if state["history"] else {}
    metrics = {k: float(v) for k, v in last.items() if k not in ("epoch", "seconds")}
    metrics["epochs"] = float(len(state["history"]))
    return StepResult(metrics=metrics, summary=_progress_text(last) if last else "no epochs run")


def _progress_text(record: dict[str, Any]) -> str:
    return (
        f"d_loss {record['d_loss']:.4f} g_loss {record['g_loss']:.4f} "
        f"d_acc real {record['d_real_accuracy']:.2f} fake {record['d_fake_accuracy']:.2f}"
    )


def load_generator(artifact: Artifact) -> tuple[Any, dict[str, Any]]:
    """The generator of a ``gan_trainer`` artifact and its ``gan.json``."""
    import keras

    info_path, model_path = artifact.file(GAN_INFO), artifact.file(GENERATOR_FILE)
    if not info_path.is_file() or not model_path.is_file():
        raise PipelineError(
            f"step '{artifact.step}' is not a gan_trainer step (no {GAN_INFO}/{GENERATOR_FILE})"
        )
    info = json.loads(info_path.read_text(encoding="utf-8"))
    return keras.saving.load_model(str(model_path), compile=False), info


def generate(
    generator: Any, info: dict[str, Any], count: int, seed: int, batch_size: int = 256
) -> tuple[Any, Any]:
    """``count`` images from seeded noise, and for a conditional GAN the class index of each
    (classes in turn, so every class gets its share); ``(images, labels or None)``."""
    import numpy as np

    noise = fixed_noise(count, int(info["latent_dim"]), seed)
    labels = None
    if info.get("conditional"):
        labels = np.arange(count) % len(info["classes"])
    parts = []
    for begin in range(0, count, batch_size):
        chunk = None if labels is None else labels[begin : begin + batch_size]
        batch = generator_inputs(noise[begin : begin + batch_size], chunk)
        parts.append(np.asarray(generator(batch, training=False), dtype=np.float32))
    return np.concatenate(parts), labels
