"""The single-record lanes of a linger.ms=0 producer and a tailing consumer (issue 3's latency
bar): what they keep between calls stays honest.

Goal: ProducerCore keeps each partition's log, ConsumerCore its tail log, and the broker wakes
threads through a C condition variable (DataSignal); none of that may change what a caller
sees. A topic deleted and created again gets the new log, a send that fails is reported (a
warning for produce() without a callback, the future's exception for AIOProducer.send), a
waiting thread wakes for an append and not before, and the asyncio results built in C equal
the ones the dataclass constructors build. A partition buffer starts presized to its last
batch, and still holds exactly what was produced.
Method: real Broker on tmp_path; records read back through the public consumer or the log;
threads joined with timeouts.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import threading
import time

import pytest

import headwater
from headwater._native._native import DataSignal, consumer_record
from headwater.client.aio import ConsumerRecord, RecordMetadata
from headwater.client.message import Message


def _values(broker, topic: str) -> list[bytes]:  # type: ignore[no-untyped-def]
    plog = broker.get_log(topic, 0)
    with plog.read(0) as r:
        return [m.value() for m in headwater._native._native.decode_messages(r.view, 0, topic, 0)] if r.view is not None else []


def test_producer_follows_a_topic_deleted_and_created_again(broker) -> None:  # type: ignore[no-untyped-def]
    """The kept log of a deleted topic is closed: the next send finds the new one."""
    broker.create_topic("t", 1)
    p = broker.producer({"linger.ms": 0})
    p.produce("t", b"old")
    broker.delete_topic("t")
    broker.create_topic("t", 1)
    p.produce("t", b"new")
    assert _values(broker, "t") == [b"new"]


def test_failed_linger0_produce_without_callback_is_logged(broker, caplog) -> None:  # type: ignore[no-untyped-def]
    """produce() with linger.ms=0 appends at once; with no callback to report to, a failed
    append is a warning (as a failed batch of _send_locked), not an exception."""
    broker.create_topic("t", 1)
    p = broker.producer({"linger.ms": 0})
    p.produce("t", b"a")
    broker.delete_topic("t")  # the producer still knows partition 0 of "t"
    with caplog.at_level(logging.WARNING, logger="headwater"):
        p.produce("t", b"b")
    assert any("delivery of 1 records to t-0 failed" in r.getMessage() for r in caplog.records), caplog.text
    assert len(p) == 0


def test_failed_aio_send_sets_the_future_exception(broker) -> None:  # type: ignore[no-untyped-def]
    broker.create_topic("t", 1)

    async def main() -> None:
        async with headwater.AIOProducer(broker, linger_ms=0) as p:
            await p.send_and_wait("t", b"a", partition=0)
            broker.delete_topic("t")
            fut = await p.send("t", b"b", partition=0)
            with pytest.raises(Exception, match="(?i)unknown"):
                await asyncio.wait_for(fut, 5)

    asyncio.run(main())


def test_consumer_follows_a_topic_deleted_and_created_again(broker) -> None:  # type: ignore[no-untyped-def]
    broker.create_topic("t", 1)
    p = broker.producer({"linger.ms": 0})
    c = broker.consumer({"group.id": None})
    c.assign([headwater.TopicPartition("t", 0, headwater.OFFSET_BEGINNING)])
    p.produce("t", b"old")
    assert c.poll(5).value() == b"old"
    broker.delete_topic("t")
    broker.create_topic("t", 1)
    c.assign([headwater.TopicPartition("t", 0, headwater.OFFSET_BEGINNING)])
    p.produce("t", b"new")
    m = c.poll(5)
    assert m is not None and (m.offset(), m.value()) == (0, b"new")


def test_data_signal_wakes_waiters_for_a_notify_only() -> None:
    sig = DataSignal()
    seen = sig.seq
    t0 = time.monotonic()
    sig.wait(seen, 0.05)  # nothing notified: the whole timeout
    assert time.monotonic() - t0 >= 0.04
    sig.notify()
    t0 = time.monotonic()
    sig.wait(seen, 5.0)  # seq moved past `seen` already: at once
    assert time.monotonic() - t0 < 1.0 and sig.seq == seen + 1

    woke: list[float] = []
    start = sig.seq

    def waiter() -> None:
        sig.wait(start, 10.0)
        woke.append(time.monotonic())

    threads = [threading.Thread(target=waiter) for _ in range(3)]
    for t in threads:
        t.start()
    time.sleep(0.1)
    assert woke == []  # all still waiting
    notified = time.monotonic()
    sig.notify()
    for t in threads:
        t.join(5)
    assert len(woke) == 3 and all(w - notified < 5.0 for w in woke)


def test_consumer_thread_wakes_on_append(broker) -> None:  # type: ignore[no-untyped-def]
    broker.create_topic("t", 1)
    c = broker.consumer({"group.id": None})
    c.assign([headwater.TopicPartition("t", 0, headwater.OFFSET_END)])
    assert c.poll(0.05) is None
    got: list[bytes] = []
    th = threading.Thread(target=lambda: got.append(c.poll(10).value()))
    th.start()
    time.sleep(0.1)
    broker.producer({"linger.ms": 0}).produce("t", b"x")
    th.join(10)
    assert got == [b"x"]


def test_c_built_results_equal_the_dataclass_constructors() -> None:
    from headwater._native._native import record_metadata

    meta = record_metadata(RecordMetadata, "t", 3, 42, -1)
    assert meta == RecordMetadata("t", 3, 42, -1) and hash(meta) == hash(RecordMetadata("t", 3, 42, -1))
    assert repr(meta) == repr(RecordMetadata("t", 3, 42, -1))
    with pytest.raises(dataclasses.FrozenInstanceError):
        meta.offset = 1  # type: ignore[misc]

    m = Message("t", 1, 7, b"k", b"v", [("h", b"x")], 1_700_000_000_000, 2)
    rec = consumer_record(ConsumerRecord, m)
    assert rec == ConsumerRecord("t", 1, 7, 1_700_000_000_000, 1, b"k", b"v", (("h", b"x"),))
    plain = consumer_record(ConsumerRecord, Message("t", 0, 0, None, None))
    assert plain == ConsumerRecord("t", 0, 0, -1, 0, None, None, ())
    assert dataclasses.asdict(plain)["headers"] == ()


# ------------------------------------------------------------- presized partition buffers


def test_partition_buffer_take_leaves_an_empty_list_with_the_last_batch_capacity() -> None:
    """take() hands the filled list over and leaves an empty one with room for as many items
    (produce() then appends without growing it); the taken list is not touched again."""
    import sys

    from headwater._native._native import PartitionBuffer

    buf = PartitionBuffer()
    buf.values.extend(b"%d" % i for i in range(1000))
    taken = buf.take()[0]
    assert taken == [b"%d" % i for i in range(1000)]
    assert buf.values == [] and len(buf.values) == 0
    assert sys.getsizeof(buf.values) >= sys.getsizeof([]) + 1000 * 8
    buf.values.append(b"x")
    buf.values.extend([b"y"] * 1500)  # past the capacity: grows as any list
    assert buf.values == [b"x"] + [b"y"] * 1500
    assert taken[:2] == [b"0", b"1"] and len(taken) == 1000
    assert buf.take()[0][0] == b"x"
    buf.take()
    assert buf.values == [] and sys.getsizeof(buf.values) == sys.getsizeof([])  # took nothing


def test_produce_fills_presized_buffers_in_order(tmp_path) -> None:
    """Batches of changing sizes through the presized buffers: every record once, in order."""
    with headwater.Broker(str(tmp_path / "d")) as b:
        b.create_topic("t", partitions=1)
        p = b.producer({"linger.ms": 60_000, "batch.num.messages": 7})
        sent = []
        for i in range(100):
            value = b"r%03d" % i
            p.produce("t", value, partition=0)
            sent.append(value)
            if i % 13 == 0:
                p.flush()  # a short batch: the next buffer starts with a smaller capacity
        p.flush()
        p.close()
        c = b.consumer({"group.id": None})
        c.assign([headwater.TopicPartition("t", 0, headwater.OFFSET_BEGINNING)])
        got = [m.value() for m in c.consume(200, 2.0)]
        c.close()
    assert got == sent
