"""Property tests for the codec surface: round trips, and native ≡ pure on any bytes.

Goal: (1) for any records the format can hold, build_batch → check_batch → decode_records
gives back exactly those records, uncompressed and through every compression codec; (2) the
C core and the pure-Python twin are interchangeable: the same batch bytes from build_batch,
and on random, bit-flipped, truncated or re-CRC'd mutated input the same result or the same
exception class from check_batch, parse_batch_header, decode_records and decode_varint.

Method: hypothesis generates records (keys/values including None and empty, headers with
UTF-8 keys and None values, timestamps on both sides of the base) and byte mutations. The
"re-stamped" mutations recompute the CRC with the PyPI crc32c package after editing, so the
record walk behind the CRC check is exercised rather than stopped at the CRC. Examples are
kept at or under 200 per test so the suite stays fast; failures print the shrunk input.
"""

from __future__ import annotations

import importlib
import struct

import crc32c as pypi_crc32c
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from headwater import compression

SETTINGS = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
TS0 = 1700000000000

# --------------------------------------------------------------------------- strategies

maybe_bytes = st.none() | st.binary(max_size=64)
header_lists = st.lists(st.tuples(st.text(max_size=8), st.none() | st.binary(max_size=16)),
                        max_size=3)
record_rows = st.lists(
    st.tuples(
        st.integers(min_value=-(1 << 40), max_value=1 << 40).map(lambda d: TS0 + d),
        maybe_bytes,
        maybe_bytes,
        header_lists,
    ),
    min_size=1,
    max_size=12,
)
batch_fields = st.fixed_dictionaries(
    {
        "base_offset": st.integers(min_value=0, max_value=(1 << 62)),
        "producer_id": st.integers(min_value=-1, max_value=(1 << 62)),
        "producer_epoch": st.integers(min_value=-1, max_value=(1 << 15) - 1),
        "base_sequence": st.integers(min_value=-1, max_value=(1 << 31) - 1),
        "partition_leader_epoch": st.integers(min_value=-1, max_value=(1 << 31) - 1),
        "attributes": st.sampled_from([0, 0x10]),
    }
)


def _build(impl, rows, **fields) -> bytes:
    return impl.build_batch(
        [r[2] for r in rows],
        keys=[r[1] for r in rows],
        headers=[r[3] for r in rows],
        timestamps=[r[0] for r in rows],
        **fields,
    )


def _record_tuple(record) -> tuple:
    return (record.offset, record.timestamp, record.key, record.value,
            [tuple(h) for h in record.headers])


_HEADER_FIELDS = (
    "base_offset", "batch_length", "partition_leader_epoch", "magic", "crc", "attributes",
    "last_offset_delta", "base_timestamp", "max_timestamp", "producer_id", "producer_epoch",
    "base_sequence", "records_count", "size", "last_offset", "compression", "timestamp_type",
    "is_transactional", "is_control",
)


def _header_tuple(header) -> tuple:
    return tuple(getattr(header, name) for name in _HEADER_FIELDS)


def _outcome(fn, *args):
    """("ok", normalised result) or ("raised", exception class name)."""
    try:
        result = fn(*args)
    except Exception as exc:  # the class is the result being compared
        return ("raised", type(exc).__name__)
    if isinstance(result, list):
        return ("ok", [_record_tuple(r) for r in result])
    if isinstance(result, tuple):
        return ("ok", result)
    return ("ok", _header_tuple(result))


def _restamp(buf: bytearray) -> bytes:
    if len(buf) > 21:
        size = len(buf)
        if len(buf) >= 12:
            (length,) = struct.unpack_from(">i", buf, 8)
            if 21 <= 12 + length <= len(buf):
                size = 12 + length
        struct.pack_into(">I", buf, 17, pypi_crc32c.crc32c(bytes(buf[21:size])))
    return bytes(buf)


# -------------------------------------------------------------------------- round trips


@SETTINGS
@given(rows=record_rows, fields=batch_fields)
def test_build_check_decode_round_trip(impl, rows, fields):
    batch = _build(impl, rows, **fields)
    header = impl.check_batch(batch)
    assert header.size == len(batch)
    assert header.records_count == len(rows)
    assert header.last_offset_delta == len(rows) - 1
    assert header.base_timestamp == rows[0][0]
    assert header.max_timestamp == max(r[0] for r in rows)
    for name in ("base_offset", "producer_id", "producer_epoch", "base_sequence",
                 "partition_leader_epoch", "attributes"):
        assert getattr(header, name) == fields[name]
    records = impl.decode_records(memoryview(batch)[61:], header.records_count,
                                  header.base_offset, header.base_timestamp)
    assert [_record_tuple(r) for r in records] == [
        (fields["base_offset"] + i, ts, key, value, [tuple(h) for h in headers])
        for i, (ts, key, value, headers) in enumerate(rows)
    ]


@SETTINGS
@given(rows=record_rows, codec=st.sampled_from(["gzip", "snappy", "lz4", "zstd"]))
def test_compressed_round_trip(impl, rows, codec):
    record_layer = importlib.import_module("headwater.record")
    batch = record_layer.compress_batch(_build(impl, rows), codec)
    header = impl.check_batch(batch)
    assert header.compression == compression.codec_id(codec)
    assert [_record_tuple(r) for r in record_layer.batch_records(batch)] == [
        (i, ts, key, value, [tuple(h) for h in headers])
        for i, (ts, key, value, headers) in enumerate(rows)
    ]


