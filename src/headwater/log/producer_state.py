"""Idempotent-producer state of one partition (kafka-spec.md c; Kafka's ProducerStateManager).

What it owns: per producer id, the epoch, the coordinator epoch, the last write time, the first
offset of its open transaction (if any) and the metadata of its last 5 batches
(NUM_BATCHES_TO_RETAIN: a client has at most 5 requests in flight, so a retry can only repeat one
of those). PartitionLog asks a ProducerAppendInfo to validate a batch *before* writing it (spec c.3,
in Kafka's order) and hands it to ProducerStateManager.update() *after* the write succeeded:
validate, then apply (STYLE.md 5). The same code serves the embedded producer and the wire
Produce path; recovery replays batches with validation off.

Invariant: the state reflects exactly the batches below `map_end_offset`, which PartitionLog
keeps equal to its log end offset.

Snapshot files `<offset:020d>.snapshot` (Kafka's layout, records/ProducerSnapshot.json v1,
non-flexible, all big-endian) hold the state of every batch below `offset`:

    off  len  field
      0    2  version             int16 = 1
      2    4  crc                 uint32, CRC-32C of bytes [6, EOF)
      6    4  entry count         int32
     10   46  entry, repeated:
              +0   8  producerId             int64
              +8   2  epoch                  int16
              +10  4  lastSequence           int32 (-1: no batch)
              +14  8  lastOffset             int64 (-1: no batch)
              +22  4  offsetDelta            int32 (lastOffset - first offset of that batch)
              +26  8  timestamp              int64 (last write's max timestamp)
              +34  4  coordinatorEpoch       int32
              +38  8  currentTxnFirstOffset  int64 (-1: no open transaction)

Only each producer's last batch is persisted, as in Kafka: after a restart duplicate detection
covers that one batch until new batches arrive. Snapshots are written at every segment roll
(named with the new segment's base offset) and at clean close: to `<name>.tmp`, fsync'd, renamed,
directory fsync'd. If the state did not change since the last snapshot, the new name is a hard
link to it (no new data block). After a roll only the snapshots of the last two segments are
kept, as Kafka does once the recovery point passes them; a segment's snapshot goes with it. A failed write or fsync raises OSError; PartitionLog then goes offline, as for
any failed fsync (a later successful fsync would prove nothing).

After a crash: the newest snapshot that passes its CRC and is <= the log end is loaded (ones that
fail are deleted, as are ones > log end or <= log start, kafka-spec.md b.4 step 5) and the batches
after it are replayed from the log without sequence checks. Leftover `.tmp` files are removed by
the segment loader.

Thread-safety: none of its own; PartitionLog calls it under the log's lock. It never reads the
clock: expiration takes `now_ms` (deterministic, STYLE.md 5).
"""

from __future__ import annotations

import logging
import os
import re
import struct
from collections import deque
from typing import Any, NamedTuple

from headwater._native._native import ProducerStateEntryCore
from headwater._native._native import append_next as _native_append_next
from headwater._native._native import next_in_sequence as _native_next_in_sequence
from headwater.errors import (
    CorruptSnapshotError,
    InvalidProducerEpochError,
    InvalidRecordError,
    InvalidTxnStateError,
    OutOfOrderSequenceError,
    TransactionCoordinatorFencedError,
)
from headwater.log import checkpoint
from headwater.record import batch_records, crc32c

log = logging.getLogger("headwater.log.producer_state")

NUM_BATCHES_TO_RETAIN = 5
INT32_MAX = 2**31 - 1
NO_PRODUCER_EPOCH = -1
NO_SEQUENCE = -1
DEFAULT_PRODUCER_ID_EXPIRATION_MS = 86400000

# Control record types that end a transaction (kafka-spec.md a.5).
CONTROL_ABORT = 0
CONTROL_COMMIT = 1

SNAPSHOT_SUFFIX = ".snapshot"
SNAPSHOT_VERSION = 1
SNAPSHOT_RE = re.compile(r"^(\d{20})\.snapshot$")
_SNAP_HEADER = struct.Struct(">hIi")  # version, crc, entry count: 10 bytes
_SNAP_ENTRY = struct.Struct(">qhiqiqiq")  # 46 bytes, fields as drawn in the module docstring
_CRC_START = 6  # the CRC covers the entry count and the entries
assert _SNAP_HEADER.size == 10 and _SNAP_ENTRY.size == 46


