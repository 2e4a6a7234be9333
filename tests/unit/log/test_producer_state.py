"""Idempotent-producer state of a partition (kafka-spec.md c.1-c.6, b.4 step 5; issue 3 part 3).

Goal: prove that PartitionLog, through headwater.log.producer_state, applies Kafka's rules to
batches carrying a producer id: every check of c.3 in Kafka's order (duplicate first, answered
with the original offsets and nothing written; INVALID_PRODUCER_EPOCH 47; OUT_OF_ORDER_SEQUENCE
45 incl. a new epoch starting at 0, the INT32_MAX wrap and an unknown producer accepting any
sequence; INVALID_TXN_STATE 48 and transactions opened by transactional batches and closed by
markers), the 5-batch window, expiration, and that the state survives: snapshots in Kafka's byte
layout (c.4) at roll and clean close, reload after a clean close, rebuild from the log after a
crash (marker removed, or a child process killed with SIGKILL), corrupt snapshots ignored,
truncation and retention keeping state and snapshots consistent.

Method: batches are built two independent ways, with headwater.record.build_batch and with
kafka-python's DefaultRecordBatchBuilder (an oracle that shares no code with headwater), and
appended through PartitionLog.append_batch / append_batch_ex in fresh tmp directories. Expected
offsets and sequences are computed in the test. Snapshot files are decoded with struct and
their CRC checked with kafka-python's pure-Python CRC-32C. Timestamps are explicit; nothing
sleeps.
"""

from __future__ import annotations

import os
import signal
import struct
import subprocess
import sys
import textwrap

import pytest
from kafka.record.default_records import DefaultRecordBatchBuilder
from kafka.record.util import calc_crc32c

from headwater import record
from headwater.errors import (
    CorruptSnapshotError,
    InvalidProducerEpochError,
    InvalidTxnStateError,
    MessageTooLargeError,
    OutOfOrderSequenceError,
    TransactionCoordinatorFencedError,
)
from headwater.log import PartitionLog
from headwater.log.producer_state import (
    INT32_MAX,
    NUM_BATCHES_TO_RETAIN,
    BatchMetadata,
    ProducerStateEntry,
    decode_snapshot,
    decrement_sequence,
    encode_snapshot,
    increment_sequence,
)

PID = 4242
TS = 1_700_000_000_000


def hw_batch(
    seq: int, n: int = 1, *, pid: int = PID, epoch: int = 0, txn: bool = False, ts: int = TS
) -> bytes:
    """A batch of n records built by headwater's own codec."""
    values = [f"v{seq}-{i}".encode() for i in range(n)]
    return record.build_batch(
        values,
        timestamp=ts,
        producer_id=pid,
        producer_epoch=epoch,
        base_sequence=seq,
        attributes=0x10 if txn else 0,
    )


def kp_batch(
    seq: int,
    n: int = 1,
    *,
    pid: int = PID,
    epoch: int = 0,
    txn: bool = False,
    ts: int = TS,
    codec: int = 0,
) -> bytes:
    """The same, built by kafka-python's DefaultRecordBatchBuilder (independent oracle)."""
    b = DefaultRecordBatchBuilder(
        magic=2,
        compression_type=codec,
        is_transactional=txn,
        producer_id=pid,
        producer_epoch=epoch,
        base_sequence=seq,
        batch_size=1 << 20,
    )
    for i in range(n):
        b.append(i, timestamp=ts + i, key=None, value=f"k{seq}-{i}".encode(), headers=[])
    return bytes(b.build())


def marker(
    commit: bool, *, pid: int = PID, epoch: int = 0, coordinator_epoch: int = 0, ts: int = TS
) -> bytes:
    return record.build_control_batch(
        1 if commit else 0,
        producer_id=pid,
        producer_epoch=epoch,
        coordinator_epoch=coordinator_epoch,
        timestamp=ts,
    )


