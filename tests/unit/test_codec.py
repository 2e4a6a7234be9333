"""Codec surface (CRC-32C, varints, RecordBatch v2) against the spec's golden vectors.

Goal: both implementations of the codec contract in ``_native/_native.pyi`` (the C core via
Cython and the pure-Python twin) produce and accept exactly the bytes of kafka-spec.md: the
CRC-32C vectors of f.4, the varint vectors of a.3 and the two batches of a.6; and reject every
malformed input with the documented exception class.

Method: each test takes the ``impl`` fixture (tests/conftest.py) and so runs once per
implementation. Error paths start from the 89-byte a.6 data batch, change one field, and
(where the test is about something past the CRC) re-stamp the CRC with the PyPI ``crc32c``
package, an independent implementation, so the check under test is the one that fires.
"""

from __future__ import annotations

import struct
import time

import crc32c as pypi_crc32c
import pytest

from headwater.errors import CorruptRecordError, InvalidCrcError, TruncatedError

# ------------------------------------------------------------------------- golden vectors


def _hex(text: str) -> bytes:
    return bytes.fromhex("".join(text.split()))


# kafka-spec.md a.6: data batch, 2 records, built by kafka-python 2.3.2.
DATA_BATCH = _hex(
    """
    0000000000000000 0000004d 00000000 02 3f06057b 0000 00000001
    0000018bcfe56800 0000018bcfe56805 ffffffffffffffff ffff ffffffff 00000002
    24 00 00 00 06 6b6579 0a 76616c7565 02 02 68 02 76
    10 00 0a 02 01 04 7632 00
    """
)
# kafka-spec.md a.6: COMMIT marker.
COMMIT_BATCH = _hex(
    """
    000000000000000a 00000042 00000000 02 a7d9b82a 0030 00000000
    0000018bcfe56800 0000018bcfe56800 00000000000003e8 0002 ffffffff 00000001
    20 00 00 00 08 00000001 0c 000000000005 00
    """
)
TS0 = 1700000000000

# Byte positions inside DATA_BATCH.
POS_LENGTH = 8
POS_MAGIC = 16
POS_CRC = 17
POS_ATTRIBUTES = 21
POS_LAST_OFFSET_DELTA = 23
POS_RECORDS_COUNT = 57
POS_RECORD0_LENGTH = 61
POS_RECORD0_KEY_LENGTH = 65
POS_RECORD0_HEADER_COUNT = 75
POS_RECORD1_OFFSET_DELTA = 83

CRC_VECTORS = [
    (b"123456789", 0xE3069283),
    (b"Some String", 608512271),
    (b"", 0),
    (b"a", 0xC1D04330),
    (b"\x00" * 32, 0x8A9136AA),
    (b"\xff" * 32, 0x62A8AB43),
    (bytes(range(32)), 0x46DD794E),
    (DATA_BATCH[21:], 0x3F06057B),
    (COMMIT_BATCH[21:], 0xA7D9B82A),
]

VARINT_VECTORS = [
    (0, "00"),
    (-1, "01"),
    (1, "02"),
    (-2, "03"),
    (63, "7e"),
    (-64, "7f"),
    (64, "8001"),
    (300, "d804"),
    (-300, "d704"),
    (2147483647, "feffffff0f"),
    (-2147483648, "ffffffff0f"),
    # int64 boundaries: the 10-byte encodings.
    ((1 << 63) - 1, "feffffffffffffffff01"),
    (-(1 << 63), "ffffffffffffffffff01"),
    ((1 << 62), "80808080808080808001"),
]


def _restamp(batch: bytes | bytearray) -> bytes:
    """Recompute the CRC field with the PyPI crc32c package (independent of both impls)."""
    out = bytearray(batch)
    struct.pack_into(">I", out, POS_CRC, pypi_crc32c.crc32c(bytes(out[POS_ATTRIBUTES:])))
    return bytes(out)


def _patched(fmt: str, pos: int, value: int, batch: bytes = DATA_BATCH, restamp: bool = True) -> bytes:
    out = bytearray(batch)
    struct.pack_into(fmt, out, pos, value)
    return _restamp(out) if restamp else bytes(out)


def _records(impl, batch: bytes):
    header = impl.check_batch(batch)
    return impl.decode_records(
        memoryview(batch)[61 : header.size], header.records_count, header.base_offset,
        header.base_timestamp,
    )


def _as_tuple(record) -> tuple:
    return (record.offset, record.timestamp, record.key, record.value, list(record.headers))


