"""The C segment core through its binding: headwater._native._native.Segment.

Goal: pin the byte-level contract of csrc/hw_segment.c and the hw_status -> exception mapping
(`_raise_for`) for every status a segment call can return: golden bytes written by
append_records (the kafka-spec.md a.6 vector), boundary sizes (a batch of exactly the mapping,
one byte more -> HW_ERR_FULL, 17-byte tails, batch_length 0 / 48 / 49), scan results (clean
end, zero tail, truncated, corrupt, CRC, out-of-order offsets), find_offset/find_timestamp,
extent (KIP-74 max_bytes), view pinning, truncate, close/trim and I/O errors.

Method: segments are created directly in tmp files; expected bytes come from the spec vector
or from struct, never from the code under test. Each status is provoked by a minimal mutation
of a known-good batch.
"""

from __future__ import annotations

import os
import struct

import pytest

from headwater.errors import (
    CorruptRecordError,
    InvalidCrcError,
    SegmentFullError,
    TruncatedError,
)

# kafka-spec.md a.6: 2 records, CreateTime, no compression, baseTimestamp 1700000000000.
GOLDEN = bytes.fromhex(
    "0000000000000000"
    "0000004d"
    "00000000"
    "02"
    "3f06057b"
    "0000"
    "00000001"
    "0000018bcfe56800"
    "0000018bcfe56805"
    "ffffffffffffffff"
    "ffff"
    "ffffffff"
    "00000002"
    "24"
    "00"
    "00"
    "00"
    "06"
    "6b6579"
    "0a"
    "76616c7565"
    "02"
    "02"
    "68"
    "02"
    "76"
    "10"
    "00"
    "0a"
    "02"
    "01"
    "04"
    "7632"
    "00"
)
TS = 1_700_000_000_000


@pytest.fixture
def seg_path(tmp_path):
    return str(tmp_path / "00000000000000000000.log")


@pytest.fixture
def Segment(native):
    return native.Segment


def _open(Segment, path, max_bytes=1 << 16, create=True):
    return Segment(path, max_bytes, create)


def _batch(native, base_offset=0, n=2, ts=TS, value=b"v"):
    return bytes(
        native.build_batch(
            [value] * n, timestamps=[ts + i for i in range(n)], base_offset=base_offset
        )
    )


def test_golden_vector_written_by_append_records(native, Segment, seg_path):
    assert native.crc32c(GOLDEN[21:]) == 0x3F06057B
    s = _open(Segment, seg_path)
    try:
        pos, size = s.append_records(
            [b"value", b"v2"],
            [b"key", None],
            TS,
            0,
            0,
            timestamps=[TS, TS + 5],
            headers=[[("h", b"v")], []],
        )
        assert (pos, size) == (0, 89)
        assert s.read(0, 89) == GOLDEN
        assert s.size == 89
    finally:
        s.close()
    assert open(seg_path, "rb").read() == GOLDEN  # close(trim=True) cuts the preallocation


def test_append_records_stamps_offset_and_epoch(native, Segment, seg_path):
    s = _open(Segment, seg_path)
    try:
        pos, size = s.append_records(
            [b"value", b"v2"],
            [b"key", None],
            TS,
            1234,
            9,
            timestamps=[TS, TS + 5],
            headers=[[("h", b"v")], []],
        )
        got = s.read(pos, size)
        assert struct.unpack_from(">q", got, 0)[0] == 1234
        assert struct.unpack_from(">i", got, 12)[0] == 9
        assert got[16:] == GOLDEN[16:]  # offset and epoch lie outside the CRC
    finally:
        s.close()


