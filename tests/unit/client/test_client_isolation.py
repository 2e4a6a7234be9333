"""The embedded Consumer's isolation.level (issue 5 part 3; kafka-spec.md d.4).

Goal: read_committed delivers only records below the last stable offset and never a record of
an aborted transaction; read_uncommitted delivers every data record; neither ever delivers a
control record (transaction marker); both poll()/consume() and consume_batch() agree.
Method: transactional batches built with headwater.record.build_batch (attributes 0x10, a
producer id, epoch and sequence) are appended to a topic's partition log, interleaved between
two producers and with plain records, and ended with PartitionLog.write_txn_marker. The
expected record set is computed in the test from what each transaction's outcome was, then
compared with what consumers at each isolation level return, offset by offset.
"""

from __future__ import annotations

import pytest

from headwater import record
from headwater._native._native import decode_columns
from headwater.client import OFFSET_END, TopicPartition
from headwater.client.consumer import committed_runs
from headwater.errors import ConfigError, CorruptRecordError, TruncatedError

TS = 1_700_000_000_000


class Txns:
    """Appends transactional batches to one partition and remembers every data record's fate:
    offset -> (value, 'plain' | 'open' | 'committed' | 'aborted')."""

    def __init__(self, plog) -> None:
        self.plog = plog
        self.seq: dict[int, int] = {}
        self.fate: dict[int, list] = {}
        self.open: dict[int, list[int]] = {}

    def send(self, pid: int, n: int, tag: str) -> None:
        values = [f"{tag}-{i}".encode() for i in range(n)]
        seq = self.seq.get(pid, 0)
        raw = record.build_batch(values, [b"k"] * n, timestamp=TS, producer_id=pid, producer_epoch=0,
                                 base_sequence=seq, attributes=0x10)
        self.seq[pid] = seq + n
        base = self.plog.append_batch(raw)
        for i, v in enumerate(values):
            self.fate[base + i] = [v, "open"]
            self.open.setdefault(pid, []).append(base + i)

    def plain(self, n: int, tag: str) -> None:
        values = [f"{tag}-{i}".encode() for i in range(n)]
        base = self.plog.append(values, keys=[b"k"] * n, timestamp=TS)
        for i, v in enumerate(values):
            self.fate[base + i] = [v, "plain"]

    def end(self, pid: int, commit: bool) -> None:
        self.plog.write_txn_marker(pid, 0, commit, 0, TS)
        for off in self.open.pop(pid, []):
            self.fate[off][1] = "committed" if commit else "aborted"

    def expected(self, committed_only: bool, upto: int | None = None) -> list[tuple[int, bytes]]:
        keep = ("plain", "committed") if committed_only else ("plain", "committed", "aborted", "open")
        return [(o, f[0]) for o, f in sorted(self.fate.items()) if f[1] in keep and (upto is None or o < upto)]


def consumer_at(broker, isolation, offset=0, topic="t", **extra):
    c = broker.consumer({"group.id": None, "isolation.level": isolation, "enable.partition.eof": False, **extra})
    c.assign([TopicPartition(topic, 0, offset)])
    return c


def drain_poll(c, limit=100_000):
    out = []
    while len(out) < limit:
        got = c.consume(1000, 0)
        if not got:
            break
        out += [(m.offset(), m.value()) for m in got if m.error() is None]
    return out


def drain_columns(c):
    out = []
    while True:
        batches = c.consume_batch(timeout=0)
        if not batches:
            return out
        for cb in batches:
            cols = cb.columns
            out += [(cols.offsets[i], bytes(cols.value(i))) for i in range(len(cols))]
            cb.release()


