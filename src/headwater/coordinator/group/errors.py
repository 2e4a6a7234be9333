"""Wire errors of the group coordinator (kafka-spec.md e.2, e.4, g.7).

Each class is a ``KafkaApiError`` subclass carrying Kafka's ``code`` (codes never change). They
live here until they move into ``headwater/errors.py`` with the generated wire-code classes;
callers should import them from ``headwater.coordinator.group`` so that move changes nothing.

``MemberIdRequiredError`` also carries the member id the client must rejoin with (JoinGroup v4+
answers MEMBER_ID_REQUIRED with the new id in ``MemberId``). ``MalformedPayloadError`` is not a
wire error: it reports bytes that do not decode as a ``__consumer_offsets`` record or a
consumer-protocol payload.
"""

from __future__ import annotations

from headwater.errors import HeadwaterError, KafkaApiError


class UnknownTopicOrPartitionError(KafkaApiError):
    """UNKNOWN_TOPIC_OR_PARTITION (3): an offset commit names a partition that does not exist."""

    code = 3
    retriable = True


class OffsetMetadataTooLargeError(KafkaApiError):
    """OFFSET_METADATA_TOO_LARGE (12): metadata longer than offset.metadata.max.bytes."""

    code = 12


class CoordinatorNotAvailableError(KafkaApiError):
    """COORDINATOR_NOT_AVAILABLE (15): the group is Dead (deleted or unloaded) here."""

    code = 15
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
