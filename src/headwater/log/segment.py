"""LogSegment: one `.log` file with its `.index`, `.timeindex` and `.txnindex`, named by base offset.

Files (kafka-spec.md b.1, b.2):

    <base:020d>.log        RecordBatch v2 batches exactly as on the wire, no file header
    <base:020d>.index      8-byte entries: int32 offset - base | int32 position in .log
    <base:020d>.timeindex  12-byte entries: int64 max timestamp so far | int32 offset - base
    <base:020d>.txnindex   34-byte entries: the transactions aborted by markers in this segment
                           (txn_index.py); only present once there is one

Invariants: batches are back to back from position 0 with strictly increasing offsets; every
index entry points at a batch boundary; time-index timestamps strictly increase. An index entry
is added when more than `index.interval.bytes` were appended since the last one: (last offset
of the batch, its start position). The active segment maps `segment.bytes` and grows its file
by fallocate steps; sealing it trims the files and adds a final time-index entry.

Thread-safety: the owning PartitionLog serialises appends and truncation; reads of data below
the size observed under its lock are safe concurrently.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

from headwater._native._native import HW_OK, LogSegmentCore, OffsetIndex, Segment, TimeIndex
from headwater.errors import CorruptIndexError, CorruptRecordError
from headwater.log.txn_index import TXN_INDEX_SUFFIX, TxnIndex

OFFSET_ENTRY_BYTES = 8
TIME_ENTRY_BYTES = 12
INT32_MAX = 2**31 - 1

log = logging.getLogger("headwater.log")
# Written by the log cleaner (cleaner.py) before its first swap: its presence says the
# partition's offsets may have gaps, whatever cleanup.policy says now.
CLEANER_CHECKPOINT_FILE = "cleaner-offset"


def file_stem(base_offset: int) -> str:
    return f"{base_offset:020d}"


@dataclass
class CorruptRange:
    """Damage found inside the synced part of a segment and left in place (never truncated).

    Reads that reach [position, resume_position) raise CorruptRecordError; batches from
    resume_position on are served as usual.
    """

    segment_base: int
    position: int
    resume_position: int
    first_offset: int  # first offset that may be lost (last good offset + 1)
    resume_offset: int  # base offset of the first good batch after the damage


class LogSegment(LogSegmentCore):
    """A segment and its two indexes. The fields an append and a tail read touch, with
    after_append() (an append's index bookkeeping), index_is_full() and tail_position(), are
    LogSegmentCore's (C)."""

    def __init__(
        self,
        directory: str,
        base_offset: int,
        *,
        max_bytes: int,
        index_bytes: int,
        index_interval_bytes: int,
        create: bool = False,
        active: bool = False,
    ) -> None:
        self.directory = directory
        self.base_offset = base_offset
        self.index_interval_bytes = index_interval_bytes
        self.index_bytes = index_bytes
        stem = os.path.join(directory, file_stem(base_offset))
        self.log_path = stem + ".log"
        self.index_path = stem + ".index"
        self.time_index_path = stem + ".timeindex"
        self.txn_index_path = stem + TXN_INDEX_SUFFIX
        self.log = Segment(self.log_path, max_bytes if active else 0, create)
        try:
            # Sealed segments map their indexes exactly; the active one maps index_bytes.
            ib = index_bytes if active else 0
            self.offset_index = OffsetIndex(self.index_path, base_offset, ib)
            self.time_index = TimeIndex(self.time_index_path, base_offset, ib)
        except BaseException:
            self.log.close(trim=False)
            raise
        # Aborted transactions whose markers are in this segment (derived data, like the
        # other indexes, but rebuilt from markers and producer state: PartitionLog does it).
        self.txn_index = TxnIndex(self.txn_index_path, base_offset)
        self.active = active
        self.bytes_since_index = 0
        self.released_upto = 0  # mapping pages released up to here (PartitionLog appends)
        self.max_timestamp = -1
        self.offset_of_max_timestamp = -1
        self.first_batch_max_timestamp = -1
        self.next_offset = base_offset
        self.last_append_offset = -1
        self.last_append_position = -1
        self.created_ms = 0
        self.corrupt_ranges: list[CorruptRange] = []
        # Offsets run without gaps unless the log was ever compacted (cleanup.policy=compact):
        # then recovery scans accept gaps between batches (never offsets going backwards).
        self.contiguous = not os.path.exists(os.path.join(directory, CLEANER_CHECKPOINT_FILE))

    # ------------------------------------------------------------------ properties

    @property
    def size(self) -> int:
        return int(self.log.size)

    @property
    def is_empty(self) -> bool:
        return self.log.size == 0

    def fits_offsets(self, last_offset: int) -> bool:
        return last_offset - self.base_offset <= INT32_MAX

    # ------------------------------------------------------------------ read

    def position_of(self, offset: int) -> int:
        """Position of the first batch whose last offset >= offset (size if none)."""
        tail = self.tail_position(offset)
        if tail >= 0:
            return tail
        start = self._index_position(offset)
        for r in self.corrupt_ranges:
            if offset >= r.resume_offset and start < r.resume_position:
                start = r.resume_position
            elif start <= r.position < self.size and offset < r.resume_offset:
                # The walk would cross the damage: make sure it stops before it.
                pos = self.log.find_offset(start, offset) if start < r.position else r.position
                if pos >= r.position:
                    raise CorruptRecordError(
                        f"offset {offset} lies in a corrupt range of {self.log_path} "
                        f"(positions {r.position}..{r.resume_position}, offsets "
                        f"{r.first_offset}..{r.resume_offset - 1})"
                    )
                return int(pos)
        return int(self.log.find_offset(start, offset))

    def _index_position(self, offset: int) -> int:
        indexed, position = self.offset_index.lookup(offset)
        if position == 0:
            return 0
        try:
            header = self.log.header_at(position)
        except CorruptRecordError:
            header = None
        if header is None or header.base_offset > indexed or header.last_offset < self.base_offset:
            # The entry does not point at a batch holding offsets <= its own: the index is
            # damaged. Rebuild it from the log and look again.
            self.rebuild_indexes()
            indexed, position = self.offset_index.lookup(offset)
        return int(position)

    def timestamp_position(self, timestamp: int) -> int:
        """Position of the first batch whose max timestamp >= timestamp."""
        ts, offset = self.time_index.lookup(timestamp)
        position = self.position_of(offset) if ts >= 0 else 0
        if ts >= 0:
            # The entry names the batch holding its timestamp: check it against the log (one
            # header read) so a damaged entry cannot send the lookup past the answer.
            if offset >= self.next_offset or position >= self.size or self.log.header_at(position).max_timestamp != ts:
                self.rebuild_indexes()
                ts, offset = self.time_index.lookup(timestamp)
                position = self.position_of(offset) if ts >= 0 else 0
        return int(self.log.find_timestamp(position, timestamp))

    # ------------------------------------------------------------------ maintenance

    def reset_indexes(self) -> None:
        """Empty both indexes, with room for every entry a rebuild of this segment can add."""
        if self.active:
            self.offset_index.truncate_entries(0)
            self.time_index.truncate_entries(0)
            return
        self.offset_index.close(trim=False)
        self.time_index.close(trim=False)
        os.unlink(self.index_path)
        os.unlink(self.time_index_path)
        entries = self.log.file_len // max(1, self.index_interval_bytes) + 2
        self.offset_index = OffsetIndex(self.index_path, self.base_offset, entries * OFFSET_ENTRY_BYTES)
        self.time_index = TimeIndex(self.time_index_path, self.base_offset, entries * TIME_ENTRY_BYTES)

    def finish_indexes(self) -> None:
        """After a rebuild: final time entry and flush; sealed segments trim and remap exactly."""
        self.seal_indexes()
        if not self.active:
            self.offset_index.close(trim=True)
            self.time_index.close(trim=True)
            self.offset_index = OffsetIndex(self.index_path, self.base_offset, 0)
            self.time_index = TimeIndex(self.time_index_path, self.base_offset, 0)

    def rebuild_indexes(self) -> None:
        """Rebuild both indexes from the log (a scan with CRC checks) up to the data size."""
        self.reset_indexes()
        self.max_timestamp = self.offset_of_max_timestamp = -1
        result = self.scan_and_index(0, self.size)
        if result.valid_bytes < self.size and not self.corrupt_ranges:
            self.finish_indexes()
            raise CorruptIndexError(f"{self.log_path}: log damaged at {result.valid_bytes} while rebuilding indexes")
        self.finish_indexes()

    def scan_and_index(self, start: int, end: int, min_offset: int | None = None):  # noqa: ANN201
        """Scan [start, end) with CRC checks, appending index entries, and update timestamps."""
        r = self.log.scan(
            start,
            end,
            True,
            self.base_offset if min_offset is None else min_offset,
            self.offset_index,
            self.time_index,
            self.index_interval_bytes,
            self.contiguous,
        )
        if r.batches:
            if start == 0:
                self.first_batch_max_timestamp = self.log.header_at(0).max_timestamp
            if r.max_timestamp >= self.max_timestamp:
                self.max_timestamp = r.max_timestamp
                self.offset_of_max_timestamp = r.offset_of_max_timestamp
            self.next_offset = r.next_offset
            self.bytes_since_index = r.bytes_since_index
        return r

    def load_clean(self, force_rebuild: bool = False) -> str:
        """State of a segment that needs no recovery scan: trust the data up to the file size,
        check the indexes structurally and walk the batches after the last index entry.

        Returns "ok", "rebuilt" (indexes were rebuilt) or "scan" (the tail after the last index
        entry does not end in a whole batch: the caller must run a recovery scan).
        """
        status = "ok"
        ok = not force_rebuild and self.offset_index.check(self.size) and self.time_index.check(self.size)
        if self.size and ok and self.offset_index.entries:
            # The last entry must point at a batch boundary holding offsets up to its own.
            offset, position = self.offset_index.entry(self.offset_index.entries - 1)
            try:
                h = self.log.header_at(position)
                ok = h.base_offset <= offset
            except CorruptRecordError:
                ok = False
        if self.size and ok and self.time_index.entries:
            # Likewise the last time entry must name a batch whose max timestamp it holds.
            ts, offset = self.time_index.last()
            try:
                pos = self.log.find_offset(self.offset_index.lookup(offset)[1], offset)
                ok = pos < self.size and self.log.header_at(pos).max_timestamp == ts
            except CorruptRecordError:
                ok = False
        if not ok:
            try:
                self.rebuild_indexes()
            except CorruptIndexError:
                return "scan"
            status = "rebuilt"
        if not self.size:
            return status
        _, position = self.offset_index.lookup(2**62)
        r = self.log.scan(position, self.size, False, -1, None, None, self.index_interval_bytes)
        if r.status != HW_OK or r.batches == 0:
            return "scan"
        if r.valid_bytes < self.size:
            # A zero tail (preallocated, never trimmed because of a crash): cut it now.
            self.log.truncate(r.valid_bytes)
        self.first_batch_max_timestamp = self.log.header_at(0).max_timestamp
        self.next_offset = r.next_offset
        self.bytes_since_index = r.valid_bytes - position
        ts, off = self.time_index.last()
        if r.max_timestamp >= ts:
            self.max_timestamp, self.offset_of_max_timestamp = r.max_timestamp, r.offset_of_max_timestamp
        else:
            self.max_timestamp, self.offset_of_max_timestamp = ts, off
        return status

    def seal_indexes(self) -> None:
        """Final time-index entry, then trim both index files to their entries."""
        if self.max_timestamp >= 0:
            last_ts, _ = self.time_index.last()
            if self.max_timestamp > last_ts:
                self.time_index.append(self.max_timestamp, self.offset_of_max_timestamp)
        self.offset_index.flush()
        self.time_index.flush()

    def flush(self) -> None:
        self.log.flush()
        self.txn_index.flush()

    def truncate_to_position(self, position: int, next_offset: int) -> None:
        """Drop data from `position` (a batch boundary) and index entries past it."""
        self.log.truncate(position)
        self.txn_index.truncate_to(next_offset)
        self.offset_index.truncate_entries(self.offset_index.entry_index(next_offset))
        self.time_index.truncate_entries(self.time_index.entry_index(next_offset))
        self.corrupt_ranges = [r for r in self.corrupt_ranges if r.position < position]
        self.next_offset = next_offset
        self.last_append_offset = self.last_append_position = -1
        if position == 0:
            self.first_batch_max_timestamp = -1
        # Recompute timestamps and index accounting from what is left (bounded by one scan
        # of the tail after the last index entry).
        self.max_timestamp = -1
        self.offset_of_max_timestamp = -1
        ts, off = self.time_index.last()
        if ts >= 0:
            self.max_timestamp, self.offset_of_max_timestamp = ts, off
        _, start = self.offset_index.lookup(2**62)
        if start < position:
            r = self.log.scan(start, position, False, -1, None, None, self.index_interval_bytes)
            if r.max_timestamp > self.max_timestamp:
                self.max_timestamp, self.offset_of_max_timestamp = r.max_timestamp, r.offset_of_max_timestamp
            self.bytes_since_index = position - start
        else:
            self.bytes_since_index = 0

    def seal(self) -> None:
        """Make this segment read-only: final index entry, flush, trim files."""
        self.seal_indexes()
        self.log.flush()
        self.txn_index.flush()
        self.close(trim=True)
        # Reopen mapped exactly to their (trimmed) sizes.
        self.log = Segment(self.log_path, 0, False)
        self.offset_index = OffsetIndex(self.index_path, self.base_offset, 0)
        self.time_index = TimeIndex(self.time_index_path, self.base_offset, 0)
        self.active = False

    def close(self, trim: bool = True) -> None:
        self.log.close(trim=trim)
        self.offset_index.close(trim=trim)
        self.time_index.close(trim=trim)

    def delete_files(self) -> None:
        for path in (self.log_path, self.index_path, self.time_index_path, self.txn_index_path):
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass

    def __repr__(self) -> str:
        return f"LogSegment(base={self.base_offset}, size={self.size}, next={self.next_offset})"