def mixed(broker, topic="t", config=None):
    """Two producers interleaving transactions, some aborted, with plain records between."""
    broker.create_topic(topic, 1, config)
    t = Txns(broker.get_log(topic, 0))
    t.plain(3, "p0")
    t.send(1, 4, "a1")
    t.send(2, 2, "b1")
    t.send(1, 3, "a2")
    t.end(1, False)  # aborted, interleaved with producer 2's open one
    t.send(2, 2, "b2")
    t.end(2, True)
    t.send(1, 5, "a3")
    t.end(1, True)
    t.send(2, 3, "b3")
    t.end(2, False)
    t.plain(2, "p1")
    t.send(1, 2, "a4")
    t.send(1, 2, "a5")
    t.end(1, False)
    t.plain(1, "p2")
    return t


@pytest.mark.parametrize("reader", [drain_poll, drain_columns], ids=["poll", "consume_batch"])
def test_read_committed_skips_aborted_and_markers(broker, reader) -> None:
    t = mixed(broker)
    c = consumer_at(broker, "read_committed")
    got = reader(c)
    assert got == t.expected(committed_only=True)
    assert not any(v.startswith((b"a1", b"a2", b"b3", b"a4", b"a5")) for _, v in got)
    c.close()


@pytest.mark.parametrize("reader", [drain_poll, drain_columns], ids=["poll", "consume_batch"])
def test_read_uncommitted_sees_aborted_but_no_markers(broker, reader) -> None:
    t = mixed(broker)
    c = consumer_at(broker, "read_uncommitted")
    got = reader(c)
    want = t.expected(committed_only=False)
    assert got == want
    # Markers take offsets of their own: they are the only offsets missing.
    markers = set(range(broker.get_log("t", 0).log_end_offset)) - {o for o, _ in got}
    assert len(markers) == 5
    c.close()


def test_default_isolation_is_read_committed(broker) -> None:
    t = mixed(broker)
    c = broker.consumer({"group.id": None})
    c.assign([TopicPartition("t", 0, 0)])
    assert drain_poll(c) == t.expected(committed_only=True)
    c.close()


def test_bad_isolation_level_refused(broker) -> None:
    with pytest.raises(ConfigError):
        broker.consumer({"group.id": None, "isolation.level": "read_dirty"})


@pytest.mark.parametrize("reader", [drain_poll, drain_columns], ids=["poll", "consume_batch"])
def test_read_committed_stops_at_lso_and_continues_after_commit(broker, reader) -> None:
    broker.create_topic("t", 1)
    t = Txns(broker.get_log("t", 0))
    t.plain(2, "before")
    t.send(7, 3, "open")
    lso = broker.get_log("t", 0).last_stable_offset
    assert lso == 2
    t.plain(2, "after")  # committed data behind the open transaction waits too
    rc = consumer_at(broker, "read_committed")
    ru = consumer_at(broker, "read_uncommitted")
    assert reader(rc) == t.expected(True, upto=lso)
    assert reader(ru) == t.expected(False)  # everything, the open transaction's records too
    assert reader(rc) == []  # nothing more while the transaction is open
    assert rc.position([TopicPartition("t", 0)])[0].offset == lso
    t.end(7, True)
    assert broker.get_log("t", 0).last_stable_offset == broker.get_log("t", 0).log_end_offset
    assert reader(rc) == [x for x in t.expected(True) if x[0] >= lso]
    rc.close()
    ru.close()


@pytest.mark.parametrize("reader", [drain_poll, drain_columns], ids=["poll", "consume_batch"])
def test_aborted_transaction_across_segments_and_mid_transaction_start(broker, reader) -> None:
    # Small segments: the aborted transactions' batches and their markers land in different
    # segments, so the ranges come from several .txnindex files.
    t = mixed(broker, config={"segment.bytes": 300})
    plog = broker.get_log("t", 0)
    assert len(plog.segments) > 4
    full = t.expected(True)
    for start in range(plog.log_end_offset):
        c = consumer_at(broker, "read_committed", offset=start)
        got = reader(c)
        c.close()
        assert got == [x for x in full if x[0] >= start], start