def increment_sequence(sequence: int, increment: int) -> int:
    """sequence + increment, wrapping from INT32_MAX to 0 (Kafka's DefaultRecordBatch rule)."""
    if sequence > INT32_MAX - increment:
        return increment - (INT32_MAX - sequence) - 1
    return sequence + increment


def decrement_sequence(sequence: int, decrement: int) -> int:
    """The inverse of increment_sequence."""
    if sequence < decrement:
        return INT32_MAX - (decrement - sequence) + 1
    return sequence - decrement


def in_sequence(last_seq: int, next_seq: int) -> bool:
    """True if `next_seq` directly follows `last_seq` (wrapping after INT32_MAX)."""
    return next_seq == last_seq + 1 or (next_seq == 0 and last_seq == INT32_MAX)


class BatchMetadata(NamedTuple):
    """One written batch of a producer (kafka-spec.md c.2). A tuple: cheap to create per batch."""

    last_seq: int
    last_offset: int
    offset_delta: int  # last_offset - first offset of the batch
    timestamp: int  # the batch's max timestamp (or its log append time)

    @property
    def first_seq(self) -> int:
        return decrement_sequence(self.last_seq, self.offset_delta)

    @property
    def first_offset(self) -> int:
        return self.last_offset - self.offset_delta


class CompletedTxn(NamedTuple):
    """A transaction ended by a marker: offsets [first_offset, last_offset] (the marker's offset).

    Only non-empty transactions produce one; aborted ones become `.txnindex` entries. (A
    NamedTuple: one per committed transaction and partition, cheap to build.)"""

    producer_id: int
    first_offset: int
    last_offset: int
    is_aborted: bool


class ProducerStateEntry(ProducerStateEntryCore):
    """Everything the partition remembers about one producer id (kafka-spec.md c.2). The
    fields are ProducerStateEntryCore's (C: the single-record append reads them)."""

    __slots__ = ()
    FIELDS = (
        "producer_id",
        "producer_epoch",
        "coordinator_epoch",
        "last_timestamp",
        "current_txn_first_offset",
        "batch_metadata",
    )

    def __init__(
        self,
        producer_id: int,
        producer_epoch: int = NO_PRODUCER_EPOCH,
        coordinator_epoch: int = -1,
        last_timestamp: int = -1,
        current_txn_first_offset: int | None = None,
        batch_metadata: Any = (),
    ) -> None:
        self.producer_id = producer_id
        self.producer_epoch = producer_epoch
        self.coordinator_epoch = coordinator_epoch
        self.last_timestamp = last_timestamp
        self.current_txn_first_offset = current_txn_first_offset
        self.batch_metadata: deque[BatchMetadata] = deque(
            batch_metadata, maxlen=NUM_BATCHES_TO_RETAIN
        )

    @property
    def is_empty(self) -> bool:
        return not self.batch_metadata

    @property
    def first_seq(self) -> int:
        return self.batch_metadata[0].first_seq if self.batch_metadata else NO_SEQUENCE

    @property
    def last_seq(self) -> int:
        return self.batch_metadata[-1].last_seq if self.batch_metadata else NO_SEQUENCE

    @property
    def first_data_offset(self) -> int:
        return self.batch_metadata[0].first_offset if self.batch_metadata else -1

    @property
    def last_data_offset(self) -> int:
        return self.batch_metadata[-1].last_offset if self.batch_metadata else -1

    @property
    def last_offset_delta(self) -> int:
        return self.batch_metadata[-1].offset_delta if self.batch_metadata else 0

    def find_duplicate_batch(
        self, epoch: int, first_seq: int, last_seq: int
    ) -> BatchMetadata | None:
        """The cached batch with exactly this epoch and sequence range, if any."""
        if epoch != self.producer_epoch:
            return None
        for meta in self.batch_metadata:
            # last_seq first: the first_seq property costs a call, and it rarely matches
            if meta.last_seq == last_seq and meta.first_seq == first_seq:
                return meta
        return None

    def maybe_update_producer_epoch(self, epoch: int) -> bool:
        """A new epoch forgets the old epoch's batches (their sequences restart at 0)."""
        if epoch != self.producer_epoch:
            self.batch_metadata.clear()
            self.producer_epoch = epoch
            return True
        return False

    def add_batch(
        self, epoch: int, last_seq: int, last_offset: int, offset_delta: int, timestamp: int
    ) -> None:
        self.maybe_update_producer_epoch(epoch)
        self.batch_metadata.append(BatchMetadata(last_seq, last_offset, offset_delta, timestamp))
        self.last_timestamp = timestamp

    def copy(self) -> ProducerStateEntry:
        return ProducerStateEntry(
            self.producer_id,
            self.producer_epoch,
            self.coordinator_epoch,
            self.last_timestamp,
            self.current_txn_first_offset,
            self.batch_metadata,
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ProducerStateEntry):
            return NotImplemented
        return all(
            getattr(self, n) == getattr(other, n) for n in self.FIELDS if n != "batch_metadata"
        ) and list(self.batch_metadata) == list(other.batch_metadata)

    def __repr__(self) -> str:
        return (
            f"ProducerStateEntry(pid={self.producer_id}, epoch={self.producer_epoch}, "
            f"coordinator_epoch={self.coordinator_epoch}, last_ts={self.last_timestamp}, "
            f"txn_first={self.current_txn_first_offset}, batches={list(self.batch_metadata)})"
        )


