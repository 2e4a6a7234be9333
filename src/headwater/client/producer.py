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

Thread-safety: every method takes the producer's lock; one producer may be shared by threads.
Delivery callbacks run in the thread calling poll()/flush(), never under the lock.
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
from headwater.client.message import KafkaError, Message
from headwater.errors import (
    ConfigError,
    KafkaApiError,
    MessageTooLargeError,
    UnknownTopicOrPartitionError,
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
        self._idempotent = bool(cfg["enable.idempotence"]) or cfg.get("transactional.id") is not None
        self.producer_id = -1
        self.producer_epoch = -1
        if self._idempotent:
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
            raise UnknownTopicOrPartitionError(f"partition {partition} of {state.name!r} does not exist ({n} partitions)")
        state.buffers.extend(_PartitionBuffer() for _ in range(n - state.partitions))
        state.partitions = n
        return state

    def _topic_state(self, topic: str) -> _TopicState:
        partitions = self._broker._partition_count(topic, create=True)
        sticky = self._rng.randrange(partitions) if self._null_sticky else -1
        state = self._topics[topic] = _TopicState(topic, partitions, sticky)
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
        except KafkaApiError as exc:
            error = KafkaError.from_exception(exc)
        except (OSError, ValueError, TypeError) as exc:
            error = KafkaError(-1, str(exc))
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
        for state in self._topics.values():
            for p, buf in enumerate(state.buffers):
                if buf.values:
                    self._send_locked(state, p)

    def _send_lingering(self) -> None:
        """Send buffers whose first record waited linger.ms (the broker's timer calls this)."""
        with self._lock:
            if self._queued == 0 or self._closed:
                return
            deadline = time.monotonic() - self._linger_s
            for state in self._topics.values():
                for p, buf in enumerate(state.buffers):
                    if buf.values and buf.first_ms <= deadline:
                        self._send_locked(state, p)

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

    def list_topics(self, topic: str | None = None, timeout: float = -1) -> Any:
        return self._broker.list_topics(topic)

    def close(self) -> None:
        """Flush and detach from the broker. Later calls raise."""
        if self._closed:
            return
        self.flush()
        with self._lock:
            self._closed = True
        self._broker._unregister_producer(self)

    def __enter__(self) -> Producer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


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
