"""A .log segment written by headwater is readable by kafka-python's reader, straight from disk.

Goal: the files are Kafka's format byte for byte, so a Kafka reader needs nothing from us.
Method: append batches of every shape (keys, null values, headers, explicit timestamps, each
codec, a client-built batch, numpy fixed-width values) through PartitionLog, close it, read the
`.log` file's bytes with plain open(), and walk them with kafka-python's MemoryRecords: every
batch's CRC validates, offsets are contiguous, and every record equals what was appended.
"""

from __future__ import annotations

import glob
import os

import pytest
from kafka.record.default_records import DefaultRecordBatchBuilder
from kafka.record.memory_records import MemoryRecords

from headwater.log import PartitionLog

np = pytest.importorskip("numpy")


def test_segment_file_decodes_with_kafka_python(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = str(tmp_path / "t-0")
    expected: list[tuple[int, bytes | None, bytes | None, list[tuple[str, bytes]], int]] = []
    log = PartitionLog.open(path, **{"flush.policy": "none"})
    try:
        first = log.append([b"v0", None, b"v2"], keys=[b"k0", b"k1", None], timestamps=[1000, 1001, 1002])
        expected += [(first, b"k0", b"v0", [], 1000), (first + 1, b"k1", None, [], 1001), (first + 2, None, b"v2", [], 1002)]
        first = log.append([b"h"], headers=[[("a", b"1"), ("b", b"2")]], timestamps=[2000])
        expected.append((first, None, b"h", [("a", b"1"), ("b", b"2")], 2000))
        for codec in ("gzip", "snappy", "lz4", "zstd"):
            vals = [codec.encode() * 50 + b"%d" % i for i in range(20)]
            first = log.append(vals, keys=[b"k%d" % i for i in range(20)], timestamps=[3000 + i for i in range(20)], compression=codec)
            expected += [(first + i, b"k%d" % i, vals[i], [], 3000 + i) for i in range(20)]
        builder = DefaultRecordBatchBuilder(magic=2, compression_type=0, is_transactional=False, producer_id=-1, producer_epoch=-1, base_sequence=-1, batch_size=1 << 20)
        for i in range(5):
            builder.append(i, timestamp=4000 + i, key=b"c%d" % i, value=b"client %d" % i, headers=[])
        first = log.append_batch(bytes(builder.build()))
        expected += [(first + i, b"c%d" % i, b"client %d" % i, [], 4000 + i) for i in range(5)]
        arr = np.array([b"%06d" % i for i in range(100)], dtype="S6")
        first = log.append(arr, timestamp=5000)
        expected += [(first + i, None, b"%06d" % i, [], 5000) for i in range(100)]
    finally:
        log.close()

    files = sorted(glob.glob(os.path.join(path, "*.log")))
    assert [os.path.basename(f) for f in files] == ["00000000000000000000.log"]
    with open(files[0], "rb") as f:
        data = f.read()

    records = MemoryRecords(data)
    got = []
    next_offset = 0
    while records.has_next():
        batch = records.next_batch()
        assert batch.validate_crc()
        assert batch.base_offset == next_offset
        for rec in batch:
            got.append((rec.offset, rec.key, rec.value, [(k, v) for k, v in rec.headers], rec.timestamp))
        next_offset = batch.base_offset + batch.last_offset_delta + 1
    assert got == expected