class ProducerAppendInfo:
    """One pending change to one producer's state: validate first (no mutation), then, once
    the batch is in the log, apply it and hand it to ProducerStateManager.update().

    The checks (kafka-spec.md c.3) take the batch's fields, not a header object, so a producer
    that builds batches in C can call them too. With `validate=False` (replaying the log during
    recovery, or after truncation) nothing is checked: the log is the truth.
    """

    __slots__ = (
        "producer_id",
        "current",
        "updated_entry",
        "validate_enabled",
        "completed_txn",
        "started_txn",
    )

    def __init__(
        self, producer_id: int, current: ProducerStateEntry | None, *, validate: bool = True
    ) -> None:
        self.producer_id = producer_id
        self.current = current
        self.validate_enabled = validate
        self.updated_entry: ProducerStateEntry | None = None
        self.completed_txn: CompletedTxn | None = None
        self.started_txn = False

    # ------------------------------------------------------------------ validation (no mutation)

    def validate_data_batch(
        self, epoch: int, base_seq: int, offset_delta: int, is_transactional: bool
    ) -> BatchMetadata | None:
        """Check a client data batch in Kafka's order. Returns the cached metadata of the batch
        it duplicates (append nothing; answer with its offsets), or None to append.

        Raises:
            InvalidProducerEpochError: the batch's epoch is older than the producer's (47).
            OutOfOrderSequenceError: the sequence does not follow the last batch, or a new
                epoch does not start at 0 (45).
            InvalidTxnStateError: a non-transactional batch while a transaction is open (48).
        """
        cur = self.current
        if cur is None or not self.validate_enabled:
            # An unknown producer (never seen, expired, or truncated away) may start at any
            # sequence (KIP-360: brokers no longer answer UNKNOWN_PRODUCER_ID for produce).
            return None
        last_seq = increment_sequence(base_seq, offset_delta)
        # 1. Duplicate first: a retry of one of the last 5 batches is answered, not rejected.
        # The next batch in sequence (the common case) cannot be one: the cached batches all
        # end at or before the last sequence (5 batches never wrap 2^31 sequences).
        metas = cur.batch_metadata
        if not (metas and epoch == cur.producer_epoch and base_seq == ((metas[-1].last_seq + 1) & 0x7FFFFFFF)):
            dup = cur.find_duplicate_batch(epoch, base_seq, last_seq)
            if dup is not None:
                return dup
        pid = self.producer_id
        # 2. Epoch fencing.
        if epoch < cur.producer_epoch:
            raise InvalidProducerEpochError(
                f"producer {pid}: epoch {epoch} is older than the current epoch {cur.producer_epoch}"
            )
        # 3. Sequence.
        if epoch != cur.producer_epoch:
            if base_seq != 0 and cur.producer_epoch != NO_PRODUCER_EPOCH:
                raise OutOfOrderSequenceError(
                    f"producer {pid}: new epoch {epoch} must start at sequence 0, got {base_seq}"
                )
        elif cur.producer_epoch != NO_PRODUCER_EPOCH and not in_sequence(cur.last_seq, base_seq):
            raise OutOfOrderSequenceError(
                f"producer {pid} epoch {epoch}: sequence {base_seq} does not follow {cur.last_seq}"
            )
        # 4. Transactional consistency.
        if cur.current_txn_first_offset is not None and not is_transactional:
            raise InvalidTxnStateError(
                f"producer {pid}: non-transactional batch while its transaction from offset "
                f"{cur.current_txn_first_offset} is open"
            )
        return None

    def validate_end_txn_marker(self, epoch: int, coordinator_epoch: int) -> None:
        """Check a transaction marker (COMMIT/ABORT) before it is written.

        Raises:
            InvalidProducerEpochError: the marker's epoch is older than the producer's.
            TransactionCoordinatorFencedError: an older coordinator epoch than the last marker's.
        """
        if self.current is not None and self.validate_enabled:
            _check_end_txn_marker(self.current, epoch, coordinator_epoch)

    # ------------------------------------------------------------------ apply (after the write)

    def _entry(self) -> ProducerStateEntry:
        # The apply step runs only after the write succeeded and cannot fail, so the live entry
        # is changed in place (no copy per batch: idempotence must stay cheap, issue 3).
        if self.updated_entry is None:
            self.updated_entry = (
                self.current if self.current is not None else ProducerStateEntry(self.producer_id)
            )
        return self.updated_entry

    def append_data_batch(
        self,
        epoch: int,
        base_seq: int,
        first_offset: int,
        last_offset: int,
        timestamp: int,
        is_transactional: bool,
    ) -> None:
        """Record a data batch written at [first_offset, last_offset]."""
        entry = self._entry()
        delta = last_offset - first_offset
        entry.add_batch(epoch, increment_sequence(base_seq, delta), last_offset, delta, timestamp)
        if entry.current_txn_first_offset is None and is_transactional:
            entry.current_txn_first_offset = first_offset
            self.started_txn = True

    def append_end_txn_marker(
        self, control_type: int, coordinator_epoch: int, epoch: int, offset: int, timestamp: int
    ) -> CompletedTxn | None:
        """Record a COMMIT/ABORT marker written at `offset`: the open transaction (if any) ends."""
        self.completed_txn = _end_txn(self._entry(), control_type, coordinator_epoch, epoch, offset, timestamp)
        return self.completed_txn


