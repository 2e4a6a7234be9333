"""One broker, two faces: what the embedded API writes, wire clients read, and the other way round.

Goal: the embedded Python API (`broker.producer()`, `broker.consumer()`) and the Kafka wire
protocol (`broker.serve()`) share one log and one group coordinator, so records cross between
them bit-exact: keys (null and empty distinct from each other), values (null = tombstone),
headers (order, repeated keys, null values) and CreateTime timestamps. Method: produce a fixed
set of records through one face, read every one back through the other with each real client
(confluent-kafka, kafka-python 3, aiokafka), and compare (partition, offset, key, value, headers,
timestamp) tuples with what the producer was told at delivery. Each wire producer uses a
different codec (zstd, xerial-framed snappy, gzip) so the embedded reader decodes them all.
Last, a wire consumer group and an embedded consumer group subscribe to one topic and each
receives every record (publish-subscribe across the two faces).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiokafka
import confluent_kafka
import kafka
import pytest

from headwater.client.message import OFFSET_BEGINNING, TopicPartition

N = 120
PARTITIONS = 2
DEADLINE_S = 20
TS0 = 1_600_000_000_000

# (partition, offset, key, value, headers, timestamp)
Rec = tuple[int, int, bytes | None, bytes | None, list[tuple[str, bytes | None]], int]


def record_fields(i: int, null_header_values: bool = True) -> tuple[bytes | None, bytes | None, list[tuple[str, bytes | None]], int]:
    """The i-th test record: a mix of null/empty keys, tombstones, repeated and null headers."""
    key = None if i % 10 == 0 else (b"" if i % 10 == 5 else f"k{i % 4}".encode())
    value = None if i % 25 == 7 else f"v{i}-".encode() * (1 + i % 3)
    headers: list[tuple[str, bytes | None]] = []
    if i % 3:
        headers = [("i", str(i).encode()), ("dup", b"a"), ("dup", b"b")]
        if i % 5 == 1 and null_header_values:
            headers.append(("null", None))
    return key, value, headers, TS0 + 1000 * i


def deadline_loop(done: Any, what: str) -> Any:
    """Yield until done() or DEADLINE_S passes (then fail with `what`)."""
    end = time.monotonic() + DEADLINE_S
    while not done():
        if time.monotonic() > end:
            pytest.fail(f"timed out after {DEADLINE_S} s waiting for {what}")
        yield


def assert_as_produced(recs: list[Rec], null_header_values: bool = True) -> None:
    """`recs` (sorted by partition, offset) are record_fields(0..N-1) in produce order, record i
    in partition i % PARTITIONS, at dense offsets from 0."""
    assert len(recs) == N
    for part in range(PARTITIONS):
        mine = [r for r in recs if r[0] == part]
        assert [r[1] for r in mine] == list(range(len(mine)))
        wanted = [record_fields(i, null_header_values) for i in range(N) if i % PARTITIONS == part]
        assert [(r[2], r[3], r[4], r[5]) for r in mine] == wanted


# ---- the embedded face -----------------------------------------------------------------------


def produce_embedded(broker: Any, topic: str) -> list[Rec]:
    """Produce N records with produce() and 20 with produce_batch(); return them as delivered."""
    broker.create_topic(topic, partitions=PARTITIONS)
    p = broker.producer({"linger.ms": 1})
    delivered: list[Rec] = []

    def on_delivery(err: Any, msg: Any) -> None:
        assert err is None, err
        delivered.append((msg.partition(), msg.offset(), msg.key(), msg.value(), list(msg.headers() or []), msg.timestamp()[1]))

    for i in range(N):
        key, value, headers, ts = record_fields(i)
        p.produce(topic, value, key=key, partition=i % PARTITIONS, headers=headers or None, timestamp=ts, on_delivery=on_delivery)
    assert p.flush(10) == 0
    out = sorted(delivered, key=lambda r: (r[0], r[1]))
    assert_as_produced(out)

    # produce_batch: the columnar path, one batch with keys, stamped with the producer's clock.
    # (Its `timestamp=` argument is ignored by the embedded producer today, so the expected
    # timestamps are the stored ones, checked to lie within the call.)
    start = broker.get_log(topic, 1).high_watermark
    values = [f"batch-{j}".encode() for j in range(20)]
    keys = [f"bk{j}".encode() for j in range(20)]
    t0 = int(time.time() * 1000)
    assert p.produce_batch(topic, values, keys=keys, partition=1) == 20
    p.flush(10)
    t1 = int(time.time() * 1000)
    p.close()
    assert broker.get_log(topic, 1).high_watermark == start + 20
    stored = [r for r in consume_embedded(broker, topic, N + 20) if r[0] == 1 and r[1] >= start]
    assert [(r[1], r[2], r[3], r[4]) for r in stored] == [(start + j, keys[j], values[j], []) for j in range(20)]
    assert all(t0 <= r[5] <= t1 for r in stored), (t0, t1, stored[0][5])
    out += stored
    return sorted(out, key=lambda r: (r[0], r[1]))


def consume_embedded(broker: Any, topic: str, count: int) -> list[Rec]:
    c = broker.consumer({"enable.auto.commit": False})
    try:
        c.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(PARTITIONS)])
        got: list[Rec] = []
        for _ in deadline_loop(lambda: len(got) >= count, f"{count} records (embedded)"):
            for m in c.consume(500, timeout=0.2):
                assert m.error() is None, m.error()
                got.append((m.partition(), m.offset(), m.key(), m.value(), list(m.headers() or []), m.timestamp()[1]))
    finally:
        c.close()
    return sorted(got, key=lambda r: (r[0], r[1]))


# ---- the wire clients ------------------------------------------------------------------------


def consume_confluent(bootstrap: str, topic: str, count: int) -> list[Rec]:
    c = confluent_kafka.Consumer({"bootstrap.servers": bootstrap, "group.id": "interop-confluent", "enable.auto.commit": False})
    try:
        c.assign([confluent_kafka.TopicPartition(topic, p, confluent_kafka.OFFSET_BEGINNING) for p in range(PARTITIONS)])
        got: list[Rec] = []
        for _ in deadline_loop(lambda: len(got) >= count, f"{count} records (confluent-kafka)"):
            for m in c.consume(500, timeout=0.2):
                assert m.error() is None, m.error()
                ts_type, ts = m.timestamp()
                assert ts_type == confluent_kafka.TIMESTAMP_CREATE_TIME
                got.append((m.partition(), m.offset(), m.key(), m.value(), list(m.headers() or []), ts))
    finally:
        c.close()
    return sorted(got, key=lambda r: (r[0], r[1]))


def consume_kafka_python(bootstrap: str, topic: str, count: int) -> list[Rec]:
    c = kafka.KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, auto_offset_reset="earliest")
    try:
        c.assign([kafka.TopicPartition(topic, p) for p in range(PARTITIONS)])
        c.seek_to_beginning()
        got: list[Rec] = []
        for _ in deadline_loop(lambda: len(got) >= count, f"{count} records (kafka-python)"):
            for recs in c.poll(timeout_ms=200).values():
                for r in recs:
                    assert r.timestamp_type == 0  # CreateTime
                    got.append((r.partition, r.offset, r.key, r.value, list(r.headers), r.timestamp))
    finally:
        c.close()
    return sorted(got, key=lambda r: (r[0], r[1]))


def consume_aiokafka(bootstrap: str, topic: str, count: int) -> list[Rec]:
    async def run() -> list[Rec]:
        c = aiokafka.AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, auto_offset_reset="earliest")
        await c.start()
        try:
            c.assign([aiokafka.TopicPartition(topic, p) for p in range(PARTITIONS)])
            await c.seek_to_beginning()
            got: list[Rec] = []
            while len(got) < count:
                for recs in (await c.getmany(timeout_ms=200)).values():
                    for r in recs:
                        assert r.timestamp_type == 0  # CreateTime
                        got.append((r.partition, r.offset, r.key, r.value, list(r.headers), r.timestamp))
            return got
        finally:
            await c.stop()

    got = asyncio.run(asyncio.wait_for(run(), DEADLINE_S))
    return sorted(got, key=lambda r: (r[0], r[1]))


def produce_confluent(bootstrap: str, topic: str) -> list[Rec]:
    p = confluent_kafka.Producer({"bootstrap.servers": bootstrap, "compression.type": "zstd", "linger.ms": 5, "enable.idempotence": True, "acks": "all"})
    delivered: list[Rec] = []

    def reporter(headers: list[tuple[str, bytes | None]]) -> Any:
        # confluent-kafka's delivery reports carry no headers: keep the ones sent.
        def on_delivery(err: Any, msg: Any) -> None:
            assert err is None, err
            delivered.append((msg.partition(), msg.offset(), msg.key(), msg.value(), headers, msg.timestamp()[1]))

        return on_delivery

    for i in range(N):
        key, value, headers, ts = record_fields(i)
        p.produce(topic, value, key=key, partition=i % PARTITIONS, headers=headers or None, timestamp=ts, on_delivery=reporter(headers))
    assert p.flush(DEADLINE_S) == 0
    return delivered


def produce_kafka_python(bootstrap: str, topic: str) -> list[Rec]:
    p = kafka.KafkaProducer(bootstrap_servers=bootstrap, compression_type="snappy", linger_ms=5, acks="all")
    try:
        sent = []
        for i in range(N):
            key, value, headers, ts = record_fields(i, null_header_values=False)
            fut = p.send(topic, value=value, key=key, partition=i % PARTITIONS, headers=headers, timestamp_ms=ts)
            sent.append((fut, key, value, headers, ts))
        p.flush(timeout=DEADLINE_S)
        out: list[Rec] = []
        for fut, key, value, headers, ts in sent:
            md = fut.get(timeout=DEADLINE_S)
            out.append((md.partition, md.offset, key, value, headers, ts))
        return out
    finally:
        p.close(timeout=10)


def produce_aiokafka(bootstrap: str, topic: str) -> list[Rec]:
    async def run() -> list[Rec]:
        p = aiokafka.AIOKafkaProducer(bootstrap_servers=bootstrap, compression_type="gzip", linger_ms=5, enable_idempotence=True)
        await p.start()
        try:
            sent = []
            for i in range(N):
                key, value, headers, ts = record_fields(i, null_header_values=False)
                fut = await p.send(topic, value=value, key=key, partition=i % PARTITIONS, headers=headers, timestamp_ms=ts)
                sent.append((fut, key, value, headers, ts))
            out: list[Rec] = []
            for fut, key, value, headers, ts in sent:
                md = await fut
                out.append((md.partition, md.offset, key, value, headers, ts))
            return out
        finally:
            await p.stop()

    return asyncio.run(asyncio.wait_for(run(), DEADLINE_S))


WIRE_CONSUMERS = {"confluent-kafka": consume_confluent, "kafka-python": consume_kafka_python, "aiokafka": consume_aiokafka}
WIRE_PRODUCERS = {"confluent-kafka": produce_confluent, "kafka-python": produce_kafka_python, "aiokafka": produce_aiokafka}


@pytest.mark.parametrize("client", list(WIRE_CONSUMERS))
def test_embedded_records_read_over_the_wire(broker: Any, bootstrap: str, client: str) -> None:
    expected = produce_embedded(broker, "interop-embedded")
    got = WIRE_CONSUMERS[client](bootstrap, "interop-embedded", len(expected))
    assert got == expected


@pytest.mark.parametrize("client", list(WIRE_PRODUCERS))
def test_wire_records_read_by_embedded_consumer(broker: Any, bootstrap: str, client: str) -> None:
    topic = "interop-wire"
    broker.create_topic(topic, partitions=PARTITIONS)
    delivered = sorted(WIRE_PRODUCERS[client](bootstrap, topic), key=lambda r: (r[0], r[1]))
    assert_as_produced(delivered, null_header_values=client == "confluent-kafka")
    for part in range(PARTITIONS):
        assert broker.get_log(topic, part).high_watermark == len([r for r in delivered if r[0] == part])
    got = consume_embedded(broker, topic, N)
    assert got == delivered


def test_wire_group_and_embedded_group_each_see_every_record(broker: Any, bootstrap: str) -> None:
    """Two groups on one topic, one over the wire and one embedded: each gets the whole stream."""
    topic = "interop-pubsub"
    broker.create_topic(topic, partitions=PARTITIONS)
    embedded = broker.consumer({"group.id": "interop-embedded-group", "auto.offset.reset": "earliest", "enable.auto.commit": False})
    wire = confluent_kafka.Consumer({
        "bootstrap.servers": bootstrap, "group.id": "interop-wire-group", "auto.offset.reset": "earliest",
        "enable.auto.commit": False, "session.timeout.ms": 6000, "heartbeat.interval.ms": 500,
    })
    seen: dict[str, list[tuple[int, int, bytes]]] = {"embedded": [], "wire": []}

    def poll_both() -> None:
        for m in embedded.consume(500, timeout=0.05):
            assert m.error() is None, m.error()
            seen["embedded"].append((m.partition(), m.offset(), m.value()))
        for m in wire.consume(500, timeout=0.05):
            assert m.error() is None, m.error()
            seen["wire"].append((m.partition(), m.offset(), m.value()))

    try:
        embedded.subscribe([topic])
        wire.subscribe([topic])
        p = broker.producer({"linger.ms": 1})
        for i in range(N):
            p.produce(topic, f"e{i}".encode(), key=f"k{i}".encode())
        p.flush(10)
        for _ in deadline_loop(lambda: min(len(v) for v in seen.values()) >= N, "both groups to read the embedded records"):
            poll_both()

        # Records produced over the wire while both groups are live reach both as well.
        wp = confluent_kafka.Producer({"bootstrap.servers": bootstrap, "linger.ms": 2})
        for i in range(N):
            wp.produce(topic, f"w{i}".encode(), key=f"k{i}".encode())
        assert wp.flush(DEADLINE_S) == 0
        for _ in deadline_loop(lambda: min(len(v) for v in seen.values()) >= 2 * N, "both groups to read the wire records"):
            poll_both()
        poll_both()  # anything extra (a duplicate) shows up here

        ends = {part: broker.get_log(topic, part).high_watermark for part in range(PARTITIONS)}
        assert sum(ends.values()) == 2 * N
        everything = {(part, o) for part in range(PARTITIONS) for o in range(ends[part])}
        values = {f"e{i}".encode() for i in range(N)} | {f"w{i}".encode() for i in range(N)}
        for face, recs in seen.items():
            assert len(recs) == 2 * N, face
            assert {(r[0], r[1]) for r in recs} == everything, face
            assert {r[2] for r in recs} == values, face

        embedded.commit(asynchronous=False)
        wire.commit(asynchronous=False)
        check = broker.consumer({"group.id": "interop-embedded-group"})
        check_wire = broker.consumer({"group.id": "interop-wire-group"})
        try:
            tps = [TopicPartition(topic, part) for part in range(PARTITIONS)]
            for c in (check, check_wire):
                assert {tp.partition: tp.offset for tp in c.committed(tps, timeout=10)} == ends
        finally:
            check.close()
            check_wire.close()
    finally:
        wire.close()
        embedded.close()
