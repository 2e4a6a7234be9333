"""The C index core through its binding: OffsetIndex (.index) and TimeIndex (.timeindex).

Goal: prove the on-disk layout of kafka-spec.md b.1 (8-byte big-endian relative offset +
position; 12-byte big-endian timestamp + relative offset), the append rules (ignore non-increasing
keys, HW_ERR_FULL at capacity -> False, HW_ERR_OVERFLOW for relative offsets outside int32 ->
SegmentOffsetOverflowError), lookups (largest entry <= target, also across the 8 KiB warm/cold
boundary), the structural check that recovery relies on, trim on close, and reopen semantics
(entry count = file length / entry size).

Method: indexes are created in tmp files; file bytes are compared with struct-packed expected
bytes; lookups are compared with a bisect over the entries the test itself appended.
"""

from __future__ import annotations

import bisect
import os
import struct

import pytest

from headwater.errors import SegmentOffsetOverflowError

BASE = 1000


@pytest.fixture
def paths(tmp_path):
    return str(tmp_path / "x.index"), str(tmp_path / "x.timeindex")


def test_offset_index_file_layout_and_trim(native, paths):
    ip, _ = paths
    ix = native.OffsetIndex(ip, BASE, 8 * 10)
    assert (ix.entries, ix.max_entries, ix.base_offset) == (0, 10, BASE)
    assert os.path.getsize(ip) == 80  # preallocated
    assert ix.append(BASE + 5, 0) is True
    assert ix.append(BASE + 9, 4096) is True
    ix.close(trim=True)
    assert open(ip, "rb").read() == struct.pack(">iiii", 5, 0, 9, 4096)
    sealed = native.OffsetIndex(ip, BASE, 0)
    try:
        assert sealed.entries == 2 and sealed.max_entries == 2 and sealed.is_full
        assert sealed.entry(1) == (BASE + 9, 4096)
        with pytest.raises(IndexError):
            sealed.entry(2)
    finally:
        sealed.close()


def test_time_index_file_layout(native, paths):
    _, tp = paths
    ti = native.TimeIndex(tp, BASE, 12 * 4)
    assert ti.last() == (-1, BASE)
    assert ti.append(1_700_000_000_000, BASE + 3)
    assert ti.append(1_700_000_000_000, BASE + 4)  # not strictly greater: ignored, True
    assert ti.append(1_700_000_000_001, BASE + 7)
    assert ti.entries == 2 and ti.last() == (1_700_000_000_001, BASE + 7)
    ti.close(trim=True)
    assert open(tp, "rb").read() == struct.pack(">qiqi", 1_700_000_000_000, 3, 1_700_000_000_001, 7)


def test_offset_index_ignores_non_increasing_and_fills(native, paths):
    ix = native.OffsetIndex(paths[0], BASE, 8 * 3)
    try:
        assert ix.append(BASE + 1, 10)
        assert ix.append(BASE + 1, 20)  # same offset: ignored
        assert ix.append(BASE, 30)  # lower: ignored
        assert ix.entries == 1
        assert ix.append(BASE + 2, 40) and ix.append(BASE + 3, 50)
        assert ix.is_full
        assert ix.append(BASE + 4, 60) is False  # HW_ERR_FULL
        assert ix.entries == 3
    finally:
        ix.close()


def test_index_overflow_status(native, paths):
    ix = native.OffsetIndex(paths[0], BASE, 64)
    ti = native.TimeIndex(paths[1], BASE, 64)
    try:
        with pytest.raises(SegmentOffsetOverflowError):
            ix.append(BASE - 1, 0)
        with pytest.raises(SegmentOffsetOverflowError):
            ix.append(BASE + 2**31, 0)
        with pytest.raises(SegmentOffsetOverflowError):
            ix.append(BASE + 1, 2**32)  # position beyond uint32
        assert ix.append(BASE + 2**31 - 1, 2**32 - 1)  # the largest that fits
        assert ix.entry(0) == (BASE + 2**31 - 1, 2**32 - 1)
        with pytest.raises(SegmentOffsetOverflowError):
            ti.append(5, BASE + 2**31)
        with pytest.raises(SegmentOffsetOverflowError):
            ti.append(5, BASE - 1)
        assert ix.entries == 1 and ti.entries == 0
    finally:
        ix.close()
        ti.close()


