"""PartitionLog.append_one and read_messages: the single-record lanes of a tailing producer and
consumer (issue 3's latency bar) behave exactly as append() and read() + decode_messages().

Goal: everything a caller can observe is the same as on the general path: the bytes in the
segment, offsets, producer state (duplicates, sequence gaps, epoch fencing), flush decisions,
roll rules, errors with nothing written; and the read lane returns what read() would, or None
(hand over to read()) whenever a transaction or an aborted one could change what is delivered.

Method: two logs in tmp directories driven with the same calls, one through append() and one
through append_one(); their .log bytes and producer state compared directly. Reads are compared
with read() of the same log, decoded by decode_messages over the returned view.
"""

from __future__ import annotations

import glob
import os

import pytest

from headwater._native._native import decode_messages
from headwater.errors import (
    InvalidProducerEpochError,
    InvalidTimestampError,
    KafkaStorageError,
    LogOfflineError,
    MessageTooLargeError,
    OffsetOutOfRangeError,
    OutOfOrderSequenceError,
)
from headwater.log import PartitionLog
from headwater.log.partition_log import READ_COMMITTED, READ_UNCOMMITTED, _decompress_section

TS = 1_700_000_000_000
PID, EPOCH = 1000, 2


def _log_bytes(path: str) -> bytes:
    (f,) = sorted(glob.glob(os.path.join(path, "*.log")))[-1:]
    with open(f, "rb") as fh:
        data = fh.read()
    return data.rstrip(b"\0")


CASES = [
    (b"v", None, TS),
    (None, None, TS + 1),
    (b"", b"", TS + 2),
    (b"x" * 400, b"key", TS + 3),
    (None, b"tombstone", TS + 4),
]


@pytest.mark.parametrize("idempotent", [False, True])
def test_append_one_writes_what_append_writes(tmp_path, idempotent) -> None:
    cfg = {"flush.policy": "none"}
    slow = PartitionLog.open(str(tmp_path / "slow"), **cfg)
    fast = PartitionLog.open(str(tmp_path / "fast"), **cfg)
    try:
        for seq, (value, key, ts) in enumerate(CASES):
            pid = (PID, EPOCH, seq) if idempotent else (-1, -1, -1)
            a = slow.append([value], None if key is None else [key], timestamps=[ts], producer_id=pid[0], producer_epoch=pid[1], base_sequence=pid[2])
            b = fast.append_one(value, key, ts, *pid)
            assert a == b == seq
        assert fast.log_end_offset == slow.log_end_offset == len(CASES)
        if idempotent:
            assert fast.producer_state.last_entry(PID) == slow.producer_state.last_entry(PID)
        with fast.read(0) as r:
            assert [(m.offset(), m.key(), m.value(), m.timestamp()[1]) for m in decode_messages(r.view, 0, "t", 0)] == [
                (i, k, v, ts) for i, (v, k, ts) in enumerate(CASES)
            ]
    finally:
        slow.close()
        fast.close()
    assert _log_bytes(str(tmp_path / "fast")) == _log_bytes(str(tmp_path / "slow"))


def test_append_one_default_timestamp_is_now(tmp_path) -> None:
    import time

    log = PartitionLog.open(str(tmp_path / "p"), **{"flush.policy": "none"})
    try:
        before = int(time.time() * 1000)
        log.append_one(b"v")
        after = int(time.time() * 1000)
        with log.read(0) as r:
            (m,) = decode_messages(r.view, 0, "t", 0)
        assert before <= m.timestamp()[1] <= after and m.timestamp()[0] == 1
    finally:
        log.close()


def test_append_one_producer_state_rules(tmp_path) -> None:
    log = PartitionLog.open(str(tmp_path / "p"), **{"flush.policy": "none"})
    try:
        assert log.append_one(b"a", None, TS, PID, EPOCH, 0) == 0
        assert log.append_one(b"b", None, TS, PID, EPOCH, 1) == 1
        leo, size = log.log_end_offset, log.size_bytes
        # A retry of either: the original offset, nothing written.
        assert log.append_one(b"a", None, TS, PID, EPOCH, 0) == 0
        assert log.append_one(b"b", None, TS, PID, EPOCH, 1) == 1
        with pytest.raises(OutOfOrderSequenceError):
            log.append_one(b"c", None, TS, PID, EPOCH, 5)
        with pytest.raises(InvalidProducerEpochError):
            log.append_one(b"c", None, TS, PID, EPOCH - 1, 2)
        assert (log.log_end_offset, log.size_bytes) == (leo, size)
        # A new epoch restarts at 0, through either lane.
        assert log.append_one(b"c", None, TS, PID, EPOCH + 1, 0) == 2
        assert log.append([b"d"], producer_id=PID, producer_epoch=EPOCH + 1, base_sequence=1) == 3
        assert log.append_one(b"e", None, TS, PID, EPOCH + 1, 2) == 4
        assert [m.last_seq for m in log.producer_state.last_entry(PID).batch_metadata] == [0, 1, 2]
    finally:
        log.close()


