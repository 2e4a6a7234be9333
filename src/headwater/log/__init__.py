"""The log layer: partition logs over the C segment core (see docs/storage.md)."""

from headwater.log.loader import RecoveryResult
from headwater.log.partition_log import (
    READ_COMMITTED,
    READ_UNCOMMITTED,
    AppendResult,
    PartitionLog,
    ReadResult,
)
from headwater.log.producer_state import ProducerStateManager
from headwater.log.segment import CorruptRange, LogSegment
from headwater.log.txn_index import AbortedTxn, TxnIndex

__all__ = [
    "READ_COMMITTED",
    "READ_UNCOMMITTED",
    "AbortedTxn",
    "AppendResult",
    "PartitionLog",
    "ProducerStateManager",
    "ReadResult",
    "RecoveryResult",
    "CorruptRange",
    "LogSegment",
    "TxnIndex",
]
