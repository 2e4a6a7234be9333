"""PartitionLog behaviour through its public API (docs/storage.md, issue 2 parts 5-9).

Goal: prove what a caller of headwater.log.PartitionLog can rely on: append/read round trips for
every input shape and codec, offsets and batch boundaries of reads, timestamp lookup, segment
roll (size and time) with Kafka's file names and index layouts (kafka-spec.md b.1/b.2),
retention, DeleteRecords, truncation, clean reopen, client-built batches stamped without
touching their CRC, LogAppendTime, and that zero-copy views pin their segment.

Method: each test opens a log in a fresh tmp directory (small segment.bytes and
index.interval.bytes so rolls and index entries happen with a few KiB of data), drives it,
and checks results against values computed independently in the test: record tuples kept in
the test, bytes re-parsed with struct, index files decoded with struct and compared with the
entries the b.2 rule predicts from the batches actually in the .log file. Timestamps are
explicit wherever time matters, so nothing sleeps.
"""

from __future__ import annotations

import array
import os
import re
import struct

import numpy as np
import pytest

from headwater import record
from headwater.errors import OffsetOutOfRangeError
from headwater.log import PartitionLog

CODECS = ["none", "gzip", "snappy", "lz4", "zstd"]


def tuples(records) -> list[tuple]:
    return [(r.offset, r.timestamp, r.key, r.value, [tuple(h) for h in r.headers]) for r in records]


def read_all(log: PartitionLog, start: int | None = None) -> list:
    """Every record from `start` (default log start) to the log end, via repeated reads."""
    offset = log.log_start_offset if start is None else start
    out = []
    while offset < log.log_end_offset:
        with log.read(offset, max_bytes=1) as r:
            recs = r.records()
        assert recs, f"read({offset}) returned no records below the log end"
        out += recs
        offset = recs[-1].offset + 1
    return out


def batches_in_file(path: str) -> list[tuple[int, object]]:
    """(position, BatchHeader) for every batch in a .log file, parsed from the raw bytes."""
    data = open(path, "rb").read()
    out = []
    pos = 0
    while pos + 12 <= len(data):
        (length,) = struct.unpack_from(">i", data, pos + 8)
        if length == 0:
            break
        out.append((pos, record.check_batch(data, pos)))
        pos += 12 + length
    assert pos == len(data.rstrip(b"\0")) or pos == len(data)
    return out


# ---------------------------------------------------------------------------- round trips


def test_append_list_round_trip_keys_headers_timestamps(open_log):
    log = open_log()
    values = [b"v0", None, b"", b"x" * 1000]
    keys = [b"k0", b"k1", None, b""]
    headers = [[("a", b"1"), ("b", None)], [], [("", b"")], [("h", b"v")]]
    timestamps = [1_700_000_000_000, 1_700_000_000_005, 1_699_999_999_999, 0]
    first = log.append(values, keys=keys, headers=headers, timestamps=timestamps)
    assert first == 0
    assert log.log_end_offset == 4
    with log.read(0) as r:
        got = tuples(r)
    assert got == [(i, timestamps[i], keys[i], values[i], headers[i]) for i in range(4)]


def test_append_keys_without_headers_uses_fast_path_and_round_trips(open_log):
    log = open_log()
    assert log.append([b"a", b"b"], keys=[b"ka", None], timestamps=[10, 11]) == 0
    assert log.append([b"c"], timestamp=12) == 2
    assert tuples(read_all(log)) == [
        (0, 10, b"ka", b"a", []),
        (1, 11, None, b"b", []),
        (2, 12, None, b"c", []),
    ]


@pytest.mark.parametrize("codec", CODECS)
def test_append_every_codec_round_trips_and_marks_batch(open_log, codec):
    log = open_log()
    log.append([b"before"], timestamps=[1])
    values = [os.urandom(50), b"y" * 300, None]
    keys = [b"k", None, b"k3"]
    headers = [[("h", b"v")], [], [("x", None)]]
    first = log.append(values, keys=keys, headers=headers, timestamps=[5, 6, 7], compression=codec)
    assert first == 1
    with log.read(first) as r:
        ((header, _view),) = list(r.batches())
        assert header.compression == record._compression.codec_id(codec)
        del _view
        assert tuples(r) == [(1 + i, 5 + i, keys[i], values[i], headers[i]) for i in range(3)]


def test_append_numpy_fixed_width(open_log):
    log = open_log()
    arr = np.array([b"abcd", b"efgh", b"ijkl"], dtype="S4")
    assert log.append(arr, timestamp=99) == 0
    assert tuples(read_all(log)) == [(i, 99, None, arr[i].tobytes(), []) for i in range(3)]


