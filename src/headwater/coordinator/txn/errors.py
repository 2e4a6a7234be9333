"""Wire errors of the transaction coordinator (kafka-spec.md c.6, d.3).

The codes that already live in ``headwater.errors`` are re-exported; the ones defined here are
new with issue 5 and belong in ``headwater.errors`` too (one class per code, so an ``except``
catches the same error whichever layer raised it). They are kept here until the lead moves
them; importers should use this module's names, which will keep working after the move.
"""

from __future__ import annotations

from headwater.errors import (
    InvalidProducerEpochError,
    InvalidRequestError,
    InvalidTxnStateError,
    KafkaApiError,
    MalformedPayloadError,
    TransactionCoordinatorFencedError,
    UnknownProducerIdError,
    UnknownTopicOrPartitionError,
)


class InvalidProducerIdMappingError(KafkaApiError):
    """INVALID_PRODUCER_ID_MAPPING (49): the transactional id is unknown to the coordinator, or
    the request's producer id is not the one the transactional id maps to."""

    code = 49


class InvalidTransactionTimeoutError(KafkaApiError):
    """INVALID_TRANSACTION_TIMEOUT (50): ``transaction.timeout.ms`` is not in
    (0, ``transaction.max.timeout.ms``]."""

    code = 50


class ConcurrentTransactionsError(KafkaApiError):
    """CONCURRENT_TRANSACTIONS (51): the coordinator is still completing the previous
    transaction of this transactional id (markers being written); retry after a backoff."""

    code = 51
    retriable = True


class OperationNotAttemptedError(KafkaApiError):
    """OPERATION_NOT_ATTEMPTED (55): another partition of the same AddPartitionsToTxn request
    failed, so this one was not added."""

    code = 55


class ProducerFencedError(KafkaApiError):
    """PRODUCER_FENCED (90): a newer producer instance (a higher epoch) owns the transactional
    id. Servers answer INVALID_PRODUCER_EPOCH (47) instead for InitProducerId < v4 and
    EndTxn/AddPartitionsToTxn/AddOffsetsToTxn < v2, as Kafka's KafkaApis does."""

    code = 90


class TransactionalIdNotFoundError(KafkaApiError):
    """TRANSACTIONAL_ID_NOT_FOUND (105): DescribeTransactions for an id the coordinator does
    not know (never initialised, or expired)."""

    code = 105


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
