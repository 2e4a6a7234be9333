"""Transactions over the wire with real clients as the oracle (issue 5, part 5).

Goal: confluent-kafka (librdkafka), kafka-python 3 and aiokafka transactional producers work
unchanged against the server; read_committed consumers see exactly the committed records and
stop at the last stable offset while a transaction is open; read_uncommitted consumers see
aborted records too; a second producer with the same transactional.id fences the first;
offsets sent with a transaction become visible to the group only when it commits; a
transaction over its timeout is aborted by the coordinator; and bad requests get the error
Kafka returns while the coordinator's state stays as it was.

Method: one Broker per test in tmp_path served on 127.0.0.1:0. Reads go through librdkafka
consumers up to partition EOF (which librdkafka reports at the LSO under read_committed), or
through raw requests (tests/server/wire.py) where a field must be checked exactly. Every wait
has a deadline.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from wire import RawClient

from headwater import record
from headwater.client.broker import Broker

CONFIG = {"group.initial.rebalance.delay.ms": 0, "group.min.session.timeout.ms": 500, "transaction.max.timeout.ms": 60000}

PRODUCE = 0
FETCH = 1
LIST_OFFSETS = 2
OFFSET_FETCH = 9
INIT_PRODUCER_ID = 22
ADD_PARTITIONS_TO_TXN = 24
ADD_OFFSETS_TO_TXN = 25
END_TXN = 26
TXN_OFFSET_COMMIT = 28
DESCRIBE_PRODUCERS = 61
DESCRIBE_TRANSACTIONS = 65
LIST_TRANSACTIONS = 66

INVALID_PRODUCER_EPOCH = 47
INVALID_TXN_STATE = 48
INVALID_PRODUCER_ID_MAPPING = 49
INVALID_TRANSACTION_TIMEOUT = 50
CONCURRENT_TRANSACTIONS = 51
PRODUCER_FENCED = 90
TRANSACTIONAL_ID_NOT_FOUND = 105

TXN_ATTRIBUTES = 0x10


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    with Broker(str(tmp_path / "data"), CONFIG) as b:
        yield b


# server and bootstrap: conftest.py's, over this module's broker.


def txn_producer(bootstrap: str, txn_id: str, **extra: Any) -> Producer:
    conf = {"bootstrap.servers": bootstrap, "transactional.id": txn_id, "linger.ms": 5}
    conf.update({k.replace("_", "."): v for k, v in extra.items()})
    return Producer(conf)


def read_to_end(bootstrap: str, topic: str, partitions: int, isolation: str, timeout: float = 10.0) -> list[tuple[int, bytes]]:
    """Every record of `topic` a fresh consumer with `isolation` gets, up to partition EOF
    (the LSO under read_committed): [(partition, value)] in per-partition order."""
    c = Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": f"reader-{time.monotonic_ns()}",
        "isolation.level": isolation,
        "enable.auto.commit": False,
        "enable.partition.eof": True,
        "fetch.wait.max.ms": 50,
    })
    try:
        c.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
        out: list[tuple[int, bytes]] = []
        at_eof: set[int] = set()
        deadline = time.monotonic() + timeout
        while len(at_eof) < partitions:
            assert time.monotonic() < deadline, f"no EOF on {topic} after {timeout}s ({len(out)} records)"
            m = c.poll(0.1)
            if m is None:
                continue
            if m.error():
                if m.error().code() == KafkaError._PARTITION_EOF:
                    at_eof.add(m.partition())
                    continue
                raise KafkaException(m.error())
            at_eof.discard(m.partition())
            out.append((m.partition(), m.value()))
        return out
    finally:
        c.close()


def values(records: list[tuple[int, bytes]]) -> list[bytes]:
    return [v for _, v in records]


def describe(bootstrap: str, txn_id: str) -> dict:
    with RawClient(bootstrap) as c:
        resp = c.call(DESCRIBE_TRANSACTIONS, 0, {"transactional_ids": [txn_id]})
    [state] = resp["transaction_states"]
    return state


def raw_fetch(c: RawClient, topic: str, partition: int, offset: int, isolation: int) -> dict:
    resp = c.call(FETCH, 12, {
        "replica_id": -1, "max_wait_ms": 0, "min_bytes": 0, "max_bytes": 1 << 20,
        "isolation_level": isolation, "session_id": 0, "session_epoch": -1,
        "topics": [{"topic": topic, "partitions": [{
            "partition": partition, "current_leader_epoch": -1, "fetch_offset": offset,
            "last_fetched_epoch": -1, "log_start_offset": -1, "partition_max_bytes": 1 << 20,
        }]}],
        "forgotten_topics_data": [], "rack_id": "",
    })
    [topic_resp] = resp["responses"]
    [part] = topic_resp["partitions"]
    return part


def latest_offset(c: RawClient, topic: str, partition: int, isolation: int) -> int:
    resp = c.call(LIST_OFFSETS, 7, {
        "replica_id": -1, "isolation_level": isolation,
        "topics": [{"name": topic, "partitions": [{"partition_index": partition, "current_leader_epoch": -1, "timestamp": -1}]}],
    })
    part = resp["topics"][0]["partitions"][0]
    assert part["error_code"] == 0
    return part["offset"]


# ---------------------------------------------------------------------------- confluent-kafka


def test_commit_and_abort_by_isolation_level(broker: Broker, bootstrap: str) -> None:
    """Committed records reach both isolation levels; aborted ones only read_uncommitted; a
    read_committed Fetch carries the aborted range, a read_uncommitted one null."""
    broker.create_topic("t", 1)
    p = txn_producer(bootstrap, "tx-1")
    p.init_transactions(10)
    p.begin_transaction()
    for i in range(5):
        p.produce("t", key=b"k", value=b"c%d" % i)
    p.commit_transaction(10)
    p.begin_transaction()
    for i in range(3):
        p.produce("t", key=b"k", value=b"x%d" % i)
    assert p.flush(10) == 0  # written, so the abort has something to hide
    p.abort_transaction(10)
    p.begin_transaction()
    p.produce("t", key=b"k", value=b"last")
    p.commit_transaction(10)

    committed = values(read_to_end(bootstrap, "t", 1, "read_committed"))
    assert committed == [b"c0", b"c1", b"c2", b"c3", b"c4", b"last"]
    uncommitted = values(read_to_end(bootstrap, "t", 1, "read_uncommitted"))
    assert uncommitted == [b"c0", b"c1", b"c2", b"c3", b"c4", b"x0", b"x1", b"x2", b"last"]

    state = describe(bootstrap, "tx-1")
    with RawClient(bootstrap) as c:
        rc = raw_fetch(c, "t", 0, 0, 1)
        ru = raw_fetch(c, "t", 0, 0, 0)
    # 5 records + COMMIT marker at 5, aborted batch from offset 6
    assert rc["aborted_transactions"] == [{"producer_id": state["producer_id"], "first_offset": 6}]
    assert ru["aborted_transactions"] is None
    assert rc["last_stable_offset"] == rc["high_watermark"] == ru["high_watermark"] == 12


def test_read_committed_stops_at_lso_until_commit(broker: Broker, bootstrap: str) -> None:
    """An open transaction holds read_committed readers (and ListOffsets latest) at its first
    offset; read_uncommitted readers see its records at once; the commit releases them."""
    broker.create_topic("t", 1)
    plain = broker.producer()
    plain.produce("t", b"before", key=b"k")
    plain.flush(10)
    p = txn_producer(bootstrap, "tx-lso")
    p.init_transactions(10)
    p.begin_transaction()
    for i in range(4):
        p.produce("t", key=b"k", value=b"open%d" % i)
    assert p.flush(10) == 0

    assert values(read_to_end(bootstrap, "t", 1, "read_committed")) == [b"before"]
    assert values(read_to_end(bootstrap, "t", 1, "read_uncommitted")) == [b"before"] + [b"open%d" % i for i in range(4)]
    with RawClient(bootstrap) as c:
        assert latest_offset(c, "t", 0, 1) == 1  # the LSO: first offset of the open transaction
        assert latest_offset(c, "t", 0, 0) == 5
        part = raw_fetch(c, "t", 0, 1, 1)
        assert part["last_stable_offset"] == 1 and part["high_watermark"] == 5
        assert len(part["records"] or b"") == 0

    # A consumer parked at the LSO continues when the transaction commits.
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "lso-waiter", "isolation.level": "read_committed", "fetch.wait.max.ms": 50})
    try:
        c.assign([TopicPartition("t", 0, 1)])
        assert c.poll(0.5) is None
        p.commit_transaction(10)
        got = []
        deadline = time.monotonic() + 10
        while len(got) < 4 and time.monotonic() < deadline:
            m = c.poll(0.2)
            if m is not None and not m.error():
                got.append(m.value())
        assert got == [b"open%d" % i for i in range(4)]
    finally:
        c.close()
    with RawClient(bootstrap) as raw:
        assert latest_offset(raw, "t", 0, 1) == latest_offset(raw, "t", 0, 0) == 6


def test_zombie_producer_is_fenced(broker: Broker, bootstrap: str) -> None:
    """A second producer with the same transactional.id bumps the epoch: the first one's open
    transaction is aborted and its next request fails fatally."""
    broker.create_topic("t", 2)
    old = txn_producer(bootstrap, "tx-zombie")
    old.init_transactions(10)
    old.begin_transaction()
    old.produce("t", value=b"zombie-0", partition=0)
    assert old.flush(10) == 0

    new = txn_producer(bootstrap, "tx-zombie")
    new.init_transactions(10)  # aborts the old instance's transaction first
    new.begin_transaction()
    new.produce("t", value=b"new", partition=0)
    new.commit_transaction(10)

    with pytest.raises(KafkaException) as info:
        old.produce("t", value=b"zombie-1", partition=1)
        old.commit_transaction(10)
    err = info.value.args[0]
    assert err.fatal() or err.code() in (KafkaError._FENCED, KafkaError.PRODUCER_FENCED, KafkaError.INVALID_PRODUCER_EPOCH)

    assert values(read_to_end(bootstrap, "t", 2, "read_committed")) == [b"new"]
    assert b"zombie-1" not in values(read_to_end(bootstrap, "t", 2, "read_uncommitted"))
    state = describe(bootstrap, "tx-zombie")
    assert state["transaction_state"] == "CompleteCommit"
    assert state["producer_epoch"] >= 2  # 0 (old), fence abort, new instance


def test_send_offsets_visible_after_commit_only(broker: Broker, bootstrap: str) -> None:
    """send_offsets_to_transaction: the group's committed offset stays put until the
    transaction commits, and an aborted transaction's offsets never show."""
    broker.create_topic("in", 1)
    broker.create_topic("out", 1)
    plain = broker.producer()
    for i in range(10):
        plain.produce("in", b"v%d" % i, key=b"k")
    plain.flush(10)

    consumer = Consumer({
        "bootstrap.servers": bootstrap, "group.id": "eos-group", "auto.offset.reset": "earliest",
        "enable.auto.commit": False, "isolation.level": "read_committed", "fetch.wait.max.ms": 50,
        "session.timeout.ms": 6000, "heartbeat.interval.ms": 200,
    })
    p = txn_producer(bootstrap, "tx-offsets")
    try:
        p.init_transactions(10)
        consumer.subscribe(["in"])
        got = []
        deadline = time.monotonic() + 15
        while len(got) < 5 and time.monotonic() < deadline:
            m = consumer.poll(0.2)
            if m is not None and not m.error():
                got.append(m)
        assert len(got) >= 5
        first = got[:5]

        def offsets_committed() -> int:
            [tp] = consumer.committed([TopicPartition("in", 0)], timeout=10)
            return tp.offset

        p.begin_transaction()
        for m in first:
            p.produce("out", m.value())
        p.send_offsets_to_transaction([TopicPartition("in", 0, first[-1].offset() + 1)], consumer.consumer_group_metadata(), 10)
        # Pending: a read_committed consumer (RequireStable) gets UNSTABLE_OFFSET_COMMIT and
        # retries until its timeout; OffsetFetch without RequireStable sees no offset yet.
        with pytest.raises(KafkaException) as unstable:
            consumer.committed([TopicPartition("in", 0)], timeout=1.5)
        assert unstable.value.args[0].code() == KafkaError._TIMED_OUT
        assert broker.group_coordinator.fetch_offsets("eos-group", [("in", 0)])[("in", 0)].offset < 0
        p.commit_transaction(10)
        assert offsets_committed() == first[-1].offset() + 1

        # An aborted transaction's offsets are dropped.
        p.begin_transaction()
        p.produce("out", b"aborted")
        p.send_offsets_to_transaction([TopicPartition("in", 0, 7)], consumer.consumer_group_metadata(), 10)
        assert p.flush(10) == 0
        p.abort_transaction(10)
        assert offsets_committed() == first[-1].offset() + 1
    finally:
        consumer.close()
    assert values(read_to_end(bootstrap, "out", 1, "read_committed")) == [m.value() for m in first]
    assert broker.group_coordinator.fetch_offsets("eos-group", [("in", 0)])[("in", 0)].offset == 5
    # After a restart the replay of __consumer_offsets finds the transactional batches and
    # their markers: the committed transaction's offset, not the aborted one's.
    broker.close()
    with Broker(broker.data_dir, CONFIG) as again:
        assert again.group_coordinator.fetch_offsets("eos-group", [("in", 0)])[("in", 0)].offset == 5