@pytest.mark.parametrize("n", [0, 1, 2, 1023, 1024, 1025, 3000])
def test_offset_lookup_matches_bisect_across_warm_boundary(native, paths, n):
    ix = native.OffsetIndex(paths[0], BASE, 8 * max(n, 1))
    try:
        offsets = [BASE + 3 * i + 2 for i in range(n)]
        for i, o in enumerate(offsets):
            assert ix.append(o, 100 * i + 7)
        probes = {BASE, BASE + 1, BASE + 2, BASE + 3 * n + 5, BASE + 2**31 - 1}
        probes |= {o + d for o in offsets[:: max(1, n // 50)] for d in (-1, 0, 1)}
        for target in sorted(probes):
            i = bisect.bisect_right(offsets, target) - 1
            expect = (BASE, 0) if i < 0 else (offsets[i], 100 * i + 7)
            assert ix.lookup(target) == expect, target
        for off in (BASE, offsets[n // 2] if n else BASE):
            assert ix.entry_index(off) == bisect.bisect_left(offsets, off)
    finally:
        ix.close()


@pytest.mark.parametrize("n", [0, 1, 682, 683, 684, 2000])
def test_time_lookup_matches_bisect(native, paths, n):
    ti = native.TimeIndex(paths[1], BASE, 12 * max(n, 1))
    try:
        stamps = [10_000 + 10 * i for i in range(n)]
        for i, t in enumerate(stamps):
            assert ti.append(t, BASE + i)
        for target in [0, 9_999, 10_000, 10_001, 10_000 + 10 * n, 2**62] + stamps[
            :: max(1, n // 40)
        ]:
            i = bisect.bisect_right(stamps, target) - 1
            expect = (-1, BASE) if i < 0 else (stamps[i], BASE + i)
            assert ti.lookup(target) == expect, target
        if n:
            assert ti.entry_index(BASE + n // 2) == n // 2
    finally:
        ti.close()


def test_index_check_structural(native, paths):
    ip, tp = paths
    with open(ip, "wb") as f:
        f.write(struct.pack(">iiii", 1, 0, 5, 200))
    ix = native.OffsetIndex(ip, BASE, 0)
    try:
        assert ix.check(201) is True
        assert ix.check(200) is False  # position must lie inside the segment
    finally:
        ix.close(trim=False)
    for bad in (
        struct.pack(">iiii", 5, 0, 5, 100),
        struct.pack(">iiii", 5, 0, 3, 100),
        struct.pack(">ii", -1, 0),
    ):
        with open(ip, "wb") as f:
            f.write(bad)
        ix = native.OffsetIndex(ip, BASE, 0)
        try:
            assert ix.check(1 << 20) is False
        finally:
            ix.close(trim=False)
    with open(tp, "wb") as f:
        f.write(struct.pack(">qiqi", 10, 0, 10, 1))  # timestamps not strictly increasing
    ti = native.TimeIndex(tp, BASE, 0)
    try:
        assert ti.check(1 << 20) is False
    finally:
        ti.close(trim=False)


def test_untrimmed_index_reopens_with_zero_entries_counted(native, paths):
    """After a crash an index is its preallocated length: entry count = length / 8, the zero
    entries make it fail the structural check (so recovery rebuilds it)."""
    ip, _ = paths
    ix = native.OffsetIndex(ip, BASE, 8 * 16)
    ix.append(BASE + 3, 100)
    ix.append(BASE + 6, 200)
    ix.close(trim=False)
    assert os.path.getsize(ip) == 128
    again = native.OffsetIndex(ip, BASE, 0)
    try:
        assert again.entries == 16
        assert again.check(1 << 20) is False
    finally:
        again.close(trim=False)


def test_partial_entry_is_ignored_on_open(native, paths):
    ip, _ = paths
    with open(ip, "wb") as f:
        f.write(struct.pack(">ii", 1, 0) + b"\x00\x00\x00")
    ix = native.OffsetIndex(ip, BASE, 0)
    try:
        assert ix.entries == 1 and ix.check(10)
    finally:
        ix.close(trim=True)
    assert os.path.getsize(ip) == 8


def test_closed_index_refuses(native, paths):
    ix = native.OffsetIndex(paths[0], BASE, 64)
    ix.close()
    ix.close()
    with pytest.raises(ValueError):
        ix.append(BASE + 1, 0)
    with pytest.raises(ValueError):
        ix.lookup(BASE)
    with pytest.raises(ValueError):
        ix.flush()


def test_truncate_entries(native, paths):
    ix = native.OffsetIndex(paths[0], BASE, 64)
    try:
        for i in range(5):
            ix.append(BASE + i + 1, 10 * i)
        ix.truncate_entries(7)  # more than present: no-op
        assert ix.entries == 5
        ix.truncate_entries(2)
        assert ix.entries == 2 and ix.lookup(BASE + 100) == (BASE + 2, 10)
        assert ix.append(BASE + 3, 99)
        assert ix.entry(2) == (BASE + 3, 99)
    finally:
        ix.close()
