"""The ``image_input`` input pipeline: an examples artifact -> a ``tf.data.Dataset`` of images.

Shared by the image classifier (``keras_trainer``, which registers it) and the GAN
(``gan_trainer``, which reads its images with it). The contract every input pipeline of the
built-in trainers follows (table, text and speech implement the same):

* ``model_inputs(examples)`` -> ``{name: {"shape": [...], "dtype": ..., "modality": ...}}``, the
  inputs the model receives, resolved once from the training examples and stored by the trainer;
* ``dataset(examples, split, inputs=..., training=..., batch_size=..., seed=..., with_ids=...)``
  -> batches of ``(features, label_index)``, with ``with_ids`` plus a dict of the features of
  modality ``id`` when the artifact has any;
* ``serving(inputs)`` -> ``(signature, preprocess)``: the raw-input ``tf.TensorSpec`` of each
  serving input and the TensorFlow function from raw batches to model inputs. It calls the very
  function training uses (``decode_image``), so there is no train/serve skew.

TensorFlow is imported inside the functions only.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

from beamline import Artifact, InputPipeline, ModelInputs, param
from beamline.errors import PipelineError
from beamline.examples import example_files, feature_of_modality, feature_spec

from .records import cached_and_shuffled, element_seeds, labelled_parser, read_records

Augmentation = Literal[
    "flip", "crop", "brightness", "rotate", "zoom", "shift", "contrast", "color", "erase"
]


def decode_image(encoded: Any, height: int, width: int, channels: int) -> Any:
    """Decode one PNG/JPEG/GIF/BMP string tensor to float32 ``[height, width, channels]`` in [0, 1].

    The one preprocessing function of images: the input pipeline and the exported serving
    signature both call it."""
    import tensorflow as tf

    image = tf.io.decode_image(
        encoded, channels=channels, expand_animations=False, dtype=tf.float32
    )
    # Ingest usually stored the images at the model's size already: resizing to the same size
    # is an identity that still costs a full antialiased resampling pass per image.
    shape = tf.shape(image)
    same_size = tf.logical_and(tf.equal(shape[0], height), tf.equal(shape[1], width))
    image = tf.cond(
        same_size,
        lambda: image,
        lambda: tf.image.resize(image, [height, width], method="bilinear", antialias=True),
    )
    image = tf.clip_by_value(image, 0.0, 1.0)
    return tf.ensure_shape(image, [height, width, channels])


def decode_image_batch(encoded: Any, height: int, width: int, channels: int) -> Any:
    """``decode_image`` over a batch of encoded images (a 1-D string tensor)."""
    import tensorflow as tf

    return tf.map_fn(
        lambda one: decode_image(one, height, width, channels),
        encoded,
        fn_output_signature=tf.TensorSpec([height, width, channels], tf.float32),
    )


class ImageInput(InputPipeline):
    """Images from an examples artifact: decode, resize to [0, 1], batch, cache, prefetch.

    Reads the GZIP TFRecord shards of a split in parallel, decodes PNG or JPEG with the same
    TensorFlow function the exported model uses, maps label names to indices in the order of
    ``classes`` in features.json, shuffles training data (seeded), and optionally augments it."""

    name = "image_input"

    feature: str = param("", help="image feature to read; default: the feature of modality image")
    image_size: list[int] = param(
        [], help="[height, width] to resize to; default: from features.json or the first image"
    )
    channels: int = param(
        0,
        help="1 (gray), 3 (RGB) or 4 (RGBA); default: from features.json or the first image",
        choices=(0, 1, 3, 4),
    )
    shuffle_buffer: int = param(10000, help="shuffle buffer of the training split (examples)")
    cache: bool = param(True, help="keep decoded images in memory after the first epoch")
    augment: list[Augmentation] = param(
        [],
        help="training-only augmentation: flip (left-right), crop (random 90%), brightness, "
        "rotate, zoom, shift (one affine warp), contrast, color (saturation and hue of RGB), "
        "erase (a random rectangle, half the images)",
    )
    rotate_degrees: float = param(
        15.0, help="augment rotate: largest rotation either way, in degrees", ge=0, le=180
    )
    zoom_range: float = param(
        0.1, help="augment zoom: largest zoom in or out, as a share of the side", ge=0, lt=1
    )
    shift_range: float = param(
        0.1, help="augment shift: largest shift each way, as a share of the side", ge=0, lt=1
    )
    erase_size: float = param(
        0.3, help="augment erase: largest side of the erased rectangle, as a share", gt=0, le=1
    )

    def image_feature(self, examples: Artifact) -> str:
        """The name of the image feature this pipeline reads."""
        return feature_of_modality(examples, "image", self.feature, self.name)

    def model_inputs(self, examples: Artifact) -> ModelInputs:
        """The model's inputs: ``{image feature: {"shape": [h, w, c], ...}}``."""
        name = self.image_feature(examples)
        details = feature_spec(examples)["features"][name]
        height, width = (self.image_size + [0, 0])[:2] if self.image_size else (0, 0)
        height = height or int(details.get("height") or 0)
        width = width or int(details.get("width") or 0)
        channels = self.channels or int(details.get("channels") or 0)
        if not (height and width and channels):
            shape = _first_image_shape(examples, name)
            height, width = height or shape[0], width or shape[1]
            channels = channels or shape[2]
        if channels not in (1, 3, 4):
            raise PipelineError(f"image_input: channels must be 1, 3 or 4, got {channels}")
        return {name: {"shape": [height, width, channels], "dtype": "float32", "modality": "image"}}

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
        """Batches of ``(features, label index)`` (and ``ids`` when ``with_ids``) of ``split``.

        The order depends on ``seed`` only; training data is reshuffled every epoch."""
        import tensorflow as tf

        inputs = inputs or self.model_inputs(examples)
        ((name, spec),) = inputs.items()
        height, width, channels = spec["shape"]
        parse_labelled = labelled_parser(examples, name, with_ids=with_ids)

        def parse(serialized: Any) -> Any:
            encoded, index, ids = parse_labelled(serialized)
            out = ({name: decode_image(encoded, height, width, channels)}, index)
            return out + (ids,) if ids else out

        ds = read_records(examples, split, parse, shuffle_files=training, seed=seed)
        ds = cached_and_shuffled(
            ds, cache=self.cache, training=training, buffer=self.shuffle_buffer, seed=seed
        )
        if training and self.augment:
            augment = _augmenter(list(self.augment), self._strengths())
            ds = element_seeds(ds, seed).map(
                lambda s, e: ({k: augment(v, s) for k, v in e[0].items()}, *e[1:]),
                num_parallel_calls=tf.data.AUTOTUNE,
                deterministic=True,
            )
        return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)

    def _strengths(self) -> dict[str, float]:
        return {
            "rotate": self.rotate_degrees if "rotate" in self.augment else 0.0,
            "zoom": self.zoom_range if "zoom" in self.augment else 0.0,
            "shift": self.shift_range if "shift" in self.augment else 0.0,
            "erase": self.erase_size,
        }

    def serving(
        self, inputs: ModelInputs
    ) -> tuple[dict[str, Any], Callable[[dict[str, Any]], dict[str, Any]]]:
        """The serving signature (a batch of encoded image bytes) and its preprocessing."""
        import tensorflow as tf

        ((name, spec),) = inputs.items()
        height, width, channels = spec["shape"]
        signature = {name: tf.TensorSpec([None], tf.string, name=name)}

        def preprocess(raw: dict[str, Any]) -> dict[str, Any]:
            return {name: decode_image_batch(raw[name], height, width, channels)}

        return signature, preprocess


