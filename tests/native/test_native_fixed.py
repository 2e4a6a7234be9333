"""The fixed-width append path (numpy S<n>) writes exactly the bytes build_batch writes.

Goal: hw_batch_write_fixed, a hand-laid record writer, cannot drift from the general builder.
Method: for record counts around the offset-delta varint boundaries (1, 2 and 3 bytes) and a few
widths, append with Segment.append_fixed and compare the stored batch with build_batch's output,
then decode it with kafka-python's reader as an independent oracle.
"""

from __future__ import annotations

import pytest

np = pytest.importorskip("numpy")
from kafka.record.default_records import DefaultRecordBatch  # noqa: E402

from headwater._native import _native  # noqa: E402


@pytest.mark.parametrize("count", [1, 63, 64, 65, 8191, 8192, 8193])
@pytest.mark.parametrize("width", [1, 100, 300])
def test_fixed_equals_build_batch(tmp_path, count: int, width: int) -> None:  # type: ignore[no-untyped-def]
    values = [bytes([65 + i % 26]) * width for i in range(count)]
    arr = np.array(values, dtype=f"S{width}")
    expected = _native.build_batch(values, timestamp=1700000000000, base_offset=7, partition_leader_epoch=3)
    seg = _native.Segment(str(tmp_path / "0.log"), 1 << 26, True)
    try:
        pos, size = seg.append_fixed(arr, width, count, 1700000000000, 7, 3)
        got = seg.read(pos, size)
    finally:
        seg.close()
    assert got == expected
    batch = DefaultRecordBatch(bytearray(got))
    assert batch.validate_crc()
    recs = list(batch)
    assert [r.value for r in recs] == values and recs[-1].offset == 7 + count - 1