def test_transaction_timeout_aborts(broker: Broker, bootstrap: str) -> None:
    """A transaction open longer than transaction.timeout.ms is aborted by the coordinator
    with a bumped epoch: its records never reach read_committed and its producer is fenced."""
    broker.create_topic("t", 1)
    p = txn_producer(bootstrap, "tx-timeout", transaction_timeout_ms=1000)
    p.init_transactions(10)
    epoch = describe(bootstrap, "tx-timeout")["producer_epoch"]
    p.begin_transaction()
    p.produce("t", value=b"late")
    assert p.flush(10) == 0
    deadline = time.monotonic() + 10
    while describe(bootstrap, "tx-timeout")["transaction_state"] != "CompleteAbort":
        assert time.monotonic() < deadline, "the coordinator did not abort the timed-out transaction"
        time.sleep(0.1)
    assert describe(bootstrap, "tx-timeout")["producer_epoch"] == epoch + 1
    with pytest.raises(KafkaException):
        p.commit_transaction(10)
    assert values(read_to_end(bootstrap, "t", 1, "read_committed")) == []
    assert values(read_to_end(bootstrap, "t", 1, "read_uncommitted")) == [b"late"]


# ---------------------------------------------------------------------------- kafka-python, aiokafka


def test_kafka_python_transactional_producer(broker: Broker, bootstrap: str) -> None:
    """kafka-python 3: commit, abort, and offsets sent with a transaction (group id form)."""
    kafka = pytest.importorskip("kafka")
    from kafka.structs import OffsetAndMetadata
    from kafka.structs import TopicPartition as KTopicPartition

    broker.create_topic("t", 1)
    p = kafka.KafkaProducer(bootstrap_servers=bootstrap, transactional_id="tx-kp", request_timeout_ms=10000)
    try:
        p.init_transactions()
        p.begin_transaction()
        for i in range(3):
            p.send("t", value=b"kp%d" % i, partition=0)
        p.send_offsets_to_transaction({KTopicPartition("t", 0): OffsetAndMetadata(3, "", -1)}, "kp-group")
        assert broker.group_coordinator.fetch_offsets("kp-group", [("t", 0)])[("t", 0)].offset == -1
        p.commit_transaction()
        assert broker.group_coordinator.fetch_offsets("kp-group", [("t", 0)])[("t", 0)].offset == 3
        p.begin_transaction()
        p.send("t", value=b"kp-aborted", partition=0)
        p.send_offsets_to_transaction({KTopicPartition("t", 0): OffsetAndMetadata(4, "", -1)}, "kp-group")
        p.flush()
        p.abort_transaction()
        assert broker.group_coordinator.fetch_offsets("kp-group", [("t", 0)])[("t", 0)].offset == 3
    finally:
        p.close(timeout=5)
    assert values(read_to_end(bootstrap, "t", 1, "read_committed")) == [b"kp0", b"kp1", b"kp2"]
    assert values(read_to_end(bootstrap, "t", 1, "read_uncommitted"))[-1] == b"kp-aborted"


