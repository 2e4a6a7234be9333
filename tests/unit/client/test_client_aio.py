"""asyncio twins (aiokafka-shaped AIOProducer/AIOConsumer) on one event loop.

Goal: the async faces deliver the same guarantees as the sync ones without parking threads.
Method: real Broker on tmp_path; drive producers and consumers with asyncio.run and bounded
timeouts; check offsets from RecordMetadata against what consumers read, group sharing between
two AIOConsumers, commit + restart resuming from the committed offset, and that an append from
another thread wakes a waiting consumer.
"""

from __future__ import annotations

import asyncio
import threading

import pytest

import headwater


@pytest.fixture
def broker(tmp_path):  # type: ignore[no-untyped-def]
    b = headwater.Broker(str(tmp_path / "d"), {"group.initial.rebalance.delay.ms": 0, "group.min.session.timeout.ms": 100, "flush.policy": "interval"})
    yield b
    b.close()


def test_send_and_consume_with_offsets(broker) -> None:  # type: ignore[no-untyped-def]
    broker.create_topic("t", partitions=2)

    async def main() -> None:
        async with headwater.AIOProducer(broker, linger_ms=1) as p:
            futs = [await p.send("t", b"v%d" % i, key=b"k%d" % (i % 4)) for i in range(50)]
            metas = await asyncio.wait_for(asyncio.gather(*futs), 5)
            last = await p.send_and_wait("t", b"last", partition=1)
        by_offset = {(m.partition, m.offset) for m in metas}
        assert len(by_offset) == 50
        c = headwater.AIOConsumer("t", broker=broker, group_id="g", auto_offset_reset="earliest")
        await c.start()
        got = []
        while len(got) < 51:
            batch = await asyncio.wait_for(c.getmany(timeout_ms=200), 5)
            got += [r for recs in batch.values() for r in recs]
        assert {(r.partition, r.offset) for r in got} == by_offset | {(1, last.offset)}
        await c.commit()
        await c.stop()

    asyncio.run(main())


def test_two_consumers_share_a_group_and_resume_from_commit(broker) -> None:  # type: ignore[no-untyped-def]
    broker.create_topic("t", partitions=4)
    p = broker.producer()
    for i in range(40):
        p.produce("t", b"%d" % i, partition=i % 4)
    p.flush()

    async def main() -> None:
        cs = [headwater.AIOConsumer("t", broker=broker, group_id="g2", auto_offset_reset="earliest", client_id=f"c{i}", heartbeat_interval_ms=50, session_timeout_ms=3000) for i in range(2)]
        for c in cs:
            await c.start()
        seen: dict[int, list[tuple[int, int]]] = {0: [], 1: []}

        async def drain(i: int) -> None:
            for _ in range(100):
                batch = await cs[i].getmany(timeout_ms=50)
                seen[i] += [(r.partition, r.offset) for recs in batch.values() for r in recs]
                if sum(len(v) for v in seen.values()) >= 40 and all(cs[j].assignment() for j in range(2)):
                    return

        await asyncio.wait_for(asyncio.gather(drain(0), drain(1)), 20)
        union = seen[0] + seen[1]
        assert len(set(union)) == 40
        for c in cs:
            await c.commit()
            await c.stop()
        p.produce("t", b"new", partition=0)
        p.flush()
        c = headwater.AIOConsumer("t", broker=broker, group_id="g2", auto_offset_reset="earliest")
        await c.start()
        rec = await asyncio.wait_for(c.getone(), 5)
        assert rec.value == b"new" and rec.offset == 10
        await c.stop()

    asyncio.run(main())


def test_append_from_another_thread_wakes_a_waiting_consumer(broker) -> None:  # type: ignore[no-untyped-def]
    broker.create_topic("w", partitions=1)

    async def main() -> None:
        c = headwater.AIOConsumer(broker=broker, group_id=None)
        await c.start()
        c.assign([headwater.TopicPartition("w", 0, headwater.OFFSET_END)])
        waiter = asyncio.create_task(c.getone())
        await asyncio.sleep(0.05)
        assert not waiter.done()
        t = threading.Thread(target=lambda: broker.producer({"linger.ms": 0}).produce("w", b"ping", partition=0))
        t.start()
        rec = await asyncio.wait_for(waiter, 5)
        t.join()
        assert rec.value == b"ping"
        await c.stop()

    asyncio.run(main())


