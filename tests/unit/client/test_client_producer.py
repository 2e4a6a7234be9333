"""Embedded Producer: delivery, partitioning, ordering, batch produce and thread safety.

Goal: the Producer that `broker.producer(config)` returns behaves like confluent_kafka.Producer
(produce/poll/flush/len, delivery callbacks with offsets or errors) and puts every keyed
record where the Java client and kafka-python would, in produce order per key.
Method: produce through the public API, then read the partition logs directly (not through
the Consumer), so each assertion checks what was stored: the partition of every record, its
offset and the order of records per key. kafka-python's DefaultPartitioner is the oracle for
murmur2 partition choice.
"""

from __future__ import annotations

import contextlib
import random
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from client_helpers import end_offsets, log_records

# ----------------------------------------------------------------- delivery


def test_delivery_callbacks_report_partition_and_consecutive_offsets(broker) -> None:
    broker.create_topic("t", 1)
    p = broker.producer({"linger.ms": 1000})
    reports = []
    for i in range(10):
        p.produce("t", b"v%d" % i, key=b"k", on_delivery=lambda err, msg: reports.append((err, msg)))
    assert len(p) == 10  # buffered: linger.ms has not passed
    assert p.flush(5) == 0
    assert len(p) == 0
    assert [e for e, _ in reports] == [None] * 10
    assert [(m.topic(), m.partition(), m.offset(), m.key(), m.value()) for _, m in reports] == [
        ("t", 0, i, b"k", b"v%d" % i) for i in range(10)
    ]
    assert log_records(broker, "t", 0) == [(i, b"k", b"v%d" % i) for i in range(10)]


def test_config_on_delivery_and_callback_alias_are_served_by_poll(broker) -> None:
    broker.create_topic("t", 1)
    seen: list[str] = []
    p = broker.producer({"on_delivery": lambda e, m: seen.append("default"), "linger.ms": 0})
    p.produce("t", b"a")
    p.produce("t", b"b", callback=lambda e, m: seen.append("callback"))
    assert seen == []  # callbacks run only inside poll()/flush()
    assert p.poll(0) == 2
    assert seen == ["default", "callback"]


def test_headers_and_timestamp_are_stored(broker) -> None:
    broker.create_topic("t", 1)
    p = broker.producer()
    got = []
    p.produce("t", b"v", headers={"h1": b"x", "h2": "y"}, timestamp=1_600_000_000_000, on_delivery=lambda e, m: got.append(m))
    p.flush()
    assert got[0].timestamp()[1] == 1_600_000_000_000
    with broker.get_log("t", 0).read(0) as result:
        (rec,) = list(result)
        assert rec.timestamp == 1_600_000_000_000
        assert [(k, bytes(v)) for k, v in rec.headers] == [("h1", b"x"), ("h2", b"y")]


def test_delivery_error_reported_to_callback_and_nothing_written(broker) -> None:
    """A record bigger than the topic's max.message.bytes (but under the producer's
    message.max.bytes) fails at send: the callback gets MSG_SIZE_TOO_LARGE (10)."""
    broker.create_topic("small", 1, {"max.message.bytes": 1000})
    p = broker.producer({"message.max.bytes": 5_000_000})
    reports = []
    p.produce("small", b"x" * 2000, on_delivery=lambda e, m: reports.append((e, m)))
    p.flush()
    (err, msg), = reports
    assert err is not None and err.code() == 10
    assert msg.error() is err or msg.error() == err
    assert msg.offset() < 0
    assert end_offsets(broker, "small") == [0]


def test_delivery_error_has_kafka_error_name(broker) -> None:
    broker.create_topic("small", 1, {"max.message.bytes": 1000})
    p = broker.producer({"message.max.bytes": 5_000_000})
    reports = []
    p.produce("small", b"x" * 2000, on_delivery=lambda e, m: reports.append(e))
    p.flush()
    assert reports[0].name() == "MSG_SIZE_TOO_LARGE"  # librdkafka's name for code 10


def test_linger_sends_without_flush(broker) -> None:
    """The broker's timer thread sends a lingering batch once linger.ms has passed."""
    import time

    broker.create_topic("t", 1)
    p = broker.producer({"linger.ms": 20})
    p.produce("t", b"v")
    deadline = time.monotonic() + 5
    while broker.get_log("t", 0).log_end_offset == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert broker.get_log("t", 0).log_end_offset == 1


