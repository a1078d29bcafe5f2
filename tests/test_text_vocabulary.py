"""The vocabulary analyzer run directly with Beam, and the tokeniser's Python/TensorFlow parity."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from beamline.beam_options import pipeline_options
from beamline.spec import RunnerSettings
from beamline_plugins.text.tokens import tokenize
from beamline_plugins.text.vocabulary import run_analyzer, vocabulary_analyzer

RECORDS = [
    {"text": "the cat sat on the mat", "label": "a", "__source__": "r1"},
    {"text": "The dog sat!", "label": "b", "__source__": "r2"},
    {"text": "a cat, a dog; a bird", "label": "a", "__source__": "r3"},
    {"text": "zebra", "label": "b", "__source__": "r4"},
]


def _analyze(records: list[dict], folder: Path, **options) -> tuple[dict, bytes]:
    settings = {"feature": "text", "level": "word", "max_tokens": 100, "min_count": 1}
    settings.update(options)
    run_analyzer(
        records, vocabulary_analyzer(**settings), folder, pipeline_options(RunnerSettings())
    )
    data = (folder / "vocabulary" / "text.json").read_bytes()
    return json.loads(data), data


def test_vocabulary_orders_by_count_then_token_after_reserved_tokens(tmp_path: Path) -> None:
    vocab, _ = _analyze(RECORDS, tmp_path, min_count=2, max_tokens=4)
    # counts: a 3, sat 2, the 2 (The differs without lowercase), cat 2, dog 2
    assert vocab["tokens"] == ["[PAD]", "[UNK]", "a", "cat", "dog", "sat"]
    assert vocab["counts"][2:] == [3, 2, 2, 2]
    assert vocab["records"] == 4
    total = sum(len(tokenize(r["text"])) for r in RECORDS)
    assert vocab["total_tokens"] == total and vocab["oov_tokens"] == total - 9
    assert vocab["counts"][1] == vocab["oov_tokens"]
    lines = (tmp_path / "vocabulary" / "text.txt").read_text(encoding="utf-8").splitlines()
    assert lines == vocab["tokens"]


def test_vocabulary_is_deterministic_whatever_the_record_order(tmp_path: Path) -> None:
    shuffled = list(RECORDS) * 3
    random.Random(7).shuffle(shuffled)
    _, first = _analyze(RECORDS * 3, tmp_path / "a", lowercase=True)
    _, second = _analyze(shuffled, tmp_path / "b", lowercase=True)
    assert first == second
    vocab = json.loads(first)
    assert vocab["tokens"][2:5] == ["a", "the", "cat"] and vocab["lowercase"] is True


def test_character_vocabulary_counts_code_points(tmp_path: Path) -> None:
    vocab, _ = _analyze([{"text": "héé h"}], tmp_path, level="char")
    assert vocab["tokens"] == ["[PAD]", "[UNK]", "h", "é", " "]  # ties: by code point
    assert vocab["counts"][2:] == [2, 2, 1] and vocab["level"] == "char"


@pytest.mark.parametrize("level", ["word", "char"])
def test_tensorflow_tokeniser_matches_the_python_one(level: str) -> None:
    import tensorflow as tf

    from beamline_plugins.text.tf_ops import TokenEncoder, tf_tokenize

    texts = [
        "Free entry!! Txt WIN to 87121 (std rate) T&C's",
        "tabs\tand\nnew lines   and  spaces",
        "Ünïcödé ÄÖÜ café — “quotes” 😀 ok",
        "",
        "...",
    ]
    ours = [tokenize(t, level, lowercase=True) for t in texts]
    theirs = tf_tokenize(tf.constant(texts), level, lowercase=True).to_list()
    assert [[t.decode("utf-8") for t in row] for row in theirs] == ours
    vocabulary = ["[PAD]", "[UNK]", "free", "!", "and", "ü", "a", " "]
    lookup = {token: i for i, token in enumerate(vocabulary)}
    encoder = TokenEncoder(vocabulary, level, lowercase=True)
    ids = encoder(tf.constant(texts), max_length=12).numpy().tolist()
    expected = [([lookup.get(t, 1) for t in row] + [0] * 12)[:12] for row in ours]
    assert ids == expected


def test_char_normalizer_matches_python_nfkc_on_real_and_compatibility_text() -> None:
    import unicodedata

    import tensorflow as tf
    from data_paths import SMS_CSV
    from ingest_support import csv_rows

    from beamline_plugins.text.tf_ops import CharNormalizer

    texts = [row["text"] for row in csv_rows(SMS_CSV, 300)]
    texts += ["ＦＲＥＥ ﬁnal\u00a0offer", "①②③ ㎏ ½ ™", "Ｃａｆé résumé", "ǅungla", "x²ʰ"]
    out = CharNormalizer("NFKC")(tf.constant(texts)).numpy()
    assert [o.decode() for o in out] == [unicodedata.normalize("NFKC", t) for t in texts]
    nfc = CharNormalizer("NFC")(tf.constant(["\u212b ångström"])).numpy()[0].decode()
    assert nfc == "\u00c5 ångström"  # the Angstrom sign becomes the letter Å


def test_token_encoder_applies_the_ingest_normal_form_before_lowercasing() -> None:
    import tensorflow as tf

    from beamline_plugins.text.tf_ops import TokenEncoder

    vocabulary = ["[PAD]", "[UNK]", "free", "final", "offer"]
    plain = TokenEncoder(vocabulary, "word", lowercase=True)
    normal = TokenEncoder(vocabulary, "word", lowercase=True, normalization="NFKC")
    raw = tf.constant(["ＦＲＥＥ ﬁnal offer"])
    assert normal.encode(raw).to_list() == [[2, 3, 4]]
    assert plain.encode(raw).to_list() != [[2, 3, 4]]  # without it, the same text is unknown
