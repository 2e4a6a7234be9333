"""Real Kafka clients on the data path: produce, then read back every record in order.

Goal: the wire Produce/Fetch/ListOffsets/InitProducerId handlers work unchanged for
confluent-kafka (librdkafka: every compression codec, idempotence on, offsets_for_times),
kafka-python and aiokafka, and records cross between the embedded API and the wire both ways.

Method: a Broker in tmp_path served on an ephemeral port (conftest `server`); each client
produces numbered records to explicit partitions, a consumer assigned to the partitions (no
group: nothing here depends on the group coordinator) reads until it has them all or its
deadline passes, and the test compares the exact sequence per partition, so loss, duplication
and reordering all fail. Delivery reports must carry the offsets the consumer then sees.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

PARTITIONS = 3
DEADLINE_S = 20.0


def expected(n: int) -> dict[int, list[bytes]]:
    out: dict[int, list[bytes]] = {p: [] for p in range(PARTITIONS)}
    for i in range(n):
        out[i % PARTITIONS].append(b"value-%06d" % i)
    return out


def confluent_consume(bootstrap: str, topic: str, count: int, partitions: int = PARTITIONS) -> dict[int, list[tuple[int, bytes]]]:
    """(offset, value) per partition, read by an assigned confluent-kafka Consumer."""
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": "data-path-readers",  # required by the client; nothing is committed
        "enable.auto.commit": False,
        "fetch.wait.max.ms": 100,
    })
    got: dict[int, list[tuple[int, bytes]]] = {p: [] for p in range(partitions)}
    try:
        consumer.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
        deadline = time.monotonic() + DEADLINE_S
        total = 0
        while total < count and time.monotonic() < deadline:
            for msg in consumer.consume(num_messages=10000, timeout=0.5):
                assert msg.error() is None, msg.error()
                got[msg.partition()].append((msg.offset(), msg.value()))
                total += 1
    finally:
        consumer.close()
    return got


@pytest.mark.parametrize("codec", ["none", "gzip", "snappy", "lz4", "zstd"])
def test_confluent_idempotent_produce_each_codec_reads_back_in_order(broker: Any, bootstrap: str, codec: str) -> None:
    from confluent_kafka import Producer

    broker.create_topic("t", PARTITIONS)
    n = 3000
    producer = Producer({
        "bootstrap.servers": bootstrap,
        "enable.idempotence": True,
        "acks": "all",
        "linger.ms": 5,
        "compression.type": codec,
        "batch.num.messages": 500,  # several batches per partition, so sequences advance
    })
    reports: dict[int, list[int]] = {p: [] for p in range(PARTITIONS)}
    errors: list[Any] = []

    def on_delivery(err: Any, msg: Any) -> None:
        if err is not None:
            errors.append(err)
        else:
            reports[msg.partition()].append(msg.offset())

    for i in range(n):
        producer.produce("t", value=b"value-%06d" % i, key=b"k%d" % i, partition=i % PARTITIONS, on_delivery=on_delivery)
        if i % 1000 == 0:
            producer.poll(0)
    assert producer.flush(DEADLINE_S) == 0
    assert errors == []
    want = expected(n)
    got = confluent_consume(bootstrap, "t", n)
    for p in range(PARTITIONS):
        assert [v for _, v in got[p]] == want[p]
        assert [o for o, _ in got[p]] == list(range(len(want[p])))
        assert sorted(reports[p]) == list(range(len(want[p])))
    if codec != "none":
        # The batches were stored as the client compressed them.
        first = next(iter(broker.get_log("t", 0).read(0).batches()))[0]
        assert first.compression == {"gzip": 1, "snappy": 2, "lz4": 3, "zstd": 4}[codec]


def test_confluent_offsets_for_times_and_watermarks(broker: Any, bootstrap: str) -> None:
    from confluent_kafka import Consumer, Producer, TopicPartition

    broker.create_topic("t", 1)
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 0})
    base = 1_700_000_000_000
    for i in range(10):
        producer.produce("t", value=b"%d" % i, partition=0, timestamp=base + i * 1000)
        producer.flush(5)  # one batch per record: lookups land inside the log, not one batch
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "times", "enable.auto.commit": False})
    try:
        found = consumer.offsets_for_times(
            [TopicPartition("t", 0, base + 3500)], timeout=10
        )
        assert (found[0].error, found[0].offset) == (None, 4)
        past = consumer.offsets_for_times([TopicPartition("t", 0, base + 99_000)], timeout=10)
        assert past[0].offset == -1  # OFFSET_END: no record that late
        assert consumer.get_watermark_offsets(TopicPartition("t", 0), timeout=10) == (0, 10)
        broker.get_log("t", 0).delete_records_before(4)
        assert consumer.get_watermark_offsets(TopicPartition("t", 0), timeout=10) == (4, 10)
    finally:
        consumer.close()


def test_kafka_python_produce_and_consume(broker: Any, bootstrap: str) -> None:
    from kafka import KafkaConsumer, KafkaProducer, TopicPartition

    broker.create_topic("t", PARTITIONS)
    n = 600
    producer = KafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True, acks="all",
                             compression_type="gzip", linger_ms=5)
    try:
        futures = [producer.send("t", value=b"value-%06d" % i, partition=i % PARTITIONS) for i in range(n)]
        producer.flush(DEADLINE_S)
        metas = [f.get(timeout=DEADLINE_S) for f in futures]
    finally:
        producer.close(5)
    assert [m.offset for m in metas[:PARTITIONS * 2]] == [0, 0, 0, 1, 1, 1]
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                             auto_offset_reset="earliest", fetch_max_wait_ms=100)
    got: dict[int, list[bytes]] = {p: [] for p in range(PARTITIONS)}
    try:
        consumer.assign([TopicPartition("t", p) for p in range(PARTITIONS)])
        deadline = time.monotonic() + DEADLINE_S
        while sum(map(len, got.values())) < n and time.monotonic() < deadline:
            for tp, msgs in consumer.poll(timeout_ms=500).items():
                got[tp.partition] += [m.value for m in msgs]
        ends = consumer.end_offsets([TopicPartition("t", p) for p in range(PARTITIONS)])
    finally:
        consumer.close()
    assert got == expected(n)
    assert sorted(ends.values()) == [n // PARTITIONS] * PARTITIONS


def test_aiokafka_produce_and_consume(broker: Any, bootstrap: str) -> None:
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

    broker.create_topic("t", PARTITIONS)
    n = 600

    async def main() -> dict[int, list[bytes]]:
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True,
                                    compression_type="gzip", linger_ms=5)
        await producer.start()
        try:
            futures = [await producer.send("t", value=b"value-%06d" % i, partition=i % PARTITIONS) for i in range(n)]
            metas = await asyncio.wait_for(asyncio.gather(*futures), DEADLINE_S)
        finally:
            await producer.stop()
        assert {m.offset for m in metas} == set(range(n // PARTITIONS))
        consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                                    auto_offset_reset="earliest", fetch_max_wait_ms=100)
        await consumer.start()
        got: dict[int, list[bytes]] = {p: [] for p in range(PARTITIONS)}
        try:
            consumer.assign([TopicPartition("t", p) for p in range(PARTITIONS)])
            deadline = time.monotonic() + DEADLINE_S
            while sum(map(len, got.values())) < n and time.monotonic() < deadline:
                batches = await consumer.getmany(timeout_ms=500)
                for tp, msgs in batches.items():
                    got[tp.partition] += [m.value for m in msgs]
        finally:
            await consumer.stop()
        return got

    assert asyncio.run(asyncio.wait_for(main(), DEADLINE_S * 2)) == expected(n)


def test_embedded_producer_to_wire_consumer_and_back(broker: Any, bootstrap: str) -> None:
    from confluent_kafka import Producer

    from headwater import TopicPartition

    broker.create_topic("t", 1)
    embedded = broker.producer({"linger.ms": 0})
    try:
        for i in range(50):
            embedded.produce("t", b"embedded-%d" % i, partition=0)
        assert embedded.flush(10) == 0
    finally:
        embedded.close()
    wire = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True, "linger.ms": 1})
    for i in range(50):
        wire.produce("t", value=b"wire-%d" % i, key=b"key-%d" % i, headers=[("h", b"%d" % i)], partition=0)
    assert wire.flush(10) == 0

    want = [b"embedded-%d" % i for i in range(50)] + [b"wire-%d" % i for i in range(50)]
    got = confluent_consume(bootstrap, "t", 100, partitions=1)
    assert [v for _, v in got[0]] == want

    consumer = broker.consumer({"group.id": "embedded-reader", "enable.auto.commit": False})
    try:
        consumer.assign([TopicPartition("t", 0, 0)])
        msgs: list[Any] = []
        deadline = time.monotonic() + DEADLINE_S
        while len(msgs) < 100 and time.monotonic() < deadline:
            msgs += consumer.consume(100, timeout=0.5)
    finally:
        consumer.close()
    assert [m.value() for m in msgs] == want
    last = msgs[-1]
    assert (last.key(), last.headers()) == (b"key-49", [("h", b"49")])


def test_confluent_admin_delete_records_and_list_offsets(broker: Any, bootstrap: str) -> None:
    from confluent_kafka import IsolationLevel, Producer, TopicPartition
    from confluent_kafka.admin import AdminClient, OffsetSpec

    broker.create_topic("t", 1)
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 0})
    for i in range(10):
        producer.produce("t", value=b"%d" % i, partition=0, timestamp=1_700_000_000_000 + i)
        producer.flush(5)
    admin = AdminClient({"bootstrap.servers": bootstrap})
    (fut,) = admin.delete_records([TopicPartition("t", 0, 6)], request_timeout=10).values()
    assert fut.result(10).low_watermark == 6
    tp = TopicPartition("t", 0)
    specs = {"earliest": OffsetSpec.earliest(), "latest": OffsetSpec.latest(), "max": OffsetSpec.max_timestamp()}
    got = {}
    for name, spec in specs.items():
        (f,) = admin.list_offsets({tp: spec}, isolation_level=IsolationLevel.READ_COMMITTED, request_timeout=10).values()
        got[name] = f.result(10).offset
    assert got == {"earliest": 6, "latest": 10, "max": 9}
    assert broker.get_log("t", 0).log_start_offset == 6


def test_consumers_cross_segment_boundaries(tmp_path: Any) -> None:
    """Small segments: every fetch stops at a segment end; both clients carry on from there."""
    from confluent_kafka import Producer
    from kafka import KafkaConsumer, TopicPartition

    from headwater.client.broker import Broker

    with Broker(str(tmp_path / "d"), {"segment.bytes": 8_000}) as broker:
        server = broker.serve(port=0)
        try:
            bootstrap = server.bootstrap_servers
            broker.create_topic("t", PARTITIONS)
            n = 3000
            producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True, "linger.ms": 2,
                                 "batch.num.messages": 100})
            for i in range(n):
                producer.produce("t", value=b"value-%06d" % i, partition=i % PARTITIONS)
            assert producer.flush(DEADLINE_S) == 0
            assert min(len(broker.get_log("t", p).segments) for p in range(PARTITIONS)) >= 3
            want = expected(n)
            got = confluent_consume(bootstrap, "t", n)
            assert {p: [v for _, v in got[p]] for p in got} == want
            consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                                     fetch_max_wait_ms=100)
            seen: dict[int, list[bytes]] = {p: [] for p in range(PARTITIONS)}
            try:
                consumer.assign([TopicPartition("t", p) for p in range(PARTITIONS)])
                consumer.seek_to_beginning()
                deadline = time.monotonic() + DEADLINE_S
                while sum(map(len, seen.values())) < n and time.monotonic() < deadline:
                    for tp, msgs in consumer.poll(timeout_ms=500).items():
                        seen[tp.partition] += [m.value for m in msgs]
            finally:
                consumer.close()
            assert seen == want
        finally:
            server.close()


@pytest.mark.parametrize("topic_codec, producer_codec", [("lz4", "gzip"), ("uncompressed", "zstd"), ("zstd", "none")])
def test_topic_compression_type_recompresses_what_producers_send(broker: Any, bootstrap: str, topic_codec: str, producer_codec: str) -> None:
    """compression.type on the topic (set by AdminClient): every batch is stored with that codec
    whatever the producer used, and consumers read the records unchanged."""
    from confluent_kafka import Consumer, Producer, TopicPartition
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.create_topics([NewTopic("recompressed", 1, 1, config={"compression.type": topic_codec})], request_timeout=15)
    futures["recompressed"].result(15)
    p = Producer({"bootstrap.servers": bootstrap, "compression.type": producer_codec, "linger.ms": 5})
    values = [b"value-%04d" % i * 5 for i in range(500)]
    for i, v in enumerate(values):
        p.produce("recompressed", v, key=b"k%d" % (i % 7))
    assert p.flush(15) == 0
    codecs = {"uncompressed": 0, "gzip": 1, "snappy": 2, "lz4": 3, "zstd": 4}
    plog = broker.get_log("recompressed", 0)
    with plog.read(0, 64 << 20) as result:
        stored = {h.compression for h, view in result.batches() if not view.release()}
    assert stored == {codecs[topic_codec]}
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "rc", "auto.offset.reset": "earliest"})
    c.assign([TopicPartition("recompressed", 0, 0)])
    got = []
    deadline = time.monotonic() + 20
    while len(got) < len(values) and time.monotonic() < deadline:
        m = c.poll(0.2)
        if m is not None and m.error() is None:
            got.append((m.key(), m.value()))
    c.close()
    assert got == [(b"k%d" % (i % 7), v) for i, v in enumerate(values)]