class _RecordingWake(threading.Event):
    """The timer's wake event, recording the timeout of each of the timer's sleeps."""

    def __init__(self) -> None:
        super().__init__()
        self.timeouts: list[float | None] = []

    def wait(self, timeout: float | None = None) -> bool:
        self.timeouts.append(timeout)
        return super().wait(timeout)


def _sleeps(wake: _RecordingWake, count: int) -> list[float | None]:
    """The timer's next `count` sleeps (bounded: 10 s)."""
    start = len(wake.timeouts)
    deadline = time.monotonic() + 10
    while len(wake.timeouts) < start + count and time.monotonic() < deadline:
        time.sleep(0.01)
    return wake.timeouts[start : start + count]


def test_timer_ticks_only_while_a_producer_can_linger(make_broker) -> None:
    """With only linger.ms=0 producers the timer sleeps past timer.interval.ms (to the
    coordinators' 50 ms step: each tick takes the GIL from the caller's thread); a producer
    that can linger wakes it, and while that producer is open the timer sleeps at most its
    linger.ms (a record produced meanwhile is then sent at most linger.ms plus a tick late),
    and never less than timer.interval.ms. The sleeps are read from the timer's wake event,
    not measured."""
    broker = make_broker({"timer.interval.ms": 2})
    wake = broker._timer_wake = _RecordingWake()
    broker.producer({"linger.ms": 0})
    sleeps = _sleeps(wake, 6)[2:]  # the first ones may predate the swap or the producer
    assert len(sleeps) == 4 and all(s is not None and s > 0.002 for s in sleeps), sleeps
    assert max(sleeps) > 0.020, sleeps  # to the coordinators' step, past any linger below

    lingering = broker.producer({"linger.ms": 20})
    _sleeps(wake, 2)  # the sleep under way when it registered, cut short
    sleeps = _sleeps(wake, 4)
    assert len(sleeps) == 4 and all(s is not None and 0.002 <= s <= 0.020 for s in sleeps), sleeps
    broker.create_topic("t", 1)
    lingering.produce("t", b"v")
    # Sent by the timer alone (no poll, no flush).
    deadline = time.monotonic() + 5
    while broker.get_log("t", 0).log_end_offset == 0 and time.monotonic() < deadline:
        time.sleep(0.005)
    assert broker.get_log("t", 0).log_end_offset == 1

    lingering.close()
    _sleeps(wake, 2)
    assert all(s is not None and s > 0.002 for s in _sleeps(wake, 3))


def test_send_lingering_returns_when_the_oldest_buffered_batch_is_due(broker) -> None:
    """The timer learns from each producer when its next batch comes due (Kafka's sender
    polls until then): the first buffered record's time plus linger.ms, across partitions;
    None once nothing is buffered; and the broker's step says by when to look again."""
    broker.create_topic("t", 2)
    p = broker.producer({"linger.ms": 400})
    assert p._send_lingering() is None
    before = time.monotonic()
    p.produce("t", b"a", partition=1)
    after = time.monotonic()
    time.sleep(0.01)
    p.produce("t", b"b", partition=0)  # buffered later: due later
    due = p._send_lingering()
    assert due is not None and before + 0.4 <= due <= after + 0.4
    assert len(p) == 2  # nothing was due yet
    now = time.monotonic()
    assert broker._send_due_batches() == pytest.approx(due)
    p.flush()
    assert p._send_lingering() is None
    # Nothing buffered, but it can linger: look again within linger.ms.
    assert now + 0.4 <= broker._send_due_batches() <= time.monotonic() + 0.4
    p.close()
    assert broker._send_due_batches() is None  # no producer can linger


def test_timer_sleep_is_the_earlier_of_due_batch_and_coordinator_step() -> None:
    from headwater.client.broker import _timer_sleep

    assert _timer_sleep(10.0, 10.02, 10.05, 0.005) == pytest.approx(0.02)  # the batch first
    assert _timer_sleep(10.0, 10.09, 10.05, 0.005) == pytest.approx(0.05)  # the coordinators first
    assert _timer_sleep(10.0, None, 10.05, 0.005) == pytest.approx(0.05)  # nothing lingers
    assert _timer_sleep(10.0, 10.001, 10.05, 0.005) == 0.005  # never under timer.interval.ms
    assert _timer_sleep(10.0, 9.0, 10.05, 0.005) == 0.005  # overdue: one tick