def test_append_one_errors_write_nothing(tmp_path) -> None:
    log = PartitionLog.open(str(tmp_path / "p"), **{"flush.policy": "none", "max.message.bytes": 200})
    try:
        with pytest.raises(MessageTooLargeError):
            log.append_one(b"x" * 300)
        with pytest.raises(TypeError):
            log.append_one(12)  # type: ignore[arg-type]
        with pytest.raises(InvalidTimestampError):
            log.append_one(b"v", None, -5)
        assert (log.log_end_offset, log.size_bytes) == (0, 0)
        assert log.producer_state.last_entry(PID) is None
    finally:
        log.close()
    with pytest.raises(ValueError):
        log.append_one(b"v")  # closed


def test_append_one_flushes_as_append_does(tmp_path) -> None:
    # flush.policy=batch: the recovery point follows every append (the shared helper decides).
    log = PartitionLog.open(str(tmp_path / "p"), **{"flush.policy": "batch"})
    try:
        log.append_one(b"a", None, TS)
        assert log.recovery_point == 1
        log.append_one(b"b", None, TS)
        assert log.recovery_point == 2
    finally:
        log.close()
    log = PartitionLog.open(str(tmp_path / "q"), **{"flush.policy": "interval", "flush.messages": 2, "flush.ms": 10**9})
    try:
        log.append_one(b"a", None, TS)
        rp = log.recovery_point
        log.append_one(b"b", None, TS)
        assert rp == 0 and log.recovery_point == 2
    finally:
        log.close()


def test_append_one_rolls_as_append_does(tmp_path) -> None:
    cfg = {"flush.policy": "none", "segment.bytes": 1024}
    slow = PartitionLog.open(str(tmp_path / "slow"), **cfg)
    fast = PartitionLog.open(str(tmp_path / "fast"), **cfg)
    try:
        for i in range(60):
            slow.append([b"v" * 50], timestamps=[TS + i])
            fast.append_one(b"v" * 50, None, TS + i)
        assert [s.base_offset for s in fast.segments] == [s.base_offset for s in slow.segments]
        assert len(fast.segments) > 1
    finally:
        slow.close()
        fast.close()


@pytest.mark.parametrize(
    "config",
    [
        {"compression.type": "gzip"},
        {"message.timestamp.type": "LogAppendTime"},
        {"cleanup.policy": "compact"},
    ],
)
def test_append_one_topic_rules_go_through_append(tmp_path, config) -> None:
    cfg = {"flush.policy": "none", **config}
    slow = PartitionLog.open(str(tmp_path / "slow"), **cfg)
    fast = PartitionLog.open(str(tmp_path / "fast"), **cfg)
    try:
        if config.get("cleanup.policy") == "compact":
            with pytest.raises(Exception) as slow_err:
                slow.append([b"v"], timestamps=[TS])
            with pytest.raises(type(slow_err.value)):
                fast.append_one(b"v", None, TS)
        a = slow.append([b"v"], [b"k"], timestamps=[TS])
        b = fast.append_one(b"v", b"k", TS)
        assert a == b
        with slow.read(a) as rs, fast.read(b) as rf:
            ms = decode_messages(rs.view, a, "t", 0, None) if not config.get("compression.type") else list(rs)
            mf = decode_messages(rf.view, b, "t", 0, None) if not config.get("compression.type") else list(rf)
            if config.get("compression.type"):
                assert [(r.key, r.value) for r in mf] == [(r.key, r.value) for r in ms] == [(b"k", b"v")]
            else:
                assert [(m.key(), m.value(), m.timestamp()[0]) for m in mf] == [(m.key(), m.value(), m.timestamp()[0]) for m in ms]
    finally:
        slow.close()
        fast.close()


# ---------------------------------------------------------------- read_messages


def _slow_read(log: PartitionLog, offset: int, max_bytes: int, isolation: int) -> tuple[list, int]:
    with log.read(offset, max_bytes, isolation_level=isolation) as r:
        if r.view is None:
            return [], -1
        return decode_messages(r.view, offset, "t", 3, _decompress_section), r.next_offset