def test_append_numpy_with_keys_converts_and_round_trips(open_log):
    log = open_log()
    arr = np.array([b"ab", b"cd"], dtype="S2")
    log.append(arr, keys=[b"k1", b"k2"], timestamps=[3, 4])
    assert tuples(read_all(log)) == [(0, 3, b"k1", b"ab", []), (1, 4, b"k2", b"cd", [])]


def test_append_numpy_wrong_dtype_rejected(open_log):
    log = open_log()
    with pytest.raises(TypeError):
        log.append(np.arange(3, dtype=np.int64))
    assert log.log_end_offset == 0


@pytest.mark.parametrize(
    "data",
    [
        bytearray(b"helloworld!"),
        np.frombuffer(b"helloworld!", dtype=np.uint8),
        memoryview(b"helloworld!"),
    ],
    ids=["bytearray", "numpy-u8", "memoryview"],
)
@pytest.mark.parametrize("offsets_kind", ["numpy", "array"])
def test_append_data_offsets_pair(open_log, data, offsets_kind):
    log = open_log()
    offs = [0, 5, 10, 11]
    offsets = np.array(offs, dtype=np.int64) if offsets_kind == "numpy" else array.array("q", offs)
    assert log.append((data, offsets), timestamp=7) == 0
    assert [r.value for r in read_all(log)] == [b"hello", b"world", b"!"]
    assert log.log_end_offset == 3


def test_append_data_offsets_pair_with_bytes_data(open_log):
    log = open_log()
    log.append((b"helloworld", np.array([0, 5, 10], dtype=np.int64)), timestamp=7)
    assert [r.value for r in read_all(log)] == [b"hello", b"world"]


def test_append_data_offsets_bad_offsets_rejected_log_unchanged(open_log):
    log = open_log()
    log.append([b"a"], timestamp=1)
    before = _disk_state(log)
    with pytest.raises(ValueError):
        log.append((bytearray(b"abc"), np.array([0, 2, 1], dtype=np.int64)))
    with pytest.raises(ValueError):
        log.append((bytearray(b"abc"), np.array([0, 2, 9], dtype=np.int64)))
    assert _disk_state(log) == before


def test_first_offsets_are_consecutive(open_log):
    log = open_log()
    firsts = [log.append([b"x"] * n, timestamp=1) for n in (1, 3, 2, 5)]
    assert firsts == [0, 1, 4, 6]
    assert log.log_end_offset == 11
    assert log.log_start_offset == 0 and log.high_watermark == 11


# ---------------------------------------------------------------------------- reads


@pytest.fixture
def three_batches(open_log):
    """Offsets 0-2, 3-5, 6-8 in three batches, timestamps 100+offset."""
    log = open_log()
    for b in range(3):
        log.append(
            [b"v%d" % (3 * b + i) for i in range(3)], timestamps=[100 + 3 * b + i for i in range(3)]
        )
    return log


@pytest.mark.parametrize("offset,batch_base", [(3, 3), (4, 3), (5, 3), (0, 0), (8, 6)])
def test_read_returns_whole_batches_from_holder_and_iterates_from_offset(
    three_batches, offset, batch_base
):
    log = three_batches
    with log.read(offset) as r:
        headers = [h for h, v in r.batches()]
        assert headers[0].base_offset == batch_base
        assert headers[-1].last_offset == 8
        assert r.tobytes()[:8] == struct.pack(">q", batch_base)
        assert [rec.offset for rec in r] == list(range(offset, 9))
        assert [rec.value for rec in r] == [b"v%d" % o for o in range(offset, 9)]


def test_read_max_bytes_limits_to_whole_batches_but_at_least_one(three_batches):
    log = three_batches
    with log.read(0, max_bytes=1) as r:
        (h,) = [h for h, _ in r.batches()]
        assert (h.base_offset, h.last_offset) == (0, 2)
        assert r.nbytes == h.size  # larger than max_bytes, still returned whole
    with log.read(0) as r:
        sizes = [h.size for h, _ in r.batches()]
    with log.read(0, max_bytes=sizes[0] + sizes[1]) as r:
        assert [h.base_offset for h, _ in r.batches()] == [0, 3]
    with log.read(0, max_bytes=sizes[0] + sizes[1] - 1) as r:
        assert [h.base_offset for h, _ in r.batches()] == [0]


def test_read_to_the_segment_end_says_where_to_continue(three_batches):
    """next_offset: where a reader continues (a consumer's next fetch position, without
    walking the batches in Python): after the last batch returned; at a segment's end, the
    segment's next offset."""
    log = three_batches
    with log.read(4) as r:
        assert r.next_offset == 9 == log.log_end_offset
    with log.read(0, max_bytes=1) as r:
        assert r.next_offset == 3  # after the one batch returned, mid-segment
        assert [h.last_offset for h, _ in r.batches()] == [2]
    log.roll()
    log.append([b"x"], timestamp=200)
    with log.read(0) as r:  # the first segment, whole
        assert r.next_offset == 9
    with log.read(9) as r:
        assert r.next_offset == 10


