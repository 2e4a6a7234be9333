"""Exactly-once into an external database: each batch's effects and its offsets, one transaction.

Kafka's exactly-once ends at Kafka: a consumer writing to a database is at-least-once, because
the database commit and the offset commit are two separate steps and a crash between them
repeats (or, committing offsets first, loses) the batch. `ExactlyOnceSink` closes the gap the
classic way: the consumed offsets live *in the database*, written by the same transaction as
the effects, and the consumer is positioned from them, never from the group's committed
offsets.

    store = SQLiteStore("billing.db")
    def apply(conn, messages):
        conn.executemany("INSERT INTO payments VALUES (?, ?)",
                         [(m.key(), m.value()) for m in messages])
    sink = ExactlyOnceSink(consumer, store, apply, topics=["payments"], group_id="billing")
    sink.run(timeout=60.0)

One transaction per batch (`consume(batch_size)`):

    BEGIN                                   store.begin()        (locks the offset rows)
    stored = SELECT offsets ...             store.read_offsets() (group_id, topic, partition)
      drop records below `stored`           already applied (a redelivery)
      drop records whose dedup key is seen  store.mark_seen()    (seen-store pattern, optional)
    apply(connection, records)              the user's side effects
    UPDATE offsets = last offset + 1        store.save_offsets() (compare-and-set on `stored`)
    COMMIT                                  store.commit()       (durable when it returns)

Crash anywhere before COMMIT: nothing of the batch is in the database and the restarted sink
seeks to the old offsets, so the batch is applied again, once. Crash after COMMIT: effects and
offsets are both there, so the restarted sink starts after the batch. Neither loses nor repeats.

Positioning. With `partitions=[...]` the sink assigns them at the stored offsets. With
`topics=[...]` it subscribes with its own on_assign/on_revoke/on_lost callbacks: on_assign
reads the stored offsets and repositions the newly assigned partitions there (assign() with
offsets for an eager protocol, incremental_assign() for a cooperative one on confluent-kafka,
seek() on the embedded consumer, whose assignment is already installed when on_assign runs);
on_revoke forgets partitions, whose records are then never applied. A partition with no stored
offset starts at `initial_offset` (OFFSET_BEGINNING: apply the whole partition).

Ownership is checked in the transaction too, so correctness does not rest on the group: the
sink remembers, per partition, the offset it last stored or read. If the database holds another
value, another instance (a new owner after a rebalance, or this one's zombie) committed in
between: the sink applies nothing of that partition in this transaction and seeks it to the
stored offset. Two sinks racing on one partition thus apply each record once, whoever wins.
Any failure inside the transaction rolls back and seeks the batch's partitions back to the
stored offsets, so a caller may catch the exception and keep running.

Requirements on the consumer (met by `headwater.Consumer` and `confluent_kafka.Consumer`):
subscribe(topics, on_assign=, on_revoke=, on_lost=) / assign / seek / consume / commit with
confluent-kafka's meanings, records of a partition in offset order, and no record fetched
before a seek() delivered after it returns (librdkafka discards them by op version; the
embedded consumer drops its buffer). Group commits after each database commit are best effort
(`commit_to_group`), so lag monitors see progress; nothing reads them back.

Seen-store (idempotent consumer). Offsets dedupe redeliveries of *one* record. A producer that
retries without idempotence, or an upstream job that re-emits, writes the same logical message
at a new offset; a dedup key in a header (`dedup_header`, default `headwater.dedup.key`) names
it. The sink checks and records each key with `store.mark_seen()` in the batch's transaction,
before `apply`, and hands `apply` only first-seen records. The seen table is bounded by count
(`seen_max_keys`) and age (`seen_retention_ms`): a duplicate older than the window is applied
again, the price of a bounded store. The same two calls serve any consumer loop:

    with store.transaction() as conn:
        if store.mark_seen([dedup_key(msg)], now_ms)[0]:
            conn.execute(...)

Thread-safety: a sink and its store belong to the thread that polls (confluent-kafka and the
embedded consumer call the rebalance callbacks from consume()/poll()).
"""

from __future__ import annotations