def _tuples(msgs: list) -> list:
    return [(m.topic(), m.partition(), m.offset(), m.key(), m.value(), m.headers(), m.timestamp()) for m in msgs]


@pytest.mark.parametrize("isolation", [READ_UNCOMMITTED, READ_COMMITTED])
def test_read_messages_equals_read_and_decode(tmp_path, isolation) -> None:
    log = PartitionLog.open(str(tmp_path / "p"), **{"flush.policy": "none"})
    try:
        log.append([b"a", b"b"], [b"k", None], headers=[[("h", b"1")], []], timestamps=[TS, TS + 1])
        log.append_one(b"c", None, TS + 2)
        log.append([b"z" * 100] * 5, compression="gzip", timestamps=[TS] * 5)
        log.append_one(None, b"k2", TS + 3)
        leo = log.log_end_offset
        for offset in range(leo):
            for max_bytes in (1, 100, 1 << 20):
                got = log.read_messages(offset, max_bytes, "t", 3, isolation_level=isolation)
                assert got is not None
                msgs, nxt = got
                want, want_next = _slow_read(log, offset, max_bytes, isolation)
                assert _tuples(msgs) == _tuples(want)
                assert nxt == want_next
        assert log.read_messages(leo, 1 << 20, "t", 3, isolation_level=isolation) == ([], -1)
    finally:
        log.close()


def test_read_messages_hands_over_to_read(tmp_path) -> None:
    log = PartitionLog.open(str(tmp_path / "p"), **{"flush.policy": "none", "segment.bytes": 1024})
    try:
        for i in range(40):
            log.append_one(b"v" * 50, None, TS + i)
        assert len(log.segments) > 1
        # An offset in an older segment, or outside the log: read() (which raises) decides.
        assert log.read_messages(0, 1 << 20, "t", 0) is None
        assert log.read_messages(log.log_end_offset + 1, 1 << 20, "t", 0) is None
        with pytest.raises(OffsetOutOfRangeError):
            log.read(log.log_end_offset + 1)
        assert log.read_messages(log.log_end_offset - 1, 1 << 20, "t", 0, isolation_level=7) is None
        # An open transaction: its records must wait for the LSO under read_committed.
        first = log.log_end_offset
        log.append([b"t"], producer_id=PID, producer_epoch=0, base_sequence=0, is_transactional=True)
        assert log.read_messages(first, 1 << 20, "t", 0, isolation_level=READ_COMMITTED) is None
        assert log.read_messages(first, 1 << 20, "t", 0, isolation_level=READ_UNCOMMITTED) is None
    finally:
        log.close()
    assert log.read_messages(0, 1 << 20, "t", 0) is None  # closed: read() raises


def test_read_messages_after_an_aborted_transaction_hands_over(tmp_path) -> None:
    log = PartitionLog.open(str(tmp_path / "p"), **{"flush.policy": "none"})
    try:
        log.append([b"t"], producer_id=PID, producer_epoch=0, base_sequence=0, is_transactional=True)
        log.write_txn_marker(PID, 0, False, 0)
        log.append_one(b"after", None, TS)
        # The active segment indexes an aborted transaction: read_committed needs read().
        assert log.read_messages(0, 1 << 20, "t", 0, isolation_level=READ_COMMITTED) is None
        msgs, nxt = log.read_messages(0, 1 << 20, "t", 0, isolation_level=READ_UNCOMMITTED)
        assert [m.value() for m in msgs] == [b"t", b"after"] and nxt == 3
    finally:
        log.close()


def test_offline_log_refuses_both_lanes(tmp_path) -> None:
    log = PartitionLog.open(str(tmp_path / "p"), **{"flush.policy": "none"})
    try:
        log.append_one(b"a", None, TS)
        with pytest.raises(LogOfflineError):
            log._go_offline(OSError(5, "EIO"), "test")  # what a failed fsync does
        with pytest.raises(LogOfflineError):
            log.append_one(b"b", None, TS)
        assert log.read_messages(0, 100, "t", 0) is None
    finally:
        try:
            log.close()
        except (LogOfflineError, KafkaStorageError):
            pass