def test_read_at_log_end_is_empty(three_batches):
    with three_batches.read(9) as r:
        assert r.nbytes == 0 and r.records() == [] and list(r.batches()) == []
        assert r.high_watermark == 9


@pytest.mark.parametrize("offset", [-1, 10, 1 << 40])
def test_read_outside_range_raises(three_batches, offset):
    with pytest.raises(OffsetOutOfRangeError):
        three_batches.read(offset)


def test_read_below_log_start_raises(three_batches):
    log = three_batches
    log.roll()
    log.append([b"x"], timestamp=200)
    log.delete_records_before(4)
    assert log.log_start_offset == 4
    with pytest.raises(OffsetOutOfRangeError):
        log.read(3)
    with log.read(4) as r:
        assert [x.offset for x in r][0] == 4


def test_read_spans_segments_after_roll(open_log):
    log = open_log(**{"segment.bytes": 1024})
    expect = []
    for i in range(60):
        log.append([b"%03d" % i + b"." * 40], timestamps=[i])
        expect.append((i, i, None, b"%03d" % i + b"." * 40, []))
    assert len(log.segments) > 2
    assert tuples(read_all(log)) == expect
    # A read never crosses a segment: the result ends at a segment's end or earlier.
    seg1 = log.segments[1]
    with log.read(seg1.base_offset - 1, max_bytes=1 << 20) as r:
        assert max(h.last_offset for h, _ in r.batches()) == seg1.base_offset - 1


def test_offset_for_timestamp(open_log):
    log = open_log(**{"segment.bytes": 2048, "index.interval.bytes": 64})
    # Batch i holds offsets 2i, 2i+1 at timestamps 1000+10i, 1000+10i+5.
    for i in range(40):
        log.append([b"a" * 30, b"b" * 30], timestamps=[1000 + 10 * i, 1000 + 10 * i + 5])
    assert len(log.segments) > 1
    assert log.offset_for_timestamp(0) == (0, 1000)
    assert log.offset_for_timestamp(1000) == (0, 1000)
    assert log.offset_for_timestamp(1001) == (1, 1005)
    assert log.offset_for_timestamp(1006) == (2, 1010)
    for i in range(40):
        assert log.offset_for_timestamp(1000 + 10 * i + 3) == (2 * i + 1, 1000 + 10 * i + 5)
    assert log.offset_for_timestamp(1000 + 10 * 39 + 5) == (79, 1395)
    assert log.offset_for_timestamp(1396) is None
    assert (
        PartitionLog.open(os.path.join(log.path, "..", "empty-0")).offset_for_timestamp(0) is None
    )


def test_offset_for_timestamp_respects_log_start(open_log):
    log = open_log()
    log.append([b"a", b"b", b"c"], timestamps=[10, 20, 30])
    log.append([b"d"], timestamps=[40])
    log.delete_records_before(2)
    assert log.offset_for_timestamp(0) == (2, 30)


# ---------------------------------------------------------------------------- files, roll


def _expected_index_entries(batches, base, interval):
    """(offset entries, time entries) predicted by kafka-spec.md b.2 for monotonic timestamps,
    including the final time entry written when the segment is sealed."""
    offs, times = [], []
    since = 0
    max_ts, max_off = -1, -1
    for pos, h in batches:
        if since > interval:
            offs.append((h.last_offset - base, pos))
            ts = max(max_ts, h.max_timestamp)
            off = h.last_offset if h.max_timestamp >= max_ts else max_off
            if not times or ts > times[-1][0]:
                times.append((ts, off - base))
            since = 0
        since += h.size
        if h.max_timestamp >= max_ts:
            max_ts, max_off = h.max_timestamp, h.last_offset
    if max_ts >= 0 and (not times or max_ts > times[-1][0]):
        times.append((max_ts, max_off - base))
    return offs, times