import abc
import logging
import re
import sqlite3
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from headwater.client.message import OFFSET_BEGINNING, KafkaError
from headwater.client.message import TopicPartition as HeadwaterTopicPartition
from headwater.errors import HeadwaterError

log = logging.getLogger(__name__)

#: The header carrying a record's dedup key (Kafka style: dotted, lower case, namespaced).
DEFAULT_DEDUP_HEADER = "headwater.dedup.key"
#: Default table names; both are created if missing.
DEFAULT_OFFSETS_TABLE = "headwater_consumer_offsets"
DEFAULT_SEEN_TABLE = "headwater_seen_keys"
#: Seen-store bounds: one million keys, seven days (Kafka's default log retention).
DEFAULT_SEEN_MAX_KEYS = 1_000_000
DEFAULT_SEEN_RETENTION_MS = 7 * 24 * 3600 * 1000

TopicPartitionKey = tuple[str, int]
ApplyFn = Callable[[Any, list[Any]], None]

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class SinkOffsetsError(HeadwaterError):
    """The offsets stored in the database are not what this sink's state allows.

    Raised when a stored offset moved backwards or disappeared while a sink ran (someone reset
    the table), or when a compare-and-set in save_offsets() found another value. The
    transaction is rolled back; applying on would repeat or skip records.
    """


class SinkApplyError(HeadwaterError):
    """The apply callback ended the database transaction itself (commit/rollback inside it)."""


def dedup_key(message: Any, header: str = DEFAULT_DEDUP_HEADER) -> bytes | None:
    """The value of `message`'s first `header` header, or None (no header, or a null value).

    Works on headwater and confluent-kafka messages: headers() is a list of (name, value).
    """
    headers = message.headers()
    if not headers:
        return None
    for name, value in headers:
        if name == header:
            if value is None:
                return None
            return value if isinstance(value, bytes) else bytes(value)
    return None


# --------------------------------------------------------------------------------- the store


class TransactionalStore(abc.ABC):
    """A database connection the sink drives one transaction at a time.

    A PostgreSQL adapter implements it with psycopg: begin() = BEGIN; read_offsets() =
    SELECT ... FOR UPDATE (the row locks serialize two sinks racing on a partition);
    save_offsets() = UPDATE ... WHERE committed_offset = expected (rowcount 1) or a plain
    INSERT for a row read as absent (a unique violation aborts the loser); mark_seen() =
    INSERT ... ON CONFLICT DO NOTHING RETURNING; commit()/rollback(). `connection` is what
    apply callbacks receive.

    Offsets follow Kafka's OffsetCommit meaning: the next offset to consume.
    """

    @property
    @abc.abstractmethod
    def connection(self) -> Any:
        """The DB-API connection the apply callback gets (already inside the transaction)."""

    @abc.abstractmethod
    def begin(self) -> None:
        """Start a write transaction."""

    @abc.abstractmethod
    def read_offsets(self, group_id: str, partitions: Iterable[TopicPartitionKey]) -> dict[TopicPartitionKey, int]:
        """Stored offsets of `partitions` under `group_id` (absent partitions are left out).

        Inside the transaction; the rows (or the database) stay locked against other writers
        until commit() or rollback().
        """

    def apply(self, fn: ApplyFn, records: list[Any]) -> None:
        """Run the user's side effects for `records` inside the transaction."""
        fn(self.connection, records)

    @abc.abstractmethod
    def save_offsets(self, group_id: str, offsets: Mapping[TopicPartitionKey, int], expected: Mapping[TopicPartitionKey, int | None]) -> None:
        """Store `offsets`; each row must still hold `expected` (None: no row).

        Raises:
            SinkOffsetsError: a row differs from `expected`.
        """

    @abc.abstractmethod
    def mark_seen(self, keys: Sequence[bytes], now_ms: int) -> list[bool]:
        """Record dedup `keys`; True for each key not seen before (nor earlier in `keys`)."""

    @abc.abstractmethod
    def prune_seen(self, now_ms: int) -> int:
        """Drop seen keys beyond the store's count and age bounds; returns how many."""

    @abc.abstractmethod
    def commit(self) -> None:
        """Commit; the transaction is durable when this returns."""

    @abc.abstractmethod
    def rollback(self) -> None:
        """Roll back (a no-op when no transaction is open)."""

    def close(self) -> None:
        """Close the connection."""
        self.connection.close()

    @contextmanager
    def transaction(self) -> Iterator[Any]:
        """`with store.transaction() as conn:` begin, then commit, or roll back on error."""
        self.begin()
        try:
            yield self.connection
        except BaseException:
            self.rollback()
            raise
        self.commit()

    def load_offsets(self, group_id: str, partitions: Iterable[TopicPartitionKey]) -> dict[TopicPartitionKey, int]:
        """read_offsets() in a transaction of its own."""
        self.begin()
        try:
            return self.read_offsets(group_id, partitions)
        finally:
            self.rollback()


