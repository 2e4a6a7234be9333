"""Embedded Consumer outside group rebalances: fetch, positions, commits and columnar reads.

Goal: the Consumer that `broker.consumer(config)` returns answers like confluent_kafka.Consumer
for assign/poll/consume, seek, pause/resume, position, commit/committed,
get_watermark_offsets, offsets_for_times and auto.offset.reset, and consume_batch() returns
columns that match the log.
Method: records produced with known keys, values and timestamps into small topics, read back
through the consumer and compared with what was produced (offset by offset). Commits are
checked through committed() and through a second consumer of the same group.
"""

from __future__ import annotations

import numpy as np
import pytest
from client_helpers import FAST_CONSUMER, poll_for, poll_until

from headwater.client import (
    OFFSET_BEGINNING,
    OFFSET_END,
    OFFSET_INVALID,
    KafkaError,
    KafkaException,
    TopicPartition,
)
from headwater.coordinator.group import TopicPartition as GroupTP
from headwater.errors import ConfigError, OffsetOutOfRangeError, StateError


def fill(broker, topic="t", partitions=1, n=20, ts0=None):
    """Produce n records per partition: key b"k<i>", value b"<p>:<i>", timestamp ts0 + 1000*i."""
    if broker._store.get(topic) is None:
        broker.create_topic(topic, partitions)
    p = broker.producer({"linger.ms": 1000})
    for part in range(partitions):
        for i in range(n):
            kw = {"timestamp": ts0 + 1000 * i} if ts0 is not None else {}
            p.produce(topic, b"%d:%d" % (part, i), key=b"k%d" % i, partition=part, **kw)
    p.flush()
    p.close()


def test_assign_from_beginning_reads_every_record_in_order(broker) -> None:
    fill(broker, partitions=2, n=30)
    c = broker.consumer({"group.id": "g"})
    c.assign([TopicPartition("t", 0, OFFSET_BEGINNING), TopicPartition("t", 1, OFFSET_BEGINNING)])
    msgs = poll_until(c, 60)
    assert len(msgs) == 60
    for part in range(2):
        mine = [m for m in msgs if m.partition() == part]
        assert [(m.offset(), m.key(), m.value()) for m in mine] == [(i, b"k%d" % i, b"%d:%d" % (part, i)) for i in range(30)]
        assert all(m.topic() == "t" and m.error() is None for m in mine)
    assert poll_for(c, 0.1) == []


def test_assign_explicit_offset_and_message_fields(broker) -> None:
    broker.create_topic("t", 1)
    p = broker.producer()
    p.produce("t", b"a", key=b"ka", headers=[("h", b"1")], timestamp=1234567)
    p.produce("t", None, key=b"tomb")
    p.produce("t", b"c")
    p.flush()
    c = broker.consumer()
    c.assign([TopicPartition("t", 0, 0)])
    m0, m1, m2 = poll_until(c, 3)
    assert (m0.key(), m0.value(), m0.headers(), m0.timestamp()) == (b"ka", b"a", [("h", b"1")], (1, 1234567))
    assert (m1.key(), m1.value(), len(m1)) == (b"tomb", None, 0)
    assert (m2.key(), m2.value()) == (None, b"c")
    c.assign([TopicPartition("t", 0, 2)])
    assert [m.value() for m in poll_until(c, 1)] == [b"c"]


def test_auto_offset_reset_latest_earliest_and_error(broker) -> None:
    fill(broker, n=5)
    latest = broker.consumer({"group.id": "g1"})  # default: latest
    latest.assign([TopicPartition("t", 0)])
    assert poll_for(latest, 0.1) == []
    fill(broker, n=2)
    assert [m.offset() for m in poll_until(latest, 2)] == [5, 6]

    earliest = broker.consumer({"group.id": "g2", "auto.offset.reset": "smallest"})
    earliest.assign([TopicPartition("t", 0)])
    assert len(poll_until(earliest, 7)) == 7

    strict = broker.consumer({"group.id": "g3", "auto.offset.reset": "error"})
    strict.assign([TopicPartition("t", 0)])
    with pytest.raises(OffsetOutOfRangeError):
        strict.poll(0.1)


def test_bad_auto_offset_reset_is_a_config_error(broker) -> None:
    with pytest.raises(ConfigError):
        broker.consumer({"auto.offset.reset": "sideways"})
    with pytest.raises(ConfigError):
        broker.consumer({"no.such.setting": 1})