# ----------------------------------------------------------------------------- constants


def test_constants(impl):
    assert impl.BATCH_HEADER_SIZE == 61
    assert impl.LOG_OVERHEAD == 12
    assert impl.MAGIC == 2
    statuses = [impl.HW_OK, impl.HW_ERR_TRUNCATED, impl.HW_ERR_CORRUPT, impl.HW_ERR_CRC,
                impl.HW_ERR_OVERFLOW, impl.HW_ERR_FULL, impl.HW_ERR_IO]
    assert statuses == list(range(7))


# -------------------------------------------------------------------------------- crc32c


@pytest.mark.parametrize(("data", "expected"), CRC_VECTORS, ids=lambda v: repr(v)[:20])
def test_crc32c_vector(impl, data, expected):
    assert impl.crc32c(data) == expected
    assert impl.crc32c(bytearray(data)) == expected
    assert impl.crc32c(memoryview(data)) == expected


@pytest.mark.parametrize("split", [0, 1, 5, 31, 32, 33, 100, 1000])
def test_crc32c_continues_from_value(impl, split):
    data = bytes(range(256)) * 5
    head, tail = data[:split], data[split:]
    assert impl.crc32c(tail, impl.crc32c(head)) == impl.crc32c(data)
    assert impl.crc32c(data) == pypi_crc32c.crc32c(data)
    assert impl.crc32c(tail, 0x12345678) == pypi_crc32c.crc32c(tail, 0x12345678)


def test_crc32c_impl_name(impl):
    name = impl.crc32c_impl()
    assert name in {"sse4.2", "armv8", "table", "python"}
    assert (name == "python") == (impl.__name__ == "headwater._pure")


def test_crc32c_large_buffer(impl):
    data = bytes(range(251)) * 4099  # odd length, not a multiple of 8 or 16
    assert impl.crc32c(data) == pypi_crc32c.crc32c(data)


# -------------------------------------------------------------------------------- varint


@pytest.mark.parametrize(("value", "encoded"), VARINT_VECTORS, ids=lambda v: str(v))
def test_varint_vector(impl, value, encoded):
    raw = bytes.fromhex(encoded)
    assert impl.encode_varint(value) == raw
    assert impl.decode_varint(raw) == (value, len(raw))
    # At a position inside a larger buffer, with trailing bytes left alone.
    assert impl.decode_varint(b"\xaa\xbb" + raw + b"\xff", 2) == (value, 2 + len(raw))
    assert impl.decode_varint(memoryview(bytearray(raw))) == (value, len(raw))


@pytest.mark.parametrize(("value", "encoded"), VARINT_VECTORS, ids=lambda v: str(v))
def test_varint_truncated_at_every_byte(impl, value, encoded):
    raw = bytes.fromhex(encoded)
    for cut in range(len(raw)):
        with pytest.raises(TruncatedError):
            impl.decode_varint(raw[:cut])


def test_varint_empty_and_past_end(impl):
    with pytest.raises(TruncatedError):
        impl.decode_varint(b"")
    with pytest.raises(TruncatedError):
        impl.decode_varint(b"\x02", 1)


def test_varint_eleven_bytes_is_corrupt(impl):
    overlong = b"\xff" * 10 + b"\x01"
    with pytest.raises(CorruptRecordError) as info:
        impl.decode_varint(overlong)
    assert not isinstance(info.value, TruncatedError)


def test_varint_ten_continuation_bytes_is_corrupt_even_at_end(impl):
    # The 10th byte still says "more follows": no valid varint, whatever comes next.
    with pytest.raises(CorruptRecordError) as info:
        impl.decode_varint(b"\x80" * 10)
    assert not isinstance(info.value, TruncatedError)


def test_varint_nine_continuation_bytes_then_end_is_truncated(impl):
    with pytest.raises(TruncatedError):
        impl.decode_varint(b"\x80" * 9)


def test_varint_overlong_zero_is_accepted(impl):
    assert impl.decode_varint(b"\x80\x00") == (0, 2)
    assert impl.decode_varint(b"\x80" * 9 + b"\x00") == (0, 10)


def test_varint_round_trip_boundaries(impl):
    for bits in range(64):
        for value in (1 << bits) - 1, -(1 << bits), (1 << bits) - 2, -(1 << bits) + 1:
            if -(1 << 63) <= value < (1 << 63):
                raw = impl.encode_varint(value)
                assert len(raw) <= 10
                assert impl.decode_varint(raw) == (value, len(raw))


