"""The one TFRecord reader and writer of the core (``beamline.tfrecord``), without TensorFlow."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from beamline import tfrecord

RECORDS = [b"", b"a", b"x" * 5000, bytes(range(256)) * 40]


def test_records_written_read_back_equal_plain_and_gzip(tmp_path: Path) -> None:
    plain, packed = tmp_path / "plain.tfrecord", tmp_path / "packed.tfrecord.gz"
    assert tfrecord.write_tfrecords(plain, RECORDS, compress=False) == len(RECORDS)
    tfrecord.write_tfrecords(packed, RECORDS)
    assert tfrecord.read_tfrecord_file(plain) == RECORDS
    assert list(tfrecord.read_tfrecords(packed)) == RECORDS
    assert gzip.decompress(packed.read_bytes()) == plain.read_bytes()


def test_equal_records_give_byte_identical_files(tmp_path: Path) -> None:
    tfrecord.write_tfrecords(tmp_path / "a.gz", RECORDS)
    tfrecord.write_tfrecords(tmp_path / "b.gz", RECORDS)
    assert (tmp_path / "a.gz").read_bytes() == (tmp_path / "b.gz").read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.gz", "b.gz"]  # no temporary left


def test_records_larger_than_a_chunk_and_concatenated_gzip_members_are_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tfrecord, "CHUNK_BYTES", 64)  # every record spans several chunks
    one, two = tmp_path / "one.gz", tmp_path / "two.gz"
    tfrecord.write_tfrecords(one, RECORDS[:2])
    tfrecord.write_tfrecords(two, RECORDS[2:])
    joined = tmp_path / "joined.tfrecord.gz"
    joined.write_bytes(one.read_bytes() + two.read_bytes())
    assert tfrecord.read_tfrecord_file(joined) == RECORDS
    assert tfrecord.read_tfrecord_file(joined, compression="gzip") == RECORDS


def test_an_empty_file_holds_no_records(tmp_path: Path) -> None:
    empty = tmp_path / "empty.tfrecord"
    empty.write_bytes(b"")
    assert tfrecord.read_tfrecord_file(empty) == []
    assert tfrecord.read_tfrecord_file(empty, compression="gzip") == []


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda raw: raw[:-3], r"record 4: truncated record"),
        (lambda raw: raw + b"\0\0", r"record 5: truncated record header"),
        (
            lambda raw: raw[:18] + bytes([raw[18] ^ 0xFF]) + raw[19:],
            r"record 2: corrupt record length",
        ),
        (
            lambda raw: raw[:-5] + bytes([raw[-5] ^ 0xFF]) + raw[-4:],
            r"record 4: corrupt record data",
        ),
    ],
    ids=["cut-record", "cut-header", "bad-length", "bad-data"],
)
def test_a_damaged_file_names_the_file_and_the_record(tmp_path: Path, damage, message) -> None:
    path = tmp_path / "bad.tfrecord"
    tfrecord.write_tfrecords(path, RECORDS, compress=False)
    path.write_bytes(damage(path.read_bytes()))
    with pytest.raises(ValueError, match=r"bad\.tfrecord: " + message):
        tfrecord.read_tfrecord_file(path)


def test_a_cut_gzip_file_is_not_readable_gzip(tmp_path: Path) -> None:
    path = tmp_path / "cut.tfrecord.gz"
    tfrecord.write_tfrecords(path, RECORDS)
    path.write_bytes(path.read_bytes()[:-20])
    with pytest.raises(ValueError, match=r"cut\.tfrecord\.gz: record \d: "):
        tfrecord.read_tfrecord_file(path)


def test_the_checksum_is_crc32c() -> None:
    assert tfrecord.crc32c(b"123456789") == 0xE3069283  # the CRC-32C check value
    assert tfrecord._crc32c_python(b"123456789") == 0xE3069283