def test_append_batch_copies_and_stamps(native, Segment, seg_path):
    s = _open(Segment, seg_path)
    try:
        s.append(GOLDEN)
        pos, size = s.append_batch(GOLDEN, 2, 5)
        assert (pos, size) == (89, 89)
        got = s.read(89, 89)
        assert struct.unpack(">qii", got[:16]) == (2, 77, 5)
        assert got[16:] == GOLDEN[16:]
        h = s.check_at(89)
        assert (h.base_offset, h.last_offset) == (2, 3)
        with pytest.raises(TruncatedError):
            s.append_batch(GOLDEN[:60], 4, 0)
        assert s.size == 178
    finally:
        s.close()


def test_append_batch_log_append_time_rewrites_crc(native, Segment, seg_path):
    s = _open(Segment, seg_path)
    try:
        s.append_batch(GOLDEN, 0, 0, 1_800_000_000_000)
        got = s.read(0, 89)
        h = s.check_at(0)  # CRC recomputed
        assert h.timestamp_type == 1 and h.max_timestamp == 1_800_000_000_000
        assert struct.unpack_from(">h", got, 21)[0] == 0x08
        assert got[61:] == GOLDEN[61:]
    finally:
        s.close()


def test_append_fixed_and_offsets(native, Segment, seg_path):
    s = _open(Segment, seg_path)
    try:
        pos, size = s.append_fixed(b"aabbcc", 2, 3, TS, 0, 0)
        recs = native.decode_records(s.read(pos + 61, size - 61), 3, 0, TS)
        assert [r.value for r in recs] == [b"aa", b"bb", b"cc"]
        with pytest.raises(ValueError):
            s.append_fixed(b"aabbc", 2, 3, TS, 3, 0)
        offsets = struct.pack("<4q", 0, 1, 1, 4)
        pos, size = s.append_offsets(b"xyzw", offsets, 3, TS, 3, 0)
        h = s.check_at(pos)
        assert (h.base_offset, h.records_count) == (3, 3)
        recs = native.decode_records(s.read(pos + 61, size - 61), 3, 3, TS)
        assert [r.value for r in recs] == [b"x", b"", b"yzw"]
        with pytest.raises(ValueError):
            s.append_offsets(b"xyzw", struct.pack("<4q", 0, 2, 1, 4), 3, TS, 6, 0)
        with pytest.raises(ValueError):
            s.append_offsets(b"xyzw", struct.pack("<3q", 0, 2, 4), 3, TS, 6, 0)
        assert s.size == pos + size
    finally:
        s.close()


# ---------------------------------------------------------------------------- boundaries


def test_mapping_full_boundary(native, Segment, seg_path):
    page = os.sysconf("SC_PAGE_SIZE")
    s = _open(Segment, seg_path, max_bytes=page)
    try:
        assert s.map_len == page
        s.reserve(page)  # exactly the mapping: fine
        with pytest.raises(SegmentFullError):
            s.reserve(page + 1)  # HW_ERR_FULL
        filler = b"\x01" * (page - 89)
        s.append(filler)
        s.append(GOLDEN)
        assert s.size == page
        with pytest.raises(SegmentFullError):
            s.append(b"\x02")
        assert s.size == page  # nothing changes on failure
    finally:
        s.close()
    assert os.path.getsize(seg_path) == page


def test_open_missing_without_create_is_oserror(Segment, tmp_path):
    with pytest.raises(OSError):  # HW_ERR_IO with errno
        Segment(str(tmp_path / "missing.log"), 0, False)
    with pytest.raises(OSError):
        Segment(str(tmp_path / "no-such-dir" / "x.log"), 4096, True)