# ----------------------------------------------------------------------- building batches


def test_build_batch_reproduces_spec_data_batch(impl):
    batch = impl.build_batch(
        [b"value", b"v2"],
        keys=[b"key", None],
        headers=[[("h", b"v")], None],
        timestamps=[TS0, TS0 + 5],
        base_offset=0,
        partition_leader_epoch=0,
    )
    assert batch == DATA_BATCH


def test_build_batch_accepts_buffer_types(impl):
    batch = impl.build_batch(
        [bytearray(b"value"), memoryview(b"v2")],
        keys=[memoryview(b"key"), None],
        headers=[[("h", bytearray(b"v"))], None],
        timestamps=[TS0, TS0 + 5],
        partition_leader_epoch=0,
    )
    assert batch == DATA_BATCH


def test_build_control_batch_reproduces_spec_commit_marker(impl):
    batch = impl.build_control_batch(
        1,
        producer_id=1000,
        producer_epoch=2,
        coordinator_epoch=5,
        timestamp=TS0,
        base_offset=10,
        partition_leader_epoch=0,
    )
    assert batch == COMMIT_BATCH


def test_build_control_batch_abort(impl):
    batch = impl.build_control_batch(
        0, producer_id=7, producer_epoch=0, coordinator_epoch=3, timestamp=TS0
    )
    header = impl.check_batch(batch)
    assert header.attributes == 0x30 and header.is_control and header.is_transactional
    assert header.partition_leader_epoch == -1
    (record,) = _records(impl, batch)
    assert record.key == b"\x00\x00\x00\x00"
    assert record.value == b"\x00\x00\x00\x00\x00\x03"


def test_build_batch_single_timestamp_for_all(impl):
    batch = impl.build_batch([b"a", b"b", b"c"], timestamp=TS0)
    header = impl.check_batch(batch)
    assert header.base_timestamp == header.max_timestamp == TS0
    assert [r.timestamp for r in _records(impl, batch)] == [TS0] * 3
    assert header.partition_leader_epoch == -1
    assert (header.producer_id, header.producer_epoch, header.base_sequence) == (-1, -1, -1)


def test_build_batch_timestamp_minus_one_is_now(impl):
    before = int(time.time() * 1000)
    batch = impl.build_batch([b"a", b"b"])
    after = int(time.time() * 1000)
    header = impl.check_batch(batch)
    assert before - 1 <= header.base_timestamp <= after + 1
    assert header.max_timestamp == header.base_timestamp


def test_build_batch_max_timestamp_is_largest_not_last(impl):
    batch = impl.build_batch([b"a", b"b", b"c"], timestamps=[TS0, TS0 + 100, TS0 - 50])
    header = impl.check_batch(batch)
    assert header.base_timestamp == TS0
    assert header.max_timestamp == TS0 + 100
    assert [r.timestamp for r in _records(impl, batch)] == [TS0, TS0 + 100, TS0 - 50]


def test_build_batch_extreme_timestamps_round_trip(impl):
    # Deltas wrap like Java's long arithmetic, and decoding wraps back.
    timestamps = [-(1 << 63), (1 << 63) - 1, 0]
    batch = impl.build_batch([b"a", b"b", b"c"], timestamps=timestamps)
    assert [r.timestamp for r in _records(impl, batch)] == timestamps


def test_build_batch_null_header_value_is_length_minus_one(impl):
    batch = impl.build_batch([b"v"], headers=[[("k", None)]], timestamp=TS0)
    # record: len, attr, ts, off, key -1, value len 1, "v", 1 header, key len 1, "k", -1
    assert batch[61:].hex() == "14" "00" "00" "00" "01" "02" "76" "02" "02" "6b" "01"
    (record,) = _records(impl, batch)
    assert record.headers == [("k", None)]


def test_build_batch_header_key_is_utf8(impl):
    batch = impl.build_batch([None], headers=[[("é✓", b"")]], timestamp=TS0)
    assert "é✓".encode() in batch
    (record,) = _records(impl, batch)
    assert record.headers == [("é✓", b"")] and record.value is None


