"""Broker: a whole Kafka-style broker inside a Python process.

    with headwater.Broker("data") as broker:
        broker.create_topic("orders", partitions=3)
        producer = broker.producer({"linger.ms": 5})
        consumer = broker.consumer({"group.id": "billing", "auto.offset.reset": "earliest"})

One Broker owns one data directory (an exclusive lock: a second process gets
DataDirLockedError, which points to server mode). It wires together:

- the topic metadata store (`broker/metadata.py`) and the partition logs (`log/manager.py`);
- the group coordinator (`coordinator/group`), whose committed offsets and group metadata are
  appended to the compacted internal topic `__consumer_offsets` and replayed on open;
- producer ids for idempotent producers, allocated in blocks persisted in `producer-id-block`;
- one timer thread ("headwater-timer") that sends lingering producer batches, ticks the group
  coordinator (session timeouts, join deadlines), flushes `flush.policy=interval` logs and runs
  retention every `log.retention.check.interval.ms` and compaction of compacted topics every
  `log.cleaner.backoff.ms`.

Thread-safety: Broker, Producer, Consumer and AdminClient are safe to share between threads.
The broker's state is guarded by one re-entrant lock; appends to a partition are serialised by
the partition log's own lock.
"""

from __future__ import annotations

import base64
import importlib
import logging
import os
import re
import threading
import time
import uuid
from collections.abc import Mapping
from typing import Any

from headwater._native._native import DataSignal, notify_data
from headwater.broker.metadata import MetadataStore, TopicMetadata
from headwater.config import LogConfig
from headwater.coordinator.group import GroupCoordinator, GroupCoordinatorConfig, OffsetsBatch
from headwater.coordinator.group.records import offsets_partition_for
from headwater.coordinator.txn import (
    InitPending,
    TransactionCoordinator,
    TransactionCoordinatorConfig,
)
from headwater.coordinator.txn.metadata import MarkerWork
from headwater.errors import (
    ConfigError,
    InvalidProducerEpochError,
    OffsetOutOfRangeError,
    PolicyViolationError,
    UnknownTopicOrPartitionError,
)
from headwater.log import checkpoint
from headwater.log.manager import LogManager
from headwater.log.partition_log import AppendResult, PartitionLog
from headwater.record import batch_records

log = logging.getLogger("headwater.broker")

OFFSETS_TOPIC = "__consumer_offsets"
PRODUCER_ID_BLOCK_FILE = "producer-id-block"
PRODUCER_ID_BLOCK_SIZE = 1000

BROKER_DEFAULTS: dict[str, Any] = {
    "num.partitions": 1,
    "auto.create.topics.enable": True,
    # Kafka uses 50; one partition keeps an embedded broker's directory small. It only spreads
    # coordinator load, which a single process does not need.
    "offsets.topic.num.partitions": 1,
    "offsets.topic.segment.bytes": 104857600,
    "log.retention.check.interval.ms": 300000,
    "log.cleaner.backoff.ms": 15000,  # compaction check of compacted topics (log/cleaner.py)
    # The timer's shortest sleep; it wakes when a lingering batch is due, or for the
    # coordinators' 50 ms step (Broker._timer_loop).
    "timer.interval.ms": 5,
    # Kafka wire server (server/): this node's id, the largest request frame accepted, and
    # how many requests one connection may have queued before reading from it pauses.
    "node.id": 1,
    "socket.request.max.bytes": 104857600,
    "queued.max.requests": 500,
    # Transaction coordinator (coordinator/txn); one __transaction_state partition, as for
    # __consumer_offsets (Kafka uses 50).
    "transaction.state.log.num.partitions": 1,
    "transaction.state.log.segment.bytes": 104857600,
    "transaction.max.timeout.ms": 900000,
    "transactional.id.expiration.ms": 604800000,
}
TXN_STATE_TOPIC = "__transaction_state"
CLUSTER_ID_FILE = "meta.properties"
_COORDINATOR_NAMES = {f.replace("_", ".") for f in GroupCoordinatorConfig.__dataclass_fields__}
_LOG_NAMES = {f.replace("_", ".") for f in LogConfig.__dataclass_fields__}


def _coerce(name: str, value: Any, default: Any) -> Any:
    """A broker setting given as text (`headwater serve --config k=v`) in its default's type."""
    if not isinstance(value, str) or isinstance(default, str):
        return value
    text = value.strip().lower()
    if isinstance(default, bool):
        if text in ("true", "1", "yes"):
            return True
        if text in ("false", "0", "no"):
            return False
        raise ConfigError(f"{name} must be true or false, not {value!r}")
    try:
        return type(default)(text)
    except ValueError:
        raise ConfigError(f"{name} must be a number, not {value!r}") from None


def _now_ms() -> int:
    return int(time.time() * 1000)


