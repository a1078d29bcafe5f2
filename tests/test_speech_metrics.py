"""Error rates of transcripts: WER and CER on strings whose edits are known."""

from __future__ import annotations

import pytest

from beamline_plugins.sequences.metrics import (
    char_error_rate,
    edit_distance,
    error_counts,
    word_error_rate,
)


def test_edit_distance_counts_substitutions_deletions_and_insertions() -> None:
    assert edit_distance("kitten", "sitting") == 3
    assert edit_distance([], [1, 2]) == 2
    assert edit_distance([1, 2, 3], []) == 3
    assert edit_distance("3 1 4".split(), "3 1 4".split()) == 0


def test_word_error_rate_is_corpus_edits_over_reference_words() -> None:
    references = ["3 1 4 1 5", "9 2 6"]
    hypotheses = ["3 1 1 5", "9 2 6 5"]  # one deletion, one insertion
    assert word_error_rate(references, hypotheses) == pytest.approx(2 / 8)
    assert word_error_rate(["2 7"], ["8 1 3"]) == pytest.approx(3 / 2)  # may exceed 1


def test_char_error_rate_counts_spaces_and_collapses_whitespace() -> None:
    assert char_error_rate(["3 1 4"], ["3  1 4 "]) == 0.0
    assert char_error_rate(["3 1 4"], ["3 7 4"]) == pytest.approx(1 / 5)
    assert char_error_rate(["abc"], ["abd"]) == pytest.approx(1 / 3)


def test_error_counts_report_the_share_of_wrong_sequences() -> None:
    counts = error_counts([("ab", "ab"), ("ab", "b"), ("abc", "abc"), ("", "")])
    assert counts.edits == 1 and counts.reference_tokens == 7
    assert counts.sequence_error_rate == pytest.approx(1 / 4)
