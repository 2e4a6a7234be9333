"""Wire errors of the group coordinator (kafka-spec.md e.2, e.4, g.7).

They live in ``headwater.errors`` with every other wire-code class (one class per code, so an
``except`` catches the same error whichever layer raised it); this module re-exports them for
the coordinator's callers. ``UnstableOffsetCommitError`` is defined here until it joins the
others in ``headwater.errors``.
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
    KafkaApiError,
    MalformedPayloadError,
    MemberIdRequiredError,
    NonEmptyGroupError,
    OffsetMetadataTooLargeError,
    RebalanceInProgressError,
    UnknownMemberIdError,
    UnknownTopicOrPartitionError,
)


class UnstableOffsetCommitError(KafkaApiError):
    """UNSTABLE_OFFSET_COMMIT (88): OffsetFetch with RequireStable found a partition whose
    offset is held by an open transaction (TxnOffsetCommit not yet committed or aborted).

    Retriable: the client fetches again once the transaction's marker is written.
    """

    code = 88
    retriable = True


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
