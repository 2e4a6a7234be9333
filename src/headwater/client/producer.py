"""Producer shaped like confluent_kafka.Producer, appending straight into the broker's logs.

    p = broker.producer({"linger.ms": 5})
    p.produce("orders", b"value", key=b"k", on_delivery=callback)
    p.poll(0)        # serve delivery callbacks
    p.flush()        # send everything buffered, serve callbacks

Records are buffered per partition and sent (appended to the partition log, one RecordBatch
per send) when a partition's buffer reaches `batch.num.messages` or `batch.size` bytes, when
`linger.ms` has passed (checked by produce(), poll(), flush() and the broker's timer thread),
or on flush(). With `enable.idempotence` (the default) every batch carries the producer id,
epoch and a per-partition sequence number, validated by the partition's producer state, so a
retried batch is never appended twice. `acks` is accepted for compatibility: durability is
the topic's `flush.policy` (on one node acks=all equals acks=1).

`produce_batch(topic, values, keys=None, partition=-1)` appends lists or numpy arrays directly,
one batch per partition, without per-record Python work when no keys are given.

Transactions (kafka-spec.md d; confluent-kafka's API and librdkafka's errors):

    p = broker.producer({"transactional.id": "etl-0"})
    p.init_transactions()           # InitProducerId: fences older instances of "etl-0"
    p.begin_transaction()
    p.produce("out", b"v")
    p.send_offsets_to_transaction(consumer.position(...), consumer.consumer_group_metadata())
    p.commit_transaction()          # or abort_transaction()

`transactional.id` implies idempotence; `transaction.timeout.ms` (default 60000) is how long
the coordinator lets a transaction stay open before aborting it and fencing this producer.
The coordinator calls run in-process through `Broker._txn_call` (which persists the
`__transaction_state` records and writes the markers): AddPartitionsToTxn before the first
batch of each partition, batches with the transactional attribute through the broker's
Produce path (`Broker._append_batch`: the partition's producer state checks epoch and
sequence), EndTxn on commit/abort. Producer states follow librdkafka: Init -> Ready ->
InTransaction -> (BeginCommit | BeginAbort) -> Ready, plus AbortableError (a record of the
transaction failed: only abort_transaction() is allowed, and it bumps the epoch, KIP-360) and
FatalError (fenced: INVALID_PRODUCER_EPOCH / PRODUCER_FENCED become _FENCED; every later call
raises it). Errors are `KafkaException(TxnKafkaError)` with fatal(), retriable() and
txn_requires_abort(); a call in the wrong state raises _STATE and changes nothing. close()
aborts an open transaction; a process that dies leaves it to the coordinator (timeout, or the
next init_transactions() of the same id aborts it).

Thread-safety: every method takes the producer's lock; one producer may be shared by threads.
Delivery callbacks run in the thread calling poll()/flush(), never under the lock. produce()
racing commit_transaction() from another thread lands in this transaction or fails _STATE.
"""

from __future__ import annotations

import logging
import random
import time
import zlib
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from headwater import compression as _compression
from headwater._native._native import (
    FastRLock,
    PartitionBuffer,
    ProducerCore,
    TopicBuffers,
    payload_size,
)
from headwater.client.admin import ClusterMetadata, cluster_metadata
from headwater.client.message import KafkaError, KafkaException, Message
from headwater.config import config_flag
from headwater.coordinator.group import CommitOffset
from headwater.coordinator.group import TopicPartition as GroupTP
from headwater.coordinator.txn import (
    ConcurrentTransactionsError,
    InitPending,
    InitResult,
    InvalidProducerIdMappingError,
    InvalidRequestError,
    InvalidTxnStateError,
    ProducerFencedError,
)
from headwater.errors import (
    ConfigError,
    InvalidProducerEpochError,
    KafkaApiError,
    MessageTooLargeError,
    StorageError,
    UnknownPartitionError,
)
from headwater.partitioner import Partitioner, fnv1a, murmur2_unsigned

if TYPE_CHECKING:
    from headwater.client.broker import Broker

DeliveryCallback = Callable[[Any, Any], None]

log = logging.getLogger("headwater.producer")

PRODUCER_DEFAULTS: dict[str, Any] = {
    "client.id": "headwater",
    "linger.ms": 5,
    "batch.size": 1000000,
    "batch.num.messages": 10000,
    "message.max.bytes": 1000000,
    "compression.type": "none",
    "acks": "all",
    "partitioner": "murmur2_random",
    "sticky.partitioning.linger.ms": 10,
    "enable.idempotence": True,
    "retries": 2147483647,
    "max.in.flight.requests.per.connection": 5,
    "transactional.id": None,
    "transaction.timeout.ms": 60000,
    "queue.buffering.max.messages": 100000,
    "delivery.timeout.ms": 300000,
}
_ALIASES = {"linger.ms": ("queue.buffering.max.ms",), "compression.type": ("compression.codec",)}


