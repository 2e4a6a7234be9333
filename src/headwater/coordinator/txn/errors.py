"""Wire errors of the transaction coordinator (kafka-spec.md c.6, d.3).

All live in ``headwater.errors`` (one class per code, so an ``except`` catches the same error
whichever layer raised it); this module re-exports the ones the coordinator raises.
"""

from __future__ import annotations

from headwater.errors import (
    ConcurrentTransactionsError,
    InvalidProducerEpochError,
    InvalidProducerIdMappingError,
    InvalidRequestError,
    InvalidTransactionTimeoutError,
    InvalidTxnStateError,
    MalformedPayloadError,
    OperationNotAttemptedError,
    ProducerFencedError,
    TransactionalIdNotFoundError,
    TransactionCoordinatorFencedError,
    UnknownProducerIdError,
    UnknownTopicOrPartitionError,
)

__all__ = [
    "ConcurrentTransactionsError",
    "InvalidProducerEpochError",
    "InvalidProducerIdMappingError",
    "InvalidRequestError",
    "InvalidTransactionTimeoutError",
    "InvalidTxnStateError",
    "MalformedPayloadError",
    "OperationNotAttemptedError",
    "ProducerFencedError",
    "TransactionCoordinatorFencedError",
    "TransactionalIdNotFoundError",
    "UnknownProducerIdError",
    "UnknownTopicOrPartitionError",
]
