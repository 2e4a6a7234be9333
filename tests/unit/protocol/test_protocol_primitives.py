"""Wire primitives at their boundaries.

Goal: every reader rejects truncated or hostile input with ProtocolDecodeError (never IndexError,
struct.error or a huge allocation), and every writer/reader pair round-trips its full range.
Method: for each primitive, a valid encoding is cut at every shorter length; hand-built hostile
inputs (array count 2**31-1 with 4 bytes left, over-long varints, bad UTF-8, nulls where not
nullable, out-of-order tags); hypothesis round trips for the integer and varint encodings.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from headwater.errors import HeadwaterError
from headwater.protocol import primitives as p
from headwater.protocol.errors import ProtocolDecodeError, ProtocolEncodeError


def _enc(write, value) -> bytes:
    out = bytearray()
    write(out, value)
    return bytes(out)


def _int32_array_reader(buf, pos):
    return p.read_array(buf, pos, p.read_int32, 4)


def _compact_str_array_reader(buf, pos):
    return p.read_compact_array(buf, pos, p.read_compact_string, 1, nullable=True)


CASES = [
    (p.read_int8, p.write_int8, -5),
    (p.read_int16, p.write_int16, -300),
    (p.read_int32, p.write_int32, -70000),
    (p.read_int64, p.write_int64, -(1 << 40)),
    (p.read_uint16, p.write_uint16, 65535),
    (p.read_uint32, p.write_uint32, (1 << 32) - 1),
    (p.read_float64, p.write_float64, 1.5),
    (p.read_bool, p.write_bool, True),
    (p.read_uuid, p.write_uuid, bytes(range(16))),
    (p.read_unsigned_varint, p.write_unsigned_varint, 300000),
    (p.read_varint, p.write_varint, -(1 << 31)),
    (p.read_varlong, p.write_varlong, -(1 << 63)),
    (p.read_string, p.write_string, "héllo"),
    (p.read_nullable_string, p.write_nullable_string, "abc"),
    (p.read_compact_string, p.write_compact_string, "héllo"),
    (p.read_compact_nullable_string, p.write_compact_nullable_string, "x" * 200),
    (p.read_bytes, p.write_bytes, b"\x00\x01\x02"),
    (p.read_nullable_bytes, p.write_nullable_bytes, b"abc"),
    (p.read_compact_bytes, p.write_compact_bytes, b"abc"),
    (p.read_compact_nullable_bytes, p.write_compact_nullable_bytes, b"q" * 130),
    (p.read_records, p.write_records, b"batch"),
    (p.read_compact_records, p.write_compact_records, b"batch"),
    (_int32_array_reader, lambda o, v: p.write_array(o, v, p.write_int32), [1, 2, 3]),
    (
        _compact_str_array_reader,
        lambda o, v: p.write_compact_array(o, v, p.write_compact_string, True),
        ["a", "bc"],
    ),
]
IDS = [getattr(c[0], "__name__", str(i)) for i, c in enumerate(CASES)]


@pytest.mark.parametrize("read,write,value", CASES, ids=IDS)
def test_round_trip_and_every_truncation(read, write, value) -> None:
    data = _enc(write, value)
    for buf in (data, memoryview(data), bytearray(data)):
        got, pos = read(buf, 0)
        assert pos == len(data)
        assert (bytes(got) if isinstance(got, memoryview) else got) == value
    for cut in range(len(data)):
        with pytest.raises(ProtocolDecodeError):
            read(memoryview(data[:cut]), 0)
    # Reading at an offset works the same way.
    got, pos = read(b"\xee\xee" + data, 2)
    assert pos == len(data) + 2


def test_decode_error_is_a_headwater_value_error() -> None:
    assert issubclass(ProtocolDecodeError, HeadwaterError)
    assert issubclass(ProtocolDecodeError, ValueError)


def test_records_are_zero_copy_views() -> None:
    frame = memoryview(b"\x00\x00\x00\x03abc")
    view, _ = p.read_records(frame, 0)
    assert isinstance(view, memoryview) and view.obj is frame.obj


@pytest.mark.parametrize("compact", [False, True])
def test_huge_array_count_fails_before_allocating(compact: bool) -> None:
    head = _enc(p.write_unsigned_varint, 2**32 - 1) if compact else b"\x7f\xff\xff\xff"
    buf = head + b"\x00\x00\x00\x01"
    read = p.read_compact_array if compact else p.read_array
    calls = []

    def elem(b, pos):
        calls.append(pos)
        return p.read_int8(b, pos)

    with pytest.raises(ProtocolDecodeError, match="cannot fit"):
        read(buf, 0, elem, 1)
    assert calls == []


def test_array_count_over_cap_is_rejected_even_with_bytes() -> None:
    n = p.MAX_ARRAY_COUNT + 1
    buf = n.to_bytes(4, "big") + bytes(n)
    with pytest.raises(ProtocolDecodeError):
        p.read_array(buf, 0, p.read_int8, 1)


def test_nulls_where_not_nullable() -> None:
    for read, data in [
        (p.read_string, b"\xff\xff"),
        (p.read_compact_string, b"\x00"),
        (p.read_bytes, b"\xff\xff\xff\xff"),
        (p.read_compact_bytes, b"\x00"),
        (lambda b, pos: p.read_array(b, pos, p.read_int8), b"\xff\xff\xff\xff"),
        (lambda b, pos: p.read_compact_array(b, pos, p.read_int8), b"\x00"),
        (p.read_nullable_string, b"\xff\xfe"),  # -2 is not null, it is garbage
        (p.read_nullable_bytes, b"\xff\xff\xff\xfe"),
    ]:
        with pytest.raises(ProtocolDecodeError):
            read(data, 0)


def test_negative_and_huge_lengths() -> None:
    with pytest.raises(ProtocolDecodeError):
        p.read_bytes(b"\x7f\xff\xff\xff" + b"x" * 8, 0)
    with pytest.raises(ProtocolDecodeError):
        p.read_compact_bytes(_enc(p.write_unsigned_varint, 2**32 - 1) + b"x", 0)
    with pytest.raises(ProtocolDecodeError):
        p.read_string(b"\x80\x00abc", 0)


def test_overlong_varints() -> None:
    with pytest.raises(ProtocolDecodeError):
        p.read_unsigned_varint(b"\xff" * 5 + b"\x01", 0)
    with pytest.raises(ProtocolDecodeError):
        p.read_unsigned_varint(b"\xff\xff\xff\xff\x7f", 0)  # 35 bits
    with pytest.raises(ProtocolDecodeError):
        p.read_varint(b"\xff" * 6, 0)
    with pytest.raises(ProtocolDecodeError):
        p.read_varlong(b"\xff" * 11, 0)


def test_invalid_utf8() -> None:
    with pytest.raises(ProtocolDecodeError, match="UTF-8"):
        p.read_string(b"\x00\x02\xc3\x28", 0)
    with pytest.raises(ProtocolDecodeError, match="UTF-8"):
        p.read_compact_string(b"\x02\xff", 0)


def test_tagged_fields_known_unknown_and_order() -> None:
    tags = _enc(p.write_tagged_fields, {0: b"\x00\x07", 5: b"zz", 9: b""})
    found, pos = p.read_tagged_fields(tags, 0, {0: p.read_int16})
    assert found == {0: 7} and pos == len(tags)
    found, _ = p.read_tagged_fields(tags, 0, keep_unknown=True)
    assert found == {0: b"\x00\x07", 5: b"zz", 9: b""}
    assert p.skip_tagged_fields(tags, 0) == len(tags)
    out_of_order = bytes([2, 5, 0, 1, 0])
    with pytest.raises(ProtocolDecodeError, match="order"):
        p.read_tagged_fields(out_of_order, 0)
    # A known tag whose reader wants more bytes than declared cannot read the next field.
    short = bytes([1, 0, 1, 0x00, 0x07])
    with pytest.raises(ProtocolDecodeError):
        p.read_tagged_fields(short, 0, {0: p.read_int16})
    # Declared size larger than what the reader consumed.
    long = bytes([1, 0, 3, 0, 7, 0])
    with pytest.raises(ProtocolDecodeError, match="declared"):
        p.read_tagged_fields(long, 0, {0: p.read_int16})
    with pytest.raises(ProtocolDecodeError):
        p.read_tagged_fields(bytes([0x7F]), 0)  # 127 tags in 0 bytes


def test_writers_reject_unencodable_values() -> None:
    for write, value in [
        (p.write_int8, 128),
        (p.write_int16, -(1 << 15) - 1),
        (p.write_int32, 1 << 31),
        (p.write_uint16, -1),
        (p.write_unsigned_varint, -1),
        (p.write_unsigned_varint, 1 << 32),
        (p.write_varint, 1 << 31),
        (p.write_string, None),
        (p.write_string, "x" * 40000),
        (p.write_compact_string, 5),
        (p.write_bytes, "text"),
        (p.write_uuid, b"short"),
        (lambda o, v: p.write_array(o, v, p.write_int8), None),
    ]:
        with pytest.raises(ProtocolEncodeError):
            write(bytearray(), value)


@settings(max_examples=200, deadline=None)
@given(st.integers(-(1 << 31), (1 << 31) - 1), st.integers(-(1 << 63), (1 << 63) - 1),
       st.integers(0, (1 << 32) - 1))  # fmt: skip
def test_varints_round_trip(v32: int, v64: int, u32: int) -> None:
    for read, write, v in [
        (p.read_varint, p.write_varint, v32),
        (p.read_varlong, p.write_varlong, v64),
        (p.read_unsigned_varint, p.write_unsigned_varint, u32),
    ]:
        data = _enc(write, v)
        assert read(data, 0) == (v, len(data))


def test_zigzag_known_vectors() -> None:
    assert _enc(p.write_varint, 0) == b"\x00"
    assert _enc(p.write_varint, -1) == b"\x01"
    assert _enc(p.write_varint, 1) == b"\x02"
    assert _enc(p.write_varint, 63) == b"\x7e"
    assert _enc(p.write_varint, -64) == b"\x7f"
    assert _enc(p.write_varint, 64) == b"\x80\x01"
    assert _enc(p.write_unsigned_varint, 300) == b"\xac\x02"
