"""asyncio twins shaped like aiokafka's AIOKafkaProducer / AIOKafkaConsumer.

    producer = AIOProducer(broker, linger_ms=5)
    await producer.start()
    meta = await producer.send_and_wait("orders", b"v", key=b"k")

    consumer = AIOConsumer("orders", broker=broker, group_id="g", auto_offset_reset="earliest")
    await consumer.start()
    async for msg in consumer: ...

Transactions (aiokafka's surface over the sync Producer's, see client/producer.py):

    producer = AIOProducer(broker, transactional_id="etl-0")
    await producer.start()                   # init_transactions(): fences older instances
    async with producer.transaction():       # commit on success, abort on an exception
        await producer.send("out", b"v")
        await producer.send_offsets_to_transaction({TopicPartition("in", 0): 42}, "group")

Both run on the event loop itself: appends are in-process calls (no thread is parked per
request); a consumer with nothing to read awaits a future that the broker completes on every
append: directly when the append runs on the consumer's own loop, through
loop.call_soon_threadsafe from any other thread, so an append wakes it within one loop
iteration. With `flush.policy=batch` an append includes its fdatasync, which blocks the loop
for that time (about 0.3-2 ms here); use `interval` for loops that must never block.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

from headwater._native._native import Wakeup, consumer_record, record_metadata
from headwater.client.message import (
    OFFSET_BEGINNING,
    OFFSET_END,
    KafkaError,
    Message,
    TopicPartition,
)
from headwater.client.producer import delivery_error

if TYPE_CHECKING:
    from headwater.client.broker import Broker


@dataclass(frozen=True)
class RecordMetadata:
    """aiokafka's send() result."""

    topic: str
    partition: int
    offset: int
    timestamp: int

    # One is made per send: the generated frozen __init__ sets each field through
    # object.__setattr__; storing into the instance dict costs half (dataclass keeps an
    # __init__ defined here, and frozen still refuses assignment afterwards).
    def __init__(self, topic: str, partition: int, offset: int, timestamp: int) -> None:
        d = self.__dict__
        d["topic"] = topic
        d["partition"] = partition
        d["offset"] = offset
        d["timestamp"] = timestamp

    @property
    def topic_partition(self) -> TopicPartition:
        return TopicPartition(self.topic, self.partition)


class OffsetAndTimestamp(NamedTuple):
    """aiokafka's offsets_for_times() value: the first record at or after a time."""

    offset: int
    timestamp: int


@dataclass(frozen=True)
class ConsumerRecord:
    """aiokafka's ConsumerRecord."""

    topic: str
    partition: int
    offset: int
    timestamp: int
    timestamp_type: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes | None], ...]

    # One is made per record received: see RecordMetadata.__init__.
    def __init__(
        self,
        topic: str,
        partition: int,
        offset: int,
        timestamp: int,
        timestamp_type: int,
        key: bytes | None,
        value: bytes | None,
        headers: tuple[tuple[str, bytes | None], ...],
    ) -> None:
        d = self.__dict__
        d["topic"] = topic
        d["partition"] = partition
        d["offset"] = offset
        d["timestamp"] = timestamp
        d["timestamp_type"] = timestamp_type
        d["key"] = key
        d["value"] = value
        d["headers"] = headers