BUILDERS = pytest.mark.parametrize("build", [hw_batch, kp_batch], ids=["headwater", "kafka-python"])


def snapshots(path: str) -> list[int]:
    return sorted(int(n.split(".")[0]) for n in os.listdir(path) if n.endswith(".snapshot"))


def entry_tuple(e: ProducerStateEntry) -> tuple:
    return (
        e.producer_id,
        e.producer_epoch,
        e.coordinator_epoch,
        e.last_timestamp,
        e.current_txn_first_offset,
        list(e.batch_metadata),
    )


def state_of(log: PartitionLog) -> dict[int, tuple]:
    return {pid: entry_tuple(e) for pid, e in log.producer_state.producers.items()}


# ---------------------------------------------------------------------------------- sequences


def test_sequence_arithmetic_wraps_at_int32_max() -> None:
    assert increment_sequence(5, 3) == 8
    assert increment_sequence(INT32_MAX, 1) == 0
    assert increment_sequence(INT32_MAX - 1, 3) == 1
    assert decrement_sequence(1, 3) == INT32_MAX - 1
    assert decrement_sequence(8, 3) == 5
    assert (
        BatchMetadata(last_seq=1, last_offset=10, offset_delta=3, timestamp=0).first_seq
        == INT32_MAX - 1
    )


# ---------------------------------------------------------------------------------- c.3 rules


@BUILDERS
def test_unknown_producer_accepts_any_first_sequence(open_log, build) -> None:
    log = open_log()
    r = log.append_batch_ex(build(17, 3))
    assert (r.base_offset, r.last_offset, r.duplicate) == (0, 2, False)
    e = log.producer_state.last_entry(PID)
    assert (e.producer_epoch, e.first_seq, e.last_seq, e.last_data_offset) == (0, 17, 19, 2)


@BUILDERS
def test_in_sequence_batches_are_accepted_and_gaps_rejected(open_log, build) -> None:
    log = open_log()
    assert log.append_batch(build(0, 2)) == 0
    assert log.append_batch(build(2, 3)) == 2
    leo = log.log_end_offset
    size = log.size_bytes
    for bad in (4, 6, 100, INT32_MAX):  # gap, and far off
        with pytest.raises(OutOfOrderSequenceError) as ei:
            log.append_batch(build(bad))
        assert ei.value.code == 45
    # Overlapping but not an exact earlier batch: not a duplicate, out of order.
    with pytest.raises(OutOfOrderSequenceError):
        log.append_batch(build(1, 2))
    assert (log.log_end_offset, log.size_bytes) == (leo, size)  # nothing written
    assert log.append_batch(build(5)) == 5


@BUILDERS
def test_duplicate_of_a_retried_batch_returns_original_offsets_and_writes_nothing(
    open_log, build
) -> None:
    log = open_log()
    first = log.append_batch_ex(build(0, 4))
    second = log.append_batch_ex(build(4, 2))
    leo, size = log.log_end_offset, log.size_bytes
    for raw, orig in ((build(0, 4), first), (build(4, 2), second)):
        r = log.append_batch_ex(raw)
        assert r.duplicate
        assert (r.base_offset, r.last_offset) == (orig.base_offset, orig.last_offset)
        assert r.log_start_offset == 0 and r.log_append_time == -1
        assert log.append_batch(raw) == orig.base_offset  # the int API answers the same
    assert (log.log_end_offset, log.size_bytes) == (leo, size)
    with log.read(0) as rr:
        assert [rec.offset for rec in rr] == list(range(6))  # each record once


def test_duplicate_check_uses_other_builder_bytes(open_log) -> None:
    """A batch written from headwater's builder is recognised when retried with kafka-python's
    bytes for the same (pid, epoch, sequence range): identity is the sequence range, not the bytes."""
    log = open_log()
    log.append_batch(hw_batch(0, 3))
    r = log.append_batch_ex(kp_batch(0, 3))
    assert r.duplicate and r.base_offset == 0


