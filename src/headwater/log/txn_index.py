"""The aborted-transaction index of one segment: `<base:020d>.txnindex` (Kafka's TransactionIndex).

One entry per transaction that an ABORT marker in this segment ended, in marker order, 34 bytes
each, big-endian (kafka-spec.md b.1; Kafka's AbortedTxn):

    off  len  field
      0    2  version            int16 = 0
      2    8  producerId         int64
     10    8  firstOffset        int64  first offset of the transaction in this partition
     18    8  lastOffset         int64  offset of the ABORT marker
     26    8  lastStableOffset   int64  the partition's LSO once the marker was written

Why the LSO is stored: a read_committed fetch of [fetch offset, upper bound) needs every aborted
transaction overlapping that range. Walking the segments from the one holding the fetch offset,
an entry whose lastStableOffset >= upper bound proves that every transaction starting below the
bound had ended when it was written, so no later entry can overlap: the walk stops there
(Kafka's collectAbortedTxns / TxnIndexSearchResult.isComplete).

The file holds only whole entries and is created with its first entry (a segment without aborted
transactions has none). Entries live in memory too (aborts are rare next to data; a fetch must
not read a file). Appends are a `pwrite` at the end (page cache); `flush()` fsyncs, and the
segment flushes it with its log. Recovery treats the file like the other indexes (docs/storage.md):
a file whose size is not a multiple of 34, or whose entries are out of order, of an unknown
version, or outside the segment's offsets, fails `check()` and is rebuilt from the log (markers
and producer state: PartitionLog replays them); the tail of a log that recovery scanned has its
index reset and rebuilt the same way.

Thread-safety: none; the owning PartitionLog serialises every call under its lock.
"""

from __future__ import annotations

import os
import struct
from typing import NamedTuple

TXN_INDEX_SUFFIX = ".txnindex"
ENTRY = struct.Struct(">hqqqq")
ENTRY_BYTES = ENTRY.size
CURRENT_VERSION = 0
assert ENTRY_BYTES == 34


class AbortedTxn(NamedTuple):
    """One `.txnindex` entry: an aborted transaction of `producer_id` over offsets
    [first_offset, last_offset] (last_offset: its ABORT marker)."""

    producer_id: int
    first_offset: int
    last_offset: int
    last_stable_offset: int

    def encode(self) -> bytes:
        return ENTRY.pack(CURRENT_VERSION, *self)


def decode_entries(data: bytes) -> list[AbortedTxn]:
    """Entries of a `.txnindex` file's bytes (whole entries only; the caller checks the size)."""
    out = []
    for version, pid, first, last, lso in ENTRY.iter_unpack(data[: len(data) - len(data) % ENTRY_BYTES]):
        if version != CURRENT_VERSION:
            raise ValueError(f"txn index entry version {version}")
        out.append(AbortedTxn(pid, first, last, lso))
    return out


