"""ExactlyOnceSink and SQLiteStore with the embedded broker (client/sink.py).

Goal: each batch's effects and its offsets commit together; the sink positions the consumer
from the database, never from the group's offsets; a failed batch rolls back and comes again;
a rebalance or a second instance never makes a record apply twice or not at all; the
seen-store drops records whose dedup key was seen, within its count and age bounds.

Method: real brokers and SQLite files in tmp_path. Each record of a stream adds its value to
a per-key total and inserts a row, so a repeat or a loss shows in both tables; `expected()`
computes what applying every record once gives. Every loop has a deadline.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from client_helpers import FAST_CONSUMER

from headwater.client import OFFSET_END, Broker, TopicPartition
from headwater.client.sink import (
    DEFAULT_DEDUP_HEADER,
    ExactlyOnceSink,
    SinkApplyError,
    SinkOffsetsError,
    SQLiteStore,
    TransactionalStore,
    dedup_key,
)

CONSUMER = {**FAST_CONSUMER, "enable.auto.commit": False}


def make_store(path: Path, **kwargs: Any) -> SQLiteStore:
    store = SQLiteStore(path, **kwargs)
    store.connection.execute("CREATE TABLE IF NOT EXISTS totals (key TEXT PRIMARY KEY, total INTEGER NOT NULL, n INTEGER NOT NULL)")
    store.connection.execute("CREATE TABLE IF NOT EXISTS applied (topic TEXT, partition INTEGER, kafka_offset INTEGER, key TEXT, amount INTEGER)")
    return store


def apply_records(conn: sqlite3.Connection, messages: list[Any]) -> None:
    """Two effects per record: add to the key's total, insert a row."""
    for m in messages:
        key, amount = m.key().decode(), int(m.value())
        conn.execute(
            "INSERT INTO totals VALUES (?, ?, 1) ON CONFLICT (key) DO UPDATE SET total = total + excluded.total, n = n + 1",
            (key, amount),
        )
        conn.execute("INSERT INTO applied VALUES (?, ?, ?, ?, ?)", (m.topic(), m.partition(), m.offset(), key, amount))


def produce(broker: Broker, topic: str, partitions: int, per_partition: int, start: int = 0, headers: Callable[[int], Any] | None = None) -> list[tuple[str, int]]:
    """per_partition records in each partition; record i has key k{i%5}, value i."""
    producer = broker.producer()
    out = []
    i = start
    for p in range(partitions):
        for _ in range(per_partition):
            h = headers(i) if headers else None
            producer.produce(topic, key=f"k{i % 5}".encode(), value=str(i).encode(), partition=p, headers=h)
            out.append((f"k{i % 5}", i))
            i += 1
    producer.flush(10)
    producer.close()
    return out


def expected(records: list[tuple[str, int]]) -> dict[str, tuple[int, int]]:
    out: dict[str, tuple[int, int]] = {}
    for key, amount in records:
        t, n = out.get(key, (0, 0))
        out[key] = (t + amount, n + 1)
    return out


def totals(store: SQLiteStore) -> dict[str, tuple[int, int]]:
    return {k: (t, n) for k, t, n in store.connection.execute("SELECT key, total, n FROM totals")}


def applied_offsets(store: SQLiteStore) -> list[tuple[str, int, int]]:
    return list(store.connection.execute("SELECT topic, partition, kafka_offset FROM applied ORDER BY 1, 2, 3"))


def assert_exactly_once(store: SQLiteStore, records: list[tuple[str, int]]) -> None:
    assert totals(store) == expected(records)
    rows = applied_offsets(store)
    assert len(rows) == len(set(rows)) == len(records)