def test_append_one_next_in_sequence_equals_general_validation(tmp_path) -> None:
    """The next-record shortcut of the producer state (no duplicate search) leaves the same
    state as prepare/validate/apply, across the INT32_MAX -> 0 wrap and an epoch bump."""
    from headwater.log.producer_state import INT32_MAX

    cfg = {"flush.policy": "none"}
    slow = PartitionLog.open(str(tmp_path / "slow"), **cfg)
    fast = PartitionLog.open(str(tmp_path / "fast"), **cfg)
    try:
        seqs = [(EPOCH, INT32_MAX - 2 + i) for i in range(3)] + [(EPOCH, i) for i in range(7)] + [(EPOCH + 1, i) for i in range(3)]
        for i, (epoch, seq) in enumerate(seqs):
            a = slow.append([b"v%d" % i], timestamps=[TS + i], producer_id=PID, producer_epoch=epoch, base_sequence=seq)
            b = fast.append_one(b"v%d" % i, None, TS + i, PID, epoch, seq)
            assert a == b
            ea, eb = slow.producer_state.last_entry(PID), fast.producer_state.last_entry(PID)
            assert ea == eb and list(ea.batch_metadata) == list(eb.batch_metadata)
            assert slow.producer_state.map_end_offset == fast.producer_state.map_end_offset
        # Retries of the new epoch's batches are found: their original offsets, nothing written.
        leo = fast.log_end_offset
        for seq in range(3):
            assert fast.append_one(b"x", None, TS, PID, EPOCH + 1, seq) == leo - 3 + seq
        assert fast.log_end_offset == leo
        with pytest.raises((OutOfOrderSequenceError, InvalidProducerEpochError)):
            fast.append_one(b"x", None, TS, PID, EPOCH, 7)
        # A producer in a transaction: the shortcut does not apply, the general check refuses.
        fast.append([b"t"], producer_id=PID + 1, producer_epoch=0, base_sequence=0, is_transactional=True)
        assert fast.producer_state.next_in_sequence(PID + 1, 0, 1) is None
        with pytest.raises(Exception, match="transaction"):
            fast.append_one(b"x", None, TS, PID + 1, 0, 1)
    finally:
        slow.close()
        fast.close()


def test_append_one_follows_a_config_change(tmp_path) -> None:
    """The topic-rules test is cached per LogConfig: a new config (what alter_topic_config
    installs) is seen by the next append."""
    import dataclasses

    log = PartitionLog.open(str(tmp_path / "p"), **{"flush.policy": "none"})
    try:
        log.append_one(b"plain" * 20, None, TS)
        log.config = dataclasses.replace(log.config, compression_type="gzip")
        log.append_one(b"gz" * 50, None, TS)
        with log.read(0) as r:
            assert [h.compression for h, v in r.batches()] == [0, 1]
            assert [rec.value for rec in r] == [b"plain" * 20, b"gz" * 50]
    finally:
        log.close()


def test_tail_position_shortcut_survives_truncation_and_gaps(tmp_path) -> None:
    """position_of() of the offset after the previous append answers from the last append;
    truncation forgets it, and every answer equals the index walk's."""
    log = PartitionLog.open(str(tmp_path / "p"), **{"flush.policy": "none", "index.interval.bytes": 256})
    try:
        for i in range(50):
            log.append_one(b"v%d" % i, None, TS + i)
            seg = log.segments[-1]
            assert seg.position_of(i) == seg.log.find_offset(seg._index_position(i), i)
        log.truncate_to(30)
        seg = log.segments[-1]
        assert seg.last_append_offset == -1
        assert [m.offset() for m in log.read_messages(29, 1 << 20, "t", 0)[0]] == [29]
        log.append_one(b"again", None, TS)
        msgs, nxt = log.read_messages(30, 1 << 20, "t", 0)
        assert [(m.offset(), m.value()) for m in msgs] == [(30, b"again")] and nxt == 31
    finally:
        log.close()


