"""The transaction coordinator as a deterministic state machine (kafka-spec.md d.2, d.3).

``TransactionCoordinator`` maps each ``transactional.id`` to a producer id and epoch and walks
its transactions through Kafka's states. It never touches a socket, a clock, a file or a
thread; every call that can start or check a timer takes ``now_ms``.

State table (Kafka's TransactionMetadata; "-> X" = transition, record written):

    state          InitProducerId            AddPartitions/AddOffsets  EndTxn(commit/abort)
    (unknown)      new pid, epoch 0 -> Empty INVALID_PRODUCER_ID_MAPPING  INVALID_PRODUCER_ID_MAPPING
    Empty          bump epoch -> Empty       -> Ongoing (start = now)  INVALID_TXN_STATE
    Ongoing        fence: epoch+1 ->         -> Ongoing (no record if  -> PrepareCommit/PrepareAbort
                   PrepareAbort, waits       nothing new)              + MarkerWork
    PrepareCommit  waits for completion      CONCURRENT_TRANSACTIONS   commit: CONCURRENT_TRANSACTIONS
    PrepareAbort   waits for completion      CONCURRENT_TRANSACTIONS   abort: CONCURRENT_TRANSACTIONS
    CompleteCommit bump epoch -> Empty       -> Ongoing (start = now)  commit: NONE (a retry)
    CompleteAbort  bump epoch -> Empty       -> Ongoing (start = now)  abort: NONE (a retry)

    The other outcome of EndTxn in Prepare*/Complete* is INVALID_TXN_STATE. Before any of this,
    a producer id that is not the id's answers INVALID_PRODUCER_ID_MAPPING, and an epoch that
    is not the current one PRODUCER_FENCED. ``markers_written`` moves Prepare* to Complete*.
    ``tick`` aborts Ongoing transactions with ``start + transaction.timeout.ms < now`` (epoch
    bumped, so the old instance is fenced) and expires ids idle for
    ``transactional.id.expiration.ms`` in Empty/Complete* (a tombstone).

Waiting without threads. InitProducerId while a transaction is Ongoing or Prepare* cannot be
answered at once: Kafka starts the abort (Ongoing only) and answers CONCURRENT_TRANSACTIONS;
the client retries until the previous transaction is complete. Here the call returns an
``InitPending`` (a ``Pending[InitResult]``) whose ``markers`` is the abort it started (None if
the markers of an EndTxn were already due). When ``markers_written`` completes the previous
transaction, the coordinator runs the InitProducerId again, exactly as the client's retry
would, and completes the pending with its result or error. Two ways to use it:

- wire server: write ``markers`` (if any), then await the pending with the request's timeout;
  or, to behave exactly as Kafka, call ``cancel()`` and answer CONCURRENT_TRANSACTIONS (the
  client retries; a cancelled pending never completes and bumps nothing).
- embedded client: write ``markers``, call ``markers_written``; the pending is then done.

Markers. ``end_txn``, ``tick``, ``load`` and ``InitPending.markers`` hand out ``MarkerWork``:
write the COMMIT/ABORT control batch to every listed partition, then call
``markers_written(transactional_id, now_ms)``. Each transactional id has at most one
outstanding ``MarkerWork`` (no request can move a Prepare* state); ``pending_markers()`` lists
them again for a caller that must retry after a failed write.

Persistence. Every transition queues one ``(key, value)`` record for ``__transaction_state``
(formats in ``records.py``; value None = tombstone); ``take_records()`` drains them in order.
The state is applied before the records are persisted: the caller appends them and, if the
append fails, drops the coordinator and rebuilds it with ``load``. ``take_sync()`` says whether
the records drained since the last call include one that must be durable before the caller
answers: an InitProducerId's Empty (it fences older instances) and a Prepare* (the decision;
before any marker is written). Ongoing and Complete* need not be: a lost Ongoing leaves data
that the broker's recovery aborts as a hanging transaction, a lost Complete* leaves a Prepare*
whose markers recovery writes again. Except the Ongoing that starts the transaction after a
Prepare* record: until it is durable, recovery would write that Prepare*'s markers again, past
the new transaction's data. ``load(records, now_ms)`` replays the records of a restart: Ongoing
transactions keep their start timestamp, so their timeout still runs from the original start;
Prepare* transactions come back with their ``MarkerWork``, which the caller must finish.

One-phase commit. EndTxn(commit) of a transaction with one partition (not
``__consumer_offsets``) writes no PrepareCommit record: that partition's COMMIT marker is the
decision, and the caller answers once it is written (fsync'd under ``flush.policy=batch``).
In memory the transaction passes through PrepareCommit as usual. A crash before the marker
leaves the Ongoing record, which ``tick`` aborts after the timeout (the client got no answer);
a crash after it leaves a committed partition whose later ABORT marker finds no open
transaction and changes nothing. With several participants, ``sync_partitions`` (the caller's)
makes their data durable before the PrepareCommit record is queued (two-phase commit).

Producer ids come from ``allocate_producer_id`` (a new id for a new transactional id and on
epoch exhaustion); ``highest_producer_id`` after ``load`` tells the allocator where to resume.

Deviations from Kafka, on purpose:
- The PrepareEpochFence state is never observable: the coordinator fences and prepares the
  abort in one step (Kafka holds it only as an in-memory pending state, never persisted).
- InitProducerId with an expected epoch that is not the current one while the current epoch
  is exhausted answers PRODUCER_FENCED (Kafka throws an internal IllegalStateException).
- Only transaction.version 1 (no epoch bump per EndTxn, records written as v0).
- One-phase commit of one-partition transactions, and lazy Ongoing/Complete* records (above):
  Kafka writes every transition to its replicated log before it answers; one node that
  fsyncs cannot afford four ordered fsyncs per transaction.

Not thread-safe: one thread (the event loop, or the embedded broker's lock holder) drives it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from headwater.coordinator._config import int_settings
from headwater.coordinator.group.pending import Pending
from headwater.coordinator.group.records import offsets_partition_for
from headwater.coordinator.txn import records as rec
from headwater.coordinator.txn.errors import (
    ConcurrentTransactionsError,
    InvalidProducerIdMappingError,
    InvalidRequestError,
    InvalidTransactionTimeoutError,
    InvalidTxnStateError,
    MalformedPayloadError,
    OperationNotAttemptedError,
    ProducerFencedError,
    TransactionalIdNotFoundError,
    UnknownTopicOrPartitionError,
)
from headwater.coordinator.txn.metadata import (
    MAX_PRODUCER_EPOCH,
    NO_PRODUCER_EPOCH,
    NO_PRODUCER_ID,
    DescribedTransaction,
    InitResult,
    ListedTransaction,
    ListTransactionsResult,
    MarkerWork,
    TransactionMetadata,
    TransactionState,
    is_epoch_exhausted,
)
from headwater.errors import KafkaApiError

Record = tuple[bytes, bytes | None]
TopicPartition = tuple[str, int]

OFFSETS_TOPIC = "__consumer_offsets"

EMPTY = TransactionState.EMPTY
ONGOING = TransactionState.ONGOING
PREPARE_COMMIT = TransactionState.PREPARE_COMMIT
PREPARE_ABORT = TransactionState.PREPARE_ABORT
COMPLETE_COMMIT = TransactionState.COMPLETE_COMMIT
COMPLETE_ABORT = TransactionState.COMPLETE_ABORT
DEAD = TransactionState.DEAD
PREPARE_EPOCH_FENCE = TransactionState.PREPARE_EPOCH_FENCE

_PREPARING = (PREPARE_COMMIT, PREPARE_ABORT)
_CAN_START = (EMPTY, COMPLETE_COMMIT, COMPLETE_ABORT)
# Records that must be durable before the call that queued them is answered (take_sync).
_DURABLE_BEFORE_ANSWER = (EMPTY, PREPARE_COMMIT, PREPARE_ABORT)
_NULL_PARTITIONS_V0 = rec.encode_partitions_v0(None)  # Empty: Kafka writes a null array
_NO_PARTITIONS_V0 = rec.encode_partitions_v0(())


@dataclass(frozen=True)
class TransactionCoordinatorConfig:
    """Broker settings of the transaction coordinator, Kafka's names with dots as underscores.

    ``transaction_state_log_num_partitions`` routes records (``take_records_by_partition``);
    ``offsets_topic_num_partitions`` picks the ``__consumer_offsets`` partition of a group for
    AddOffsetsToTxn.
    """

    transaction_max_timeout_ms: int = 900000
    transactional_id_expiration_ms: int = 604800000
    transaction_state_log_num_partitions: int = 50
    offsets_topic_num_partitions: int = 50

    @classmethod
    def from_mapping(
        cls, config: Mapping[str, Any] | None = None, **kwargs: Any
    ) -> TransactionCoordinatorConfig:
        """Build from Kafka names (``transaction.max.timeout.ms``) and/or keywords.

        Raises:
            ConfigError: unknown name, non-integer, or a value below 1.
        """
        return cls(**int_settings(cls, config, kwargs, "transaction coordinator", 1))


class InitPending(Pending[InitResult]):
    """An InitProducerId that waits for the previous transaction of its id to complete.

    Attributes:
        markers: the ABORT markers this call started (the fenced Ongoing transaction), or None
            when the previous transaction's markers were already handed out (by EndTxn, a
            timeout, or load).
    """

    __slots__ = ("markers", "_cancelled")

    def __init__(self, markers: MarkerWork | None) -> None:
        super().__init__()
        self.markers = markers
        self._cancelled = False

    def cancel(self) -> None:
        """Give up waiting: the coordinator will not run this InitProducerId again."""
        self._cancelled = True

    def cancelled(self) -> bool:
        return self._cancelled


@dataclass(frozen=True)
class _InitWaiter:
    pending: InitPending
    transaction_timeout_ms: int
    expected: tuple[int, int] | None


class TransactionCoordinator:
    """Transactional ids, producer ids and epochs, and transaction states, driven step by step.

    Args:
        config: coordinator settings; None = Kafka's defaults.
        allocate_producer_id: returns a producer id never handed out before (by this
            coordinator or the idempotent-producer path).
        coordinator_epoch: the epoch stamped on markers (``MarkerWork.coordinator_epoch``);
            it must not decrease across restarts.
        partition_count: ``topic -> number of partitions``, or None when the topic does not
            exist; AddPartitionsToTxn answers UNKNOWN_TOPIC_OR_PARTITION from it (KafkaApis'
            check). Default: every partition exists.
        offsets_partition: ``group_id -> __consumer_offsets partition`` for AddOffsetsToTxn.
            Default: Kafka's hash over ``offsets_topic_num_partitions``.
        sync_partitions: makes the data written to these partitions durable; called by a
            two-phase EndTxn(commit) before its PrepareCommit. If it raises, the transaction
            stays Ongoing and the error propagates. Default: nothing to do.
        latest_records_only: ``take_records`` returns one record per id, its state at the
            time of the call, instead of one per transition (``__transaction_state`` is
            compacted: recovery reads only the last). A transition then costs no encoding.
    """

    def __init__(
        self,
        config: TransactionCoordinatorConfig | None,
        allocate_producer_id: Callable[[], int],
        *,
        coordinator_epoch: int = 0,
        partition_count: Callable[[str], int | None] | None = None,
        offsets_partition: Callable[[str], int] | None = None,
        sync_partitions: Callable[[Sequence[TopicPartition]], None] | None = None,
        latest_records_only: bool = False,
    ) -> None:
        self.config = config or TransactionCoordinatorConfig()
        self._allocate_producer_id = allocate_producer_id
        self.coordinator_epoch = coordinator_epoch
        self._partition_count = partition_count
        self._offsets_partition = offsets_partition or (
            lambda group_id: offsets_partition_for(
                group_id, self.config.offsets_topic_num_partitions
            )
        )
        self._sync_partitions = sync_partitions
        self._txns: dict[str, TransactionMetadata] = {}
        # A queued record must be durable before the answer (take_sync resets it). Callers
        # may read it to skip take_sync when False.
        self.sync_pending = False
        self._one_phase: set[str] = set()  # ids in a PrepareCommit that has no record
        # ids whose last durable record may still be a Prepare*: see _add
        self._after_prepare: set[str] = set()
        self._waiters: dict[str, list[_InitWaiter]] = {}
        self._records: list[Record] = []
        # latest_records_only: id -> its metadata (None: a tombstone), encoded when taken
        self._latest: dict[str, TransactionMetadata | None] | None = {} if latest_records_only else None
        self._partitions_v0: dict[frozenset[TopicPartition], bytes] = {}  # encodings, see _persist
        self._deliveries: list[tuple[Pending[InitResult], InitResult | None, KafkaApiError | None]]
        self._deliveries = []
        self._highest_producer_id = NO_PRODUCER_ID

    # ------------------------------------------------------------------------------------------
    # Records and deliveries.

    def take_records(self) -> list[Record]:
        """Drain the ``__transaction_state`` records to append, oldest first (with
        ``latest_records_only``: one per id, in the order the ids first changed)."""
        latest = self._latest
        if latest is not None:
            out: list[Record] = []
            for txn_id, meta in latest.items():
                if meta is None:
                    out.append((rec.encode_key(txn_id), None))
                else:
                    out.append(self._encode(meta, ONGOING if txn_id in self._one_phase else meta.state))
            latest.clear()
            return out
        out, self._records = self._records, []
        return out

    def take_sync(self) -> bool:
        """Whether a record queued since the last call must be durable before the caller
        answers (an InitProducerId's Empty, a Prepare*); resets it."""
        sync, self.sync_pending = self.sync_pending, False
        return sync

    def take_records_by_partition(self) -> dict[int, list[Record]]:
        """Like ``take_records`` but keyed by the ``__transaction_state`` partition of each id."""
        out: dict[int, list[Record]] = {}
        n = self.config.transaction_state_log_num_partitions
        for key, value in self.take_records():
            k = rec.decode_key(key)
            assert isinstance(k, rec.TransactionLogKey)
            partition = rec.transaction_state_partition_for(k.transactional_id, n)
            out.setdefault(partition, []).append((key, value))
        return out

    @property
    def highest_producer_id(self) -> int:
        """The highest producer id this coordinator has used or loaded (-1 if none)."""
        return self._highest_producer_id

    def _deliver(self) -> None:
        while self._deliveries:
            pending, result, error = self._deliveries.pop(0)
            if error is not None:
                pending.set_exception(error)
            else:
                assert result is not None
                pending.set_result(result)

    def _persist(self, meta: TransactionMetadata) -> None:
        """Queue the id's TransactionLogValue v0 record (Kafka's layout, records.py)."""
        state = meta.state
        if state in _DURABLE_BEFORE_ANSWER:
            self.sync_pending = True
            if state is EMPTY:
                self._after_prepare.discard(meta.transactional_id)
            else:
                self._after_prepare.add(meta.transactional_id)
        if self._latest is not None:
            self._latest[meta.transactional_id] = meta
            return
        self._records.append(self._encode(meta, state))

    def _encode(self, meta: TransactionMetadata, state: TransactionState) -> Record:
        """The id's record for `state` (a one-phase PrepareCommit is taken as Ongoing)."""
        if not meta.record_key:
            meta.record_key = rec.encode_key(meta.transactional_id)
        if state is EMPTY:
            parts = _NULL_PARTITIONS_V0
        elif not meta.partitions:
            parts = _NO_PARTITIONS_V0
        else:
            # Producers send to the same partitions transaction after transaction.
            frozen = frozenset(meta.partitions)
            parts = self._partitions_v0.get(frozen)  # type: ignore[assignment]
            if parts is None:
                if len(self._partitions_v0) >= 1024:
                    self._partitions_v0.clear()
                parts = self._partitions_v0[frozen] = rec.encode_partitions_v0(frozen)
        value = rec.encode_value_v0(
            meta.producer_id,
            meta.producer_epoch,
            meta.txn_timeout_ms,
            int(state),
            parts,
            meta.txn_last_update_timestamp_ms,
            meta.txn_start_timestamp_ms,
        )
        return (meta.record_key, value)

    def _transition(
        self,
        meta: TransactionMetadata,
        state: TransactionState,
        now_ms: int,
        *,
        producer_id: int | None = None,
        producer_epoch: int | None = None,
        last_producer_epoch: int | None = None,
        txn_timeout_ms: int | None = None,
        txn_start_timestamp_ms: int | None = None,
    ) -> None:
        """Apply one transition and queue its record (Kafka's prepareTransitionTo + complete)."""
        meta.previous_producer_id = meta.producer_id
        if producer_id is not None:
            meta.producer_id = producer_id
            self._highest_producer_id = max(self._highest_producer_id, producer_id)
        if producer_epoch is not None:
            meta.producer_epoch = producer_epoch
        if last_producer_epoch is not None:
            meta.last_producer_epoch = last_producer_epoch
        if txn_timeout_ms is not None:
            meta.txn_timeout_ms = txn_timeout_ms
        if txn_start_timestamp_ms is not None:
            meta.txn_start_timestamp_ms = txn_start_timestamp_ms
        if state in (EMPTY, COMPLETE_COMMIT, COMPLETE_ABORT):
            meta.partitions = set()
        meta.state = state
        meta.txn_last_update_timestamp_ms = max(meta.txn_last_update_timestamp_ms, now_ms)
        self._persist(meta)

    def _move(self, meta: TransactionMetadata, state: TransactionState, now_ms: int, persist: bool = True) -> None:
        """``_transition`` for the transitions of a transaction's life (Ongoing, Prepare*,
        Complete*), which change only the state: the lean path, one per call of a client."""
        meta.previous_producer_id = meta.producer_id
        if state is COMPLETE_COMMIT or state is COMPLETE_ABORT:
            meta.partitions = set()
        meta.state = state
        if now_ms > meta.txn_last_update_timestamp_ms:
            meta.txn_last_update_timestamp_ms = now_ms
        if persist:
            self._persist(meta)

    def _marker_work(self, meta: TransactionMetadata) -> MarkerWork:
        assert meta.state in _PREPARING
        parts = meta.partitions
        return MarkerWork(
            meta.transactional_id,
            meta.producer_id,
            meta.producer_epoch,
            self.coordinator_epoch,
            meta.state is PREPARE_COMMIT,
            tuple(parts) if len(parts) == 1 else tuple(sorted(parts)),
        )

    # ------------------------------------------------------------------------------------------
    # InitProducerId.

    def init_producer_id(
        self,
        transactional_id: str,
        transaction_timeout_ms: int,
        now_ms: int,
        producer_id: int = NO_PRODUCER_ID,
        producer_epoch: int = NO_PRODUCER_EPOCH,
    ) -> InitResult | InitPending:
        """InitProducerId for a transactional producer (spec d.3).

        A new id gets a fresh producer id with epoch 0; a known one gets its epoch bumped,
        which fences every older instance. ``producer_id``/``producer_epoch`` (InitProducerId
        v3+, KIP-360) are the caller's current ones, or -1/-1.

        Returns:
            ``InitResult``, or an ``InitPending`` while the previous transaction completes (see
            the module docstring; its ``markers`` must be written).

        Raises:
            InvalidRequestError: empty transactional id, or only one of producer id and epoch.
            InvalidTransactionTimeoutError: timeout <= 0 or > transaction.max.timeout.ms.
            ProducerFencedError: the given producer id/epoch belongs to a fenced instance.
        """
        if not transactional_id:
            raise InvalidRequestError("InitProducerId with an empty transactional id")
        if (producer_id == NO_PRODUCER_ID) != (producer_epoch == NO_PRODUCER_EPOCH):
            raise InvalidRequestError(
                f"producer id {producer_id} and epoch {producer_epoch}: give both or neither"
            )
        if not 0 < transaction_timeout_ms <= self.config.transaction_max_timeout_ms:
            raise InvalidTransactionTimeoutError(
                f"transaction timeout {transaction_timeout_ms} ms is not in "
                f"(0, {self.config.transaction_max_timeout_ms}] (transaction.max.timeout.ms)"
            )
        expected = None if producer_id == NO_PRODUCER_ID else (producer_id, producer_epoch)
        meta = self._txns.get(transactional_id)
        created = meta is None
        if meta is None:
            new_id = self._allocate_producer_id()
            self._highest_producer_id = max(self._highest_producer_id, new_id)
            meta = TransactionMetadata(
                transactional_id=transactional_id,
                producer_id=new_id,
                producer_epoch=NO_PRODUCER_EPOCH,
                txn_timeout_ms=transaction_timeout_ms,
                state=EMPTY,
                txn_last_update_timestamp_ms=now_ms,
            )
            self._txns[transactional_id] = meta
        try:
            return self._init(meta, transaction_timeout_ms, expected, now_ms)
        except KafkaApiError:
            if created:
                del self._txns[transactional_id]
            raise
        finally:
            self._deliver()

    def _init(
        self,
        meta: TransactionMetadata,
        timeout_ms: int,
        expected: tuple[int, int] | None,
        now_ms: int,
    ) -> InitResult | InitPending:
        if expected is not None and not self._valid_producer_id(meta, expected):
            raise ProducerFencedError(
                f"producer id {expected[0]} is not transactional id "
                f"{meta.transactional_id!r}'s ({meta.producer_id})"
            )
        state = meta.state
        if state in _PREPARING:
            return self._wait(meta, timeout_ms, expected, None)
        if state in (ONGOING, PREPARE_EPOCH_FENCE):
            # Fence the running instance: its transaction is aborted with a bumped epoch that
            # nobody is told; the retry after completion bumps again for the caller.
            return self._wait(meta, timeout_ms, expected, self._fence_and_abort(meta, now_ms))
        assert state in _CAN_START, state
        if is_epoch_exhausted(meta.producer_epoch):
            if expected is not None and expected[1] != meta.producer_epoch:
                raise ProducerFencedError(
                    f"epoch {expected[1]} is not the current {meta.producer_epoch}"
                )
            last_epoch = meta.producer_epoch if expected is not None else NO_PRODUCER_EPOCH
            self._transition(
                meta,
                EMPTY,
                now_ms,
                producer_id=self._allocate_producer_id(),
                producer_epoch=0,
                last_producer_epoch=last_epoch,
                txn_timeout_ms=timeout_ms,
                txn_start_timestamp_ms=-1,
            )
        else:
            bumped = meta.producer_epoch + 1
            if expected is None:
                epoch, last_epoch = bumped, NO_PRODUCER_EPOCH
            elif meta.producer_epoch == NO_PRODUCER_EPOCH or expected[1] == meta.producer_epoch:
                epoch, last_epoch = bumped, meta.producer_epoch
            elif expected[1] == meta.last_producer_epoch:
                # A retry of an InitProducerId whose answer was lost: answer it again.
                epoch, last_epoch = meta.producer_epoch, meta.last_producer_epoch
            else:
                raise ProducerFencedError(
                    f"epoch {expected[1]} is neither the current {meta.producer_epoch} nor "
                    f"the previous {meta.last_producer_epoch}"
                )
            self._transition(
                meta,
                EMPTY,
                now_ms,
                producer_epoch=epoch,
                last_producer_epoch=last_epoch,
                txn_timeout_ms=timeout_ms,
                txn_start_timestamp_ms=-1,
            )
        return InitResult(meta.producer_id, meta.producer_epoch)

    @staticmethod
    def _valid_producer_id(meta: TransactionMetadata, expected: tuple[int, int]) -> bool:
        """Kafka's isValidProducerId: a just-created id, the current producer id, or the
        previous one with an exhausted epoch (a retry after a producer-id rotation)."""
        producer_id, epoch = expected
        return (
            meta.producer_epoch == NO_PRODUCER_EPOCH
            or producer_id == meta.producer_id
            or (producer_id == meta.previous_producer_id and is_epoch_exhausted(epoch))
        )

    def _wait(
        self,
        meta: TransactionMetadata,
        timeout_ms: int,
        expected: tuple[int, int] | None,
        markers: MarkerWork | None,
    ) -> InitPending:
        pending = InitPending(markers)
        waiter = _InitWaiter(pending, timeout_ms, expected)
        self._waiters.setdefault(meta.transactional_id, []).append(waiter)
        return pending

    def _fence_and_abort(self, meta: TransactionMetadata, now_ms: int) -> MarkerWork:
        """Ongoing -> (PrepareEpochFence) -> PrepareAbort with the epoch bumped."""
        epoch = min(meta.producer_epoch + 1, MAX_PRODUCER_EPOCH)
        self._transition(
            meta, PREPARE_ABORT, now_ms, producer_epoch=epoch, last_producer_epoch=NO_PRODUCER_EPOCH
        )
        return self._marker_work(meta)

    # ------------------------------------------------------------------------------------------
    # AddPartitionsToTxn / AddOffsetsToTxn.

    def _owned(
        self, transactional_id: str, producer_id: int, producer_epoch: int
    ) -> TransactionMetadata:
        """The id's metadata if (producer_id, producer_epoch) own it, else the error Kafka sends."""
        if not transactional_id:
            raise InvalidRequestError("empty transactional id")
        meta = self._txns.get(transactional_id)
        if meta is None:
            raise InvalidProducerIdMappingError(
                f"transactional id {transactional_id!r} is not known (InitProducerId first)"
            )
        if meta.producer_id != producer_id:
            raise InvalidProducerIdMappingError(
                f"producer id {producer_id} is not transactional id {transactional_id!r}'s"
            )
        if meta.producer_epoch != producer_epoch:
            raise ProducerFencedError(
                f"epoch {producer_epoch} of producer {producer_id} is not the current "
                f"{meta.producer_epoch}"
            )
        return meta

    def add_partitions(
        self,
        transactional_id: str,
        producer_id: int,
        producer_epoch: int,
        partitions: Iterable[TopicPartition],
        now_ms: int,
    ) -> dict[TopicPartition, KafkaApiError | None]:
        """AddPartitionsToTxn (v0-v3 client form): add partitions to the open transaction.

        Empty/Complete* start a transaction (Ongoing, start timestamp = now). Either every
        partition is added or none is.

        Returns:
            Per partition: None (added, or already in the transaction) or the error. A request
            error (unknown id, wrong producer id, fenced epoch, markers being written) is the
            same instance for every partition; with an unknown topic or partition that one gets
            UNKNOWN_TOPIC_OR_PARTITION and the others OPERATION_NOT_ATTEMPTED.
        """
        parts = [(str(t), int(p)) for t, p in partitions]
        if len(parts) > 1:
            parts = list(dict.fromkeys(parts))
        unknown = [tp for tp in parts if not self._partition_exists(tp)]
        if unknown:
            return {
                tp: UnknownTopicOrPartitionError(f"{tp[0]}-{tp[1]}")
                if tp in unknown
                else OperationNotAttemptedError(f"{tp[0]}-{tp[1]}")
                for tp in parts
            }
        try:
            self._add(transactional_id, producer_id, producer_epoch, parts, now_ms)
        except KafkaApiError as error:
            return dict.fromkeys(parts, error)
        return dict.fromkeys(parts)

    def add_partition(
        self,
        transactional_id: str,
        producer_id: int,
        producer_epoch: int,
        partition: TopicPartition,
        now_ms: int,
    ) -> None:
        """``add_partitions`` of one partition the caller knows exists (the embedded
        producer, which resolved it; a partition deleted meanwhile fails its append).

        Raises:
            The request errors of ``add_partitions``: InvalidProducerIdMappingError,
            ProducerFencedError, ConcurrentTransactionsError, InvalidTxnStateError.
        """
        self._add(transactional_id, producer_id, producer_epoch, (partition,), now_ms)

    def add_offsets(
        self,
        transactional_id: str,
        producer_id: int,
        producer_epoch: int,
        group_id: str,
        now_ms: int,
    ) -> TopicPartition:
        """AddOffsetsToTxn: add the group's ``__consumer_offsets`` partition to the transaction.

        Returns:
            The partition added, so TxnOffsetCommit's writes and the marker meet there.

        Raises:
            The errors of ``add_partitions`` (as exceptions): InvalidProducerIdMappingError,
            ProducerFencedError, ConcurrentTransactionsError, InvalidRequestError.
        """
        tp = (OFFSETS_TOPIC, self._offsets_partition(group_id))
        self._add(transactional_id, producer_id, producer_epoch, [tp], now_ms)
        return tp

    def _add(
        self,
        transactional_id: str,
        producer_id: int,
        producer_epoch: int,
        parts: Sequence[TopicPartition],
        now_ms: int,
    ) -> None:
        meta = self._owned(transactional_id, producer_id, producer_epoch)
        if meta.state in _PREPARING:
            raise ConcurrentTransactionsError(
                f"transactional id {transactional_id!r} is completing its transaction "
                f"({meta.state.kafka_name})"
            )
        if meta.state is ONGOING:
            if meta.partitions.issuperset(parts):
                return
            meta.partitions.update(parts)
            self._move(meta, ONGOING, now_ms)
            return
        if meta.state not in _CAN_START:
            raise InvalidTxnStateError(
                f"transactional id {transactional_id!r} is {meta.state.kafka_name}"
            )
        meta.partitions = set(parts)
        meta.txn_start_timestamp_ms = now_ms
        self._move(meta, ONGOING, now_ms)
        if transactional_id in self._after_prepare:
            # The previous transaction's Prepare* record may be the id's last durable one
            # (its Complete* is lazy). Recovery would write its markers again, at the end of
            # partitions that by then hold this transaction's data, and commit or abort that
            # too: this Ongoing record must be durable before any of that data is written.
            self._after_prepare.discard(transactional_id)
            self.sync_pending = True

    def _partition_exists(self, tp: TopicPartition) -> bool:
        if self._partition_count is None:
            return True
        count = self._partition_count(tp[0])
        return count is not None and 0 <= tp[1] < count

    def verify_partitions(
        self,
        transactional_id: str,
        producer_id: int,
        producer_epoch: int,
        partitions: Iterable[TopicPartition],
    ) -> dict[TopicPartition, KafkaApiError | None]:
        """AddPartitionsToTxn v4 ``VerifyOnly``: is each partition in the open transaction?

        For the produce path (kafka-spec.md c.3 step 4): a transactional batch to a partition
        that is not in the producer's Ongoing transaction must be refused. Changes nothing.

        Returns:
            Per partition: None, or INVALID_TXN_STATE (not in the transaction), or the request
            error (INVALID_PRODUCER_ID_MAPPING, PRODUCER_FENCED, CONCURRENT_TRANSACTIONS).
        """
        parts = list(dict.fromkeys((str(t), int(p)) for t, p in partitions))
        try:
            meta = self._owned(transactional_id, producer_id, producer_epoch)
            if meta.state in _PREPARING:
                raise ConcurrentTransactionsError(meta.state.kafka_name)
        except KafkaApiError as error:
            return dict.fromkeys(parts, error)
        return {
            tp: None
            if meta.state is ONGOING and tp in meta.partitions
            else InvalidTxnStateError(f"{tp[0]}-{tp[1]} is not in the transaction")
            for tp in parts
        }

    # ------------------------------------------------------------------------------------------
    # EndTxn and markers.

    def end_txn(
        self,
        transactional_id: str,
        producer_id: int,
        producer_epoch: int,
        commit: bool,
        now_ms: int,
    ) -> MarkerWork | None:
        """EndTxn: Ongoing -> PrepareCommit/PrepareAbort (spec d.3).

        Answer the client NONE once the Prepare* record is durable, then write the markers.
        A commit with one participant is one-phase (module docstring): no record, and the
        answer waits for the marker instead.

        Returns:
            The markers to write, or None for a retry of an EndTxn that already completed
            (commit after CompleteCommit, abort after CompleteAbort): answer NONE.

        Raises:
            InvalidProducerIdMappingError: unknown id, or not its producer id.
            ProducerFencedError: not the current epoch (e.g. fenced by a timeout abort).
            ConcurrentTransactionsError: the same outcome is being completed (a retry).
            InvalidTxnStateError: no transaction (Empty), or the opposite outcome is being
                completed or was completed.
        """
        meta = self._owned(transactional_id, producer_id, producer_epoch)
        state = meta.state
        if state is ONGOING:
            if not commit:
                self._move(meta, PREPARE_ABORT, now_ms)
            elif len(meta.partitions) == 1 and next(iter(meta.partitions))[0] != OFFSETS_TOPIC:
                self._move(meta, PREPARE_COMMIT, now_ms, persist=False)
                self._one_phase.add(transactional_id)
            else:
                if self._sync_partitions is not None:
                    self._sync_partitions(sorted(meta.partitions))
                self._move(meta, PREPARE_COMMIT, now_ms)
            return self._marker_work(meta)
        if state is (COMPLETE_COMMIT if commit else COMPLETE_ABORT):
            return None
        if state is (PREPARE_COMMIT if commit else PREPARE_ABORT):
            raise ConcurrentTransactionsError(
                f"transactional id {transactional_id!r} is already {state.kafka_name}"
            )
        outcome = "commit" if commit else "abort"
        raise InvalidTxnStateError(
            f"EndTxn({outcome}) for transactional id {transactional_id!r} in {state.kafka_name}"
        )

    def markers_written(self, transactional_id: str, now_ms: int) -> bool:
        """Every marker of the id's Prepare* transaction is written: -> CompleteCommit/Abort.

        Then runs the InitProducerIds that waited for this completion, in arrival order, and
        completes their pendings.

        Returns:
            True if a transaction completed, False if the id had none in Prepare* (e.g. the
            same ``MarkerWork`` reported twice).
        """
        meta = self._txns.get(transactional_id)
        if meta is None or meta.state not in _PREPARING:
            return False
        done = COMPLETE_COMMIT if meta.state is PREPARE_COMMIT else COMPLETE_ABORT
        self._one_phase.discard(transactional_id)
        self._move(meta, done, now_ms)
        if transactional_id not in self._waiters:
            return True
        for waiter in self._waiters.pop(transactional_id):
            if waiter.pending.cancelled():
                continue
            try:
                out = self._init(meta, waiter.transaction_timeout_ms, waiter.expected, now_ms)
            except KafkaApiError as error:
                self._deliveries.append((waiter.pending, None, error))
            else:
                assert isinstance(out, InitResult), "Complete* never waits"
                self._deliveries.append((waiter.pending, out, None))
        self._deliver()
        return True

    def is_decided(self, transactional_id: str, commit: bool) -> bool:
        """Whether the id's transaction has durably reached this outcome: Complete*, or a
        Prepare* whose record exists (a one-phase commit is decided only by its marker).
        A caller whose marker write failed may then answer NONE: recovery finishes it."""
        meta = self._txns.get(transactional_id)
        if meta is None:
            return False
        if meta.state is (COMPLETE_COMMIT if commit else COMPLETE_ABORT):
            return True
        return meta.state is (PREPARE_COMMIT if commit else PREPARE_ABORT) and transactional_id not in self._one_phase

    def open_transaction_partitions(self) -> dict[int, set[TopicPartition]]:
        """Producer id -> the partitions of its Ongoing or Prepare* transaction: the open
        transactions this coordinator will end (by EndTxn, timeout or recovery). An open
        transaction found in a partition's log outside of this is hanging (its Ongoing record
        was lost) and the caller must abort it."""
        return {
            meta.producer_id: set(meta.partitions)
            for meta in self._txns.values()
            if meta.state is ONGOING or meta.state in _PREPARING
        }

    def pending_markers(self) -> list[MarkerWork]:
        """The markers still to write: one ``MarkerWork`` per id in PrepareCommit/PrepareAbort."""
        return [self._marker_work(m) for m in self._txns.values() if m.state in _PREPARING]

    # ------------------------------------------------------------------------------------------
    # Timers.

    def tick(self, now_ms: int) -> list[MarkerWork]:
        """Abort timed-out transactions and expire idle transactional ids.

        An Ongoing transaction with ``start + transaction.timeout.ms < now`` is aborted with
        its epoch bumped (Kafka's abortTimedOutTransactions), so the producer's next request
        is fenced. An id in Empty/Complete* whose last update is at least
        ``transactional.id.expiration.ms`` old is removed (tombstone record).

        Returns:
            The ABORT markers of the transactions aborted now.
        """
        work: list[MarkerWork] = []
        expired: list[str] = []
        horizon = now_ms - self.config.transactional_id_expiration_ms
        for txn_id, meta in self._txns.items():
            if meta.state is ONGOING:
                if meta.txn_start_timestamp_ms + meta.txn_timeout_ms < now_ms:
                    work.append(self._fence_and_abort(meta, now_ms))
            elif (
                meta.state.expiration_allowed
                and meta.txn_last_update_timestamp_ms <= horizon
                and not self._waiters.get(txn_id)
            ):
                expired.append(txn_id)
        for txn_id in expired:
            del self._txns[txn_id]
            if self._latest is not None:
                self._latest[txn_id] = None
            else:
                self._records.append((rec.encode_key(txn_id), None))
        return work

    def next_deadline_ms(self) -> int | None:
        """The earliest ``now_ms`` at which ``tick`` has something to do, or None."""
        deadlines = []
        for meta in self._txns.values():
            if meta.state is ONGOING:
                deadlines.append(meta.txn_start_timestamp_ms + meta.txn_timeout_ms + 1)
            elif meta.state.expiration_allowed:
                deadlines.append(
                    meta.txn_last_update_timestamp_ms + self.config.transactional_id_expiration_ms
                )
        return min(deadlines, default=None)

    # ------------------------------------------------------------------------------------------
    # DescribeTransactions / ListTransactions and lookups.

    def state_of(self, transactional_id: str) -> TransactionState | None:
        """The id's state, or None if the coordinator does not know it."""
        meta = self._txns.get(transactional_id)
        return None if meta is None else meta.state

    def transactional_ids(self) -> list[str]:
        return list(self._txns)

    def describe_transactions(self, transactional_ids: Iterable[str]) -> list[DescribedTransaction]:
        """DescribeTransactions: one entry per requested id, in request order.

        Unknown ids get TRANSACTIONAL_ID_NOT_FOUND (105). ``topics`` lists the partitions of
        the open (or completing) transaction.
        """
        out = []
        for txn_id in transactional_ids:
            meta = self._txns.get(txn_id)
            if meta is None or meta.state is DEAD:
                out.append(DescribedTransaction(txn_id, TransactionalIdNotFoundError.code))
                continue
            out.append(
                DescribedTransaction(
                    transactional_id=txn_id,
                    transaction_state=meta.state.kafka_name,
                    transaction_timeout_ms=meta.txn_timeout_ms,
                    transaction_start_time_ms=meta.txn_start_timestamp_ms,
                    producer_id=meta.producer_id,
                    producer_epoch=meta.producer_epoch,
                    topics=rec.group_partitions(meta.partitions),
                )
            )
        return out

    def list_transactions(
        self,
        state_filters: Iterable[str] = (),
        producer_id_filters: Iterable[int] = (),
        duration_filter_ms: int = -1,
        now_ms: int | None = None,
    ) -> ListTransactionsResult:
        """ListTransactions: every known id, filtered as Kafka filters.

        Args:
            state_filters: Kafka state names; empty = all. Unknown names are reported back in
                ``unknown_state_filters`` and match nothing.
            producer_id_filters: producer ids; empty = all.
            duration_filter_ms: v1: if >= 0, only transactions running longer than this
                (``now_ms - start > duration``); needs ``now_ms``.
        """
        names = list(dict.fromkeys(state_filters))
        states = {s for s in map(TransactionState.from_kafka_name, names) if s is not None}
        unknown = tuple(n for n in names if TransactionState.from_kafka_name(n) is None)
        pids = set(producer_id_filters)
        if duration_filter_ms >= 0:
            assert now_ms is not None, "duration_filter_ms needs now_ms"
        out = []
        for txn_id, meta in self._txns.items():
            if meta.state is DEAD:
                continue
            if pids and meta.producer_id not in pids:
                continue
            if names and meta.state not in states:
                continue
            if duration_filter_ms >= 0:
                assert now_ms is not None
                if now_ms - meta.txn_start_timestamp_ms <= duration_filter_ms:
                    continue
            out.append(ListedTransaction(txn_id, meta.producer_id, meta.state.kafka_name))
        return ListTransactionsResult(tuple(out), unknown)

    # ------------------------------------------------------------------------------------------
    # Recovery.

    def load(self, records: Iterable[Record], now_ms: int) -> list[MarkerWork]:
        """Rebuild the state by replaying ``__transaction_state`` records in log order.

        The last value of each key wins; a tombstone removes the id. Ongoing transactions keep
        their start timestamp and timeout (``tick`` aborts them when due); Prepare*
        transactions must complete: their ``MarkerWork`` is returned. A PrepareEpochFence
        value (Kafka never writes one) loads as Ongoing; a Dead one as removed. Ids already in
        memory must not appear in ``records``.

        Args:
            now_ms: the load time; unused by the replay itself (timestamps come from the
                records), kept so every coordinator call takes the clock the same way.

        Returns:
            The markers to write, one per transaction found in PrepareCommit/PrepareAbort.

        Raises:
            MalformedPayloadError: a key or value does not decode, or has an unknown state.
        """
        del now_ms
        latest: dict[str, rec.TransactionLogValue | None] = {}
        for key, value in records:
            k = rec.decode_key(key)
            if isinstance(k, rec.UnknownKey):
                continue
            latest[k.transactional_id] = None if value is None else rec.decode_value(value)
        work = []
        for txn_id, v in latest.items():
            if v is None:
                continue
            try:
                state = TransactionState(v.transaction_status)
            except ValueError:
                raise MalformedPayloadError(
                    f"transactional id {txn_id!r}: unknown state id {v.transaction_status}"
                ) from None
            if state is DEAD:
                continue
            if state is PREPARE_EPOCH_FENCE:
                state = ONGOING
            assert txn_id not in self._txns, f"transactional id {txn_id!r} loaded twice"
            partitions: set[TopicPartition] = set()
            if state is not EMPTY:
                for topic, ids in v.partitions or ():
                    partitions.update((topic, p) for p in ids)
            meta = TransactionMetadata(
                transactional_id=txn_id,
                producer_id=v.producer_id,
                producer_epoch=v.producer_epoch,
                txn_timeout_ms=v.transaction_timeout_ms,
                state=state,
                txn_last_update_timestamp_ms=v.last_update_timestamp_ms,
                txn_start_timestamp_ms=v.start_timestamp_ms,
                partitions=partitions,
                previous_producer_id=v.previous_producer_id,
            )
            self._txns[txn_id] = meta
            self._highest_producer_id = max(self._highest_producer_id, v.producer_id)
            if state in _PREPARING:
                work.append(self._marker_work(meta))
        return work
