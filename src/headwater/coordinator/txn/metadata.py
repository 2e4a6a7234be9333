"""Transaction states and the values the transaction coordinator hands out.

``TransactionState`` is Kafka's TransactionState (kafka-spec.md d.2): the id is the byte stored
in ``__transaction_state`` and ``kafka_name`` is the string DescribeTransactions and
ListTransactions carry. ``TransactionMetadata`` is the coordinator's mutable per-id state;
everything else here is an immutable result.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import NamedTuple

NO_PRODUCER_ID = -1
NO_PRODUCER_EPOCH = -1
MAX_PRODUCER_EPOCH = 32767  # Short.MaxValue: kept free so the coordinator can always fence


class TransactionState(enum.IntEnum):
    """Kafka's transaction states; the value is the id persisted as ``transaction_status``."""

    EMPTY = 0
    ONGOING = 1
    PREPARE_COMMIT = 2
    PREPARE_ABORT = 3
    COMPLETE_COMMIT = 4
    COMPLETE_ABORT = 5
    DEAD = 6
    PREPARE_EPOCH_FENCE = 7

    @property
    def kafka_name(self) -> str:
        """Kafka's name: ``Empty``, ``Ongoing``, ``PrepareCommit``, ... ``PrepareEpochFence``."""
        return _NAMES[self]

    @property
    def expiration_allowed(self) -> bool:
        """Whether an idle transactional id in this state may expire (Empty, Complete*)."""
        return self in (
            TransactionState.EMPTY,
            TransactionState.COMPLETE_COMMIT,
            TransactionState.COMPLETE_ABORT,
        )

    @classmethod
    def from_kafka_name(cls, name: str) -> TransactionState | None:
        """The state called ``name`` in Kafka, or None for an unknown name (case-sensitive)."""
        return _BY_NAME.get(name)


_NAMES = {
    TransactionState.EMPTY: "Empty",
    TransactionState.ONGOING: "Ongoing",
    TransactionState.PREPARE_COMMIT: "PrepareCommit",
    TransactionState.PREPARE_ABORT: "PrepareAbort",
    TransactionState.COMPLETE_COMMIT: "CompleteCommit",
    TransactionState.COMPLETE_ABORT: "CompleteAbort",
    TransactionState.DEAD: "Dead",
    TransactionState.PREPARE_EPOCH_FENCE: "PrepareEpochFence",
}
_BY_NAME = {name: state for state, name in _NAMES.items()}


def is_epoch_exhausted(producer_epoch: int) -> bool:
    """Kafka's ``isEpochExhausted``: no epoch may be handed out past ``Short.MaxValue - 1``."""
    return producer_epoch >= MAX_PRODUCER_EPOCH - 1


@dataclass
class TransactionMetadata:
    """One transactional id's state (Kafka's TransactionMetadata), owned by the coordinator.

    ``previous_producer_id`` (Kafka's lastProducerId) and ``last_producer_epoch`` let a
    KIP-360 InitProducerId retry be recognised; like Kafka with a v0 value, they are not
    persisted and read back as -1.
    """

    transactional_id: str
    producer_id: int
    producer_epoch: int
    txn_timeout_ms: int
    state: TransactionState
    txn_last_update_timestamp_ms: int
    txn_start_timestamp_ms: int = -1
    partitions: set[tuple[str, int]] = field(default_factory=set)
    previous_producer_id: int = NO_PRODUCER_ID
    last_producer_epoch: int = NO_PRODUCER_EPOCH
    # The key of the id's __transaction_state records, encoded once by the coordinator.
    record_key: bytes = field(default=b"", repr=False, compare=False)


@dataclass(frozen=True)
class InitResult:
    """A successful InitProducerId: the producer id and epoch the caller now owns."""

    producer_id: int
    producer_epoch: int


class MarkerWork(NamedTuple):
    """Transaction markers to write: one COMMIT or ABORT control batch per partition.

    Write a control batch with ``producer_id``/``producer_epoch``, the marker value's
    ``coordinator_epoch`` and type COMMIT if ``commit`` else ABORT to every partition in
    ``partitions`` (sorted; ``__consumer_offsets`` partitions included), then call
    ``TransactionCoordinator.markers_written(transactional_id, now_ms)``. An empty
    ``partitions`` still needs that call. Writing a marker twice is harmless: the second one
    finds no open transaction of the producer. (A NamedTuple: one per transaction, made on
    every commit, so it must be cheap to build.)
    """

    transactional_id: str
    producer_id: int
    producer_epoch: int
    coordinator_epoch: int
    commit: bool
    partitions: tuple[tuple[str, int], ...]


@dataclass(frozen=True)
class DescribedTransaction:
    """One DescribeTransactions entry (DescribeTransactionsResponse.TransactionStates).

    ``error_code`` is 0, or TRANSACTIONAL_ID_NOT_FOUND (105) with every other field at its
    default (Kafka fills only the id then).
    """

    transactional_id: str
    error_code: int = 0
    transaction_state: str = ""
    transaction_timeout_ms: int = 0
    transaction_start_time_ms: int = -1
    producer_id: int = NO_PRODUCER_ID
    producer_epoch: int = NO_PRODUCER_EPOCH
    topics: tuple[tuple[str, tuple[int, ...]], ...] = ()


@dataclass(frozen=True)
class ListedTransaction:
    """One ListTransactions entry (ListTransactionsResponse.TransactionStates)."""

    transactional_id: str
    producer_id: int
    transaction_state: str


@dataclass(frozen=True)
class ListTransactionsResult:
    """ListTransactions' answer: the matching transactions and the state filters not known."""

    transaction_states: tuple[ListedTransaction, ...]
    unknown_state_filters: tuple[str, ...] = ()