def test_timer_wakes_for_close(make_broker) -> None:
    """close() ends the timer's sleep instead of waiting it out (a long timer.interval.ms)."""
    broker = make_broker({"timer.interval.ms": 600000})
    broker.close()
    assert not broker._timer.is_alive()


@pytest.mark.parametrize("codec", ["gzip", "snappy", "lz4", "zstd"])
def test_compressed_batches_read_back(broker, codec) -> None:
    broker.create_topic("t", 1)
    p = broker.producer({"compression.type": codec})
    for i in range(50):
        p.produce("t", b"value-%d" % i, key=b"k%d" % i)
    p.flush()
    assert log_records(broker, "t", 0) == [(i, b"k%d" % i, b"value-%d" % i) for i in range(50)]


# ----------------------------------------------------------------- partitioning and ordering


@pytest.mark.parametrize("linger_ms", [0, 50])
def test_per_key_order_across_partitions(broker, linger_ms) -> None:
    """Interleaved records of 40 keys over 12 partitions: every key stays in one partition and
    its records are stored in produce order."""
    broker.create_topic("t", 12)
    p = broker.producer({"linger.ms": linger_ms, "batch.num.messages": 7})
    rng = random.Random(7)
    keys = [b"key-%d" % i for i in range(40)]
    produced: dict[bytes, list[bytes]] = defaultdict(list)
    for _i in range(1000 if linger_ms == 0 else 4000):  # linger 0: one append per record
        k = rng.choice(keys)
        v = b"%s:%d" % (k, len(produced[k]))
        produced[k].append(v)
        p.produce("t", v, key=k)
    p.flush()
    stored: dict[bytes, list[tuple[int, int, bytes]]] = defaultdict(list)
    for part in range(12):
        for off, k, v in log_records(broker, "t", part):
            stored[k].append((part, off, v))
    assert set(stored) == set(keys)
    for k in keys:
        parts = {part for part, _, _ in stored[k]}
        assert len(parts) == 1, (k, parts)
        assert [v for _, _, v in sorted(stored[k], key=lambda r: r[1])] == produced[k]


def test_murmur2_partition_equals_kafka_python_default_partitioner(broker) -> None:
    """10,000 random keys through the embedded Producer (default partitioner murmur2_random):
    each record is found, by reading the logs, in the partition kafka-python's
    DefaultPartitioner picks for its key."""
    kafka_default = pytest.importorskip("kafka.partitioner.default")
    oracle = kafka_default.DefaultPartitioner()

    class Cluster:
        """The part of kafka-python's ClusterMetadata that DefaultPartitioner reads."""

        def __init__(self, n: int) -> None:
            self.n = n

        def topics(self) -> set[str]:
            return {"t"}

        def partitions_for_topic(self, topic: str) -> set[int]:
            return set(range(self.n))

        def available_partitions_for_topic(self, topic: str) -> set[int]:
            return set(range(self.n))

    n = 13
    broker.create_topic("t", n)
    p = broker.producer({"linger.ms": 1000})
    rng = random.Random(20240611)
    keys = [rng.randbytes(rng.randrange(0, 48)) for _ in range(10_000)]
    for i, k in enumerate(keys):
        p.produce("t", b"%d" % i, key=k)
    p.flush()
    landed = {}
    for part in range(n):
        for _, _, v in log_records(broker, "t", part):
            landed[int(v)] = part
    assert len(landed) == 10_000
    cluster = Cluster(n)
    mismatches = [(i, keys[i]) for i in range(10_000) if landed[i] != oracle.partition("t", keys[i], keys[i], None, None, cluster)]
    assert mismatches == []


def test_explicit_partition_is_honoured(broker) -> None:
    broker.create_topic("t", 4)
    p = broker.producer()
    for part in (3, 0, 2):
        p.produce("t", b"v", key=b"same", partition=part)
    p.flush()
    assert end_offsets(broker, "t") == [1, 0, 1, 1]


def test_null_keys_stick_to_one_partition_per_batch(broker) -> None:
    broker.create_topic("t", 8)
    p = broker.producer({"linger.ms": 1000, "sticky.partitioning.linger.ms": 60_000})
    for _ in range(100):
        p.produce("t", b"v")
    p.flush()
    assert sorted(end_offsets(broker, "t")) == [0] * 7 + [100]


