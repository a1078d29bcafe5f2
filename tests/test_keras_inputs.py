"""The image input pipeline and the model builders of the keras plugin, on real digit images."""

from __future__ import annotations

from pathlib import Path

import pytest
from data_paths import DIGITS, SIGN_DIGITS
from keras_support import write_examples, write_pipeline

import beamline
from beamline import Artifact
from beamline_plugins.keras.models import Cnn, LogisticRegression, Mlp
from beamline_plugins.training.image_input import ImageInput


@pytest.fixture(scope="module")
def digits(tmp_path_factory: pytest.TempPathFactory) -> tuple[Artifact, dict[str, list[Path]]]:
    """A small examples artifact of 20 digit images per class."""
    folder = tmp_path_factory.mktemp("digits")
    files = write_examples(folder, DIGITS, per_class=20)
    return Artifact(folder, {}), files


def test_importing_the_plugin_does_not_import_tensorflow(heavy_imports) -> None:
    assert heavy_imports("import beamline_plugins.keras") == []


def test_model_inputs_come_from_the_first_image_when_features_json_has_no_size(digits) -> None:
    examples, _ = digits
    inputs = ImageInput().model_inputs(examples)
    assert inputs == {"image": {"shape": [8, 8, 1], "dtype": "float32", "modality": "image"}}
    resized = ImageInput(image_size=[16, 12], channels=3).model_inputs(examples)
    assert resized["image"]["shape"] == [16, 12, 3]


def test_declared_sizes_and_counts_are_used_and_missing_counts_are_counted(
    digits, tmp_path
) -> None:
    import json
    import shutil

    from beamline_plugins.training.records import split_size

    examples, files = digits
    shutil.copytree(examples.path, tmp_path / "copy")
    spec = json.loads((tmp_path / "copy" / "features.json").read_text())
    spec["features"]["image"].update(height=6, width=5, channels=3)
    del spec["splits"]["eval"]
    (tmp_path / "copy" / "features.json").write_text(json.dumps(spec))
    copy = Artifact(tmp_path / "copy", {})
    assert ImageInput().model_inputs(copy)["image"]["shape"] == [6, 5, 3]
    assert split_size(copy, "eval") == len(files["eval"])
    assert split_size(copy, "train") == len(files["train"])


def test_eval_batches_hold_unit_range_images_labels_in_class_order_and_ids(digits) -> None:
    import numpy as np

    examples, files = digits
    ds = ImageInput().dataset(examples, "test", batch_size=8, with_ids=True)
    seen = 0
    for features, labels, ids in ds:
        images = features["image"].numpy()
        assert images.shape[1:] == (8, 8, 1) and images.dtype == np.float32
        assert images.min() >= 0.0 and images.max() <= 1.0 and images.max() > 0.5
        for label, path in zip(labels.numpy(), ids["path"].numpy(), strict=True):
            assert str(label) == Path(path.decode()).parent.name  # classes are "0".."9"
        seen += len(labels)
    assert seen == len(files["test"])
    first = [x["path"].numpy().tolist() for _, _, x in ds]
    second = [x["path"].numpy().tolist() for _, _, x in ds]
    assert first == second  # evaluation order is stable


def test_training_batches_are_reshuffled_each_epoch_but_seeded(digits) -> None:
    examples, _ = digits

    def order(seed: int) -> list[list[int]]:
        ds = ImageInput().dataset(examples, "train", training=True, batch_size=400, seed=seed)
        return [labels.numpy().tolist() for _ in range(2) for _, labels in ds]

    epoch1, epoch2 = order(1)
    assert epoch1 != epoch2 and sorted(epoch1) == sorted(epoch2)
    assert order(1) == [epoch1, epoch2]


def test_augmentation_keeps_shape_and_unit_range(digits) -> None:
    examples, _ = digits
    augmenting = ImageInput(image_size=[16, 16], augment=["flip", "crop", "brightness"])
    features, _ = next(iter(augmenting.dataset(examples, "train", training=True, batch_size=64)))
    images = features["image"].numpy()
    assert images.shape == (64, 16, 16, 1)
    assert images.min() >= 0.0 and images.max() <= 1.0