def _check_end_txn_marker(cur: ProducerStateEntry, epoch: int, coordinator_epoch: int) -> None:
    if epoch < cur.producer_epoch:
        raise InvalidProducerEpochError(
            f"producer {cur.producer_id}: marker epoch {epoch} is older than {cur.producer_epoch}"
        )
    if coordinator_epoch < cur.coordinator_epoch:
        raise TransactionCoordinatorFencedError(
            f"producer {cur.producer_id}: coordinator epoch {coordinator_epoch} is older than "
            f"{cur.coordinator_epoch}"
        )


def _end_txn(
    entry: ProducerStateEntry, control_type: int, coordinator_epoch: int, epoch: int, offset: int, timestamp: int
) -> CompletedTxn | None:
    """Apply a COMMIT/ABORT marker written at `offset` to the producer's entry: its open
    transaction (if any) ends, and is returned."""
    first = entry.current_txn_first_offset
    completed = None
    if first is not None:
        completed = CompletedTxn(entry.producer_id, first, offset, control_type == CONTROL_ABORT)
    if epoch != entry.producer_epoch:
        entry.maybe_update_producer_epoch(epoch)
    entry.current_txn_first_offset = None
    entry.coordinator_epoch = coordinator_epoch
    entry.last_timestamp = timestamp
    return completed


def parse_end_txn_marker(view: Any, header: Any) -> tuple[int, int] | None:
    """(control type, coordinator epoch) of a COMMIT/ABORT control batch, else None.

    Control key (4 bytes): int16 version, int16 type. Marker value (6 bytes): int16 version,
    int32 coordinator epoch (kafka-spec.md a.5). An empty control batch holds no marker.
    """
    for rec in batch_records(view, header):
        key = rec.key
        if key is None or len(key) < 4:
            return None
        version, ctype = struct.unpack_from(">hh", key, 0)
        if version < 0 or ctype not in (CONTROL_ABORT, CONTROL_COMMIT):
            return None
        value = rec.value
        if value is None or len(value) < 6:
            raise InvalidRecordError("transaction marker without a coordinator epoch")
        _, coordinator_epoch = struct.unpack_from(">hi", value, 0)
        return ctype, coordinator_epoch
    return None