def test_append_one_indexes_as_recovery_rebuilds_them(tmp_path) -> None:
    """The index bookkeeping of the C lane (LogSegmentCore.after_append) writes the offset
    and time index entries that recovery's scan (csrc, an independent walk of the batches)
    rebuilds from the .log alone, across an index interval of a few records and timestamps
    that go back and forth; the largest timestamp is the latest record's among ties."""
    path = str(tmp_path / "p")
    log = PartitionLog.open(path, **{"flush.policy": "none", "index.interval.bytes": 200})
    stamps = [TS + (i * 7919) % 50 for i in range(300)]  # not monotonic: max timestamp moves
    try:
        for i, ts in enumerate(stamps):
            assert log.append_one(b"v%03d" % i * (1 + i % 5), None, ts) == i
        seg = log._segments[-1]
        top = max(stamps)
        assert (seg.max_timestamp, seg.offset_of_max_timestamp) == (top, max(i for i, t in enumerate(stamps) if t == top))
        written = (
            [seg.offset_index.entry(i) for i in range(seg.offset_index.entries)],
            [seg.time_index.entry(i) for i in range(seg.time_index.entries)],
        )
        assert len(written[0]) > 10
    finally:
        log.close()
    for f in glob.glob(os.path.join(path, "*.index")) + glob.glob(os.path.join(path, "*.timeindex")):
        os.unlink(f)
    os.unlink(os.path.join(path, ".clean-shutdown"))  # recovery scans the segment
    log = PartitionLog.open(path, **{"flush.policy": "none", "index.interval.bytes": 200})
    try:
        seg = log._segments[-1]
        rebuilt = (
            [seg.offset_index.entry(i) for i in range(seg.offset_index.entries)],
            [seg.time_index.entry(i) for i in range(seg.time_index.entries)],
        )
        assert rebuilt[0] == written[0]
        assert rebuilt[1][: len(written[1])] == written[1]  # sealing may add a last entry
    finally:
        log.close()


# The spec's COMMIT marker (kafka-spec.md a.5; tests/unit/test_codec.py's COMMIT_BATCH): producer
# 1000 epoch 2, coordinator epoch 5, CreateTime 1700000000000, base offset 10, leader epoch 0.
SPEC_COMMIT_MARKER = bytes.fromhex(
    "000000000000000a 00000042 00000000 02 a7d9b82a 0030 00000000"
    "0000018bcfe56800 0000018bcfe56800 00000000000003e8 0002 ffffffff 00000001"
    "20 00 00 00 08 00000001 0c 000000000005 00".replace(" ", "")
)


def _written(log: PartitionLog) -> bytes:
    """The active segment's bytes up to its size (a marker ends in a zero byte, which
    _log_bytes' trim of the preallocated tail would cut)."""
    seg = log.segments[-1]
    with open(seg.log_path, "rb") as fh:
        return fh.read()[: seg.size]


def test_txn_marker_is_built_in_place_with_the_spec_bytes(tmp_path) -> None:
    """write_txn_marker builds the marker in the segment's buffer (no batch object): the bytes
    on disk are the spec's COMMIT marker, and an ABORT one is build_control_batch's."""
    from headwater import record

    log = PartitionLog.open(str(tmp_path / "p"), **{"flush.policy": "none"})
    try:
        assert log.partition_leader_epoch == 0
        log.append([b"v"] * 10, producer_id=PID, producer_epoch=EPOCH, base_sequence=0, is_transactional=True, timestamp=TS)
        before = log.segments[-1].size
        result = log.write_txn_marker(PID, EPOCH, True, 5, 1_700_000_000_000)
        assert result.base_offset == 10 and result.completed_txn is not None
        assert _written(log)[before:] == SPEC_COMMIT_MARKER
        assert log.last_stable_offset == log.log_end_offset == 11

        log.append([b"w"], producer_id=PID, producer_epoch=EPOCH, base_sequence=10, is_transactional=True, timestamp=TS)
        before = log.segments[-1].size
        log.write_txn_marker(PID, EPOCH, False, 5, TS + 9)
        expected = record.build_control_batch(
            0, producer_id=PID, producer_epoch=EPOCH, coordinator_epoch=5, timestamp=TS + 9,
            base_offset=12, partition_leader_epoch=0,
        )
        assert _written(log)[before:] == expected
        assert log.last_stable_offset == log.log_end_offset == 13
    finally:
        log.close()


def test_txn_marker_on_a_log_append_time_topic_is_stamped(tmp_path) -> None:
    """A LogAppendTime topic's marker takes the general append: LogAppendTime attribute set,
    max timestamp the broker's clock, not the coordinator's."""
    import time

    from headwater import record

    log = PartitionLog.open(str(tmp_path / "p"), **{"flush.policy": "none", "message.timestamp.type": "LogAppendTime"})
    try:
        log.append([b"v"], producer_id=PID, producer_epoch=EPOCH, base_sequence=0, is_transactional=True)
        before = log.segments[-1].size
        now = int(time.time() * 1000)
        log.write_txn_marker(PID, EPOCH, True, 0, 1234)
        header = record.parse_batch_header(_written(log)[before:])
        assert header.attributes == 0x38 and header.base_offset == 1
        assert header.max_timestamp >= now
    finally:
        log.close()