def run_until(sinks: list[ExactlyOnceSink], store: SQLiteStore, group: str, ends: dict[tuple[str, int], int], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while store.all_offsets(group) != ends:
        assert time.monotonic() < deadline, f"stored {store.all_offsets(group)} != {ends}"
        for s in sinks:
            s.poll(0.02)


# ------------------------------------------------------------------------- basic flow


def test_sink_applies_each_record_once_and_stores_offsets_with_it(broker: Broker, tmp_path: Path) -> None:
    broker.create_topic("pay", 2)
    records = produce(broker, "pay", 2, 40)
    store = make_store(tmp_path / "s.db")
    with broker.consumer({**CONSUMER, "group.id": "billing"}) as c:
        sink = ExactlyOnceSink(c, store, apply_records, topics=["pay"], batch_size=7)
        assert sink.run(max_records=80, timeout=10) == 80
        assert sink.applied == 80 and sink.transactions >= 80 // 7
        # The group was told too (best effort, for lag monitoring).
        assert [tp.offset for tp in c.committed([TopicPartition("pay", 0), TopicPartition("pay", 1)])] == [40, 40]
    assert store.all_offsets("billing") == {("pay", 0): 40, ("pay", 1): 40}
    assert_exactly_once(store, records)


def test_sink_run_stops_at_max_records_exactly(broker: Broker, tmp_path: Path) -> None:
    broker.create_topic("pay", 1)
    produce(broker, "pay", 1, 30)
    store = make_store(tmp_path / "s.db")
    with broker.consumer({**CONSUMER, "group.id": "g"}) as c:
        sink = ExactlyOnceSink(c, store, apply_records, partitions=[TopicPartition("pay", 0)], batch_size=8)
        assert sink.run(max_records=13, timeout=5) == 13
    assert store.all_offsets("g") == {("pay", 0): 13}
    assert len(applied_offsets(store)) == 13


def test_sink_resumes_from_database_not_from_group_offsets(broker: Broker, tmp_path: Path) -> None:
    """The group's committed offsets are wrong both ways; the database decides."""
    broker.create_topic("pay", 2)
    records = produce(broker, "pay", 2, 30)
    store = make_store(tmp_path / "s.db")
    with broker.consumer({**CONSUMER, "group.id": "g"}) as c:
        ExactlyOnceSink(c, store, apply_records, topics=["pay"], batch_size=5, commit_to_group=False).run(max_records=25, timeout=10)
    stored = store.all_offsets("g")
    assert sum(stored.values()) == 25
    with broker.consumer({**CONSUMER, "group.id": "g"}) as c:  # group empty: a plain commit works
        c.commit(offsets=[TopicPartition("pay", 0, 30), TopicPartition("pay", 1, 0)], asynchronous=False)
    with broker.consumer({**CONSUMER, "group.id": "g"}) as c:
        sink = ExactlyOnceSink(c, store, apply_records, topics=["pay"], batch_size=5)
        assert sink.run(max_records=35, timeout=10) == 35
        assert sink.skipped_stale == 0  # positioned at the stored offsets: nothing redelivered
    assert_exactly_once(store, records)


def test_sink_partition_without_stored_offset_starts_at_initial_offset(broker: Broker, tmp_path: Path) -> None:
    broker.create_topic("pay", 1)
    produce(broker, "pay", 1, 10)
    store = make_store(tmp_path / "s.db")
    with broker.consumer({**CONSUMER, "group.id": "g"}) as c:
        sink = ExactlyOnceSink(c, store, apply_records, partitions=[TopicPartition("pay", 0)], initial_offset=OFFSET_END)
        assert sink.run(timeout=0.3) == 0
        later = produce(broker, "pay", 1, 4, start=100)
        assert sink.run(max_records=4, timeout=5) == 4
    assert_exactly_once(store, later)
    assert store.all_offsets("g") == {("pay", 0): 14}


# ------------------------------------------------------------------------- failures


def test_sink_apply_error_rolls_back_the_batch_and_delivers_it_again(broker: Broker, tmp_path: Path) -> None:
    broker.create_topic("pay", 2)
    records = produce(broker, "pay", 2, 20)
    store = make_store(tmp_path / "s.db")
    failures = [0]

    def flaky(conn: sqlite3.Connection, messages: list[Any]) -> None:
        apply_records(conn, messages)  # effects first: the rollback must undo them
        if failures[0] < 3 and any(int(m.value()) in (7, 33) for m in messages):
            failures[0] += 1
            raise RuntimeError("downstream said no")

    with broker.consumer({**CONSUMER, "group.id": "g"}) as c:
        sink = ExactlyOnceSink(c, store, flaky, topics=["pay"], batch_size=6)
        deadline = time.monotonic() + 10
        while store.all_offsets("g") != {("pay", 0): 20, ("pay", 1): 20}:
            assert time.monotonic() < deadline
            try:
                sink.poll(0.05)
            except RuntimeError:
                pass  # the caller decides to go on: the batch comes again
    assert failures[0] == 3
    assert_exactly_once(store, records)


def test_sink_rejects_apply_that_commits_itself(broker: Broker, tmp_path: Path) -> None:
    broker.create_topic("pay", 1)
    produce(broker, "pay", 1, 3)
    store = make_store(tmp_path / "s.db")

    def commits(conn: sqlite3.Connection, messages: list[Any]) -> None:
        apply_records(conn, messages)
        conn.commit()

    with broker.consumer({**CONSUMER, "group.id": "g"}) as c:
        sink = ExactlyOnceSink(c, store, commits, partitions=[TopicPartition("pay", 0)])
        with pytest.raises(SinkApplyError):
            sink.run(max_records=3, timeout=5)
    assert store.all_offsets("g") == {}


def test_sink_stored_offset_moving_back_is_an_error(broker: Broker, tmp_path: Path) -> None:
    broker.create_topic("pay", 1)
    produce(broker, "pay", 1, 10)
    store = make_store(tmp_path / "s.db")
    with broker.consumer({**CONSUMER, "group.id": "g"}) as c:
        sink = ExactlyOnceSink(c, store, apply_records, partitions=[TopicPartition("pay", 0)], batch_size=4)
        assert sink.run(max_records=4, timeout=5) == 4
        with store.transaction() as conn:  # an operator resets the table under a running sink
            conn.execute("DELETE FROM headwater_consumer_offsets")
        with pytest.raises(SinkOffsetsError):
            sink.run(max_records=4, timeout=5)
    assert len(applied_offsets(store)) == 4  # nothing of the failed batch


def test_zombie_sink_skips_what_another_instance_committed(broker: Broker, tmp_path: Path) -> None:
    """Two instances own one partition (a zombie after a rebalance): every record once."""
    broker.create_topic("pay", 1)
    records = produce(broker, "pay", 1, 60)
    store_a, store_b = make_store(tmp_path / "s.db"), make_store(tmp_path / "s.db")
    with broker.consumer(CONSUMER) as ca, broker.consumer(CONSUMER) as cb:
        a = ExactlyOnceSink(ca, store_a, apply_records, partitions=[TopicPartition("pay", 0)], group_id="g", batch_size=10)
        b = ExactlyOnceSink(cb, store_b, apply_records, partitions=[TopicPartition("pay", 0)], group_id="g", batch_size=25)
        assert a.run(max_records=10, timeout=5) == 10
        assert b.run(max_records=25, timeout=5) == 25  # b started at 10 (stored), commits 35
        assert a.poll(1.0) == 0  # a's next batch (10..19) is stale: nothing applied, a reseeks
        assert a.owned() == {("pay", 0): 35}
        assert a.run(max_records=25, timeout=5) == 25
    assert store_a.all_offsets("g") == {("pay", 0): 60}
    assert_exactly_once(store_a, records)


# ------------------------------------------------------------------------- rebalance


@pytest.mark.parametrize("strategy", ["range", "cooperative-sticky"])
def test_rebalance_between_two_sinks_applies_every_record_once(broker: Broker, tmp_path: Path, strategy: str) -> None:
    broker.create_topic("pay", 4)
    records = produce(broker, "pay", 4, 50)
    ends = {("pay", p): 50 for p in range(4)}
    config = {**CONSUMER, "group.id": "g", "partition.assignment.strategy": strategy}
    owners: dict[str, list[set[tuple[str, int]]]] = {"a": [], "b": []}
    sinks: dict[str, ExactlyOnceSink] = {}
    foreign: list[tuple[str, tuple[str, int]]] = []

    def applier(name: str) -> Callable[[sqlite3.Connection, list[Any]], None]:
        def apply(conn: sqlite3.Connection, messages: list[Any]) -> None:
            owned = set(sinks[name].owned())
            foreign.extend((name, (m.topic(), m.partition())) for m in messages if (m.topic(), m.partition()) not in owned)
            apply_records(conn, messages)
        return apply

    def track(name: str) -> Callable[[Any, list[Any]], None]:
        return lambda consumer, parts: owners[name].append({(tp.topic, tp.partition) for tp in parts})

    store_a, store_b = make_store(tmp_path / "s.db"), make_store(tmp_path / "s.db")
    with broker.consumer(config) as ca, broker.consumer(config) as cb:
        sinks["a"] = a = ExactlyOnceSink(ca, store_a, applier("a"), topics=["pay"], batch_size=5, on_assign=track("a"))
        deadline = time.monotonic() + 10
        while a.applied < 60:  # a alone owns all four partitions and applies part of them
            assert time.monotonic() < deadline
            a.poll(0.02)
        assert len(a.owned()) == 4
        sinks["b"] = b = ExactlyOnceSink(cb, store_b, applier("b"), topics=["pay"], batch_size=5, on_assign=track("b"))
        before = a.applied
        run_until([a, b], store_a, "g", ends)
        assert b.applied > 0 and a.applied > before  # both worked after the rebalance
        assert owners["b"] and len(set(a.owned()) | set(b.owned())) == 4
        assert not set(a.owned()) & set(b.owned())
    assert not foreign, foreign[:5]
    assert_exactly_once(store_a, records)


# ------------------------------------------------------------------------- the store


def test_sqlite_store_uses_wal_and_full_sync_and_creates_its_tables(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "s.db")
    conn = store.connection
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"headwater_consumer_offsets", "headwater_seen_keys"} <= tables
    store.close()
    again = SQLiteStore(tmp_path / "s.db")  # IF NOT EXISTS: reopening keeps the data
    again.close()