def test_seek_rewinds_and_skips(broker) -> None:
    fill(broker, n=20)
    c = broker.consumer()
    c.assign([TopicPartition("t", 0, OFFSET_BEGINNING)])
    assert [m.offset() for m in poll_until(c, 3)] == [0, 1, 2]
    c.seek(TopicPartition("t", 0, 15))
    assert [m.offset() for m in poll_until(c, 5)] == [15, 16, 17, 18, 19]
    c.seek(TopicPartition("t", 0, OFFSET_BEGINNING))
    assert poll_until(c, 1)[0].offset() == 0
    c.seek(TopicPartition("t", 0, OFFSET_END))
    assert poll_for(c, 0.1) == []
    with pytest.raises(KafkaException) as info:  # not assigned: librdkafka's _STATE
        c.seek(TopicPartition("t", 5, 0))
    assert isinstance(info.value, StateError) and info.value.args[0].code() == KafkaError._STATE == -172


def test_pause_stops_delivery_and_resume_continues_without_gap(broker) -> None:
    fill(broker, partitions=2, n=10)
    c = broker.consumer()
    c.assign([TopicPartition("t", 0, 0), TopicPartition("t", 1, 0)])
    first = poll_until(c, 1)
    c.pause([TopicPartition("t", first[0].partition())])
    paused = first[0].partition()
    other = 1 - paused
    msgs = poll_for(c, 0.2)
    assert {m.partition() for m in msgs} <= {other}
    c.resume([TopicPartition("t", paused)])
    rest = poll_until(c, 9)
    assert [m.offset() for m in rest if m.partition() == paused] == list(range(1, 10))
    assert sorted(m.offset() for m in msgs + rest if m.partition() == other) == list(range(10))


def test_get_watermark_offsets(broker) -> None:
    fill(broker, partitions=2, n=7)
    c = broker.consumer()
    assert c.get_watermark_offsets(TopicPartition("t", 0)) == (0, 7)
    assert c.get_watermark_offsets(TopicPartition("t", 1)) == (0, 7)
    broker.create_topic("empty", 1)
    assert c.get_watermark_offsets(TopicPartition("empty", 0)) == (0, 0)


def test_offsets_for_times(broker) -> None:
    fill(broker, n=10, ts0=1_700_000_000_000)
    c = broker.consumer()
    got = c.offsets_for_times([
        TopicPartition("t", 0, 1_700_000_000_000),
        TopicPartition("t", 0, 1_700_000_005_500),
        TopicPartition("t", 0, 1_700_000_009_000),
        TopicPartition("t", 0, 1_800_000_000_000),
        TopicPartition("t", 0, 0),
    ])
    assert [tp.offset for tp in got] == [0, 6, 9, OFFSET_END, 0]


def test_commit_message_offsets_and_committed(broker) -> None:
    fill(broker, n=10)
    c = broker.consumer({"group.id": "g", "enable.auto.commit": False})
    c.assign([TopicPartition("t", 0, 0)])
    assert c.committed([TopicPartition("t", 0)])[0].offset == OFFSET_INVALID
    msgs = poll_until(c, 4)
    out = c.commit(message=msgs[3], asynchronous=False)
    assert [(tp.topic, tp.partition, tp.offset) for tp in out] == [("t", 0, 4)]
    assert c.committed([TopicPartition("t", 0)])[0].offset == 4
    c.commit(offsets=[TopicPartition("t", 0, 7, metadata="note")], asynchronous=False)
    (tp,) = c.committed([TopicPartition("t", 0)])
    assert (tp.offset, tp.metadata) == (7, "note")
    assert c.commit(offsets=[TopicPartition("t", 0, 8)]) is None  # asynchronous: no result
    # A second consumer of the group starts at the committed offset.
    c2 = broker.consumer({"group.id": "g", "auto.offset.reset": "earliest"})
    c2.assign([TopicPartition("t", 0)])
    assert [m.offset() for m in poll_until(c2, 2)] == [8, 9]


def test_on_commit_callback(broker) -> None:
    fill(broker, n=3)
    seen = []
    c = broker.consumer({"group.id": "g", "on_commit": lambda err, parts: seen.append((err, [(p.partition, p.offset) for p in parts]))})
    c.assign([TopicPartition("t", 0, 0)])
    c.commit(offsets=[TopicPartition("t", 0, 2)], asynchronous=False)
    assert seen == [(None, [(0, 2)])]


def test_commit_without_group_is_a_config_error(broker) -> None:
    fill(broker, n=1)
    c = broker.consumer()
    c.assign([TopicPartition("t", 0, 0)])
    with pytest.raises(ConfigError):
        c.commit(offsets=[TopicPartition("t", 0, 1)])
    with pytest.raises(ConfigError):
        c.subscribe(["t"])


