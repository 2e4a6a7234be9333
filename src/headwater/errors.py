"""headwater's exception tree.

    HeadwaterError
    ├── StorageError                 internal to the log layer; never sent on the wire as such
    │   ├── CorruptIndexError        an index does not match its segment: rebuild it
    │   ├── SegmentOffsetOverflowError  an offset does not fit a relative index entry: roll
    │   ├── SegmentFullError         the active segment's mapping has no room: roll
    │   ├── CorruptSnapshotError     a producer-state snapshot fails its check: delete, rebuild
    │   └── LogOfflineError          an fsync/msync failed; the log must be reopened (recovery)
    ├── CorruptRecordError           bad batch/record bytes (wire code CORRUPT_MESSAGE = 2)
    │   ├── InvalidCrcError          CRC-32C mismatch
    │   └── TruncatedError           the buffer ends inside a batch or varint
    ├── KafkaApiError(code, retriable)  one subclass per wire error code; also a KafkaException
    │   ├── OffsetOutOfRangeError (1), MessageTooLargeError (10), InvalidRecordError (87), ...
    └── ConfigError                  unknown config name or bad value

    KafkaException                   confluent_kafka.KafkaException: args[0] is a KafkaError
    KafkaError                       confluent_kafka.KafkaError: code(), name(), str(), ...

Codes never change: they are Kafka's (kafka-spec.md g.7), or librdkafka's local (negative)
ones where the embedded client reports what librdkafka would (_NO_OFFSET, _STATE).
"""

from __future__ import annotations


class HeadwaterError(Exception):
    """Base of every exception headwater raises on purpose."""


class StorageError(HeadwaterError):
    """A failure of the storage layer (I/O error, full disk, offline log)."""


class CorruptIndexError(StorageError):
    """An offset or time index does not agree with its segment."""


class SegmentOffsetOverflowError(StorageError):
    """A batch's offsets do not fit the segment's 32-bit relative index entries."""


class SegmentFullError(StorageError):
    """The active segment's mapping has no room for this batch: roll."""


class LogOfflineError(StorageError):
    """The log failed an fsync/msync and refuses work until reopened through recovery.

    Kafka answers KAFKA_STORAGE_ERROR (56) for such a partition.
    """

    code = 56


class ConfigError(HeadwaterError, ValueError):
    """A config name is unknown or its value is out of range."""


# librdkafka's names for the codes headwater raises (rdkafka.h RD_KAFKA_RESP_ERR_*): Kafka's
# wire codes, and librdkafka's local ones (negative) where the embedded API reports what
# librdkafka would.
_NAMES = {
    -191: "_PARTITION_EOF",
    -190: "_UNKNOWN_PARTITION",
    -188: "_UNKNOWN_TOPIC",
    -186: "_INVALID_ARG",
    -185: "_TIMED_OUT",
    -173: "_CONFLICT",
    -172: "_STATE",
    -170: "_NOT_IMPLEMENTED",
    -168: "_NO_OFFSET",
    -156: "_NOENT",
    -152: "_PURGE_QUEUE",
    -150: "_FATAL",
    -145: "_NOT_CONFIGURED",
    -144: "_FENCED",
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
    44: "POLICY_VIOLATION",
    45: "OUT_OF_ORDER_SEQUENCE_NUMBER",
    46: "DUPLICATE_SEQUENCE_NUMBER",
    47: "INVALID_PRODUCER_EPOCH",
    48: "INVALID_TXN_STATE",
    49: "INVALID_PRODUCER_ID_MAPPING",
    50: "INVALID_TRANSACTION_TIMEOUT",
    51: "CONCURRENT_TRANSACTIONS",
    55: "OPERATION_NOT_ATTEMPTED",
    56: "KAFKA_STORAGE_ERROR",
    59: "UNKNOWN_PRODUCER_ID",
    68: "NON_EMPTY_GROUP",
    69: "GROUP_ID_NOT_FOUND",
    76: "UNSUPPORTED_COMPRESSION_TYPE",
    79: "MEMBER_ID_REQUIRED",
    81: "GROUP_MAX_SIZE_REACHED",
    82: "FENCED_INSTANCE_ID",
    87: "INVALID_RECORD",
    90: "PRODUCER_FENCED",
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

    def fatal(self) -> bool:
        """True if the producer is unusable (only transactional errors are: TxnKafkaError)."""
        return False

    def txn_requires_abort(self) -> bool:
        """True if the transaction must be aborted (only transactional errors: TxnKafkaError)."""
        return False

    def __eq__(self, other: object) -> bool:
        if isinstance(other, KafkaError):
            return self._code == other._code
        if isinstance(other, int):
            return self._code == other
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self._code)

    def __str__(self) -> str:
        return f"KafkaError{{code={self.name()},val={self._code},str=\"{self._str}\"}}"

    def __repr__(self) -> str:
        return f"KafkaError(code={self._code}, {self._str!r})"