def test_header_at_and_check_at_status_paths(native, Segment, seg_path):
    with open(seg_path, "wb") as f:
        good = GOLDEN
        bad_crc = bytearray(GOLDEN)
        bad_crc[-1] ^= 1
        bad_magic = bytearray(GOLDEN)
        bad_magic[16] = 1
        short_len = bytearray(GOLDEN)
        struct.pack_into(">i", short_len, 8, 48)  # below the 49-byte minimum
        f.write(good + bytes(bad_crc) + bytes(bad_magic) + bytes(short_len) + GOLDEN[:50])
    s = Segment(seg_path, 0, False)
    try:
        assert s.check_at(0).records_count == 2
        assert s.header_at(89).records_count == 2  # header parse does not check the CRC
        with pytest.raises(InvalidCrcError):
            s.check_at(89)  # HW_ERR_CRC
        with pytest.raises(CorruptRecordError) as info:
            s.header_at(178)  # HW_ERR_CORRUPT (magic)
        assert not isinstance(info.value, (InvalidCrcError, TruncatedError))
        with pytest.raises(CorruptRecordError):
            s.header_at(267)  # batch_length 48 < 49
        with pytest.raises(TruncatedError):
            s.header_at(356)  # HW_ERR_TRUNCATED: 50 bytes of a batch
        with pytest.raises(IndexError):
            s.header_at(s.size + 1)
        with pytest.raises(IndexError):
            s.view(s.size - 1, 2)
        with pytest.raises(IndexError):
            s.read(-1, 2)
    finally:
        s.close(trim=False)


# ---------------------------------------------------------------------------- scan


def _write(path, data):
    with open(path, "wb") as f:
        f.write(data)


def _scan_file(Segment, path, data, **kw):
    _write(path, data)
    s = Segment(path, 0, False)
    try:
        return s.scan(**kw)
    finally:
        s.close(trim=False)


def test_scan_clean_and_zero_tail(native, Segment, seg_path):
    b0, b1 = _batch(native, 0, 2), _batch(native, 2, 3)
    r = _scan_file(Segment, seg_path, b0 + b1)
    assert (r.status, r.valid_bytes, r.batches, r.first_offset, r.next_offset) == (
        native.HW_OK,
        len(b0 + b1),
        2,
        0,
        5,
    )
    assert r.max_timestamp == TS + 2 and r.offset_of_max_timestamp == 4
    r = _scan_file(Segment, seg_path, b0 + b1 + bytes(4096))
    assert (r.status, r.valid_bytes) == (native.HW_OK, len(b0 + b1))
    r = _scan_file(Segment, seg_path, b"")
    assert (r.status, r.valid_bytes, r.batches, r.first_offset, r.next_offset) == (
        native.HW_OK,
        0,
        0,
        -1,
        -1,
    )


@pytest.mark.parametrize("tail", [1, 7])
def test_scan_zero_prefix_of_next_batch_reads_as_clean_end(native, Segment, seg_path, tail):
    """The first 7 bytes of base offset 2 are zeros: indistinguishable from preallocation."""
    b0, b1 = _batch(native, 0, 2), _batch(native, 2, 3)
    r = _scan_file(Segment, seg_path, b0 + b1[:tail])
    assert (r.status, r.valid_bytes) == (native.HW_OK, len(b0))


@pytest.mark.parametrize("tail", [8, 16, 17, 18, 60, 61])
def test_scan_partial_tail_is_truncated(native, Segment, seg_path, tail):
    b0, b1 = _batch(native, 0, 2), _batch(native, 2, 3)
    r = _scan_file(Segment, seg_path, b0 + b1[:tail])
    assert r.status == native.HW_ERR_TRUNCATED
    assert r.valid_bytes == len(b0) and r.next_offset == 2


def test_scan_nonzero_after_zero_run_is_truncated(native, Segment, seg_path):
    b0 = _batch(native, 0, 2)
    r = _scan_file(Segment, seg_path, b0 + bytes(100) + b"\x01")
    assert r.status == native.HW_ERR_TRUNCATED and r.valid_bytes == len(b0)


def test_scan_unfinished_write_length_zero_is_truncated(native, Segment, seg_path):
    b0, b1 = _batch(native, 0, 2), bytearray(_batch(native, 2, 3))
    struct.pack_into(">i", b1, 8, 0)
    r = _scan_file(Segment, seg_path, b0 + bytes(b1))
    assert r.status == native.HW_ERR_TRUNCATED and r.valid_bytes == len(b0)


