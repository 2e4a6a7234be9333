"""The log layer: partition logs over the C segment core (see docs/storage.md)."""

from headwater.log.loader import RecoveryResult
from headwater.log.partition_log import AppendResult, PartitionLog, ReadResult
from headwater.log.producer_state import ProducerStateManager
from headwater.log.segment import CorruptRange, LogSegment

__all__ = [
    "AppendResult",
    "PartitionLog",
    "ProducerStateManager",
    "ReadResult",
    "RecoveryResult",
    "CorruptRange",
    "LogSegment",
]