# confluent_kafka.KafkaError's constants: KafkaError.UNKNOWN_TOPIC_OR_PART, KafkaError._NO_OFFSET.
for _code, _name in _NAMES.items():
    setattr(KafkaError, _name, _code)
del _code, _name


class KafkaException(Exception):
    """confluent_kafka.KafkaException: ``args[0]`` is the KafkaError."""

    def __str__(self) -> str:
        err = self.args[0] if self.args else None
        if isinstance(err, KafkaError):
            return KafkaError.__str__(err)
        return super().__str__()


class KafkaApiError(HeadwaterError, KafkaException):
    """An error with a Kafka wire error code (or librdkafka's local one, negative).

    Also a KafkaException as confluent-kafka raises it: ``args[0]`` is the KafkaError (code,
    name, message), so ``except KafkaException as e: e.args[0].code()`` written for
    confluent-kafka handles headwater's errors unchanged. ``str()`` is the message alone.
    """

    code: int = -1
    retriable: bool = False

    def __init__(self, message: str | KafkaError = "", *args: object) -> None:
        if isinstance(message, KafkaError):  # one KafkaError passed on (or unpickled)
            err = message
            if err.code() != self.code:
                self.code = err.code()
        else:
            err = KafkaError(self.code, message or self.__class__.__name__, self.retriable)
        super().__init__(err, *args)

    def __str__(self) -> str:
        return self.args[0].str()


class CorruptRecordError(KafkaApiError):
    """CORRUPT_MESSAGE (2): a batch or record failed validation."""

    code = 2
    retriable = True


class InvalidCrcError(CorruptRecordError):
    """The stored CRC-32C does not match the batch bytes."""


class TruncatedError(CorruptRecordError):
    """The buffer ends before the batch or varint it holds."""


class OffsetOutOfRangeError(KafkaApiError):
    """OFFSET_OUT_OF_RANGE (1)."""

    code = 1


class MessageTooLargeError(KafkaApiError):
    """MESSAGE_TOO_LARGE (10): a batch exceeds max.message.bytes."""

    code = 10


class InvalidTimestampError(KafkaApiError):
    """INVALID_TIMESTAMP (32)."""

    code = 32


class KafkaStorageError(KafkaApiError, StorageError):
    """KAFKA_STORAGE_ERROR (56)."""

    code = 56
    retriable = True


class UnsupportedCompressionTypeError(KafkaApiError):
    """UNSUPPORTED_COMPRESSION_TYPE (76)."""

    code = 76


class InvalidRecordError(KafkaApiError):
    """INVALID_RECORD (87): structurally valid bytes that break a broker rule."""

    code = 87


# --- idempotent producer / transactions (kafka-spec.md c.6) ---


class OutOfOrderSequenceError(KafkaApiError):
    """OUT_OF_ORDER_SEQUENCE_NUMBER (45): a sequence gap, or a new epoch not starting at 0."""

    code = 45


class DuplicateSequenceError(KafkaApiError):
    """DUPLICATE_SEQUENCE_NUMBER (46): legacy; current brokers answer a duplicate with success."""

    code = 46


class InvalidProducerEpochError(KafkaApiError):
    """INVALID_PRODUCER_EPOCH (47): the batch's producer epoch is older than the partition's."""

    code = 47


class InvalidTxnStateError(KafkaApiError):
    """INVALID_TXN_STATE (48): e.g. a non-transactional batch while the producer's txn is open."""

    code = 48


