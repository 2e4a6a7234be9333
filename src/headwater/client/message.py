"""Message, TopicPartition and KafkaError, shaped like confluent_kafka's.

`Message` is what Consumer.poll()/consume() return and what delivery callbacks receive. Its
accessors are methods, as in confluent-kafka (`msg.value()`, `msg.offset()`), so code written
for confluent-kafka reads headwater messages unchanged.
"""

from __future__ import annotations

import dataclasses

from headwater._native import _native

# Timestamp types (confluent_kafka.TIMESTAMP_*).
TIMESTAMP_NOT_AVAILABLE = 0
TIMESTAMP_CREATE_TIME = 1
TIMESTAMP_LOG_APPEND_TIME = 2

# Special offsets (confluent_kafka.OFFSET_*).
OFFSET_BEGINNING = -2
OFFSET_END = -1
OFFSET_STORED = -1000
OFFSET_INVALID = -1001


# librdkafka's names for the codes headwater raises (rdkafka.h RD_KAFKA_RESP_ERR_*).
_NAMES = {
    -191: "_PARTITION_EOF",
    -1: "UNKNOWN",
    0: "NO_ERROR",
    1: "OFFSET_OUT_OF_RANGE",
    2: "INVALID_MSG",
    3: "UNKNOWN_TOPIC_OR_PART",
    10: "MSG_SIZE_TOO_LARGE",
    12: "OFFSET_METADATA_TOO_LARGE",
    15: "COORDINATOR_NOT_AVAILABLE",
    17: "TOPIC_EXCEPTION",
    22: "ILLEGAL_GENERATION",
    23: "INCONSISTENT_GROUP_PROTOCOL",
    24: "INVALID_GROUP_ID",
    25: "UNKNOWN_MEMBER_ID",
    26: "INVALID_SESSION_TIMEOUT",
    27: "REBALANCE_IN_PROGRESS",
    32: "INVALID_TIMESTAMP",
    36: "TOPIC_ALREADY_EXISTS",
    37: "INVALID_PARTITIONS",
    38: "INVALID_REPLICATION_FACTOR",
    40: "INVALID_CONFIG",
    45: "OUT_OF_ORDER_SEQUENCE_NUMBER",
    46: "DUPLICATE_SEQUENCE_NUMBER",
    47: "INVALID_PRODUCER_EPOCH",
    48: "INVALID_TXN_STATE",
    56: "KAFKA_STORAGE_ERROR",
    59: "UNKNOWN_PRODUCER_ID",
    68: "NON_EMPTY_GROUP",
    69: "GROUP_ID_NOT_FOUND",
    76: "UNSUPPORTED_COMPRESSION_TYPE",
    79: "MEMBER_ID_REQUIRED",
    81: "GROUP_MAX_SIZE_REACHED",
    82: "FENCED_INSTANCE_ID",
    87: "INVALID_RECORD",
}


class KafkaError:
    """An error code with a name and a message (confluent_kafka.KafkaError's shape)."""

    _PARTITION_EOF = -191
    NO_ERROR = 0

    __slots__ = ("_code", "_str", "_retriable")

    def __init__(self, code: int, message: str = "", retriable: bool = False) -> None:
        self._code = code
        self._str = message
        self._retriable = retriable

    @classmethod
    def from_exception(cls, exc: BaseException) -> KafkaError:
        return cls(getattr(exc, "code", -1), str(exc), bool(getattr(exc, "retriable", False)))

    def code(self) -> int:
        return self._code

    def str(self) -> str:
        return self._str

    def name(self) -> str:
        """librdkafka's name for the code (what confluent_kafka.KafkaError.name() returns)."""
        return _NAMES.get(self._code, f"ERR_{self._code}")

    def retriable(self) -> bool:
        return self._retriable

    def __eq__(self, other: object) -> bool:
        if isinstance(other, KafkaError):
            return self._code == other._code
        if isinstance(other, int):
            return self._code == other
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self._code)

    def __repr__(self) -> str:
        return f"KafkaError(code={self._code}, {self._str!r})"


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


class KafkaException(Exception):
    """confluent_kafka.KafkaException: ``args[0]`` is the KafkaError."""

    def __str__(self) -> str:
        err = self.args[0] if self.args else None
        if isinstance(err, KafkaError):
            return f"KafkaError{{code={err.name()},val={err.code()},str=\"{err.str()}\"}}"
        return super().__str__()


@dataclasses.dataclass(frozen=True)
class ConsumerGroupMetadata:
    """What Consumer.consumer_group_metadata() returns: the group identity a transactional
    producer's send_offsets_to_transaction() commits under."""

    group_id: str
    generation_id: int = -1
    member_id: str = ""
    group_instance_id: str | None = None