def test_roll_by_size_files_names_and_index_layout(open_log, pdir):
    interval = 150
    log = open_log(**{"segment.bytes": 2000, "index.interval.bytes": interval})
    for i in range(100):
        log.append([b"r%03d" % i + b"-" * (i % 50)], timestamps=[5000 + i])
    leo = log.log_end_offset
    bases = [s.base_offset for s in log.segments]
    log.close()
    assert len(bases) >= 4
    names = sorted(os.listdir(pdir))
    for base in bases:
        stem = f"{base:020d}"
        assert re.fullmatch(r"\d{20}", stem)
        assert {stem + ".log", stem + ".index", stem + ".timeindex"} <= set(names)
    seg_logs = sorted(n for n in names if n.endswith(".log"))
    assert seg_logs == [f"{b:020d}.log" for b in bases]
    next_offset = 0
    for base in bases:
        stem = os.path.join(pdir, f"{base:020d}")
        batches = batches_in_file(stem + ".log")
        size = os.path.getsize(stem + ".log")
        assert size <= 2000, "a segment outgrew segment.bytes"
        assert batches[0][1].base_offset == base == next_offset
        next_offset = batches[-1][1].last_offset + 1
        # Offset index: 8-byte big-endian (relative offset, position) entries.
        raw = open(stem + ".index", "rb").read()
        assert len(raw) % 8 == 0
        got_offs = [struct.unpack_from(">ii", raw, i) for i in range(0, len(raw), 8)]
        raw_t = open(stem + ".timeindex", "rb").read()
        assert len(raw_t) % 12 == 0
        got_times = [struct.unpack_from(">qi", raw_t, i) for i in range(0, len(raw_t), 12)]
        exp_offs, exp_times = _expected_index_entries(batches, base, interval)
        assert got_offs == exp_offs
        assert got_times == exp_times
        positions = {pos: h for pos, h in batches}
        for rel, pos in got_offs:
            assert pos in positions and positions[pos].last_offset == base + rel
    assert next_offset == leo


def test_roll_when_next_batch_would_not_fit(open_log):
    log = open_log(**{"segment.bytes": 1000})
    log.append([b"a" * 600], timestamp=1)
    log.append([b"b" * 600], timestamp=2)
    assert [s.base_offset for s in log.segments] == [0, 1]


def test_roll_by_segment_ms(open_log):
    log = open_log(**{"segment.ms": 100})
    for t in (1000, 1050, 1100):  # within segment.ms of the first batch: same segment
        log.append([b"v"], timestamps=[t])
    assert [s.base_offset for s in log.segments] == [0]
    log.append([b"v"], timestamps=[1101])  # 101 ms after the first batch's max timestamp
    assert [s.base_offset for s in log.segments] == [0, 3]
    log.append([b"v"], timestamps=[1150])
    log.append([b"v"], timestamps=[1202])
    assert [s.base_offset for s in log.segments] == [0, 3, 5]


def test_explicit_roll_and_empty_roll_is_noop(open_log):
    log = open_log()
    log.roll()
    assert [s.base_offset for s in log.segments] == [0]
    log.append([b"a"], timestamp=1)
    log.roll()
    log.roll()
    assert [s.base_offset for s in log.segments] == [0, 1]


# ---------------------------------------------------------------------------- retention


def _three_segments(open_log, **cfg):
    log = open_log(**{"retention.ms": -1, **cfg})
    for seg in range(3):
        for i in range(3):
            log.append([b"x" * 100], timestamps=[1000 * (seg + 1) + i])
        log.roll()
    return log


def test_retention_ms_deletes_whole_oldest_segments_and_persists(open_log, pdir):
    log = _three_segments(open_log)
    assert [s.base_offset for s in log.segments] == [0, 3, 6, 9]
    log.close()
    log = open_log(**{"retention.ms": 1000})
    assert log.enforce_retention(now_ms=3002) == [0]  # 3002 - 2002 = 1000: not older
    assert log.log_start_offset == 3
    assert not os.path.exists(os.path.join(pdir, f"{0:020d}.log"))
    assert log.enforce_retention(now_ms=3003) == [3]
    assert log.log_start_offset == 6
    with pytest.raises(OffsetOutOfRangeError):
        log.read(5)
    assert [r.offset for r in read_all(log)] == [6, 7, 8]
    log.close()
    log = open_log(**{"retention.ms": -1})
    assert log.log_start_offset == 6 and log.log_end_offset == 9
    assert [r.offset for r in read_all(log)] == [6, 7, 8]


def test_retention_ms_can_delete_the_active_segment(open_log):
    log = open_log(**{"retention.ms": 10})
    log.append([b"a"], timestamps=[100])
    log.append([b"b"], timestamps=[101])
    assert log.enforce_retention(now_ms=10_000) == [0]
    assert log.log_start_offset == log.log_end_offset == 2
    assert log.append([b"c"], timestamps=[10_000]) == 2
    assert [r.value for r in read_all(log)] == [b"c"]