def test_aiokafka_transactional_producer(broker: Broker, bootstrap: str) -> None:
    aiokafka = pytest.importorskip("aiokafka")
    broker.create_topic("t", 1)

    async def run() -> None:
        p = aiokafka.AIOKafkaProducer(bootstrap_servers=bootstrap, transactional_id="tx-aio")
        await p.start()
        try:
            async with p.transaction():
                for i in range(3):
                    await p.send_and_wait("t", b"aio%d" % i, partition=0)
                await p.send_offsets_to_transaction({aiokafka.TopicPartition("t", 0): 3}, "aio-group")
                assert broker.group_coordinator.fetch_offsets("aio-group", [("t", 0)])[("t", 0)].offset == -1
            assert broker.group_coordinator.fetch_offsets("aio-group", [("t", 0)])[("t", 0)].offset == 3
            with pytest.raises(RuntimeError):
                async with p.transaction():
                    await p.send_and_wait("t", b"aio-aborted", partition=0)
                    await p.send_offsets_to_transaction({aiokafka.TopicPartition("t", 0): 4}, "aio-group")
                    raise RuntimeError("abort it")
            assert broker.group_coordinator.fetch_offsets("aio-group", [("t", 0)])[("t", 0)].offset == 3
        finally:
            await p.stop()

    asyncio.run(asyncio.wait_for(run(), 30))
    assert values(read_to_end(bootstrap, "t", 1, "read_committed")) == [b"aio0", b"aio1", b"aio2"]
    assert values(read_to_end(bootstrap, "t", 1, "read_uncommitted"))[-1] == b"aio-aborted"


