"""ExactlyOnceSink over the wire: a real confluent_kafka.Consumer against a served broker.

Goal: the sink's positioning works with librdkafka, whose on_assign must assign() (eager) or
incremental_assign() (cooperative) with offsets rather than seek(): a restarted sink resumes
from the database even when the group's committed offsets say otherwise, and two sinks in one
group share the stream through a rebalance, each record applied once.

Method: `Broker.serve(port=0)` in tmp_path, confluent-kafka consumers with short heartbeats,
one SQLite file; the tables and checks are test_sink.py's. Every loop has a deadline.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from client_helpers import FAST_BROKER
from test_sink import apply_records, assert_exactly_once, make_store, produce

from headwater.client import Broker
from headwater.client import TopicPartition as HeadwaterTopicPartition
from headwater.client.sink import ExactlyOnceSink

confluent_kafka = pytest.importorskip("confluent_kafka")

RDKAFKA = {
    "auto.offset.reset": "latest",  # the sink's initial_offset (beginning) must win
    "enable.auto.commit": False,
    "session.timeout.ms": 6000,
    "heartbeat.interval.ms": 100,
    "fetch.wait.max.ms": 50,
}


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Broker, str]]:
    with Broker(str(tmp_path / "data"), FAST_BROKER) as broker:
        server = broker.serve(port=0)
        try:
            yield broker, str(server.bootstrap_servers)
        finally:
            server.close()


def confluent_consumer(bootstrap: str, group: str, strategy: str) -> Any:
    return confluent_kafka.Consumer({"bootstrap.servers": bootstrap, "group.id": group, "partition.assignment.strategy": strategy, **RDKAFKA})


@pytest.mark.parametrize("strategy", ["range", "cooperative-sticky"])
def test_confluent_sink_resumes_from_database_not_group_offsets(served: tuple[Broker, str], tmp_path: Path, strategy: str) -> None:
    broker, bootstrap = served
    broker.create_topic("pay", 2)
    records = produce(broker, "pay", 2, 30)
    store = make_store(tmp_path / "s.db")
    c = confluent_consumer(bootstrap, "g", strategy)
    try:
        sink = ExactlyOnceSink(c, store, apply_records, topics=["pay"], group_id="g", batch_size=6)
        assert sink.run(max_records=25, timeout=15) == 25
        assert sink.transactions >= 5
        # Best-effort group commits follow the database (asynchronous: poll until they land).
        stored = store.all_offsets("g")
        deadline = time.monotonic() + 5
        while True:
            committed = c.committed([confluent_kafka.TopicPartition("pay", p) for p in (0, 1)], timeout=5)
            got = {("pay", tp.partition): tp.offset for tp in committed if tp.offset >= 0}
            if got == stored or time.monotonic() > deadline:
                break
            c.poll(0.05)
        assert got == stored
    finally:
        c.close()
    assert sum(store.all_offsets("g").values()) == 25
    # The group's offsets are now wrong both ways (one partition done, one from the start).
    with broker.consumer({"group.id": "g", "enable.auto.commit": False}) as fix:
        fix.commit(offsets=[HeadwaterTopicPartition("pay", 0, 30), HeadwaterTopicPartition("pay", 1, 0)], asynchronous=False)
    c = confluent_consumer(bootstrap, "g", strategy)
    try:
        sink = ExactlyOnceSink(c, store, apply_records, topics=["pay"], group_id="g", batch_size=6)
        assert sink.run(max_records=35, timeout=15) == 35
        assert sink.skipped_stale == 0
    finally:
        c.close()
    assert_exactly_once(store, records)


def test_confluent_sinks_share_a_group_through_a_rebalance(served: tuple[Broker, str], tmp_path: Path) -> None:
    broker, bootstrap = served
    broker.create_topic("pay", 4)
    records = produce(broker, "pay", 4, 20)
    ends = {("pay", p): 40 for p in range(4)}
    store_a, store_b = make_store(tmp_path / "s.db"), make_store(tmp_path / "s.db")
    ca = confluent_consumer(bootstrap, "g", "range")
    cb = confluent_consumer(bootstrap, "g", "range")
    try:
        a = ExactlyOnceSink(ca, store_a, apply_records, topics=["pay"], group_id="g", batch_size=4)
        deadline = time.monotonic() + 15
        while a.applied < 40:
            assert time.monotonic() < deadline, "the first sink applied nothing"
            a.poll(0.05)
        b = ExactlyOnceSink(cb, store_b, apply_records, topics=["pay"], group_id="g", batch_size=4)
        deadline = time.monotonic() + 20
        while not b.owned():
            assert time.monotonic() < deadline, "the second sink never got partitions"
            a.poll(0.02)
            b.poll(0.02)
        before = a.applied
        records += produce(broker, "pay", 4, 20, start=1000)  # the rest arrives after the rebalance
        while store_a.all_offsets("g") != ends:
            assert time.monotonic() < deadline, store_a.all_offsets("g")
            a.poll(0.02)
            b.poll(0.02)
        assert b.applied > 0 and a.applied > before
        assert not set(a.owned()) & set(b.owned())
    finally:
        ca.close()
        cb.close()
    assert_exactly_once(store_a, records)


def test_confluent_zombie_sink_reseeks_past_what_another_instance_committed(served: tuple[Broker, str], tmp_path: Path) -> None:
    """librdkafka's seek() after fetching started: the zombie's stale batch is dropped and it
    continues from the stored offset, every record once."""
    broker, bootstrap = served
    broker.create_topic("pay", 1)
    records = produce(broker, "pay", 1, 60)
    store_a, store_b = make_store(tmp_path / "s.db"), make_store(tmp_path / "s.db")
    ca = confluent_kafka.Consumer({"bootstrap.servers": bootstrap, "group.id": "ga", **RDKAFKA})
    cb = confluent_kafka.Consumer({"bootstrap.servers": bootstrap, "group.id": "gb", **RDKAFKA})
    try:
        part = [confluent_kafka.TopicPartition("pay", 0)]
        a = ExactlyOnceSink(ca, store_a, apply_records, partitions=part, group_id="g", batch_size=10, commit_to_group=False)
        b = ExactlyOnceSink(cb, store_b, apply_records, partitions=part, group_id="g", batch_size=25, commit_to_group=False)
        assert a.run(max_records=10, timeout=10) == 10
        assert b.run(max_records=25, timeout=10) == 25
        assert a.run(max_records=25, timeout=10) == 25
        assert a.owned() == {("pay", 0): 60}
    finally:
        ca.close()
        cb.close()
    assert store_a.all_offsets("g") == {("pay", 0): 60}
    assert_exactly_once(store_a, records)