def test_compressed_kafka_python_batch_sequence_range(open_log) -> None:
    log = open_log()
    log.append_batch(kp_batch(0, 10, codec=1))  # gzip
    assert log.producer_state.last_entry(PID).last_seq == 9
    assert log.append_batch_ex(kp_batch(0, 10, codec=1)).duplicate
    assert log.append_batch(kp_batch(10, 1)) == 10


@BUILDERS
def test_window_of_five_batches(open_log, build) -> None:
    log = open_log()
    offsets = [log.append_batch(build(i)) for i in range(7)]
    e = log.producer_state.last_entry(PID)
    assert len(e.batch_metadata) == NUM_BATCHES_TO_RETAIN == 5
    assert [m.last_seq for m in e.batch_metadata] == [2, 3, 4, 5, 6]
    for seq in range(2, 7):
        r = log.append_batch_ex(build(seq))
        assert r.duplicate and r.base_offset == offsets[seq]
    for seq in (0, 1):  # out of the window: no longer recognised, and out of sequence
        with pytest.raises(OutOfOrderSequenceError):
            log.append_batch(build(seq))
    assert log.log_end_offset == 7


@BUILDERS
def test_duplicate_is_checked_before_sequence(open_log, build) -> None:
    """A retry is by definition behind the last sequence: it must be answered as a duplicate,
    not rejected as out of order (check 1 before check 3)."""
    log = open_log()
    log.append_batch(build(0))
    log.append_batch(build(1))
    assert log.append_batch_ex(build(0)).duplicate


@BUILDERS
def test_epoch_fencing_and_new_epoch_starts_at_zero(open_log, build) -> None:
    log = open_log()
    log.append_batch(build(0, 2, epoch=3))
    log.append_batch(build(2, 1, epoch=3))
    # Older epoch: fenced, even for what would be a duplicate in that epoch.
    for seq in (0, 3):
        with pytest.raises(InvalidProducerEpochError) as ei:
            log.append_batch(build(seq, epoch=2))
        assert ei.value.code == 47
    # New epoch must restart at 0.
    with pytest.raises(OutOfOrderSequenceError):
        log.append_batch(build(3, epoch=4))
    assert log.append_batch(build(0, epoch=4)) == 3
    e = log.producer_state.last_entry(PID)
    assert e.producer_epoch == 4 and [m.last_seq for m in e.batch_metadata] == [0]
    # After the bump the old epoch is fenced and its batches are not duplicates any more.
    with pytest.raises(InvalidProducerEpochError):
        log.append_batch(build(2, 1, epoch=3))
    assert log.append_batch(build(1, epoch=4)) == 4


@BUILDERS
def test_sequence_wraps_from_int32_max_to_zero(open_log, build) -> None:
    log = open_log()
    log.append_batch(build(INT32_MAX - 1, 2))  # sequences MAX-1, MAX
    assert log.producer_state.last_entry(PID).last_seq == INT32_MAX
    with pytest.raises(OutOfOrderSequenceError):
        log.append_batch(build(1))
    assert log.append_batch(build(0, 1)) == 2
    # A batch spanning the wrap: MAX-? is impossible now; start a fresh producer for it.
    log.append_batch(build(INT32_MAX - 1, 3, pid=7))  # MAX-1, MAX, 0
    assert log.producer_state.last_entry(7).last_seq == 0
    assert log.append_batch_ex(build(INT32_MAX - 1, 3, pid=7)).duplicate
    assert log.append_batch(build(1, pid=7)) == 6


def test_producers_are_independent_and_plain_batches_untouched(open_log) -> None:
    log = open_log()
    log.append([b"plain"], timestamp=TS)
    log.append_batch(record.build_batch([b"x"], timestamp=TS))  # producer id -1
    log.append_batch(hw_batch(0, pid=1))
    log.append_batch(hw_batch(5, pid=2))
    log.append_batch(hw_batch(1, pid=1))
    assert sorted(log.producer_state.producers) == [1, 2]
    assert log.producer_state.last_entry(1).last_seq == 1
    assert log.producer_state.last_entry(2).last_seq == 5