# ---------------------------------------------------------------------------- raw requests


def _init(c: RawClient, txn_id: str, version: int = 4, timeout_ms: int = 30000) -> dict:
    body = {"transactional_id": txn_id, "transaction_timeout_ms": timeout_ms, "producer_id": -1, "producer_epoch": -1}
    deadline = time.monotonic() + 10
    while True:
        resp = c.call(INIT_PRODUCER_ID, version, body)
        if resp["error_code"] != CONCURRENT_TRANSACTIONS or time.monotonic() > deadline:
            return resp
        time.sleep(0.05)


def _add_partitions(c: RawClient, version: int, txn_id: str, pid: int, epoch: int, parts: dict[str, list[int]]) -> dict[tuple[str, int], int]:
    resp = c.call(ADD_PARTITIONS_TO_TXN, version, {
        "v3_and_below_transactional_id": txn_id, "v3_and_below_producer_id": pid, "v3_and_below_producer_epoch": epoch,
        "v3_and_below_topics": [{"name": t, "partitions": ps} for t, ps in parts.items()],
    })
    return {(t["name"], p["partition_index"]): p["partition_error_code"] for t in resp["results_by_topic_v3_and_below"] for p in t["results_by_partition"]}


def _end(c: RawClient, version: int, txn_id: str, pid: int, epoch: int, commit: bool) -> int:
    return c.call(END_TXN, version, {"transactional_id": txn_id, "producer_id": pid, "producer_epoch": epoch, "committed": commit})["error_code"]


