"""Which split (train, eval, test) a record goes to: a stable hash, or the data's own split.

The assignment depends only on the record (its content hash, or the feature named by
``split.key`` / ``split.group_by``) and the salt, so reruns and runners agree on every record.
"""

from __future__ import annotations

import hashlib
import math
from typing import TYPE_CHECKING, Any

from .errors import SpecError
from .records import canonical_bytes

if TYPE_CHECKING:
    from .components import Split

SPLIT_NAMES = ("train", "eval", "test")

_SPLIT_ALIASES = {
    "train": "train",
    "training": "train",
    "eval": "eval",
    "evaluation": "eval",
    "validation": "eval",
    "valid": "eval",
    "val": "eval",
    "dev": "eval",
    "test": "test",
    "testing": "test",
}


def split_shares(split: Split) -> list[tuple[str, float]]:
    """The splits with a positive share, shares normalised to sum to 1."""
    shares = [(name, float(getattr(split, name))) for name in SPLIT_NAMES]
    bad = [f"{name}={share}" for name, share in shares if share < 0 or math.isnan(share)]
    total = sum(share for _, share in shares if share > 0)
    if bad or total <= 0:
        raise SpecError(
            f"split: shares must be non-negative and not all zero, got "
            f"{', '.join(f'{n}={s}' for n, s in shares)}"
        )
    return [(name, share / total) for name, share in shares if share > 0]


def split_of(key: bytes, shares: list[tuple[str, float]], salt: str = "") -> str:
    """The split of a record whose split key is ``key``: a stable hash, the same on every run."""
    digest = hashlib.sha256(salt.encode("utf-8") + b"\0" + key).digest()
    point = int.from_bytes(digest[:8], "big") / 2**64
    cumulative = 0.0
    for name, share in shares:
        cumulative += share
        if point < cumulative:
            return name
    return shares[-1][0]


def split_key(record: dict[str, Any], digest: str, split: Split) -> bytes | str:
    """The bytes a record's split is drawn from (``split.group_by`` or ``split.key`` feature,
    else the content hash ``digest``), or the reason it cannot be split."""
    feature = split.group_by or split.key
    if not feature:
        return digest.encode()
    value = record.get(feature)
    if value is None:
        role = "split.group_by" if split.group_by else "split.key"
        return f"no value for feature '{feature}' named by {role}"
    return canonical_bytes(value)


def predefined_split(record: dict[str, Any], feature: str) -> tuple[str, dict[str, Any]] | str:
    """``(split, record without feature)`` for a record naming its own split in ``feature``, or
    the reason it names none."""
    value = record.get(feature)
    if isinstance(value, list | tuple) and len(value) == 1:
        value = value[0]
    if isinstance(value, bytes):
        value = value.decode("utf-8", errors="replace")
    if value is None:
        return f"no value for feature '{feature}' named by split.from_feature"
    split = _SPLIT_ALIASES.get(str(value).strip().lower())
    if split is None:
        return (
            f"split feature '{feature}' is {value!r}; expected train, eval (or validation, "
            "valid, val, dev) or test"
        )
    return split, {k: v for k, v in record.items() if k != feature}