# linger_ms=0 sends each record at once (Producer._send_one): the futures, offsets, partition
# choice, idempotent sequences and errors must be what the buffered path's delivery reports give.
@pytest.mark.parametrize("linger_ms", [0, 1])
def test_send_linger_zero_matches_buffered_path(broker, linger_ms) -> None:  # type: ignore[no-untyped-def]
    topic = f"t{linger_ms}"
    broker.create_topic(topic, partitions=3)

    async def main() -> list[tuple[int, int, int]]:
        async with headwater.AIOProducer(broker, linger_ms=linger_ms) as p:
            futs = [await p.send(topic, b"v%d" % i, key=b"k%d" % (i % 5)) for i in range(30)]
            futs.append(await p.send(topic, b"ts", partition=2, timestamp_ms=1_700_000_000_000))
            futs.append(await p.send(topic, None, key=b"tomb", partition=0))
            metas = await asyncio.wait_for(asyncio.gather(*futs), 5)
        return [(m.partition, m.offset, m.timestamp) for m in metas]

    metas = asyncio.run(main())
    assert metas[-2] == (2, metas[-2][1], 1_700_000_000_000)
    if linger_ms == 0:
        # A record sent alone without a timestamp: CreateTime "now", reported as -1 (as the
        # delivery report of a one-record batch did).
        assert metas[-1][2] == -1 and metas[0][2] == -1
    # Per partition, offsets are 0.. in send order, and keys route by murmur2 as produce() does.
    per: dict[int, list[int]] = {}
    for part, off, _ in metas:
        per.setdefault(part, []).append(off)
    assert all(offs == list(range(len(offs))) for offs in per.values())
    sync = broker.producer({"linger.ms": 0})
    try:
        assert {metas[i][0] for i in range(30) if i % 5 == 1} == {sync._choose(topic, b"k1", sync._topic_state(topic))}
    finally:
        sync.close()
    # Idempotent batches: the sequence of each partition counts the records sent to it.
    for part, offs in per.items():
        entry = broker.get_log(topic, part).producer_state.last_entry(next(iter(broker.get_log(topic, part).producer_state.producers)))
        assert entry.last_seq == len(offs) - 1


def test_send_linger_zero_errors_fail_the_future(broker) -> None:  # type: ignore[no-untyped-def]
    broker.create_topic("small", partitions=1, config={"max.message.bytes": 200})
    broker.create_topic("plain", partitions=1)

    async def main() -> None:
        async with headwater.AIOProducer(broker, linger_ms=0) as p:
            fut = await p.send("small", b"x" * 500, partition=0)
            with pytest.raises(headwater.errors.KafkaApiError) as ei:
                await fut
            assert ei.value.code == 10  # MESSAGE_TOO_LARGE, as the delivery report says
            with pytest.raises(headwater.errors.UnknownTopicOrPartitionError):
                await p.send("plain", b"v", partition=5)
            with pytest.raises(TypeError):
                await p.send("plain", 12)
            meta = await (await p.send("plain", b"ok"))
            assert (meta.topic, meta.partition, meta.offset) == ("plain", 0, 0)
        with pytest.raises(RuntimeError):
            await p.send("plain", b"closed")

    asyncio.run(main())
    assert broker.get_log("small", 0).log_end_offset == 0


def test_send_linger_zero_keeps_order_with_buffered_records(broker) -> None:  # type: ignore[no-untyped-def]
    broker.create_topic("o", partitions=1)

    async def main() -> None:
        p = headwater.AIOProducer(broker, linger_ms=0)
        await p.start()
        try:
            core = p._producer
            # Records buffered by another path (a produce_batch-free, lingering produce()):
            # a later send must not overtake them.
            core._linger_s = 60.0
            core.produce("o", b"first", partition=0)
            core._linger_s = 0.0
            meta = await (await p.send("o", b"second", partition=0))
            assert meta.offset == 1
        finally:
            await p.stop()

    asyncio.run(main())
    with broker.get_log("o", 0).read(0) as r:
        assert [rec.value for rec in r] == [b"first", b"second"]
