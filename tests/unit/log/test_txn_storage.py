"""Storage side of transactions (issue 5 part 2; kafka-spec.md a.5, b.1, b.5, d.3, d.4).

Goal: PartitionLog writes COMMIT/ABORT markers through the producer-state checks, keeps the last
stable offset right (appends, markers, truncation, retention, reopen after a clean close and
after SIGKILL), keeps the aborted-transaction index `.txnindex` in Kafka's 34-byte layout per
segment (appended on ABORT of a non-empty transaction, with the LSO of that moment; rebuilt after
a crash or damage; deleted with its segment; carried through a compaction swap), answers
aborted_transactions() as Kafka's collectAbortedTransactions, and bounds read_committed reads
at the LSO.
Method: transactional batches built with headwater.record.build_batch (attributes 0x10);
expected offsets, LSOs and index bytes are computed in the test (the entry bytes with struct from
the layout in the spec, not from headwater's encoder); aborted_transactions() is compared with a
brute-force overlap over every (start, upper) window; the crash test kills a child process with
SIGKILL and cuts the log inside the open transaction. Timestamps are explicit; nothing sleeps.
"""

from __future__ import annotations

import os
import signal
import struct
import subprocess
import sys
import textwrap

import pytest

from headwater import record
from headwater.errors import (
    InvalidProducerEpochError,
    InvalidRecordError,
    InvalidTxnStateError,
    TransactionCoordinatorFencedError,
)
from headwater.log import PartitionLog
from headwater.log.cleaner import _batches, clean
from headwater.log.partition_log import READ_COMMITTED

TS = 1_700_000_000_000


def entry_bytes(pid: int, first: int, last: int, lso: int) -> bytes:
    """One .txnindex entry as kafka-spec.md b.1 draws it: int16 version 0, int64 producerId,
    int64 firstOffset, int64 lastOffset, int64 lastStableOffset, big-endian."""
    return struct.pack(">h", 0) + struct.pack(">q", pid) + struct.pack(">q", first) + struct.pack(">q", last) + struct.pack(">q", lso)


class Writer:
    """Transactional appends with per-producer sequences."""

    def __init__(self, log: PartitionLog) -> None:
        self.log = log
        self.seq: dict[int, int] = {}

    def txn(self, pid: int, n: int = 2, epoch: int = 0) -> int:
        s = self.seq.get(pid, 0)
        raw = record.build_batch([b"v%d" % i for i in range(n)], [b"k%d" % i for i in range(n)], timestamp=TS,
                                 producer_id=pid, producer_epoch=epoch, base_sequence=s, attributes=0x10)
        self.seq[pid] = s + n
        return self.log.append_batch(raw)

    def plain(self, n: int = 1) -> int:
        return self.log.append([b"p"] * n, keys=[b"pk"] * n, timestamp=TS)

    def end(self, pid: int, commit: bool, epoch: int = 0, coordinator_epoch: int = 0):
        return self.log.write_txn_marker(pid, epoch, commit, coordinator_epoch, TS)


def txn_files(path: str) -> dict[str, bytes]:
    out = {}
    for name in sorted(os.listdir(path)):
        if name.endswith(".txnindex"):
            with open(os.path.join(path, name), "rb") as f:
                out[name] = f.read()
    return out


# ------------------------------------------------------------------ markers


def test_marker_batch_layout_and_producer_state(open_log) -> None:
    log = open_log()
    w = Writer(log)
    first = w.txn(7, 3)
    assert log.producer_state.ongoing_transactions == {7: first}
    r = w.end(7, True, coordinator_epoch=5)
    assert (r.base_offset, r.last_offset, r.duplicate) == (3, 3, False)
    assert r.completed_txn is not None
    assert (r.completed_txn.producer_id, r.completed_txn.first_offset, r.completed_txn.last_offset,
            r.completed_txn.is_aborted) == (7, 0, 3, False)
    entry = log.producer_state.last_entry(7)
    assert entry.current_txn_first_offset is None and entry.coordinator_epoch == 5
    assert log.producer_state.ongoing_transactions == {}
    with log.read(3) as res:
        [(h, view)] = [(h, bytes(v)) for h, v in res.batches()]
    # kafka-spec.md a.5: attributes 0x30, base sequence -1, one record, the producer's id/epoch.
    assert h.attributes == 0x30 and h.base_sequence == -1 and h.records_count == 1
    assert (h.producer_id, h.producer_epoch, h.base_offset, h.max_timestamp) == (7, 0, 3, TS)
    [rec] = record.batch_records(view)
    assert rec.key == struct.pack(">hh", 0, 1)  # version 0, COMMIT
    assert rec.value == struct.pack(">hi", 0, 5)  # version 0, coordinator epoch
    # An ABORT marker's key type is 0.
    w.txn(7, 1)
    r = w.end(7, False, coordinator_epoch=5)
    with log.read(r.base_offset) as res:
        [rec] = [x for h, v in res.batches() for x in record.batch_records(bytes(v))]
    assert rec.key == struct.pack(">hh", 0, 0)