def _parse_config(config: Mapping[str, Any] | None, defaults: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(defaults)
    for name, value in (config or {}).items():
        if name in out:
            out[name] = value
            continue
        for canonical, aliases in _ALIASES.items():
            if name in aliases:
                out[canonical] = value
                break
        else:
            if name in ("bootstrap.servers", "security.protocol", "error_cb", "logger", "on_delivery", "debug", "statistics.interval.ms", "stats_cb", "request.timeout.ms", "socket.timeout.ms", "api.version.request"):
                out[name] = value  # accepted for drop-in compatibility, no effect embedded
                continue
            raise ConfigError(f"unknown producer config {name!r}")
    return out


# ---------------------------------------------------------------------- transactional errors

# librdkafka's local error codes (rdkafka.h RD_KAFKA_RESP_ERR__*) used by the transactional API.
ERR__FENCED = -144
ERR__NOT_CONFIGURED = -145
ERR__FATAL = -150
ERR__PURGE_QUEUE = -152
ERR__NOT_IMPLEMENTED = -170
ERR__STATE = -172
ERR__TIMED_OUT = -185


# Producer-side transaction states (librdkafka's names; the *NotAcked and WaitPID states of
# a networked client collapse into the calls that would wait for them).
_TXN_INIT = "Init"
_TXN_READY = "Ready"
_TXN_IN_TRANSACTION = "InTransaction"
_TXN_BEGIN_COMMIT = "BeginCommit"
_TXN_BEGIN_ABORT = "BeginAbort"
_TXN_ABORTABLE = "AbortableError"
_TXN_FATAL = "FatalError"


_ATTR_TRANSACTIONAL = 0x10  # RecordBatch attributes bit 4
_RETRY_BACKOFF_S = 0.01  # librdkafka retries CONCURRENT_TRANSACTIONS after ~20 ms
# Errors the transaction coordinator itself answers (as opposed to storage trouble).
_COORDINATOR_ERRORS = (
    ConcurrentTransactionsError,
    InvalidProducerIdMappingError,
    InvalidRequestError,
    InvalidTxnStateError,
    ProducerFencedError,
)
# librdkafka's fatal transactional errors: fenced epochs (normalised to _FENCED), a producer
# id the coordinator does not map to the transactional.id, transaction-state mismatches.
_FENCED_CODES = (InvalidProducerEpochError.code, ProducerFencedError.code)
_FATAL_CODES = (48, 49, 50, 53)


class TxnKafkaError(KafkaError):
    """confluent_kafka.KafkaError with the transactional flags: fatal() (the producer is
    unusable: close it and make a new one), txn_requires_abort() (call abort_transaction(),
    then start over), retriable() (call the same method again)."""

    __slots__ = ("_fatal", "_txn_requires_abort")

    def __init__(self, code: int, message: str = "", *, retriable: bool = False, fatal: bool = False, txn_requires_abort: bool = False) -> None:
        super().__init__(code, message, retriable)
        self._fatal = fatal
        self._txn_requires_abort = txn_requires_abort

    def fatal(self) -> bool:
        return self._fatal

    def txn_requires_abort(self) -> bool:
        return self._txn_requires_abort

    def __repr__(self) -> str:
        flags = "".join(f", {f}=True" for f in ("fatal", "txn_requires_abort", "retriable") if getattr(self, f)())
        return f"KafkaError(code={self.name()}, {self._str!r}{flags})"


def _txn_error_from(exc: KafkaApiError, *, fatal: bool | None = None) -> TxnKafkaError:
    """The error librdkafka reports for `exc` inside a transaction (see _FATAL_CODES)."""
    code = int(getattr(exc, "code", -1))
    if code in _FENCED_CODES:
        return TxnKafkaError(ERR__FENCED, f"Producer fenced by newer instance: {exc}", fatal=True)
    retriable = bool(getattr(exc, "retriable", False))
    is_fatal = code in _FATAL_CODES if fatal is None else fatal
    return TxnKafkaError(code, str(exc), retriable=retriable and not is_fatal, fatal=is_fatal, txn_requires_abort=not is_fatal)


def _group_fields(group_metadata: Any) -> tuple[str, int, str, str | None]:
    """(group id, generation id, member id, group instance id) from a consumer's
    consumer_group_metadata() or a bare group id."""
    if isinstance(group_metadata, str):
        return group_metadata, -1, "", None
    group_id = getattr(group_metadata, "group_id", None)
    if not isinstance(group_id, str) or not group_id:
        raise KafkaException(KafkaError(-186, "group_metadata must come from consumer_group_metadata() (no group id)"))
    return (
        group_id,
        int(getattr(group_metadata, "generation_id", -1)),
        str(getattr(group_metadata, "member_id", "") or ""),
        getattr(group_metadata, "group_instance_id", None),
    )


def _value_list(values: Any) -> Any:
    """produce_batch()'s value forms as a list of bytes-like values for build_batch."""
    if isinstance(values, tuple) and len(values) == 2:
        data, offsets = values
        offs = memoryview(offsets).cast("B").cast("q")
        mv = memoryview(data).cast("B")
        return [mv[offs[i] : offs[i + 1]] for i in range(len(offs) - 1)]
    if hasattr(values, "dtype"):
        width = values.dtype.itemsize
        mv = memoryview(values).cast("B")
        return [mv[i * width : (i + 1) * width] for i in range(len(values))]
    return values


def _now_ms() -> int:
    return int(time.time() * 1000)


# The per-partition buffers and per-topic state are C types so produce()'s common case runs
# without a Python frame (see _native.ProducerCore).
_PartitionBuffer = PartitionBuffer
_TopicState = TopicBuffers


class Producer(ProducerCore):
    """Embedded producer; create with broker.producer(config).

    produce() is ProducerCore.produce (C) for the common record; the rest is here.
    """

    def __init__(self, broker: Broker, config: Mapping[str, Any] | None = None) -> None:
        cfg = _parse_config(config, PRODUCER_DEFAULTS)
        self.config = cfg
        self._broker = broker
        self._lock = FastRLock()
        self._topics: dict[str, _TopicState] = {}
        # Every topic's state. produce()'s C fast path looks topics up in _topics; a
        # transactional producer outside a transaction swaps in an empty dict there, so every
        # produce() falls through to _produce_general, which refuses it (see _set_txn_state).
        self._all_topics = self._topics
        self._queued = 0
        self._reports: deque[tuple[DeliveryCallback, KafkaError | None, Message]] = deque()
        self._closed = False
        self._default_cb: DeliveryCallback | None = (config or {}).get("on_delivery")
        self._linger_s = float(cfg["linger.ms"]) / 1000.0
        self._batch_messages = int(cfg["batch.num.messages"])
        self._batch_bytes = int(cfg["batch.size"])
        self._max_message = int(cfg["message.max.bytes"])
        self._codec = _compression.codec_id(None if cfg["compression.type"] in ("none", None) else cfg["compression.type"])
        name = str(cfg["partitioner"])
        self._partitioner = Partitioner(name, int(cfg["sticky.partitioning.linger.ms"]))
        self._null_sticky = name in ("murmur2_random", "consistent_random", "fnv1a_random", "random") and int(cfg["sticky.partitioning.linger.ms"]) > 0
        self._hash_cache: dict[bytes, int] = {}
        self._hash = _key_hash(name)
        self._rng = random.Random()
        txn_id = cfg.get("transactional.id")
        if txn_id is not None:
            if not isinstance(txn_id, str) or not txn_id:
                raise ConfigError("transactional.id must be a non-empty string")
            if (config or {}).get("enable.idempotence") in (False, "false"):
                raise ConfigError("transactional.id requires enable.idempotence=true")
        self._txn_id: str | None = txn_id
        self._txn_timeout_ms = int(cfg["transaction.timeout.ms"])
        if self._txn_timeout_ms <= 0:
            raise ConfigError(f"transaction.timeout.ms must be > 0, got {self._txn_timeout_ms}")
        self._txn_state = _TXN_INIT
        self._txn_error: TxnKafkaError | None = None
        self._txn_partitions: set[tuple[str, int]] = set()  # added to the coordinator
        self._txn_bump_epoch = False
        self._idempotent = config_flag("enable.idempotence", cfg["enable.idempotence"]) or txn_id is not None
        self.producer_id = -1
        self.producer_epoch = -1
        if txn_id is not None:
            self._set_txn_state(_TXN_INIT)
        elif self._idempotent:
            self.producer_id, self.producer_epoch = broker._init_producer_id()
        self._oldest_ms = 0.0
        broker._register_producer(self)

    # ------------------------------------------------------------------ produce

    def _produce_general(
        self,
        topic: str,
        value: Any = None,
        key: Any = None,
        partition: int = -1,
        on_delivery: DeliveryCallback | None = None,
        timestamp: int = 0,
        headers: Any = None,
        callback: DeliveryCallback | None = None,
    ) -> None:
        """Buffer one record for `topic`; see the module docstring for when it is sent.

        Raises:
            UnknownTopicOrPartitionError: unknown topic (auto-creation off) or partition.
            MessageTooLargeError: the value (+ key) exceeds message.max.bytes.
            TypeError: value/key not bytes-like or str.
        """
        # The hot path of the embedded producer: keep it to attribute reads and list appends.
        if type(value) is not bytes and value is not None:
            value = _to_bytes(value, "value")
        size = len(value) if value is not None else 0
        if key is not None:
            if type(key) is not bytes:
                key = _to_bytes(key, "key")
            size += len(key)
        if size > self._max_message:
            raise MessageTooLargeError(f"message of {size} bytes exceeds message.max.bytes={self._max_message}")
        if headers:
            headers = _headers(headers)
        if timestamp:
            timestamp = int(timestamp)
        with self._lock:
            if self._closed:
                raise RuntimeError("producer is closed")
            if self._txn_id is not None and self._txn_state is not _TXN_IN_TRANSACTION:
                raise KafkaException(self._txn_produce_error())
            state = self._topics.get(topic)
            if state is None:
                state = self._topic_state(topic)
            if partition < 0:
                partition = state.sticky if key is None and state.sticky >= 0 else self._choose(topic, key, state)
            elif partition >= state.partitions:
                state = self._refresh_topic_locked(state, partition)
            buf = state.buffers[partition]
            values = buf.values
            i = len(values)
            values.append(value)
            if i == 0:
                buf.first_ms = time.monotonic()
            if key is not None:
                if buf.keys is None:
                    buf.keys = [None] * i
                buf.keys.append(key)
            elif buf.keys is not None:
                buf.keys.append(None)
            if headers:
                if buf.headers is None:
                    buf.headers = {}
                buf.headers[i] = headers
            if timestamp:
                if buf.timestamps is None:
                    buf.timestamps = {}
                buf.timestamps[i] = timestamp
            cb = on_delivery or callback or self._default_cb
            if cb is not None:
                if buf.callbacks is None:
                    buf.callbacks = {}
                buf.callbacks[i] = cb
            buf.nbytes += size + _RECORD_FRAMING
            self._queued += 1
            if i + 1 >= self._batch_messages or buf.nbytes >= self._batch_bytes or self._linger_s <= 0:
                self._send_locked(state, partition)

    def _send_one(self, topic: str, value: Any, key: Any, partition: int, timestamp: int) -> tuple[int, int, KafkaError | None] | None:
        """produce() and send at once, for a linger.ms=0 producer (AIOProducer.send): the
        record is appended now, without the partition buffer, the delivery report and its
        Message (the general path costs a third of a record's produce-to-consume time).

        Returns (partition, base offset or -1, the append's exception or None: see
        delivery_error() for what the delivery report would say); or None when the record
        must take produce() (a transactional or compressing producer, or records buffered
        that must go first). Raises what produce() raises before buffering.
        ProducerCore._send_one_fast is this for a plain record, without a Python frame.
        """
        if type(value) is not bytes and value is not None:
            value = _to_bytes(value, "value")
        size = len(value) if value is not None else 0
        if key is not None:
            if type(key) is not bytes:
                key = _to_bytes(key, "key")
            size += len(key)
        if size > self._max_message:
            raise MessageTooLargeError(f"message of {size} bytes exceeds message.max.bytes={self._max_message}")
        if timestamp:
            timestamp = int(timestamp)
        with self._lock:
            if self._closed:
                raise RuntimeError("producer is closed")
            if self._txn_id is not None or self._queued or self._codec:
                return None
            state = self._topics.get(topic)
            if state is None:
                state = self._topic_state(topic)
            if partition < 0:
                partition = state.sticky if key is None and state.sticky >= 0 else self._choose(topic, key, state)
            elif partition >= state.partitions:
                state = self._refresh_topic_locked(state, partition)
            if partition == state.sticky and state.partitions > 1:
                # As _send_locked: a sent batch moves the sticky partition on.
                state.sticky = (partition + 1 + self._rng.randrange(state.partitions - 1)) % state.partitions
            try:
                if self._idempotent:
                    buf = state.buffers[partition]
                    base = self._broker._append_one(
                        state.name, partition, value, key, timestamp,
                        self.producer_id, self.producer_epoch, buf.next_sequence,
                    )
                    buf.next_sequence = (buf.next_sequence + 1) & 0x7FFFFFFF
                else:
                    base = self._broker._append_one(state.name, partition, value, key, timestamp, -1, -1, -1)
            except (KafkaApiError, OSError, ValueError, TypeError) as exc:
                return partition, -1, exc
            return partition, base, None

    def _send_failed(self, topic: str, partition: int, exc: BaseException) -> None:
        """A record produce() appended at once (linger.ms=0, nothing buffered: ProducerCore)
        failed, and no callback asked for its delivery report: logged as _send_locked logs
        such a batch."""
        log.warning("delivery of %d records to %s-%d failed: %s", 1, topic, partition, delivery_error(exc).str())

    def _choose(self, topic: str, key: Any, state: _TopicState) -> int:
        if key is None:
            return self._partitioner(topic, None, state.partitions)
        h = self._hash_cache.get(key)
        if h is None:
            h = self._hash(key)
            if len(self._hash_cache) >= 65536:
                self._hash_cache.clear()
            if type(key) is bytes:
                self._hash_cache[key] = h
        if h < 0:  # consistent_random on an empty key: random like a null key
            return self._partitioner(topic, key, state.partitions)
        return h % state.partitions

    def produce_batch(self, topic: str, values: Any, keys: Sequence[Any] | None = None, partition: int = -1, *, timestamp: int | None = None) -> int:
        """Append many records at once; returns the number appended.

        Args:
            values: a list of bytes-like values (None = null), a numpy array of dtype S<n>,
                or a (data, offsets) pair (see PartitionLog.append).
            keys: one key per value (routes by the partitioner), or None.
            partition: a fixed partition; -1 picks per key, or one sticky partition when no
                keys are given.
            timestamp: CreateTime (ms) of every record; default now.
        """
        with self._lock:
            if self._closed:
                raise RuntimeError("producer is closed")
            if self._txn_id is not None:
                return self._produce_batch_txn_locked(topic, values, keys, partition, timestamp)
            return self._produce_batch_locked(topic, values, keys, partition, timestamp)

    def _produce_batch_locked(self, topic: str, values: Any, keys: Sequence[Any] | None, partition: int, timestamp: int | None) -> int:
        state = self._topics.get(topic)
        if state is None:
            state = self._topic_state(topic)
        self._send_all_locked()  # keep order with records produced before
        if partition >= state.partitions:
            state = self._refresh_topic_locked(state, partition)
        if keys is None:
            p = partition if partition >= 0 else self._partitioner(topic, None, state.partitions)
            stamps = None if timestamp is None else [int(timestamp)] * _count(values)
            return self._append_locked(state, p, values, None, None, stamps)
        if isinstance(values, tuple) or hasattr(values, "dtype"):
            raise TypeError("produce_batch with keys takes a list of values")
        values = list(values)
        keys = [k if (type(k) is bytes or k is None) else _to_bytes(k, "key") for k in keys]
        if len(keys) != len(values):
            raise ValueError(f"{len(keys)} keys for {len(values)} values")
        if partition >= 0:
            stamps = None if timestamp is None else [int(timestamp)] * len(values)
            return self._append_locked(state, partition, values, keys, None, stamps)
        groups: dict[int, tuple[list[Any], list[Any]]] = {}
        part = self._partitioner
        n = state.partitions
        for v, k in zip(values, keys, strict=True):
            g = groups.get(p := part(topic, k, n))
            if g is None:
                g = groups[p] = ([], [])
            g[0].append(v)
            g[1].append(k)
        total = 0
        for p, (vs, ks) in sorted(groups.items()):
            stamps = None if timestamp is None else [int(timestamp)] * len(vs)
            total += self._append_locked(state, p, vs, ks, None, stamps)
        return total

    def _refresh_topic_locked(self, state: _TopicState, partition: int) -> _TopicState:
        """The partition count grew (CreatePartitions)? Extend the buffers; else raise."""
        n = self._broker._partition_count(state.name)
        if partition >= n:
            raise UnknownPartitionError(f"partition {partition} of {state.name!r} does not exist ({n} partitions)")
        state.buffers.extend(_PartitionBuffer() for _ in range(n - state.partitions))
        state.partitions = n
        return state

    def _topic_state(self, topic: str) -> _TopicState:
        # An entry, once made, is never replaced: produce()'s C fast path caches it.
        state = self._all_topics.get(topic)
        if state is not None:
            return state
        partitions = self._broker._partition_count(topic, create=True)
        sticky = self._rng.randrange(partitions) if self._null_sticky else -1
        state = self._all_topics[topic] = _TopicState(topic, partitions, sticky)
        return state

    # ------------------------------------------------------------------ sending

    def _send_locked(self, state: _TopicState, partition: int) -> None:
        buf = state.buffers[partition]
        if not buf.values:
            return
        if partition == state.sticky and state.partitions > 1:
            state.sticky = (partition + 1 + self._rng.randrange(state.partitions - 1)) % state.partitions
        values, keys, headers, timestamps, callbacks = buf.take()
        n = len(values)
        self._queued -= n
        hdr_list = None
        if headers:
            hdr_list = [headers.get(i) for i in range(n)]
        ts_list = None
        if timestamps:
            now = int(time.time() * 1000)
            ts_list = [timestamps.get(i, now) for i in range(n)]
        error: KafkaError | None = None
        base = -1
        try:
            base = self._append_split_locked(state, partition, values, keys, hdr_list, ts_list)
        except KafkaApiError as exc:  # before KafkaException, which it also is
            error = self._txn_failed_locked(exc) if self._txn_id is not None else KafkaError.from_exception(exc)
        except KafkaException as exc:
            error = exc.args[0]
        except (OSError, ValueError, TypeError) as exc:
            error = KafkaError(-1, str(exc))
            if self._txn_id is not None:
                error = self._txn_abortable_locked(TxnKafkaError(-1, str(exc), txn_requires_abort=True))
        if error is not None and not callbacks:
            log.warning("delivery of %d records to %s-%d failed: %s", n, state.name, partition, error.str())
        if callbacks:
            for i, cb in callbacks.items():
                msg = Message(
                    state.name, partition, base + i if base >= 0 else -1,
                    keys[i] if keys is not None else None, values[i],
                    hdr_list[i] if hdr_list else None,
                    ts_list[i] if ts_list else -1,
                    error=error,
                )
                self._reports.append((cb, error, msg))

    def _append_split_locked(self, state: _TopicState, partition: int, values: list[Any], keys: Any, headers: Any, timestamps: Any) -> int:
        """Append buffered records; a batch over the topic's max.message.bytes is split in
        halves (as a producer re-batches). Returns the first offset."""
        try:
            return self._append_raw_locked(state, partition, values, keys, headers, timestamps)
        except MessageTooLargeError:
            n = len(values)
            if n < 2:
                raise
            h = n // 2

            def part(seq: Any, a: int, b: int) -> Any:
                return None if seq is None else seq[a:b]

            first = self._append_split_locked(state, partition, values[:h], part(keys, 0, h), part(headers, 0, h), part(timestamps, 0, h))
            self._append_split_locked(state, partition, values[h:], part(keys, h, n), part(headers, h, n), part(timestamps, h, n))
            return first

    def _append_locked(self, state: _TopicState, partition: int, values: Any, keys: Any, headers: Any, timestamps: Any) -> int:
        """Append `values` as one batch, or as several when one would pass the topic's
        max.message.bytes (a producer splits by batch size the same way)."""
        limit = self._broker.get_log(state.name, partition).config.max_message_bytes - 61
        total = _count(values)
        start = 0
        for end in _chunks(values, keys, limit):
            self._append_raw_locked(
                state, partition, _slice(values, start, end),
                keys[start:end] if keys is not None else None,
                headers[start:end] if headers is not None else None,
                timestamps[start:end] if timestamps is not None else None,
            )
            start = end
        return total

    def _append_raw_locked(self, state: _TopicState, partition: int, values: Any, keys: Any, headers: Any, timestamps: Any) -> int:
        buf = state.buffers[partition]
        if self._txn_id is not None:
            return self._append_txn_locked(state, partition, values, keys, headers, timestamps)
        if type(values) is list and len(values) == 1 and not headers and not self._codec:
            # One record (what linger.ms=0 sends): the log's single-record append writes the
            # same batch in fewer steps.
            value = values[0]
            key = keys[0] if keys is not None else None
            if (value is None or type(value) is bytes) and (key is None or type(key) is bytes):
                ts = timestamps[0] if timestamps else 0
                if self._idempotent:
                    base = self._broker._append_one(
                        state.name, partition, value, key, ts, self.producer_id, self.producer_epoch, buf.next_sequence,
                    )
                    buf.next_sequence = (buf.next_sequence + 1) & 0x7FFFFFFF
                    return base
                return self._broker._append_one(state.name, partition, value, key, ts, -1, -1, -1)
        if self._idempotent:
            count = _count(values)
            base = self._broker._append(
                state.name, partition, values, keys, headers, timestamps, self._codec,
                producer_id=self.producer_id, producer_epoch=self.producer_epoch,
                base_sequence=buf.next_sequence,
            )
            buf.next_sequence = (buf.next_sequence + count) & 0x7FFFFFFF
            return base
        return self._broker._append(state.name, partition, values, keys, headers, timestamps, self._codec)

    def _send_all_locked(self) -> None:
        if not self._queued:
            return
        for state in self._all_topics.values():
            for p, buf in enumerate(state.buffers):
                if buf.values:
                    self._send_locked(state, p)

    def _send_lingering(self) -> float | None:
        """Send buffers whose first record waited linger.ms (the broker's timer calls this).
        Returns when the next of the buffers left comes due (time.monotonic() seconds), None
        when nothing is buffered."""
        with self._lock:
            if self._queued == 0 or self._closed:
                return None
            deadline = time.monotonic() - self._linger_s
            first = None
            for state in self._all_topics.values():
                for p, buf in enumerate(state.buffers):
                    if not buf.values:
                        continue
                    if buf.first_ms <= deadline:
                        self._send_locked(state, p)
                    elif first is None or buf.first_ms < first:
                        first = buf.first_ms
            return None if first is None else first + self._linger_s

    # ------------------------------------------------------------------ transactions

    def _set_txn_state(self, state: str) -> None:
        """Move to `state` (caller holds the lock). Only inside a transaction does produce()'s
        C fast path see the topics; elsewhere every produce() reaches _produce_general, which
        raises the state error, so the check costs the common record nothing."""
        self._txn_state = state
        self._topics = self._all_topics if state is _TXN_IN_TRANSACTION else {}

    def _txn_produce_error(self) -> TxnKafkaError:
        if self._txn_state is _TXN_FATAL and self._txn_error is not None:
            return TxnKafkaError(ERR__FATAL, f"Fatal error: {self._txn_error.str()}", fatal=True)
        return TxnKafkaError(ERR__STATE, f"Unable to produce message: not in a transaction (state {self._txn_state})")

    def _produce_batch_txn_locked(self, topic: str, values: Any, keys: Sequence[Any] | None, partition: int, timestamp: int | None) -> int:
        if self._txn_state is not _TXN_IN_TRANSACTION:
            raise KafkaException(self._txn_produce_error())
        try:
            return self._produce_batch_locked(topic, values, keys, partition, timestamp)
        except KafkaApiError as exc:
            raise KafkaException(self._txn_failed_locked(exc)) from exc

    def _append_txn_locked(self, state: _TopicState, partition: int, values: Any, keys: Any, headers: Any, timestamps: Any) -> int:
        """Append one transactional batch: AddPartitionsToTxn first if the partition is new to
        the transaction, then the batch (transactional attribute, producer id, epoch and this
        partition's next sequence) through the broker's Produce path, which checks it against
        the partition's producer state (a fenced epoch is refused there)."""
        if self._txn_state is not _TXN_IN_TRANSACTION and self._txn_state is not _TXN_BEGIN_COMMIT:
            if self._txn_error is not None and self._txn_state in (_TXN_ABORTABLE, _TXN_FATAL):
                raise KafkaException(self._txn_error)
            raise KafkaException(TxnKafkaError(ERR__STATE, f"no transaction to send to (state {self._txn_state})"))
        tp = (state.name, partition)
        if tp not in self._txn_partitions:
            self._add_partition_locked(tp)
        buf = state.buffers[partition]
        count = _count(values)
        base = self._broker._append(
            state.name, partition, values, keys, headers, timestamps, self._codec,
            producer_id=self.producer_id, producer_epoch=self.producer_epoch,
            base_sequence=buf.next_sequence, is_transactional=True,
        )
        buf.next_sequence = (buf.next_sequence + count) & 0x7FFFFFFF
        return int(base)

    def _add_partition_locked(self, tp: tuple[str, int]) -> None:
        """AddPartitionsToTxn of one partition this producer resolved (its topic state exists);
        a failure makes the transaction abortable, or the producer fatally failed (fenced),
        and raises KafkaException."""
        b = self._broker
        deadline = None
        while True:
            try:
                b._txn_call(b.txn_coordinator.add_partition, self._txn_id, self.producer_id, self.producer_epoch, tp, _now_ms())
            except ConcurrentTransactionsError as exc:
                if deadline is None:
                    deadline = time.monotonic() + self._txn_timeout_ms / 1000.0
                if time.monotonic() < deadline:
                    time.sleep(_RETRY_BACKOFF_S)
                    continue
                raise KafkaException(self._txn_failed_locked(exc)) from exc
            except KafkaApiError as exc:
                raise KafkaException(self._txn_failed_locked(exc)) from exc
            self._txn_partitions.add(tp)
            return

    def _txn_failed_locked(self, exc: KafkaApiError) -> TxnKafkaError:
        """Record a failure inside the transaction the way librdkafka classifies it: fenced
        epochs, unknown producer id mappings and transaction-state errors are fatal, anything
        else makes the transaction abortable. Returns the error the caller reports."""
        error = _txn_error_from(exc)
        if error.fatal():
            return self._txn_fatal_locked(error)
        return self._txn_abortable_locked(error)

    def _txn_fatal_locked(self, error: TxnKafkaError) -> TxnKafkaError:
        if self._txn_state is not _TXN_FATAL:
            log.error("transactional producer %r failed fatally: %s", self._txn_id, error.str())
            self._set_txn_state(_TXN_FATAL)
            self._txn_error = error
            self._purge_locked()
        assert self._txn_error is not None
        return self._txn_error

    def _txn_abortable_locked(self, error: TxnKafkaError) -> TxnKafkaError:
        if self._txn_state in (_TXN_IN_TRANSACTION, _TXN_BEGIN_COMMIT):
            log.warning("transaction of %r must be aborted: %s", self._txn_id, error.str())
            self._set_txn_state(_TXN_ABORTABLE)
            self._txn_error = error
            # A sequence error leaves the partition's producer state ahead of or behind this
            # producer: abort_transaction() bumps the epoch so sequences restart at 0 (KIP-360).
            self._txn_bump_epoch = True
            self._purge_locked()
        if self._txn_state in (_TXN_ABORTABLE, _TXN_FATAL) and self._txn_error is not None:
            return self._txn_error
        return error

    def purge(self, in_queue: bool = True, in_flight: bool = True, blocking: bool = True) -> None:
        """librdkafka's purge(): drop the records not sent yet (`in_queue`); their delivery
        callbacks get _PURGE_QUEUE at the next poll() or flush(). An embedded send is an
        append, so nothing is ever in flight; `blocking` changes nothing."""
        with self._lock:
            if self._closed:
                raise RuntimeError("producer is closed")
            if in_queue:
                self._purge_locked()

    def cluster_id(self, timeout: float | None = None) -> str:
        return str(self._broker.cluster_id)

    def _purge_locked(self) -> None:
        """Drop every buffered record; their delivery callbacks get _PURGE_QUEUE (librdkafka's
        purge of the queue when a transaction aborts)."""
        purged = TxnKafkaError(ERR__PURGE_QUEUE, "Local: Purged in queue")
        for state in self._all_topics.values():
            for p, buf in enumerate(state.buffers):
                if not buf.values:
                    continue
                values, keys, headers, timestamps, callbacks = buf.take()
                self._queued -= len(values)
                for i, cb in (callbacks or {}).items():
                    msg = Message(
                        state.name, p, -1, keys[i] if keys is not None else None, values[i],
                        headers.get(i) if headers else None,
                        timestamps.get(i, -1) if timestamps else -1, error=purged,
                    )
                    self._reports.append((cb, purged, msg))

    def _check_txn_api(self, allowed: tuple[str, ...]) -> None:
        """Raise the error librdkafka returns for a transactional call in the wrong state:
        _NOT_CONFIGURED without transactional.id, the fatal error after one, the abortable
        error (txn_requires_abort) while the transaction must be aborted, else _STATE.
        Nothing changes."""
        if self._txn_id is None:
            raise KafkaException(TxnKafkaError(ERR__NOT_CONFIGURED, "The Transactional API requires transactional.id to be configured"))
        if self._closed:
            raise KafkaException(TxnKafkaError(ERR__STATE, "producer is closed"))
        if self._txn_state in allowed:
            return
        if self._txn_state in (_TXN_FATAL, _TXN_ABORTABLE) and self._txn_error is not None:
            raise KafkaException(self._txn_error)
        raise KafkaException(TxnKafkaError(ERR__STATE, f"Operation not valid in state {self._txn_state}"))

    def _deadline(self, timeout: float | None) -> float:
        """A monotonic deadline: `timeout` seconds, or transaction.timeout.ms when None/-1."""
        if timeout is None or timeout < 0:
            timeout = self._txn_timeout_ms / 1000.0
        return time.monotonic() + timeout

    def init_transactions(self, timeout: float | None = None) -> None:
        """InitProducerId for `transactional.id`: get the producer id and a new epoch.

        This fences every older producer instance with the same transactional.id: their next
        produce, AddPartitionsToTxn or EndTxn fails with a fatal _FENCED error. A transaction
        the older instance left open is aborted first (ABORT markers written); this call
        returns once that is done.

        Args:
            timeout: seconds to wait for a previous transaction to complete; None = the
                transaction.timeout.ms.

        Raises:
            KafkaException: _NOT_CONFIGURED (no transactional.id), _STATE (called twice),
                _TIMED_OUT (retriable: call again), or a fatal error
                (INVALID_TRANSACTION_TIMEOUT over transaction.max.timeout.ms, _FENCED).
        """
        with self._lock:
            self._check_txn_api((_TXN_INIT,))
            try:
                result = self._init_producer_id_locked(self._deadline(timeout))
            except KafkaApiError as exc:
                error = _txn_error_from(exc)
                error._fatal = not error.retriable()
                if error.fatal():
                    self._txn_fatal_locked(error)
                raise KafkaException(error) from exc
            self._set_producer_locked(result)
            self._set_txn_state(_TXN_READY)

    def _init_producer_id_locked(self, deadline: float, producer_id: int = -1, producer_epoch: int = -1) -> InitResult:
        """InitProducerId, waiting (bounded by `deadline`) while the previous transaction of
        the id completes. Raises the coordinator's KafkaApiError, or KafkaException
        _TIMED_OUT."""
        b = self._broker
        coordinator = b.txn_coordinator
        while True:
            try:
                result = b._txn_call(coordinator.init_producer_id, self._txn_id, self._txn_timeout_ms, _now_ms(), producer_id, producer_epoch)
            except ConcurrentTransactionsError:
                if time.monotonic() >= deadline:
                    raise KafkaException(TxnKafkaError(ERR__TIMED_OUT, "InitProducerId: the previous transaction is still completing", retriable=True)) from None
                time.sleep(_RETRY_BACKOFF_S)
                continue
            if isinstance(result, InitPending):
                # _txn_call wrote the abort markers it started; otherwise the broker's timer
                # finishes the markers still owed, which completes the pending.
                while not result.done():
                    if time.monotonic() >= deadline:
                        with b._lock:
                            result.cancel()
                        raise KafkaException(TxnKafkaError(ERR__TIMED_OUT, "InitProducerId: the previous transaction is still completing", retriable=True))
                    time.sleep(_RETRY_BACKOFF_S)
                return result.result()
            assert isinstance(result, InitResult)
            return result

    def _set_producer_locked(self, result: InitResult) -> None:
        """Take a new producer id/epoch: every partition's sequence restarts at 0."""
        self.producer_id, self.producer_epoch = result.producer_id, result.producer_epoch
        for state in self._all_topics.values():
            for buf in state.buffers:
                buf.next_sequence = 0

    def begin_transaction(self) -> None:
        """Start a transaction (local: the coordinator hears of it with the first partition).

        Raises:
            KafkaException: _STATE if init_transactions() was not called or a transaction is
                already open; the abortable/fatal error if one is pending.
        """
        with self._lock:
            self._check_txn_api((_TXN_READY,))
            self._txn_partitions = set()
            self._txn_bump_epoch = False
            self._set_txn_state(_TXN_IN_TRANSACTION)

    def send_offsets_to_transaction(self, offsets: Sequence[Any], group_metadata: Any, timeout: float | None = None) -> None:
        """Commit consumer offsets as part of the transaction (AddOffsetsToTxn, then
        TxnOffsetCommit): the group sees them only if the transaction commits.

        Args:
            offsets: TopicPartitions whose offset is the next offset to consume (the last
                processed + 1); negative offsets are skipped, none left = no-op.
            group_metadata: the consumer's consumer_group_metadata() (group id, generation,
                member id, group instance id), or a group id string (generation -1).
            timeout: seconds; None = transaction.timeout.ms.

        Raises:
            KafkaException: _STATE outside a transaction; abortable or fatal errors as for
                produce; the group coordinator's errors (ILLEGAL_GENERATION, ...) abortable.
        """
        with self._lock:
            self._check_txn_api((_TXN_IN_TRANSACTION,))
            group_id, generation_id, member_id, instance_id = _group_fields(group_metadata)
            todo = {(tp.topic, int(tp.partition)): tp for tp in offsets if int(tp.offset) >= 0}
            if not todo:
                return
            b = self._broker
            commit = getattr(b.group_coordinator, "txn_offset_commit", None)
            if commit is None:
                raise KafkaException(TxnKafkaError(ERR__NOT_IMPLEMENTED, "the group coordinator has no TxnOffsetCommit yet"))
            deadline = self._deadline(timeout)
            while True:
                try:
                    tp = b._txn_call(b.txn_coordinator.add_offsets, self._txn_id, self.producer_id, self.producer_epoch, group_id, _now_ms())
                    break
                except ConcurrentTransactionsError:
                    if time.monotonic() >= deadline:
                        raise KafkaException(TxnKafkaError(ERR__TIMED_OUT, "AddOffsetsToTxn timed out", retriable=True)) from None
                    time.sleep(_RETRY_BACKOFF_S)
                except KafkaApiError as exc:
                    raise KafkaException(self._txn_failed_locked(exc)) from exc
            self._txn_partitions.add(tp)
            try:
                errors = b._group_call(
                    commit, group_id,
                    {GroupTP(t, p): CommitOffset(int(o.offset), metadata=o.metadata or "") for (t, p), o in todo.items()},
                    producer_id=self.producer_id, producer_epoch=self.producer_epoch,
                    generation_id=generation_id, member_id=member_id, group_instance_id=instance_id,
                    now_ms=_now_ms(),
                )
            except KafkaApiError as exc:
                raise KafkaException(self._txn_failed_locked(exc)) from exc
            failed = [e for e in (errors or {}).values() if e is not None]
            if failed:
                raise KafkaException(self._txn_failed_locked(failed[0]))

    def commit_transaction(self, timeout: float | None = None) -> None:
        """Send every buffered record, then EndTxn(commit): markers make the transaction's
        records (and offsets) visible to read_committed consumers atomically.

        Raises:
            KafkaException: _STATE outside a transaction; an abortable error
                (txn_requires_abort(): call abort_transaction()) if a record of the
                transaction failed; a fatal error (_FENCED) if a newer instance or the
                transaction timeout fenced this producer; _TIMED_OUT (retriable: call
                commit_transaction() again).
        """
        with self._lock:
            self._check_txn_api((_TXN_IN_TRANSACTION, _TXN_BEGIN_COMMIT))
            self._set_txn_state(_TXN_BEGIN_COMMIT)  # produce() is refused from here on
            self._send_all_locked()
            if not self._reports:  # no delivery report to serve first: end it now
                self._end_txn_locked(True, timeout)
                self._set_txn_state(_TXN_READY)
                self._txn_partitions = set()
                return
        self._serve()  # delivery reports before the outcome, as librdkafka's flush
        with self._lock:
            self._check_txn_api((_TXN_BEGIN_COMMIT,))
            self._send_all_locked()  # a delivery callback may not produce; nothing to send
            self._end_txn_locked(True, timeout)
            self._set_txn_state(_TXN_READY)
            self._txn_partitions = set()

    def abort_transaction(self, timeout: float | None = None) -> None:
        """Drop the transaction's unsent records (delivery reports get _PURGE_QUEUE), then
        EndTxn(abort): ABORT markers hide what was sent from read_committed consumers.

        After an abortable error the epoch is bumped too (KIP-360), so every partition's
        sequence restarts cleanly.

        Raises:
            KafkaException: _STATE without a transaction; a fatal error (_FENCED);
                _TIMED_OUT (retriable: call abort_transaction() again).
        """
        with self._lock:
            self._check_txn_api((_TXN_IN_TRANSACTION, _TXN_ABORTABLE, _TXN_BEGIN_ABORT))
            self._set_txn_state(_TXN_BEGIN_ABORT)
            self._purge_locked()
            deadline = self._deadline(timeout)  # EndTxn and the epoch bump share it
            self._end_txn_locked(False, timeout, deadline)
            if self._txn_bump_epoch:
                try:
                    result = self._init_producer_id_locked(deadline, self.producer_id, self.producer_epoch)
                except KafkaApiError as exc:
                    raise KafkaException(self._txn_fatal_locked(_txn_error_from(exc, fatal=True))) from exc
                self._set_producer_locked(result)
                self._txn_bump_epoch = False
            self._set_txn_state(_TXN_READY)
            self._txn_partitions = set()
            self._txn_error = None
        self._serve()

    def _end_txn_locked(self, commit: bool, timeout: float | None, deadline: float | None = None) -> None:
        """EndTxn and its markers (the broker writes them in the same call), retried while
        the coordinator is still completing the previous outcome until `deadline`, or, if
        None, for `timeout` seconds from the first retry (_deadline: a commit's common case
        never needs one). A transaction that never reached the coordinator (no partition,
        no offsets) ends locally."""
        if not self._txn_partitions:
            return
        b = self._broker
        coordinator = b.txn_coordinator
        while True:
            try:
                b._txn_call(coordinator.end_txn, self._txn_id, self.producer_id, self.producer_epoch, commit, _now_ms())
                return
            except ConcurrentTransactionsError:
                if deadline is None:
                    deadline = self._deadline(timeout)
                if time.monotonic() >= deadline:
                    raise KafkaException(TxnKafkaError(ERR__TIMED_OUT, "EndTxn: the coordinator is still completing", retriable=True)) from None
                time.sleep(_RETRY_BACKOFF_S)
            except (KafkaApiError, StorageError) as exc:
                if not isinstance(exc, _COORDINATOR_ERRORS):
                    # Storage trouble after the PrepareCommit/PrepareAbort record was durable
                    # (writing a marker): the outcome is decided and the broker's timer
                    # retries the markers, so the caller is answered NONE, as Kafka does. A
                    # one-phase commit whose marker failed is not decided: the error goes out.
                    if coordinator.is_decided(self._txn_id or "", commit):
                        return
                    if not isinstance(exc, KafkaApiError):
                        raise
                error = _txn_error_from(exc)
                if error.fatal():
                    raise KafkaException(self._txn_fatal_locked(error)) from exc
                if commit:
                    raise KafkaException(self._txn_abortable_locked(error)) from exc
                raise KafkaException(error) from exc

    # ------------------------------------------------------------------ callbacks

    def poll(self, timeout: float | None = None) -> int:
        """Send lingering batches and serve delivery callbacks; returns callbacks served."""
        self._send_lingering()
        served = self._serve()
        if served == 0 and timeout and self._queued:
            time.sleep(min(timeout, self._linger_s))
            self._send_lingering()
            served = self._serve()
        return served

    def flush(self, timeout: float | None = None) -> int:
        """Send everything buffered and serve every callback. Returns messages still queued (0)."""
        with self._lock:
            self._send_all_locked()
        self._serve()
        return self._queued

    def _serve(self) -> int:
        served = 0
        reports = self._reports
        while reports:
            try:
                cb, err, msg = reports.popleft()
            except IndexError:
                break
            cb(err, msg)
            served += 1
        return served

    def __len__(self) -> int:
        return self._queued + len(self._reports)

    def list_topics(self, topic: str | None = None, timeout: float = -1) -> ClusterMetadata:
        """confluent-kafka's: the topics (internal ones too) and this broker (admin.py); a
        topic asked for by name is created if auto.create.topics.enable, as for librdkafka."""
        return cluster_metadata(self._broker, topic, create=True)

    def close(self) -> None:
        """Flush and detach from the broker. Later calls raise.

        A transactional producer with a transaction open aborts it first (as Kafka's Java
        producer does on close): its unsent records are dropped and ABORT markers written.
        """
        if self._closed:
            return
        if self._txn_id is not None and self._txn_state in (_TXN_IN_TRANSACTION, _TXN_BEGIN_COMMIT, _TXN_ABORTABLE):
            try:
                self.abort_transaction()
            except KafkaException as exc:
                log.warning("aborting the open transaction of %r on close failed: %s", self._txn_id, exc)
        self.flush()
        with self._lock:
            self._closed = True
        self._broker._unregister_producer(self)

    def __enter__(self) -> Producer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def delivery_error(exc: BaseException) -> KafkaError:
    """The delivery report's error for an append that raised `exc` (as _send_locked makes it
    for a non-transactional producer)."""
    if isinstance(exc, KafkaApiError):
        return KafkaError.from_exception(exc)
    return KafkaError(-1, str(exc))


def _key_hash(name: str) -> Callable[[Any], int]:
    """Non-negative hash of a key for the keyed partitioners (partition = hash % n); -1 asks
    the Partitioner (consistent_random treats an empty key like a null one)."""
    if name.startswith("murmur2"):
        return lambda key: murmur2_unsigned(key) & 0x7FFFFFFF
    if name.startswith("consistent"):
        if name == "consistent_random":
            return lambda key: zlib.crc32(key) if len(key) else -1
        return zlib.crc32
    if name.startswith("fnv1a"):
        return fnv1a
    return lambda key: -1


def _to_bytes(obj: Any, what: str) -> bytes | memoryview:
    if isinstance(obj, str):
        return obj.encode()
    if isinstance(obj, (bytearray, memoryview)):
        return obj
    try:
        return memoryview(obj)
    except TypeError:
        raise TypeError(f"{what} must be bytes-like, str or None, not {type(obj).__name__}") from None


def _headers(headers: Any) -> list[tuple[str, bytes | None]]:
    items = headers.items() if isinstance(headers, Mapping) else headers
    out = []
    for k, v in items:
        if not isinstance(k, str):
            raise TypeError("header keys must be str")
        out.append((k, v.encode() if isinstance(v, str) else v))
    return out


_RECORD_OVERHEAD = 36  # upper bound of a record's framing (see PartitionLog.RECORD_BOUND)
_RECORD_FRAMING = 16  # typical framing of a small record (length, attributes, deltas, lengths)


def _chunks(values: Any, keys: Any, limit: int) -> list[int]:
    """End indexes of consecutive slices of `values` whose batches fit in `limit` bytes
    (halving: a range's size is one C call, so this costs O(log n) calls when sizes are even)."""
    if isinstance(values, tuple) and len(values) == 2:
        offs = memoryview(values[1]).cast("B").cast("q")
        n = len(offs) - 1

        def size(a: int, b: int) -> int:
            return int(offs[b] - offs[a]) + (b - a) * _RECORD_OVERHEAD

    elif hasattr(values, "dtype"):
        n = len(values)
        per = max(1, limit // (values.dtype.itemsize + _RECORD_OVERHEAD))
        return list(range(per, n, per)) + [n]
    else:
        n = len(values)

        def size(a: int, b: int) -> int:
            whole = a == 0 and b == n
            vs = values if whole else values[a:b]
            ks = None if keys is None else (keys if whole else keys[a:b])
            return int(payload_size(vs, ks)) + (b - a) * _RECORD_OVERHEAD

    ends: list[int] = []

    def split(a: int, b: int) -> None:
        if b - a <= 1:
            if size(a, b) > limit:
                # Checked before anything is appended: a failed call writes nothing.
                raise MessageTooLargeError(f"record {a} is larger than max.message.bytes")
            ends.append(b)
            return
        if size(a, b) <= limit:
            ends.append(b)
            return
        m = (a + b) // 2
        split(a, m)
        split(m, b)

    split(0, n)
    return ends


def _slice(values: Any, start: int, end: int) -> Any:
    if isinstance(values, tuple) and len(values) == 2:
        data, offsets = values
        offs = memoryview(offsets).cast("B").cast("q")
        if start == 0 and end == len(offs) - 1:
            return values
        import array

        rebased = array.array("q", (offs[i] for i in range(start, end + 1)))
        return data, rebased
    if start == 0 and end == len(values):
        return values
    return values[start:end]


def _count(values: Any) -> int:
    if isinstance(values, tuple) and len(values) == 2:
        return len(memoryview(values[1]).cast("B").cast("q")) - 1
    return len(values)