def encode_snapshot(entries: Any) -> bytes:
    """Kafka's ProducerSnapshot v1 bytes for `entries` (an iterable of ProducerStateEntry)."""
    body = bytearray()
    count = 0
    for e in entries:
        txn = e.current_txn_first_offset
        body += _SNAP_ENTRY.pack(
            e.producer_id,
            e.producer_epoch,
            e.last_seq,
            e.last_data_offset,
            e.last_offset_delta,
            e.last_timestamp,
            e.coordinator_epoch,
            -1 if txn is None else txn,
        )
        count += 1
    covered = struct.pack(">i", count) + bytes(body)
    return struct.pack(">hI", SNAPSHOT_VERSION, crc32c(covered)) + covered


def decode_snapshot(data: bytes) -> list[ProducerStateEntry]:
    """Entries of a snapshot file's bytes.

    Raises:
        CorruptSnapshotError: wrong version, CRC mismatch, or a length that does not match.
    """
    if len(data) < _SNAP_HEADER.size:
        raise CorruptSnapshotError(f"snapshot of {len(data)} bytes is shorter than its header")
    version, crc, count = _SNAP_HEADER.unpack_from(data, 0)
    if version != SNAPSHOT_VERSION:
        raise CorruptSnapshotError(f"snapshot version {version}, expected {SNAPSHOT_VERSION}")
    if crc32c(data[_CRC_START:]) != crc:
        raise CorruptSnapshotError("snapshot CRC-32C mismatch")
    if count < 0 or len(data) != _SNAP_HEADER.size + count * _SNAP_ENTRY.size:
        raise CorruptSnapshotError(f"snapshot of {len(data)} bytes cannot hold {count} entries")
    out = []
    for pid, epoch, seq, offset, delta, ts, coord, txn in _SNAP_ENTRY.iter_unpack(
        data[_SNAP_HEADER.size :]
    ):
        batches = [BatchMetadata(seq, offset, delta, ts)] if offset >= 0 else []
        out.append(ProducerStateEntry(pid, epoch, coord, ts, txn if txn >= 0 else None, batches))
    return out


def snapshot_path(directory: str, offset: int) -> str:
    return os.path.join(directory, f"{offset:020d}{SNAPSHOT_SUFFIX}")