def test_failed_write_leaves_state_unchanged(open_log) -> None:
    """Validate, then apply: a batch refused by the log after validation does not advance the
    producer's sequence, so its retry is appended normally."""
    log = open_log(**{"max.message.bytes": 400})
    log.append_batch(hw_batch(0))
    big = record.build_batch(
        [b"x" * 500], timestamp=TS, producer_id=PID, producer_epoch=0, base_sequence=1
    )
    with pytest.raises(MessageTooLargeError):
        log.append_batch(big)
    assert log.producer_state.last_entry(PID).last_seq == 0
    assert log.append_batch(hw_batch(1)) == 1


def test_log_append_time_is_reported_for_duplicates(open_log) -> None:
    log = open_log(**{"message.timestamp.type": "LogAppendTime"})
    r1 = log.append_batch_ex(hw_batch(0))
    assert r1.log_append_time > 0
    r2 = log.append_batch_ex(hw_batch(0))
    assert r2.duplicate and r2.log_append_time == r1.log_append_time


# ---------------------------------------------------------------------------------- transactions


@BUILDERS
def test_transactional_batch_opens_txn_and_marker_closes_it(open_log, build) -> None:
    log = open_log()
    log.append_batch(build(0, 2, pid=9))  # another producer, not transactional
    assert log.last_stable_offset == log.high_watermark == 2
    assert log.append_batch(build(0, 3, txn=True)) == 2
    assert log.producer_state.last_entry(PID).current_txn_first_offset == 2
    assert log.producer_state.first_unstable_offset == 2
    log.append_batch(build(3, 1, txn=True))  # same txn: first offset unchanged
    assert log.last_stable_offset == 2 and log.high_watermark == 6
    # A non-transactional batch in the middle of the txn: INVALID_TXN_STATE, nothing written.
    with pytest.raises(InvalidTxnStateError) as ei:
        log.append_batch(build(4, 1))
    assert ei.value.code == 48 and log.log_end_offset == 6
    # A transactional retry is still a duplicate.
    assert log.append_batch_ex(build(3, 1, txn=True)).duplicate
    r = log.append_batch_ex(marker(True, coordinator_epoch=1), control=True)
    assert r.base_offset == 6 and not r.duplicate
    assert r.completed_txn is not None
    assert (
        r.completed_txn.first_offset,
        r.completed_txn.last_offset,
        r.completed_txn.is_aborted,
    ) == (2, 6, False)
    assert log.producer_state.last_entry(PID).current_txn_first_offset is None
    assert log.producer_state.last_entry(PID).coordinator_epoch == 1
    assert log.last_stable_offset == log.high_watermark == 7
    # After the marker the producer continues its sequence, non-transactionally too.
    assert log.append_batch(build(4, 1)) == 7


def test_abort_marker_and_marker_fencing(open_log) -> None:
    log = open_log()
    log.append_batch(hw_batch(0, txn=True, epoch=2))
    with pytest.raises(InvalidProducerEpochError):
        log.append_batch(marker(False, epoch=1, coordinator_epoch=5), control=True)
    r = log.append_batch_ex(marker(False, epoch=2, coordinator_epoch=5), control=True)
    assert r.completed_txn.is_aborted and r.completed_txn.first_offset == 0
    log.append_batch(hw_batch(1, txn=True, epoch=2))
    assert log.last_stable_offset == 2
    with pytest.raises(TransactionCoordinatorFencedError) as ei:
        log.append_batch(marker(True, epoch=2, coordinator_epoch=4), control=True)
    assert ei.value.code == 52 and log.log_end_offset == 3
    # A marker for a producer without an open transaction completes nothing.
    log.append_batch(marker(True, epoch=2, coordinator_epoch=5), control=True)
    r = log.append_batch_ex(marker(True, epoch=2, coordinator_epoch=5), control=True)
    assert r.completed_txn is None


