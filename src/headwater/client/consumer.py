"""Consumer shaped like confluent_kafka.Consumer, reading straight from the broker's logs.

    c = broker.consumer({"group.id": "billing", "auto.offset.reset": "earliest"})
    c.subscribe(["orders"])
    while True:
        msg = c.poll(1.0)

Group membership runs through the broker's GroupCoordinator with the classic protocol, exactly
as a wire client would: JoinGroup (the leader runs the assignor named by
`partition.assignment.strategy`), SyncGroup, Heartbeat every `heartbeat.interval.ms`, and
LeaveGroup on close (dynamic members). poll()/consume() drive it, so membership makes progress
only while the application polls, and a member that stops polling for `session.timeout.ms`
is removed, as in Kafka. Eager assignors (range, roundrobin) revoke everything before a
rebalance; cooperative-sticky revokes only what moves (KIP-429).

Positions start at the committed offset, else at `auto.offset.reset` (latest by default, as in
Kafka; "latest" and OFFSET_END mean the last stable offset under read_committed, as Kafka's
ListOffsets with that isolation level).

`isolation.level` (default `read_committed`, as librdkafka): read_committed reads only below
the partition's last stable offset and drops the records of aborted transactions, found as
Kafka's consumer does from the aborted-transaction ranges of each read (kafka-spec.md d.4);
read_uncommitted reads up to the high watermark and delivers them. Control records (transaction
markers) are never delivered at either level; positions step past them. `enable.auto.commit` commits the positions every `auto.commit.interval.ms` and before a
rebalance or close. `consume_batch()` returns columns (int64 offsets/timestamps and key/value
positions over the segment view) instead of Message objects.

Thread-safety: every method takes the consumer's lock; callbacks (on_assign, on_revoke,
on_commit) run in the polling thread.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from headwater._native._native import (
    ConsumerCore,
    FastRLock,
    decode_columns,
    decode_messages,
)
from headwater._native._native import (
    committed_runs as _committed_runs,
)
from headwater.client.admin import ClusterMetadata, cluster_metadata
from headwater.client.message import (
    OFFSET_BEGINNING,
    OFFSET_END,
    OFFSET_INVALID,
    OFFSET_STORED,
    TIMESTAMP_LOG_APPEND_TIME,
    ConsumerGroupMetadata,
    KafkaError,
    KafkaException,
    Message,
    TopicPartition,
)
from headwater.config import config_flag
from headwater.coordinator.group import (
    CommitOffset,
    LeaveMember,
    Subscription,
)
from headwater.coordinator.group import TopicPartition as GroupTP
from headwater.coordinator.group.assignors import get_assignor
from headwater.coordinator.group.errors import (
    FencedInstanceIdError,
    IllegalGenerationError,
    RebalanceInProgressError,
    UnknownMemberIdError,
)
from headwater.coordinator.group.protocol import (
    decode_assignment,
    decode_subscription,
    encode_assignment,
    encode_subscription,
)
from headwater.errors import (
    ConfigError,
    ConflictError,
    InvalidArgumentError,
    KafkaApiError,
    NoOffsetError,
    OffsetOutOfRangeError,
    StateError,
)
from headwater.log.partition_log import (
    LATEST_TIMESTAMP,
    READ_COMMITTED,
    READ_UNCOMMITTED,
    _decompress_section,
)
from headwater.log.producer_state import parse_end_txn_marker

if TYPE_CHECKING:
    from headwater.client.broker import Broker

CONSUMER_DEFAULTS: dict[str, Any] = {
    "group.id": None,
    "client.id": "headwater",
    "group.instance.id": None,
    "auto.offset.reset": "latest",
    "enable.auto.commit": True,
    "auto.commit.interval.ms": 5000,
    "enable.auto.offset.store": True,
    "session.timeout.ms": 45000,
    "heartbeat.interval.ms": 3000,
    "max.poll.interval.ms": 300000,
    "partition.assignment.strategy": "range,roundrobin",
    "isolation.level": "read_committed",
    "fetch.max.bytes": 52428800,
    "max.partition.fetch.bytes": 1048576,
    "fetch.wait.max.ms": 500,
    "enable.partition.eof": False,
    "on_commit": None,
    "check.crcs": False,
    # How often a subscribed member compares the partition counts (and pattern matches) of its
    # topics with those of its last join. librdkafka's default is 300000; the lookup here is
    # in-process and cheap, so headwater checks every second.
    "topic.metadata.refresh.interval.ms": 1000,
}
_IGNORED = {
    "bootstrap.servers", "security.protocol", "error_cb", "logger", "debug", "stats_cb",
    "statistics.interval.ms", "api.version.request", "socket.timeout.ms", "fetch.min.bytes",
    "allow.auto.create.topics", "session.timeout.ms.min",
}
_ISOLATION = {"read_committed": READ_COMMITTED, "read_uncommitted": READ_UNCOMMITTED}
_RESET = {"earliest": "earliest", "smallest": "earliest", "beginning": "earliest", "latest": "latest", "largest": "latest", "end": "latest", "error": "error"}


def _now_ms() -> int:
    return int(time.time() * 1000)


class ColumnBatch:
    """consume_batch() result for one partition: columns over the read view."""

    __slots__ = ("topic", "partition", "columns", "_result")

    def __init__(self, topic: str, partition: int, columns: Any, result: Any) -> None:
        self.topic = topic
        self.partition = partition
        self.columns = columns
        self._result = result

    def __len__(self) -> int:
        return len(self.columns)

    def release(self) -> None:
        """Drop the view into the segment (the columns' values become invalid)."""
        self.columns = None
        if self._result is not None:
            self._result.release()
            self._result = None


class Consumer(ConsumerCore):
    """Embedded consumer; create with broker.consumer(config).

    _take_ready() and the single-partition tail read are ConsumerCore's (C); the rest is here.
    """

    def __init__(self, broker: Broker, config: Mapping[str, Any] | None = None) -> None:
        cfg = dict(CONSUMER_DEFAULTS)
        for name, value in (config or {}).items():
            if name in cfg:
                cfg[name] = value
            elif name not in _IGNORED:
                raise ConfigError(f"unknown consumer config {name!r}")
        if str(cfg["auto.offset.reset"]) not in _RESET:
            raise ConfigError(f"auto.offset.reset must be one of {sorted(_RESET)}")
        if str(cfg["isolation.level"]) not in _ISOLATION:
            raise ConfigError(f"isolation.level must be one of {sorted(_ISOLATION)}")
        self.config = cfg
        self._isolation = _ISOLATION[str(cfg["isolation.level"])]
        self._broker = broker
        self._lock = FastRLock()
        self._group = cfg["group.id"]
        self._instance_id = cfg["group.instance.id"]
        self._reset = _RESET[str(cfg["auto.offset.reset"])]
        self._auto_commit = config_flag("enable.auto.commit", cfg["enable.auto.commit"]) and self._group is not None
        # enable.auto.offset.store (librdkafka's): what a commit without offsets (and
        # auto-commit) stores is each partition's position after the last message returned
        # (_consumed), or with it off only what store_offsets() stored (_stored).
        self._auto_store = config_flag("enable.auto.offset.store", cfg["enable.auto.offset.store"])
        self._stored: dict[tuple[str, int], int] = {}
        self._auto_commit_s = int(cfg["auto.commit.interval.ms"]) / 1000.0
        self._next_auto_commit = time.monotonic() + self._auto_commit_s
        self._max_partition_bytes = int(cfg["max.partition.fetch.bytes"])
        # librdkafka's check.crcs (default false, as confluent-kafka): verify each batch's
        # CRC-32C when reading. Record structure is always bounds-checked either way.
        self._check_crcs = config_flag("check.crcs", cfg["check.crcs"])
        self._eof = config_flag("enable.partition.eof", cfg["enable.partition.eof"])
        self._on_commit: Callable[..., Any] | None = cfg["on_commit"]
        self._strategies = [s.strip() for s in str(cfg["partition.assignment.strategy"]).split(",") if s.strip()]
        for s in self._strategies:
            try:
                get_assignor(s)
            except KeyError:
                raise ConfigError(f"unknown partition.assignment.strategy {s!r}") from None
        # Assignment state: (topic, partition) -> next offset to fetch (None: not yet known).
        self._positions: dict[tuple[str, int], int | None] = {}
        # The offsets assign() was given, as assignment() reports them (librdkafka's: an
        # unset one, and every partition the group hands out, as OFFSET_STORED).
        self._assigned_offsets: dict[tuple[str, int], int] = {}
        self._handed_out: set[tuple[str, int]] = set()  # during on_assign: see incremental_assign
        # Offset after the last message poll()/consume() returned, per partition: what
        # position() reports and what commits store (records fetched into the buffer but
        # not yet returned are not consumed).
        self._consumed: dict[tuple[str, int], int] = {}
        self._paused: set[tuple[str, int]] = set()
        self._eof_sent: set[tuple[str, int]] = set()
        # Fetched, not yet returned; a list so consume() takes a slice in one C call.
        self._buffer: list[Message] = []
        self._fill_next = 0  # index in self._positions of the partition the next fill reads first
        self._closed = False
        # Group membership.
        self._subscription: list[str] = []
        self._patterns: list[str] = []
        self._on_assign: Callable[..., Any] | None = None
        self._on_revoke: Callable[..., Any] | None = None
        self._subscribed = False
        self._member_id = ""
        self._generation = -1
        self._protocol: str | None = None
        self._join: Any = None
        self._sync: Any = None
        self._needs_join = False
        self._next_heartbeat = 0.0
        self._is_leader = False
        self._joined_metadata: dict[str, int] = {}
        self._metadata_interval_s = int(cfg["topic.metadata.refresh.interval.ms"]) / 1000.0
        self._next_metadata_check = 0.0
        broker._register_consumer(self)

    # ------------------------------------------------------------------ subscription

    def subscribe(self, topics: Sequence[str], on_assign: Callable[..., Any] | None = None, on_revoke: Callable[..., Any] | None = None, on_lost: Callable[..., Any] | None = None) -> None:
        """Join the consumer group for `topics` (names, or regex patterns starting with ^)."""
        if self._group is None:
            raise ConfigError("subscribe() needs group.id")
        if isinstance(topics, str):
            raise TypeError("subscribe() takes a list of topics")
        with self._lock:
            self._check_open()
            self._patterns = [t for t in topics if t.startswith("^")]
            self._subscription = [t for t in topics if not t.startswith("^")]
            for t in self._subscription:
                self._broker._partition_count(t, create=True)
            self._on_assign, self._on_revoke = on_assign, on_revoke or on_lost
            self._subscribed = True
            self._needs_join = True

    def unsubscribe(self) -> None:
        with self._lock:
            if self._subscribed:
                self._revoke_all()
                self._leave_group()
            self._subscribed = False
            self._subscription = []
            self._patterns = []

    def assign(self, partitions: Sequence[TopicPartition]) -> None:
        """Read these partitions directly, outside group management."""
        with self._lock:
            self._check_open()
            self._positions = {}
            self._consumed = {}
            self._stored = {}
            self._buffer.clear()
            self._assigned_offsets = {}
            for tp in partitions:
                self._broker.get_log(tp.topic, tp.partition)  # validates
                self._positions[(tp.topic, tp.partition)] = self._initial_position(tp)
                self._assigned_offsets[(tp.topic, tp.partition)] = OFFSET_STORED if tp.offset == OFFSET_INVALID else tp.offset

    def unassign(self) -> None:
        with self._lock:
            self._positions = {}
            self._assigned_offsets = {}
            self._buffer.clear()

    def assignment(self) -> list[TopicPartition]:
        with self._lock:
            offsets = self._assigned_offsets
            return [TopicPartition(t, p, offsets.get((t, p), OFFSET_STORED)) for (t, p) in sorted(self._positions)]

    def _topics(self) -> list[str]:
        topics = set(self._subscription)
        for pattern in self._patterns:
            topics.update(self._broker.topics_matching(pattern))
        return sorted(topics)

    # ------------------------------------------------------------------ group driving

    def _drive_group(self) -> None:
        if not self._subscribed:
            return
        now = time.monotonic()
        b = self._broker
        if self._join is None and self._sync is None and self._needs_join:
            self._start_join()
            return
        if self._join is not None and self._join.done():
            pending, self._join = self._join, None
            error = pending.exception()
            if error is not None:
                self._on_group_error(error)
                return
            result = pending.result()
            self._member_id = result.member_id
            self._generation = result.generation_id
            self._protocol = result.protocol_name
            self._is_leader = result.leader_id == result.member_id
            assignments = None
            if result.leader_id == result.member_id and not result.skip_assignment:
                assignments = self._assign_as_leader(result)
            self._sync = b._group_call(
                b.group_coordinator.sync_group, self._group, member_id=self._member_id,
                generation_id=self._generation, group_instance_id=self._instance_id,
                protocol_type="consumer", protocol_name=self._protocol,
                assignments=assignments, now_ms=_now_ms(),
            )
        if self._sync is not None and self._sync.done():
            pending, self._sync = self._sync, None
            error = pending.exception()
            if error is not None:
                self._on_group_error(error)
                return
            assigned = decode_assignment(pending.result().assignment).partitions
            self._install_assignment({(tp.topic, tp.partition) for tp in assigned})
            self._next_heartbeat = now + int(self.config["heartbeat.interval.ms"]) / 1000.0
        if self._join is None and self._sync is None and not self._needs_join:
            self._check_metadata()
        if self._join is None and self._sync is None and not self._needs_join and now >= self._next_heartbeat:
            self._next_heartbeat = now + int(self.config["heartbeat.interval.ms"]) / 1000.0
            try:
                b._group_call(
                    b.group_coordinator.heartbeat, self._group, member_id=self._member_id,
                    generation_id=self._generation, group_instance_id=self._instance_id, now_ms=_now_ms(),
                )
            except KafkaApiError as exc:
                self._on_group_error(exc)

    def _metadata_snapshot(self) -> dict[str, int]:
        out = {}
        for t in self._topics():
            n = self._broker._partition_count_or_none(t)
            if n:
                out[t] = n
        return out

    def _check_metadata(self) -> None:
        """Rejoin when subscribed topics changed: the leader for new partitions (its rejoin
        starts a rebalance, as in Kafka), any member when its pattern matches new topics."""
        now = time.monotonic()
        if now < self._next_metadata_check:
            return
        self._next_metadata_check = now + self._metadata_interval_s
        snapshot = self._metadata_snapshot()
        if snapshot == self._joined_metadata:
            return
        if self._is_leader or set(snapshot) != set(self._joined_metadata):
            self._needs_join = True

    def _start_join(self) -> None:
        b = self._broker
        topics = self._topics()
        self._joined_metadata = self._metadata_snapshot()
        owned = tuple(GroupTP(t, p) for (t, p) in sorted(self._positions))
        protocols = []
        for name in self._strategies:
            assignor = get_assignor(name)
            sub = Subscription(tuple(topics), assignor.subscription_user_data(self._generation), owned, self._generation, None, self._instance_id)
            protocols.append((name, encode_subscription(sub)))
        if not self._cooperative():
            self._revoke_all()
        self._needs_join = False
        self._join = b._group_call(
            b.group_coordinator.join_group, self._group, member_id=self._member_id,
            group_instance_id=self._instance_id, client_id=str(self.config["client.id"]),
            client_host="embedded", session_timeout_ms=int(self.config["session.timeout.ms"]),
            rebalance_timeout_ms=int(self.config["max.poll.interval.ms"]),
            protocol_type="consumer", protocols=protocols, now_ms=_now_ms(),
        )

    def _cooperative(self) -> bool:
        name = self._protocol or (self._strategies[0] if self._strategies else "")
        return name.startswith("cooperative")

    def _assign_as_leader(self, result: Any) -> dict[str, bytes]:
        assignor = get_assignor(result.protocol_name)
        subs = {m.member_id: decode_subscription(m.metadata, m.group_instance_id) for m in result.members}
        topics = sorted({t for s in subs.values() for t in s.topics})
        counts = {}
        for t in topics:
            n = self._broker._partition_count_or_none(t)
            if n:
                counts[t] = n
        out = assignor.assign(counts, subs)
        return {member: encode_assignment(a) for member, a in out.items()}

    def _install_assignment(self, assigned: set[tuple[str, int]]) -> None:
        owned = set(self._positions)
        revoked = owned - assigned
        added = assigned - owned
        if revoked:
            self._commit_positions(list(revoked))
            if self._on_revoke is not None:
                # Positions are still there: the callback may commit them itself.
                self._on_revoke(self, [TopicPartition(t, p) for (t, p) in sorted(revoked)])
            for tp in revoked:
                self._positions.pop(tp, None)
                self._consumed.pop(tp, None)
                self._stored.pop(tp, None)
            self._buffer = [m for m in self._buffer if (m.topic(), m.partition()) in assigned]
        for tp in added:
            self._positions[tp] = None
            self._assigned_offsets.pop(tp, None)
        if self._on_assign is not None and (added or not self._cooperative()):
            parts = [TopicPartition(t, p) for (t, p) in sorted(added if self._cooperative() else assigned)]
            # The partitions are assigned already; an incremental_assign() of them from the
            # callback (confluent-kafka's cooperative pattern, to set where each starts) sets
            # their offsets instead of conflicting.
            self._handed_out = {(tp.topic, tp.partition) for tp in parts}
            try:
                self._on_assign(self, parts)
            finally:
                self._handed_out = set()
        if revoked and self._cooperative():
            self._needs_join = True  # KIP-429: a second round hands the revoked partitions out

    def _revoke_all(self) -> None:
        if not self._positions:
            return
        self._commit_positions(list(self._positions))
        parts = [TopicPartition(t, p) for (t, p) in sorted(self._positions)]
        if self._on_revoke is not None:
            self._on_revoke(self, parts)
        self._positions = {}
        self._consumed = {}
        self._stored = {}
        self._buffer.clear()

    def _on_group_error(self, error: BaseException) -> None:
        if isinstance(error, (UnknownMemberIdError, IllegalGenerationError)):
            self._member_id = "" if isinstance(error, UnknownMemberIdError) else self._member_id
            self._generation = -1
            self._needs_join = True
        elif isinstance(error, RebalanceInProgressError):
            self._needs_join = True
        elif isinstance(error, FencedInstanceIdError):
            raise error
        else:
            self._needs_join = True

    def _leave_group(self) -> None:
        if self._group is None or not self._member_id or self._instance_id is not None:
            self._member_id = ""
            return
        b = self._broker
        try:
            b._group_call(b.group_coordinator.leave_group, self._group, [LeaveMember(self._member_id)], now_ms=_now_ms())
        except KafkaApiError:
            pass  # leaving a group we were already removed from
        self._member_id = ""
        self._generation = -1

    # ------------------------------------------------------------------ positions

    def _initial_position(self, tp: TopicPartition) -> int | None:
        if tp.offset == OFFSET_BEGINNING:
            return self._broker.get_log(tp.topic, tp.partition).log_start_offset
        if tp.offset == OFFSET_END:
            return self._end_offset(self._broker.get_log(tp.topic, tp.partition))
        if tp.offset >= 0:
            return tp.offset
        return None  # OFFSET_STORED / OFFSET_INVALID: committed, else auto.offset.reset

    def _resolve_position(self, key: tuple[str, int]) -> int:
        plog = self._broker.get_log(*key)
        if self._group is not None:
            committed = self._broker.group_coordinator.fetch_offsets(self._group, [GroupTP(*key)])
            off = next(iter(committed.values())).offset
            if off >= 0:
                return min(max(off, plog.log_start_offset), plog.log_end_offset)
        return self._reset_position(key)

    def _reset_position(self, key: tuple[str, int]) -> int:
        plog = self._broker.get_log(*key)
        if self._reset == "earliest":
            return plog.log_start_offset
        if self._reset == "latest":
            return self._end_offset(plog)
        raise OffsetOutOfRangeError(f"no committed offset for {key[0]}-{key[1]} and auto.offset.reset=error")

    def _end_offset(self, plog: Any) -> int:
        """Where "latest" is: the last stable offset under read_committed (Kafka's ListOffsets
        -1 with that isolation level, PartitionLog.list_offset), else the log end offset."""
        return int(plog.list_offset(LATEST_TIMESTAMP, self._isolation == READ_COMMITTED)[0])

    # ------------------------------------------------------------------ fetch

    def poll(self, timeout: float | None = None) -> Message | None:
        """The next message, or None when `timeout` (seconds; None/-1: forever) passes."""
        msgs = self.consume(1, timeout if timeout is not None else -1)
        return msgs[0] if msgs else None

    def consume(self, num_messages: int = 1, timeout: float = -1) -> list[Message]:
        """Up to num_messages (0 to 1,000,000, as librdkafka) messages, waiting up to `timeout`
        seconds for the first."""
        if not 0 <= num_messages <= 1_000_000:
            raise ValueError("num_messages must be between 0 and 1000000 (1M)")
        if num_messages == 0:
            return []
        deadline = None if timeout is None or timeout < 0 else time.monotonic() + timeout
        while True:
            seen = self._broker._signal.seq
            out = self._take_ready(num_messages)
            if out:
                return out
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                return out
            self._broker._wait_for_data(0.05 if remaining is None else min(remaining, 0.05), seen)

    # _take_ready(want) is ConsumerCore._take_ready (C): one consume() pass without its wait
    # (the asyncio face waits on its loop).

    def _fill(self, want: int) -> bool:
        """Read assigned partitions into the buffer, each once at most, starting after the one
        the last fill stopped at, until the buffer holds `want` messages; True if a position
        advanced. Over successive fills the partitions take turns in the same order as reading
        all of them every time, but only what is asked for is built: a read of every partition
        made ~70,000 Messages at once for a consume(10000), and allocating that many live
        objects (fresh pages each time) cost more than building them."""
        advanced = False
        keys = list(self._positions)
        n = len(keys)
        start = self._fill_next
        for i in range(n):
            key = keys[(start + i) % n]
            if key in self._paused:
                continue
            if self._fill_one(key):
                advanced = True
            if len(self._buffer) >= want:
                self._fill_next = (start + i + 1) % n
                break
        return advanced

    def _fill_one(self, key: tuple[str, int]) -> bool:
        """Read one partition into the buffer; True if its position advanced."""
        pos = self._positions[key]
        if pos is None:
            pos = self._positions[key] = self._resolve_position(key)
        plog = self._broker.get_log(*key)
        topic, partition = key
        fast = plog.read_messages(pos, self._max_partition_bytes, topic, partition, verify_crc=self._check_crcs, isolation_level=self._isolation)
        if fast is not None:
            # The common read (see PartitionLog.read_messages): Messages without a view.
            msgs, next_offset = fast
            if next_offset >= 0:
                if msgs:
                    self._buffer.extend(msgs)
                # Past control batches too: the next fetch starts after the last batch read.
                self._positions[key] = max(next_offset, msgs[-1].offset() + 1 if msgs else pos)
                self._eof_sent.discard(key)
                return True
            self._partition_eof(key, pos)
            return False
        try:
            result = plog.read(pos, self._max_partition_bytes, verify_crc=self._check_crcs, isolation_level=self._isolation)
        except OffsetOutOfRangeError:
            self._positions[key] = self._reset_position(key)
            return False
        with result:
            last = pos - 1
            if result.view is not None:
                if result.aborted_transactions:
                    msgs = []
                    view = result.view
                    for a, b in committed_runs(view, result.aborted_transactions):
                        sub = view[a:b]
                        msgs += decode_messages(sub, pos, topic, partition, _decompress_section)
                        sub.release()
                else:
                    msgs = decode_messages(result.view, pos, topic, partition, _decompress_section)
                if msgs:
                    last = msgs[-1].offset()
                    self._buffer.extend(msgs)
            if result.nbytes:
                # Skip past control batches and gaps too: the next fetch starts after the
                # last batch returned.
                self._positions[key] = _position_after(result, last)
                self._eof_sent.discard(key)
                return True
            self._partition_eof(key, pos)
        return False

    def _partition_eof(self, key: tuple[str, int], pos: int) -> None:
        """Nothing more to read at `pos`: the _PARTITION_EOF event, once per catch-up, if
        enable.partition.eof asked for it."""
        if self._eof and key not in self._eof_sent:
            self._eof_sent.add(key)
            self._buffer.append(Message(key[0], key[1], pos, None, None, error=KafkaError(KafkaError._PARTITION_EOF, "end of partition")))

    def consume_batch(self, max_records: int = 1_000_000, timeout: float = 0) -> list[ColumnBatch]:
        """Columnar reads of every assigned partition (up to max.partition.fetch.bytes each):
        one ColumnBatch per partition with data. Positions advance past what is returned."""
        deadline = time.monotonic() + max(timeout, 0)
        while True:
            out: list[ColumnBatch] = []
            advanced = False
            seen = self._broker._signal.seq
            with self._lock:
                self._check_open()
                self._drive_group()
                self._maybe_auto_commit()
                budget = max_records
                for key, pos in list(self._positions.items()):
                    if key in self._paused or budget <= 0:
                        continue
                    if pos is None:
                        pos = self._positions[key] = self._resolve_position(key)
                    try:
                        result = self._broker.get_log(*key).read(
                            pos, self._max_partition_bytes, verify_crc=self._check_crcs, isolation_level=self._isolation
                        )
                    except OffsetOutOfRangeError:
                        self._positions[key] = self._reset_position(key)
                        continue
                    if not result.nbytes:
                        result.release()
                        continue
                    self._positions[key] = _position_after(result, pos - 1)
                    advanced = True
                    if result.aborted_transactions:
                        # The delivered batches only, decoded in one pass over the whole view.
                        runs = committed_runs(result.view, result.aborted_transactions)
                        cols = decode_columns(result.view, pos, _decompress_section, runs)
                        if not len(cols):
                            result.release()
                            continue
                    else:
                        cols = result.columns()
                    budget -= len(cols)
                    out.append(ColumnBatch(key[0], key[1], cols, result))
            if out:
                return out
            if advanced:
                continue  # only markers or aborted batches were read: read on at once
            if time.monotonic() >= deadline:
                return out
            self._broker._wait_for_data(min(0.05, max(0.0, deadline - time.monotonic())), seen)

    # ------------------------------------------------------------------ commits

    def _maybe_auto_commit(self) -> None:
        if self._auto_commit and time.monotonic() >= self._next_auto_commit:
            self._next_auto_commit = time.monotonic() + self._auto_commit_s
            self._commit_positions(list(self._positions))

    def _commit_positions(self, keys: list[tuple[str, int]]) -> None:
        if not self._auto_commit:
            return
        stored = self._consumed if self._auto_store else self._stored
        offsets = {GroupTP(*k): CommitOffset(stored[k]) for k in keys if k in stored}
        if offsets:
            try:
                self._commit(offsets)
            except KafkaApiError:
                pass  # a failed auto commit is retried at the next interval, as in librdkafka

    def _commit(self, offsets: Mapping[GroupTP, CommitOffset]) -> list[TopicPartition]:
        b = self._broker
        if self._subscribed and self._generation >= 0:
            gen, member = self._generation, self._member_id
        else:
            gen, member = -1, ""
        errors = b._group_call(
            b.group_coordinator.commit_offsets, self._group, offsets, generation_id=gen,
            member_id=member, group_instance_id=self._instance_id if gen >= 0 else None, now_ms=_now_ms(),
        )
        out = []
        first_error = None
        for gtp, co in offsets.items():
            tp = TopicPartition(gtp.topic, gtp.partition, co.offset)
            err = errors.get(gtp)
            if err is not None:
                tp.error = KafkaError.from_exception(err)
                first_error = first_error or err
            out.append(tp)
        if self._on_commit is not None:
            self._on_commit(KafkaError.from_exception(first_error) if first_error else None, out)
        if first_error is not None:
            raise first_error
        return out

    def commit(self, message: Message | None = None, offsets: Sequence[TopicPartition] | None = None, asynchronous: bool = True) -> list[TopicPartition] | None:
        """Commit `message`'s offset + 1, explicit `offsets`, or the current positions."""
        if self._group is None:
            raise ConfigError("commit() needs group.id")
        with self._lock:
            self._check_open()
            if message is not None:
                todo = {GroupTP(message.topic(), message.partition()): CommitOffset(message.offset() + 1)}  # type: ignore[arg-type]
            elif offsets is not None:
                todo = {GroupTP(tp.topic, tp.partition): CommitOffset(tp.offset, metadata=tp.metadata or "") for tp in offsets}
            else:
                stored = self._consumed if self._auto_store else self._stored
                todo = {GroupTP(*k): CommitOffset(v) for k, v in stored.items() if k in self._positions}
            if not todo:
                raise NoOffsetError("Commit failed: no offset stored")
            result = self._commit(todo)
        return None if asynchronous else result

    def store_offsets(self, message: Message | None = None, offsets: Sequence[TopicPartition] | None = None) -> None:
        """Store `message`'s offset + 1, or each of `offsets`, for the next commit() without
        offsets (and auto-commit) of its partition: at-least-once processing with
        enable.auto.offset.store=false, as in librdkafka.

        Raises:
            KafkaException: _INVALID_ARG with enable.auto.offset.store=true; _STATE for a
                partition that is not assigned (nothing is stored then).
            ValueError: neither message nor offsets.
        """
        if message is None and offsets is None:
            raise ValueError("expected either message or offsets")
        if self._auto_store:
            raise InvalidArgumentError("store_offsets() needs enable.auto.offset.store=false")
        if message is not None:
            todo = {(message.topic(), message.partition()): message.offset() + 1}
        else:
            todo = {(tp.topic, tp.partition): int(tp.offset) for tp in offsets or ()}
        with self._lock:
            self._check_open()
            for key in todo:
                if key not in self._positions:
                    raise StateError(f"cannot store an offset for {key[0]}-{key[1]}: not assigned")
            self._stored.update(todo)

    def incremental_assign(self, partitions: Sequence[TopicPartition]) -> None:
        """Add partitions to the current assignment (read from each one's offset, as
        assign()); the others keep their positions. _CONFLICT if one is assigned already,
        except, from an on_assign callback, the partitions it was handed: their offsets are
        set."""
        with self._lock:
            self._check_open()
            keys = [(tp.topic, tp.partition) for tp in partitions]
            taken = [k for k in keys if k in self._positions and k not in self._handed_out]
            if taken or len(set(keys)) != len(keys):
                raise ConflictError(f"incremental_assign: {taken or keys} already assigned")
            for tp in partitions:
                self._broker.get_log(tp.topic, tp.partition)  # validates
            for tp in partitions:
                key = (tp.topic, tp.partition)
                self._positions[key] = self._initial_position(tp)
                self._assigned_offsets[key] = OFFSET_STORED if tp.offset == OFFSET_INVALID else tp.offset

    def incremental_unassign(self, partitions: Sequence[TopicPartition]) -> None:
        """Remove partitions from the current assignment; buffered records of them are
        dropped, and nothing is committed for them."""
        with self._lock:
            self._check_open()
            gone = {(tp.topic, tp.partition) for tp in partitions}
            for key in gone:
                self._positions.pop(key, None)
                self._assigned_offsets.pop(key, None)
                self._consumed.pop(key, None)
                self._stored.pop(key, None)
            self._buffer = [m for m in self._buffer if (m.topic(), m.partition()) not in gone]

    def cluster_id(self, timeout: float | None = None) -> str:
        return str(self._broker.cluster_id)

    def committed(self, partitions: Sequence[TopicPartition], timeout: float | None = None) -> list[TopicPartition]:
        self._check_open()
        if self._group is None:
            raise ConfigError("committed() needs group.id")
        with self._lock:
            got = self._broker.group_coordinator.fetch_offsets(self._group, [GroupTP(tp.topic, tp.partition) for tp in partitions])
        out = []
        for tp in partitions:
            o = got[GroupTP(tp.topic, tp.partition)]
            t = TopicPartition(tp.topic, tp.partition, o.offset if o.offset >= 0 else OFFSET_INVALID, o.metadata or None)
            out.append(t)
        return out

    def consumer_group_metadata(self) -> ConsumerGroupMetadata:
        """The group identity for Producer.send_offsets_to_transaction (confluent-kafka's
        consumer_group_metadata()): the broker fences a commit from an older generation."""
        if self._group is None:
            raise KafkaException(KafkaError(-186, "consumer_group_metadata() needs group.id"))
        with self._lock:
            subscribed = self._subscribed
            return ConsumerGroupMetadata(
                self._group,
                self._generation if subscribed else -1,
                self._member_id if subscribed else "",
                self._instance_id,
            )

    def position(self, partitions: Sequence[TopicPartition]) -> list[TopicPartition]:
        with self._lock:
            self._check_open()
            out = []
            for tp in partitions:
                key = (tp.topic, tp.partition)
                # The offset of the next message the application gets: after the last one it
                # got, else the first one read ahead into the buffer, else the fetch position.
                # (The fetch position alone runs ahead of what was delivered: committing it, as
                # send_offsets_to_transaction(position(...)) does, would skip those records.)
                pos = self._consumed.get(key)
                if pos is None:
                    pos = next((m.offset() for m in self._buffer if m.partition() == tp.partition and m.topic() == tp.topic), None)
                    if pos is None:
                        pos = self._positions.get(key)
                out.append(TopicPartition(tp.topic, tp.partition, OFFSET_INVALID if pos is None else pos))
            return out

    def seek(self, partition: TopicPartition) -> None:
        key = (partition.topic, partition.partition)
        with self._lock:
            self._check_open()
            if key not in self._positions:
                raise StateError(f"Failed to seek to offset {partition.offset}: {key[0]}-{key[1]} is not assigned")
            self._positions[key] = self._initial_position(partition) if partition.offset < 0 and partition.offset != OFFSET_STORED else (partition.offset if partition.offset >= 0 else None)
            self._buffer = [m for m in self._buffer if (m.topic(), m.partition()) != key]
            self._consumed.pop(key, None)

    def pause(self, partitions: Sequence[TopicPartition]) -> None:
        with self._lock:
            self._check_open()
            for tp in partitions:
                key = (tp.topic, tp.partition)
                self._paused.add(key)
            # Buffered messages of a paused partition are dropped and fetched again after
            # resume(): rewind its position to the first one dropped.
            keep: list[Message] = []
            for m in self._buffer:
                key = (m.topic(), m.partition())
                if key in self._paused:
                    pos = self._positions.get(key)
                    if pos is None or m.offset() < pos:
                        self._positions[key] = m.offset()  # type: ignore[index]
                else:
                    keep.append(m)
            self._buffer = keep

    def resume(self, partitions: Sequence[TopicPartition]) -> None:
        with self._lock:
            self._check_open()
            for tp in partitions:
                self._paused.discard((tp.topic, tp.partition))

    def _position_resolved(self, partition: TopicPartition) -> int:
        """position() of one assigned partition, its committed offset or auto.offset.reset
        resolved if the application got no record of it yet (aiokafka's position(), which
        waits for that); StateError if it is not assigned."""
        key = (partition.topic, partition.partition)
        pos = self.position([partition])[0].offset
        if pos >= 0:
            return pos
        with self._lock:
            if key not in self._positions:
                raise StateError(f"no current assignment for partition {key[0]}-{key[1]}")
            pos = self._positions[key]
            if pos is None:
                pos = self._positions[key] = self._resolve_position(key)
            return pos

    def _end_offsets(self, partitions: Sequence[TopicPartition]) -> dict[tuple[str, int], int]:
        """Where "latest" is per partition (the LSO under read_committed), as ListOffsets(-1)."""
        self._check_open()
        return {(tp.topic, tp.partition): self._end_offset(self._broker.get_log(tp.topic, tp.partition)) for tp in partitions}

    def get_watermark_offsets(self, partition: TopicPartition, timeout: float | None = None, cached: bool = False) -> tuple[int, int]:
        self._check_open()
        plog = self._broker.get_log(partition.topic, partition.partition)
        return plog.log_start_offset, plog.high_watermark

    def offsets_for_times(self, partitions: Sequence[TopicPartition], timeout: float | None = None) -> list[TopicPartition]:
        """For each partition, the first offset whose timestamp >= tp.offset (a ms timestamp),
        or -1 (OFFSET_END) when no record is that recent."""
        self._check_open()
        out = []
        for tp in partitions:
            found = self._broker.get_log(tp.topic, tp.partition).offset_for_timestamp(tp.offset)
            out.append(TopicPartition(tp.topic, tp.partition, found[0] if found else OFFSET_END))
        return out

    def list_topics(self, topic: str | None = None, timeout: float = -1) -> ClusterMetadata:
        """confluent-kafka's: the topics (internal ones too) and this broker (admin.py)."""
        return cluster_metadata(self._broker, topic)

    def memberid(self) -> str | None:
        return self._member_id or None

    # ------------------------------------------------------------------ close

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("consumer is closed")

    def close(self) -> None:
        """Revoke the group's partitions (auto commit, then on_revoke, as librdkafka's
        close() does), leave the group (dynamic members) and detach. An exception from
        on_revoke is raised once the consumer is closed."""
        try:
            with self._lock:
                if self._closed:
                    return
                try:
                    if self._subscribed:
                        try:
                            self._revoke_all()
                        finally:
                            self._leave_group()
                finally:
                    self._closed = True
                    self._positions = {}
                    self._buffer.clear()
        finally:
            # Outside the consumer's lock, as before; a no-op when already unregistered.
            self._broker._unregister_consumer(self)

    def __enter__(self) -> Consumer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def committed_runs(view: Any, aborted: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Position ranges [start, end) of `view` (whole batches of one read) holding the batches
    a read_committed consumer delivers (kafka-spec.md d.4); see _native.committed_runs, the C
    walk over the headers. Markers are decoded here, by the log's parser."""
    return _committed_runs(view, aborted, _marker_type)


def _marker_type(view: Any, header: Any) -> int | None:
    marker = parse_end_txn_marker(view, header)
    return None if marker is None else marker[0]


def _position_after(result: Any, last: int) -> int:
    """Where the next fetch starts after a non-empty read whose last delivered offset is
    `last`: past control batches and compaction gaps too, i.e. after the last batch read."""
    if result.next_offset > last:
        return int(result.next_offset)
    for header, view in result.batches():
        last = max(last, header.last_offset)
        view.release()
    return last + 1

__all__ = ["Consumer", "ColumnBatch", "TIMESTAMP_LOG_APPEND_TIME", "committed_runs"]