def test_consistent_random_partitioner_is_crc32(broker) -> None:
    import zlib

    broker.create_topic("t", 5)
    p = broker.producer({"partitioner": "consistent_random"})
    keys = [b"k%d" % i for i in range(200)]
    for i, k in enumerate(keys):
        p.produce("t", b"%d" % i, key=k)
    p.flush()
    for part in range(5):
        for _, k, _ in log_records(broker, "t", part):
            assert zlib.crc32(k) % 5 == part


# ----------------------------------------------------------------- produce_batch


def test_produce_batch_list_without_keys_lands_in_one_partition(broker) -> None:
    broker.create_topic("t", 4)
    p = broker.producer()
    values = [b"v%d" % i for i in range(1000)]
    assert p.produce_batch("t", values) == 1000
    ends = end_offsets(broker, "t")
    assert sorted(ends) == [0, 0, 0, 1000]
    part = ends.index(1000)
    assert [v for _, _, v in log_records(broker, "t", part)] == values


def test_produce_batch_with_keys_routes_like_produce(broker) -> None:
    from headwater.partitioner import murmur2_partition

    broker.create_topic("t", 6)
    p = broker.producer()
    keys = [b"key%d" % (i % 37) for i in range(600)]
    values = [b"%d" % i for i in range(600)]
    assert p.produce_batch("t", values, keys=keys) == 600
    seen = 0
    for part in range(6):
        recs = log_records(broker, "t", part)
        for _, k, _v in recs:
            assert murmur2_partition(k, 6) == part
        ids = [int(v) for _, _, v in recs]
        assert ids == sorted(ids)  # produce order kept within each partition
        seen += len(recs)
    assert seen == 600


def test_produce_batch_numpy_fixed_width_array(broker) -> None:
    broker.create_topic("t", 1)
    p = broker.producer()
    arr = np.array([b"%08d" % i for i in range(500)], dtype="S8")
    assert p.produce_batch("t", arr, partition=0) == 500
    assert [v for _, _, v in log_records(broker, "t", 0)] == [b"%08d" % i for i in range(500)]


def test_produce_batch_data_offsets_pair(broker) -> None:
    broker.create_topic("t", 2)
    p = broker.producer({"enable.idempotence": False})
    values = [b"", b"a", b"bcd", b"x" * 100, b"end"]
    data = b"".join(values)
    offsets = np.cumsum([0] + [len(v) for v in values]).astype(np.int64)
    assert p.produce_batch("t", (data, offsets), partition=1) == len(values)
    assert [v for _, _, v in log_records(broker, "t", 1)] == values
    assert end_offsets(broker, "t") == [0, len(values)]


def test_produce_batch_then_produce_keeps_order(broker) -> None:
    broker.create_topic("t", 1)
    p = broker.producer({"linger.ms": 1000})
    p.produce("t", b"first")
    p.produce_batch("t", [b"second", b"third"])
    p.produce("t", b"fourth")
    p.flush()
    assert [v for _, _, v in log_records(broker, "t", 0)] == [b"first", b"second", b"third", b"fourth"]


# ----------------------------------------------------------------- argument forms
# produce(topic) and produce(topic, value) take a C path of their own (no argument parsing);
# every other form goes through the full signature. All must store the same records.


def test_every_argument_form_of_produce_stores_the_record(broker) -> None:
    broker.create_topic("t", 3)
    p = broker.producer({"linger.ms": 1000})
    p.produce("t", b"a", None, 1)
    p.produce("t", value=b"b", partition=1)
    p.produce(topic="t", value=b"c", partition=1)
    p.produce("t", b"d", partition=1, timestamp=0, headers=None, key=None)
    p.produce("t", bytearray(b"e"), partition=1)
    p.produce("t", "f", partition=1)
    p.flush()
    assert [v for _, _, v in log_records(broker, "t", 1)] == [b"a", b"b", b"c", b"d", b"e", b"f"]
    p.produce("t")  # null value, sticky partition
    p.produce("t", None)
    p.produce("t", b"g")
    p.flush()
    stored = [(part, v) for part in range(3) for _, _, v in log_records(broker, "t", part) if v not in (b"a", b"b", b"c", b"d", b"e", b"f")]
    assert [v for _, v in stored] == [None, None, b"g"]
    assert len({part for part, _ in stored}) == 1