@SETTINGS
@given(value=st.integers(min_value=-(1 << 63), max_value=(1 << 63) - 1),
       prefix=st.binary(max_size=4))
def test_varint_round_trip(impl, value, prefix):
    raw = impl.encode_varint(value)
    assert 1 <= len(raw) <= 10
    assert impl.decode_varint(prefix + raw + b"\x80", len(prefix)) == (value, len(prefix) + len(raw))


@SETTINGS
@given(data=st.binary(max_size=2048), start=st.integers(min_value=0, max_value=(1 << 32) - 1))
def test_crc32c_matches_pypi(impl, data, start):
    assert impl.crc32c(data) == pypi_crc32c.crc32c(data)
    assert impl.crc32c(data, start) == pypi_crc32c.crc32c(data, start)


# ------------------------------------------------------------------------ native ≡ pure


@pytest.fixture
def both(native, pure):
    return native, pure


@SETTINGS
@given(rows=record_rows, fields=batch_fields)
def test_same_bytes_from_build_batch(both, rows, fields):
    native, pure = both
    assert _build(native, rows, **fields) == _build(pure, rows, **fields)


@SETTINGS
@given(control_type=st.integers(min_value=0, max_value=6),
       coordinator_epoch=st.integers(min_value=-1, max_value=(1 << 31) - 1),
       producer_id=st.integers(min_value=0, max_value=1 << 62),
       timestamp=st.integers(min_value=0, max_value=1 << 42))
def test_same_bytes_from_build_control_batch(both, control_type, coordinator_epoch,
                                             producer_id, timestamp):
    native, pure = both
    kwargs = dict(producer_id=producer_id, producer_epoch=3,
                  coordinator_epoch=coordinator_epoch, timestamp=timestamp, base_offset=9)
    assert (native.build_control_batch(control_type, **kwargs)
            == pure.build_control_batch(control_type, **kwargs))


@SETTINGS
@given(data=st.binary(max_size=24), pos=st.integers(min_value=0, max_value=26))
def test_same_decode_varint(both, data, pos):
    native, pure = both
    assert _outcome(native.decode_varint, data, pos) == _outcome(pure.decode_varint, data, pos)


def _same_batch_verdict(native, pure, buf: bytes, pos: int = 0) -> None:
    for name in ("parse_batch_header", "check_batch"):
        ours = _outcome(getattr(native, name), buf, pos)
        theirs = _outcome(getattr(pure, name), buf, pos)
        assert ours == theirs, f"{name}: native {ours} != pure {theirs}"


mutations = st.lists(
    st.tuples(st.integers(min_value=0, max_value=10_000), st.integers(min_value=0, max_value=255)),
    min_size=1,
    max_size=4,
)


@SETTINGS
@given(rows=record_rows, edits=mutations, restamp=st.booleans())
def test_same_verdict_on_mutated_batch(both, rows, edits, restamp):
    native, pure = both
    buf = bytearray(_build(pure, rows, timestamp=TS0))
    for where, byte in edits:
        buf[where % len(buf)] = byte
    mutated = _restamp(buf) if restamp else bytes(buf)
    _same_batch_verdict(native, pure, mutated)


@SETTINGS
@given(rows=record_rows, edits=mutations)
def test_same_verdict_on_mutated_records_section(both, rows, edits):
    # Edits confined to the records section (and the counts), CRC re-stamped: the walk runs.
    native, pure = both
    buf = bytearray(_build(pure, rows))
    for where, byte in edits:
        buf[57 + where % (len(buf) - 57)] = byte
    mutated = _restamp(buf)
    _same_batch_verdict(native, pure, mutated)
    section = mutated[61:]
    (count,) = struct.unpack_from(">i", mutated, 57)
    for fn_args in [(section, count, 0, TS0), (section, len(rows), 5, TS0, TS0 + 1)]:
        assert _outcome(native.decode_records, *fn_args) == _outcome(pure.decode_records, *fn_args)


@SETTINGS
@given(rows=record_rows, cut=st.integers(min_value=0, max_value=10_000),
       prefix=st.binary(max_size=3))
def test_same_verdict_on_truncated_batch(both, rows, cut, prefix):
    native, pure = both
    batch = _build(pure, rows)
    buf = prefix + batch[: cut % (len(batch) + 1)]
    _same_batch_verdict(native, pure, buf, len(prefix))


@SETTINGS
@given(rows=record_rows, bits=st.lists(st.integers(min_value=0, max_value=1 << 20),
                                       min_size=1, max_size=3))
def test_same_verdict_on_bit_flips(both, rows, bits):
    native, pure = both
    buf = bytearray(_build(pure, rows))
    for bit in bits:
        index = (bit // 8) % len(buf)
        buf[index] ^= 1 << (bit % 8)
    _same_batch_verdict(native, pure, bytes(buf))


@SETTINGS
@given(data=st.binary(min_size=0, max_size=200), count=st.integers(min_value=-2, max_value=6))
def test_same_verdict_on_random_records_section(both, data, count):
    native, pure = both
    args = (data, count, 100, TS0)
    assert _outcome(native.decode_records, *args) == _outcome(pure.decode_records, *args)


@SETTINGS
@given(data=st.binary(min_size=0, max_size=160))
def test_same_verdict_on_random_batch_bytes(both, data):
    native, pure = both
    buf = bytearray(data)
    if len(buf) > 16:
        buf[16] = 2  # mostly get past the magic check
    _same_batch_verdict(native, pure, bytes(buf))
    _same_batch_verdict(native, pure, _restamp(bytearray(buf)))
