"""The embedded faces: Broker, Producer, Consumer, AdminClient (confluent-kafka shaped)."""

from headwater.client.admin import (
    AdminClient,
    ConfigResource,
    ConsumerGroupState,
    ConsumerGroupTopicPartitions,
    ConsumerGroupType,
    NewPartitions,
    NewTopic,
    OffsetSpec,
    TopicCollection,
)
from headwater.client.aio import AIOConsumer, AIOProducer, ConsumerRecord, RecordMetadata
from headwater.client.broker import Broker
from headwater.client.consumer import ColumnBatch, Consumer
from headwater.client.message import (
    OFFSET_BEGINNING,
    OFFSET_END,
    OFFSET_INVALID,
    OFFSET_STORED,
    ConsumerGroupMetadata,
    KafkaError,
    KafkaException,
    Message,
    TopicPartition,
)
from headwater.client.producer import Producer
from headwater.client.sink import (
    DEFAULT_DEDUP_HEADER,
    ExactlyOnceSink,
    SinkApplyError,
    SinkOffsetsError,
    SQLiteStore,
    TransactionalStore,
    dedup_key,
)

__all__ = [
    "AIOConsumer",
    "AIOProducer",
    "ConsumerRecord",
    "RecordMetadata",
    "AdminClient",
    "Broker",
    "ColumnBatch",
    "ConfigResource",
    "ConsumerGroupState",
    "ConsumerGroupTopicPartitions",
    "ConsumerGroupType",
    "OffsetSpec",
    "TopicCollection",
    "Consumer",
    "ConsumerGroupMetadata",
    "KafkaError",
    "KafkaException",
    "Message",
    "NewPartitions",
    "NewTopic",
    "OFFSET_BEGINNING",
    "OFFSET_END",
    "OFFSET_INVALID",
    "OFFSET_STORED",
    "Producer",
    "TopicPartition",
    "DEFAULT_DEDUP_HEADER",
    "ExactlyOnceSink",
    "SinkApplyError",
    "SinkOffsetsError",
    "SQLiteStore",
    "TransactionalStore",
    "dedup_key",
]
