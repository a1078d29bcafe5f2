"""A record's content digest as a window of the streaming engine orders and deduplicates by:
``window_hash`` (``content_hash``'s digest in one sha256 call). Beam-free, so a stream's reader
process can compute it beside the step (``DIGEST_KEY``)."""

from __future__ import annotations

import hashlib
from typing import Any

from .records import canonical_bytes, is_hidden

#: A record's ``window_hash`` computed where it was read (a broker's reader process, for a
#: stream without transforms); hidden, so never written, hashed or summarized, and taken out
#: of the record when the window is deduplicated.
DIGEST_KEY = "__digest__"


def window_hash(record: dict[str, Any]) -> str:
    """``content_hash(record)`` (the same digest), in one sha256 call: bytes and text values are
    framed here, others by ``canonical_bytes``; each name's frame is made once. A window hashes
    every message it stores."""
    parts = []
    for name in sorted(record):
        value = record[name]
        if value is None:
            continue
        framed = _NAMES.get(name)
        if framed is None:
            framed = _name_frame(name)
        if not framed:  # hidden
            continue
        parts.append(framed)
        kind = type(value)
        if kind is bytes:
            parts += (b"b%d:" % len(value), value)
        elif kind is str:
            data = value.encode("utf-8")
            parts += (b"s%d:" % len(data), data)
        else:
            parts.append(canonical_bytes(value))
    return hashlib.sha256(b"".join(parts)).hexdigest()


#: Record names and their frames in ``window_hash`` (b"" for a hidden name), up to a bound.
_NAMES: dict[str, bytes] = {}


def _name_frame(name: str) -> bytes:
    data = name.encode("utf-8")
    framed = b"" if is_hidden(name) else b"s%d:%s" % (len(data), data)
    if len(_NAMES) < 4096:
        _NAMES[name] = framed
    return framed
