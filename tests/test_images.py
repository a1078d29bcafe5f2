"""The images plugin on real digits and sign-language photos: bad files, sizes, modes, manifest."""

from __future__ import annotations

import io
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from data_paths import DIGITS, SIGN_DIGITS
from ingest_support import copy_images, ingest, pipeline_file, split_examples
from PIL import Image

from beamline import PipelineError, examples

ALL_SPLITS = ("train", "eval", "test")


def _everything(artifact: Path) -> list[dict[str, list[object]]]:
    return [e for split in examples.splits(artifact) for e in split_examples(artifact, split)]


def _rejections(artifact: Path) -> dict[str, dict[str, str]]:
    return {Path(r["source"]).name: r for r in examples.rejected_records(artifact)}


def test_bad_image_files_are_rejected_each_with_its_reason(tmp_path: Path) -> None:
    data = copy_images(SIGN_DIGITS, tmp_path / "data", ["3", "4"], 4)
    photo = sorted((data / "3").iterdir())[0].read_bytes()
    (data / "3" / "cut.jpg").write_bytes(photo[: len(photo) // 2])
    (data / "3" / "text.png").write_text("hello, I am text", encoding="utf-8")
    (data / "4" / "zero.png").write_bytes(b"")
    deep = Image.fromarray(np.arange(64, dtype=np.uint16).reshape(8, 8) * 1000)
    deep.save(data / "4" / "sixteen-bit.png")
    os.symlink(tmp_path / "gone.png", data / "4" / "dangling.png")
    step = {"component": "image_folder", "root": "data", "transforms": ["decode_image"]}

    record, artifact = ingest(pipeline_file(tmp_path, step), tmp_path / "runs")

    assert record.counts["read"] == 13
    assert record.counts["written"] == 8
    assert record.counts["rejected"] == 5
    rejected = _rejections(artifact)
    assert "truncated" in rejected["cut.jpg"]["reason"]
    assert "not an image" in rejected["text.png"]["reason"]
    assert rejected["zero.png"]["reason"] == "empty file (0 bytes)"
    assert "mode 'I;16'" in rejected["sixteen-bit.png"]["reason"]
    assert "unreadable file" in rejected["dangling.png"]["reason"]
    assert rejected["dangling.png"]["stage"] == "image_folder"
    assert {rejected[n]["stage"] for n in ("cut.jpg", "text.png", "zero.png")} == {"decode_image"}
    spec = examples.feature_spec(artifact)
    assert spec["features"]["image"]["channels"] == 3  # the JPEG photos are RGB


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their permissions")
def test_file_without_read_permission_is_rejected(tmp_path: Path) -> None:
    data = copy_images(DIGITS, tmp_path / "data", ["0"], 3)
    locked = sorted((data / "0").iterdir())[0]
    locked.chmod(0)
    step = {"component": "image_folder", "root": "data", "transforms": ["decode_image"]}
    _, artifact = ingest(pipeline_file(tmp_path, step), tmp_path / "runs")
    assert "Permission denied" in _rejections(artifact)[locked.name]["reason"]


def test_empty_class_folder_is_a_warning_not_a_rejection(tmp_path: Path) -> None:
    copy_images(DIGITS, tmp_path / "data", ["0", "1"], 5)
    (tmp_path / "data" / "7").mkdir()
    step = {"component": "image_folder", "root": "data", "transforms": ["decode_image"]}
    record, artifact = ingest(pipeline_file(tmp_path, step), tmp_path / "runs")
    spec = examples.feature_spec(artifact)
    assert record.counts["rejected"] == 0
    assert spec["classes"] == ["0", "1"]
    assert len(spec["warnings"]) == 1 and "class folder '7'" in spec["warnings"][0]
    assert "1 warning" in record.summary


def test_resize_with_padding_and_grayscale_on_photos(tmp_path: Path) -> None:
    copy_images(SIGN_DIGITS, tmp_path / "data", ["0", "1", "2"], 4)
    step = {
        "component": "image_folder",
        "root": "data",
        "transforms": [
            "decode_image",
            {"component": "resize_image", "size": [24, 40], "fit": "pad"},
            {"component": "image_mode", "mode": "grayscale"},
        ],
    }
    _, artifact = ingest(pipeline_file(tmp_path, step), tmp_path / "runs")
    image = examples.feature_spec(artifact)["features"]["image"]
    assert (image["height"], image["width"], image["channels"], image["mode"]) == (24, 40, 1, "L")
    for example in _everything(artifact):
        decoded = Image.open(io.BytesIO(example["image"][0]))
        assert decoded.format == "PNG" and decoded.size == (40, 24) and decoded.mode == "L"
        pixels = np.asarray(decoded)
        assert pixels[:, :8].max() == 0  # the square photo is centred on black padding


def test_mixed_sizes_are_summarised_as_ranges_and_jpeg_encoding(tmp_path: Path) -> None:
    copy_images(DIGITS, tmp_path / "data", ["5"], 3)
    copy_images(SIGN_DIGITS, tmp_path / "data", ["5"], 3)
    step = {
        "component": "image_folder",
        "root": "data",
        "transforms": ["decode_image", {"component": "encode_image", "format": "jpeg"}],
    }
    _, artifact = ingest(pipeline_file(tmp_path, step), tmp_path / "runs")
    image = examples.feature_spec(artifact)["features"]["image"]
    assert image["height"] is None and image["height_range"] == [8, 100]
    assert image["channels"] is None and image["channels_range"] == [1, 3]
    assert image["format"] == "jpeg"
    assert all(e["image"][0][:2] == b"\xff\xd8" for e in _everything(artifact))


def test_stretch_and_keep_aspect_sizes(tmp_path: Path) -> None:
    copy_images(SIGN_DIGITS, tmp_path / "data", ["8"], 3)
    for fit, expected in (("stretch", (10, 20)), ("keep_aspect", (10, 10))):
        resize = {"component": "resize_image", "size": [10, 20], "fit": fit}
        step = {"component": "image_folder", "root": "data", "transforms": ["decode_image", resize]}
        _, artifact = ingest(pipeline_file(tmp_path, step, name=fit), tmp_path / "runs")
        image = examples.feature_spec(artifact)["features"]["image"]
        assert (image["height"], image["width"]) == expected, fit


def test_manifest_gives_labels_and_groups_and_rejects_bad_rows(tmp_path: Path) -> None:
    root = copy_images(DIGITS, tmp_path / "data", ["3", "6"], 6)
    rows = ["path,label,group"]
    for i, file in enumerate(sorted(root.glob("*/*.png"))):
        rows.append(f"{file.relative_to(root)},digit-{file.parent.name},writer-{i // 3}")
    rows += ["3/missing.png,digit-3,writer-9", "too,many,fields,here"]
    (root / "manifest.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    step = {"component": "image_folder", "root": "data", "manifest": "manifest.csv"}
    step["split"] = {"group_by": "group"}

    record, artifact = ingest(pipeline_file(tmp_path, step), tmp_path / "runs")

    assert record.counts["written"] == 12
    spec = examples.feature_spec(artifact)
    assert spec["classes"] == ["digit-3", "digit-6"]
    assert spec["features"]["group"]["modality"] == "id"
    rejected = {
        r["source"].rsplit(":", 1)[-1]: r["reason"] for r in examples.rejected_records(artifact)
    }
    assert "listed file not found" in rejected["row 13"]
    assert rejected["row 14"] == "expected 3 fields, got 4"
    sides: dict[bytes, set[str]] = {}
    for split in examples.splits(artifact):
        for example in split_examples(artifact, split):
            sides.setdefault(example["group"][0], set()).add(split)
    assert all(len(s) == 1 for s in sides.values())


def test_changed_images_rerun_the_step_and_unchanged_reuse_it(tmp_path: Path) -> None:
    data = copy_images(DIGITS, tmp_path / "data", ["0", "1"], 4)
    path = pipeline_file(tmp_path, {"component": "image_folder", "root": "data"})
    first, _ = ingest(path, tmp_path / "runs")
    again, _ = ingest(path, tmp_path / "runs")
    assert (first.status, again.status) == ("ran", "reused")
    shutil.copy(sorted(DIGITS.joinpath("1").iterdir())[-1], data / "1" / "new.png")
    changed, _ = ingest(path, tmp_path / "runs")
    assert changed.status == "ran" and changed.counts["written"] == 9


def test_invalid_resize_size_is_refused_at_load_naming_the_key(tmp_path: Path) -> None:
    copy_images(DIGITS, tmp_path / "data", ["0"], 2)
    resize = {"component": "resize_image", "size": [0, 4]}
    step = {"component": "image_folder", "root": "data", "transforms": [resize]}
    with pytest.raises(
        PipelineError, match=r"\.yaml:\d+: steps.ingest.transforms\[0\].size: must be >= 1"
    ):
        ingest(pipeline_file(tmp_path, step), tmp_path / "runs")
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").rglob("meta.json"))


ALL_AUGMENTATIONS = ["flip", "crop", "brightness", "rotate", "zoom", "shift", "contrast", "color"]


def _training_images(artifact: Path, seed: int, augment: list[str]) -> tuple[Any, Any]:
    from beamline_plugins.training.image_input import ImageInput

    pipeline = ImageInput(augment=augment + ["erase"] if augment else [])
    batches = list(pipeline.dataset(artifact, "train", training=True, batch_size=64, seed=seed))
    ((images,),) = [list(features.values()) for features, _ in batches]
    labels = np.concatenate([label.numpy() for _, label in batches])
    return images.numpy(), labels


def test_image_augmentation_is_a_function_of_the_seed_and_keeps_shapes_and_labels(
    tmp_path: Path,
) -> None:
    copy_images(SIGN_DIGITS, tmp_path / "data", ["3", "6"], 6)
    step = {
        "component": "image_folder",
        "root": "data",
        "transforms": ["decode_image", {"component": "resize_image", "size": 32}],
        "split": {"train": 1.0, "eval": 0.0, "test": 0.0},
    }
    _, artifact = ingest(pipeline_file(tmp_path, step), tmp_path / "runs")
    plain, plain_labels = _training_images(artifact, 3, [])
    first, labels = _training_images(artifact, 3, ALL_AUGMENTATIONS)
    again, _ = _training_images(artifact, 3, ALL_AUGMENTATIONS)
    other, _ = _training_images(artifact, 4, ALL_AUGMENTATIONS)
    assert first.shape == plain.shape == (12, 32, 32, 3)
    np.testing.assert_array_equal(first, again)  # the same seed draws the same augmentation
    assert (labels == plain_labels).all()  # order is the seed's, labels untouched
    assert 0 <= first.min() and first.max() <= 1
    changed = np.abs(first - plain).mean(axis=(1, 2, 3))
    assert (changed > 0.01).all() and np.abs(first - other).mean() > 0.01


def test_image_warp_rotates_and_shifts_about_the_centre() -> None:
    import tensorflow as tf

    from beamline_plugins.training.image_input import _warp

    image = np.zeros((8, 8, 1), np.float32)
    image[1, 2] = 1.0  # one bright pixel in the upper left
    turned = _warp(tf.constant(image), tf.constant(np.pi / 2), 1.0, tf.zeros([2])).numpy()
    np.testing.assert_allclose(turned, np.rot90(image, k=1), atol=1e-5)
    shifted = _warp(tf.constant(image), 0.0, 1.0, tf.constant([0.25, 0.5])).numpy()
    assert shifted[3, 6] == pytest.approx(1.0) and shifted.sum() == pytest.approx(1.0)