def test_retention_bytes_deletes_oldest_while_over(open_log):
    log = _three_segments(open_log)
    sizes = [s.size for s in log.segments]
    total = sum(sizes)
    log.close()
    # Allow exactly the newest two non-empty segments: the first must go, no more.
    log = open_log(**{"retention.ms": -1, "retention.bytes": sizes[1] + sizes[2]})
    assert log.size_bytes == total
    assert log.enforce_retention(now_ms=0) == [0]
    assert log.log_start_offset == 3
    assert log.enforce_retention(now_ms=0) == []
    log.close()
    log = open_log(**{"retention.ms": -1})
    assert log.log_start_offset == 3
    assert [r.offset for r in read_all(log)] == list(range(3, 9))


def test_retention_skips_segment_pinned_by_a_view(open_log):
    log = _three_segments(open_log, **{"retention.bytes": 0})
    view = log.read(0)
    try:
        assert log.enforce_retention(now_ms=0) == []
        assert log.log_start_offset == 0
    finally:
        view.release()
    assert log.enforce_retention(now_ms=0) == [0, 3, 6]
    assert log.log_start_offset == 9


def test_delete_records_before_advances_start_and_persists(open_log):
    log = _three_segments(open_log)
    assert log.delete_records_before(4) == 4
    assert [s.base_offset for s in log.segments][0] == 3  # segment 0 gone, 3 kept
    assert log.delete_records_before(2) == 4  # never moves back
    with pytest.raises(OffsetOutOfRangeError):
        log.delete_records_before(100)
    log.close()
    log = open_log(**{"retention.ms": -1})
    assert log.log_start_offset == 4
    assert [r.offset for r in read_all(log)] == [4, 5, 6, 7, 8]


def test_delete_records_before_log_end(open_log):
    log = open_log()
    log.append([b"a"], timestamps=[1])
    log.append([b"b"], timestamps=[2])
    assert log.delete_records_before(2) == 2
    assert log.log_start_offset == log.log_end_offset == 2
    assert log.append([b"c"], timestamps=[3]) == 2
    assert [r.value for r in read_all(log)] == [b"c"]


# ---------------------------------------------------------------------------- truncation


def test_truncate_to_whole_batches_appends_continue_and_survive_reopen(open_log):
    log = open_log(**{"segment.bytes": 1024})
    for i in range(30):
        log.append([b"%02da" % i + b"." * 30, b"%02db" % i], timestamps=[i, i])
    assert len(log.segments) > 2
    target_seg = log.segments[1]
    offset = target_seg.base_offset + 3  # inside a batch (batches hold 2 offsets)
    new_leo = log.truncate_to(offset)
    batch_base = offset - (offset % 2)
    assert new_leo == log.log_end_offset == batch_base
    assert [s.base_offset for s in log.segments][-1] == target_seg.base_offset
    assert log.truncate_to(10_000) == new_leo  # beyond the end: no-op
    assert log.append([b"new"], timestamps=[99]) == new_leo
    expect = [r.offset for r in read_all(log)]
    assert expect == list(range(new_leo + 1))
    log.close()
    log = open_log(**{"segment.bytes": 1024})
    assert log.recovery.clean_shutdown and log.log_end_offset == new_leo + 1
    assert [r.offset for r in read_all(log)] == expect
    assert read_all(log)[-1].value == b"new"


def test_truncate_to_zero_and_below_log_start(open_log):
    log = open_log()
    log.append([b"a", b"b"], timestamps=[1, 2])
    log.append([b"c"], timestamps=[3])
    assert log.truncate_to(0) == 0
    assert log.log_end_offset == 0
    assert log.append([b"z"], timestamps=[4]) == 0
    log.append([b"y"], timestamps=[5])
    log.delete_records_before(1)
    with pytest.raises(OffsetOutOfRangeError):
        log.truncate_to(0)


def test_truncate_with_live_view_raises_buffererror_then_works(open_log):
    log = open_log()
    log.append([b"a"], timestamps=[1])
    log.append([b"b"], timestamps=[2])
    view = log.read(0)
    with pytest.raises(BufferError):
        log.truncate_to(1)
    assert log.log_end_offset == 2
    view.release()
    assert log.truncate_to(1) == 1


def test_truncate_with_live_view_on_earlier_segment_leaves_log_unchanged(open_log):
    log = open_log()
    log.append([b"a", b"b"], timestamps=[1, 1])
    log.roll()
    log.append([b"c", b"d"], timestamps=[2, 2])
    view = log.read(0)
    try:
        with pytest.raises(BufferError):
            log.truncate_to(1)
        assert log.log_end_offset == 4
    finally:
        view.release()


# ---------------------------------------------------------------------------- reopen


