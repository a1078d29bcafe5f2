"""TFRecord files without TensorFlow: one writer and one reader, checksums verified.

A TFRecord file is a sequence of ``length (uint64 LE) | masked CRC-32C of length | data |
masked CRC-32C of data``, optionally GZIP-compressed as a whole (possibly as several
concatenated GZIP members). ``write_tfrecords`` writes byte-identical files for equal records;
``read_tfrecords`` streams the records of a file and ``read_tfrecord_file`` returns them all.

The reader decompresses with ``zlib`` in chunks of ``CHUNK_BYTES`` and cuts records out of the
decompressed bytes in Python, checking both checksums as TensorFlow's reader does, with
``google_crc32c`` (C) computing them. Memory is one chunk plus one record, and it is as fast as
reading and decompressing a whole file at once (the validation step's former reader) and faster
than a ``gzip.GzipFile`` stream (the codec's former reader): best of 15 reads, the digits train
shard (1,443 PNG examples) 1.4 ms against 1.6 ms whole-file and 2.9 ms ``GzipFile``; 30,000
records of 11.2 MB, 50 ms against 55 ms and 79 ms.
"""

from __future__ import annotations

import gzip
import struct
import zlib
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

from .atomic import atomic_path

#: Compressed bytes read, and decompressed bytes produced, per step of the reader.
CHUNK_BYTES = 1 << 20
COMPRESSIONS = ("auto", "gzip", "none")
_HEADER = struct.Struct("<QI")
_CRC = struct.Struct("<I")
_CRC_TABLE: list[int] = []


def _crc32c_python(data: bytes) -> int:
    if not _CRC_TABLE:
        for byte in range(256):
            crc = byte
            for _ in range(8):
                crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
            _CRC_TABLE.append(crc)
    crc = 0xFFFFFFFF
    for byte in data:
        crc = _CRC_TABLE[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def _crc32c_function() -> Callable[[bytes], int]:
    try:
        import google_crc32c

        return google_crc32c.value  # type: ignore[no-any-return]
    except ImportError:  # pragma: no cover - the pure Python fallback
        return _crc32c_python


_crc32c: Callable[[bytes], int] | None = None


def crc32c(data: bytes) -> int:
    """The CRC-32C (Castagnoli) checksum TFRecord files use (C speed with ``google_crc32c``)."""
    global _crc32c
    if _crc32c is None:
        _crc32c = _crc32c_function()
    return int(_crc32c(data))


def _mask(crc: int) -> int:
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def masked_crc(data: bytes) -> int:
    """The masked CRC-32C stored in TFRecord files."""
    return _mask(crc32c(data))


def write_tfrecords(
    path: str | Path, records: Iterable[bytes], *, compress: bool = True, level: int = 6
) -> int:
    """Write ``records`` to a TFRecord file (GZIP at ``level`` unless ``compress`` is False);
    return the count.

    The file is written under a temporary name and renamed, and its GZIP header carries no time or
    name, so equal records give byte-identical files."""
    count = 0
    crc = _crc32c_function()
    headers: dict[int, bytes] = {}  # record length -> its length and the length's checksum
    with atomic_path(path) as tmp, open(tmp, "wb") as raw:
        stream: BinaryIO = (
            gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=level)
            if compress
            else raw
        )
        pending: list[bytes] = []  # written a chunk at a time: one write call per record
        size = 0  # costs more than framing it (a window of small broker messages)
        for record in records:
            header = headers.get(len(record))
            if header is None:
                length = struct.pack("<Q", len(record))
                header = headers[len(record)] = length + _CRC.pack(masked_crc(length))
            pending += (header, record, _CRC.pack(_mask(crc(record))))
            size += len(record) + 16
            count += 1
            if size >= CHUNK_BYTES:
                stream.write(b"".join(pending))
                pending, size = [], 0
        stream.write(b"".join(pending))
        if compress:
            stream.close()
    return count


def frame(record: bytes) -> bytes:
    """One record as a TFRecord file holds it (length, its checksum, data, its checksum)."""
    length = struct.pack("<Q", len(record))
    return length + _CRC.pack(masked_crc(length)) + record + _CRC.pack(masked_crc(record))