def test_sqlite_store_rejects_bad_table_names(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        SQLiteStore(tmp_path / "s.db", offsets_table="x; DROP TABLE y")


def test_save_offsets_is_a_compare_and_set(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "s.db")
    tp = ("t", 0)
    with store.transaction():
        store.save_offsets("g", {tp: 5}, {tp: None})
    with pytest.raises(SinkOffsetsError):
        with store.transaction():
            store.save_offsets("g", {tp: 9}, {tp: None})  # someone stored it already
    with pytest.raises(SinkOffsetsError):
        with store.transaction():
            store.save_offsets("g", {tp: 9}, {tp: 4})  # it holds 5, not 4
    with store.transaction():
        store.save_offsets("g", {tp: 9}, {tp: 5})
    assert store.load_offsets("g", [tp, ("t", 1)]) == {tp: 9}
    assert store.load_offsets("other", [tp]) == {}


def test_offsets_commit_survives_reopen_and_rollback_leaves_nothing(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "s.db")
    with store.transaction():
        store.save_offsets("g", {("t", 0): 3}, {})
    store.begin()
    store.save_offsets("g", {("t", 0): 7}, {("t", 0): 3})
    store.rollback()
    store.close()
    assert SQLiteStore(tmp_path / "s.db").all_offsets("g") == {("t", 0): 3}


def test_transactional_store_is_abstract() -> None:
    with pytest.raises(TypeError):
        TransactionalStore()  # type: ignore[abstract]


def test_sink_argument_checks(broker: Broker, tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "s.db")
    with broker.consumer(CONSUMER) as c:
        with pytest.raises(ValueError):
            ExactlyOnceSink(c, store, apply_records, topics=["t"], partitions=[TopicPartition("t", 0)], group_id="g")
        with pytest.raises(ValueError):
            ExactlyOnceSink(c, store, apply_records, partitions=[TopicPartition("t", 0)])  # no group.id, no group_id
        with pytest.raises(TypeError):
            ExactlyOnceSink(c, store, apply_records, topics="t", group_id="g")  # type: ignore[arg-type]


# ------------------------------------------------------------------------- seen-store


def test_dedup_header_drops_records_whose_key_was_seen(broker: Broker, tmp_path: Path) -> None:
    """Re-sent records (same key, later offsets, across and within batches) apply once;
    records without the header are always applied."""
    broker.create_topic("pay", 1)
    producer = broker.producer()
    sent = [("a", 1), ("b", 2), ("a", 1), (None, 3), ("c", 4), ("b", 2), (None, 3), ("a", 1)]
    for dedup, amount in sent:
        headers = [(DEFAULT_DEDUP_HEADER, dedup.encode())] if dedup else None
        producer.produce("pay", key=b"k", value=str(amount).encode(), partition=0, headers=headers)
    producer.flush(10)
    producer.close()
    store = make_store(tmp_path / "s.db")
    with broker.consumer(CONSUMER) as c:
        sink = ExactlyOnceSink(c, store, apply_records, partitions=[TopicPartition("pay", 0)], group_id="g",
                               batch_size=3, dedup_header=DEFAULT_DEDUP_HEADER)
        assert sink.run(max_records=8, timeout=5) == 8
    assert (sink.applied, sink.skipped_duplicates) == (5, 3)
    assert totals(store) == {"k": (1 + 2 + 3 + 4 + 3, 5)}
    assert store.all_offsets("g") == {("pay", 0): 8}
    assert store.seen_count() == 3


def test_seen_store_is_bounded_by_count(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "s.db", seen_max_keys=3, seen_retention_ms=None)
    with store.transaction():
        assert store.mark_seen([b"1", b"2", b"3", b"4", b"2"], 0) == [True, True, True, True, False]
        assert store.prune_seen(0) == 1  # the oldest key goes
    assert store.seen_count() == 3
    with store.transaction():
        assert store.mark_seen([b"1", b"4"], 0) == [True, False]  # b"1" was forgotten
        store.prune_seen(0)
    assert store.seen_count() == 3


def test_seen_store_is_bounded_by_age(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "s.db", seen_max_keys=None, seen_retention_ms=1000)
    with store.transaction():
        store.mark_seen([b"old"], 1_000)
        store.mark_seen([b"new"], 1_800)
    with store.transaction():
        assert store.prune_seen(2_500) == 1  # "old" was seen 1500 ms before: beyond 1000
        assert store.mark_seen([b"old", b"new"], 2_500) == [True, False]


def test_seen_keys_roll_back_with_the_side_effect(tmp_path: Path) -> None:
    store = make_store(tmp_path / "s.db")
    with pytest.raises(RuntimeError):
        with store.transaction() as conn:
            assert store.mark_seen([b"order-1"], 0) == [True]
            conn.execute("INSERT INTO totals VALUES ('k', 1, 1)")
            raise RuntimeError("crash before commit")
    with store.transaction() as conn:  # the idempotent-consumer pattern, outside the sink
        if store.mark_seen([b"order-1"], 0)[0]:
            conn.execute("INSERT INTO totals VALUES ('k', 1, 1)")
    with store.transaction() as conn:
        if store.mark_seen([b"order-1"], 0)[0]:
            conn.execute("UPDATE totals SET n = n + 1")
    assert totals(store) == {"k": (1, 1)}


def test_sink_seen_store_ages_with_the_injected_clock(broker: Broker, tmp_path: Path) -> None:
    broker.create_topic("pay", 1)
    headers = [(DEFAULT_DEDUP_HEADER, b"same")]
    produce(broker, "pay", 1, 1, headers=lambda i: headers)
    store = make_store(tmp_path / "s.db", seen_retention_ms=1000)
    now = [0]
    with broker.consumer(CONSUMER) as c:
        sink = ExactlyOnceSink(c, store, apply_records, partitions=[TopicPartition("pay", 0)], group_id="g",
                               dedup_header=DEFAULT_DEDUP_HEADER, clock_ms=lambda: now[0])
        assert sink.run(max_records=1, timeout=5) == 1
        produce(broker, "pay", 1, 1, headers=lambda i: headers)
        now[0] = 500
        assert sink.run(max_records=1, timeout=5) == 1  # inside the window: a duplicate
        produce(broker, "pay", 1, 1, headers=lambda i: headers)
        now[0] = 5_000
        assert sink.run(max_records=1, timeout=5) == 1  # forgotten: applied again (the bound's price)
    assert (sink.applied, sink.skipped_duplicates) == (2, 1)


def test_dedup_key_reads_the_first_matching_header(broker: Broker) -> None:
    broker.create_topic("t", 1)
    producer = broker.producer()
    producer.produce("t", value=b"1", partition=0, headers=[("x", b"no"), (DEFAULT_DEDUP_HEADER, b"k1"), (DEFAULT_DEDUP_HEADER, b"k2")])
    producer.produce("t", value=b"2", partition=0, headers=[(DEFAULT_DEDUP_HEADER, None)])
    producer.produce("t", value=b"3", partition=0)
    producer.flush(10)
    producer.close()
    with broker.consumer(CONSUMER) as c:
        c.assign([TopicPartition("t", 0, 0)])
        msgs = c.consume(3, 5)
    assert [dedup_key(m) for m in msgs] == [b"k1", None, None]
    assert dedup_key(msgs[0], "x") == b"no"


class LeakyConsumer:
    """A consumer that also returns records of a partition it was never given (what a
    client bug, or a record fetched just before a revocation, looks like to the sink)."""

    def __init__(self, inner: Any, leaked: list[Any]) -> None:
        self._inner = inner
        self.leaked = leaked

    def consume(self, num_messages: int = 1, timeout: float = -1) -> list[Any]:
        out = list(self._inner.consume(num_messages, timeout))
        out.extend(self.leaked)
        self.leaked = []
        return out

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def test_sink_never_applies_records_of_partitions_it_does_not_own(broker: Broker, tmp_path: Path) -> None:
    broker.create_topic("pay", 2)
    produce(broker, "pay", 2, 5)
    with broker.consumer(CONSUMER) as other:
        other.assign([TopicPartition("pay", 1, 0)])
        leaked = other.consume(5, 5)
    assert len(leaked) == 5
    store = make_store(tmp_path / "s.db")
    with broker.consumer(CONSUMER) as c:
        sink = ExactlyOnceSink(LeakyConsumer(c, leaked), store, apply_records, partitions=[TopicPartition("pay", 0)], group_id="g")
        assert sink.run(max_records=5, timeout=5) == 5
    assert {p for _, p, _ in applied_offsets(store)} == {0}
    assert store.all_offsets("g") == {("pay", 0): 5}


class FlakyLoadStore(SQLiteStore):
    """A store whose offset reads fail `failures` times (a locked or unreachable database)."""

    failures = 0

    def load_offsets(self, group_id: str, partitions: Any) -> dict[tuple[str, int], int]:
        if self.failures:
            self.failures -= 1
            raise sqlite3.OperationalError("database is locked")
        return super().load_offsets(group_id, partitions)


def test_sink_on_assign_database_failure_is_retried_from_poll(broker: Broker, tmp_path: Path) -> None:
    """on_assign cannot read the offsets: the partitions are not applied from wherever the
    consumer starts (here a group offset far ahead) but from the database, once poll() can."""
    broker.create_topic("pay", 2)
    records = produce(broker, "pay", 2, 20)
    make_store(tmp_path / "s.db").close()
    store = FlakyLoadStore(tmp_path / "s.db")
    with store.transaction():
        store.save_offsets("g", {("pay", 0): 5}, {})
    with broker.consumer({**CONSUMER, "group.id": "g"}) as c:
        c.commit(offsets=[TopicPartition("pay", 0, 15), TopicPartition("pay", 1, 15)], asynchronous=False)
    store.failures = 1  # on_assign's read fails; poll()'s succeeds
    with broker.consumer({**CONSUMER, "group.id": "g"}) as c:
        sink = ExactlyOnceSink(c, store, apply_records, topics=["pay"], batch_size=6)
        assert sink.run(max_records=35, timeout=10) == 35
    assert store.failures == 0
    assert store.all_offsets("g") == {("pay", 0): 20, ("pay", 1): 20}
    applied = applied_offsets(store)
    assert len(applied) == len(set(applied)) == 35
    assert totals(store) == expected(records[5:])  # partition 0 from 5 (stored), 1 from 0
