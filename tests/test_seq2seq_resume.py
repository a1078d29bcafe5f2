"""Exact resume and byte-stable exports of the ``model.fit`` trainers (``forecast_trainer``,
``seq2seq_trainer``): a training killed with SIGKILL and rerun ends with exactly the tensors of an
uninterrupted run, and the export of those weights is the same file for file.

One small real file trains both: the Mauna Loa CO2 windows with a 1-D CNN, then number words ->
digits with an LSTM encoder-decoder with dropout, each exported. It runs uninterrupted in this
process; then, in the same runs folder with the trainers and exporters forced, a subprocess is
killed inside the forecaster's second epoch, a second one (which resumes the forecaster, exports it
and goes on) is killed as soon as the encoder-decoder has checkpointed its first epoch (of two),
and a last run in this process resumes the encoder-decoder and exports it. The forecaster's export
is thus made in another process than the reference, the encoder-decoder's in this one after it
traced everything else.
"""

from __future__ import annotations

import hashlib
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from data_paths import PIPELINES, TESTS_DIR
from keras_support import python_env

import beamline

EPOCHS = 3
CO2 = (PIPELINES / "co2_forecast.yaml").read_text(encoding="utf-8")
SERIES = CO2.split("  ingest:\n")[1].split("  train:\n")[0]
FILE = f"""name: resumed
steps:
  series:
{SERIES}  forecast:
    component: forecast_trainer
    examples: series
    model: {{component: cnn_forecaster, filters: [8]}}
    epochs: {EPOCHS}
    batch_size: 4  # about 0.3 s an epoch: time to kill it inside one
  export_forecast:
    component: forecast_exporter
    model: forecast
  pairs:
    component: pairs_csv
    path: {TESTS_DIR / "data" / "number_words" / "number_words.csv"}
    transforms: [{{component: seq2seq_vocabulary, source_level: word, target_level: space}}]
    split: {{train: 0.8, eval: 0.1, test: 0.1, key: source}}
  seq2seq:
    component: seq2seq_trainer
    examples: pairs
    model: {{component: lstm_attention, embedding_dim: 16, units: 32, dropout: 0.1}}
    epochs: {EPOCHS - 1}
    batch_size: 32
    learning_rate: 0.01
    warmup_steps: 0
    eval_split: ''  # early stopping's state: the forecaster's case (one function less to trace)
  export_seq2seq:
    component: seq2seq_exporter
    model: seq2seq
    beam_size: 1
"""
TRAINERS = ("forecast", "seq2seq")
EXPORTS = ("export_forecast", "export_seq2seq")
FORCED = (*TRAINERS, *EXPORTS)
#: (trainer, checkpointed epochs, then seconds) at which each subprocess is killed
KILLS = (("forecast", 1, 0.1), ("seq2seq", 1, 0.0))
EPOCHS_OF = {"forecast": EPOCHS, "seq2seq": EPOCHS - 1}


def _checkpointed_epochs(runs: Path, step: str) -> int:
    for state in (runs / "resumed" / ".scratch").glob(f"{step}-*/state.json"):
        try:
            return int(json.loads(state.read_text())["epoch"])
        except (OSError, ValueError, KeyError):
            return 0
    return 0


def _kill_after(path: Path, runs: Path, step: str, epochs: int, delay: float) -> None:
    forced = [arg for name in FORCED for arg in ("--force-step", name)]
    command = [sys.executable, "-m", "beamline", "run", str(path), "--runs-dir", str(runs)]
    child = subprocess.Popen(
        [*command, *forced],
        env=python_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 240
        while _checkpointed_epochs(runs, step) < epochs:
            assert child.poll() is None, f"{step} ended before epoch {epochs} was checkpointed"
            assert time.monotonic() < deadline, f"{step}: epoch {epochs} not checkpointed in 240 s"
            time.sleep(0.01)
        time.sleep(delay)
        assert child.poll() is None, f"{step} ended before it was killed"
        child.send_signal(signal.SIGKILL)
    finally:
        child.kill()
        child.wait()


def _tensors(train: Path) -> list[np.ndarray]:
    import keras

    model = keras.saving.load_model(str(train / "model.keras"), compile=False)
    return [v.numpy() for v in model.weights]


def _digests(export: Path) -> dict[str, str]:
    files = sorted(p for p in export.rglob("*") if p.is_file())
    return {str(p.relative_to(export)): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The run folder of each trainer and exporter: uninterrupted (``<step>``) and where its
    resumed training finished (``resumed <step>``)."""
    tmp = tmp_path_factory.mktemp("resume")
    path, runs = tmp / "resumed.yaml", tmp / "runs"
    path.write_text(FILE, encoding="utf-8")
    straight = beamline.run(path, runs_dir=runs).run.path
    for step, epochs, delay in KILLS:
        _kill_after(path, runs, step, epochs, delay)
    assert _checkpointed_epochs(runs, "seq2seq") >= KILLS[-1][1]
    resumed = beamline.run(path, runs_dir=runs, force=TRAINERS[1:] + EXPORTS[1:]).run.path
    # the forecaster resumed and was exported in the second killed run
    *_, second_killed, last = sorted(p for p in straight.parent.iterdir() if p.is_dir())
    assert last == resumed and (second_killed / "export_forecast").is_dir()
    folders = {step: straight for step in FORCED}
    folders.update({f"resumed {step}": second_killed for step in ("forecast", "export_forecast")})
    folders.update({f"resumed {step}": resumed for step in ("seq2seq", "export_seq2seq")})
    return folders


@pytest.mark.slow
@pytest.mark.parametrize("trainer", TRAINERS)
def test_a_training_killed_and_rerun_ends_with_the_uninterrupted_tensors(
    runs: dict[str, Path], trainer: str
) -> None:
    straight, resumed = runs[trainer] / trainer, runs[f"resumed {trainer}"] / trainer
    history = json.loads((resumed / "report" / "history.json").read_text())
    killed_at = dict((step, epochs) for step, epochs, _ in KILLS)[trainer]
    assert killed_at <= history["resumed_from_epoch"] < EPOCHS_OF[trainer]
    assert [e["epoch"] for e in history["epochs"]] == list(range(1, EPOCHS_OF[trainer] + 1))
    mine, theirs = _tensors(resumed), _tensors(straight)
    assert len(mine) == len(theirs) > 0
    for resumed_tensor, straight_tensor in zip(mine, theirs, strict=True):
        np.testing.assert_array_equal(resumed_tensor, straight_tensor)
    # the same weights, the same bytes (fixed zip times, shared-object ids numbered)
    assert (resumed / "model.keras").read_bytes() == (straight / "model.keras").read_bytes()
    assert not list((runs[trainer].parent / ".scratch").glob(f"{trainer}-*"))


@pytest.mark.slow
@pytest.mark.parametrize("export", EXPORTS)
def test_exports_of_the_same_weights_are_byte_identical(runs: dict[str, Path], export: str) -> None:
    straight, resumed = runs[export] / export, runs[f"resumed {export}"] / export
    digests = _digests(straight / "saved_model")
    assert "variables/variables.data-00000-of-00001" in digests
    assert _digests(resumed / "saved_model") == digests
