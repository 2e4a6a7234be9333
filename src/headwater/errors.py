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
    ├── KafkaApiError(code, retriable)  one subclass per wire error code
    │   ├── OffsetOutOfRangeError (1), MessageTooLargeError (10), InvalidRecordError (87), ...
    └── ConfigError                  unknown config name or bad value

Codes never change: they are Kafka's (kafka-spec.md g.7).
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


class KafkaApiError(HeadwaterError):
    """An error with a Kafka wire error code."""

    code: int = -1
    retriable: bool = False

    def __init__(self, message: str = "", *args: object) -> None:
        super().__init__(message or self.__class__.__name__, *args)


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
