"""The transaction coordinator (kafka-spec.md d): transactional ids, epochs, transaction states.

- ``coordinator``: ``TransactionCoordinator``, the deterministic state machine behind
  InitProducerId (transactional), AddPartitionsToTxn, AddOffsetsToTxn, EndTxn,
  DescribeTransactions and ListTransactions; timeouts and expiration through ``tick``.
- ``metadata``: ``TransactionState`` (Kafka's ids and names) and the result values
  (``InitResult``, ``MarkerWork``, ...).
- ``records``: ``__transaction_state`` keys and values, byte-exact with Kafka.
- ``errors``: the wire errors these raise.
"""

from headwater.coordinator.txn.coordinator import (
    OFFSETS_TOPIC,
    InitPending,
    TransactionCoordinator,
    TransactionCoordinatorConfig,
)
from headwater.coordinator.txn.errors import (
    ConcurrentTransactionsError,
    InvalidProducerEpochError,
    InvalidProducerIdMappingError,
    InvalidRequestError,
    InvalidTransactionTimeoutError,
    InvalidTxnStateError,
    OperationNotAttemptedError,
    ProducerFencedError,
    TransactionalIdNotFoundError,
)
from headwater.coordinator.txn.metadata import (
    MAX_PRODUCER_EPOCH,
    DescribedTransaction,
    InitResult,
    ListedTransaction,
    ListTransactionsResult,
    MarkerWork,
    TransactionState,
)
from headwater.coordinator.txn.records import transaction_state_partition_for

__all__ = [
    "TransactionCoordinator",
    "TransactionCoordinatorConfig",
    "InitPending",
    "InitResult",
    "MarkerWork",
    "TransactionState",
    "DescribedTransaction",
    "ListedTransaction",
    "ListTransactionsResult",
    "MAX_PRODUCER_EPOCH",
    "OFFSETS_TOPIC",
    "transaction_state_partition_for",
    "ConcurrentTransactionsError",
    "InvalidProducerEpochError",
    "InvalidProducerIdMappingError",
    "InvalidRequestError",
    "InvalidTransactionTimeoutError",
    "InvalidTxnStateError",
    "OperationNotAttemptedError",
    "ProducerFencedError",
    "TransactionalIdNotFoundError",
]
