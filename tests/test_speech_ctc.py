"""CTC decoding on known alignments, and the transcript manifest's errors (no training here)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from beamline import ParamError, PipelineError
from beamline.errors import DataNotFound
from beamline_plugins.audio.transcript_vocabulary import join_tokens, transcript_tokens
from beamline_plugins.audio.transcripts import TranscriptManifest, manifest_items

VOCABULARY = [" ", "1", "3", "4"]  # the blank is class 4, the last


def _logits(path: list[int], classes: int = 5, sure: float = 0.9) -> np.ndarray:
    """Logits whose softmax gives ``sure`` to the class of each step of ``path``."""
    probs = np.full((len(path), classes), (1 - sure) / (classes - 1))
    probs[np.arange(len(path)), path] = sure
    return np.log(probs)[None].astype(np.float32)


def test_greedy_decoding_of_a_known_alignment_merges_repeats_and_drops_blanks() -> None:
    import tensorflow as tf

    from beamline_plugins.audio.ctc import greedy_decode, to_text

    b = 4
    # "3 1 4 1 1": repeats merge (3 3 -> 3); a blank keeps two 1s apart (1 b 1 -> 1 1)
    path = [2, 2, b, 0, 1, 1, b, 0, 0, 3, b, 0, 1, b, 1, b, b]
    ids = greedy_decode(tf.constant(_logits(path)), tf.constant([len(path)]))
    assert ids.to_list() == [[2, 0, 1, 0, 3, 0, 1, 1]]
    assert to_text(ids, VOCABULARY, "char").numpy().tolist() == [b"3 1 4 11"]
    # frames past an example's length are not read
    short = greedy_decode(tf.constant(_logits(path)), tf.constant([3]))
    assert short.to_list() == [[2]]


def test_beam_search_sums_alignments_where_the_best_path_misses() -> None:
    import tensorflow as tf

    from beamline_plugins.audio.ctc import beam_decode, greedy_decode, labelling_log_probability

    # Two steps, p(blank) = 0.6, p("1") = 0.4: the best path is blank-blank (0.36), but "1"
    # has 0.4 * 0.4 + 0.4 * 0.6 + 0.6 * 0.4 = 0.64 summed over its three alignments.
    probs = np.array([[[1e-6, 0.4, 1e-6, 1e-6, 0.6]] * 2], np.float32)
    logits, frames = tf.constant(np.log(probs)), tf.constant([2])
    greedy = greedy_decode(logits, frames)
    beam = beam_decode(logits, frames, beam_width=8)
    assert greedy.to_list() == [[]] and beam.to_list() == [[1]]
    scores = [
        float(labelling_log_probability(ids.to_tensor(default_value=-1), logits, frames)[0])
        for ids in (greedy, beam)
    ]
    assert scores[0] == pytest.approx(math.log(0.36), abs=1e-3)
    assert scores[1] == pytest.approx(math.log(0.64), abs=1e-3)


def test_ctc_loss_is_the_negative_log_likelihood_of_the_labelling() -> None:
    import tensorflow as tf

    from beamline_plugins.audio.ctc import ctc_loss

    b = 4
    logits = tf.constant(_logits([2, b, 1], sure=0.99))
    loss = ctc_loss(tf.constant([[2, 1, -1]]), logits, tf.constant([3]))
    wrong = ctc_loss(tf.constant([[3, 3, 3]]), logits, tf.constant([3]))
    assert float(loss[0]) < 0.1 < 5 < float(wrong[0])


def test_transcripts_split_into_characters_or_words_after_normalising_whitespace() -> None:
    assert transcript_tokens(" 3  1\t4 ", "char", False) == ["3", " ", "1", " ", "4"]
    assert transcript_tokens("Three ONE", "word", True) == ["three", "one"]
    assert join_tokens(["3", "1"], "word") == "3 1"


def _manifest(folder: Path, text: str) -> Path:
    (folder / "clips").mkdir(exist_ok=True)
    (folder / "clips" / "a.wav").write_bytes(b"RIFF")
    (folder / "clips" / "b.wav").write_bytes(b"RIFF")
    path = folder / "manifest.csv"
    path.write_text(text, encoding="utf-8")
    return path


def _items(path: Path, **options: object) -> list[tuple]:
    settings = {
        "path_column": "path",
        "text_column": "text",
        "group_column": "",
        "columns": [],
        "delimiter": ",",
        "source": "transcript_manifest",
        **options,
    }
    return manifest_items(path, **settings)


def test_manifest_rows_are_read_relative_to_the_manifest_and_bad_rows_rejected_by_row(
    tmp_path: Path,
) -> None:
    path = _manifest(
        tmp_path,
        "path,text,speaker\n"
        "clips/a.wav,3 1 4,george\n"
        "clips/missing.wav,2 7,george\n"
        "clips/b.wav,,theo\n"
        "clips/b.wav,1 2\n"
        "\n"
        "clips/b.wav,9 9,theo\n",
    )
    items = _items(path, group_column="speaker")
    assert items[0] == (
        "file",
        str(tmp_path / "clips" / "a.wav"),
        "clips/a.wav",
        "3 1 4",
        "george",
        {},
    )
    rejects = [(i[1], i[2]) for i in items if i[0] == "reject"]
    assert rejects == [
        (f"{path}:row 2", f"listed file not found: {tmp_path / 'clips' / 'missing.wav'}"),
        (f"{path}:row 3", "empty transcript ('text') for clips/b.wav"),
        (f"{path}:row 4", "expected 3 fields, got 2"),
    ]
    assert items[-1][3] == "9 9" and items[-1][4] == "theo"


def test_manifest_without_the_columns_names_the_file_and_the_missing_column(
    tmp_path: Path,
) -> None:
    path = _manifest(tmp_path, "path,sentence\nclips/a.wav,3 1 4\n")
    with pytest.raises(PipelineError, match=r"manifest\.csv has no column 'text'.*text_column"):
        _items(path)
    assert _items(path, text_column="sentence")[0][3] == "3 1 4"  # Common Voice's name
    tsv = _manifest(tmp_path, "path\tsentence\nclips/a.wav\t3 1 4\n")
    assert _items(tsv, text_column="sentence", delimiter="\t")[0][3] == "3 1 4"
    with pytest.raises(DataNotFound, match="manifest not found: .*nowhere.csv"):
        _items(tmp_path / "nowhere.csv")


def test_manifest_extra_columns_may_not_replace_the_record_features() -> None:
    with pytest.raises(ParamError, match="would replace a feature") as caught:
        TranscriptManifest(manifest="m.csv", columns=["text"]).check()
    assert caught.value.key == "columns"


@pytest.mark.parametrize("encoder", ["rnn", "transformer"])
def test_a_clips_logits_do_not_depend_on_the_padding_of_its_batch(encoder: str) -> None:
    import keras

    from beamline_plugins.audio.ctc_model import CtcSpeech

    inputs = {
        "audio": {"shape": [None, 8], "modality": "audio"},
        "audio_frames": {"shape": [], "modality": "length"},
    }
    model_component = CtcSpeech(
        conv_filters=[8, 8],
        conv_strides=[2, 1],
        rnn_units=4,
        rnn_layers=1,
        encoder=encoder,
        transformer_layers=1,
        heads=2,
        ff_units=8,
        dropout=0.0,
    )
    keras.utils.set_random_seed(0)
    model = model_component.build(inputs, 5)
    rng = np.random.default_rng(0)
    clip = rng.normal(size=(1, 21, 8)).astype(np.float32)
    alone = model({"audio": clip, "audio_frames": np.array([21])})
    padded = np.concatenate([clip, np.zeros((1, 13, 8), np.float32)], axis=1)
    other = rng.normal(size=(1, 34, 8)).astype(np.float32)
    batch = model({"audio": np.concatenate([padded, other]), "audio_frames": np.array([21, 34])})
    assert alone["logits"].shape == (1, 11, 5) and list(batch["frames"].numpy()) == [11, 17]
    np.testing.assert_allclose(batch["logits"][0, :11], alone["logits"][0], atol=1e-5)
