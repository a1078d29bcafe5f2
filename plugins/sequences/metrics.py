"""Edit distance and the error rates of sequence outputs (WER, CER, token error rate).

An error rate is the edit distance (substitutions + deletions + insertions, each costing one)
between hypothesis and reference, summed over a corpus and divided by the total reference length:
the corpus-level figure speech recognition and grapheme-to-phoneme papers report, not a mean of
per-example rates. It can exceed 1 when hypotheses insert more than references hold. Pure Python
(Levenshtein, O(len(a) * len(b)) with one row kept); tokens are any hashable values.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass


def edit_distance(reference: Sequence[Hashable], hypothesis: Sequence[Hashable]) -> int:
    """The Levenshtein distance between two token sequences (unit costs)."""
    if len(reference) < len(hypothesis):
        reference, hypothesis = hypothesis, reference
    previous = list(range(len(hypothesis) + 1))
    for i, ref in enumerate(reference, 1):
        current = [i]
        for j, hyp in enumerate(hypothesis, 1):
            current.append(
                min(
                    previous[j] + 1,  # a reference token missing from the hypothesis
                    current[j - 1] + 1,  # a hypothesis token not in the reference
                    previous[j - 1] + (ref != hyp),  # a match or a substitution
                )
            )
        previous = current
    return previous[-1]


@dataclass(frozen=True)
class ErrorCounts:
    """Edits and reference tokens summed over a corpus, and the sequences with any error."""

    edits: int = 0
    reference_tokens: int = 0
    sequences: int = 0
    wrong_sequences: int = 0

    @property
    def rate(self) -> float:
        """Edits per reference token (0 for an empty corpus with no edits; inf with edits)."""
        if self.reference_tokens:
            return self.edits / self.reference_tokens
        return 0.0 if not self.edits else float("inf")

    @property
    def sequence_error_rate(self) -> float:
        """The share of sequences with at least one error (1 - exact-match accuracy)."""
        return self.wrong_sequences / self.sequences if self.sequences else 0.0


def error_counts(
    pairs: Iterable[tuple[Sequence[Hashable], Sequence[Hashable]]],
) -> ErrorCounts:
    """``ErrorCounts`` of ``(reference tokens, hypothesis tokens)`` pairs."""
    edits = tokens = sequences = wrong = 0
    for reference, hypothesis in pairs:
        distance = edit_distance(reference, hypothesis)
        edits += distance
        tokens += len(reference)
        sequences += 1
        wrong += distance > 0
    return ErrorCounts(edits, tokens, sequences, wrong)


def error_rate(
    references: Iterable[Sequence[Hashable]], hypotheses: Iterable[Sequence[Hashable]]
) -> float:
    """Corpus error rate of token sequences: total edits / total reference tokens."""
    return error_counts(zip(references, hypotheses, strict=True)).rate


def words(text: str) -> list[str]:
    """The words of a text (split on whitespace)."""
    return text.split()


def chars(text: str) -> list[str]:
    """The characters of a text with runs of whitespace as one space, ends stripped."""
    return list(" ".join(text.split()))


def word_error_rate(references: Iterable[str], hypotheses: Iterable[str]) -> float:
    """WER: word edits / reference words over a corpus of strings."""
    return error_rate(map(words, references), map(words, hypotheses))


def char_error_rate(references: Iterable[str], hypotheses: Iterable[str]) -> float:
    """CER: character edits / reference characters (spaces count), whitespace collapsed."""
    return error_rate(map(chars, references), map(chars, hypotheses))
