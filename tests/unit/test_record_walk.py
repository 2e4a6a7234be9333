"""The record walk's fast paths (csrc/hw_batch.c record_read) and the column pool.

The walk reads 1- and 2-byte varints inline and everything longer through the general reader;
these tests put every record field at the 1/2/3-byte boundaries, cut 2-byte varints at the end
of a record and of a section, and compare every decoder (decode_records of both impls,
decode_columns, decode_messages, check_batch) with the pure-Python twin. The column pool hands
the arrays of dead RecordColumns to the next decode: a column still referenced (or viewed)
must never be reused.
"""

from __future__ import annotations

import struct

import crc32c as pypi_crc32c
import numpy as np
import pytest

from headwater.errors import CorruptRecordError

TS0 = 1_700_000_000_000
WIDTHS = [0, 1, 62, 63, 64, 65, 8190, 8191, 8192, 8193, 70_000]  # 1/2/3-byte varint edges


def _zz(value: int) -> bytes:
    z = (value << 1) ^ (value >> 63)
    out = bytearray()
    while z >= 0x80:
        out.append((z & 0x7F) | 0x80)
        z >>= 7
    out.append(z)
    return bytes(out)


def _batch(section: bytes, count: int, last_offset_delta: int | None = None) -> bytes:
    """A RecordBatch v2 (base offset 0, CreateTime TS0) around a records section."""
    lod = count - 1 if last_offset_delta is None else last_offset_delta
    body = struct.pack(">hiqqqhii", 0, lod, TS0, TS0, -1, -1, -1, count) + section
    crc = pypi_crc32c.crc32c(body)
    return struct.pack(">qiibI", 0, 4 + 1 + 4 + len(body), 0, 2, crc) + body


def _record(offset_delta: int, value: bytes, *, header_count: bytes = b"\x00", length_delta: int = 0) -> bytes:
    body = b"\x00" + _zz(0) + _zz(offset_delta) + _zz(-1) + _zz(len(value)) + value + header_count
    return _zz(len(body) + length_delta) + body


def _tuples(records) -> list[tuple]:  # noqa: ANN001
    return [(r.offset, r.timestamp, r.key, r.value, list(r.headers)) for r in records]


@pytest.mark.parametrize("width", WIDTHS)
def test_every_decoder_agrees_at_varint_boundaries(native, pure, width):
    keys = [b"k" * w for w in WIDTHS]
    values = [b"v" * width] * len(keys)
    headers = [[("h", b"x" * width)] if i % 3 == 0 else [] for i in range(len(keys))]
    batch = native.build_batch(values, keys=keys, headers=headers, timestamp=TS0)
    assert batch == pure.build_batch(values, keys=keys, headers=headers, timestamp=TS0)
    h = native.check_batch(batch)
    section = memoryview(batch)[61 : h.size]
    want = _tuples(pure.decode_records(section, h.records_count, 0, TS0))
    assert _tuples(native.decode_records(section, h.records_count, 0, TS0)) == want
    assert _tuples(native.RecordIterator(batch)) == want
    cols = native.decode_columns(batch)
    assert list(cols.offsets) == [w[0] for w in want]
    assert list(cols.timestamps) == [w[1] for w in want]
    assert [bytes(cols.key(i)) for i in range(len(cols))] == [w[2] for w in want]
    assert cols.values() == [w[3] for w in want]
    msgs = native.decode_messages(batch, 0, "t", 0)
    assert [(m.offset(), m.key(), m.value(), m.headers() or []) for m in msgs] == [
        (w[0], w[2], w[3], w[4]) for w in want
    ]


def test_offset_deltas_across_one_two_and_three_bytes(native):
    n = 8300  # deltas 63/64 and 8191/8192 change the varint's width
    batch = native.build_batch([b"x"] * n, timestamp=TS0)
    native.check_batch(batch)
    cols = native.decode_columns(batch, 8000)
    assert list(cols.offsets) == list(range(8000, n))
    assert [m.offset() for m in native.decode_messages(batch, 60, "t", 0)] == list(range(60, n))