def test_build_batch_idempotent_fields(impl):
    batch = impl.build_batch(
        [b"x"] * 3, timestamp=TS0, base_offset=42, producer_id=9000, producer_epoch=3,
        base_sequence=17, partition_leader_epoch=5, attributes=0x10,
    )
    header = impl.check_batch(batch)
    assert (header.base_offset, header.producer_id, header.producer_epoch) == (42, 9000, 3)
    assert (header.base_sequence, header.partition_leader_epoch) == (17, 5)
    assert header.is_transactional and not header.is_control
    assert header.last_offset_delta == 2 and header.last_offset == 44
    assert [r.offset for r in _records(impl, batch)] == [42, 43, 44]


def test_build_batch_large_values(impl):
    values = [bytes([i]) * (1000 * i) for i in range(1, 40)]
    batch = impl.build_batch(values, timestamp=TS0)
    assert [r.value for r in _records(impl, batch)] == values


# ----------------------------------------------------------------------- reading batches


def test_parse_data_batch_fields(impl):
    header = impl.parse_batch_header(DATA_BATCH)
    assert header.base_offset == 0
    assert header.batch_length == 77
    assert header.partition_leader_epoch == 0
    assert header.magic == 2
    assert header.crc == 0x3F06057B
    assert header.attributes == 0
    assert header.last_offset_delta == 1
    assert header.base_timestamp == TS0
    assert header.max_timestamp == TS0 + 5
    assert header.producer_id == -1
    assert header.producer_epoch == -1
    assert header.base_sequence == -1
    assert header.records_count == 2
    assert header.size == 89
    assert header.last_offset == 1
    assert header.compression == 0
    assert header.timestamp_type == 0
    assert header.is_transactional is False
    assert header.is_control is False


def test_parse_commit_batch_fields(impl):
    header = impl.check_batch(COMMIT_BATCH)
    assert (header.base_offset, header.batch_length, header.size) == (10, 66, 78)
    assert header.crc == 0xA7D9B82A
    assert header.attributes == 0x30
    assert header.is_transactional is True and header.is_control is True
    assert (header.producer_id, header.producer_epoch, header.base_sequence) == (1000, 2, -1)
    assert (header.base_timestamp, header.max_timestamp) == (TS0, TS0)
    assert (header.records_count, header.last_offset_delta, header.last_offset) == (1, 0, 10)
    (record,) = _records(impl, COMMIT_BATCH)
    assert record.offset == 10 and record.timestamp == TS0
    assert record.key == b"\x00\x00\x00\x01"
    assert record.value == b"\x00\x00\x00\x00\x00\x05"
    assert list(record.headers) == []


def test_check_batch_returns_same_header_as_parse(impl):
    a = impl.parse_batch_header(DATA_BATCH)
    b = impl.check_batch(DATA_BATCH)
    names = ["base_offset", "batch_length", "crc", "records_count", "max_timestamp"]
    assert [getattr(a, n) for n in names] == [getattr(b, n) for n in names]


def test_decode_data_batch_records(impl):
    records = _records(impl, DATA_BATCH)
    assert [_as_tuple(r) for r in records] == [
        (0, TS0, b"key", b"value", [("h", b"v")]),
        (1, TS0 + 5, None, b"v2", []),
    ]
    first = records[0]
    assert isinstance(first.key, bytes) and isinstance(first.headers[0][0], str)
    assert "value" in repr(first)


def test_decode_records_base_offset_and_log_append_time(impl):
    section = DATA_BATCH[61:]
    records = impl.decode_records(section, 2, 1000, TS0, TS0 + 777)
    assert [(r.offset, r.timestamp) for r in records] == [(1000, TS0 + 777), (1001, TS0 + 777)]
    records = impl.decode_records(bytearray(section), 2, 5, 0)
    assert [(r.offset, r.timestamp) for r in records] == [(5, 0), (6, 5)]


def test_batch_at_position_inside_larger_buffer(impl):
    buf = b"\x00" * 7 + DATA_BATCH + COMMIT_BATCH + b"\xff" * 3
    first = impl.check_batch(buf, 7)
    assert first.size == 89
    second = impl.check_batch(memoryview(buf), 7 + 89)
    assert second.base_offset == 10
    assert impl.parse_batch_header(bytearray(buf), 7 + 89).is_control


# ---------------------------------------------------------------------------- error paths


def test_wrong_magic_is_corrupt(impl):
    for magic in (0, 1, 3, 0xFF):
        bad = _patched(">b" if magic < 128 else ">B", POS_MAGIC, magic, restamp=False)
        for fn in (impl.parse_batch_header, impl.check_batch):
            with pytest.raises(CorruptRecordError) as info:
                fn(bad)
            assert type(info.value) is CorruptRecordError


