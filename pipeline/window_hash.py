"""A record's content digest as a window of the streaming engine orders and deduplicates by,
and the hidden key that carries it from where it was computed. Beam-free, so a stream's reader
process can compute it beside the step (``DIGEST_KEY``)."""

from __future__ import annotations

from .records import content_hash

#: A record's ``window_hash`` computed where it was read (a broker's reader process, for a
#: stream without transforms); hidden, so never written, hashed or summarized, and taken out
#: of the record when the window is deduplicated.
DIGEST_KEY = "__digest__"

#: The digest a window orders and deduplicates its records by: ``content_hash`` itself (one
#: sha256 call, names framed once, the common scalars framed inline).
window_hash = content_hash
