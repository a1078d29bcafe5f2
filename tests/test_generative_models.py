"""The DCGAN builders, the sample scores and the plugin's cheap import."""

from __future__ import annotations

import math

import numpy as np
import pytest

from beamline import PipelineError
from beamline_plugins.generative.models import DcganDiscriminator, DcganGenerator
from beamline_plugins.generative.scores import evenness, inception_score, score


def test_importing_the_plugin_does_not_import_tensorflow(heavy_imports) -> None:
    assert heavy_imports("import beamline_plugins.generative") == []


@pytest.mark.parametrize("upsampling", ["nearest", "transpose"])
def test_generator_makes_images_of_the_data_shape_in_the_unit_range(upsampling: str) -> None:
    generator = DcganGenerator(filters=[32, 16], upsampling=upsampling).build([8, 8, 1], 16)
    images = np.asarray(generator({"noise": np.random.randn(5, 16).astype("float32")}))
    assert images.shape == (5, 8, 8, 1)
    assert images.min() >= 0.0 and images.max() <= 1.0


def test_generator_for_rgb_images_that_are_not_square() -> None:
    generator = DcganGenerator(filters=[16, 8]).build([12, 8, 3], 4)
    assert tuple(generator.output_shape) == (None, 12, 8, 3)


def test_conditional_models_take_a_class_index() -> None:
    generator = DcganGenerator(filters=[16, 8]).build([8, 8, 1], 4, num_classes=10)
    discriminator = DcganDiscriminator(filters=[8, 16]).build([8, 8, 1], num_classes=10)
    labels = np.array([0, 3, 9], dtype="int32")
    images = generator({"noise": np.zeros((3, 4), "float32"), "label": labels})
    logits = discriminator({"image": np.asarray(images), "label": labels})
    assert tuple(images.shape) == (3, 8, 8, 1) and tuple(logits.shape) == (3, 1)


@pytest.mark.parametrize("stddev", [True, False])
def test_discriminator_gives_one_logit_per_image(stddev: bool) -> None:
    discriminator = DcganDiscriminator(filters=[8, 16, 16], minibatch_stddev=stddev).build(
        [8, 8, 1]
    )
    logits = discriminator({"image": np.random.rand(4, 8, 8, 1).astype("float32")})
    assert tuple(logits.shape) == (4, 1)
    assert np.asarray(logits).dtype == np.float32


def test_generator_refuses_an_image_size_its_blocks_cannot_reach() -> None:
    with pytest.raises(PipelineError, match="divisible by 4"):
        DcganGenerator(filters=[16, 8]).build([10, 10, 1], 8)


def test_evenness_is_one_for_equal_classes_and_zero_for_one_class() -> None:
    assert evenness([5] * 10) == pytest.approx(1.0)
    assert evenness([50] + [0] * 9) == 0.0
    assert 0.0 < evenness([40, 10] + [0] * 8) < 0.5


def test_scores_of_confident_spread_out_predictions_beat_uncertain_collapsed_ones() -> None:
    confident = np.eye(10)[np.arange(100) % 10] * 0.9 + 0.01
    collapsed = np.full((100, 10), 0.05)
    collapsed[:, 3] = 0.55
    good, bad = score(confident), score(collapsed)
    assert good["confidence"] == pytest.approx(0.91)
    assert good["coverage"] == 1.0 and bad["coverage"] == 0.1
    assert good["evenness"] == pytest.approx(1.0) and bad["evenness"] == 0.0
    assert good["histogram"] == [10] * 10
    assert bad["inception_score"] == pytest.approx(1.0)
    assert 5.0 < good["inception_score"] <= 10.0
    assert inception_score(np.full((4, 10), 0.1)) == pytest.approx(1.0)
    assert math.isclose(sum(good["histogram"]), 100)