def test_bad_crc_field(impl):
    bad = _patched(">I", POS_CRC, 0x3F06057C, restamp=False)
    assert impl.parse_batch_header(bad).crc == 0x3F06057C  # parse does not check the CRC
    with pytest.raises(InvalidCrcError):
        impl.check_batch(bad)


@pytest.mark.parametrize("pos", [21, 22, 30, 56, 60, 61, 70, 88])
def test_flipped_bit_in_crc_range(impl, pos):
    bad = bytearray(DATA_BATCH)
    bad[pos] ^= 0x10
    with pytest.raises(InvalidCrcError):
        impl.check_batch(bytes(bad))


@pytest.mark.parametrize("pos", [0, 7, 12, 15])
def test_fields_outside_crc_range_are_not_checked(impl, pos):
    # base_offset and partition_leader_epoch are stamped by the broker without a new CRC.
    changed = bytearray(DATA_BATCH)
    changed[pos] ^= 0x01
    impl.check_batch(bytes(changed))


@pytest.mark.parametrize("length", [-1, 0, 1, 16, 48, -(1 << 31)])
def test_batch_length_too_small_is_corrupt(impl, length):
    bad = _patched(">i", POS_LENGTH, length, restamp=False)
    for fn in (impl.parse_batch_header, impl.check_batch):
        with pytest.raises(CorruptRecordError) as info:
            fn(bad)
        assert not isinstance(info.value, TruncatedError)


@pytest.mark.parametrize("length", [78, 100, (1 << 31) - 1])
def test_batch_length_past_buffer_is_truncated(impl, length):
    bad = _patched(">i", POS_LENGTH, length, restamp=False)
    for fn in (impl.parse_batch_header, impl.check_batch):
        with pytest.raises(TruncatedError):
            fn(bad)


def test_batch_length_49_header_only(impl):
    # The smallest legal length: a header with no records, records_count 0.
    empty = bytearray(DATA_BATCH[:61])
    struct.pack_into(">i", empty, POS_LENGTH, 49)
    struct.pack_into(">i", empty, POS_RECORDS_COUNT, 0)
    header = impl.check_batch(_restamp(empty))
    assert header.size == 61 and header.records_count == 0


@pytest.mark.parametrize("cut", range(len(DATA_BATCH)))
def test_truncated_at_every_byte(impl, cut):
    partial = DATA_BATCH[:cut]
    with pytest.raises(TruncatedError):
        impl.parse_batch_header(partial)
    with pytest.raises(TruncatedError):
        impl.check_batch(partial)
    with pytest.raises(TruncatedError):
        impl.check_batch(b"\x00" * 3 + partial, 3)


def test_trailing_bytes_after_batch_are_ignored(impl):
    assert impl.check_batch(DATA_BATCH + b"\x00" * 5).size == 89


@pytest.mark.parametrize("delta", [-2, -1, 1, 2])
def test_record_length_mismatch_is_corrupt(impl, delta):
    bad = _patched(">b", POS_RECORD0_LENGTH, 0x24 + 2 * delta)  # zig-zag: 2 per unit
    with pytest.raises(CorruptRecordError) as info:
        impl.check_batch(bad)
    assert type(info.value) is CorruptRecordError
    with pytest.raises(CorruptRecordError):
        impl.decode_records(bad[61:], 2, 0, TS0)


def test_record_length_past_section_is_corrupt_not_truncated(impl):
    bad = _patched(">B", POS_RECORD0_LENGTH, 0x7E)  # 63 > 28 bytes left
    with pytest.raises(CorruptRecordError) as info:
        impl.check_batch(bad)
    assert type(info.value) is CorruptRecordError
    with pytest.raises(CorruptRecordError) as info:
        impl.decode_records(bad[61:], 2, 0, TS0)
    assert not isinstance(info.value, TruncatedError)


def test_negative_header_count_is_corrupt(impl):
    bad = _patched(">B", POS_RECORD0_HEADER_COUNT, 0x01)  # zig-zag -1
    with pytest.raises(CorruptRecordError):
        impl.check_batch(bad)
    with pytest.raises(CorruptRecordError):
        impl.decode_records(bad[61:], 2, 0, TS0)


def test_negative_header_key_length_is_corrupt(impl):
    bad = _patched(">B", POS_RECORD0_HEADER_COUNT + 1, 0x01)  # header key length -1
    with pytest.raises(CorruptRecordError):
        impl.check_batch(bad)
    with pytest.raises(CorruptRecordError):
        impl.decode_records(bad[61:], 2, 0, TS0)