def test_marker_without_open_transaction_is_written(open_log) -> None:
    log = open_log()
    w = Writer(log)
    w.plain(2)
    r = w.end(99, False)
    assert r.completed_txn is None and r.base_offset == 2 and log.log_end_offset == 3
    assert log.last_stable_offset == 3
    assert txn_files(log.path) == {}  # nothing aborted: no index entry, no file


def test_marker_checks_epochs_before_writing(open_log) -> None:
    log = open_log()
    w = Writer(log)
    w.txn(7, 1, epoch=3)
    w.end(7, True, epoch=3, coordinator_epoch=4)
    end = log.log_end_offset
    with pytest.raises(InvalidProducerEpochError):
        w.end(7, False, epoch=2, coordinator_epoch=4)
    with pytest.raises(TransactionCoordinatorFencedError):
        w.end(7, False, epoch=3, coordinator_epoch=3)
    assert log.log_end_offset == end


# ------------------------------------------------------------------ last stable offset


def test_lso_through_open_commit_abort_and_two_producers(open_log) -> None:
    log = open_log()
    w = Writer(log)
    steps = []
    w.plain(2)                       # 0-1
    steps.append(log.last_stable_offset)  # 2: nothing open
    w.txn(1, 2)                      # 2-3 pid 1 opens at 2
    steps.append(log.last_stable_offset)  # 2
    w.plain(1)                       # 4
    w.txn(2, 2)                      # 5-6 pid 2 opens at 5
    w.txn(1, 1)                      # 7
    steps.append(log.last_stable_offset)  # 2
    w.end(1, True)                   # 8: pid 1 done, pid 2 open from 5
    steps.append(log.last_stable_offset)  # 5
    w.end(2, False)                  # 9: nothing open
    steps.append(log.last_stable_offset)  # 10
    w.txn(2, 1)                      # 10 pid 2 opens again
    steps.append(log.last_stable_offset)  # 10
    assert steps == [2, 2, 2, 5, 10, 10]
    assert log.high_watermark == 11


def test_read_committed_stops_at_lso(open_log) -> None:
    log = open_log()
    w = Writer(log)
    w.plain(2)
    w.txn(1, 3)  # 2-4 open
    w.plain(2)   # 5-6
    with log.read(0, isolation_level=READ_COMMITTED) as r:
        offsets = [rec.offset for rec in r]
        assert offsets == [0, 1]
        assert r.last_stable_offset == 2 and r.aborted_transactions == []
    with log.read(2, isolation_level=READ_COMMITTED) as r:
        assert r.nbytes == 0
    with log.read(0) as r:  # read_uncommitted: everything, and no aborted list (Fetch: null)
        assert [rec.offset for rec in r] == list(range(7))
        assert r.aborted_transactions is None and r.last_stable_offset == 2
    with log.read(0, max_offset=5) as r:
        assert [rec.offset for rec in r] == [0, 1, 2, 3, 4]
    w.end(1, False)  # 7
    with log.read(0, isolation_level=READ_COMMITTED) as r:
        assert [rec.offset for rec in r] == list(range(7))  # whole batches; the consumer filters
        assert r.aborted_transactions == [(1, 2)]
    with log.read(5, isolation_level=READ_COMMITTED) as r:
        assert r.aborted_transactions == [(1, 2)]  # the read [5, 8) includes its marker
    with pytest.raises(ValueError):
        log.read(0, isolation_level=2)


# ------------------------------------------------------------------ the index file