def test_clean_reopen_restores_everything(open_log, pdir):
    cfg = {"segment.bytes": 1500, "index.interval.bytes": 100, "retention.ms": -1}
    log = open_log(**cfg)
    expect = []
    for i in range(50):
        log.append(
            [b"v%d" % i] * 3,
            keys=[b"k", None, b"k2"],
            headers=[[("h", b"%d" % i)], [], []],
            timestamps=[i, i + 1, i + 2],
        )
    log.delete_records_before(5)
    expect = tuples(read_all(log))
    leo, start, nseg = log.log_end_offset, log.log_start_offset, len(log.segments)
    ts_answers = [log.offset_for_timestamp(t) for t in range(0, 60, 7)]
    log.close()
    assert os.path.exists(os.path.join(pdir, ".clean-shutdown"))
    log = open_log(**cfg)
    assert not os.path.exists(os.path.join(pdir, ".clean-shutdown"))
    rec = log.recovery
    assert rec.clean_shutdown and rec.segments_scanned == 0 and rec.bytes_scanned == 0
    assert rec.rebuilt_indexes == [] and not rec.dropped_anything() and rec.corrupt_ranges == []
    assert (log.log_end_offset, log.log_start_offset, len(log.segments)) == (leo, start, nseg)
    assert tuples(read_all(log)) == expect
    assert [log.offset_for_timestamp(t) for t in range(0, 60, 7)] == ts_answers
    assert log.append([b"after"], timestamps=[100]) == leo


def test_unclean_reopen_of_intact_log_keeps_everything(open_log, pdir):
    log = open_log(**{"segment.bytes": 1500})
    for i in range(30):
        log.append([b"v%d" % i], timestamps=[i])
    expect = tuples(read_all(log))
    log.close()
    os.unlink(os.path.join(pdir, ".clean-shutdown"))
    log = open_log(**{"segment.bytes": 1500})
    assert not log.recovery.clean_shutdown
    assert not log.recovery.dropped_anything() and log.recovery.corrupt_ranges == []
    assert tuples(read_all(log)) == expect


def test_context_manager_closes_cleanly(pdir):
    with PartitionLog.open(pdir) as log:
        log.append([b"a"], timestamps=[1])
    assert os.path.exists(os.path.join(pdir, ".clean-shutdown"))
    with pytest.raises(ValueError):
        log.append([b"b"])
    with pytest.raises(ValueError):
        log.read(0)


# ---------------------------------------------------------------------------- client batches


def _kafka_python_batch(codec: int, n: int = 3, transactional: bool = False) -> bytes:
    from kafka.record.default_records import DefaultRecordBatchBuilder

    pid = (4242, 1, 0) if transactional else (-1, -1, -1)
    b = DefaultRecordBatchBuilder(2, codec, transactional, *pid, 1 << 20)
    for i in range(n):
        assert (
            b.append(i, 1_700_000_000_000 + i, b"k%d" % i, b"value-%d" % i * 5, [("h", b"%d" % i)])
            is not None
        )
    return bytes(b.build())


@pytest.mark.parametrize("codec", [0, 1, 3, 4], ids=["none", "gzip", "lz4", "zstd"])
def test_append_batch_kafka_python_stamped_crc_untouched(open_log, codec):
    log = open_log()
    log.append([b"pre"], timestamps=[1])
    log.partition_leader_epoch = 7
    raw = _kafka_python_batch(codec)
    base = log.append_batch(raw)
    assert base == 1 and log.log_end_offset == 4
    with log.read(base) as r:
        stored = r.tobytes()
    assert len(stored) == len(raw)
    assert struct.unpack_from(">q", stored, 0)[0] == 1
    assert struct.unpack_from(">i", stored, 12)[0] == 7
    assert stored[8:12] == raw[8:12]
    assert stored[16:] == raw[16:]  # magic, CRC and everything it covers: byte-identical
    record.check_batch(stored)
    got = tuples(read_all(log, 1))
    assert got == [
        (1 + i, 1_700_000_000_000 + i, b"k%d" % i, b"value-%d" % i * 5, [("h", b"%d" % i)])
        for i in range(3)
    ]


def test_append_batch_idempotent_batch_keeps_producer_fields(open_log):
    log = open_log()
    raw = _kafka_python_batch(0, transactional=True)
    log.append_batch(raw)
    with log.read(0) as r:
        ((h, v),) = list(r.batches())
        del v
    assert (h.producer_id, h.producer_epoch, h.base_sequence, h.is_transactional) == (
        4242,
        1,
        0,
        True,
    )