def test_serving_preprocessing_of_raw_png_and_jpeg_equals_training_preprocessing(
    digits, tmp_path
) -> None:
    import numpy as np
    import tensorflow as tf

    examples, _ = digits
    pipe = ImageInput()
    inputs = pipe.model_inputs(examples)
    signature, preprocess = pipe.serving(inputs)
    assert signature["image"].dtype == tf.string and signature["image"].shape.as_list() == [None]
    features, _, ids = next(iter(pipe.dataset(examples, "test", batch_size=4, with_ids=True)))
    raw = [Path(p.decode()).read_bytes() for p in ids["path"].numpy()]
    served = preprocess({"image": tf.constant(raw)})["image"].numpy()
    np.testing.assert_array_equal(served, features["image"].numpy())

    sign = tmp_path / "sign"
    write_examples(sign, SIGN_DIGITS, per_class=2, shards=1)
    sign_pipe = ImageInput(image_size=[32, 32])
    sign_inputs = sign_pipe.model_inputs(Artifact(sign, {}))
    assert sign_inputs["image"]["shape"] == [32, 32, 3]
    batch, _, sign_ids = next(
        iter(sign_pipe.dataset(Artifact(sign, {}), "train", batch_size=2, with_ids=True))
    )
    jpeg = [Path(p.decode()).read_bytes() for p in sign_ids["path"].numpy()]
    _, sign_preprocess = sign_pipe.serving(sign_inputs)
    np.testing.assert_array_equal(
        sign_preprocess({"image": tf.constant(jpeg)})["image"].numpy(), batch["image"].numpy()
    )


@pytest.mark.parametrize(
    "model",
    [
        LogisticRegression(l2=0.01),
        Mlp(units=[32, 16], activation="tanh", dropout=0.2, l2=0.001),
        Cnn(filters=[8, 16, 16, 16], dense_units=[16], batch_norm=True, pooling="average"),
    ],
    ids=lambda m: m.name,
)
def test_models_output_one_probability_per_class(model) -> None:
    import numpy as np

    inputs = {"image": {"shape": [8, 8, 1], "dtype": "float32", "modality": "image"}}
    keras_model = model.build(inputs, 10)
    scores = keras_model({"image": np.random.default_rng(0).random((3, 8, 8, 1))}).numpy()
    assert scores.shape == (3, 10)
    np.testing.assert_allclose(scores.sum(axis=1), 1.0, rtol=1e-5)


def test_mlp_has_one_dense_layer_per_units_entry() -> None:
    inputs = {"image": {"shape": [8, 8, 1], "dtype": "float32", "modality": "image"}}
    model = Mlp(units=[32, 16]).build(inputs, 10)
    dense = [layer.units for layer in model.layers if layer.__class__.__name__ == "Dense"]
    assert dense == [32, 16, 10]


def test_an_unknown_activation_is_reported_with_its_line(tmp_path) -> None:
    steps = (
        "  train:\n"
        "    component: keras_trainer\n"
        "    examples: data\n"
        "    model: {component: mlp, activation: swish}\n"
    )
    path = write_pipeline(tmp_path, tmp_path, steps)
    with pytest.raises(
        beamline.SpecError,
        match=r"kdigits.yaml:10: steps.train.model.activation: .*'relu'.*'swish'",
    ):
        beamline.load(path, plugins=[], disable_plugins=[])


def test_thresholds_reach_per_class_metrics_by_dotted_name():
    from beamline_plugins.keras.evaluator import metric_value

    metrics = {"accuracy": 0.9, "per_class": {"spam": {"f1": 0.93}}}
    assert metric_value(metrics, "per_class.spam.f1") == 0.93
    assert metric_value(metrics, "accuracy") == 0.9
    assert metric_value(metrics, "per_class.ham.f1") is None