def _kafka_config(kwargs: Mapping[str, Any], names: Mapping[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in kwargs.items():
        if name in names:
            out[names[name]] = value
        elif value is not None:
            raise TypeError(f"unexpected argument {name!r}")
    return out


_PRODUCER_NAMES = {
    "client_id": "client.id",
    "linger_ms": "linger.ms",
    "max_batch_size": "batch.size",
    "compression_type": "compression.type",
    "acks": "acks",
    "enable_idempotence": "enable.idempotence",
    "transactional_id": "transactional.id",
    "transaction_timeout_ms": "transaction.timeout.ms",
    "max_request_size": "message.max.bytes",
    "bootstrap_servers": "bootstrap.servers",
}


def _send_error(exc: BaseException) -> Exception:
    """The exception a send() future fails with when its append raised `exc`."""
    return _delivery_error(delivery_error(exc))


def _delivery_error(err: KafkaError) -> Exception:
    """The exception a send() future fails with: the delivery report's error, code kept."""
    from headwater.errors import KafkaApiError

    return KafkaApiError(err)


class BatchBuilder:
    """aiokafka's create_batch() result: append records, then send_batch() them at once."""

    def __init__(self) -> None:
        self.values: list[Any] = []
        self.keys: list[Any] = []

    def append(self, *, key: Any = None, value: Any = None, timestamp: int | None = None, headers: Any = None) -> Any:
        self.values.append(value)
        self.keys.append(key)
        return True

    def record_count(self) -> int:
        return len(self.values)


class AIOProducer:
    """Embedded asyncio producer (aiokafka's AIOKafkaProducer surface)."""

    def __init__(self, broker: Broker, **kwargs: Any) -> None:
        self._broker = broker
        self._config = _kafka_config(kwargs, _PRODUCER_NAMES)
        self._producer: Any = None
        self._flusher: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None  # the loop start() ran on

    async def start(self) -> None:
        """Create the producer; with ``transactional_id``, also init_transactions() (which
        fences older instances with the same id, as aiokafka's start() does)."""
        producer = self._broker.producer(self._config)
        if self._config.get("transactional.id") is not None:
            try:
                producer.init_transactions()
            except BaseException:
                producer.close()
                raise
        self._loop = asyncio.get_running_loop()
        self._producer = producer

    async def stop(self) -> None:
        """Flush and close; an open transaction is aborted (see Producer.close)."""
        if self._flusher is not None:
            self._flusher.cancel()
            self._flusher = None
        if self._producer is not None:
            self._producer.close()
            self._producer = None

    async def __aenter__(self) -> AIOProducer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def _require(self) -> Any:
        if self._producer is None:
            raise RuntimeError("producer is not started")
        return self._producer

    async def send(self, topic: str, value: Any = None, key: Any = None, partition: int | None = None, timestamp_ms: int | None = None, headers: Any = None) -> asyncio.Future[RecordMetadata]:
        """Buffer one record; the returned future resolves with its RecordMetadata."""
        producer = self._producer
        if producer is None:
            producer = self._require()  # raises
        plain = key is None and not timestamp_ms and not headers
        if plain:
            # linger.ms=0 sends every record at once: the plainest one is appended now and
            # the future completed with what its delivery report would have said, in C
            # (ProducerCore._send_future); None: it must take produce().
            done = producer._send_future(self._loop, topic, value, -1 if partition is None else partition, RecordMetadata, _send_error)
            if done is not None:
                return done  # type: ignore[no-any-return]
        loop = self._loop
        fut: asyncio.Future[RecordMetadata] = loop.create_future()  # type: ignore[union-attr]
        if producer._linger_s <= 0 and not headers and not plain:
            # The same for a record with a key or a timestamp (Producer._send_one).
            sent = producer._send_one(topic, value, key, -1 if partition is None else partition, timestamp_ms or 0)
            if sent is not None:
                p, base, exc = sent
                if exc is not None:
                    fut.set_exception(_send_error(exc))
                else:
                    fut.set_result(record_metadata(RecordMetadata, topic, p, base, int(timestamp_ms) if timestamp_ms else -1))
                if producer._reports:
                    producer.poll(0)
                return fut

        def delivered(err: KafkaError | None, msg: Message) -> None:
            if fut.done():
                return
            if err is not None:
                fut.set_exception(_delivery_error(err))
            else:
                fut.set_result(RecordMetadata(msg.topic() or topic, msg.partition(), msg.offset(), msg.timestamp()[1]))

        producer.produce(topic, value, key, -1 if partition is None else partition, delivered, timestamp_ms or 0, headers)
        producer.poll(0)
        if not fut.done() and self._flusher is None:
            # Resolve after linger.ms on the loop: send what lingered and serve callbacks.
            linger = float(producer.config["linger.ms"]) / 1000.0
            self._flusher = loop.call_later(linger, self._flush_due)
        return fut

    def _flush_due(self) -> None:
        self._flusher = None
        if self._producer is None:
            return
        self._producer.flush()

    async def send_and_wait(self, topic: str, value: Any = None, key: Any = None, partition: int | None = None, timestamp_ms: int | None = None, headers: Any = None) -> RecordMetadata:
        fut = await self.send(topic, value, key, partition, timestamp_ms, headers)
        return await fut

    def create_batch(self) -> BatchBuilder:
        return BatchBuilder()

    async def send_batch(self, batch: BatchBuilder, topic: str, *, partition: int) -> RecordMetadata:
        """Append a whole batch to one partition (one RecordBatch)."""
        producer = self._require()
        keys = batch.keys if any(k is not None for k in batch.keys) else None
        log = self._broker.get_log(topic, partition)
        before = log.log_end_offset
        producer.produce_batch(topic, batch.values, keys, partition)
        return RecordMetadata(topic, partition, before, -1)

    async def flush(self) -> None:
        self._require().flush()

    async def partitions_for(self, topic: str) -> set[int]:
        return set(range(self._broker._partition_count(topic, create=True)))

    # ------------------------------------------------------------------ transactions
    # aiokafka's transactional surface over Producer's (client/producer.py); errors are the
    # Producer's KafkaException (KafkaError with fatal()/txn_requires_abort()).

    def begin_transaction(self) -> None:
        """Start a transaction; send() is refused outside one."""
        self._require().begin_transaction()

    async def commit_transaction(self) -> None:
        """Send what is buffered (resolving the send() futures), then commit."""
        self._cancel_flusher()
        self._require().commit_transaction()

    async def abort_transaction(self) -> None:
        """Drop unsent records (their futures fail with _PURGE_QUEUE), then abort."""
        self._cancel_flusher()
        self._require().abort_transaction()

    async def send_offsets_to_transaction(self, offsets: Mapping[Any, Any], group_id: str) -> None:
        """Commit consumer offsets in the transaction (aiokafka's form).

        Args:
            offsets: {TopicPartition or (topic, partition): offset or OffsetAndMetadata}, the
                next offsets to consume.
            group_id: the consumer group (generation -1: no member check, as aiokafka's
                TxnOffsetCommit v0-2).
        """
        tps = []
        for tp, value in offsets.items():
            topic, partition = (tp.topic, tp.partition) if hasattr(tp, "topic") else tp
            offset = getattr(value, "offset", value)
            metadata = getattr(value, "metadata", None)
            tps.append(TopicPartition(topic, int(partition), int(offset), metadata or None))
        self._require().send_offsets_to_transaction(tps, group_id)

    def transaction(self) -> TransactionContext:
        """``async with producer.transaction():`` begin; commit on success, abort on error."""
        return TransactionContext(self)

    def _cancel_flusher(self) -> None:
        if self._flusher is not None:
            self._flusher.cancel()
            self._flusher = None


class TransactionContext:
    """aiokafka's TransactionContext: begins on enter; commits when the block ends normally,
    aborts (and lets the exception propagate) when it raises."""

    def __init__(self, producer: AIOProducer) -> None:
        self._producer = producer

    async def __aenter__(self) -> TransactionContext:
        self._producer.begin_transaction()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: object) -> None:
        if exc_type is None:
            await self._producer.commit_transaction()
            return
        err = exc.args[0] if exc is not None and exc.args else None
        if getattr(err, "fatal", lambda: False)():
            return  # a fenced producer cannot abort: the exception says so
        await self._producer.abort_transaction()


_CONSUMER_NAMES = {
    "group_id": "group.id",
    "client_id": "client.id",
    "group_instance_id": "group.instance.id",
    "auto_offset_reset": "auto.offset.reset",
    "enable_auto_commit": "enable.auto.commit",
    "auto_commit_interval_ms": "auto.commit.interval.ms",
    "session_timeout_ms": "session.timeout.ms",
    "heartbeat_interval_ms": "heartbeat.interval.ms",
    "max_poll_interval_ms": "max.poll.interval.ms",
    "isolation_level": "isolation.level",
    "max_partition_fetch_bytes": "max.partition.fetch.bytes",
    "bootstrap_servers": "bootstrap.servers",
}


def _strategy_name(strategy: Any) -> str:
    name = getattr(strategy, "name", strategy)
    return str(name)


class AIOConsumer:
    """Embedded asyncio consumer (aiokafka's AIOKafkaConsumer surface)."""

    def __init__(self, *topics: str, broker: Broker, partition_assignment_strategy: Any = ("roundrobin",), **kwargs: Any) -> None:
        self._broker = broker
        self._topics = list(topics)
        cfg = _kafka_config(kwargs, _CONSUMER_NAMES)
        cfg["partition.assignment.strategy"] = ",".join(_strategy_name(s) for s in partition_assignment_strategy)
        self._config = cfg
        self._consumer: Any = None
        self._event: Wakeup | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._event = Wakeup()
        self._consumer = self._broker.consumer(self._config)
        self._broker._add_async_waiter(self._loop, self._event)
        if self._topics:
            self._consumer.subscribe(self._topics)

    async def stop(self) -> None:
        if self._consumer is not None:
            self._consumer.close()
            self._consumer = None
            self._wake()  # a waiting getone() raises now, not at the next append
        if self._loop is not None and self._event is not None:
            self._broker._remove_async_waiter(self._loop, self._event)

    async def __aenter__(self) -> AIOConsumer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def _require(self) -> Any:
        if self._consumer is None:
            raise RuntimeError("consumer is not started")
        return self._consumer

    def subscribe(self, topics: list[str] | None = None, pattern: str | None = None) -> None:
        c = self._require()
        c.subscribe(list(topics or []) + ([pattern] if pattern else []))
        self._wake()

    def assign(self, partitions: list[TopicPartition]) -> None:
        self._require().assign(partitions)
        self._wake()

    def unsubscribe(self) -> None:
        """Leave the subscription (and the group) and drop every assigned partition."""
        c = self._require()
        c.unsubscribe()
        c.unassign()
        self._wake()

    async def topics(self) -> set[str]:
        """Every topic's name, internal ones left out (aiokafka's)."""
        return set(self._broker.list_topics())

    def partitions_for_topic(self, topic: str) -> set[int] | None:
        """The topic's partition ids, or None if there is no such topic."""
        count = self._broker._partition_count_or_none(topic)
        return None if count is None else set(range(count))

    def assignment(self) -> set[TopicPartition]:
        # aiokafka's TopicPartition is (topic, partition): no offset to compare by.
        return {TopicPartition(tp.topic, tp.partition) for tp in self._require().assignment()}

    async def _fetch(self, max_records: int, timeout_ms: int | None) -> list[Message]:
        """Up to max_records messages; waits up to timeout_ms (None: until one arrives)."""
        c = self._require()
        loop = self._loop
        assert loop is not None
        deadline = None if timeout_ms is None else loop.time() + timeout_ms / 1000.0
        while True:
            msgs = c._take_ready(max_records)
            if msgs:
                if c._eof:  # end-of-partition events are the only messages with an error
                    msgs = [m for m in msgs if m.error() is None]
                if msgs:
                    return msgs
            remaining = 0.05 if deadline is None else deadline - loop.time()
            if remaining <= 0:
                return []
            await self._wait(c, remaining, deadline is not None)

    async def _wait(self, c: Any, remaining: float, timed: bool) -> None:
        """Until the next append (or this consumer's own assign, seek, subscribe or stop), or
        `remaining` seconds when `timed`; at most 50 ms while a group protocol or auto-commit
        needs driving. Called right after a look found nothing."""
        fut, timer = self._arm(c, remaining, timed)
        try:
            await fut
        finally:
            self._disarm(timer)

    def _arm(self, c: Any, remaining: float, timed: bool) -> tuple[asyncio.Future[None], Any]:
        """_wait's future and timer (None without one). Armed after looking, before yielding:
        an append on this loop cannot run in between, and one from another thread sets the
        event through call_soon_threadsafe, which runs after the await starts. Without a
        group protocol or auto-commit to drive, or a deadline, only an append or the calls
        above change what a look finds: no timer to start and cancel per record."""
        wakeup = self._event
        loop = self._loop
        assert wakeup is not None and loop is not None
        fut = wakeup.arm(loop)
        timer = loop.call_later(min(remaining, 0.05), wakeup.set) if timed or c._subscribed or c._auto_commit else None
        return fut, timer

    def _disarm(self, timer: Any) -> None:
        if timer is not None:
            timer.cancel()
        self._event.disarm()  # type: ignore[union-attr]

    def _wake(self) -> None:
        """Let a waiting getone()/getmany() look again (what it waits for changed)."""
        if self._event is not None:
            self._event.set()

    async def getone(self, *partitions: TopicPartition) -> ConsumerRecord:
        # _fetch(1, None) and its _wait without coroutines of their own: a tailing reader
        # calls this once per record.
        c = self._require()
        while True:
            msgs = c._take_ready(1)
            if msgs:
                if msgs[0].error() is None:
                    return consumer_record(ConsumerRecord, msgs[0])
                continue  # an end-of-partition event (the only messages with an error)
            fut, timer = self._arm(c, 0.05, False)
            try:
                await fut
            finally:
                self._disarm(timer)

    async def getmany(self, *partitions: TopicPartition, timeout_ms: int = 0, max_records: int | None = None) -> dict[TopicPartition, list[ConsumerRecord]]:
        msgs = await self._fetch(max_records or 10000, timeout_ms)
        out: dict[TopicPartition, list[ConsumerRecord]] = {}
        for m in msgs:
            out.setdefault(TopicPartition(m.topic() or "", m.partition()), []).append(_record(m))
        return out

    def __aiter__(self) -> AsyncIterator[ConsumerRecord]:
        return self

    async def __anext__(self) -> ConsumerRecord:
        if self._consumer is None:
            raise StopAsyncIteration
        return await self.getone()

    async def commit(self, offsets: Mapping[TopicPartition, int] | None = None) -> None:
        c = self._require()
        if offsets is None:
            c.commit(asynchronous=False)
        else:
            c.commit(offsets=[TopicPartition(tp.topic, tp.partition, off) for tp, off in offsets.items()], asynchronous=False)

    async def committed(self, partition: TopicPartition) -> int | None:
        got = self._require().committed([partition])[0].offset
        return got if got >= 0 else None

    async def position(self, partition: TopicPartition) -> int:
        """The offset of the next record getone()/getmany() returns for `partition`: its
        committed offset or auto_offset_reset resolved if none was returned yet."""
        return self._require()._position_resolved(partition)  # type: ignore[no-any-return]

    def seek(self, partition: TopicPartition, offset: int) -> None:
        if not isinstance(offset, int) or offset < 0:
            raise ValueError("Offset must be a positive integer")
        self._require().seek(TopicPartition(partition.topic, partition.partition, offset))
        self._wake()

    async def seek_to_beginning(self, *partitions: TopicPartition) -> bool:
        """Seek each partition (default: every assigned one) to its log start offset."""
        return self._seek_to(partitions, OFFSET_BEGINNING)

    async def seek_to_end(self, *partitions: TopicPartition) -> bool:
        """Seek each partition (default: every assigned one) to its end (the last stable
        offset under read_committed)."""
        return self._seek_to(partitions, OFFSET_END)

    def _seek_to(self, partitions: tuple[TopicPartition, ...], offset: int) -> bool:
        c = self._require()
        for tp in partitions or tuple(self.assignment()):
            c.seek(TopicPartition(tp.topic, tp.partition, offset))
        self._wake()
        return True

    async def seek_to_committed(self, *partitions: TopicPartition) -> dict[TopicPartition, int | None]:
        """Seek each partition (default: every assigned one) to its committed offset; returns
        them (None where nothing is committed: that partition stays where it is)."""
        out: dict[TopicPartition, int | None] = {}
        for tp in partitions or tuple(self.assignment()):
            out[tp] = committed = await self.committed(tp)
            if committed is not None:
                self.seek(tp, committed)
        return out

    def pause(self, *partitions: TopicPartition) -> None:
        self._require().pause(list(partitions))

    def resume(self, *partitions: TopicPartition) -> None:
        self._require().resume(list(partitions))
        self._wake()

    def paused(self) -> set[TopicPartition]:
        c = self._require()
        return {TopicPartition(t, p) for t, p in c._paused if (t, p) in c._positions}

    def subscription(self) -> frozenset[str]:
        """The topics subscribed by name (patterns are not listed), or after assign() the
        topics of the assignment, as aiokafka's."""
        c = self._require()
        if c._subscribed:
            return frozenset(c._subscription)
        return frozenset(t for t, _ in c._positions)

    def highwater(self, partition: TopicPartition) -> int:
        """The partition's high watermark (the offset after its last record)."""
        return int(self._require().get_watermark_offsets(partition)[1])

    def last_stable_offset(self, partition: TopicPartition) -> int:
        self._require()
        return int(self._broker.get_log(partition.topic, partition.partition).last_stable_offset)

    async def beginning_offsets(self, partitions: list[TopicPartition]) -> dict[TopicPartition, int]:
        c = self._require()
        return {tp: int(c.get_watermark_offsets(tp)[0]) for tp in partitions}

    async def end_offsets(self, partitions: list[TopicPartition]) -> dict[TopicPartition, int]:
        """The offset a consumer reading to the end stops at: the high watermark, or the last
        stable offset under read_committed (aiokafka's, by its isolation_level)."""
        ends = self._require()._end_offsets(partitions)
        return {tp: ends[(tp.topic, tp.partition)] for tp in partitions}

    async def offsets_for_times(self, timestamps: Mapping[TopicPartition, int]) -> dict[TopicPartition, OffsetAndTimestamp | None]:
        """Per partition, the first record whose timestamp is at least the one given, or None."""
        self._require()
        out: dict[TopicPartition, OffsetAndTimestamp | None] = {}
        for tp, ts in timestamps.items():
            if ts < 0:
                raise ValueError(f"The target time for partition {tp} is {ts}. The target time cannot be negative.")
            found = self._broker.get_log(tp.topic, tp.partition).offset_for_timestamp(ts)
            out[tp] = None if found is None else OffsetAndTimestamp(found[0], found[1])
        return out


def _record(m: Message) -> ConsumerRecord:
    return consumer_record(ConsumerRecord, m)  # (C: aiokafka's fields of a Message)
