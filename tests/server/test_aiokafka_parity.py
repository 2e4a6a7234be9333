"""The asyncio face answers as aiokafka does, call by call.

Goal: code written for aiokafka's AIOKafkaProducer and AIOKafkaConsumer runs on AIOProducer and
AIOConsumer (issue 3 part 7): the same results from send_and_wait/send_batch/partitions_for,
and from the consumer's assignment, positions, commits, seeks (to an offset, the beginning, the
end, the committed offset), pause/resume, highwater, beginning/end offsets and
offsets_for_times, for one scenario of calls.

Method: the oracle is aiokafka itself, connected over 127.0.0.1 to the same broker served on the
wire; the embedded face runs the same scenario. Each face has its own topic (two partitions) and
group. Every step records ("ok", value) or ("raise", exception class); values are normalised
only where the faces cannot agree by construction (the topic's name, wall-clock timestamps,
which partition a multi-partition fetch returns first). The differences that remain are listed
in KNOWN_DIFFERENCES, each on purpose: the test fails on any other, and on any listed one that
goes away.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from headwater.client.broker import Broker

aiokafka = pytest.importorskip("aiokafka")

# Where the embedded face answers otherwise, on purpose. aiokafka's own exception classes
# (IllegalStateError, ConsumerStoppedError, ProducerClosed) would make aiokafka a dependency:
# headwater raises StateError (librdkafka's _STATE) and RuntimeError. A send to a partition the
# topic lacks fails an assert in aiokafka; headwater raises UnknownPartitionError. The
# RecordMetadata of a send carries timestamp -1 (Kafka's ProduceResponse for CreateTime), where
# aiokafka fills in the time it stamped.
KNOWN_DIFFERENCES = {
    "send_and_wait: timestamp": (("ok", "the send time"), ("ok", -1)),
    "send to a partition the topic lacks": (("raise", "AssertionError"), ("raise", "UnknownPartitionError")),
    "seek() of an unassigned partition": (("raise", "IllegalStateError"), ("raise", "StateError")),
    "getone() after stop": (("raise", "ConsumerStoppedError"), ("raise", "RuntimeError")),
    "send() after stop": (("raise", "ProducerClosed"), ("raise", "RuntimeError")),
}


async def _outcome(fn: Callable[[], Awaitable[Any]] | Callable[[], Any]) -> tuple[Any, ...]:
    try:
        result = fn()
        if asyncio.iscoroutine(result) or isinstance(result, asyncio.Future):
            result = await result
        return ("ok", result)
    except Exception as exc:  # noqa: BLE001 - the exception is the result compared
        return ("raise", type(exc).__name__)


async def scenario(topic: str, group: str, producer: Any, make_consumer: Callable[..., Any], tp: Callable[..., Any]) -> list[tuple[str, Any]]:
    steps: list[tuple[str, Any]] = []

    async def step(name: str, fn: Callable[[], Any]) -> None:
        steps.append((name, await _outcome(fn)))

    def meta(r: Any) -> Any:
        return (r.topic == topic, r.partition, r.offset, r.topic_partition == tp(topic, r.partition))

    await producer.start()
    sent_at = int(time.time() * 1000)
    r = await producer.send_and_wait(topic, b"v1", partition=0)
    steps.append(("send_and_wait", ("ok", meta(r))))
    steps.append(("send_and_wait: timestamp", ("ok", "the send time" if abs(r.timestamp - sent_at) < 60_000 else r.timestamp)))
    r = await producer.send_and_wait(topic, b"v2", key=b"k", partition=1, timestamp_ms=1_234_567, headers=[("h", b"x")])
    steps.append(("send_and_wait with key, timestamp, headers", ("ok", (meta(r), r.timestamp))))
    await step("send to a partition the topic lacks", lambda: producer.send_and_wait(topic, b"x", partition=9))
    await step("partitions_for", lambda: producer.partitions_for(topic))
    batch = producer.create_batch()
    batch.append(key=None, value=b"b1", timestamp=None)
    await step("batch record_count", lambda: batch.record_count())

    async def send_batch() -> Any:
        got = await producer.send_batch(batch, topic, partition=0)
        if isinstance(got, asyncio.Future):  # aiokafka returns the delivery future
            got = await got
        return meta(got)

    await step("send_batch", send_batch)
    await producer.flush()

    c = make_consumer(group_id=group, auto_offset_reset="earliest", enable_auto_commit=False)
    await c.start()
    p0, p1 = tp(topic, 0), tp(topic, 1)
    await step("assign", lambda: c.assign([p0, p1]))
    await step("assignment()", lambda: sorted((x.topic == topic, x.partition) for x in c.assignment()))
    await step("subscription() after assign", lambda: sorted(x == topic for x in c.subscription()))
    await step("committed() before any commit", lambda: c.committed(p0))
    await step("position() before a fetch", lambda: c.position(p0))

    async def drain() -> Any:
        got: dict[int, list[Any]] = {}
        deadline = time.monotonic() + 10
        while sum(map(len, got.values())) < 3 and time.monotonic() < deadline:
            for part, records in (await c.getmany(timeout_ms=500)).items():
                got.setdefault(part.partition, []).extend(
                    (m.offset, m.key, m.value, tuple(m.headers), m.timestamp_type, m.timestamp if m.timestamp == 1_234_567 else "now")
                    for m in records
                )
        return sorted(got.items())

    await step("getmany() until the 3 records", drain)
    await step("position() after", lambda: c.position(p0))
    await step("commit({tp: offset})", lambda: c.commit({p0: 1}))
    await step("committed()", lambda: c.committed(p0))
    await step("highwater()", lambda: c.highwater(p0))
    await step("seek() of an unassigned partition", lambda: c.seek(tp(topic, 7), 0))
    await step("seek() to a negative offset", lambda: c.seek(p0, -5))
    await step("seek()", lambda: c.seek(p0, 1))

    async def one() -> Any:
        m = await asyncio.wait_for(c.getone(p0), 10)
        return (m.partition, m.offset, m.value)

    await step("getone() after seek", one)
    await step("end_offsets()", lambda: _by_partition(c.end_offsets([p0, p1])))
    await step("beginning_offsets()", lambda: _by_partition(c.beginning_offsets([p0, p1])))
    future_ms = int(time.time() * 1000) + 3_600_000

    async def times() -> Any:
        got = await c.offsets_for_times({p1: 0, p0: future_ms})
        return sorted((x.partition, None if v is None else (v.offset, v.timestamp)) for x, v in got.items())

    await step("offsets_for_times()", times)
    await step("pause()", lambda: c.pause(p0))
    await step("paused()", lambda: sorted(x.partition for x in c.paused()))
    await step("resume()", lambda: c.resume(p0))
    await step("paused() after resume", lambda: sorted(c.paused()))
    await step("seek_to_beginning()", lambda: c.seek_to_beginning(p0))
    await step("getone() after seek_to_beginning", one)
    await step("seek_to_end()", lambda: c.seek_to_end(p1))
    await step("position() after seek_to_end", lambda: c.position(p1))
    await step("seek_to_committed()", lambda: _by_partition(c.seek_to_committed(p0)))
    await step("getone() after seek_to_committed", one)

    async def topics() -> Any:
        names = await c.topics()
        return (topic in names, sorted(n for n in names if n.startswith("__")))

    await step("topics()", topics)
    await step("partitions_for_topic()", lambda: c.partitions_for_topic(topic))
    await step("partitions_for_topic() of a missing topic", lambda: c.partitions_for_topic(topic + "-absent"))
    await step("unsubscribe()", lambda: c.unsubscribe())
    await step("assignment() after unsubscribe", lambda: c.assignment())
    await c.stop()
    await step("getone() after stop", lambda: asyncio.wait_for(c.getone(), 1))
    await producer.stop()
    await step("send() after stop", lambda: producer.send(topic, b"x", partition=0))
    return steps


async def _by_partition(result: Awaitable[dict[Any, Any]]) -> list[tuple[int, Any]]:
    return sorted((x.partition, v) for x, v in (await result).items())


def test_asyncio_face_answers_as_aiokafka(broker: Broker, bootstrap: str) -> None:
    import headwater

    for topic in ("wire", "embedded"):
        broker.create_topic(topic, 2)

    async def both() -> tuple[list[tuple[str, Any]], list[tuple[str, Any]]]:
        oracle = await scenario(
            "wire", "g-wire",
            aiokafka.AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=0),
            lambda **kw: aiokafka.AIOKafkaConsumer(bootstrap_servers=bootstrap, **kw),
            aiokafka.TopicPartition,
        )
        ours = await scenario(
            "embedded", "g-embedded",
            headwater.AIOProducer(broker, linger_ms=0),
            lambda **kw: headwater.AIOConsumer(broker=broker, **kw),
            headwater.TopicPartition,
        )
        return oracle, ours

    oracle, ours = asyncio.run(both())
    assert [name for name, _ in ours] == [name for name, _ in oracle]
    diffs = {name: (theirs, mine) for (name, theirs), (_, mine) in zip(oracle, ours, strict=True) if theirs != mine}
    assert diffs == KNOWN_DIFFERENCES, "\n".join(f"{n}: aiokafka {t!r}, embedded {m!r}" for n, (t, m) in diffs.items())
    answers = dict(oracle)
    assert answers["position() before a fetch"] == ("ok", 0)
    assert answers["getmany() until the 3 records"][1] == [
        (0, [(0, None, b"v1", (), 0, "now"), (1, None, b"b1", (), 0, "now")]),
        (1, [(0, b"k", b"v2", (("h", b"x"),), 0, 1_234_567)]),
    ]
    assert answers["offsets_for_times()"] == ("ok", [(0, None), (1, (0, 1_234_567))])


# The transactional producer: aiokafka raises IllegalOperation for a send outside a transaction
# and fails an assert for a commit without one; headwater raises confluent-kafka's
# KafkaException (_STATE), as its sync Producer does.
KNOWN_TXN_DIFFERENCES = {
    "send() outside a transaction": (("raise", "IllegalOperation"), ("raise", "KafkaException")),
    "commit_transaction() without one": (("raise", "AssertionError"), ("raise", "KafkaException")),
}


async def txn_scenario(topic: str, producer: Any, consumer: Any, tp: Callable[..., Any], group: str) -> list[tuple[str, Any]]:
    """A transactional producer's life, read back by a read_committed consumer."""
    steps: list[tuple[str, Any]] = []

    async def step(name: str, fn: Callable[[], Any]) -> None:
        steps.append((name, await _outcome(fn)))

    async def read() -> Any:
        got = await consumer.getmany(timeout_ms=2000)
        return sorted((x.partition, [(m.offset, m.value) for m in ms]) for x, ms in got.items())

    await producer.start()
    await consumer.start()
    consumer.assign([tp(topic, 0)])
    await step("send() outside a transaction", lambda: producer.send_and_wait(topic, b"a", partition=0))
    await step("begin_transaction()", lambda: producer.begin_transaction())
    await step("send_and_wait() in the transaction", lambda: _offset(producer.send_and_wait(topic, b"t1", partition=0)))
    await step("getmany() while it is open", lambda: consumer.getmany(timeout_ms=300))
    await step("send_offsets_to_transaction()", lambda: producer.send_offsets_to_transaction({tp(topic, 0): 5}, group))
    await step("commit_transaction()", lambda: producer.commit_transaction())
    await step("getmany() after the commit", read)
    await step("the offset committed with it", lambda: consumer.committed(tp(topic, 0)))
    await step("begin_transaction() again", lambda: producer.begin_transaction())
    await step("send_and_wait() in it", lambda: _offset(producer.send_and_wait(topic, b"t2", partition=0)))
    await step("abort_transaction()", lambda: producer.abort_transaction())
    await step("getmany() after the abort", read)
    await step("commit_transaction() without one", lambda: producer.commit_transaction())

    async def in_context() -> str:
        async with producer.transaction():
            await producer.send(topic, b"t3", partition=0)
        return "committed"

    await step("async with transaction()", in_context)
    await step("getmany() after it", read)
    await consumer.stop()
    await producer.stop()
    return steps