def test_produce_argument_errors_raise_and_buffer_nothing(broker) -> None:
    broker.create_topic("t", 1)
    p = broker.producer({"linger.ms": 1000})
    with pytest.raises(TypeError):
        p.produce()
    with pytest.raises(TypeError):
        p.produce("t", b"v", None, 0, None, 0, None, None, "one too many")
    with pytest.raises(TypeError):
        p.produce("t", b"v", nonsense=1)
    with pytest.raises(TypeError):
        p.produce(["t"], b"v")  # unhashable topic
    with pytest.raises(TypeError):
        p.produce("t", 12)  # value neither bytes-like nor str
    assert len(p) == 0
    p.produce("t", b"ok")
    assert len(p) == 1
    p.flush()
    assert [v for _, _, v in log_records(broker, "t", 0)] == [b"ok"]


def test_produce_signature_is_introspectable() -> None:
    import inspect

    from headwater.client.producer import Producer

    params = list(inspect.signature(Producer.produce).parameters)
    assert params == ["self", "topic", "value", "key", "partition", "on_delivery", "timestamp", "headers", "callback"]


def test_keyless_records_from_four_threads_are_each_stored_once_in_order(broker) -> None:
    """The C fast path under contention: small batches, so sends run while others wait."""
    broker.create_topic("t", 4)
    p = broker.producer({"linger.ms": 1000, "batch.num.messages": 37})
    n = 4000
    errors: list[BaseException] = []

    def work(t: int) -> None:
        try:
            for i in range(n):
                p.produce("t", b"%d-%d" % (t, i))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    p.flush()
    assert len(p) == 0
    stored = [v for part in range(4) for _, _, v in log_records(broker, "t", part)]
    assert sorted(stored) == sorted(b"%d-%d" % (t, i) for t in range(4) for i in range(n))
    for part in range(4):
        last: dict[bytes, int] = {}
        for _, _, v in log_records(broker, "t", part):
            t, i = v.split(b"-")
            assert last.get(t, -1) < int(i)
            last[t] = int(i)


# ----------------------------------------------------------------- thread safety


def test_one_producer_shared_by_four_threads_delivers_each_record_once(broker) -> None:
    broker.create_topic("t", 6)
    p = broker.producer({"linger.ms": 2, "batch.num.messages": 50})
    n = 5000
    delivered: list[tuple[int, int, bytes]] = []
    lock = threading.Lock()

    def on_delivery(err, msg) -> None:
        assert err is None
        with lock:
            delivered.append((msg.partition(), msg.offset(), msg.value()))

    errors: list[BaseException] = []

    def work(t: int) -> None:
        try:
            for i in range(n):
                p.produce("t", b"%d-%d" % (t, i), key=b"%d-%d" % (t, i % 17), on_delivery=on_delivery)
                if i % 500 == 0:
                    p.poll(0)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors
    p.flush()
    expected = {b"%d-%d" % (t, i) for t in range(4) for i in range(n)}
    stored = [v for part in range(6) for _, _, v in log_records(broker, "t", part)]
    assert len(stored) == 4 * n
    assert set(stored) == expected
    assert len(delivered) == 4 * n
    assert len({(part, off) for part, off, _ in delivered}) == 4 * n  # distinct offsets
    assert {v for _, _, v in delivered} == expected
    # Per thread and key, records were stored in produce order.
    for part in range(6):
        last: dict[bytes, int] = {}
        for _, k, v in log_records(broker, "t", part):
            i = int(v.split(b"-")[1])
            assert last.get(k, -1) < i
            last[k] = i


@contextlib.contextmanager
def _lane_broker(path: Any, partitions: int) -> Iterator[tuple[Any, Any]]:
    """A Broker with topic "t" (`partitions`) and "small" (max.message.bytes=100), and a
    linger.ms=0 producer: what each lane of the single-record comparisons below runs on."""
    import headwater

    with headwater.Broker(str(path), {"flush.policy": "none"}) as b:
        b.create_topic("t", partitions=partitions)
        b.create_topic("small", partitions=1, config={"max.message.bytes": 100})
        yield b, b.producer({"linger.ms": 0})


