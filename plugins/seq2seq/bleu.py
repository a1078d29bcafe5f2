"""Corpus BLEU (Papineni et al. 2002): clipped n-gram precisions and a brevity penalty.

``corpus_bleu(references, hypotheses)`` takes token lists, one reference per hypothesis, and
returns BLEU in [0, 1] (sacrebleu reports the same figure times 100 on its own tokenisation):
the geometric mean of the modified n-gram precisions for n = 1..4, each summed over the corpus
before dividing, times ``exp(1 - r / c)`` when the hypotheses' length c is below the
references' r. Without smoothing a corpus with no matching 4-gram scores 0, as in the paper
and sacrebleu's default. Pure Python.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Hashable, Iterable, Sequence


def ngrams(tokens: Sequence[Hashable], n: int) -> Counter:
    """The n-grams of ``tokens`` with their counts."""
    return Counter(tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1))


def corpus_bleu(
    references: Iterable[Sequence[Hashable]],
    hypotheses: Iterable[Sequence[Hashable]],
    max_order: int = 4,
) -> float:
    """Corpus BLEU of ``hypotheses`` against one reference each (see the module docstring)."""
    matches = [0] * max_order
    totals = [0] * max_order
    reference_length = hypothesis_length = 0
    for reference, hypothesis in zip(references, hypotheses, strict=True):
        reference_length += len(reference)
        hypothesis_length += len(hypothesis)
        for n in range(1, max_order + 1):
            counts, wanted = ngrams(hypothesis, n), ngrams(reference, n)
            matches[n - 1] += sum(min(c, wanted[g]) for g, c in counts.items())
            totals[n - 1] += max(len(hypothesis) - n + 1, 0)
    if not hypothesis_length or min(matches) == 0:
        return 0.0
    log_precision = sum(math.log(m / t) for m, t in zip(matches, totals, strict=True)) / max_order
    brevity = min(0.0, 1.0 - reference_length / hypothesis_length)
    return math.exp(log_precision + brevity)