def _snapshot(c: RawClient, txn_id: str) -> tuple:
    [s] = c.call(DESCRIBE_TRANSACTIONS, 0, {"transactional_ids": [txn_id]})["transaction_states"]
    return (s["error_code"], s["transaction_state"], s["producer_id"], s["producer_epoch"], s["topics"])


def _produce(c: RawClient, topic: str, partition: int, pid: int, epoch: int, seq: int, txn_id: str, value: bytes) -> int:
    raw = record.build_batch([value], producer_id=pid, producer_epoch=epoch, base_sequence=seq, attributes=TXN_ATTRIBUTES)
    resp = c.call(PRODUCE, 9, {
        "transactional_id": txn_id, "acks": -1, "timeout_ms": 5000,
        "topic_data": [{"name": topic, "partition_data": [{"index": partition, "records": raw}]}],
    })
    return resp["responses"][0]["partition_responses"][0]["error_code"]


def test_bad_input_gets_kafkas_errors_and_changes_nothing(broker: Broker, bootstrap: str) -> None:
    broker.create_topic("t", 2)
    with RawClient(bootstrap) as c:
        # Unknown transactional id: INVALID_PRODUCER_ID_MAPPING everywhere, nothing created.
        assert _add_partitions(c, 3, "nobody", 1, 0, {"t": [0]}) == {("t", 0): INVALID_PRODUCER_ID_MAPPING}
        assert c.call(ADD_OFFSETS_TO_TXN, 3, {"transactional_id": "nobody", "producer_id": 1, "producer_epoch": 0, "group_id": "g"})["error_code"] == INVALID_PRODUCER_ID_MAPPING
        assert _end(c, 3, "nobody", 1, 0, True) == INVALID_PRODUCER_ID_MAPPING
        assert _snapshot(c, "nobody")[0] == TRANSACTIONAL_ID_NOT_FOUND

        # A timeout over transaction.max.timeout.ms (60000 here) is refused, nothing created.
        resp = _init(c, "tx-bad", timeout_ms=60001)
        assert resp["error_code"] == INVALID_TRANSACTION_TIMEOUT
        assert _snapshot(c, "tx-bad")[0] == TRANSACTIONAL_ID_NOT_FOUND

        first = _init(c, "tx-bad")
        assert first["error_code"] == 0
        pid, epoch0 = first["producer_id"], first["producer_epoch"]
        empty = _snapshot(c, "tx-bad")
        assert empty[1] == "Empty"

        # Wrong order: EndTxn with no transaction; TxnOffsetCommit before AddOffsetsToTxn.
        assert _end(c, 3, "tx-bad", pid, epoch0, True) == INVALID_TXN_STATE
        toc = c.call(TXN_OFFSET_COMMIT, 3, {
            "transactional_id": "tx-bad", "group_id": "g", "producer_id": pid, "producer_epoch": epoch0,
            "generation_id": -1, "member_id": "", "group_instance_id": None,
            "topics": [{"name": "t", "partitions": [{"partition_index": 0, "committed_offset": 5, "committed_leader_epoch": -1, "committed_metadata": ""}]}],
        })
        assert toc["topics"][0]["partitions"][0]["error_code"] == INVALID_TXN_STATE
        assert _snapshot(c, "tx-bad") == empty
        assert broker.group_coordinator.fetch_offsets("g", [("t", 0)])[("t", 0)].offset == -1

        # Producer id of another transactional id.
        assert _add_partitions(c, 3, "tx-bad", pid + 1000, epoch0, {"t": [0]}) == {("t", 0): INVALID_PRODUCER_ID_MAPPING}
        # Unknown partition: UNKNOWN_TOPIC_OR_PARTITION for it, OPERATION_NOT_ATTEMPTED for the rest.
        assert _add_partitions(c, 3, "tx-bad", pid, epoch0, {"t": [0, 7]}) == {("t", 0): 55, ("t", 7): 3}
        assert _snapshot(c, "tx-bad") == empty

        # A new instance bumps the epoch: the old epoch is fenced, as 47 below v2 and 90 from v2.
        second = _init(c, "tx-bad")
        assert second["error_code"] == 0 and second["producer_epoch"] == epoch0 + 1
        bumped = _snapshot(c, "tx-bad")
        assert _add_partitions(c, 1, "tx-bad", pid, epoch0, {"t": [0]}) == {("t", 0): INVALID_PRODUCER_EPOCH}
        assert _add_partitions(c, 2, "tx-bad", pid, epoch0, {"t": [0]}) == {("t", 0): PRODUCER_FENCED}
        assert _end(c, 0, "tx-bad", pid, epoch0, False) == INVALID_PRODUCER_EPOCH
        assert _end(c, 3, "tx-bad", pid, epoch0, False) == PRODUCER_FENCED
        assert c.call(ADD_OFFSETS_TO_TXN, 1, {"transactional_id": "tx-bad", "producer_id": pid, "producer_epoch": epoch0, "group_id": "g"})["error_code"] == INVALID_PRODUCER_EPOCH
        assert _snapshot(c, "tx-bad") == bumped

        # The current epoch runs a transaction; the old epoch's batch to the same partition
        # is then refused by the log's producer state (the marker carried the new epoch).
        epoch1 = second["producer_epoch"]
        assert _add_partitions(c, 3, "tx-bad", pid, epoch1, {"t": [0]}) == {("t", 0): 0}
        assert _produce(c, "t", 0, pid, epoch1, 0, "tx-bad", b"ok") == 0
        # Commit retried while complete: NONE; the opposite outcome: INVALID_TXN_STATE.
        assert _end(c, 3, "tx-bad", pid, epoch1, True) == 0
        assert _end(c, 3, "tx-bad", pid, epoch1, True) == 0
        assert _end(c, 3, "tx-bad", pid, epoch1, False) == INVALID_TXN_STATE
        assert _produce(c, "t", 0, pid, epoch0, 0, "tx-bad", b"zombie") == INVALID_PRODUCER_EPOCH
        assert _snapshot(c, "tx-bad")[1:4] == ("CompleteCommit", pid, epoch1)
        # InitProducerId v3 naming an epoch that is neither current nor previous: fenced.
        stale = c.call(INIT_PRODUCER_ID, 3, {"transactional_id": "tx-bad", "transaction_timeout_ms": 30000, "producer_id": pid, "producer_epoch": epoch0 - 1 if epoch0 > 0 else 999})
        assert stale["error_code"] == INVALID_PRODUCER_EPOCH
        assert _snapshot(c, "tx-bad")[1:4] == ("CompleteCommit", pid, epoch1)
    assert values(read_to_end(bootstrap, "t", 2, "read_committed")) == [b"ok"]