class TransactionCoordinatorFencedError(KafkaApiError):
    """TRANSACTION_COORDINATOR_FENCED (52): a marker from an older coordinator epoch."""

    code = 52


class UnknownProducerIdError(KafkaApiError):
    """UNKNOWN_PRODUCER_ID (59): legacy produce error; coordinator-side in some paths."""

    code = 59


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


class UnstableOffsetCommitError(KafkaApiError):
    """UNSTABLE_OFFSET_COMMIT (88): OffsetFetch with RequireStable found a partition whose
    offset is held by an open transaction (TxnOffsetCommit not yet committed or aborted).

    Retriable: the client fetches again once the transaction's marker is written.
    """

    code = 88
    retriable = True


class CorruptSnapshotError(StorageError):
    """A producer-state snapshot failed its CRC or layout check: delete it and rebuild."""


# --- topic administration (CreateTopics / DeleteTopics / CreatePartitions / Metadata) ---


class UnknownTopicOrPartitionError(KafkaApiError):
    """UNKNOWN_TOPIC_OR_PARTITION (3): no such topic, or the partition is out of range."""

    code = 3
    retriable = True


class InvalidTopicError(KafkaApiError):
    """INVALID_TOPIC_EXCEPTION (17): a topic name breaks Kafka's rules (kafka-spec.md b.1)."""

    code = 17


class TopicAlreadyExistsError(KafkaApiError):
    """TOPIC_ALREADY_EXISTS (36)."""

    code = 36


class InvalidPartitionsError(KafkaApiError):
    """INVALID_PARTITIONS (37): a partition count below 1, or a decrease."""

    code = 37


class InvalidReplicationFactorError(KafkaApiError):
    """INVALID_REPLICATION_FACTOR (38): a single node holds exactly one replica."""

    code = 38


class InvalidConfigurationError(KafkaApiError, ConfigError):
    """INVALID_CONFIG (40): a topic config name is unknown or its value is out of range.

    Also a ConfigError, so code that catches ConfigError for local configs catches it too.
    """

    code = 40


class InvalidReplicaAssignmentError(KafkaApiError):
    """A manual replica assignment this broker cannot honour (only this node can host)."""

    code = 39


class InvalidRequestError(KafkaApiError):
    """The request contradicts itself (duplicate names, a count and an assignment, an unknown
    operation or resource type)."""

    code = 42


class InconsistentTopicIdError(KafkaApiError):
    """INCONSISTENT_TOPIC_ID (103): a partition directory belongs to another topic id."""

    code = 103


class DataDirLockedError(HeadwaterError):
    """Another process (or another Broker in this one) holds the data directory's lock.

    One data directory has one owner. To share it, run `headwater serve` on it and connect
    through the Kafka protocol.
    """


# ---------------------------------------------------------------- group coordinator


class OffsetMetadataTooLargeError(KafkaApiError):
    """OFFSET_METADATA_TOO_LARGE (12): metadata longer than offset.metadata.max.bytes."""

    code = 12


class CoordinatorNotAvailableError(KafkaApiError):
    """COORDINATOR_NOT_AVAILABLE (15): the group is Dead (deleted or unloaded) here."""

    code = 15
    retriable = True


class NotCoordinatorError(KafkaApiError):
    """This node is not (or no longer) the coordinator of the group: e.g. the server is
    stopping and unloads its groups. Clients look the coordinator up again."""

    code = 16
    retriable = True


class IllegalGenerationError(KafkaApiError):
    """ILLEGAL_GENERATION (22): the request's generation is not the group's current one."""

    code = 22


class InconsistentGroupProtocolError(KafkaApiError):
    """INCONSISTENT_GROUP_PROTOCOL (23): no protocol type/name in common with the group."""

    code = 23


class InvalidGroupIdError(KafkaApiError):
    """INVALID_GROUP_ID (24): empty group id on a group-membership API."""

    code = 24


class UnknownMemberIdError(KafkaApiError):
    """UNKNOWN_MEMBER_ID (25): the member id is not (or no longer) in the group."""

    code = 25


class InvalidSessionTimeoutError(KafkaApiError):
    """INVALID_SESSION_TIMEOUT (26): outside [group.min.session.timeout.ms, ...max...]."""

    code = 26