def _augmenter(kinds: list[str], strengths: dict[str, float]) -> Callable[[Any, Any], Any]:
    """Random flips, crops, warps, colour changes and erasing of one image, each drawn
    statelessly from the image's seed (its own fold-in per kind, so adding a kind leaves the
    draws of the others as they were)."""
    import math

    import tensorflow as tf

    def augment(image: Any, seed: Any) -> Any:
        shape = tf.shape(image)

        def draw(k: int) -> Any:
            return tf.random.experimental.stateless_fold_in(seed, k)

        def uniform(k: int, low: float, high: float, n: int = 1) -> Any:
            return tf.random.stateless_uniform([n], draw(k), low, high)

        if "flip" in kinds:
            image = tf.image.stateless_random_flip_left_right(image, draw(0))
        if "crop" in kinds:
            size = tf.cast(tf.cast(shape[:2], tf.float32) * 0.9, tf.int32)
            crop = tf.image.stateless_random_crop(image, tf.concat([size, shape[2:]], 0), draw(1))
            image = tf.image.resize(crop, shape[:2])
        if strengths["rotate"] or strengths["zoom"] or strengths["shift"]:
            turn = strengths["rotate"] * math.pi / 180
            angle = uniform(3, -turn, turn)[0]
            scale = tf.exp(uniform(4, -strengths["zoom"], strengths["zoom"])[0])
            shift = uniform(5, -strengths["shift"], strengths["shift"], 2)
            image = _warp(image, angle, scale, shift)
        if "brightness" in kinds:
            image = tf.image.stateless_random_brightness(image, 0.1, draw(2))
        if "contrast" in kinds:
            image = tf.image.stateless_random_contrast(image, 0.75, 1.25, draw(6))
        if "color" in kinds and image.shape[-1] == 3:
            image = tf.image.stateless_random_saturation(image, 0.7, 1.3, draw(7))
            image = tf.image.stateless_random_hue(image, 0.04, draw(8))
        image = tf.clip_by_value(image, 0, 1)
        if "erase" in kinds:
            image = _erase(image, strengths["erase"], uniform(9, 0, 1, 6))
        return tf.ensure_shape(image, image.shape)

    return augment