def test_log_append_time_topic(open_log):
    import time

    log = open_log(**{"message.timestamp.type": "LogAppendTime"})
    t0 = int(time.time() * 1000)
    log.append([b"a", b"b"], timestamps=[5, 6])
    raw = _kafka_python_batch(0, n=1)
    log.append_batch(raw)
    t1 = int(time.time() * 1000)
    with log.read(0) as r:
        headers = []
        for h, v in r.batches():
            record.check_batch(v)  # CRC recomputed after the attribute/max-timestamp rewrite
            headers.append(h)
            del v
        recs = r.records()
    assert [h.timestamp_type for h in headers] == [1, 1]
    for h in headers:
        assert t0 <= h.max_timestamp <= t1
    assert [r.timestamp for r in recs] == [headers[0].max_timestamp] * 2 + [
        headers[1].max_timestamp
    ]
    # Producers may not send LogAppendTime batches themselves.
    forged = bytearray(raw)
    struct.pack_into(">h", forged, 21, 0x08)
    struct.pack_into(">I", forged, 17, record.crc32c(bytes(forged[21:])))
    from headwater.errors import InvalidTimestampError

    with pytest.raises(InvalidTimestampError):
        log.append_batch(bytes(forged))


# ---------------------------------------------------------------------------- views


def test_view_pins_segment_against_close(open_log):
    log = open_log()
    log.append([b"a"], timestamps=[1])
    r = log.read(0)
    view = r.view
    assert log.segments[0].log.exported_views >= 1
    with pytest.raises(BufferError):
        log.segments[0].log.truncate(0)
    assert bytes(view[:8]) == struct.pack(">q", 0)
    r.release()
    assert r.view is None and log.segments[0].log.exported_views == 0


# ---------------------------------------------------------------------------- bad input


def _disk_state(log: PartitionLog):
    """(LEO, data bytes, {segment file: data}) with the preallocated zero tail stripped and
    empty segment files left out: what a rejected append must not change."""
    files = {}
    for name in sorted(os.listdir(log.path)):
        if name.endswith(".log"):
            data = open(os.path.join(log.path, name), "rb").read().rstrip(b"\0")
            if data:
                files[name] = data
    return log.log_end_offset, log.size_bytes, files


def _client_batch(values=(b"a", b"b")) -> bytes:
    return bytes(
        record.build_batch(
            list(values), keys=[b"k"] + [None] * (len(values) - 1), timestamps=[5] * len(values)
        )
    )


def _recrc(b: bytearray) -> bytes:
    struct.pack_into(">I", b, 17, record.crc32c(bytes(b[21:])))
    return bytes(b)


def _mutated(kind: str) -> bytes:
    raw = bytearray(_client_batch())
    if kind == "magic":
        raw[16] = 1
    elif kind == "magic3":
        raw[16] = 3
    elif kind == "crc":
        raw[-1] ^= 0x01
    elif kind == "crc_field":
        raw[17] ^= 0x80
    elif kind == "length_overflow":
        struct.pack_into(">i", raw, 8, 0x7FFFFFFF)
    elif kind == "length_beyond_buffer":
        struct.pack_into(">i", raw, 8, len(raw) - 12 + 1)
    elif kind == "length_negative":
        struct.pack_into(">i", raw, 8, -1)
    elif kind == "length_short":
        struct.pack_into(">i", raw, 8, 10)
    elif kind == "truncated":
        return bytes(raw[:-3])
    elif kind == "header_only":
        return bytes(raw[:40])
    elif kind == "trailing_bytes":
        return bytes(raw) + b"\0\0\0"
    elif kind == "two_batches":
        return bytes(raw) + bytes(raw)
    elif kind == "count_mismatch":
        struct.pack_into(">i", raw, 23, 5)
        return _recrc(raw)
    elif kind == "count_zero":
        struct.pack_into(">i", raw, 57, 0)
        struct.pack_into(">i", raw, 23, -1)
        return _recrc(raw)
    elif kind == "count_more_than_records":
        struct.pack_into(">i", raw, 57, 3)
        struct.pack_into(">i", raw, 23, 2)
        return _recrc(raw)
    elif kind == "control":
        struct.pack_into(">h", raw, 21, 0x30)
        return _recrc(raw)
    elif kind == "bad_codec":
        struct.pack_into(">h", raw, 21, 0x07)
        return _recrc(raw)
    elif kind == "idempotent_without_sequence":
        struct.pack_into(">q", raw, 43, 77)
        return _recrc(raw)
    elif kind == "empty":
        return b""
    return bytes(raw)


BAD_BATCHES = [
    "magic",
    "magic3",
    "crc",
    "crc_field",
    "length_overflow",
    "length_beyond_buffer",
    "length_negative",
    "length_short",
    "truncated",
    "header_only",
    "trailing_bytes",
    "two_batches",
    "count_mismatch",
    "count_zero",
    "count_more_than_records",
    "control",
    "bad_codec",
    "idempotent_without_sequence",
    "empty",
]