def test_send_one_fast_equals_send_one(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """ProducerCore._send_one_fast (C) is Producer._send_one for a plain record: same
    partitions (sticky moves included), offsets, sequences and appended bytes; anything it does
    not handle goes to _send_one, errors of the append come back as values."""
    import random

    from headwater.errors import MessageTooLargeError

    results = {}
    for lane in ("fast", "py"):
        with _lane_broker(tmp_path / lane, 4) as (b, p):
            p._rng = random.Random(7)
            p._topic_state("t").sticky = 1
            sent = []
            for i in range(40):
                value = None if i % 9 == 0 else b"v%d" % i
                part = -1 if i % 3 else i % 4
                if lane == "fast":
                    sent.append(p._send_one_fast("t", value, part))
                else:
                    sent.append(p._send_one("t", value, None, part, 0))
            if lane == "fast":
                pp, base, exc = p._send_one_fast("small", b"x" * 200, 0)
            else:
                pp, base, exc = p._send_one("small", b"x" * 200, None, 0, 0)
            assert (pp, base) == (0, -1) and isinstance(exc, MessageTooLargeError)
            logs = [b.get_log("t", i) for i in range(4)]
            seqs = [log.producer_state.last_entry(p.producer_id) for log in logs]
            results[lane] = (
                sent,
                [None if e is None else [m.last_seq for m in e.batch_metadata] for e in seqs],
                [[(r.offset, r.value) for r in log.read(0)] if log.log_end_offset else [] for log in logs],
            )
            assert b.get_log("small", 0).log_end_offset == 0
            p.close()
    assert results["fast"] == results["py"]
    assert len({s[0] for s in results["fast"][0]}) > 1  # the sticky partition moved on


def test_send_one_fast_hands_over(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import headwater

    with headwater.Broker(str(tmp_path / "d"), {"flush.policy": "none"}) as b:
        b.create_topic("t", partitions=2)
        p = b.producer({"linger.ms": 0})
        with pytest.raises(TypeError):
            p._send_one_fast("t", 12, 0)  # not bytes: _send_one raises as produce() does
        with pytest.raises(headwater.errors.UnknownTopicOrPartitionError):
            p._send_one_fast("t", b"v", 5)
        assert p._send_one_fast("t", bytearray(b"ba"), 1)[:2] == (1, 0)  # _send_one converts
        q = b.producer({"linger.ms": 0, "compression.type": "gzip"})
        assert q._send_one_fast("t", b"v", 0) is None  # compressing: produce() does it
        q.close()
        p.close()
        with pytest.raises(RuntimeError):
            p._send_one_fast("t", b"v", 0)


def test_one_record_sends_write_what_batches_write(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A buffer of one record is sent through the log's single-record append: the segment
    bytes, delivery reports, sequences and errors equal a producer whose records go through
    append(); each send holds one record (linger.ms=0)."""

    reports = {}
    data = {}
    for lane in ("one", "batch"):
        with _lane_broker(tmp_path / lane, 1) as (b, p):
            if lane == "batch":
                # The general path: the same call made through append().
                p._broker._append_one = lambda t, q, v, k, ts, pid, ep, seq, b=b: b._append(  # type: ignore[method-assign]
                    t, q, [v], None if k is None else [k], None, None if not ts else [ts], 0,
                    producer_id=pid, producer_epoch=ep, base_sequence=seq,
                )
            got = []

            def cb(err, msg, got=got):  # type: ignore[no-untyped-def]
                got.append((None if err is None else err.code(), msg.offset(), msg.key(), msg.value(), msg.timestamp()))

            p.produce("t", b"a", on_delivery=cb)
            p.produce("t", b"b", key=b"k", timestamp=1_700_000_000_000, on_delivery=cb)
            p.produce("t", None, key=b"tomb", on_delivery=cb)
            p.produce("small", b"x" * 200, on_delivery=cb)
            p.produce_batch("t", [b"single"], timestamp=1_700_000_000_001)
            p.flush()
            reports[lane] = got
            with b.get_log("t", 0).read(0) as r:
                data[lane] = [(rec.offset, rec.key, rec.value) for rec in r] + [r.nbytes]
            assert b.get_log("t", 0).producer_state.last_entry(p.producer_id).last_seq == 3
            p.close()
    assert data["one"] == data["batch"]
    assert [r[:4] for r in reports["one"]] == [r[:4] for r in reports["batch"]]
    assert reports["one"][3][0] == 10  # MESSAGE_TOO_LARGE in the delivery report
    assert reports["one"][1][4] == (1, 1_700_000_000_000)