def write_framed(path: str | Path, framed: list[bytes], *, level: int = 6) -> int:
    """Write records already ``frame``d (made elsewhere, as a broker's reader process does) as
    a GZIP TFRecord file at ``level``: the same file ``write_tfrecords`` writes of the records
    (the same chunks); return the count."""
    with atomic_path(path) as tmp, open(tmp, "wb") as raw:
        stream = gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=level)
        start, size = 0, 0
        for end, record in enumerate(framed, 1):
            size += len(record)
            if size >= CHUNK_BYTES:
                stream.write(b"".join(framed[start:end]))
                start, size = end, 0
        stream.write(b"".join(framed[start:]))
        stream.close()
    return len(framed)


def _chunks(handle: BinaryIO, gzipped: bool) -> Iterator[bytes]:
    """The (decompressed) bytes of ``handle`` in chunks of at most about ``CHUNK_BYTES``."""
    if not gzipped:
        while chunk := handle.read(CHUNK_BYTES):
            yield chunk
        return
    member = zlib.decompressobj(wbits=31)
    started = False  # a member has begun: its end must be reached
    while raw := handle.read(CHUNK_BYTES):
        while raw:
            started = True
            out = member.decompress(raw, CHUNK_BYTES)
            if out:
                yield out
            if member.eof:  # the next member (concatenated GZIP files), if any
                raw = member.unused_data
                member, started = zlib.decompressobj(wbits=31), False
            else:
                raw = member.unconsumed_tail
    while started and not member.eof:  # output held back by the length limit
        out = member.decompress(b"", CHUNK_BYTES)
        if not out:
            raise EOFError("compressed data ended before the end-of-stream marker")
        yield out


def _fill(buffer: bytes, pos: int, need: int, chunks: Iterator[bytes]) -> tuple[bytes, int]:
    """``(buffer, pos)`` holding at least ``need`` bytes from ``pos`` on, or fewer at the end."""
    if len(buffer) - pos >= need:
        return buffer, pos
    parts, have = [buffer[pos:]], len(buffer) - pos
    while have < need:
        chunk = next(chunks, None)
        if chunk is None:
            break
        parts.append(chunk)
        have += len(chunk)
    return b"".join(parts), 0


def read_tfrecords(path: str | Path, *, compression: str = "auto") -> Iterator[bytes]:
    """Yield the records of a TFRecord file; ``compression`` is ``auto``, ``gzip`` or ``none``
    (``auto``: GZIP when the file starts with the GZIP magic bytes).

    Raises ``ValueError`` naming the file and record number on a truncated or corrupt file."""
    if compression not in COMPRESSIONS:
        raise ValueError(f"compression must be one of {', '.join(COMPRESSIONS)}: {compression!r}")
    crc = _crc32c_function()
    with open(path, "rb") as handle:
        head = handle.read(2)
        handle.seek(0)
        gzipped = compression == "gzip" or (compression == "auto" and head == b"\x1f\x8b")
        chunks = _chunks(handle, gzipped)
        buffer, pos, index = b"", 0, 0
        header, footer = _HEADER.size, _HEADER.size + _CRC.size
        while True:
            index += 1
            try:
                if len(buffer) - pos < header:
                    buffer, pos = _fill(buffer, pos, header, chunks)
                    if pos == len(buffer):
                        return
                    if len(buffer) - pos < header:
                        raise ValueError("truncated record header")
                length, length_crc = _HEADER.unpack_from(buffer, pos)
                if _mask(crc(buffer[pos : pos + 8])) != length_crc:
                    raise ValueError("corrupt record length (checksum mismatch)")
                if len(buffer) - pos < footer + length:
                    buffer, pos = _fill(buffer, pos, footer + length, chunks)
                    if len(buffer) - pos < footer + length:
                        raise ValueError("truncated record")
                end = pos + header + length
                record = buffer[pos + header : end]
                if _mask(crc(record)) != _CRC.unpack_from(buffer, end)[0]:
                    raise ValueError("corrupt record data (checksum mismatch)")
            except (OSError, EOFError, zlib.error) as exc:
                where = f"{path}: record {index}"
                raise ValueError(f"{where}: not a readable GZIP file: {exc}") from None
            except ValueError as exc:
                raise ValueError(f"{path}: record {index}: {exc}") from None
            pos = end + _CRC.size
            yield record


def read_tfrecord_file(path: str | Path, *, compression: str = "auto") -> list[bytes]:
    """Every record of a TFRecord file (see ``read_tfrecords``)."""
    return list(read_tfrecords(path, compression=compression))
