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