def _timer_sleep(now: float, wake_by: float | None, next_coordinator: float, interval: float) -> float:
    """How long the broker's timer sleeps: to whichever comes first, `wake_by` (the next
    lingering batch, see Broker._send_due_batches; None: none) or the coordinators' next step,
    and never less than timer.interval.ms (`interval`, seconds)."""
    until = next_coordinator if wake_by is None else min(wake_by, next_coordinator)
    return max(interval, until - now)


class Broker:
    """An embedded broker over one data directory (see the module docstring).

    Args:
        data_dir: the data directory (created if missing).
        config: broker settings (Kafka names): `num.partitions`, `auto.create.topics.enable`,
            `offsets.topic.num.partitions`, group coordinator settings
            (`group.initial.rebalance.delay.ms`, `group.min.session.timeout.ms`, ...), and
            default log settings (`segment.bytes`, `flush.policy`, `retention.ms`, ... also
            accepted with a `log.` prefix, as in Kafka's broker config).
        **kwargs: more settings, with underscores for dots.
    """

    # server.KafkaServer, registered by `headwater.server` when imported: the wire server is a
    # layer above this one, so the broker reaches it through this hook (a plugin lookup by
    # module name in serve()) rather than an import.
    _server_factory: Any = None

    def __init__(self, data_dir: str | os.PathLike[str] = "./headwater-data", config: Mapping[str, Any] | None = None, **kwargs: Any) -> None:
        settings = dict(BROKER_DEFAULTS)
        log_defaults: dict[str, Any] = {}
        coordinator: dict[str, Any] = {}
        for name, value in {**(config or {}), **{k.replace("_", "."): v for k, v in kwargs.items()}}.items():
            bare = name[4:] if name.startswith("log.") and name[4:] in _LOG_NAMES else name
            if name in BROKER_DEFAULTS:
                settings[name] = _coerce(name, value, BROKER_DEFAULTS[name])
            elif bare in _LOG_NAMES:
                log_defaults[bare] = value
            elif name in _COORDINATOR_NAMES:
                coordinator[name] = value
            else:
                raise ConfigError(f"unknown broker config {name!r}")
        self.config = settings
        self.data_dir = os.path.abspath(os.fspath(data_dir))
        self._lock = threading.RLock()
        self._closed = False
        # Before the logs open: recovery writes transaction markers, which wake readers.
        # Appends so far (`_signal.seq`); a thread waits only if it has not moved.
        self._signal = DataSignal()
        # Async consumers' (loop, event, thread) are `_signal.async_waiters`.
        self._store = MetadataStore.open(self.data_dir, default_partitions=int(settings["num.partitions"]))
        try:
            self._logs = LogManager(self.data_dir, log_defaults, topic_configs=self._store.topic_configs())
            self._logs.remove_unknown(self._store.partition_layout())
            self._ensure_offsets_topic()
            self.group_coordinator = GroupCoordinator(
                GroupCoordinatorConfig.from_mapping(coordinator),
                partition_count=self._partition_count_or_none,
            )
            self._load_offsets()
            self._next_producer_id, self._producer_id_limit = self._reserve_producer_ids()
            self._ensure_txn_state_topic()
            self.txn_coordinator = TransactionCoordinator(
                TransactionCoordinatorConfig(
                    transaction_max_timeout_ms=int(settings["transaction.max.timeout.ms"]),
                    transactional_id_expiration_ms=int(settings["transactional.id.expiration.ms"]),
                    transaction_state_log_num_partitions=int(settings["transaction.state.log.num.partitions"]),
                    offsets_topic_num_partitions=self._store.describe_topic(OFFSETS_TOPIC).partitions,
                ),
                self._allocate_producer_id_locked,
                partition_count=self._partition_count_or_none,
                sync_partitions=self._sync_txn_partitions,
                latest_records_only=True,  # a compacted topic: one record per id and append
            )
            self._load_txn_state()
            self._abort_hanging_transactions()
            self.cluster_id = self._load_cluster_id()
        except BaseException:
            self._store.close()
            raise
        self._producers: list[Any] = []
        self._consumers: list[Any] = []
        self._servers: list[Any] = []
        self._last_retention_ms = _now_ms()
        self._next_cleaner_ms = _now_ms() + int(self.config["log.cleaner.backoff.ms"])
        self._stop = threading.Event()
        # Set to end the timer's sleep early: on close, and when a producer registers (it may
        # linger, and the timer sleeps at most a lingering producer's linger.ms).
        self._timer_wake = threading.Event()
        self._timer = threading.Thread(target=self._timer_loop, name="headwater-timer", daemon=True)
        self._timer.start()

    # ------------------------------------------------------------------ lifecycle

    def close(self) -> None:
        """Flush producers, leave groups, flush and close every log, release the lock."""
        with self._lock:
            if self._closed:
                return
            servers, self._servers = self._servers, []
        for server in servers:
            server.close()
        for producer in list(self._producers):
            producer.close()
        for consumer in list(self._consumers):
            consumer.close()
        self._stop.set()
        self._timer_wake.set()
        if threading.current_thread() is not self._timer:
            self._timer.join(timeout=5)
        with self._lock:
            self._closed = True
            self._persist_group_records_locked()
            try:
                self._persist_txn_records_locked()  # a deferred Complete* record
            except Exception:  # recovery completes that transaction again; close anyway
                log.exception("persisting the transaction coordinator's last records failed")
            self._logs.close_all()
            self._store.close()

    def __enter__(self) -> Broker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def closed(self) -> bool:
        return self._closed

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("broker is closed")

    # ------------------------------------------------------------------ faces

    def producer(self, config: Mapping[str, Any] | None = None, **kwargs: Any) -> Any:
        """A Producer shaped like confluent_kafka.Producer (see client/producer.py)."""
        from headwater.client.producer import Producer

        return Producer(self, {**(config or {}), **{k.replace("_", "."): v for k, v in kwargs.items()}})

    def consumer(self, config: Mapping[str, Any] | None = None, **kwargs: Any) -> Any:
        """A Consumer shaped like confluent_kafka.Consumer (see client/consumer.py)."""
        from headwater.client.consumer import Consumer

        return Consumer(self, {**(config or {}), **{k.replace("_", "."): v for k, v in kwargs.items()}})

    def admin(self) -> Any:
        """An AdminClient shaped like confluent_kafka.admin.AdminClient."""
        from headwater.client.admin import AdminClient

        return AdminClient(self)

    # ------------------------------------------------------------------ topics

    def create_topic(self, name: str, partitions: int = 1, config: Mapping[str, Any] | None = None, *, replication_factor: int = 1) -> TopicMetadata:
        """Create a topic (metadata first, then its partition logs)."""
        with self._lock:
            self._check_open()
            meta = self._store.create_topic(name, partitions, replication_factor, config)
            self._logs.set_topic_config(name, meta.config)
            for p in range(meta.partitions):
                self._logs.create_log(name, p, meta.topic_id)
            return meta

    def delete_records(self, topic: str, partition: int, offset: int) -> int:
        """DeleteRecords of one partition: records before `offset` (-1: the high watermark)
        are deleted, and the new log start offset (the low watermark) returned.

        Raises:
            PolicyViolationError: the topic's cleanup.policy has no "delete" (Kafka's rule).
            OffsetOutOfRangeError: `offset` is below 0 or past the high watermark.
            UnknownTopicOrPartitionError: no such partition.
        """
        plog = self._log_for_append(topic, partition)
        if "delete" not in (p.strip() for p in plog.config.cleanup_policy.split(",")):
            raise PolicyViolationError(f"cleanup.policy of {topic!r} is {plog.config.cleanup_policy}: records are not deleted")
        target = plog.high_watermark if offset == -1 else offset
        if target < 0 or target > plog.high_watermark:
            raise OffsetOutOfRangeError(
                f"cannot delete records of {topic}-{partition} before {offset}: outside [0, {plog.high_watermark}]"
            )
        return int(plog.delete_records_before(target))

    def delete_topic(self, name: str) -> None:
        with self._lock:
            self._check_open()
            self._store.delete_topic(name)
            self._logs.delete_topic(name)

    def create_partitions(self, name: str, total: int) -> TopicMetadata:
        with self._lock:
            self._check_open()
            before = self._store.describe_topic(name).partitions
            meta = self._store.create_partitions(name, total)
            for p in range(before, meta.partitions):
                self._logs.create_log(name, p, meta.topic_id)
            return meta

    def list_topics(self, topic: str | None = None, include_internal: bool = False) -> dict[str, TopicMetadata]:
        with self._lock:
            topics = self._store.list_topics(include_internal=include_internal or topic is not None)
        if topic is not None:
            return {topic: topics[topic]} if topic in topics else {}
        return topics

    def describe_topic(self, name: str) -> TopicMetadata:
        return self._store.describe_topic(name)

    def topic_config(self, name: str) -> dict[str, Any]:
        with self._lock:
            return self._store.effective_config(name, self._logs.default_config)

    def alter_topic_config(self, name: str, set_: Mapping[str, Any] | None = None, delete: list[str] | None = None) -> TopicMetadata:
        with self._lock:
            meta = self._store.alter_topic_config(name, set_ or {}, delete or [])
            self._logs.set_topic_config(name, meta.config)
            return meta

    def get_log(self, topic: str, partition: int) -> PartitionLog:
        """The partition log of (topic, partition)."""
        return self._logs.get_log(topic, partition)

    def _partition_count(self, topic: str, create: bool = False) -> int:
        meta = self._store.get(topic)
        if meta is None:
            if create and self.config["auto.create.topics.enable"]:
                with self._lock:
                    meta = self._store.get(topic)
                    if meta is None:
                        meta = self.create_topic(topic, int(self.config["num.partitions"]))
            else:
                raise UnknownTopicOrPartitionError(f"unknown topic {topic!r}")
        return meta.partitions

    def _partition_count_or_none(self, topic: str) -> int | None:
        meta = self._store.get(topic)
        return None if meta is None else meta.partitions

    def topics_matching(self, pattern: str) -> list[str]:
        regex = re.compile(pattern)
        return sorted(t for t in self._store.list_topics(include_internal=False) if regex.match(t))

    # ------------------------------------------------------------------ produce

    def _append(
        self,
        topic: str,
        partition: int,
        values: Any,
        keys: Any = None,
        headers: Any = None,
        timestamps: Any = None,
        codec: int = 0,
        *,
        producer_id: int = -1,
        producer_epoch: int = -1,
        base_sequence: int = -1,
        is_transactional: bool = False,
    ) -> int:
        """Append one batch to (topic, partition); returns its base offset (or, for a batch
        the producer state recognises as a retry, the original's)."""
        plog = self._log_for_append(topic, partition)
        base = plog.append(
            values, keys, headers, timestamps, codec or None,
            producer_id=producer_id, producer_epoch=producer_epoch, base_sequence=base_sequence,
            is_transactional=is_transactional,
        )
        self._notify_data()
        return base

    def _append_one(
        self,
        topic: str,
        partition: int,
        value: bytes | None,
        key: bytes | None,
        timestamp: int,
        producer_id: int,
        producer_epoch: int,
        base_sequence: int,
    ) -> int:
        """_append() of one plain record (PartitionLog.append_one): a linger.ms=0 send."""
        plog = self._log_for_append(topic, partition)
        base = plog.append_one(value, key, timestamp, producer_id, producer_epoch, base_sequence)
        self._notify_data()
        return base

    def _append_batch(self, topic: str, partition: int, raw: Any) -> AppendResult:
        """Append one RecordBatch v2 as received (the wire Produce path): validated, offsets
        stamped, idempotent sequence checked by the partition's producer state."""
        plog = self._log_for_append(topic, partition)
        result = plog.append_batch_ex(raw)
        if not result.duplicate:
            self._notify_data()
        return result

    def _log_for_append(self, topic: str, partition: int) -> PartitionLog:
        """get_log() for an append: a missing partition is UnknownTopicOrPartitionError."""
        try:
            return self._logs.get_log(topic, partition)
        except (KeyError, UnknownTopicOrPartitionError):
            raise UnknownTopicOrPartitionError(f"unknown partition {topic}-{partition}") from None

    def _notify_data(self) -> None:
        """Wake consumers waiting for data: threads through `_signal` (its seq moves on),
        loops through their event (`_signal.async_waiters`: the event's set() is
        called at once on the loop's own thread, else through loop.call_soon_threadsafe).
        In C (`_native.notify_data`): a linger.ms=0 send calls it once per record."""
        notify_data(self)

    def _add_async_waiter(self, loop: Any, event: Any) -> None:
        """Wake `event` on every append; called on the thread that runs `loop`."""
        with self._lock:
            self._signal.async_waiters = (*self._signal.async_waiters, (loop, event, threading.get_ident()))

    def _remove_async_waiter(self, loop: Any, event: Any) -> None:
        with self._lock:
            self._signal.async_waiters = tuple(w for w in self._signal.async_waiters if w[:2] != (loop, event))

    def _wait_for_data(self, timeout: float, seen: int = -1) -> None:
        """Block until an append (to any partition) after the one numbered `seen`
        (`_signal.seq` read before the caller looked for data; -1: the next append), or
        `timeout` seconds."""
        signal = self._signal
        signal.wait(signal.seq if seen < 0 else seen, timeout)

    def _init_producer_id(self) -> tuple[int, int]:
        """A fresh producer id (epoch 0) for an idempotent producer (InitProducerId)."""
        with self._lock:
            self._check_open()
            return self._allocate_producer_id_locked(), 0

    def _allocate_producer_id_locked(self) -> int:
        """A producer id never handed out before (idempotent and transactional producers)."""
        if self._next_producer_id >= self._producer_id_limit:
            self._next_producer_id, self._producer_id_limit = self._reserve_producer_ids()
        pid = self._next_producer_id
        self._next_producer_id += 1
        return pid

    # ------------------------------------------------------------------ transactions

    def _ensure_txn_state_topic(self) -> None:
        if self._store.get(TXN_STATE_TOPIC) is None:
            meta = self._store.create_topic(
                TXN_STATE_TOPIC,
                int(self.config["transaction.state.log.num.partitions"]),
                1,
                # The broker's default flush.policy, as for data: under `batch` the records
                # a call is answered on (an InitProducerId's, a PrepareCommit/Abort) are
                # durable before the answer and before any marker is written (kafka-spec
                # d.3); the others ride on the next fsync (coordinator.take_sync). Under
                # `interval` they survive a process kill, not a power loss, like Kafka's own
                # default.
                {"cleanup.policy": "compact", "segment.bytes": int(self.config["transaction.state.log.segment.bytes"])},
                internal=True,
            )
            self._logs.set_topic_config(TXN_STATE_TOPIC, meta.config)
            for p in range(meta.partitions):
                self._logs.create_log(TXN_STATE_TOPIC, p, meta.topic_id)

    def _load_txn_state(self) -> None:
        """Replay __transaction_state; finish the transactions that were preparing."""
        records = self._read_internal_records(TXN_STATE_TOPIC)
        work = self.txn_coordinator.load(records, _now_ms())
        if self.txn_coordinator.highest_producer_id >= self._next_producer_id:
            # ids handed out by a block this broker lost track of: start past them
            self._next_producer_id = self.txn_coordinator.highest_producer_id + 1
            if self._next_producer_id >= self._producer_id_limit:
                self._next_producer_id, self._producer_id_limit = self._reserve_producer_ids()
        with self._lock:
            for w in work:
                self._write_markers_locked(w)
            self._persist_txn_records_locked()  # the Complete* records of what recovery finished

    def _read_internal_records(self, topic: str) -> list[tuple[bytes, bytes | None]]:
        """The keyed records of an internal topic, in log order (control batches skipped)."""
        return [(e[1], e[2]) for e in self._scan_internal(topic) if e[0] == "record"]

    def _scan_internal(self, topic: str) -> list[tuple[Any, ...]]:
        """Every partition of an internal topic in log order, as replay entries:
        ("record", key, value) for a non-transactional record, ("txn_record", producer_id,
        key, value) for a record of a transactional batch, ("marker", producer_id, commit)
        for a COMMIT/ABORT control record."""
        entries: list[tuple[Any, ...]] = []
        meta = self._store.describe_topic(topic)
        for p in range(meta.partitions):
            entries.extend(self._scan_partition(topic, p))
        return entries

    def _scan_partition(self, topic: str, partition: int) -> list[tuple[Any, ...]]:
        """`_scan_internal` for one partition."""
        entries: list[tuple[Any, ...]] = []
        plog = self._logs.get_log(topic, partition)
        offset = plog.log_start_offset
        while offset < plog.log_end_offset:
            with plog.read(offset, 8 << 20) as result:
                if not result.nbytes:
                    break
                last = offset
                for header, view in result.batches():
                    last = header.last_offset
                    try:
                        records = batch_records(view, header)
                    finally:
                        view.release()
                    if header.is_control:
                        for rec in records:
                            # control record key: int16 version, int16 type (1 = COMMIT)
                            if rec.key is not None and len(rec.key) >= 4:
                                entries.append(("marker", header.producer_id, int.from_bytes(rec.key[2:4], "big") == 1))
                    elif header.is_transactional:
                        entries.extend(("txn_record", header.producer_id, r.key, r.value) for r in records if r.key is not None)
                    else:
                        entries.extend(("record", r.key, r.value) for r in records if r.key is not None)
                # Compaction leaves offset gaps: continue after the last batch returned.
                offset = max(last + 1, offset + 1)
        return entries

    def _persist_txn_records_locked(self) -> None:
        """Append the transaction coordinator's records, one per id; under flush.policy=batch
        fsync'd when one of them is answered on (``take_sync``).

        `_txn_call` calls it only then. The other records (Ongoing, Complete*, tombstones)
        wait for such a one, the timer's next tick or close: a transaction of one partition
        costs no append here at all. What a crash loses of them is rebuilt: a transaction
        whose Ongoing record was lost is aborted as hanging when the broker opens
        (`_abort_hanging_transactions`), and the wire server refuses a transactional batch for
        a partition the coordinator does not have in the producer's transaction (KIP-890's
        verification), so no later batch hangs either.
        """
        coordinator = self.txn_coordinator
        sync = coordinator.take_sync()
        if coordinator.config.transaction_state_log_num_partitions == 1:
            recs = coordinator.take_records()  # one partition: no routing by transactional id
            if recs:
                log_ = self._logs.get_log(TXN_STATE_TOPIC, 0)
                log_.append_coordinator_records([k for k, _ in recs], [v for _, v in recs], sync=sync)
            return
        for p, recs in coordinator.take_records_by_partition().items():
            log_ = self._logs.get_log(TXN_STATE_TOPIC, p)
            log_.append_coordinator_records([k for k, _ in recs], [v for _, v in recs], sync=sync)

    def _sync_txn_partitions(self, partitions: Any) -> None:
        """The coordinator's two-phase commit: make the transaction's data durable (under
        flush.policy=batch; transactional appends skip their own fsync) before the
        PrepareCommit record can be. A deleted topic's partition is skipped."""
        for topic, partition in partitions:
            try:
                plog = self._logs.get_log(topic, partition)
            except (KeyError, UnknownTopicOrPartitionError):
                continue
            plog.sync_transactional()

    def _abort_hanging_transactions(self) -> None:
        """Abort the open transactions no coordinator state will end (Kafka's "hanging
        transactions"), after `_load_txn_state`.

        The Ongoing record of AddPartitionsToTxn is written lazily and not fsync'd on its own
        (`_persist_txn_records_locked`): after a crash a partition can hold a transaction's
        data whose Ongoing record was lost.
        Its commit was never answered (that needs a durable PrepareCommit listing the
        partition, or, one-phase, the partition's own COMMIT marker), so it is aborted here,
        with the producer's epoch in that partition, and read_committed readers move on.
        """
        open_txns = self.txn_coordinator.open_transaction_partitions()
        with self._lock:
            for (topic, partition), plog in list(self._logs.logs()):
                for pid in plog.producer_state.ongoing_transactions:
                    if (topic, partition) in open_txns.get(pid, ()):
                        continue  # the coordinator ends it (EndTxn, timeout or recovery)
                    entry = plog.producer_state.last_entry(pid)
                    epoch = entry.producer_epoch if entry is not None else 0
                    log.warning(
                        "aborting hanging transaction of producer %d (epoch %d) in %s-%d",
                        pid, epoch, topic, partition,
                    )
                    try:
                        plog.write_txn_marker(pid, epoch, False, self.txn_coordinator.coordinator_epoch)
                    except Exception:  # an offline log stays hanging until reopened
                        log.exception("aborting the hanging transaction in %s-%d failed", topic, partition)
                        continue
                    if topic == OFFSETS_TOPIC:  # its transactional offsets are dropped
                        self.group_coordinator.complete_txn(pid, False, _now_ms())
                        self._persist_group_records_locked()

    def _txn_call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        """Run one transaction-coordinator call under the broker lock; persist its records if
        one is answered on (durably under flush.policy=batch) before returning, then write the
        markers of any MarkerWork it returned."""
        with self._lock:
            if self._closed:
                self._check_open()
            coordinator = self.txn_coordinator
            try:
                result = fn(*args, **kwargs)
            finally:
                if coordinator.sync_pending:
                    self._persist_txn_records_locked()
            if type(result) is MarkerWork:
                self._write_markers_locked(result)
            elif isinstance(result, InitPending) and result.markers is not None:
                self._write_markers_locked(result.markers)
            return result

    def _write_markers_locked(self, work: MarkerWork) -> None:
        """Write COMMIT/ABORT markers to every partition of a transaction, then complete it.

        A partition whose topic was deleted meanwhile is skipped (Kafka does the same). A
        failed write leaves the work pending; the timer retries `pending_markers()`.
        """
        now = _now_ms()
        get_log = self._logs.get_log
        txn_id, pid, epoch, coordinator_epoch, commit, partitions = work
        for topic, partition in partitions:
            try:
                plog = get_log(topic, partition)
            except (KeyError, UnknownTopicOrPartitionError):
                continue
            plog.write_txn_marker(pid, epoch, commit, coordinator_epoch, now)
            if topic == OFFSETS_TOPIC:
                complete = getattr(self.group_coordinator, "complete_txn", None)
                if complete is not None:
                    complete(pid, commit, now)
                    self._persist_group_records_locked()
        notify_data(self)
        coordinator = self.txn_coordinator
        coordinator.markers_written(txn_id, now)
        if coordinator.sync_pending:
            # InitProducerIds that waited for this completion were answered: their records
            # must be durable first.
            self._persist_txn_records_locked()
        # Otherwise the Complete* record waits in the coordinator's queue and goes out with
        # the next record that must be durable, the timer's next tick or close. Nobody is
        # answered on it; if the process dies first, recovery finds the transaction still in
        # Prepare* and writes its markers again (a marker for a producer without an open
        # transaction changes nothing), or, one-phase, Ongoing and aborts it after its
        # timeout (an ABORT marker after the COMMIT one changes nothing either).

    def _load_cluster_id(self) -> str:
        """The cluster id in `meta.properties` (Kafka's file and format), made on first open:
        a random UUID in base64url without padding, as Kafka's `kafka-storage random-uuid`."""
        path = os.path.join(self.data_dir, CLUSTER_ID_FILE)
        try:
            with open(path, encoding="utf-8") as f:
                for line in f:
                    key, _, value = line.strip().partition("=")
                    if key == "cluster.id" and value:
                        return value
        except FileNotFoundError:
            pass
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        tmp = path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(f"version=1\ncluster.id={cluster_id}\nnode.id={self.config['node.id']}\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        return cluster_id

    def serve(self, host: str = "127.0.0.1", port: int = 9092, *, advertised_host: str | None = None, advertised_port: int | None = None) -> Any:
        """Also serve this broker over the Kafka wire protocol, from a background thread.

        Returns the running `headwater.server.KafkaServer` (`.bootstrap_servers`, `.close()`);
        the embedded API keeps working alongside it. Closing the broker closes the server.
        """
        if Broker._server_factory is None:
            importlib.import_module("headwater.server")  # registers itself as the factory
        factory = Broker._server_factory
        self._check_open()
        server = factory(self, host, port, advertised_host=advertised_host, advertised_port=advertised_port).start_in_thread()
        with self._lock:
            self._servers.append(server)
        return server

    def _reserve_producer_ids(self) -> tuple[int, int]:
        path = os.path.join(self.data_dir, PRODUCER_ID_BLOCK_FILE)
        start = checkpoint.read(path) or 0
        limit = start + PRODUCER_ID_BLOCK_SIZE
        # Persist the end of the block before handing out any id from it: after a crash the
        # next broker starts past every id this one may have given out.
        checkpoint.write(path, limit)
        return start, limit

    def _register_producer(self, producer: Any) -> None:
        with self._lock:
            self._check_open()
            self._producers.append(producer)
        self._timer_wake.set()

    def _unregister_producer(self, producer: Any) -> None:
        with self._lock:
            if producer in self._producers:
                self._producers.remove(producer)

    def _register_consumer(self, consumer: Any) -> None:
        with self._lock:
            self._check_open()
            self._consumers.append(consumer)

    def _unregister_consumer(self, consumer: Any) -> None:
        with self._lock:
            if consumer in self._consumers:
                self._consumers.remove(consumer)

    # ------------------------------------------------------------------ groups

    def _ensure_offsets_topic(self) -> None:
        if self._store.get(OFFSETS_TOPIC) is None:
            meta = self._store.create_topic(
                OFFSETS_TOPIC,
                int(self.config["offsets.topic.num.partitions"]),
                1,
                # Flushed on the interval, not per commit: an OffsetCommit is answered once the
                # record is written (it survives a process kill; Kafka, too, does not fsync per
                # commit), and a commit costs no fdatasync on the server's event loop.
                {
                    "cleanup.policy": "compact",
                    "segment.bytes": int(self.config["offsets.topic.segment.bytes"]),
                    "flush.policy": "interval",
                },
                internal=True,
            )
            self._logs.set_topic_config(OFFSETS_TOPIC, meta.config)
            for p in range(meta.partitions):
                self._logs.create_log(OFFSETS_TOPIC, p, meta.topic_id)

    def _load_offsets(self) -> None:
        """Replay __consumer_offsets into the group coordinator, one partition at a time
        (transactional offsets settle on their producer's marker in the same partition)."""
        meta = self._store.describe_topic(OFFSETS_TOPIC)
        for p in range(meta.partitions):
            self.group_coordinator.load_entries(self._scan_partition(OFFSETS_TOPIC, p), _now_ms())

    def _persist_group_records_locked(self) -> None:
        """Append what the group coordinator changed to __consumer_offsets.

        Ordinary records go out as one batch per partition where they can; the transactional
        offsets of a TxnOffsetCommit (kafka-spec d.3) as a transactional batch of their
        producer (`_append_txn_offsets_locked`). One group's batches keep the coordinator's
        order: transactional offsets are ordered against ordinary commits by log position.
        """
        by_group = self.group_coordinator.take_batches_by_group()
        if not by_group:
            return
        n = self._store.describe_topic(OFFSETS_TOPIC).partitions
        per_partition: dict[int, list[OffsetsBatch]] = {}
        for group, batches in by_group.items():
            per_partition.setdefault(offsets_partition_for(group, n), []).extend(batches)
        for p, batches in per_partition.items():
            plog = self._logs.get_log(OFFSETS_TOPIC, p)
            keys: list[Any] = []
            values: list[Any] = []
            for batch in batches:
                if not batch.is_transactional:
                    keys.extend(k for k, _ in batch.records)
                    values.extend(v for _, v in batch.records)
                    continue
                if keys:
                    plog.append(values, keys)
                    keys, values = [], []
                self._append_txn_offsets_locked(plog, batch)
            if keys:
                plog.append(values, keys)

    def _append_txn_offsets_locked(self, plog: PartitionLog, batch: OffsetsBatch) -> None:
        """Append a TxnOffsetCommit's records as a transactional batch of its producer.

        Kafka's coordinator writes these with origin COORDINATOR (no sequence check, epoch
        checked): here the batch takes the next sequence of the producer in this partition so
        the log's producer-state rules pass, and a stale epoch is still refused
        (InvalidProducerEpochError). On failure the coordinator forgets the offsets it held
        (`revert_last_txn_offset_commit`) and the error propagates to the caller.
        """
        entry = plog.producer_state.last_entry(batch.producer_id)
        seq = 0
        if entry is not None and entry.producer_epoch == batch.producer_epoch and not entry.is_empty:
            seq = (entry.last_seq + 1) & 0x7FFFFFFF
        try:
            plog.append(
                [v for _, v in batch.records],
                [k for k, _ in batch.records],
                producer_id=batch.producer_id,
                producer_epoch=batch.producer_epoch,
                base_sequence=seq,
                is_transactional=True,
            )
        except BaseException:
            self.group_coordinator.revert_last_txn_offset_commit()
            raise

    def _group_call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        """Run one coordinator call under the broker lock and persist what it changed."""
        with self._lock:
            self._check_open()
            try:
                return fn(*args, **kwargs)
            finally:
                self._persist_group_records_locked()

    # ------------------------------------------------------------------ timer

    def _timer_loop(self) -> None:
        """Tick when the next lingering batch comes due, and for the coordinators' step
        (every 50 ms); never more often than every timer.interval.ms.

        Each tick takes the GIL from whichever thread runs the caller's code: with the
        default 5 ms that was 200 handoffs a second, and they were the largest share of the
        asyncio face's p99 that could be told apart (bench/latency_tail.py: 10-40 us of it
        at 10,000 records/s). A producer with linger.ms=0 sends in its produce call and
        leaves nothing to linger, so while every registered producer is such a one (or there
        are none) the timer sleeps until the coordinators' next step. A producer that
        registers wakes it (_register_producer), so the next sleep is short again.

        A lingering producer's timer is its own linger.ms, as in Kafka's sender: a tick comes
        when its oldest buffered batch is due, and while it buffers nothing, within linger.ms
        (a record produced meanwhile then waits at most linger.ms plus one interval). With
        linger.ms=100 that is a tick every 50 ms instead of every 5 ms, each of which took
        the GIL from the producing thread (about 2% of produce()'s throughput).
        """
        interval = float(self.config["timer.interval.ms"]) / 1000.0
        coordinator_every = 0.05
        # The first step after one interval, as ever: a wake (a producer registering) only
        # cuts a sleep short, it never brings a coordinator step forward.
        next_coordinator = time.monotonic() + interval
        timeout = interval
        while True:
            self._timer_wake.wait(timeout)
            self._timer_wake.clear()
            if self._stop.is_set():
                return
            wake_by = None
            try:
                wake_by = self._send_due_batches()
                now = time.monotonic()
                if now >= next_coordinator:
                    next_coordinator = now + coordinator_every
                    if not self._coordinator_tick():
                        return
            except Exception:  # the timer must survive one bad tick; the error is logged
                log.exception("headwater timer tick failed")
                wake_by = time.monotonic()  # the next tick after one interval, as before
            timeout = _timer_sleep(time.monotonic(), wake_by, next_coordinator, interval)

    def _send_due_batches(self) -> float | None:
        """The timer's producer step: every producer sends its batches whose linger.ms ran
        out. Returns by when the timer must look again (time.monotonic() seconds): the next
        buffered batch's due time; for a producer that buffers nothing but can linger, now
        plus its linger.ms (a record it takes meanwhile is due no earlier); for records a
        failed send left queued, now. None: nothing can linger (every producer has
        linger.ms=0, or there is none)."""
        wake_by = None
        now = time.monotonic()
        for producer in list(self._producers):
            due = producer._send_lingering()
            if due is None and producer._queued:
                due = now
            elif due is None and producer._linger_s > 0:
                due = now + producer._linger_s
            if due is not None and (wake_by is None or due < wake_by):
                wake_by = due
        return wake_by

    def _coordinator_tick(self) -> bool:
        """The timer's coordinator step; False once the broker is closed."""
        now_ms = _now_ms()
        with self._lock:
            if self._closed:
                return False
            self.group_coordinator.tick(now_ms)
            self._persist_group_records_locked()
            self._tick_transactions_locked(now_ms)
        self._logs.maybe_flush_all(now_ms)
        if now_ms - self._last_retention_ms >= int(self.config["log.retention.check.interval.ms"]):
            self._last_retention_ms = now_ms
            self._logs.run_retention(now_ms)
        if now_ms >= self._next_cleaner_ms:
            self._next_cleaner_ms = now_ms + int(self.config["log.cleaner.backoff.ms"])
            self._logs.run_cleaner(now_ms)
        return True

    def _tick_transactions_locked(self, now_ms: int) -> None:
        """Abort timed-out transactions; retry markers whose writing failed before."""
        work = self.txn_coordinator.tick(now_ms)
        self._persist_txn_records_locked()
        seen = {w.transactional_id for w in work}
        work.extend(w for w in self.txn_coordinator.pending_markers() if w.transactional_id not in seen)
        for w in work:
            try:
                self._write_markers_locked(w)
            except Exception:  # storage trouble: the work stays pending, retried next tick
                log.exception("writing markers of transactional id %r failed", w.transactional_id)

    def __repr__(self) -> str:
        return f"Broker({self.data_dir!r})"


__all__ = ["Broker", "InvalidProducerEpochError"]