def test_txnindex_bytes_pinned(open_log) -> None:
    log = open_log()
    w = Writer(log)
    w.txn(1, 2)      # 0-1 pid 1
    w.txn(2, 3)      # 2-4 pid 2
    w.end(1, False)  # 5: pid 1 aborted; pid 2 still open from 2 -> stored LSO 2
    w.end(2, True)   # 6: committed: no entry
    w.txn(3, 1)      # 7
    w.end(3, False)  # 8: nothing else open -> stored LSO 9
    w.end(4, False)  # 9: empty transaction: no entry
    want = entry_bytes(1, 0, 5, 2) + entry_bytes(3, 7, 8, 9)
    assert txn_files(log.path) == {"00000000000000000000.txnindex": want}
    assert len(want) == 68
    log.close()
    # Reopened cleanly: the same entries answer queries, the file is untouched.
    log = open_log()
    assert txn_files(log.path) == {"00000000000000000000.txnindex": want}
    assert log.aborted_transactions(0, 10) == [(1, 0), (3, 7)]
    assert log.recovery.rebuilt_indexes == []


def brute(entries, start, upper):
    return [(pid, first) for pid, first, last in entries if last >= start and first < upper]


def test_aborted_transactions_across_segments(open_log) -> None:
    log = open_log(**{"segment.bytes": 400})
    w = Writer(log)
    aborted = []  # (pid, first, marker)
    opened: dict[int, int] = {}
    # Three producers, transactions spanning segments, every third one aborted.
    for i in range(30):
        pid = 1 + i % 3
        first = w.txn(pid, 2)
        opened.setdefault(pid, first)
        if i % 2:
            w.plain(1)
        if i % 3 == 2:
            for p in sorted(opened):
                commit = (i + p) % 3 != 0
                r = w.end(p, commit)
                if not commit:
                    aborted.append((p, opened[p], r.base_offset))
            opened.clear()
    assert len(log.segments) > 5
    assert aborted
    # Each entry is in the segment holding its marker.
    for seg in log.segments:
        for e in seg.txn_index.entries:
            assert seg.base_offset <= e.last_offset < seg.next_offset
    assert sum(len(s.txn_index.entries) for s in log.segments) == len(aborted)
    end = log.log_end_offset
    for start in range(end):
        for upper in range(start + 1, end + 1):
            assert log.aborted_transactions(start, upper) == brute(aborted, start, upper), (start, upper)


# ------------------------------------------------------------------ truncation, retention, cleaner


def test_truncate_removes_entries_and_reopens_transactions(open_log) -> None:
    log = open_log(**{"segment.bytes": 300})
    w = Writer(log)
    w.txn(1, 2)
    w.end(1, False)          # marker at 2
    first2 = w.txn(1, 2)     # 3-4
    w.plain(2)
    r = w.end(1, False)      # marker
    assert log.aborted_transactions(0, log.log_end_offset) == [(1, 0), (1, first2)]
    log.truncate_to(r.base_offset)  # drop the second ABORT marker: its transaction is open again
    assert log.aborted_transactions(0, log.log_end_offset) == [(1, 0)]
    assert log.last_stable_offset == first2
    assert log.producer_state.ongoing_transactions == {1: first2}
    # Truncating into the first transaction removes its entry and file too.
    log.truncate_to(1)
    assert log.aborted_transactions(0, log.log_end_offset) == []
    assert txn_files(log.path) == {}
    assert log.last_stable_offset == 0  # the batch at 0 (offsets 0-1) was cut whole -> log end 0
    assert log.log_end_offset == 0


def test_retention_deletes_segment_and_its_txnindex(open_log) -> None:
    log = open_log(**{"segment.bytes": 300, "retention.ms": 1000})
    w = Writer(log)
    w.txn(1, 3)
    w.end(1, False)
    log.roll()
    assert len(txn_files(log.path)) == 1
    later = log.append([b"new"], timestamp=TS + 10_000)
    deleted = log.enforce_retention(now_ms=TS + 10_500)
    assert deleted == [0]
    assert txn_files(log.path) == {}
    assert log.aborted_transactions(later, later + 1) == []


