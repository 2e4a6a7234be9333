"""The embedded broker's figures of issue 3 (bench/report_embedded.py) at smoke sizes: produce()
per record next to a no-op method loop, produce_batch with idempotence on and off, consume()
and consume_batch, and one produce-to-consume round trip on each face. Each case asserts the
records it moved, so nothing can be optimised away; the bars are report_embedded.py's.
"""

from __future__ import annotations

import asyncio

import pytest

import headwater


@pytest.fixture()
def broker(tmp_path):  # noqa: ANN201
    with headwater.Broker(str(tmp_path / "broker"), {"flush.policy": "interval"}) as b:
        b.create_topic("t", partitions=8)
        yield b


def _filled(b: headwater.Broker, workloads, n: int) -> int:  # noqa: ANN001
    p = b.producer({"linger.ms": 100})
    for i in range(8):
        p.produce_batch("t", workloads.values(n // 8), partition=i)
    p.flush()
    p.close()
    return sum(b.get_log("t", i).log_end_offset for i in range(8))


@pytest.mark.parametrize("kind", ["produce", "no-op method"])
def test_produce_per_record(benchmark, workloads, size, broker, kind):
    n = size["records"] * 10
    value = workloads.values(1)[0]
    benchmark.group = f"produce() x {n} x 100 B (8 partitions, linger.ms=100)"
    benchmark.extra_info["records"] = n
    if kind == "produce":
        p = broker.producer({"linger.ms": 100})
        f = p.produce
    else:

        class Noop:
            def produce(self, topic: str, value: bytes) -> None:
                pass

        p = None
        f = Noop().produce

    runs = []

    def run() -> int:
        for _ in range(n):
            f("t", value)
        if p is not None:
            p.flush()
        runs.append(n)
        return n

    assert benchmark.pedantic(run, rounds=3) == n
    if p is not None:
        p.close()
        assert sum(broker.get_log("t", i).log_end_offset for i in range(8)) == sum(runs)


@pytest.mark.parametrize("idempotence", [True, False], ids=["idempotent", "plain"])
def test_produce_batch(benchmark, workloads, size, broker, idempotence):
    batch = workloads.values(size["records"] * 9)
    calls = 8
    benchmark.group = f"produce_batch {calls} x {len(batch)} x 100 B, flush.policy=interval"
    benchmark.extra_info["records"] = calls * len(batch)
    p = broker.producer({"enable.idempotence": idempotence})

    def run() -> int:
        sent = sum(p.produce_batch("t", batch, partition=i % 8) for i in range(calls))
        p.flush()
        return sent

    assert benchmark.pedantic(run, rounds=3) == calls * len(batch)
    p.close()


@pytest.mark.parametrize("kind", ["consume_batch", "consume"])
def test_consume(benchmark, workloads, size, broker, kind):
    total = _filled(broker, workloads, size["read_records"])
    benchmark.group = f"read {total} x 100 B (8 partitions)"
    benchmark.extra_info["records"] = total

    def run() -> int:
        c = broker.consumer({"group.id": None, "enable.auto.commit": False})
        c.assign([headwater.TopicPartition("t", i, headwater.OFFSET_BEGINNING) for i in range(8)])
        got = 0
        while got < total:
            if kind == "consume_batch":
                for cb in c.consume_batch():
                    got += len(cb)
                    cb.release()
            else:
                msgs = c.consume(10_000, 1.0)
                assert msgs, "no progress"
                got += len(msgs)
        c.close()
        return got

    assert benchmark.pedantic(run, rounds=3) == total


def test_round_trip_threads(benchmark, broker):
    """Records one at a time from produce() (linger.ms=0) to poll() in the same thread: the
    work of a produce-to-consume hop without the wakeup (bench/latency.py measures that)."""
    broker.create_topic("lat", partitions=1)
    p = broker.producer({"linger.ms": 0})
    c = broker.consumer({"group.id": None})
    c.assign([headwater.TopicPartition("lat", 0, headwater.OFFSET_END)])
    benchmark.group = "round trip, 100 records one at a time"

    def run() -> int:
        got = 0
        for _ in range(100):
            p.produce("lat", b"ping", partition=0)
            got += c.poll(1.0).value() == b"ping"
        return got

    assert benchmark(run) == 100
    p.close()
    c.close()


def test_round_trip_asyncio(benchmark, broker):
    """Records one at a time from AIOProducer.send to AIOConsumer.getone on one loop."""
    broker.create_topic("lat", partitions=1)
    loop = asyncio.new_event_loop()
    benchmark.group = "round trip, 100 records one at a time"

    async def start():  # noqa: ANN202
        producer = headwater.AIOProducer(broker, linger_ms=0)
        consumer = headwater.AIOConsumer(broker=broker, auto_offset_reset="latest")
        await producer.start()
        await consumer.start()
        consumer.assign([headwater.TopicPartition("lat", 0)])
        consumer.seek(headwater.TopicPartition("lat", 0), 0)  # the topic is empty: each hop reads its own record
        return producer, consumer

    producer, consumer = loop.run_until_complete(start())

    async def hops() -> int:
        got = 0
        for _ in range(100):
            await producer.send("lat", b"ping", partition=0)
            got += (await consumer.getone()).value == b"ping"
        return got

    try:
        assert benchmark(lambda: loop.run_until_complete(hops())) == 100
    finally:
        loop.run_until_complete(producer.stop())
        loop.run_until_complete(consumer.stop())
        loop.close()