class ProducerStateManager:
    """Producer state of one partition, its snapshots, and its rebuild after a crash.

    Args:
        directory: the partition directory (snapshots live beside the segments).
        producer_id_expiration_ms: idle time after which remove_expired_producers() drops a
            producer without an open transaction (Kafka's producer.id.expiration.ms).
    """

    def __init__(
        self, directory: str, *, producer_id_expiration_ms: int = DEFAULT_PRODUCER_ID_EXPIRATION_MS
    ) -> None:
        self.directory = directory
        self.producer_id_expiration_ms = producer_id_expiration_ms
        self.producers: dict[int, ProducerStateEntry] = {}
        # pid -> first offset of its open transaction (mirrors the entries, for the LSO).
        self._ongoing: dict[int, int] = {}
        self.map_end_offset = 0
        self.last_snap_offset = 0
        # Offset of a snapshot file whose content is the current state (None once it changes):
        # the next snapshot can then be a hard link to it, costing no data block.
        self._clean_snapshot: int | None = None

    # ------------------------------------------------------------------ queries

    def last_entry(self, producer_id: int) -> ProducerStateEntry | None:
        return self.producers.get(producer_id)

    def __len__(self) -> int:
        return len(self.producers)

    @property
    def first_unstable_offset(self) -> int | None:
        """First offset of the earliest open transaction, or None (the LSO bound, b.5)."""
        return min(self._ongoing.values()) if self._ongoing else None

    @property
    def ongoing_transactions(self) -> dict[int, int]:
        """producer id -> first offset of its open transaction (a copy)."""
        return dict(self._ongoing)

    # ------------------------------------------------------------------ append path

    def prepare(self, producer_id: int, *, validate: bool = True) -> ProducerAppendInfo:
        """A pending change for `producer_id`, based on its current entry."""
        return ProducerAppendInfo(producer_id, self.producers.get(producer_id), validate=validate)

    def check_end_txn_marker(self, producer_id: int, epoch: int, coordinator_epoch: int) -> None:
        """Validate a COMMIT/ABORT marker the broker is about to write (no mutation); raises
        as ProducerAppendInfo.validate_end_txn_marker. The lean path of write_txn_marker."""
        cur = self.producers.get(producer_id)
        if cur is not None:
            _check_end_txn_marker(cur, epoch, coordinator_epoch)

    def apply_end_txn_marker(
        self, producer_id: int, control_type: int, coordinator_epoch: int, epoch: int, offset: int, timestamp: int
    ) -> CompletedTxn | None:
        """A marker checked by check_end_txn_marker is in the log at `offset`: end the
        producer's open transaction (returned, if there was one)."""
        entry = self.producers.get(producer_id)
        if entry is None:
            entry = self.producers[producer_id] = ProducerStateEntry(producer_id)
        completed = _end_txn(entry, control_type, coordinator_epoch, epoch, offset, timestamp)
        self._clean_snapshot = None
        self._ongoing.pop(producer_id, None)
        return completed

    def update(self, info: ProducerAppendInfo) -> None:
        """Install an applied ProducerAppendInfo (the batch or marker is in the log)."""
        entry = info.updated_entry
        if entry is None:
            return
        self._clean_snapshot = None
        self.producers[entry.producer_id] = entry
        if entry.current_txn_first_offset is None:
            self._ongoing.pop(entry.producer_id, None)
        else:
            self._ongoing[entry.producer_id] = entry.current_txn_first_offset

    def update_map_end_offset(self, offset: int) -> None:
        self.map_end_offset = offset

    def next_in_sequence(self, producer_id: int, epoch: int, base_seq: int) -> ProducerStateEntry | None:
        """The producer's entry if a non-transactional one-record batch (epoch, base_seq) simply
        follows its last batch: same epoch, the next sequence, no transaction open. Such a
        batch cannot be a duplicate and passes every check of validate_data_batch(), so the
        single-record append (PartitionLog.append_one) skips the ProducerAppendInfo and applies
        it with append_next(). None: take prepare() and validate_data_batch().
        In C (`_native`): append_one calls it there."""
        return _native_next_in_sequence(self, producer_id, epoch, base_seq)

    def append_next(self, entry: ProducerStateEntry, base_seq: int, offset: int, timestamp: int) -> None:
        """Apply a one-record batch next_in_sequence() accepted, written at `offset`: what
        append_data_batch(), update() and update_map_end_offset() do for it (in C, as
        next_in_sequence)."""
        _native_append_next(self, entry, base_seq, offset, timestamp)

    def replay_batch(self, header: Any, view: Any) -> CompletedTxn | None:
        """Apply one batch read back from the log, without validation (recovery, truncation).

        `view` is needed only for control batches (to read the marker)."""
        pid = header.producer_id
        if pid < 0:
            return None
        info = self.prepare(pid, validate=False)
        completed = None
        if header.is_control:
            marker = parse_end_txn_marker(view, header) if header.records_count > 0 else None
            if marker is None:
                return None
            completed = info.append_end_txn_marker(
                marker[0],
                marker[1],
                header.producer_epoch,
                header.base_offset,
                header.max_timestamp,
            )
        else:
            info.append_data_batch(
                header.producer_epoch,
                header.base_sequence,
                header.base_offset,
                header.last_offset,
                header.max_timestamp,
                header.is_transactional,
            )
        self.update(info)
        return completed

    def remove_expired_producers(self, now_ms: int) -> list[int]:
        """Drop producers idle for producer.id.expiration.ms (never one with an open
        transaction). Returns the producer ids removed."""
        limit = self.producer_id_expiration_ms
        expired = [
            pid
            for pid, e in self.producers.items()
            if e.current_txn_first_offset is None and now_ms - e.last_timestamp >= limit
        ]
        for pid in expired:
            del self.producers[pid]
        if expired:
            self._clean_snapshot = None
        return expired

    def clear(self) -> None:
        self.producers.clear()
        self._ongoing.clear()
        self._clean_snapshot = None

    # ------------------------------------------------------------------ snapshots

    def snapshot_offsets(self) -> list[int]:
        """Offsets of the snapshot files present, ascending."""
        out = []
        for name in os.listdir(self.directory):
            m = SNAPSHOT_RE.match(name)
            if m:
                out.append(int(m.group(1)))
        return sorted(out)

    def take_snapshot(self, *, sync_dir: bool = True) -> str:
        """Write the state at map_end_offset atomically (tmp, fsync, rename); returns its path.

        If the state has not changed since the last snapshot (a partition without idempotent
        producers, or none since the last roll), the new name is a hard link to that file: no
        new data block, so a log that rolls often does not eat a full disk's last blocks.

        Args:
            sync_dir: fsync the directory after the rename (False when the caller does so next).

        Raises:
            OSError: the write or an fsync failed (the tmp file is removed). PartitionLog takes
                the log offline, as for any failed fsync: the page cache state is unknown.
        """
        offset = self.map_end_offset
        path = snapshot_path(self.directory, offset)
        tmp = path + ".tmp"
        try:
            if not self._link_clean_snapshot(offset, tmp):
                data = encode_snapshot(self.producers[pid] for pid in sorted(self.producers))
                with open(tmp, "wb") as f:
                    f.write(data)
                    f.flush()
                    os.fsync(f.fileno())
            os.replace(tmp, path)
            if sync_dir:
                checkpoint.fsync_dir(self.directory)
        except OSError:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise
        self.last_snap_offset = offset
        self._clean_snapshot = offset
        return path

    def _link_clean_snapshot(self, offset: int, tmp: str) -> bool:
        clean = self._clean_snapshot
        if clean is None or clean == offset:
            return False
        try:
            if os.path.lexists(tmp):
                os.unlink(tmp)  # a leftover of an interrupted snapshot
            os.link(snapshot_path(self.directory, clean), tmp)
        except OSError:  # gone, or a filesystem without hard links: write the bytes instead
            return False
        return True

    def delete_snapshot(self, offset: int) -> None:
        try:
            os.unlink(snapshot_path(self.directory, offset))
        except FileNotFoundError:
            pass

    def delete_snapshots_below(self, offset: int) -> list[int]:
        """Delete snapshots named below `offset` (those of deleted segments)."""
        gone = [o for o in self.snapshot_offsets() if o < offset]
        for o in gone:
            self.delete_snapshot(o)
        return gone

    def read_snapshot(self, offset: int) -> list[ProducerStateEntry]:
        with open(snapshot_path(self.directory, offset), "rb") as f:
            return decode_snapshot(f.read())

    def truncate_and_reload(
        self,
        log_start_offset: int,
        log_end_offset: int,
        *,
        force: bool = False,
        max_snapshot_offset: int | None = None,
    ) -> int:
        """Make the state match a log holding [log_start_offset, log_end_offset) from the
        snapshots alone (kafka-spec.md b.4 step 5). Snapshots > log end or <= log start are
        deleted; if the state is not already at the log end (or `force`: the log was truncated)
        it is replaced by the newest valid snapshot (failing ones are deleted), or emptied at log
        start if none is left.

        `max_snapshot_offset`: use no snapshot above it (the caller must replay from there,
        e.g. to rebuild a transaction index); newer snapshots are kept.

        Returns map_end_offset: the caller replays the log's batches from there to the end,
        then calls update_map_end_offset(log_end_offset).
        """
        for o in self.snapshot_offsets():
            if o > log_end_offset or o <= log_start_offset:
                self.delete_snapshot(o)
        if log_end_offset == self.map_end_offset and not force:
            return self.map_end_offset
        self.clear()
        for o in reversed(self.snapshot_offsets()):
            if max_snapshot_offset is not None and o > max_snapshot_offset:
                continue
            try:
                entries = self.read_snapshot(o)
            except (CorruptSnapshotError, OSError) as exc:
                log.warning(
                    "deleting producer snapshot %s: %s", snapshot_path(self.directory, o), exc
                )
                self.delete_snapshot(o)
                continue
            for e in entries:
                self.producers[e.producer_id] = e
                if e.current_txn_first_offset is not None:
                    self._ongoing[e.producer_id] = e.current_txn_first_offset
            self.map_end_offset = self.last_snap_offset = o
            self._clean_snapshot = o
            return o
        self.map_end_offset = self.last_snap_offset = log_start_offset
        return log_start_offset

    def __repr__(self) -> str:
        return f"ProducerStateManager({self.directory!r}, producers={len(self.producers)}, end={self.map_end_offset})"


__all__ = [
    "NUM_BATCHES_TO_RETAIN",
    "BatchMetadata",
    "CompletedTxn",
    "ProducerStateEntry",
    "ProducerAppendInfo",
    "ProducerStateManager",
    "encode_snapshot",
    "decode_snapshot",
    "parse_end_txn_marker",
    "increment_sequence",
    "decrement_sequence",
]