def test_overlong_two_byte_header_count_is_accepted(native, pure):
    # zero written as 80 00: legal (Kafka's reader accepts it); the record length counts both.
    section = _record(0, b"abc", header_count=b"\x80\x00") + _record(1, b"de")
    batch = _batch(section, 2)
    for impl in (native, pure):
        impl.check_batch(batch)
        assert [r.value for r in impl.decode_records(section, 2, 0, TS0)] == [b"abc", b"de"]
    assert native.decode_columns(batch).values() == [b"abc", b"de"]


@pytest.mark.parametrize("shorter", [1, 2])
def test_two_byte_varint_cut_by_the_record_length_is_corrupt(native, pure, shorter):
    # The length says the record ends inside (or just before) its 2-byte header count: the
    # fast path must not read past the record's end.
    section = _record(0, b"abc", header_count=b"\x80\x00", length_delta=-shorter) + b"\x00" * shorter
    batch = _batch(section, 1)
    for impl in (native, pure):
        with pytest.raises(CorruptRecordError):
            impl.check_batch(batch)
        with pytest.raises(CorruptRecordError):
            impl.decode_records(section, 1, 0, TS0)
    with pytest.raises(CorruptRecordError):
        native.decode_columns(batch)
    with pytest.raises(CorruptRecordError):
        native.decode_messages(batch, 0, "t", 0)


@pytest.mark.parametrize("tail", [b"\x80", b"\xc8", b"\xff\xff"])
def test_length_varint_cut_at_section_end_is_corrupt(native, pure, tail):
    # A second record whose length varint is cut by the end of the section.
    section = _record(0, b"v" * 100) + tail
    batch = _batch(section, 2)
    for impl in (native, pure):
        with pytest.raises(CorruptRecordError):
            impl.check_batch(batch)
        with pytest.raises(CorruptRecordError):
            impl.decode_records(section, 2, 0, TS0)
    with pytest.raises(CorruptRecordError):
        native.decode_columns(batch)


@pytest.mark.parametrize("cut", range(1, 12))
def test_two_byte_fields_cut_at_every_byte(native, pure, cut):
    # Record of 2-byte length, offset delta and value length, cut inside its first bytes.
    section = _record(100, b"v" * 100)[:cut]
    for impl in (native, pure):
        with pytest.raises(CorruptRecordError):
            impl.decode_records(section, 1, 0, TS0)


# ------------------------------------------------------------------------ column pool


def test_held_columns_and_views_are_never_reused(native):
    batch = native.build_batch([b"a" * 10] * 1000, timestamp=TS0)
    other = native.build_batch([b"bb"] * 1500, base_offset=7, timestamp=TS0 + 5)
    cols = native.decode_columns(batch)
    kept = cols.offsets
    view = np.frombuffer(cols.value_lengths, dtype=np.int64)
    mv = memoryview(cols.timestamps)
    del cols
    for _ in range(20):  # other decodes take whatever the pool holds
        again = native.decode_columns(other)
        assert list(again.offsets) == list(range(7, 1507))
        assert set(again.value_lengths) == {2}
    assert list(kept) == list(range(1000))
    assert view.tolist() == [10] * 1000
    assert mv.cast("B").cast("q").tolist() == [TS0] * 1000


def test_pooled_columns_grow_and_shrink(native):
    for n in (10, 5000, 3, 1200, 1, 9000, 40):
        batch = native.build_batch([b"%d" % i for i in range(n)], base_offset=100, timestamp=TS0)
        cols = native.decode_columns(batch)
        assert list(cols.offsets) == list(range(100, 100 + n))
        assert cols.values() == [b"%d" % i for i in range(n)]
        assert len(cols.key_lengths) == n and set(cols.key_lengths) <= {-1}