def test_scan_crc_corrupt_and_order(native, Segment, seg_path):
    b0, b1 = _batch(native, 0, 2), bytearray(_batch(native, 2, 3))
    bad = bytearray(b1)
    bad[70] ^= 0x10
    r = _scan_file(Segment, seg_path, b0 + bytes(bad))
    assert (r.status, r.valid_bytes, r.batches) == (native.HW_ERR_CRC, len(b0), 1)
    r = _scan_file(Segment, seg_path, b0 + bytes(bad), verify_crc=False)
    assert (r.status, r.batches) == (native.HW_OK, 2)
    bad = bytearray(b1)
    bad[16] = 7
    r = _scan_file(Segment, seg_path, b0 + bytes(bad))
    assert (r.status, r.valid_bytes) == (native.HW_ERR_CORRUPT, len(b0))
    # Offsets must increase: a batch starting below the previous last offset + 1 is corrupt.
    r = _scan_file(Segment, seg_path, b0 + _batch(native, 1, 1))
    assert (r.status, r.valid_bytes) == (native.HW_ERR_CORRUPT, len(b0))
    r = _scan_file(Segment, seg_path, b0, min_offset=1)
    assert (r.status, r.valid_bytes) == (native.HW_ERR_CORRUPT, 0)
    # A gap is allowed (compaction leaves gaps).
    r = _scan_file(Segment, seg_path, b0 + _batch(native, 10, 1))
    assert (r.status, r.next_offset) == (native.HW_OK, 11)