class SQLiteStore(TransactionalStore):
    """TransactionalStore over stdlib sqlite3: WAL, synchronous=FULL, BEGIN IMMEDIATE.

    Schema (created if missing; names configurable):

        CREATE TABLE headwater_consumer_offsets (
            group_id         TEXT    NOT NULL,
            topic            TEXT    NOT NULL,
            partition        INTEGER NOT NULL,
            committed_offset INTEGER NOT NULL,  -- next offset to consume (OffsetCommit's meaning)
            updated_ms       INTEGER NOT NULL,  -- wall clock of the last commit, for operators
            PRIMARY KEY (group_id, topic, partition)
        ) WITHOUT ROWID;
        CREATE TABLE headwater_seen_keys (
            seq       INTEGER PRIMARY KEY AUTOINCREMENT,  -- insertion order, never reused
            dedup_key BLOB    NOT NULL UNIQUE,
            seen_ms   INTEGER NOT NULL
        );
        CREATE INDEX headwater_seen_keys_seen_ms ON headwater_seen_keys (seen_ms);

    Why these settings: WAL lets readers (reports, the tests) run beside the writer;
    synchronous=FULL fsyncs the WAL at every commit, so a committed transaction survives power
    loss, not only a process crash (NORMAL would only survive the latter). BEGIN IMMEDIATE
    takes the write lock before the offsets are read, so two processes sharing the file
    serialize whole transactions (the other waits up to `busy_timeout_ms`) instead of one
    failing with SQLITE_BUSY on its first write. The connection runs in autocommit mode
    (isolation_level=None) and the store issues BEGIN/COMMIT itself; an apply callback must
    not call commit() or use `with conn:` (SinkApplyError).

    Args:
        path: database file (":memory:" works for tests but keeps nothing).
        seen_max_keys: keep at most this many dedup keys (None: no count bound).
        seen_retention_ms: drop keys seen longer ago than this (None: no age bound).
        busy_timeout_ms: how long BEGIN IMMEDIATE waits for another writer.
        check_same_thread: sqlite3's check; pass False to open the store in one thread and
            run the sink in another (one thread at a time still).
    """

    def __init__(
        self,
        path: str | Any,
        *,
        seen_max_keys: int | None = DEFAULT_SEEN_MAX_KEYS,
        seen_retention_ms: int | None = DEFAULT_SEEN_RETENTION_MS,
        busy_timeout_ms: int = 30_000,
        check_same_thread: bool = True,
        offsets_table: str = DEFAULT_OFFSETS_TABLE,
        seen_table: str = DEFAULT_SEEN_TABLE,
    ) -> None:
        for name in (offsets_table, seen_table):
            if not _IDENTIFIER.match(name):
                raise ValueError(f"table name {name!r} is not a plain SQL identifier")
        if seen_max_keys is not None and seen_max_keys < 1:
            raise ValueError("seen_max_keys must be >= 1 or None")
        if seen_retention_ms is not None and seen_retention_ms < 0:
            raise ValueError("seen_retention_ms must be >= 0 or None")
        self.path = str(path)
        self.seen_max_keys = seen_max_keys
        self.seen_retention_ms = seen_retention_ms
        self._offsets = offsets_table
        self._seen = seen_table
        self._conn = sqlite3.connect(self.path, isolation_level=None, timeout=busy_timeout_ms / 1000.0, check_same_thread=check_same_thread)
        self._conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
        mode = self._conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if mode.lower() not in ("wal", "memory"):
            raise sqlite3.OperationalError(f"could not switch {self.path} to WAL (journal_mode={mode})")
        self._conn.execute("PRAGMA synchronous = FULL")
        self._create_schema()

    def _create_schema(self) -> None:
        c = self._conn
        c.execute("BEGIN IMMEDIATE")
        try:
            c.execute(
                f"CREATE TABLE IF NOT EXISTS {self._offsets} ("
                " group_id TEXT NOT NULL, topic TEXT NOT NULL, partition INTEGER NOT NULL,"
                " committed_offset INTEGER NOT NULL, updated_ms INTEGER NOT NULL,"
                " PRIMARY KEY (group_id, topic, partition)) WITHOUT ROWID"
            )
            c.execute(
                f"CREATE TABLE IF NOT EXISTS {self._seen} ("
                " seq INTEGER PRIMARY KEY AUTOINCREMENT, dedup_key BLOB NOT NULL UNIQUE,"
                " seen_ms INTEGER NOT NULL)"
            )
            c.execute(f"CREATE INDEX IF NOT EXISTS {self._seen}_seen_ms ON {self._seen} (seen_ms)")
        except BaseException:
            c.execute("ROLLBACK")
            raise
        c.execute("COMMIT")

    @property
    def connection(self) -> sqlite3.Connection:
        return self._conn

    def begin(self) -> None:
        self._conn.execute("BEGIN IMMEDIATE")

    def read_offsets(self, group_id: str, partitions: Iterable[TopicPartitionKey]) -> dict[TopicPartitionKey, int]:
        out: dict[TopicPartitionKey, int] = {}
        q = f"SELECT committed_offset FROM {self._offsets} WHERE group_id = ? AND topic = ? AND partition = ?"
        for topic, partition in partitions:
            row = self._conn.execute(q, (group_id, topic, partition)).fetchone()
            if row is not None:
                out[(topic, partition)] = int(row[0])
        return out

    def all_offsets(self, group_id: str) -> dict[TopicPartitionKey, int]:
        """Every stored offset of `group_id` (outside any sink transaction; for reports)."""
        rows = self._conn.execute(f"SELECT topic, partition, committed_offset FROM {self._offsets} WHERE group_id = ?", (group_id,))
        return {(t, int(p)): int(o) for t, p, o in rows}

    def apply(self, fn: ApplyFn, records: list[Any]) -> None:
        fn(self._conn, records)
        if not self._conn.in_transaction:
            raise SinkApplyError("the apply callback ended the transaction (commit(), rollback() or `with conn:`); "
                                 "its effects are no longer atomic with the offsets")

    def save_offsets(self, group_id: str, offsets: Mapping[TopicPartitionKey, int], expected: Mapping[TopicPartitionKey, int | None]) -> None:
        now_ms = int(time.time() * 1000)
        for (topic, partition), offset in offsets.items():
            before = expected.get((topic, partition))
            if before is None:
                try:
                    self._conn.execute(
                        f"INSERT INTO {self._offsets} (group_id, topic, partition, committed_offset, updated_ms) VALUES (?, ?, ?, ?, ?)",
                        (group_id, topic, partition, offset, now_ms),
                    )
                except sqlite3.IntegrityError:
                    raise SinkOffsetsError(f"{group_id}: {topic}-{partition} was stored by someone else meanwhile") from None
            else:
                cur = self._conn.execute(
                    f"UPDATE {self._offsets} SET committed_offset = ?, updated_ms = ? WHERE group_id = ? AND topic = ? AND partition = ? AND committed_offset = ?",
                    (offset, now_ms, group_id, topic, partition, before),
                )
                if cur.rowcount != 1:
                    raise SinkOffsetsError(f"{group_id}: {topic}-{partition} no longer holds offset {before}")

    def mark_seen(self, keys: Sequence[bytes], now_ms: int) -> list[bool]:
        # Look up, then insert only new keys: an ignored INSERT would still use up an
        # AUTOINCREMENT seq, and prune_seen() counts on seqs without gaps.
        out = []
        find = f"SELECT 1 FROM {self._seen} WHERE dedup_key = ?"
        add = f"INSERT INTO {self._seen} (dedup_key, seen_ms) VALUES (?, ?)"
        for key in keys:
            if self._conn.execute(find, (key,)).fetchone() is not None:
                out.append(False)
            else:
                self._conn.execute(add, (key, now_ms))
                out.append(True)
        return out

    def prune_seen(self, now_ms: int) -> int:
        dropped = 0
        if self.seen_retention_ms is not None:
            dropped += self._conn.execute(f"DELETE FROM {self._seen} WHERE seen_ms < ?", (now_ms - self.seen_retention_ms,)).rowcount
        if self.seen_max_keys is not None:
            # seq is AUTOINCREMENT (never reused; a rolled-back insert gives its seq back)
            # and mark_seen() never wastes one, so the newest N keys are seq > max(seq) - N.
            dropped += self._conn.execute(
                f"DELETE FROM {self._seen} WHERE seq <= (SELECT MAX(seq) FROM {self._seen}) - ?", (self.seen_max_keys,),
            ).rowcount
        return dropped

    def seen_count(self) -> int:
        """How many dedup keys the store holds."""
        return int(self._conn.execute(f"SELECT COUNT(*) FROM {self._seen}").fetchone()[0])

    def commit(self) -> None:
        self._conn.execute("COMMIT")

    def rollback(self) -> None:
        if self._conn.in_transaction:
            self._conn.execute("ROLLBACK")