class RebalanceInProgressError(KafkaApiError):
    """REBALANCE_IN_PROGRESS (27): the group is rebalancing; the member must rejoin."""

    code = 27


class NonEmptyGroupError(KafkaApiError):
    """NON_EMPTY_GROUP (68): DeleteGroups on a group that still has members."""

    code = 68


class GroupIdNotFoundError(KafkaApiError):
    """GROUP_ID_NOT_FOUND (69): DeleteGroups on a group that does not exist."""

    code = 69


class MemberIdRequiredError(KafkaApiError):
    """MEMBER_ID_REQUIRED (79): rejoin with ``member_id`` (JoinGroup v4+, dynamic members)."""

    code = 79

    def __init__(self, member_id: str) -> None:
        super().__init__(f"rejoin with member id {member_id!r}")
        self.member_id = member_id


class GroupMaxSizeReachedError(KafkaApiError):
    """GROUP_MAX_SIZE_REACHED (81): the group already has group.max.size members."""

    code = 81


class FencedInstanceIdError(KafkaApiError):
    """FENCED_INSTANCE_ID (82): a newer member took over this group.instance.id."""

    code = 82


class MalformedPayloadError(HeadwaterError, ValueError):
    """Bytes that do not decode as a __consumer_offsets record or a consumer-protocol payload."""


__all__ = [
    "OffsetMetadataTooLargeError",
    "CoordinatorNotAvailableError",
    "IllegalGenerationError",
    "InconsistentGroupProtocolError",
    "InvalidGroupIdError",
    "UnknownMemberIdError",
    "InvalidSessionTimeoutError",
    "RebalanceInProgressError",
    "NonEmptyGroupError",
    "GroupIdNotFoundError",
    "MemberIdRequiredError",
    "GroupMaxSizeReachedError",
    "FencedInstanceIdError",
    "MalformedPayloadError",
    "HeadwaterError",
    "StorageError",
    "CorruptIndexError",
    "SegmentOffsetOverflowError",
    "LogOfflineError",
    "SegmentFullError",
    "ConfigError",
    "KafkaApiError",
    "CorruptRecordError",
    "InvalidCrcError",
    "TruncatedError",
    "OffsetOutOfRangeError",
    "MessageTooLargeError",
    "InvalidTimestampError",
    "KafkaStorageError",
    "UnsupportedCompressionTypeError",
    "InvalidRecordError",
    "OutOfOrderSequenceError",
    "DuplicateSequenceError",
    "InvalidProducerEpochError",
    "InvalidTxnStateError",
    "TransactionCoordinatorFencedError",
    "UnknownProducerIdError",
    "CorruptSnapshotError",
    "UnknownTopicOrPartitionError",
    "InvalidTopicError",
    "TopicAlreadyExistsError",
    "InvalidPartitionsError",
    "InvalidReplicationFactorError",
    "InvalidConfigurationError",
    "InconsistentTopicIdError",
    "DataDirLockedError",
]


class NoOffsetError(KafkaApiError):
    """librdkafka's _NO_OFFSET (-168): a commit without offsets (none given, none consumed)."""

    code = -168


class StateError(KafkaApiError):
    """librdkafka's _STATE (-172): the call does not fit the client's state (e.g. a seek of a
    partition that is not assigned)."""

    code = -172


class UnknownPartitionError(UnknownTopicOrPartitionError):
    """librdkafka's _UNKNOWN_PARTITION (-190): produce() to a partition the topic does not have
    (an UnknownTopicOrPartitionError too)."""

    code = -190


class InvalidArgumentError(KafkaApiError):
    """librdkafka's _INVALID_ARG (-186): a call the client's configuration rules out (e.g.
    store_offsets() with enable.auto.offset.store=true)."""

    code = -186


class ConflictError(KafkaApiError):
    """librdkafka's _CONFLICT (-173): e.g. incremental_assign() of a partition already
    assigned."""

    code = -173


class PolicyViolationError(KafkaApiError):
    """POLICY_VIOLATION (44): e.g. DeleteRecords on a topic whose cleanup.policy has no
    "delete" (a compacted topic's records are removed by compaction only)."""

    code = 44