def test_transactional_batch_outside_the_transaction_is_refused(broker: Broker, bootstrap: str) -> None:
    """KIP-890's verification: a transactional batch for a partition the coordinator does not
    have in the producer's open transaction (never added, or the transaction already ended,
    e.g. a client retrying across a server restart) is refused and nothing is written; it
    would otherwise open a transaction nobody ends and hold back read_committed readers."""
    broker.create_topic("t", 2)
    with RawClient(bootstrap) as c:
        init = _init(c, "tx-verify")
        pid, epoch = init["producer_id"], init["producer_epoch"]
        # No transaction at all yet.
        assert _produce(c, "t", 0, pid, epoch, 0, "tx-verify", b"early") == INVALID_TXN_STATE
        assert _add_partitions(c, 3, "tx-verify", pid, epoch, {"t": [0]}) == {("t", 0): 0}
        # Partition 1 was not added; partition 0 was.
        assert _produce(c, "t", 1, pid, epoch, 0, "tx-verify", b"unadded") == INVALID_TXN_STATE
        assert _produce(c, "t", 0, pid, epoch, 0, "tx-verify", b"ok") == 0
        # Wrong producer id for the transactional id; a stale epoch.
        assert _produce(c, "t", 0, pid + 1, epoch, 0, "tx-verify", b"x") == INVALID_PRODUCER_ID_MAPPING
        assert _end(c, 3, "tx-verify", pid, epoch, True) == 0
        # After the commit: the batch of a retry that arrives late is refused too.
        assert _produce(c, "t", 0, pid, epoch, 1, "tx-verify", b"late") == INVALID_TXN_STATE
    for part in (0, 1):
        plog = broker.get_log("t", part)
        assert plog.last_stable_offset == plog.log_end_offset
    assert broker.get_log("t", 1).log_end_offset == 0
    assert values(read_to_end(bootstrap, "t", 2, "read_uncommitted")) == [b"ok"]


