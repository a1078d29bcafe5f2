"""Bounded-memory grouping through local files: run files by bucket, sorted shard fragments.

Beam's in-process runners hold the whole input of a ``GroupByKey`` in memory, so grouping every
record (to find duplicates, to fill a shard) makes memory grow with the data. Ingest groups
through files instead and passes only file names and byte ranges through Beam:

1. ``RunWriter`` buffers ``(bucket, blob)`` pairs and, when its buffer is full or its bundle
   ends, writes one *run file* ordered by bucket; it reports ``(bucket, path, offset, length)``
   ranges. Memory: one buffer.
2. ``bucket_groups`` cuts the reported ranges into groups of whole buckets of about a target
   size; ``read_blobs`` reads one group back. Memory: one group.
3. ``write_fragment`` writes a group's records of one shard sorted by key; ``merge_fragments``
   merges the sorted fragments of a shard lazily. Memory: one record per fragment.

Files live under the step's work folder, which every worker of the local runners can reach.
"""

from __future__ import annotations

import heapq
import struct
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path

from .atomic import atomic_path

#: A range of one run file holding one bucket's blobs: (bucket, path, offset, length).
Range = tuple[int, str, int, int]

_LENGTH = struct.Struct("<I")
_KEYED = struct.Struct("<HI")


class RunWriter:
    """Buffers ``(bucket, blob)`` pairs and writes them as run files ordered by bucket."""

    def __init__(self, folder: str | Path, buffer_bytes: int) -> None:
        self.folder = Path(folder)
        self.buffer_bytes = buffer_bytes
        self._buffer: list[tuple[int, bytes]] = []
        self._size = 0
        self.ranges: list[Range] = []

    def add(self, bucket: int, blob: bytes) -> None:
        """Buffer one blob for ``bucket``; writes a run file when the buffer is full."""
        self._buffer.append((bucket, blob))
        self._size += len(blob)
        if self._size >= self.buffer_bytes:
            self.flush()

    def flush(self) -> None:
        """Write the buffered blobs (if any) as one run file and record its ranges."""
        if not self._buffer:
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / f"run-{uuid.uuid4().hex}.bin"
        self._buffer.sort(key=lambda pair: pair[0])  # stable: arrival order within a bucket
        offset = start = 0
        current = self._buffer[0][0]
        parts: list[bytes] = []  # one write call per run file: a call per blob cost more
        pack, head = _LENGTH.pack, _LENGTH.size
        for bucket, blob in self._buffer:
            if bucket != current:
                self.ranges.append((current, str(path), start, offset - start))
                current, start = bucket, offset
            parts += (pack(len(blob)), blob)
            offset += head + len(blob)
        with open(path, "wb") as handle:
            handle.write(b"".join(parts))
        self.ranges.append((current, str(path), start, offset - start))
        self._buffer = []
        self._size = 0

    def take_ranges(self) -> list[Range]:
        """Flush and return the ranges written since the last call."""
        self.flush()
        ranges, self.ranges = self.ranges, []
        return ranges


def bucket_groups(ranges: Iterable[Range], target_bytes: int) -> list[list[Range]]:
    """Ranges cut into groups of whole buckets, consecutive buckets up to ``target_bytes`` each.

    A bucket is never split, so records of one bucket (equal keys) always meet in one group."""
    by_bucket: dict[int, list[Range]] = {}
    for entry in ranges:
        by_bucket.setdefault(entry[0], []).append(entry)
    groups: list[list[Range]] = []
    current: list[Range] = []
    size = 0
    for bucket in sorted(by_bucket):
        entries = sorted(by_bucket[bucket], key=lambda e: (e[1], e[2]))
        bucket_size = sum(e[3] for e in entries)
        if current and size + bucket_size > target_bytes:
            groups.append(current)
            current, size = [], 0
        current.extend(entries)
        size += bucket_size
    if current:
        groups.append(current)
    return groups


def read_blobs(ranges: Iterable[Range]) -> Iterator[bytes]:
    """The blobs stored in ``ranges`` of run files, in order."""
    for _, path, offset, length in ranges:
        with open(path, "rb") as handle:
            handle.seek(offset)
            data = handle.read(length)
        if len(data) != length:
            raise OSError(f"{path}: spill file truncated (wanted {length} bytes at {offset})")
        pos = 0
        while pos < length:
            (size,) = _LENGTH.unpack_from(data, pos)
            pos += _LENGTH.size
            yield data[pos : pos + size]
            pos += size


def write_fragment(folder: str | Path, name: str, items: list[tuple[bytes, bytes]]) -> str:
    """Write ``(key, data)`` pairs, sorted, as one fragment file; return its path."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}-{uuid.uuid4().hex}.bin"
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        for key, data in sorted(items):
            handle.write(_KEYED.pack(len(key), len(data)))
            handle.write(key)
            handle.write(data)
    return str(path)


def read_fragment(path: str | Path) -> Iterator[tuple[bytes, bytes]]:
    """The ``(key, data)`` pairs of a fragment file, in its (sorted) order."""
    with open(path, "rb") as handle:
        while True:
            head = handle.read(_KEYED.size)
            if not head:
                return
            if len(head) != _KEYED.size:
                raise OSError(f"{path}: fragment file truncated")
            key_size, data_size = _KEYED.unpack(head)
            key = handle.read(key_size)
            data = handle.read(data_size)
            if len(key) != key_size or len(data) != data_size:
                raise OSError(f"{path}: fragment file truncated")
            yield key, data


def merge_fragments(paths: Iterable[str | Path]) -> Iterator[bytes]:
    """The data of several sorted fragments, merged in ``(key, data)`` order."""
    for _, data in heapq.merge(*(read_fragment(p) for p in sorted(map(str, paths)))):
        yield data
