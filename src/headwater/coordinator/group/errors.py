"""Wire errors of the group coordinator (kafka-spec.md e.2, e.4, g.7).

They live in ``headwater.errors`` with every other wire-code class (one class per code, so an
``except`` catches the same error whichever layer raised it); this module re-exports them for
the coordinator's callers.
"""

from headwater.errors import (
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

__all__ = [
    "UnstableOffsetCommitError",
    "UnknownTopicOrPartitionError",
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
]