def test_scan_builds_indexes_like_the_append_rule(native, Segment, seg_path, tmp_path):
    batches = [_batch(native, 2 * i, 2, ts=TS + 10 * i, value=b"x" * 40) for i in range(20)]
    data = b"".join(batches)
    _write(seg_path, data)
    s = Segment(seg_path, 0, False)
    oi = native.OffsetIndex(str(tmp_path / "a.index"), 0, 8 * 64)
    ti = native.TimeIndex(str(tmp_path / "a.timeindex"), 0, 12 * 64)
    try:
        interval = 250
        r = s.scan(0, -1, True, -1, oi, ti, interval)
        assert r.status == native.HW_OK and r.batches == 20
        expect, since, pos = [], 0, 0
        for i, b in enumerate(batches):
            if since > interval:
                expect.append((2 * i + 1, pos))
                since = 0
            since += len(b)
            pos += len(b)
        assert [oi.entry(n) for n in range(oi.entries)] == expect
        assert [ti.entry(n) for n in range(ti.entries)] == [
            (TS + 10 * (o // 2) + 1, o) for o, _ in expect
        ]
        assert r.bytes_since_index == since
    finally:
        oi.close()
        ti.close()
        s.close(trim=False)


def test_find_next_batch_offset_timestamp(native, Segment, seg_path):
    b = [_batch(native, 3 * i, 3, ts=TS + 100 * i) for i in range(4)]
    garbage = b"\x02" * 30
    _write(seg_path, b[0] + garbage + b[1] + b[2] + b[3])
    s = Segment(seg_path, 0, False)
    try:
        assert s.find_next_batch(0) == 0
        assert s.find_next_batch(1) == len(b[0]) + 30
        assert s.find_next_batch(s.size - 10) == -1
        # find_offset / find_timestamp walk from a batch boundary.
        p2 = len(b[0]) + 30 + len(b[1])
        assert s.find_offset(p2, 7) == p2
        assert s.find_offset(p2, 8) == p2
        assert s.find_offset(p2, 9) == p2 + len(b[2])
        assert s.find_offset(p2, 100) == s.size
        assert s.find_timestamp(p2, TS + 250) == p2 + len(b[2])
        assert s.find_timestamp(p2, TS + 10_000) == s.size
        with pytest.raises(CorruptRecordError):
            s.find_offset(len(b[0]) + 1, 5)  # not a boundary: garbage length
    finally:
        s.close(trim=False)


def test_extent_kip74_and_bad_batch_status(native, Segment, seg_path):
    b = [_batch(native, 2 * i, 2) for i in range(3)]
    n = len(b[0])
    bad = bytearray(b[2])
    bad[-1] ^= 1
    _write(seg_path, b[0] + b[1] + bytes(bad))
    s = Segment(seg_path, 0, False)
    try:
        assert s.extent(0, 1) == (n, native.HW_OK)  # at least one batch
        assert s.extent(0, 2 * n) == (2 * n, native.HW_ERR_CRC)  # stops before the bad one
        assert s.extent(0, 2 * n - 1)[0] == n
        assert s.extent(2 * n, 1 << 20) == (2 * n, native.HW_ERR_CRC)
        assert s.extent(2 * n, 1 << 20, False) == (3 * n, native.HW_OK)
        assert s.extent(3 * n, 10) == (3 * n, native.HW_OK)
        with pytest.raises(IndexError):
            s.extent(3 * n + 1, 10)
    finally:
        s.close(trim=False)


# ---------------------------------------------------------------------------- lifetime


def test_views_pin_truncate_and_close(native, Segment, seg_path):
    s = _open(Segment, seg_path)
    s.append(GOLDEN)
    v = s.view(0, 89)
    assert s.exported_views == 1
    with pytest.raises(BufferError):
        s.truncate(0)
    with pytest.raises(BufferError):
        s.close()
    assert bytes(v) == GOLDEN and not s.closed
    with pytest.raises(TypeError):
        v[0] = 1  # read-only
    v.release()
    assert s.exported_views == 0
    s.truncate(0)
    assert s.size == 0 and s.file_len == 0
    s.append(GOLDEN)
    s.close()
    assert s.closed
    with pytest.raises(ValueError):
        s.view(0, 1)
    with pytest.raises(ValueError):
        s.append(GOLDEN)
    s.close()  # idempotent


def test_truncate_beyond_size_is_corrupt_status(Segment, seg_path):
    s = _open(Segment, seg_path)
    try:
        s.append(GOLDEN)
        with pytest.raises(CorruptRecordError):
            s.truncate(90)  # hw_segment_truncate: HW_ERR_CORRUPT
        assert s.size == 89
    finally:
        s.close()


def test_size_setter_and_truncate(Segment, seg_path):
    s = _open(Segment, seg_path)
    try:
        s.append(GOLDEN)
        s.flush()
        assert s.synced == 89
        s.append(GOLDEN)
        s.truncate(89)
        assert s.size == 89 and s.read(0, 89) == GOLDEN
        with pytest.raises(ValueError):
            s.size = s.file_len + 1
        s.size = 10
        assert s.synced == 10
    finally:
        s.close(trim=False)


def test_zero_tail_scans_as_clean_end(Segment, seg_path):
    """Appends are pwrite()s (no preallocation); a file that still ends in zeros (written by a
    preallocating build, or extended by another tool) scans as a clean end at the data."""
    s = _open(Segment, seg_path, max_bytes=1 << 20)
    s.append(GOLDEN)
    s.close(trim=False)
    os.truncate(seg_path, 64 * 1024)
    flen = 64 * 1024
    reopened = Segment(seg_path, 0, False)
    try:
        assert reopened.size == flen  # size starts as the file size; the caller scans
        r = reopened.scan()
        assert r.valid_bytes == 89 and r.status == 0
        last = len(GOLDEN.rstrip(b"\0"))  # the final record's header count is a zero byte
        assert reopened.last_nonzero(0, reopened.file_len) == last
        assert reopened.last_nonzero(89, reopened.file_len) == 89
        with pytest.raises(IndexError):
            reopened.last_nonzero(0, reopened.file_len + 1)
    finally:
        reopened.close(trim=False)


# append_records without keys, headers or per-record timestamps takes a one-walk path of its
# own (pointers and lengths of bytes/None values); a value of any other type sends the whole
# list down the general path. Both must write what build_batch builds, byte for byte.
@pytest.mark.parametrize(
    "values",
    [
        [b"a"],
        [None],
        [b"", None, b"x" * 300, b"y"],
        [b"v%d" % i for i in range(200)],
        [b"w" * (i % 70) for i in range(8200)],  # offset deltas of 1, 2 and 3 varint bytes
        [b"a", bytearray(b"b"), b"c"],  # general path from the second value
        [b"a", None, memoryview(b"bc")],  # general path from the last value
    ],
)
def test_append_records_plain_values_equal_build_batch(native, Segment, seg_path, values):
    expected = bytes(
        native.build_batch(
            [bytes(v) if v is not None else None for v in values],
            timestamp=TS, base_offset=7, producer_id=3, producer_epoch=1, base_sequence=11,
        )
    )
    s = _open(Segment, seg_path, max_bytes=1 << 20)
    try:
        pos, size = s.append_records(values, None, TS, 7, -1, 3, 1, 11)
        got = s.read(pos, size)
    finally:
        s.close()
    assert struct.unpack_from(">i", got, 12)[0] == -1
    assert got == expected


def test_append_records_plain_values_too_large_writes_nothing(native, Segment, seg_path):
    from headwater.errors import MessageTooLargeError

    s = _open(Segment, seg_path)
    try:
        with pytest.raises(MessageTooLargeError):
            s.append_records([b"x" * 100] * 10, None, TS, 0, 0, max_batch_bytes=500)
        assert s.size == 0
        pos, size = s.append_records([b"x" * 10] * 2, None, TS, 0, 0, max_batch_bytes=500)
        assert pos == 0 and size > 0
    finally:
        s.close()


# append_one is append_records for a single record (the linger.ms=0 send): it must write the
# same bytes for every shape of value and key, and refuse what append_records refuses.
@pytest.mark.parametrize(
    "value,key",
    [
        (b"v", None),
        (None, None),
        (b"", b""),
        (b"value", b"key"),
        (None, b"tombstone-key"),
        (b"x" * 300, b"k" * 200),  # 2-byte length varints
        (bytearray(b"ba"), memoryview(b"mv")),  # buffers other than bytes
    ],
)
@pytest.mark.parametrize("pid", [(-1, -1, -1), (42, 3, 2147483647)])
def test_append_one_equals_append_records(native, Segment, tmp_path, value, key, pid):
    a = _open(Segment, str(tmp_path / "a.log"))
    b = _open(Segment, str(tmp_path / "b.log"))
    try:
        pa, sa = a.append_one(value, key, TS, 17, 5, *pid, -1)
        pb, sb = b.append_records([value], None if key is None else [key], TS, 17, 5, *pid)
        assert (pa, sa) == (pb, sb) == (0, sa)
        got = a.read(0, sa)
        assert got == b.read(0, sb)
    finally:
        a.close()
        b.close()
    # An independent reader: kafka-python decodes the batch and checks its CRC.
    from kafka.record.memory_records import MemoryRecords

    records = MemoryRecords(got)
    batch = records.next_batch()
    assert batch.validate_crc()
    assert (batch.base_offset, batch.producer_id, batch.producer_epoch, batch.base_sequence) == (17, *pid)
    (rec,) = list(batch)
    assert rec.offset == 17 and rec.timestamp == TS
    assert rec.key == (None if key is None else bytes(key))
    assert rec.value == (None if value is None else bytes(value))


def test_append_one_errors_write_nothing(Segment, seg_path):
    from headwater.errors import MessageTooLargeError

    s = _open(Segment, seg_path, max_bytes=1 << 12)
    try:
        with pytest.raises(MessageTooLargeError):
            s.append_one(b"x" * 1000, None, TS, 0, 0, -1, -1, -1, 500)
        with pytest.raises(TypeError):
            s.append_one(12, None, TS, 0, 0, -1, -1, -1, -1)
        with pytest.raises(TypeError):
            s.append_one(b"v", "str key", TS, 0, 0, -1, -1, -1, -1)
        assert s.size == 0
        with pytest.raises(SegmentFullError):
            s.append_one(b"x" * 5000, None, TS, 0, 0, -1, -1, -1, -1)  # past the 4 KiB mapping
        assert s.size == 0
        pos, size = s.append_one(b"x" * 10, None, TS, 0, 0, -1, -1, -1, 500)
        assert pos == 0 and s.size == size
    finally:
        s.close()
    with pytest.raises(ValueError):
        s.append_one(b"v", None, TS, 0, 0, -1, -1, -1, -1)  # closed


# read_messages is extent() + decode_messages() straight from the mapping: the same Messages
# as decoding a view of the same range, the same end and status, and the offset after the last
# batch read (control batches included).
def test_read_messages_equals_view_decode(native, Segment, seg_path):
    s = _open(Segment, seg_path, max_bytes=1 << 20)
    try:
        s.append_records([b"a", None, b"c"], [b"k0", None, b"k2"], TS, 0, 0, timestamps=[TS, TS + 1, TS + 2], headers=[[("h", b"1")], [], []])
        s.append_one(b"d", None, TS + 3, 3, 0, -1, -1, -1, -1)
        s.append(native.build_control_batch(0, producer_id=7, producer_epoch=0, coordinator_epoch=0, base_offset=4, timestamp=TS))
        s.append_one(b"f", b"kf", TS + 5, 5, 0, -1, -1, -1, -1)
        size = s.size
        for position, start_offset, max_bytes in [(0, 0, 1 << 20), (0, 1, 1 << 20), (0, 2, 10), (s.find_offset(0, 3), 3, 1 << 20)]:
            msgs, end, status, nxt = s.read_messages(position, max_bytes, False, start_offset, "t", 4)
            want_end, want_status = s.extent(position, max_bytes, False)
            assert (end, status) == (want_end, want_status)
            view = s.view(position, end - position)
            want = native.decode_messages(view, start_offset, "t", 4)
            view.release()
            assert [(m.topic(), m.partition(), m.offset(), m.key(), m.value(), m.headers(), m.timestamp()) for m in msgs] == [
                (m.topic(), m.partition(), m.offset(), m.key(), m.value(), m.headers(), m.timestamp()) for m in want
            ]
            assert nxt == s.next_offset_after(position, end)
        msgs, end, _, nxt = s.read_messages(0, 1 << 20, True, 0, "t", 0)
        assert [m.offset() for m in msgs] == [0, 1, 2, 3, 5] and end == size and nxt == 6
        msgs, end, _, nxt = s.read_messages(size, 100, True, 6, "t", 0)
        assert (msgs, end, nxt) == ([], size, -1)  # at the end: nothing
        with pytest.raises(IndexError):
            s.read_messages(size + 1, 100, True, 0, "t", 0)
        assert s.exported_views == 0  # nothing pinned by a read
    finally:
        s.close()


def test_read_messages_bad_first_batch_decodes_nothing(native, Segment, seg_path):
    s = _open(Segment, seg_path)
    try:
        s.append(_batch(native))
        size = s.size
        s.append(_batch(native, base_offset=2))
        raw = bytearray(s.read(size, s.size - size))
        raw[-1] ^= 0xFF  # a record byte: inside the CRC
        s.truncate(size)
        s.append(bytes(raw))
        msgs, end, status, nxt = s.read_messages(size, 1 << 20, True, 2, "t", 0)
        assert (msgs, end, nxt) == ([], size, -1) and status != 0
        msgs, end, status, nxt = s.read_messages(0, 1 << 20, True, 0, "t", 0)
        assert [m.offset() for m in msgs] == [0, 1] and end == size and nxt == 2 and status != 0
    finally:
        s.close()
    with pytest.raises(ValueError):
        s.read_messages(0, 100, True, 0, "t", 0)