class TxnIndex:
    """The aborted-transaction index of the segment with base offset `base_offset`."""

    __slots__ = ("path", "base_offset", "entries", "_dirty", "problem")

    def __init__(self, path: str, base_offset: int) -> None:
        self.path = path
        self.base_offset = base_offset
        self.entries: list[AbortedTxn] = []
        self._dirty = False
        # Why the file failed to load (None: it loaded, or there is none).
        self.problem: str | None = None
        self._load()

    def _load(self) -> None:
        try:
            with open(self.path, "rb") as f:
                data = f.read()
        except FileNotFoundError:
            return
        if len(data) % ENTRY_BYTES:
            self.problem = f"size {len(data)} is not a multiple of {ENTRY_BYTES}"
        try:
            self.entries = decode_entries(data)
        except ValueError as exc:
            self.problem = str(exc)
            self.entries = []

    # ------------------------------------------------------------------ queries

    def __len__(self) -> int:
        return len(self.entries)

    @property
    def last_offset(self) -> int:
        """Offset of the last entry's marker, or -1."""
        return self.entries[-1].last_offset if self.entries else -1

    def check(self, next_offset: int) -> bool:
        """Structural check against a segment holding offsets [base_offset, next_offset):
        whole entries of version 0, markers inside the segment in increasing order, each
        transaction starting at or before its marker. (The stored LSO may lie before the
        transaction's first offset: another transaction opened earlier may still be open.)"""
        if self.problem is not None:
            return False
        prev = self.base_offset - 1
        for e in self.entries:
            if not (prev < e.last_offset < next_offset) or e.first_offset > e.last_offset:
                self.problem = f"entry {e} out of order or outside [{self.base_offset}, {next_offset})"
                return False
            if e.first_offset < 0 or e.last_stable_offset < 0 or e.producer_id < 0:
                self.problem = f"entry {e} has a negative field"
                return False
            prev = e.last_offset
        return True

    def collect(self, fetch_offset: int, upper_bound_offset: int, out: list[AbortedTxn]) -> bool:
        """Append to `out` the entries overlapping [fetch_offset, upper_bound_offset); True
        when no later segment can hold more (an entry's LSO reached the upper bound)."""
        for e in self.entries:
            if e.last_offset >= fetch_offset and e.first_offset < upper_bound_offset:
                out.append(e)
            if e.last_stable_offset >= upper_bound_offset:
                return True
        return False

    # ------------------------------------------------------------------ changes

    def append(self, entry: AbortedTxn) -> None:
        """Add the entry of a marker after every entry present (pwrite at the end of the file).

        Raises:
            ValueError: the marker is not after the last entry's.
            OSError: the write failed (the entry is not added).
        """
        if entry.last_offset <= self.last_offset:
            raise ValueError(f"txn index of {self.base_offset}: marker {entry.last_offset} not after {self.last_offset}")
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o644)
        try:
            data = entry.encode()
            pos = len(self.entries) * ENTRY_BYTES
            n = os.pwrite(fd, data, pos)
            if n != len(data):
                os.ftruncate(fd, pos)
                raise OSError(f"short write to {self.path}")
        finally:
            os.close(fd)
        self.entries.append(entry)
        self._dirty = True

    def truncate_to(self, offset: int) -> None:
        """Drop the entries whose marker is at or after `offset`."""
        keep = len(self.entries)
        while keep and self.entries[keep - 1].last_offset >= offset:
            keep -= 1
        if keep == len(self.entries) and self.problem is None:
            return
        self._rewrite(self.entries[:keep])

    def reset(self) -> None:
        """Forget every entry and remove the file (recovery rebuilds it)."""
        self.entries = []
        self.problem = None
        self._dirty = False
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass

    def _rewrite(self, entries: list[AbortedTxn]) -> None:
        if not entries:
            self.reset()
            return
        with open(self.path, "r+b" if os.path.exists(self.path) else "wb") as f:
            f.truncate(len(entries) * ENTRY_BYTES)
            f.seek(0)
            f.write(b"".join(e.encode() for e in entries))
        self.entries = list(entries)
        self.problem = None
        self._dirty = True

    def flush(self) -> None:
        """fsync the file if entries were written since the last flush."""
        if not self._dirty:
            return
        if self.entries:
            fd = os.open(self.path, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        self._dirty = False

    def delete(self) -> None:
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass

    def __repr__(self) -> str:
        return f"TxnIndex({self.path!r}, entries={len(self.entries)})"


def write_index_file(path: str, entries: list[AbortedTxn]) -> None:
    """Write a complete `.txnindex` file (the cleaner's `.txnindex.cleaned`), fsync'd."""
    with open(path, "wb") as f:
        f.write(b"".join(e.encode() for e in entries))
        f.flush()
        os.fsync(f.fileno())


__all__ = ["AbortedTxn", "ENTRY_BYTES", "TXN_INDEX_SUFFIX", "TxnIndex", "decode_entries", "write_index_file"]