def test_lso_is_the_earliest_open_transaction(open_log) -> None:
    log = open_log()
    log.append_batch(hw_batch(0, pid=1, txn=True))
    log.append_batch(hw_batch(0, pid=2, txn=True))
    assert log.last_stable_offset == 0
    log.append_batch(marker(True, pid=1), control=True)
    assert log.last_stable_offset == 1
    log.append_batch(marker(False, pid=2), control=True)
    assert log.last_stable_offset == log.log_end_offset == 4


# ---------------------------------------------------------------------------------- expiration


def test_expiration_drops_idle_producers_but_not_open_transactions(open_log) -> None:
    log = open_log(**{"producer.id.expiration.ms": 1000})
    log.append_batch(hw_batch(5, pid=1, ts=TS))
    log.append_batch(hw_batch(0, pid=2, ts=TS, txn=True))
    log.append_batch(hw_batch(0, pid=3, ts=TS + 500))
    assert log.expire_producers(TS + 999) == []
    assert log.expire_producers(TS + 1000) == [1]
    assert sorted(log.producer_state.producers) == [2, 3]
    assert log.expire_producers(TS + 10_000) == [3]  # pid 2 has an open txn: kept
    # An expired producer is unknown: any sequence is accepted again.
    assert log.append_batch(hw_batch(42, pid=1)) == 3


# ---------------------------------------------------------------------------------- snapshots


def test_snapshot_byte_layout_matches_kafka(open_log, pdir) -> None:
    log = open_log()
    log.append_batch(kp_batch(0, 3, pid=11, epoch=2, ts=TS))  # offsets 0-2, seq 0-2
    log.append_batch(kp_batch(3, 2, pid=11, epoch=2, ts=TS + 10))  # offsets 3-4, seq 3-4
    log.append_batch(kp_batch(0, 1, pid=5, epoch=0, ts=TS + 20, txn=True))  # offset 5, txn open
    log.append([b"plain"], timestamp=TS)  # offset 6, no producer
    log.roll()
    assert snapshots(pdir) == [7]
    data = open(os.path.join(pdir, f"{7:020d}.snapshot"), "rb").read()
    version, crc, count = struct.unpack_from(">hIi", data, 0)
    assert (version, count) == (1, 2)
    assert crc == calc_crc32c(data[6:])  # CRC-32C over [6, EOF), checked by an independent CRC
    assert len(data) == 10 + 46 * count
    entries = {}
    for i in range(count):
        fields = struct.unpack_from(">qhiqiqiq", data, 10 + 46 * i)
        entries[fields[0]] = fields
    # producerId, epoch, lastSequence, lastOffset, offsetDelta, timestamp, coordinatorEpoch, txnFirst
    # (kafka-python's builder sets the batch max timestamp to the last record's: ts + n - 1)
    assert entries[11] == (11, 2, 4, 4, 1, TS + 10 + 1, -1, -1)
    assert entries[5] == (5, 0, 0, 5, 0, TS + 20, -1, 5)


def test_snapshot_codec_round_trip_and_corruption() -> None:
    e1 = ProducerStateEntry(1, 3, 7, TS, None, [BatchMetadata(9, 100, 2, TS)])
    e2 = ProducerStateEntry(2, 0, -1, TS + 1, 55, [])
    data = encode_snapshot([e1, e2])
    back = decode_snapshot(data)
    assert entry_tuple(back[0]) == entry_tuple(e1)
    assert entry_tuple(back[1]) == entry_tuple(e2)
    bad = bytearray(data)
    bad[20] ^= 1
    with pytest.raises(CorruptSnapshotError):
        decode_snapshot(bytes(bad))
    with pytest.raises(CorruptSnapshotError):
        decode_snapshot(data[:-1])
    with pytest.raises(CorruptSnapshotError):
        decode_snapshot(b"\x00\x02" + data[2:])  # version 2
    with pytest.raises(CorruptSnapshotError):
        decode_snapshot(b"\x00")