def _warp(image: Any, angle: Any, scale: Any, shift: Any) -> Any:
    """``image`` rotated by ``angle`` (radians) and zoomed by ``scale`` about its centre, then
    shifted by ``shift`` (shares of height and width); edges repeat the nearest pixel."""
    import tensorflow as tf

    size = tf.cast(tf.shape(image)[:2], tf.float32)
    cy, cx = (size[0] - 1) / 2, (size[1] - 1) / 2
    # the transform maps each output pixel (x, y) to the input point it samples
    a0, a1 = tf.cos(angle) / scale, -tf.sin(angle) / scale
    b0, b1 = tf.sin(angle) / scale, tf.cos(angle) / scale
    a2 = cx - a0 * cx - a1 * cy - shift[1] * size[1]
    b2 = cy - b0 * cx - b1 * cy - shift[0] * size[0]
    transform = tf.stack([a0, a1, a2, b0, b1, b2, 0.0, 0.0])[None]
    warped = tf.raw_ops.ImageProjectiveTransformV3(
        images=image[None],
        transforms=transform,
        output_shape=tf.shape(image)[:2],
        fill_value=0.0,
        interpolation="BILINEAR",
        fill_mode="NEAREST",
    )
    return warped[0]


def _erase(image: Any, largest: float, u: Any) -> Any:
    """Half the time, ``image`` with one rectangle (sides up to ``largest`` of the image's)
    filled with a random gray; ``u`` holds six uniform [0, 1) draws."""
    import tensorflow as tf

    size = tf.cast(tf.shape(image)[:2], tf.float32)
    height, width = u[0] * largest * size[0], u[1] * largest * size[1]
    top, left = u[2] * (size[0] - height), u[3] * (size[1] - width)
    rows = tf.range(size[0])[:, None]
    cols = tf.range(size[1])[None, :]
    inside = (rows >= top) & (rows < top + height) & (cols >= left) & (cols < left + width)
    inside = inside[..., None] & (u[5] < 0.5)
    return tf.where(inside, tf.fill(tf.shape(image), u[4]), image)


def _first_image_shape(examples: Artifact, name: str) -> tuple[int, int, int]:
    """Height, width and channels of the first image of the first split that has examples."""
    import tensorflow as tf

    spec = feature_spec(examples)
    for split in spec.get("splits", {}) or ["train"]:
        try:
            files = example_files(examples, split)
        except FileNotFoundError:
            continue
        ds = tf.data.TFRecordDataset(files[:1], compression_type="GZIP").take(1)
        for serialized in ds:
            record = tf.io.parse_single_example(
                serialized, {name: tf.io.FixedLenFeature([], tf.string)}
            )
            shape = tf.io.decode_image(record[name], expand_animations=False).shape
            return int(shape[0]), int(shape[1]), int(shape[2])
    raise PipelineError(f"image_input: {examples.path} holds no examples to read the image size")
