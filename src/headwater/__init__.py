"""headwater: a Kafka-compatible partitioned log with a C hot path.

Public names only; see docs/storage.md for the storage API.
"""

from headwater.errors import (
    ConfigError,
    CorruptRecordError,
    HeadwaterError,
    KafkaApiError,
    KafkaStorageError,
    StorageError,
)
from headwater.record import crc32c

__version__ = "0.1.0"


def __getattr__(name: str) -> object:
    # The log layer is imported lazily so `import headwater` stays cheap for codec users.
    if name in ("PartitionLog", "RecoveryResult"):
        from headwater import log

        return getattr(log, name)
    raise AttributeError(name)


__all__ = [
    "PartitionLog",
    "RecoveryResult",
    "crc32c",
    "ConfigError",
    "CorruptRecordError",
    "HeadwaterError",
    "KafkaApiError",
    "KafkaStorageError",
    "StorageError",
]
