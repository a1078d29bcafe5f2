"""A reduced spoken_digits pipeline end to end, its export on raw WAV bytes, the audio models."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import beamline
from beamline.examples import iter_examples

PROJECT = Path(__file__).resolve().parents[1]
PIPELINE_FILE = PROJECT / "pipelines" / "spoken_digits.yaml"
DATA = PROJECT / "pipelines" / "data" / "spoken_digits"
PER_CLASS = 10


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[beamline.Run, Path]:
    """spoken_digits.yaml on 10 clips per digit and 2 epochs: every step of the pipeline."""
    root = tmp_path_factory.mktemp("spoken_digits")
    shutil.copy(PIPELINE_FILE, root / PIPELINE_FILE.name)
    shutil.copy(PIPELINE_FILE.with_suffix(".schema.pbtxt"), root)
    for digit in range(10):
        dest = root / "data" / "spoken_digits" / str(digit)
        dest.mkdir(parents=True)
        for clip in sorted((DATA / str(digit)).glob("*.wav"))[:PER_CLASS]:
            shutil.copy(clip, dest / clip.name)
    overrides = {
        "steps.train.epochs": 2,
        "steps.train.early_stopping": 0,
        "steps.evaluate.thresholds": {},
    }
    result = beamline.run(root / PIPELINE_FILE.name, overrides, runs_dir=root / "runs")
    assert [r.status for r in result.records] == ["ran"] * 5
    return result.run, root


@pytest.mark.slow
def test_reduced_pipeline_runs_every_step_and_counts_add_up(digits_run) -> None:
    run, _ = digits_run
    counts = run.artifact("ingest").meta["counts"]
    assert counts["read"] == 10 * PER_CLASS == counts["written"] + counts["rejected"]
    assert json.loads(run.artifact("validate").file("validation.json").read_text())
    info = json.loads(run.artifact("train").file("model.json").read_text())
    assert info["inputs"]["audio"]["shape"] == [98, 64, 1]  # 1 s at 8 kHz, 10 ms hop, 64 mels
    assert info["inputs"]["audio"]["preprocessing"]["sample_rate"] == 8000
    export = json.loads(run.artifact("export").file("export.json").read_text())
    assert export["inputs"] == {"audio": "audio"} and export["classes"] == info["classes"]


@pytest.mark.slow
def test_export_on_stored_wav_bytes_equals_the_evaluator(digits_run) -> None:
    import tensorflow as tf

    run, _ = digits_run
    evaluated = [
        json.loads(line)
        for line in run.artifact("evaluate").file("predictions.jsonl").read_text().splitlines()
    ]
    stored = {
        e["path"][0].decode(): e["audio"][0] for e in iter_examples(run.artifact("ingest"), "test")
    }
    paths = [e["ids"]["path"] for e in evaluated]
    assert sorted(paths) == sorted(stored)
    loaded = tf.saved_model.load(str(run.artifact("export").file("saved_model")))
    out = loaded.signatures["serving_default"](audio=tf.constant([stored[p] for p in paths]))
    np.testing.assert_allclose(out["scores"].numpy(), [e["scores"] for e in evaluated], atol=1e-5)
    assert [x.decode() for x in out["label"].numpy()] == [e["predicted"] for e in evaluated]


@pytest.mark.slow
def test_pipeline_predict_reads_the_original_wav_files(digits_run) -> None:
    from beamline_plugins.keras.predict import predict_files

    run, root = digits_run
    evaluated = [
        json.loads(line)
        for line in run.artifact("evaluate").file("predictions.jsonl").read_text().splitlines()
    ]
    # the raw recordings: variable length, trimmed/padded by the model exactly as by fix_length
    files = [str(root / "data" / "spoken_digits" / e["ids"]["path"]) for e in evaluated]
    predicted = predict_files(run.artifact("export").path, files)
    assert [p["label"] for p in predicted] == [e["predicted"] for e in evaluated]
    np.testing.assert_allclose(
        [list(p["scores"].values()) for p in predicted],
        [e["scores"] for e in evaluated],
        atol=1e-5,
    )
    command = [sys.executable, "-m", "beamline", "predict", str(run.artifact("export").path)]
    env = {**os.environ, "PYTHONPATH": str(PROJECT)}
    out = subprocess.run(
        [*command, *files[:2], "--json"], capture_output=True, text=True, env=env, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert [p["label"] for p in json.loads(out.stdout)] == [p["label"] for p in predicted[:2]]


@pytest.mark.slow
def test_predict_names_a_file_at_another_sample_rate(digits_run, tmp_path) -> None:
    from beamline_plugins.audio.wav import encode_wav
    from beamline_plugins.keras.predict import predict_files

    run, _ = digits_run
    wrong = tmp_path / "sixteen_khz.wav"
    wrong.write_bytes(encode_wav(np.zeros(16000), 16000))
    # predict.py keeps the first line of the TF error ("Graph execution error:"); the file is named
    with pytest.raises(
        beamline.PipelineError, match="sixteen_khz.wav: cannot be read by the model"
    ):
        predict_files(run.artifact("export").path, [wrong])


@pytest.mark.parametrize(
    ("model", "input_kwargs", "shape"),
    [
        ({"mode": "conv2d", "batch_norm": True, "head": "global"}, {}, [98, 40, 1]),
        ({"mode": "conv1d"}, {"features": "mfcc", "mfcc": 13}, [98, 13, 1]),
        ({"mode": "conv1d", "head": "global"}, {"window_ms": 32, "hop_ms": 16}, [61, 40, 1]),
    ],
)
def test_audio_models_build_for_the_spectrogram_settings(model, input_kwargs, shape) -> None:
    import tensorflow as tf

    from beamline_plugins.audio.features import SpectrogramSettings, spectrogram
    from beamline_plugins.audio.models import AudioCnn

    settings = SpectrogramSettings(sample_rate=8000, samples=8000, **_settings(input_kwargs))
    waves = tf.random.stateless_normal([2, 8000], seed=[1, 2]) * 0.1
    features = spectrogram(waves, settings)
    assert features.shape.as_list() == [2, *shape]
    inputs = {"audio": {"shape": shape, "dtype": "float32", "modality": "audio"}}
    net = AudioCnn(**model).build(inputs, 10)
    scores = net({"audio": features}, training=False).numpy()
    assert scores.shape == (2, 10)
    np.testing.assert_allclose(scores.sum(axis=1), 1.0, atol=1e-5)


def _settings(kwargs: dict) -> dict:
    renamed = {"features": "kind"}
    return {renamed.get(k, k): v for k, v in kwargs.items()}


def test_audio_ensemble_scores_are_the_mean_of_its_members() -> None:
    import keras

    from beamline_plugins.audio.models import AudioCnn

    inputs = {"audio": {"shape": [20, 8, 1], "dtype": "float32", "modality": "audio"}}
    net = AudioCnn(filters=[4], dense_units=[8], members=3).build(inputs, 10)
    x = {"audio": np.random.default_rng(0).random((2, 20, 8, 1), dtype=np.float32)}
    heads = keras.Model(net.inputs, [net.get_layer(f"scores_{i}").output for i in range(3)])
    each = np.stack([np.asarray(h) for h in heads(x, training=False)])
    assert not np.allclose(each[0], each[1])  # members start from their own weights
    np.testing.assert_allclose(np.asarray(net(x, training=False)), each.mean(axis=0), rtol=1e-6)


def test_audio_test_shifts_average_rolled_views_and_the_fit_trains_on_one(tmp_path) -> None:
    import keras

    from beamline_plugins.audio.models import AudioCnn
    from beamline_plugins.training.layers import training_view

    inputs = {"audio": {"shape": [20, 8, 1], "dtype": "float32", "modality": "audio"}}
    net = AudioCnn(filters=[4], dense_units=[8], test_shifts=[-1, 2]).build(inputs, 5)
    clip = np.random.default_rng(0).random((2, 20, 8, 1), dtype=np.float32)
    one = training_view(net)  # the unshifted view alone, on the same weights
    assert len(one.trainable_variables) == len(net.trainable_variables)
    views = [np.log(np.asarray(one({"audio": np.roll(clip, k, axis=1)}))) for k in (0, -1, 2)]
    logits = np.mean(views, axis=0)  # log-softmax differs from logits by a constant per clip
    expected = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(np.asarray(net({"audio": clip})), expected, rtol=1e-5)
    assert not np.allclose(expected, np.asarray(one({"audio": clip})))
    assert training_view(AudioCnn(filters=[4]).build(inputs, 5)) is None
    net.save(tmp_path / "model.keras")  # built-in layers only: loads without custom objects
    loaded = keras.saving.load_model(tmp_path / "model.keras")
    np.testing.assert_allclose(np.asarray(loaded({"audio": clip})), expected, rtol=1e-5)


def test_speed_perturbation_keeps_the_clip_length_and_moves_its_pitch() -> None:
    import tensorflow as tf

    from beamline_plugins.audio.features import SpectrogramSettings
    from beamline_plugins.audio.inputs import AudioInput, _augmenter

    settings = SpectrogramSettings(sample_rate=8000, samples=8000)
    augment = _augmenter(AudioInput(augment=["speed"], speed=0.2), settings)
    tone = tf.sin(2 * np.pi * 1000 * tf.range(8000, dtype=tf.float32) / 8000)

    def peak_hz(wave) -> float:
        return float(np.argmax(np.abs(np.fft.rfft(np.asarray(wave)[2000:6000])))) * 2

    seeds = [tf.constant([0, k], tf.int64) for k in range(6)]
    waves = [augment(tone, seed) for seed in seeds]
    assert all(w.shape == (8000,) for w in waves)
    np.testing.assert_array_equal(augment(tone, seeds[0]), waves[0])  # a function of the seed
    peaks = [peak_hz(w) for w in waves]
    assert all(800 <= p <= 1200 for p in peaks) and len(set(peaks)) > 1, peaks