def test_compaction_keeps_the_txnindex(open_log) -> None:
    cfg = {"segment.bytes": 300, "cleanup.policy": "compact", "min.cleanable.dirty.ratio": 0.0}
    log = open_log(**cfg)
    w = Writer(log)
    for _ in range(3):
        w.plain(2)
    w.txn(5, 2)
    w.end(5, False)
    for _ in range(6):
        w.plain(2)
    before = log.aborted_transactions(0, log.log_end_offset)
    entries_before = [e for s in log.segments for e in s.txn_index.entries]
    assert before == [(5, 6)]
    res = clean(log, TS + 1000)
    assert res.cleaned
    assert [e for s in log.segments for e in s.txn_index.entries] == entries_before
    assert log.aborted_transactions(0, log.log_end_offset) == before
    assert not [n for n in os.listdir(log.path) if n.endswith((".cleaned", ".swap"))]
    log.close()
    log = open_log(**cfg)
    assert log.aborted_transactions(0, log.log_end_offset) == before


# ------------------------------------------------------------------ recovery


def test_torn_txnindex_is_rebuilt(open_log) -> None:
    log = open_log(**{"segment.bytes": 300})
    w = Writer(log)
    w.txn(1, 2)
    w.txn(2, 2)
    w.end(1, False)
    for _ in range(8):
        w.plain(3)
    w.end(2, False)
    w.txn(3, 1)
    w.end(3, False)
    files = txn_files(log.path)
    assert len(files) >= 2
    log.close()
    first = os.path.join(log.path, next(iter(files)))
    with open(first, "ab") as f:
        f.write(b"\x01\x02\x03")  # torn: not a multiple of 34
    log = open_log()
    assert txn_files(log.path) == files  # rebuilt to the same bytes (LSOs included)
    assert 0 in log.recovery.rebuilt_indexes
    # A bad version is caught too.
    log.close()
    with open(first, "r+b") as f:
        f.write(b"\x00\x07")
    log = open_log()
    assert txn_files(log.path) == files


def _child(pdir: str, body: str) -> subprocess.CompletedProcess:
    src = os.path.dirname(os.path.dirname(os.path.abspath(record.__file__)))
    code = textwrap.dedent(
        f"""
        import os, signal, sys
        sys.path.insert(0, {src!r})
        from headwater import record
        from headwater.log import PartitionLog
        log = PartitionLog.open({pdir!r}, **{{"segment.bytes": 600, "flush.policy": "none"}})
        seq = {{}}
        def txn(pid, n):
            s = seq.get(pid, 0)
            seq[pid] = s + n
            return log.append_batch(record.build_batch([b"v"] * n, timestamp={TS}, producer_id=pid,
                                    producer_epoch=0, base_sequence=s, attributes=0x10))
        """
    ) + textwrap.dedent(body) + "\nos.kill(os.getpid(), signal.SIGKILL)\n"
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert p.returncode == -signal.SIGKILL, p.stderr
    return p


