"""Scores of generated images from a classifier's class probabilities (numpy only).

For a set of images and the classifier's probabilities ``probs`` (``[n, k]``):

* ``confidence``: the mean of each image's highest probability: recognisable images score high;
* ``evenness``: the entropy of the histogram of predicted classes divided by ``log(k)``: 1 when
  every class is predicted equally often, 0 when one class takes all (mode collapse);
* ``coverage``: the share of the ``k`` classes predicted at least once;
* ``inception_score``: ``exp(mean KL(p(y|x) || p(y)))``, between 1 and ``k``: high when images
  are both confidently classified and spread over the classes.
"""

from __future__ import annotations

from typing import Any

SCORES = ("confidence", "evenness", "coverage", "inception_score")


def class_histogram(probs: Any, num_classes: int) -> Any:
    """How often each class is the most probable one."""
    import numpy as np

    predicted = np.asarray(probs).argmax(axis=1)
    return np.bincount(predicted, minlength=num_classes)


def evenness(histogram: Any) -> float:
    """Entropy of a class histogram normalised by ``log(number of classes)`` (0 to 1)."""
    import numpy as np

    counts = np.asarray(histogram, dtype=np.float64)
    if counts.size < 2 or counts.sum() <= 0:
        return 0.0
    share = counts[counts > 0] / counts.sum()
    return max(0.0, float(-(share * np.log(share)).sum() / np.log(counts.size)))


def inception_score(probs: Any) -> float:
    """``exp(mean KL(p(y|x) || p(y)))`` of class probabilities ``[n, k]``."""
    import numpy as np

    p = np.clip(np.asarray(probs, dtype=np.float64), 1e-12, 1.0)
    marginal = p.mean(axis=0, keepdims=True)
    kl = (p * (np.log(p) - np.log(marginal))).sum(axis=1)
    return float(np.exp(kl.mean()))


def score(probs: Any) -> dict[str, Any]:
    """Every score of ``SCORES`` for class probabilities ``[n, k]``, plus ``count`` and
    ``histogram`` (images per predicted class)."""
    import numpy as np

    p = np.asarray(probs, dtype=np.float64)
    if p.ndim != 2 or not len(p):
        raise ValueError(f"expected class probabilities of shape [n, k] with n > 0, got {p.shape}")
    histogram = class_histogram(p, p.shape[1])
    return {
        "count": int(len(p)),
        "confidence": float(p.max(axis=1).mean()),
        "evenness": evenness(histogram),
        "coverage": float((histogram > 0).mean()),
        "inception_score": inception_score(p),
        "histogram": [int(c) for c in histogram],
    }