def test_snapshots_at_each_roll_named_with_the_new_base(open_log, pdir) -> None:
    log = open_log(**{"segment.bytes": 300})
    seen = set()
    for seq in range(0, 24, 2):
        log.append_batch(hw_batch(seq, 2))
        seen.update(snapshots(pdir))
    bases = [s.base_offset for s in log.segments]
    assert len(bases) > 3
    # Every roll wrote one, named with the new base; only the last two segments' are kept.
    assert seen == set(bases[1:])
    assert snapshots(pdir) == bases[-2:]
    # Each snapshot holds the state of the batches below its name only.
    for base in bases[-2:]:
        (entry,) = log.producer_state.read_snapshot(base)
        assert entry.last_data_offset == base - 1
        assert entry.last_seq == base - 1  # one sequence per offset in this log


def test_unchanged_state_is_snapshotted_as_a_hard_link(open_log, pdir) -> None:
    """No producer batch between two rolls: the second snapshot is the same inode (no new
    data block), and still reads back as the right state."""
    log = open_log()
    log.append_batch(hw_batch(0, 2))
    log.roll()
    log.append([b"plain"], timestamp=TS)  # no producer state change
    log.roll()
    a, b = (os.stat(os.path.join(pdir, f"{o:020d}.snapshot")) for o in (2, 3))
    assert (a.st_ino, a.st_nlink) == (b.st_ino, 2)
    assert log.producer_state.read_snapshot(3)[0].last_seq == 1
    log.append_batch(hw_batch(2))
    log.roll()  # state changed: a new file
    c = os.stat(os.path.join(pdir, f"{4:020d}.snapshot"))
    assert c.st_ino != b.st_ino
    assert snapshots(pdir) == [3, 4]


@BUILDERS
def test_reopen_after_clean_close_restores_state(pdir, build) -> None:
    log = PartitionLog.open(pdir)
    for seq in range(0, 12, 2):
        log.append_batch(build(seq, 2))
    log.append_batch(build(0, 1, pid=77, epoch=5, txn=True))
    before = state_of(log)
    leo = log.log_end_offset
    log.close()
    assert snapshots(pdir) == [leo]
    log = PartitionLog.open(pdir)
    try:
        after = state_of(log)
        # Only the last batch per producer is persisted (c.4); everything else is equal.
        for pid, t in before.items():
            assert after[pid][:5] == t[:5]
            assert after[pid][5] == t[5][-1:]
        assert log.last_stable_offset == 12
        r = log.append_batch_ex(build(10, 2))  # the last batch, retried after the restart
        assert r.duplicate and r.base_offset == 10 and log.log_end_offset == leo
        with pytest.raises(OutOfOrderSequenceError):
            log.append_batch(build(13))
        assert log.append_batch(build(12)) == leo
        with pytest.raises(InvalidTxnStateError):
            log.append_batch(build(1, pid=77, epoch=5))
    finally:
        log.close()


def test_reopen_without_marker_or_snapshots_rebuilds_from_the_log(pdir) -> None:
    log = PartitionLog.open(pdir, **{"segment.bytes": 400})
    for seq in range(10):
        log.append_batch(hw_batch(seq, 1, pid=1))
        log.append_batch(kp_batch(seq * 2, 2, pid=2, epoch=1))
    log.append_batch(hw_batch(0, pid=3, txn=True))
    log.append_batch(marker(False, pid=3, coordinator_epoch=3), control=True)
    log.append_batch(hw_batch(1, pid=3, txn=True))
    before = state_of(log)
    assert len(log.segments) > 2
    log.close()
    os.unlink(os.path.join(pdir, ".clean-shutdown"))
    for off in snapshots(pdir):
        os.unlink(os.path.join(pdir, f"{off:020d}.snapshot"))
    log = PartitionLog.open(pdir)
    try:
        assert not log.recovery.clean_shutdown
        assert state_of(log) == before  # a full replay restores the whole 5-batch window
        assert log.last_stable_offset == before[3][4]
        for seq in range(5, 10):
            assert log.append_batch_ex(hw_batch(seq, 1, pid=1)).duplicate
    finally:
        log.close()