def test_kill9_mid_transaction_then_torn_tail(pdir) -> None:
    p = _child(
        pdir,
        """
        for i in range(6):
            txn(1, 3)
            log.write_txn_marker(1, 0, i % 2 == 0, 0, 1)   # even: commit, odd: abort
        log.roll()
        txn(2, 2)
        open_first = txn(3, 2)
        txn(2, 2)
        log.write_txn_marker(2, 0, False, 0, 1)             # pid 2 aborted, pid 3 still open
        mid = txn(3, 4)                                     # pid 3's second batch
        print(open_first, mid, log.last_stable_offset, log.log_end_offset, flush=True)
        print(repr([(e.producer_id, e.first_offset, e.last_offset, e.last_stable_offset)
                    for s in log.segments for e in s.txn_index.entries]), flush=True)
        """,
    )
    line1, line2 = p.stdout.strip().splitlines()
    open_first, mid, lso, leo = map(int, line1.split())
    entries = eval(line2)  # noqa: S307 - our own child's repr of ints
    assert lso == open_first
    assert len(entries) == 4  # three aborts of pid 1, one of pid 2
    assert len({name for name in os.listdir(pdir) if name.endswith(".log")}) >= 3
    # 1. Reopen after the kill: open transaction still open, LSO and index as before.
    log = PartitionLog.open(pdir, **{"segment.bytes": 600})
    try:
        assert not log.recovery.clean_shutdown
        assert log.log_end_offset == leo
        assert log.last_stable_offset == open_first
        assert log.producer_state.ongoing_transactions == {3: open_first}
        got = [(e.producer_id, e.first_offset, e.last_offset, e.last_stable_offset)
               for s in log.segments for e in s.txn_index.entries]
        assert got == entries
        last_seg = log.segments[-1]
        seg_path, seg_base = last_seg.log_path, last_seg.base_offset
        pos = last_seg.position_of(mid)
    finally:
        log.close()
    # 2. Tear the tail inside pid 3's transaction: cut its second batch in half, remove the
    #    clean-shutdown marker and the snapshot taken at close (a crash leaves neither).
    with open(seg_path, "r+b") as f:
        f.truncate(pos + 20)
    os.unlink(os.path.join(pdir, ".clean-shutdown"))
    for name in os.listdir(pdir):
        if name.endswith(".snapshot") and int(name.split(".")[0]) > seg_base:
            os.unlink(os.path.join(pdir, name))
    # Also lose the last index entry (a crash between the marker's write and its entry's).
    idx = last_seg.txn_index_path
    size = os.path.getsize(idx)
    assert size == 34  # pid 2's abort is in the last segment, written after the last roll
    with open(idx, "r+b") as f:
        f.truncate(size - 34)
    log = PartitionLog.open(pdir, **{"segment.bytes": 600})
    try:
        assert log.log_end_offset == mid
        assert log.recovery.truncated_bytes > 0
        assert log.last_stable_offset == open_first
        assert log.producer_state.ongoing_transactions == {3: open_first}
        got = [(e.producer_id, e.first_offset, e.last_offset, e.last_stable_offset)
               for s in log.segments for e in s.txn_index.entries]
        assert got == entries
        # The transaction can still end, and its abort is indexed.
        r = log.write_txn_marker(3, 0, False, 0, TS)
        assert log.aborted_transactions(open_first, r.base_offset + 1)[-1] == (3, open_first)
        assert log.last_stable_offset == log.log_end_offset
    finally:
        log.close()


def all_data(log: PartitionLog) -> list[tuple[int, bytes, int]]:
    """(offset, value, producer id if transactional else -1) of every data record."""
    out = []
    pos = log.log_start_offset
    while pos < log.log_end_offset:
        with log.read(pos) as r:
            for h, v in r.batches():
                if not h.is_control and h.records_count:
                    pid = h.producer_id if h.is_transactional else -1
                    out += [(rec.offset, rec.value, pid) for rec in record.batch_records(bytes(v))]
                pos = h.last_offset + 1
                v.release()
    return out


def test_compaction_removes_aborted_transactions_only_below_lso(open_log) -> None:
    cfg = {"segment.bytes": 300, "cleanup.policy": "compact", "min.cleanable.dirty.ratio": 0.0}
    log = open_log(**cfg)
    w = Writer(log)
    w.plain(1)
    a = w.txn(1, 2)          # aborted
    c = w.txn(2, 2)          # committed
    w.end(1, False)
    w.end(2, True)
    for _ in range(4):
        w.txn(3, 2)          # aborted, over several segments
        w.plain(1)
    w.end(3, False)
    o = w.txn(4, 2)          # still open: everything from here is above the LSO
    for _ in range(4):
        w.plain(1)
    log.roll()
    markers_before = [h.base_offset for s in log.segments for _, h in _batches(s) if h.is_control]
    index_before = [e for s in log.segments for e in s.txn_index.entries]
    lso = log.last_stable_offset
    assert lso == o
    before = all_data(log)
    res = clean(log, TS + 1000)
    after = all_data(log)
    aborted = {(e.producer_id, e.first_offset, e.last_offset) for e in index_before}
    assert {(1, a)} <= {(p, f) for p, f, _ in aborted}

    def is_aborted(x: tuple[int, bytes, int]) -> bool:
        return any(p == x[2] and first <= x[0] <= last and x[0] < lso for p, first, last in aborted)

    # Aborted records below the LSO are gone, committed transactional ones stay; nothing at or
    # above the LSO changed (plain records share the key "pk", so compaction thins those).
    assert [x for x in after if x[0] >= lso] == [x for x in before if x[0] >= lso]
    assert not [x for x in after if is_aborted(x)]
    assert [x for x in after if x[2] >= 0 and x[0] < lso] == [x for x in before if x[2] >= 0 and x[0] < lso and not is_aborted(x)]
    assert (c, b"v0", 2) in after and (c + 1, b"v1", 2) in after
    assert res.aborted_records_removed == 2 + 4 * 2
    # Markers and the index survive; the LSO did not move.
    assert [h.base_offset for s in log.segments for _, h in _batches(s) if h.is_control] == markers_before
    assert [e for s in log.segments for e in s.txn_index.entries] == index_before
    assert log.last_stable_offset == lso
    # Reopening (clean, then after a crash that forces the rebuild) keeps it all.
    log.close()
    log = open_log(**cfg)
    assert all_data(log) == after and log.last_stable_offset == lso
    assert [e for s in log.segments for e in s.txn_index.entries] == index_before


