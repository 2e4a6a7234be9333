"""Stateful property test: PartitionLog against an in-memory model (issue 2 acceptance).

Goal: any interleaving of append (small batches, some compressed), read, roll, retention by
bytes, DeleteRecords, truncate_to, clean close+reopen and a "crash" (reopen without the
clean-shutdown marker, so recovery runs) leaves the log agreeing with a model that is just a
list of batches [(base offset, [(key, value), ...])] plus a log start offset.

Method: hypothesis RuleBasedStateMachine. The model predicts offsets, the batch boundaries a
truncation falls back to, and which whole segments retention.bytes deletes (kafka-spec.md b.3:
oldest first while total - segment size >= retention.bytes, using the segment sizes observed
just before). Reads compare every record from the requested offset with the model; an
invariant checks log start/end offsets after every step. segment.bytes is small (4 KiB) so
rolls happen constantly; flush.policy=batch, so a crash loses nothing.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile

import hypothesis.strategies as st
from hypothesis import HealthCheck, event, settings
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from headwater.log import PartitionLog

logging.getLogger("headwater.log").setLevel(logging.ERROR)

BASE_CFG = {
    "segment.bytes": 4096,
    "segment.index.bytes": 1024,
    "index.interval.bytes": 256,
    "retention.ms": -1,
    "flush.policy": "batch",
}

values_st = st.binary(min_size=0, max_size=300)
keys_st = st.one_of(st.none(), st.binary(min_size=0, max_size=8))
batch_st = st.lists(st.tuples(keys_st, values_st), min_size=1, max_size=8)


class LogMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.tmp = tempfile.mkdtemp(prefix="hw-stateful-")
        self.path = os.path.join(self.tmp, "t-0")
        self.cfg = dict(BASE_CFG)
        self.log = PartitionLog.open(self.path, **self.cfg)
        self.batches: list[tuple[int, list[tuple[bytes | None, bytes]]]] = []
        self.start = 0
        self.ts = 1_000

    # ------------------------------------------------------------------ model helpers

    @property
    def end(self) -> int:
        if not self.batches:
            return self._empty_end
        base, recs = self.batches[-1]
        return base + len(recs)

    _empty_end = 0

    def records_from(self, offset: int) -> list[tuple[int, bytes | None, bytes]]:
        out = []
        for base, recs in self.batches:
            for i, (k, v) in enumerate(recs):
                if base + i >= offset:
                    out.append((base + i, k, v))
        return out

    def drop_below(self, offset: int) -> None:
        """Model of a new log start: whole segments go on disk, the model keeps batches that
        still hold offsets >= the start (reads below it are refused anyway)."""
        end = self.end
        self.batches = [(b, r) for b, r in self.batches if b + len(r) > offset]
        if not self.batches:
            self._empty_end = end
        self.start = offset

    # ------------------------------------------------------------------ rules

    @rule(
        batch=batch_st, codec=st.sampled_from([None, None, None, "gzip", "lz4", "zstd", "snappy"])
    )
    def append(self, batch, codec) -> None:
        self.ts += 1
        keys = [k for k, _ in batch]
        values = [v for _, v in batch]
        first = self.log.append(
            values, keys=keys, timestamps=[self.ts] * len(batch), compression=codec
        )
        assert first == self.end
        self.batches.append((first, list(batch)))

    @rule(data=st.data(), max_bytes=st.sampled_from([1, 200, 4096, 1 << 20]))
    def read(self, data, max_bytes) -> None:
        offset = data.draw(st.integers(self.start, self.end), label="offset")
        expect = self.records_from(offset)
        got = []
        while offset < self.end:
            with self.log.read(offset, max_bytes=max_bytes) as r:
                recs = [(x.offset, x.key, x.value) for x in r]
            assert recs, f"read({offset}) returned nothing below the log end {self.end}"
            assert recs[0][0] == offset
            got += recs
            offset = recs[-1][0] + 1
        assert got == expect
        with self.log.read(self.end) as r:
            assert r.nbytes == 0

    @rule()
    def roll(self) -> None:
        self.log.roll()

    @rule(data=st.data())
    def truncate(self, data) -> None:
        offset = data.draw(st.integers(self.start, self.end), label="offset")
        holder = next(((b, r) for b, r in self.batches if b <= offset < b + len(r)), None)
        new_end = holder[0] if holder is not None else self.end
        if new_end < self.start:
            return  # the batch holding it straddles the log start: not a legal target
        assert self.log.truncate_to(offset) == new_end
        event("truncate moved the end" if new_end < self.end else "truncate at the end")
        self.batches = [(b, r) for b, r in self.batches if b < new_end]
        if not self.batches:
            self._empty_end = new_end

    @precondition(lambda self: self.end > self.start)
    @rule(data=st.data())
    def delete_records(self, data) -> None:
        offset = data.draw(st.integers(self.start, self.end - 1), label="offset")
        assert self.log.delete_records_before(offset) == max(offset, self.start)
        self.drop_below(max(offset, self.start))

    @rule(limit=st.integers(0, 12_000))
    def retention_bytes(self, limit) -> None:
        segs = [(s.base_offset, s.size, s.next_offset) for s in self.log.segments]
        total = sum(size for _, size, _ in segs)
        expect_deleted = []
        for base, size, _ in segs:
            if size and total - size >= limit:
                expect_deleted.append(base)
                total -= size
            else:
                break
        self.reopen(clean=True, **{"retention.bytes": limit})
        deleted = self.log.enforce_retention()
        assert deleted == expect_deleted
        event(f"retention deleted {min(len(deleted), 3)}{'+' if len(deleted) > 3 else ''} segments")
        if deleted:
            survivors = [s for s in segs if s[0] not in deleted]
            new_start = survivors[0][0] if survivors else segs[-1][2]
            new_start = max(new_start, self.start)
            assert self.log.log_start_offset == new_start
            self.drop_below(new_start)

    @rule()
    def reopen_clean(self) -> None:
        self.reopen(clean=True)
        rec = self.log.recovery
        assert rec.clean_shutdown and rec.segments_scanned == 0 and not rec.dropped_anything()

    @rule()
    def crash(self) -> None:
        self.reopen(clean=False)
        rec = self.log.recovery
        event(f"crash recovery scanned {min(rec.segments_scanned, 2)} segments")
        assert not rec.clean_shutdown
        assert not rec.dropped_anything() and rec.corrupt_ranges == [], rec.summary()

    def reopen(self, clean: bool, **overrides) -> None:
        self.log.close()
        if not clean:
            os.unlink(os.path.join(self.path, ".clean-shutdown"))
        self.cfg = {**BASE_CFG, **overrides}
        self.log = PartitionLog.open(self.path, **self.cfg)

    # ------------------------------------------------------------------ invariants

    @invariant()
    def offsets_agree(self) -> None:
        assert self.log.log_start_offset == self.start
        assert self.log.log_end_offset == self.end
        segs = self.log.segments
        assert [s.base_offset for s in segs] == sorted(s.base_offset for s in segs)
        assert all(s.size <= BASE_CFG["segment.bytes"] for s in segs)

    def teardown(self) -> None:
        try:
            self.log.close()
        finally:
            shutil.rmtree(self.tmp, ignore_errors=True)


LogMachine.TestCase.settings = settings(
    max_examples=30,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
TestPartitionLogStateful = LogMachine.TestCase