def test_small_fetches_split_runs(broker) -> None:
    # max.partition.fetch.bytes of one byte: every read returns one batch (KIP-74).
    t = mixed(broker)
    c = consumer_at(broker, "read_committed", **{"max.partition.fetch.bytes": 1})
    assert drain_poll(c) == t.expected(True)
    c.close()
    c = consumer_at(broker, "read_committed", **{"max.partition.fetch.bytes": 1})
    assert drain_columns(c) == t.expected(True)
    c.close()


def test_position_moves_past_trailing_markers(broker) -> None:
    broker.create_topic("t", 1)
    t = Txns(broker.get_log("t", 0))
    t.send(1, 2, "x")
    t.end(1, False)
    c = consumer_at(broker, "read_committed")
    assert drain_poll(c) == []
    # Nothing delivered: position() reports the fetch position, past the abort marker.
    assert c.position([TopicPartition("t", 0)])[0].offset == 3
    c.close()


def test_offset_end_is_the_lso_under_read_committed(broker) -> None:
    broker.create_topic("t", 1)
    t = Txns(broker.get_log("t", 0))
    t.plain(2, "p")
    t.send(1, 2, "x")
    rc = consumer_at(broker, "read_committed", offset=OFFSET_END)
    ru = consumer_at(broker, "read_uncommitted", offset=OFFSET_END)
    t.end(1, True)
    assert [v for _, v in drain_poll(rc)] == [b"x-0", b"x-1"]
    assert drain_poll(ru) == []
    rc.close()
    ru.close()


def test_committed_runs_follows_kafkas_algorithm() -> None:
    # Batches: pid 1 txn (aborted), pid 2 txn (committed), pid 1 abort marker, pid 1 txn (a
    # later, committed transaction of the same producer), plain.
    def txn(pid, seq, base):
        return bytearray(record.build_batch([b"v"], timestamp=TS, producer_id=pid, producer_epoch=0,
                                            base_sequence=seq, attributes=0x10, base_offset=base))

    parts = [
        txn(1, 0, 10),
        txn(2, 0, 11),
        bytearray(record.build_control_batch(0, producer_id=1, producer_epoch=0, coordinator_epoch=0,
                                             timestamp=TS, base_offset=12)),
        txn(1, 1, 13),
        bytearray(record.build_batch([b"p"], timestamp=TS, base_offset=14)),
    ]
    view = memoryview(b"".join(parts))
    sizes = [len(p) for p in parts]
    starts = [sum(sizes[:i]) for i in range(len(sizes))]
    assert committed_runs(view, [(1, 10)]) == [(starts[1], len(view))]
    # No entry: nothing skipped. An entry for an unrelated producer: nothing skipped.
    assert committed_runs(view, []) == [(0, len(view))]
    assert committed_runs(view, [(9, 10)]) == [(0, len(view))]
    # Entry for producer 2 starting at 11: only its batch goes.
    assert committed_runs(view, [(2, 11)]) == [(0, starts[1]), (starts[2], len(view))]
    # decode_columns over the runs equals decoding each run's slice on its own.
    for aborted in ([(1, 10)], [(2, 11)], [], [(1, 10), (2, 11)]):
        runs = committed_runs(view, aborted)
        whole = decode_columns(view, -1, None, runs)
        parts_ = [decode_columns(view[a:b]) for a, b in runs]
        assert list(whole.offsets) == [o for c in parts_ for o in c.offsets]
        assert [whole.value(i) for i in range(len(whole))] == [c.value(i) for c in parts_ for i in range(len(c))]
    assert len(decode_columns(view, -1, None, [])) == 0  # no run: nothing delivered
    # A read cut inside a batch (never what a log read returns) raises, it does not read on.
    with pytest.raises((TruncatedError, CorruptRecordError)):
        committed_runs(view[: starts[1] + 20], [(1, 10)])
    with pytest.raises((TruncatedError, CorruptRecordError)):
        committed_runs(view[: len(view) - 3], [])