def test_lso_never_below_log_start(open_log) -> None:
    log = open_log()
    w = Writer(log)
    first = w.txn(1, 3)  # 0-2, open
    w.plain(3)           # 3-5
    assert log.last_stable_offset == first == 0
    log.delete_records_before(2)
    assert log.last_stable_offset == 2  # the open transaction still holds it, at the log start
    with log.read(2, isolation_level=READ_COMMITTED) as r:
        assert r.nbytes == 0 and r.last_stable_offset == 2
    w.end(1, True)
    assert log.last_stable_offset == log.log_end_offset == 7


# ------------------------------------------------------------------ randomized model check


class Model:
    """An oracle independent of producer_state: the batches of the log, in order, and the
    transaction rules of kafka-spec.md d.3/b.5 applied by a scan."""

    def __init__(self) -> None:
        self.batches: list[tuple[int, int, str, int, int]] = []  # (base, last, kind, pid, records)

    def add(self, base: int, last: int, kind: str, pid: int = -1, records: int = 1) -> None:
        self.batches.append((base, last, kind, pid, records))

    def truncate(self, offset: int) -> None:
        self.batches = [b for b in self.batches if b[1] < offset]

    @property
    def end(self) -> int:
        return self.batches[-1][1] + 1 if self.batches else 0

    def scan(self) -> tuple[int, list[tuple[int, int, int, int]], dict[int, int]]:
        """(LSO, aborted index entries, open transactions)."""
        open_: dict[int, int] = {}
        entries = []
        for base, _last, kind, pid, _ in self.batches:
            if kind == "txn":
                open_.setdefault(pid, base)
            elif kind in ("commit", "abort") and pid in open_:
                first = open_.pop(pid)
                if kind == "abort":
                    entries.append((pid, first, base, min(open_.values(), default=base + 1)))
        return min([*open_.values(), self.end]), entries, open_

    def seqs(self) -> dict[int, int]:
        out: dict[int, int] = {}
        for _, _, kind, pid, n in self.batches:
            if kind == "txn":
                out[pid] = out.get(pid, 0) + n
        return out


def _entries(log: PartitionLog) -> list[tuple[int, int, int, int]]:
    return [tuple(e) for s in log.segments for e in s.txn_index.entries]


def _crash_reopen(log: PartitionLog, open_log, cfg: dict, *, drop_indexes: bool) -> PartitionLog:
    """Close, then make the directory look like a SIGKILL left it: no clean-shutdown marker and
    no snapshot newer than the last roll; optionally no .txnindex files at all."""
    path = log.path
    bases = [s.base_offset for s in log.segments]
    log.close()
    os.unlink(os.path.join(path, ".clean-shutdown"))
    for name in os.listdir(path):
        newer = name.endswith(".snapshot") and int(name.split(".")[0]) > bases[-1]
        if newer or (drop_indexes and name.endswith((".txnindex", ".snapshot"))):
            os.unlink(os.path.join(path, name))
    return open_log(**cfg)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_transactions_against_a_model(open_log, seed) -> None:
    import random

    rnd = random.Random(seed)
    cfg = {"segment.bytes": 500, "flush.policy": "none"}
    log = open_log(**cfg)
    w = Writer(log)
    model = Model()
    for step in range(250):
        op = rnd.random()
        pid = rnd.choice([1, 2, 3])
        if op < 0.45:
            n = rnd.randint(1, 3)
            base = w.txn(pid, n)
            model.add(base, base + n - 1, "txn", pid, n)
        elif op < 0.6:
            base = w.plain(1)
            model.add(base, base, "plain")
        elif op < 0.9:
            r = w.end(pid, rnd.random() < 0.5)
            model.add(r.base_offset, r.base_offset, "commit" if r.completed_txn is None or not r.completed_txn.is_aborted else "abort", pid)
            # (a marker for a producer without an open transaction ends nothing)
        elif op < 0.95 and log.log_end_offset > 0:
            cut = rnd.randrange(0, log.log_end_offset)
            log.truncate_to(cut)
            model.truncate(cut)
            w.seq = model.seqs()
        else:
            log = _crash_reopen(log, open_log, cfg, drop_indexes=rnd.random() < 0.3)
            w.log = log
        lso, entries, open_ = model.scan()
        assert log.log_end_offset == model.end, step
        assert log.last_stable_offset == lso, step
        assert log.producer_state.ongoing_transactions == open_, step
        assert _entries(log) == entries, step
    end = log.log_end_offset
    lso, entries, _ = model.scan()
    for start in range(0, end, 7):
        for upper in range(start + 1, end + 1, 5):
            assert log.aborted_transactions(start, upper) == brute([(p, f, last) for p, f, last, _ in entries], start, upper)
    log = _crash_reopen(log, open_log, cfg, drop_indexes=True)
    assert _entries(log) == entries and log.last_stable_offset == lso