def test_position_is_after_last_consumed_message(broker) -> None:
    fill(broker, n=100)
    c = broker.consumer()
    c.assign([TopicPartition("t", 0, 0)])
    m = poll_until(c, 1)[0]
    assert m.offset() == 0
    assert c.position([TopicPartition("t", 0)])[0].offset == 1


def test_close_with_auto_commit_commits_only_delivered_messages(broker) -> None:
    fill(broker, n=100)
    c = broker.consumer({"group.id": "g", **FAST_CONSUMER})
    c.subscribe(["t"])
    (m,) = poll_until(c, 1)
    assert m.offset() == 0
    c.close()
    assert broker.group_coordinator.fetch_offsets("g", [GroupTP("t", 0)])[GroupTP("t", 0)].offset == 1


def test_enable_partition_eof_event(broker) -> None:
    fill(broker, n=2)
    c = broker.consumer({"enable.partition.eof": True})
    c.assign([TopicPartition("t", 0, 0)])
    events = []
    for _ in range(50):
        events.extend(c.consume(10, 0.02))
        if any(m.error() is not None for m in events):
            break
    data = [m for m in events if m.error() is None]
    eof = [m for m in events if m.error() is not None]
    assert [m.offset() for m in data] == [0, 1]
    assert len(eof) == 1 and eof[0].error().code() == KafkaError._PARTITION_EOF and eof[0].offset() == 2


# ----------------------------------------------------------------- consume_batch


def test_consume_batch_columns_match_the_log(broker) -> None:
    fill(broker, partitions=3, n=200, ts0=1_700_000_000_000)
    c = broker.consumer()
    c.assign([TopicPartition("t", p, 0) for p in range(3)])
    batches = c.consume_batch(timeout=1)
    assert sorted(b.partition for b in batches) == [0, 1, 2]
    for b in batches:
        cols = b.columns
        assert b.topic == "t" and len(b) == 200
        assert np.frombuffer(cols.offsets, dtype=np.int64).tolist() == list(range(200))
        assert np.frombuffer(cols.timestamps, dtype=np.int64).tolist() == [1_700_000_000_000 + 1000 * i for i in range(200)]
        assert cols.values() == [b"%d:%d" % (b.partition, i) for i in range(200)]
        assert bytes(cols.key(5)) == b"k5" and bytes(cols.value(5)) == b"%d:5" % b.partition
        vl = np.frombuffer(cols.value_lengths, dtype=np.int64)
        assert (vl == np.array([len(b"%d:%d" % (b.partition, i)) for i in range(200)])).all()
        b.release()
        assert b.columns is None
    # Positions advanced: nothing more until new data arrives.
    assert c.consume_batch(timeout=0) == []
    fill(broker, partitions=3, n=1)
    more = c.consume_batch(timeout=1)
    assert sum(len(b) for b in more) == 3
    assert all(np.frombuffer(b.columns.offsets, dtype=np.int64).tolist() == [200] for b in more)
    for b in more:
        b.release()


def test_consume_batch_respects_pause_and_seek(broker) -> None:
    fill(broker, partitions=2, n=10)
    c = broker.consumer()
    c.assign([TopicPartition("t", 0, 0), TopicPartition("t", 1, 0)])
    c.pause([TopicPartition("t", 1)])
    batches = c.consume_batch(timeout=0.5)
    assert [b.partition for b in batches] == [0]
    for b in batches:
        b.release()
    c.seek(TopicPartition("t", 0, 8))
    c.resume([TopicPartition("t", 1)])
    got = {b.partition: np.frombuffer(b.columns.offsets, dtype=np.int64).tolist() for b in c.consume_batch(timeout=0.5)}
    assert got == {0: [8, 9], 1: list(range(10))}


def test_position_is_the_next_message_to_deliver_not_the_fetch_position(broker) -> None:
    """Records read ahead into the buffer are not consumed: position() of a partition the
    application has not been given anything from yet is its first buffered offset. (Committing
    position() in a transaction must never skip records the application has not seen.)"""
    from headwater.client.message import TopicPartition as TP

    broker.create_topic("ahead", partitions=3)
    p = broker.producer()
    for part in range(3):
        p.produce_batch("ahead", [b"v%d" % i for i in range(20)], partition=part)
    p.flush()
    c = broker.consumer({"group.id": None})
    c.assign([TP("ahead", part, 0) for part in range(3)])
    first = c.consume(1, 5.0)
    assert len(first) == 1
    got = first[0].partition()
    positions = {tp.partition: tp.offset for tp in c.position([TP("ahead", part) for part in range(3)])}
    assert positions == {part: (1 if part == got else 0) for part in range(3)}
    rest = c.consume(100, 1.0)
    assert len(rest) == 59
    assert {tp.offset for tp in c.position([TP("ahead", part) for part in range(3)])} == {20}
    c.close()


