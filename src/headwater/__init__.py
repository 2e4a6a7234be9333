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


_CLIENT_NAMES = (
    "KafkaException", "ConsumerGroupMetadata",
    "AdminClient", "Broker", "Consumer", "KafkaError", "Message", "NewPartitions", "NewTopic",
    "Producer", "TopicPartition", "OFFSET_BEGINNING", "OFFSET_END", "OFFSET_INVALID",
    "OFFSET_STORED", "ConfigResource", "ColumnBatch", "AIOProducer", "AIOConsumer",
    "ExactlyOnceSink", "SQLiteStore", "TransactionalStore", "ConsumerGroupTopicPartitions",
    "OffsetSpec", "ConsumerGroupState", "ConsumerGroupType",
    "TopicCollection",
)


def __getattr__(name: str) -> object:
    # The log and client layers are imported lazily so `import headwater` stays cheap for
    # codec users.
    if name in ("PartitionLog", "RecoveryResult"):
        from headwater import log

        return getattr(log, name)
    if name in _CLIENT_NAMES:
        from headwater import client

        return getattr(client, name)
    raise AttributeError(name)


__all__ = [
    *_CLIENT_NAMES,
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