def test_describe_list_transactions_and_producers(broker: Broker, bootstrap: str) -> None:
    broker.create_topic("t", 2)
    with RawClient(bootstrap) as c:
        a = _init(c, "tx-a")
        b = _init(c, "tx-b")
        assert _add_partitions(c, 3, "tx-a", a["producer_id"], a["producer_epoch"], {"t": [0, 1]}) == {("t", 0): 0, ("t", 1): 0}
        assert _produce(c, "t", 1, a["producer_id"], a["producer_epoch"], 0, "tx-a", b"open") == 0

        [da] = c.call(DESCRIBE_TRANSACTIONS, 0, {"transactional_ids": ["tx-a"]})["transaction_states"]
        assert (da["error_code"], da["transaction_state"], da["producer_id"], da["transaction_timeout_ms"]) == (0, "Ongoing", a["producer_id"], 30000)
        assert da["transaction_start_time_ms"] > 0
        assert da["topics"] == [{"topic": "t", "partitions": [0, 1]}]

        listed = c.call(LIST_TRANSACTIONS, 1, {"state_filters": [], "producer_id_filters": [], "duration_filter": -1})
        assert {(t["transactional_id"], t["transaction_state"]) for t in listed["transaction_states"]} == {("tx-a", "Ongoing"), ("tx-b", "Empty")}
        ongoing = c.call(LIST_TRANSACTIONS, 0, {"state_filters": ["Ongoing", "Bogus"], "producer_id_filters": []})
        assert [t["transactional_id"] for t in ongoing["transaction_states"]] == ["tx-a"]
        assert ongoing["unknown_state_filters"] == ["Bogus"]
        by_pid = c.call(LIST_TRANSACTIONS, 0, {"state_filters": [], "producer_id_filters": [b["producer_id"]]})
        assert [t["transactional_id"] for t in by_pid["transaction_states"]] == ["tx-b"]

        resp = c.call(DESCRIBE_PRODUCERS, 0, {"topics": [{"name": "t", "partition_indexes": [0, 1]}, {"name": "missing", "partition_indexes": [0]}]})
        p0, p1 = resp["topics"][0]["partitions"]
        assert p0["active_producers"] == []
        [active] = p1["active_producers"]
        assert (active["producer_id"], active["producer_epoch"], active["last_sequence"], active["current_txn_start_offset"]) == (a["producer_id"], a["producer_epoch"], 0, 0)
        assert resp["topics"][1]["partitions"][0]["error_code"] == 3

        assert _end(c, 3, "tx-a", a["producer_id"], a["producer_epoch"], False) == 0
        resp = c.call(DESCRIBE_PRODUCERS, 0, {"topics": [{"name": "t", "partition_indexes": [1]}]})
        assert resp["topics"][0]["partitions"][0]["active_producers"][0]["current_txn_start_offset"] == -1