def _batches(broker, topic, partitions, batches, per_batch=10):
    """`batches` batches of `per_batch` records per partition, values b"<p>:<i>"."""
    broker.create_topic(topic, partitions)
    p = broker.producer()
    for part in range(partitions):
        for j in range(batches):
            p.produce_batch(topic, [b"%d:%d" % (part, j * per_batch + i) for i in range(per_batch)], partition=part)
            p.flush()
    p.close()


def test_fills_take_partitions_in_turn(broker) -> None:
    """A fill reads only up to what is asked for, starting after the partition the last fill
    stopped at: a partition with more data never starves the others."""
    _batches(broker, "turns", 3, batches=3)
    # One batch per read: each fill of poll() takes one read of one partition.
    c = broker.consumer({"group.id": None, "max.partition.fetch.bytes": 1})
    c.assign([TopicPartition("turns", part, 0) for part in range(3)])
    msgs = [c.poll(1.0) for _ in range(90)]
    assert [m.partition() for m in msgs] == [part for _ in range(3) for part in range(3) for _ in range(10)]
    for part in range(3):
        assert [m.value() for m in msgs if m.partition() == part] == [b"%d:%d" % (part, i) for i in range(30)]
    assert c.poll(0.05) is None
    c.close()


def test_consume_reads_on_until_it_has_what_it_asks_for(broker) -> None:
    _batches(broker, "ask", 3, batches=2)
    c = broker.consumer({"group.id": None, "max.partition.fetch.bytes": 1})
    c.assign([TopicPartition("ask", part, 0) for part in range(3)])
    assert len(c.consume(5, 1.0)) == 5  # reads partition 0 only
    # 5 buffered: reads on (1, 2, then 0 again), one read of each, to fill 25.
    got = c.consume(25, 1.0)
    assert [(m.partition(), m.offset()) for m in got] == (
        [(0, i) for i in range(5, 10)] + [(1, i) for i in range(10)] + [(2, i) for i in range(10)]
    )
    rest = c.consume(100, 1.0)
    assert sorted((m.partition(), m.offset()) for m in rest) == sorted(
        [(0, i) for i in range(10, 20)] + [(1, i) for i in range(10, 20)] + [(2, i) for i in range(10, 20)]
    )
    assert {tp.offset for tp in c.position([TopicPartition("ask", part) for part in range(3)])} == {20}
    c.close()


def test_fill_turns_survive_pause_and_a_smaller_assignment(broker) -> None:
    _batches(broker, "shrink", 4, batches=2)
    c = broker.consumer({"group.id": None, "max.partition.fetch.bytes": 1})
    c.assign([TopicPartition("shrink", part, 0) for part in range(4)])
    for _ in range(30):  # partitions 0, 1, 2: the next fill would start at 3
        assert c.poll(1.0) is not None
    c.assign([TopicPartition("shrink", 1, 0)])
    assert [m.offset() for m in c.consume(100, 1.0)] == list(range(10))
    c.assign([TopicPartition("shrink", part, 0) for part in (0, 1)])
    c.pause([TopicPartition("shrink", 0)])
    assert [(m.partition(), m.offset()) for m in c.consume(100, 1.0)] == [(1, i) for i in range(10)]
    c.resume([TopicPartition("shrink", 0)])
    got = c.consume(100, 1.0)
    assert sorted((m.partition(), m.offset()) for m in got) == [(0, i) for i in range(10)] + [(1, i) for i in range(10, 20)]
    c.close()


def test_last_offsets_across_runs_errors_and_equal_topic_names() -> None:
    from headwater._native._native import Message, last_offsets

    t1 = "".join(["to", "pic"])  # equal to "topic", another object: keys compare by value
    msgs = [
        Message("topic", 0, 5, None, b"a"),
        Message("topic", 0, 6, None, b"b"),
        Message("topic", 1, 3, None, b"c"),
        Message(t1, 0, 9, None, b"d"),
        Message("topic", 1, 4, None, None, error=KafkaError(KafkaError._PARTITION_EOF, "eof")),
        Message("other", 1, 1, None, b"e"),
        Message("topic", 2, 7, None, None, error=KafkaError(KafkaError._PARTITION_EOF, "eof")),
    ]
    assert last_offsets(msgs) == {("topic", 0): 10, ("topic", 1): 4, ("other", 1): 2}
    assert last_offsets([]) == {}
    assert last_offsets(msgs[-1:]) == {}
