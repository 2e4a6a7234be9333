"""Classic consumer groups and committed offsets (kafka-spec.md e.1-e.4).

- ``coordinator``: ``GroupCoordinator``, the broker-side state machine (join/sync/heartbeat/
  leave, sessions, static membership, OffsetCommit/OffsetFetch, TxnOffsetCommit and the
  transaction markers that settle it, list/describe/delete).
- ``pending``: ``Pending``, how JoinGroup/SyncGroup wait without threads.
- ``records``: ``__consumer_offsets`` keys and values, byte-exact with Kafka.
- ``protocol``: consumer-protocol Subscription/Assignment codecs (client side).
- ``assignors``: range, roundrobin, cooperative-sticky (client side).
- ``errors``: the wire errors these raise.
"""

from headwater.coordinator.group.coordinator import (
    GroupCoordinator,
    GroupCoordinatorConfig,
)
from headwater.coordinator.group.errors import (
    CoordinatorNotAvailableError,
    FencedInstanceIdError,
    GroupIdNotFoundError,
    GroupMaxSizeReachedError,
    IllegalGenerationError,
    InconsistentGroupProtocolError,
    InvalidGroupIdError,
    InvalidSessionTimeoutError,
    MalformedPayloadError,
    MemberIdRequiredError,
    NonEmptyGroupError,
    OffsetMetadataTooLargeError,
    RebalanceInProgressError,
    UnknownMemberIdError,
    UnknownTopicOrPartitionError,
    UnstableOffsetCommitError,
)
from headwater.coordinator.group.metadata import (
    CommitOffset,
    DescribedGroup,
    DescribedGroupMember,
    GroupEvent,
    GroupState,
    JoinGroupMember,
    JoinGroupResult,
    LeaveMember,
    ListedGroup,
    OffsetAndMetadata,
    OffsetsBatch,
    PartitionLag,
    SyncGroupResult,
)
from headwater.coordinator.group.pending import Pending
from headwater.coordinator.group.protocol import Assignment, Subscription, TopicPartition
from headwater.coordinator.group.records import offsets_partition_for

__all__ = [
    "GroupCoordinator",
    "GroupCoordinatorConfig",
    "Pending",
    "GroupState",
    "GroupEvent",
    "JoinGroupMember",
    "JoinGroupResult",
    "SyncGroupResult",
    "LeaveMember",
    "CommitOffset",
    "OffsetAndMetadata",
    "OffsetsBatch",
    "ListedGroup",
    "DescribedGroup",
    "DescribedGroupMember",
    "PartitionLag",
    "TopicPartition",
    "Subscription",
    "Assignment",
    "offsets_partition_for",
    "CoordinatorNotAvailableError",
    "FencedInstanceIdError",
    "GroupIdNotFoundError",
    "GroupMaxSizeReachedError",
    "IllegalGenerationError",
    "InconsistentGroupProtocolError",
    "InvalidGroupIdError",
    "InvalidSessionTimeoutError",
    "MalformedPayloadError",
    "MemberIdRequiredError",
    "NonEmptyGroupError",
    "OffsetMetadataTooLargeError",
    "RebalanceInProgressError",
    "UnknownMemberIdError",
    "UnknownTopicOrPartitionError",
    "UnstableOffsetCommitError",
]