@pytest.mark.parametrize("kind", BAD_BATCHES)
def test_append_batch_bad_input_rejected_log_unchanged(open_log, kind):
    from headwater.errors import HeadwaterError

    log = open_log()
    log.append([b"existing"], timestamps=[1])
    before = _disk_state(log)
    with pytest.raises((HeadwaterError, ValueError)) as info:
        log.append_batch(_mutated(kind))
    assert _disk_state(log) == before, f"{kind}: log changed although {info.value!r} was raised"
    assert log.append([b"next"], timestamps=[2]) == 1
    assert [r.value for r in read_all(log)] == [b"existing", b"next"]


def test_bad_input_error_types(open_log):
    from headwater.errors import CorruptRecordError, InvalidCrcError, InvalidRecordError

    log = open_log()
    with pytest.raises(CorruptRecordError):
        log.append_batch(_mutated("magic"))
    with pytest.raises(InvalidCrcError):
        log.append_batch(_mutated("crc"))
    with pytest.raises(CorruptRecordError):
        log.append_batch(_mutated("length_overflow"))
    with pytest.raises(InvalidRecordError):
        log.append_batch(_mutated("control"))
    with pytest.raises(InvalidRecordError):
        log.append_batch(_mutated("count_mismatch"))
    assert log.log_end_offset == 0


def test_message_too_large_append_and_append_batch(open_log):
    from headwater.errors import MessageTooLargeError

    log = open_log(**{"max.message.bytes": 500})
    log.append([b"ok"], timestamps=[1])
    before = _disk_state(log)
    with pytest.raises(MessageTooLargeError):
        log.append([b"x" * 600], timestamps=[2])
    with pytest.raises(MessageTooLargeError):
        log.append([b"x" * 600], keys=[b"k"], timestamps=[2])
    with pytest.raises(MessageTooLargeError):
        log.append([b"x" * 600], headers=[[]], timestamps=[2])
    with pytest.raises(MessageTooLargeError):
        log.append([os.urandom(600)], compression="gzip", timestamps=[2])
    with pytest.raises(MessageTooLargeError):
        log.append(np.array([b"y" * 600], dtype="S600"), timestamp=2)
    with pytest.raises(MessageTooLargeError):
        log.append_batch(_client_batch([b"z" * 600]))
    assert _disk_state(log) == before
    # Compression is applied before the size check: a compressible batch fits.
    log.append([b"x" * 600], compression="gzip", timestamps=[3])
    assert log.log_end_offset == 2


def test_message_exactly_max_bytes_accepted(open_log):
    raw = _client_batch([b"q" * 100])
    log = open_log(**{"max.message.bytes": len(raw)})
    assert log.append_batch(raw) == 0
    from headwater.errors import MessageTooLargeError

    with pytest.raises(MessageTooLargeError):
        log.append_batch(_client_batch([b"q" * 101]))


BAD_APPENDS = {
    "negative_record_timestamp": dict(values=[b"a", b"b"], timestamps=[1, -1]),
    "negative_batch_timestamp": dict(values=[b"a"], timestamp=-5),
    "str_value": dict(values=["text"]),
    "str_key": dict(values=[b"a"], keys=["k"]),
    "str_header_value": dict(values=[b"a"], headers=[[("h", "str")]]),
    "int_value": dict(values=[5]),
    "single_bytes_value": dict(values=b"abc"),
    "too_many_keys": dict(values=[b"a"], keys=[b"a", b"b"]),
    "too_few_keys": dict(values=[b"a", b"b"], keys=[b"a"]),
    "too_many_headers": dict(values=[b"a"], headers=[[], []]),
    "too_few_timestamps": dict(values=[b"a", b"b"], timestamps=[1]),
    "too_many_timestamps": dict(values=[b"a"], timestamps=[1, 2]),
    "unknown_codec": dict(values=[b"a"], compression="brotli"),
    "no_records": dict(values=[]),
}


@pytest.mark.parametrize("name", list(BAD_APPENDS))
def test_append_bad_input_rejected_log_unchanged(open_log, name):
    from headwater.errors import HeadwaterError

    log = open_log()
    log.append([b"existing"], timestamps=[1])
    before = _disk_state(log)
    with pytest.raises((HeadwaterError, ValueError, TypeError)):
        log.append(**BAD_APPENDS[name])
    assert _disk_state(log) == before
    assert log.append([b"next"], timestamps=[2]) == 1


def test_closed_log_refuses_everything(open_log):
    log = open_log()
    log.append([b"a"], timestamps=[1])
    log.close()
    log.close()  # idempotent
    for call in (
        lambda: log.append([b"b"]),
        lambda: log.append_batch(_client_batch()),
        lambda: log.read(0),
        lambda: log.truncate_to(0),
        lambda: log.delete_records_before(1),
        lambda: log.flush(),
        lambda: log.roll(),
        lambda: log.enforce_retention(),
    ):
        with pytest.raises(ValueError, match="closed"):
            call()