@pytest.mark.parametrize("stage", ["renamed.txnindex.swap", "committed", "deleted 0", "renamed.index", "renamed.txnindex"])
def test_txnindex_survives_a_crash_during_the_compaction_swap(open_log, pdir, stage) -> None:
    cfg = {"segment.bytes": 300, "cleanup.policy": "compact", "min.cleanable.dirty.ratio": 0.0}
    log = open_log(**cfg)
    w = Writer(log)
    w.plain(2)
    w.txn(5, 2)
    w.end(5, False)
    w.txn(6, 1)
    w.plain(2)
    w.end(6, False)
    for _ in range(6):
        w.plain(2)
    want = _entries(log)
    assert len(want) == 2
    log.close()
    src = os.path.dirname(os.path.dirname(os.path.abspath(record.__file__)))
    code = textwrap.dedent(
        f"""
        import os, sys
        sys.path.insert(0, {src!r})
        from headwater.log import PartitionLog, cleaner
        log = PartitionLog.open({pdir!r}, **{cfg!r})
        def hook(name):
            if name == {stage!r}:
                os._exit(0)
        cleaner._stage = hook
        cleaner.clean(log, {TS + 1000})
        os._exit(3)
        """
    )
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    log = open_log(**cfg)
    assert _entries(log) == want
    assert not [n for n in os.listdir(pdir) if n.endswith((".swap", ".cleaned"))]
    clean(log, TS + 1000)
    assert _entries(log) == want


@pytest.mark.parametrize("form", ["list", "headers", "numpy"])
def test_append_transactional_records(open_log, form) -> None:
    np = pytest.importorskip("numpy")
    log = open_log()
    kw = {"producer_id": 9, "producer_epoch": 0, "is_transactional": True, "timestamp": TS}
    if form == "list":
        first = log.append([b"a", b"b"], keys=[b"k", b"k"], base_sequence=0, **kw)
    elif form == "headers":
        first = log.append([b"a", b"b"], headers=[[("h", b"1")], []], base_sequence=0, **kw)
    else:
        first = log.append(np.array([b"a", b"b"], dtype="S1"), base_sequence=0, **kw)
    assert log.producer_state.ongoing_transactions == {9: first}
    assert log.last_stable_offset == first
    with log.read(first) as r:
        [h] = [h for h, _ in r.batches()]
    assert h.is_transactional and not h.is_control and (h.producer_id, h.base_sequence) == (9, 0)
    # A retry is a duplicate, a plain batch of the producer is refused while it is open.
    assert log.append([b"a", b"b"], keys=[b"k", b"k"], base_sequence=0, **kw) == first
    with pytest.raises(InvalidTxnStateError):
        log.append([b"c"], producer_id=9, producer_epoch=0, base_sequence=2, timestamp=TS)
    log.write_txn_marker(9, 0, False, 0, TS)
    assert log.aborted_transactions(0, log.log_end_offset) == [(9, first)]
    with pytest.raises(InvalidRecordError):
        log.append([b"x"], is_transactional=True)