async def _offset(meta: Awaitable[Any]) -> int:
    return int((await meta).offset)


def test_transactional_asyncio_face_answers_as_aiokafka(broker: Broker, bootstrap: str) -> None:
    import headwater

    for topic in ("txn-wire", "txn-embedded"):
        broker.create_topic(topic, 1)
    reader = {"isolation_level": "read_committed", "auto_offset_reset": "earliest", "enable_auto_commit": False}

    async def both() -> tuple[list[tuple[str, Any]], list[tuple[str, Any]]]:
        oracle = await txn_scenario(
            "txn-wire",
            aiokafka.AIOKafkaProducer(bootstrap_servers=bootstrap, transactional_id="parity-wire"),
            aiokafka.AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id="gt-wire", **reader),
            aiokafka.TopicPartition, "gt-wire",
        )
        ours = await txn_scenario(
            "txn-embedded",
            headwater.AIOProducer(broker, transactional_id="parity-embedded"),
            headwater.AIOConsumer(broker=broker, group_id="gt-embedded", **reader),
            headwater.TopicPartition, "gt-embedded",
        )
        return oracle, ours

    oracle, ours = asyncio.run(both())
    diffs = {name: (theirs, mine) for (name, theirs), (_, mine) in zip(oracle, ours, strict=True) if theirs != mine}
    assert diffs == KNOWN_TXN_DIFFERENCES, "\n".join(f"{n}: aiokafka {t!r}, embedded {m!r}" for n, (t, m) in diffs.items())
    answers = dict(oracle)
    assert answers["getmany() after the commit"] == ("ok", [(0, [(0, b"t1")])])
    assert answers["getmany() after the abort"] == ("ok", [])  # the aborted record is never delivered
    assert answers["the offset committed with it"] == ("ok", 5)
    assert answers["getmany() after it"] == ("ok", [(0, [(4, b"t3")])])  # past t2 and both markers
