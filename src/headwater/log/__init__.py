"""The log layer: partition logs over the C segment core (see docs/storage.md)."""

from headwater.log.loader import RecoveryResult
from headwater.log.partition_log import PartitionLog, ReadResult
from headwater.log.segment import CorruptRange, LogSegment

__all__ = ["PartitionLog", "ReadResult", "RecoveryResult", "CorruptRange", "LogSegment"]