# ---------------------------------------------------------------------------------- the sink


def _topic_partition_type(consumer: Any) -> Any:
    """The TopicPartition class of the consumer's library (seek() of confluent-kafka accepts
    only its own type): found next to the consumer's class, else headwater's."""
    for cls in type(consumer).__mro__:
        if cls.__module__ == "builtins":
            continue
        # An extension type may name a module only by its last part: confluent-kafka's
        # Consumer says "cimpl", the module is confluent_kafka.cimpl.
        suffix = "." + cls.__module__
        for name, module in list(sys.modules.items()):
            if module is not None and (name == cls.__module__ or name.endswith(suffix)):
                tp = getattr(module, "TopicPartition", None)
                if isinstance(tp, type):
                    return tp
    return HeadwaterTopicPartition


class ExactlyOnceSink:
    """Consume, apply each batch to a database and store its offsets in the same transaction.

    Args:
        consumer: shaped like confluent_kafka.Consumer (headwater's embedded one or
            confluent-kafka's). The sink subscribes or assigns it; do not do it yourself.
            Prefer `enable.auto.commit=false`: the group's offsets are never read back.
        store: where effects and offsets go.
        apply: `apply(connection, messages)`; messages of one batch, in offset order per
            partition, minus redeliveries and seen dedup keys. Runs inside the transaction:
            raise to roll the batch back.
        topics: subscribe to these (group management; needs the consumer's group.id).
        partitions: or assign these (objects with .topic and .partition) without a group.
        group_id: the name the offsets are stored under; default the consumer's group.id
            when it exposes it (the embedded consumer does; pass it for confluent-kafka).
        initial_offset: where a partition with no stored offset starts (OFFSET_BEGINNING:
            the whole partition; OFFSET_END; OFFSET_STORED: the group's offset).
        batch_size: records per consume() and so at most per transaction.
        dedup_header: a header name to enable the seen-store (DEFAULT_DEDUP_HEADER is the
            conventional one); records without it are always applied.
        commit_to_group: after each database commit, also commit the offsets to the group
            (best effort, for lag monitoring).
        on_assign, on_revoke: called after the sink's own handling, with (consumer, partitions).
        clock_ms: wall clock in ms for seen-store ages (injectable for tests).
    """

    def __init__(
        self,
        consumer: Any,
        store: TransactionalStore,
        apply: ApplyFn,
        *,
        topics: Sequence[str] | None = None,
        partitions: Sequence[Any] | None = None,
        group_id: str | None = None,
        initial_offset: int = OFFSET_BEGINNING,
        batch_size: int = 500,
        dedup_header: str | None = None,
        commit_to_group: bool = True,
        on_assign: Callable[[Any, list[Any]], None] | None = None,
        on_revoke: Callable[[Any, list[Any]], None] | None = None,
        clock_ms: Callable[[], int] | None = None,
    ) -> None:
        if (topics is None) == (partitions is None):
            raise ValueError("give exactly one of topics= (subscribe) or partitions= (assign)")
        if isinstance(topics, str):
            raise TypeError("topics must be a list of topic names")
        if batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        if group_id is None:
            config = getattr(consumer, "config", None)
            group_id = config.get("group.id") if isinstance(config, Mapping) else None
        if not group_id:
            raise ValueError("group_id is required (the name the offsets are stored under)")
        self.consumer = consumer
        self.store = store
        self.group_id: str = group_id
        self._apply = apply
        self._topics = list(topics) if topics is not None else None
        self._partitions = list(partitions) if partitions is not None else None
        self._initial_offset = initial_offset
        self._batch_size = batch_size
        self._dedup_header = dedup_header
        self._commit_to_group = commit_to_group
        self._user_on_assign = on_assign
        self._user_on_revoke = on_revoke
        self._clock_ms = clock_ms or (lambda: int(time.time() * 1000))
        self._tp_type = _topic_partition_type(consumer)
        # Owned partitions -> the offset this sink believes is stored (None: no row yet, the
        # consumer was positioned at initial_offset). Only these partitions are applied.
        self._owned: dict[TopicPartitionKey, int | None] = {}
        # Owned partitions whose consumer position is not known to match _owned: their
        # records are dropped until a seek() to the stored offset succeeds.
        self._unsynced: set[TopicPartitionKey] = set()
        # Assigned partitions whose stored offsets on_assign could not read.
        self._unloaded: set[TopicPartitionKey] = set()
        self._started = False
        self._assign_call = "assign"
        #: Records handed to apply.
        self.applied = 0
        #: Records not applied because their dedup key was already seen.
        self.skipped_duplicates = 0
        #: Records not applied because their offset was already stored (redeliveries).
        self.skipped_stale = 0
        #: Database transactions committed.
        self.transactions = 0

    # -------------------------------------------------------------------- positioning

    def start(self) -> None:
        """Subscribe or assign (at the stored offsets). poll() and run() call it once."""
        if self._started:
            return
        self._started = True
        if self._topics is not None:
            self.consumer.subscribe(self._topics, on_assign=self._on_assign, on_revoke=self._on_revoke, on_lost=self._on_revoke)
            return
        assert self._partitions is not None
        keys = [(tp.topic, tp.partition) for tp in self._partitions]
        stored = self.store.load_offsets(self.group_id, keys)
        tps = []
        for key in keys:
            self._owned[key] = stored.get(key)
            tps.append(self._tp(key, self._start_offset(key)))
        self.consumer.assign(tps)

    def _tp(self, key: TopicPartitionKey, offset: int) -> Any:
        return self._tp_type(key[0], key[1], offset)

    def _start_offset(self, key: TopicPartitionKey) -> int:
        stored = self._owned.get(key)
        return self._initial_offset if stored is None else stored

    def _on_assign(self, consumer: Any, partitions: list[Any]) -> None:
        if partitions:
            self._tp_type = type(partitions[0])  # the client's own class, whatever it is
        keys = [(tp.topic, tp.partition) for tp in partitions]
        try:
            stored = self.store.load_offsets(self.group_id, keys)
        except Exception as exc:  # noqa: BLE001 - raising out of a librdkafka callback helps no one
            # The partitions stay unowned (their records are dropped) until poll() reads the
            # offsets and seeks; if the database still fails there, poll() raises.
            log.error("exactly-once sink: reading stored offsets in on_assign failed (%s); poll() retries", exc)
            self._unloaded.update(keys)
            if self._user_on_assign is not None:
                self._user_on_assign(consumer, partitions)
            return
        for tp, key in zip(partitions, keys, strict=True):
            self._owned[key] = stored.get(key)
            tp.offset = self._start_offset(key)
        if partitions and not self._reposition(consumer, partitions):
            self._unsynced.update(keys)
        if self._user_on_assign is not None:
            self._user_on_assign(consumer, partitions)

    def _reposition(self, consumer: Any, partitions: list[Any]) -> bool:
        """Inside on_assign: start `partitions` at their .offset. False if it did not work
        (the main loop then seeks them and drops their records until it does)."""
        if hasattr(consumer, "incremental_assign"):
            # librdkafka: only the rebalance callback's assign() sets the start offsets; an
            # eager group takes assign(), a cooperative one incremental_assign() (the other
            # call fails with _STATE and changes nothing).
            # The call that worked is tried first next time (librdkafka logs the failed one).
            for name in sorted(("assign", "incremental_assign"), key=lambda n: n != self._assign_call):
                try:
                    getattr(consumer, name)(partitions)
                except Exception as exc:  # noqa: BLE001 - any client's error type; try the other call
                    log.debug("%s() in on_assign failed: %s", name, exc)
                    continue
                self._assign_call = name
                return True
            return False
        # The embedded consumer installs the assignment before on_assign: seek() works.
        try:
            for tp in partitions:
                consumer.seek(tp)
        except Exception as exc:  # noqa: BLE001 - retried from the main loop
            log.warning("exactly-once sink: seek in on_assign failed (%s); retrying from poll", exc)
            return False
        return True

    def _on_revoke(self, consumer: Any, partitions: list[Any]) -> None:
        for tp in partitions:
            key = (tp.topic, tp.partition)
            self._owned.pop(key, None)
            self._unsynced.discard(key)
            self._unloaded.discard(key)
        if self._user_on_revoke is not None:
            self._user_on_revoke(consumer, partitions)

    def _resync(self) -> None:
        if self._unloaded:
            keys = sorted(self._unloaded)
            stored = self.store.load_offsets(self.group_id, keys)
            self._unloaded.clear()
            for key in keys:
                self._owned[key] = stored.get(key)
                self._unsynced.add(key)
        for key in sorted(self._unsynced):
            if key not in self._owned:
                self._unsynced.discard(key)
                continue
            try:
                self.consumer.seek(self._tp(key, self._start_offset(key)))
            except Exception as exc:  # noqa: BLE001 - e.g. librdkafka _STATE before fetch starts; retry next poll
                log.warning("exactly-once sink: seek %s-%d failed (%s); its records wait until a seek works", key[0], key[1], exc)
                continue
            self._unsynced.discard(key)

    def owned(self) -> dict[TopicPartitionKey, int | None]:
        """Owned partitions and the offset believed stored for each (None: none yet)."""
        return dict(self._owned)

    # -------------------------------------------------------------------- the loop

    def poll(self, timeout: float = 1.0, max_records: int | None = None) -> int:
        """Consume one batch (waiting up to `timeout` s) and commit it in one transaction.

        Returns how many records' offsets were committed (applied plus dedup-skipped).

        Raises:
            whatever `apply` raises (the batch is rolled back and will be delivered again),
            SinkOffsetsError, SinkApplyError, the store's and the consumer's errors.
        """
        self.start()
        self._resync()
        n = self._batch_size if max_records is None else max(1, min(self._batch_size, max_records))
        messages = self.consumer.consume(n, timeout)
        by_key: dict[TopicPartitionKey, list[Any]] = {}
        for m in messages:
            err = m.error()
            if err is not None:
                if err.code() != KafkaError._PARTITION_EOF:  # informational (same code in librdkafka)
                    log.warning("exactly-once sink: consumer error %s", err)
                continue
            key = (m.topic(), m.partition())
            if key not in self._owned or key in self._unsynced:
                continue  # not ours (revoked), or fetched before the seek to the stored offset
            by_key.setdefault(key, []).append(m)
        if not by_key:
            return 0
        return self._transaction(by_key)

    def _transaction(self, by_key: dict[TopicPartitionKey, list[Any]]) -> int:
        store = self.store
        new_offsets: dict[TopicPartitionKey, int] = {}
        expected: dict[TopicPartitionKey, int | None] = {}
        moved: dict[TopicPartitionKey, int] = {}
        stale = 0
        store.begin()
        try:
            stored = store.read_offsets(self.group_id, by_key)
            batch: list[Any] = []
            for key, msgs in by_key.items():
                believed = self._owned[key]
                now = stored.get(key)
                if now != believed:
                    if now is None or (believed is not None and now < believed):
                        raise SinkOffsetsError(
                            f"{self.group_id}: stored offset of {key[0]}-{key[1]} went from {believed} to {now} "
                            "while the sink ran")
                    moved[key] = now  # another instance committed: reposition, apply nothing
                    continue
                keep = msgs if believed is None else [m for m in msgs if m.offset() >= believed]
                stale += len(msgs) - len(keep)
                if keep:
                    batch.extend(keep)
                    expected[key] = believed
                    new_offsets[key] = keep[-1].offset() + 1
            todo = batch
            duplicates = 0
            if self._dedup_header is not None and batch:
                now_ms = self._clock_ms()
                store.prune_seen(now_ms)  # forget expired keys before checking (age bound)
                keyed = [(m, dedup_key(m, self._dedup_header)) for m in batch]
                with_key = [k for _, k in keyed if k is not None]
                fresh = iter(store.mark_seen(with_key, now_ms)) if with_key else iter(())
                todo = [m for m, k in keyed if k is None or next(fresh)]
                duplicates = len(batch) - len(todo)
                store.prune_seen(now_ms)  # and trim what this batch added (count bound)
            if todo:
                store.apply(self._apply, todo)
            if new_offsets:
                store.save_offsets(self.group_id, new_offsets, expected)
            store.commit()
        except BaseException:
            # Rolled back (or, if COMMIT itself failed, perhaps not): the consumer is past the
            # batch, so seek back to what the database holds; the next transaction's check
            # sorts out an uncertain commit (a stored offset ahead of ours = moved).
            try:
                store.rollback()
            finally:
                self._unsynced.update(k for k in by_key if k in self._owned)
            raise
        self.transactions += 1
        self.skipped_stale += stale
        self.applied += len(todo)
        self.skipped_duplicates += duplicates
        for key, offset in moved.items():
            log.info("exactly-once sink: %s-%d was committed to %d by another instance; seeking there", key[0], key[1], offset)
            if key in self._owned:
                self._owned[key] = offset
                self._unsynced.add(key)
        for key, offset in new_offsets.items():
            if key in self._owned:
                self._owned[key] = offset
        if new_offsets and self._commit_to_group:
            self._commit_group(new_offsets)
        return len(todo) + duplicates

    def _commit_group(self, offsets: Mapping[TopicPartitionKey, int]) -> None:
        try:
            self.consumer.commit(offsets=[self._tp(k, o) for k, o in offsets.items()], asynchronous=True)
        except Exception as exc:  # noqa: BLE001 - best effort: the database holds the truth
            log.debug("exactly-once sink: group commit failed (ignored): %s", exc)

    def run(self, max_records: int | None = None, timeout: float | None = None, idle_timeout: float | None = None, poll_timeout: float = 0.1) -> int:
        """poll() until `max_records` are committed, `timeout` seconds pass, or nothing
        arrives for `idle_timeout` seconds (each None: no such bound). Returns the count."""
        deadline = None if timeout is None else time.monotonic() + timeout
        idle_since = time.monotonic()
        done = 0
        while max_records is None or done < max_records:
            now = time.monotonic()
            if deadline is not None and now >= deadline:
                break
            if idle_timeout is not None and now - idle_since >= idle_timeout:
                break
            wait = poll_timeout if deadline is None else max(0.0, min(poll_timeout, deadline - now))
            got = self.poll(wait, None if max_records is None else max_records - done)
            if got:
                done += got
                idle_since = time.monotonic()
        return done


__all__ = [
    "DEFAULT_DEDUP_HEADER",
    "ExactlyOnceSink",
    "SQLiteStore",
    "SinkApplyError",
    "SinkOffsetsError",
    "TransactionalStore",
    "dedup_key",
]