def test_key_length_below_minus_one_is_corrupt(impl):
    bad = _patched(">B", POS_RECORD0_KEY_LENGTH, 0x03)  # zig-zag -2
    with pytest.raises(CorruptRecordError):
        impl.check_batch(bad)
    with pytest.raises(CorruptRecordError):
        impl.decode_records(bad[61:], 2, 0, TS0)


def test_header_key_not_utf8_decodes_with_replacement(impl):
    # Kafka decodes header keys with Java's lenient UTF-8 (U+FFFD for malformed bytes).
    batch = bytearray(impl.build_batch([b"v"], headers=[[("h", b"v")]], timestamp=TS0))
    batch[batch.index(b"h", 61)] = 0xFF
    batch = _restamp(batch)
    (record,) = _records(impl, batch)
    assert record.headers == [("\ufffd", b"v")]


def test_position_outside_buffer_is_index_error(impl):
    for fn in (impl.decode_varint, impl.parse_batch_header, impl.check_batch):
        with pytest.raises(IndexError):
            fn(DATA_BATCH, len(DATA_BATCH) + 1)
        with pytest.raises(IndexError):
            fn(DATA_BATCH, -1)


@pytest.mark.parametrize("count", [3, 4, 1000])
def test_records_count_above_last_offset_delta_is_corrupt(impl, count):
    bad = _patched(">i", POS_RECORDS_COUNT, count)
    with pytest.raises(CorruptRecordError) as info:
        impl.check_batch(bad)
    assert type(info.value) is CorruptRecordError


def test_last_offset_delta_below_records_count_is_corrupt(impl):
    bad = _patched(">i", POS_LAST_OFFSET_DELTA, 0)
    with pytest.raises(CorruptRecordError):
        impl.check_batch(bad)


def test_negative_records_count_is_corrupt(impl):
    bad = _patched(">i", POS_RECORDS_COUNT, -1)
    with pytest.raises(CorruptRecordError):
        impl.check_batch(bad)
    with pytest.raises(CorruptRecordError):
        impl.decode_records(DATA_BATCH[61:], -1, 0, TS0)


def test_records_count_below_records_present_is_corrupt(impl):
    # Compaction may leave last_offset_delta > records_count - 1, but the section must
    # still hold exactly records_count records: leftover bytes are corrupt.
    bad = _patched(">i", POS_RECORDS_COUNT, 1)
    with pytest.raises(CorruptRecordError):
        impl.check_batch(bad)
    with pytest.raises(CorruptRecordError):
        impl.decode_records(DATA_BATCH[61:], 1, 0, TS0)


def test_gap_in_offsets_after_compaction_is_accepted(impl):
    # Records 0 and 2 left of 3: last_offset_delta 2, records_count 2, deltas 0 and 2.
    gapped = bytearray(_patched(">i", POS_LAST_OFFSET_DELTA, 2))
    gapped[POS_RECORD1_OFFSET_DELTA] = 0x04
    gapped = _restamp(gapped)
    impl.check_batch(gapped)
    assert [r.offset for r in _records(impl, gapped)] == [0, 2]


def test_offset_delta_past_last_offset_delta_is_corrupt(impl):
    bad = bytearray(DATA_BATCH)
    bad[POS_RECORD1_OFFSET_DELTA] = 0x04  # delta 2 > last_offset_delta 1
    with pytest.raises(CorruptRecordError):
        impl.check_batch(_restamp(bad))


def test_unknown_codec_or_attribute_bits_are_corrupt(impl):
    for attributes in (0x05, 0x07, 0x80, 0x100, -1):
        bad = _patched(">h", POS_ATTRIBUTES, attributes)
        with pytest.raises(CorruptRecordError):
            impl.check_batch(bad)


def test_decode_records_more_records_than_present(impl):
    with pytest.raises(CorruptRecordError):
        impl.decode_records(DATA_BATCH[61:], 3, 0, TS0)
    with pytest.raises(CorruptRecordError):
        impl.decode_records(b"", 1, 0, TS0)
    assert list(impl.decode_records(b"", 0, 0, TS0)) == []


@pytest.mark.parametrize("cut", range(1, len(DATA_BATCH) - 61))
def test_decode_records_cut_section_is_corrupt(impl, cut):
    with pytest.raises(CorruptRecordError):
        impl.decode_records(DATA_BATCH[61 : 61 + cut], 2, 0, TS0)
