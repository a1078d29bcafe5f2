"""Model options that change what a classifier sees in training: hashed bigrams in the bag of
words, SpecAugment-like masking in the audio CNN, geometric augmentation in the image CNN.

Each is checked on a built model: what it changes, that inference is untouched, and that the
saved ``.keras`` file loads without custom objects and gives the same scores."""

from __future__ import annotations

import numpy as np


def _roundtrip(model, tmp_path, x) -> None:
    import keras

    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, compile=False)
    np.testing.assert_allclose(
        np.asarray(loaded(x, training=False)), np.asarray(model(x, training=False)), rtol=1e-5
    )


def _layer_output(model, kind):
    import keras

    layer = next(layer for layer in model.layers if isinstance(layer, kind))
    return keras.Model(model.inputs, layer.output)


def test_bigram_buckets_tell_word_order_apart_and_skip_padding(tmp_path) -> None:
    import keras

    from beamline_plugins.text.models import BowClassifier

    inputs = {"text": {"modality": "text", "shape": [5], "vocab_size": 10, "max_length": 5}}
    model = BowClassifier(units=[4], bigram_buckets=50).build(inputs, 2)
    ids = np.array([[3, 4, 0, 0, 0], [4, 3, 0, 0, 0], [3, 0, 0, 0, 0]], dtype="int64")
    vectors = np.asarray(_layer_output(model, keras.layers.CategoryEncoding)({"text": ids}))
    assert vectors.shape == (3, 60)
    # the same words, another order: the word slots agree, the bigram slots do not
    np.testing.assert_array_equal(vectors[0, :10], vectors[1, :10])
    assert vectors[0, 10:].sum() == 1 and vectors[1, 10:].sum() == 1
    assert not np.array_equal(vectors[0, 10:], vectors[1, 10:])
    assert vectors[2, 10:].sum() == 0  # a pair with padding is no bigram
    _roundtrip(model, tmp_path, {"text": ids})


def test_audio_masking_drops_whole_bins_in_training_only(tmp_path) -> None:
    import keras

    from beamline_plugins.audio.models import AudioCnn

    inputs = {"audio": {"modality": "audio", "shape": [20, 8, 1]}}
    model = AudioCnn(filters=[4], dense_units=[8], freq_dropout=0.5).build(inputs, 3)
    x = {"audio": np.ones((4, 20, 8, 1), dtype="float32")}
    masked = np.asarray(_layer_output(model, keras.layers.Dropout)(x, training=True))
    per_bin = masked[..., 0].max(axis=1)  # [clip, bin]: a zeroed bin is zero in every frame
    assert ((masked[..., 0] == 0) == (per_bin == 0)[:, None, :]).all()
    assert 0 < (per_bin == 0).sum() < per_bin.size
    np.testing.assert_array_equal(
        np.asarray(_layer_output(model, keras.layers.Dropout)(x, training=False)), x["audio"]
    )
    _roundtrip(model, tmp_path, x)


def test_image_augmentation_moves_training_images_and_leaves_inference_alone(tmp_path) -> None:
    import keras

    from beamline_plugins.keras.models import Cnn

    inputs = {"image": {"modality": "image", "shape": [16, 16, 3]}}
    model = Cnn(filters=[4], dense_units=[8], rotation=0.1, zoom=0.2, translate=0.2).build(
        inputs, 3
    )
    x = {"image": np.random.default_rng(0).random((2, 16, 16, 3), dtype=np.float32)}
    augmented = _layer_output(model, keras.layers.RandomTranslation)
    assert not np.allclose(np.asarray(augmented(x, training=True)), x["image"])
    np.testing.assert_array_equal(np.asarray(augmented(x, training=False)), x["image"])
    _roundtrip(model, tmp_path, x)


def test_bow_ensemble_scores_are_the_mean_of_its_members(tmp_path) -> None:
    import keras

    from beamline_plugins.text.models import BowClassifier

    inputs = {"text": {"modality": "text", "shape": [4], "vocab_size": 12, "max_length": 4}}
    model = BowClassifier(units=[4], members=3).build(inputs, 2)
    x = {"text": np.array([[3, 4, 5, 0], [6, 2, 0, 0]], dtype="int64")}
    members = keras.Model(model.inputs, [model.get_layer(f"scores_{i}").output for i in range(3)])
    each = np.stack([np.asarray(m) for m in members(x, training=False)])
    assert not np.allclose(each[0], each[1])  # members start from their own weights
    np.testing.assert_allclose(np.asarray(model(x, training=False)), each.mean(axis=0), rtol=1e-6)
    _roundtrip(model, tmp_path, x)