def test_reopen_after_kill9_rebuilds_from_snapshot_and_log(pdir) -> None:
    """A child process appends (with a roll in the middle, so a snapshot exists) and kills
    itself with SIGKILL: no close, no clean-shutdown snapshot. The parent's reopen must match
    the state the child printed just before dying, window included for the batches replayed."""
    src = os.path.join(os.path.dirname(os.path.abspath(record.__file__)), "..")
    child = textwrap.dedent(
        f"""
        import os, signal, sys
        sys.path.insert(0, {os.path.abspath(src)!r})
        from headwater import record
        from headwater.log import PartitionLog
        log = PartitionLog.open({pdir!r}, **{{"flush.policy": "batch"}})
        def b(seq, pid):
            return record.build_batch([b"v%d" % seq], timestamp={TS} + seq, producer_id=pid,
                                      producer_epoch=0, base_sequence=seq)
        for seq in range(8):
            log.append_batch(b(seq, 1))
        log.roll()
        for seq in range(8, 15):
            log.append_batch(b(seq, 1))
            log.append_batch(b(seq - 8, 2))
        e = log.producer_state.producers
        print(repr({{pid: [m.last_seq for m in x.batch_metadata] for pid, x in e.items()}}), flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    p = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True, timeout=60)
    assert p.returncode == -signal.SIGKILL, p.stderr
    expected = eval(p.stdout.strip())  # noqa: S307 - our own child's repr of ints
    assert expected == {1: [10, 11, 12, 13, 14], 2: [2, 3, 4, 5, 6]}
    assert snapshots(pdir) == [8]
    log = PartitionLog.open(pdir)
    try:
        assert not log.recovery.clean_shutdown
        got = {
            pid: [m.last_seq for m in e.batch_metadata]
            for pid, e in log.producer_state.producers.items()
        }
        assert got == expected
        assert log.append_batch_ex(
            record.build_batch(
                [b"v10"], timestamp=TS, producer_id=1, producer_epoch=0, base_sequence=10
            )
        ).duplicate
        assert log.append_batch(hw_batch(15, pid=1)) == log.log_end_offset - 1
    finally:
        log.close()


def test_corrupt_snapshot_is_deleted_and_state_rebuilt(pdir) -> None:
    log = PartitionLog.open(pdir, **{"segment.bytes": 300})
    for seq in range(12):
        log.append_batch(hw_batch(seq))
    before = state_of(log)
    leo = log.log_end_offset
    log.close()
    snaps = snapshots(pdir)
    assert snaps[-1] == leo and len(snaps) >= 3
    # Newest: a flipped bit. The one before: truncated. Both must be ignored and deleted.
    newest = os.path.join(pdir, f"{snaps[-1]:020d}.snapshot")
    data = bytearray(open(newest, "rb").read())
    data[-3] ^= 0x40
    open(newest, "wb").write(data)
    second = os.path.join(pdir, f"{snaps[-2]:020d}.snapshot")
    open(second, "r+b").truncate(12)
    log = PartitionLog.open(pdir)
    try:
        assert snapshots(pdir) == snaps[:-2]
        # Rebuilt from the third snapshot plus replay: the window is whole again.
        assert state_of(log)[PID][5][-1] == before[PID][5][-1]
        assert [m.last_seq for m in log.producer_state.last_entry(PID).batch_metadata][-1] == 11
        assert log.append_batch_ex(hw_batch(11)).duplicate
    finally:
        log.close()


def test_snapshots_beyond_log_end_or_at_log_start_are_deleted(pdir) -> None:
    log = PartitionLog.open(pdir)
    log.append_batch(hw_batch(0, 3))
    log.close()
    bogus = encode_snapshot(
        [ProducerStateEntry(PID, 0, -1, TS, None, [BatchMetadata(99, 50, 0, TS)])]
    )
    for off in (0, 100):
        with open(os.path.join(pdir, f"{off:020d}.snapshot"), "wb") as f:
            f.write(bogus)
    log = PartitionLog.open(pdir)
    try:
        assert snapshots(pdir) == [3]
        assert log.producer_state.last_entry(PID).last_seq == 2
    finally:
        log.close()


# ---------------------------------------------------------------------------------- truncation, retention


def test_truncate_rebuilds_state_so_a_resend_is_appended(open_log, pdir) -> None:
    log = open_log(**{"segment.bytes": 300})
    for seq in range(12):
        log.append_batch(hw_batch(seq))
    snaps_before = snapshots(pdir)
    assert log.truncate_to(5) == 5
    assert all(s <= 5 for s in snapshots(pdir)) and snapshots(pdir) == [
        s for s in snaps_before if s <= 5
    ]
    e = log.producer_state.last_entry(PID)
    assert e.last_seq == 4 and e.last_data_offset == 4
    # The truncated batch with sequence 5 is not a duplicate: it is written again, at offset 5.
    r = log.append_batch_ex(hw_batch(5))
    assert not r.duplicate and r.base_offset == 5
    with pytest.raises(OutOfOrderSequenceError):
        log.append_batch(hw_batch(8))


def test_truncate_removes_a_transaction_it_cut(open_log) -> None:
    log = open_log()
    log.append_batch(hw_batch(0))
    log.append_batch(hw_batch(1, txn=True))
    assert log.last_stable_offset == 1
    log.truncate_to(1)
    assert log.producer_state.last_entry(PID).current_txn_first_offset is None
    assert log.last_stable_offset == 1 == log.log_end_offset


def test_delete_records_removes_old_snapshots_and_keeps_state(open_log, pdir) -> None:
    log = open_log(**{"segment.bytes": 300})
    for seq in range(12):
        log.append_batch(hw_batch(seq))
    bases = [s.base_offset for s in log.segments]
    log.delete_records_before(bases[2])
    assert log.segments[0].base_offset == bases[2]
    assert snapshots(pdir)[0] >= bases[2]
    # Producer state outlives the records (Kafka keeps producers until they expire).
    assert log.append_batch_ex(hw_batch(11)).duplicate
    assert log.append_batch(hw_batch(12)) == 12


def test_retention_removes_snapshots_with_segments(open_log, pdir) -> None:
    log = open_log(**{"segment.bytes": 300, "retention.ms": 1000})
    for seq in range(12):
        log.append_batch(hw_batch(seq, ts=TS + seq))
    deleted = log.enforce_retention(now_ms=TS + 1_000_000)
    assert deleted
    assert all(s >= log.segments[0].base_offset for s in snapshots(pdir))
    assert log.append_batch(hw_batch(12)) == 12


def test_reopen_with_marker_removed_loads_the_close_snapshot(pdir) -> None:
    """Only the clean-shutdown marker gone: recovery runs, and the snapshot written at close
    (<= log end, valid) is still the right starting point; nothing after it to replay."""
    log = PartitionLog.open(pdir)
    for seq in range(3):
        log.append_batch(hw_batch(seq))
    log.close()
    os.unlink(os.path.join(pdir, ".clean-shutdown"))
    log = PartitionLog.open(pdir)
    try:
        assert not log.recovery.clean_shutdown
        assert [m.last_seq for m in log.producer_state.last_entry(PID).batch_metadata] == [2]
        assert log.append_batch_ex(hw_batch(2)).duplicate
        assert log.append_batch(hw_batch(3)) == 3
    finally:
        log.close()
