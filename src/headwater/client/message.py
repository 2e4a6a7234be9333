"""Message and TopicPartition, shaped like confluent_kafka's (KafkaError and KafkaException,
which every layer raises, are headwater.errors'; they are re-exported here).

`Message` is what Consumer.poll()/consume() return and what delivery callbacks receive. Its
accessors are methods, as in confluent-kafka (`msg.value()`, `msg.offset()`), so code written
for confluent-kafka reads headwater messages unchanged.
"""

from __future__ import annotations

import dataclasses

from headwater._native import _native
from headwater.errors import KafkaError as KafkaError
from headwater.errors import KafkaException as KafkaException

# Timestamp types (confluent_kafka.TIMESTAMP_*).
TIMESTAMP_NOT_AVAILABLE = 0
TIMESTAMP_CREATE_TIME = 1
TIMESTAMP_LOG_APPEND_TIME = 2

# Special offsets (confluent_kafka.OFFSET_*).
OFFSET_BEGINNING = -2
OFFSET_END = -1
OFFSET_STORED = -1000
OFFSET_INVALID = -1001


class TopicPartition:
    """(topic, partition, offset) with confluent_kafka.TopicPartition's attribute names."""

    __slots__ = ("topic", "partition", "offset", "metadata", "leader_epoch", "error")

    def __init__(
        self,
        topic: str,
        partition: int = -1,
        offset: int = OFFSET_INVALID,
        metadata: str | None = None,
        leader_epoch: int | None = None,
    ) -> None:
        self.topic = topic
        self.partition = partition
        self.offset = offset
        self.metadata = metadata
        self.leader_epoch = leader_epoch
        self.error: KafkaError | None = None

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, TopicPartition):
            return NotImplemented
        return (self.topic, self.partition, self.offset) == (other.topic, other.partition, other.offset)

    def __hash__(self) -> int:
        return hash((self.topic, self.partition))

    def __lt__(self, other: TopicPartition) -> bool:
        return (self.topic, self.partition) < (other.topic, other.partition)

    def __repr__(self) -> str:
        return f"TopicPartition{{topic={self.topic},partition={self.partition},offset={self.offset},error={self.error}}}"


# Message is implemented in C (headwater._native): consumers create one per record, and a
# Python __init__ would cost more than decoding the record.
Message = _native.Message


@dataclasses.dataclass(frozen=True)
class ConsumerGroupMetadata:
    """What Consumer.consumer_group_metadata() returns: the group identity a transactional
    producer's send_offsets_to_transaction() commits under."""

    group_id: str
    generation_id: int = -1
    member_id: str = ""
    group_instance_id: str | None = None
