"""In-memory state of one classic consumer group and its members (Kafka's ClassicGroup).

Plain data owned by ``GroupCoordinator``; all transitions happen there. Nothing here reads a
clock: every deadline is an absolute ``*_ms`` value computed from a caller's ``now_ms``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from headwater.coordinator.group.pending import Pending
from headwater.coordinator.group.protocol import TopicPartition


class GroupState(str, enum.Enum):
    """Classic group states; the values are the names DescribeGroups/ListGroups report."""

    EMPTY = "Empty"
    PREPARING_REBALANCE = "PreparingRebalance"
    COMPLETING_REBALANCE = "CompletingRebalance"
    STABLE = "Stable"
    DEAD = "Dead"


@dataclass(frozen=True)
class JoinGroupMember:
    """One member as the leader sees it in the JoinGroup response."""

    member_id: str
    group_instance_id: str | None
    metadata: bytes


@dataclass(frozen=True)
class JoinGroupResult:
    """A successful JoinGroup response (``members`` is empty unless this member leads)."""

    member_id: str
    generation_id: int
    protocol_type: str | None
    protocol_name: str | None
    leader_id: str
    members: tuple[JoinGroupMember, ...] = ()
    skip_assignment: bool = False

    @property
    def is_leader(self) -> bool:
        return self.member_id == self.leader_id


@dataclass(frozen=True)
class SyncGroupResult:
    """A successful SyncGroup response: this member's assignment bytes (opaque)."""

    protocol_type: str | None
    protocol_name: str | None
    assignment: bytes


@dataclass(frozen=True)
class OffsetAndMetadata:
    """A committed offset. ``offset == -1`` means nothing is committed."""

    offset: int
    leader_epoch: int = -1
    metadata: str = ""
    commit_timestamp_ms: int = -1
    expire_timestamp_ms: int = -1


NO_OFFSET = OffsetAndMetadata(-1)


@dataclass
class OffsetsBatch:
    """Records to append to one group's ``__consumer_offsets`` partition as one batch.

    ``producer_id == -1``: an ordinary (non-transactional) batch. Otherwise a transactional
    batch of that producer id and epoch (TxnOffsetCommit): its offsets stay pending until the
    producer's COMMIT or ABORT marker is written to the same partition.
    """

    records: list[tuple[bytes, bytes | None]]
    producer_id: int = -1
    producer_epoch: int = -1

    @property
    def is_transactional(self) -> bool:
        return self.producer_id >= 0


@dataclass(frozen=True)
class CommitOffset:
    """One partition of an OffsetCommit request."""

    offset: int
    leader_epoch: int = -1
    metadata: str | None = ""


@dataclass(frozen=True)
class LeaveMember:
    """One member of a LeaveGroup request (v3+ batch; v0-2 send one with no instance id)."""

    member_id: str = ""
    group_instance_id: str | None = None


@dataclass(frozen=True)
class ListedGroup:
    group_id: str
    protocol_type: str
    state: str
    group_type: str = "classic"


@dataclass(frozen=True)
class DescribedGroupMember:
    member_id: str
    group_instance_id: str | None
    client_id: str
    client_host: str
    member_metadata: bytes
    member_assignment: bytes


@dataclass(frozen=True)
class DescribedGroup:
    """DescribeGroups data. A group that does not exist is reported as state "Dead"."""

    group_id: str
    state: str
    protocol_type: str
    protocol_data: str
    members: tuple[DescribedGroupMember, ...] = ()


@dataclass(frozen=True)
class PartitionLag:
    """Lag of one partition for a group: ``log_end_offset - committed_offset`` when both known."""

    member_id: str | None
    committed_offset: int
    log_end_offset: int | None
    lag: int | None


@dataclass(frozen=True)
class GroupEvent:
    """Something that changed, reported by ``tick``.

    kinds: "rebalance_started", "join_completed", "group_empty", "member_removed" (session
    expired, left or not rejoined in time; ``reason`` says which), "pending_member_expired",
    "sync_completed", "offsets_expired", "group_deleted".
    """

    kind: str
    group_id: str
    member_id: str | None = None
    reason: str = ""


@dataclass
class Member:
    """A member of a classic group (Kafka's ClassicGroupMember)."""

    member_id: str
    group_instance_id: str | None
    client_id: str
    client_host: str
    rebalance_timeout_ms: int
    session_timeout_ms: int
    protocol_type: str
    protocols: tuple[tuple[str, bytes], ...]
    session_deadline_ms: int
    assignment: bytes = b""
    join: Pending[JoinGroupResult] | None = None
    sync: Pending[SyncGroupResult] | None = None

    def metadata(self, protocol_name: str | None) -> bytes:
        for name, data in self.protocols:
            if name == protocol_name:
                return data
        return b""

    def protocol_names(self) -> list[str]:
        return [name for name, _ in self.protocols]


@dataclass
class ClassicGroup:
    """One classic group: membership, generation, committed offsets, deadlines."""

    group_id: str
    state_timestamp_ms: int
    state: GroupState = GroupState.EMPTY
    protocol_type: str | None = None
    protocol_name: str | None = None
    generation_id: int = 0
    leader_id: str | None = None
    members: dict[str, Member] = field(default_factory=dict)
    static_members: dict[str, str] = field(default_factory=dict)
    pending_members: dict[str, int] = field(default_factory=dict)
    join_deadline_ms: int | None = None
    initial_delay_deadline_ms: int | None = None
    initial_delay_remaining_ms: int = 0
    new_member_added: bool = False
    offsets: dict[TopicPartition, OffsetAndMetadata] = field(default_factory=dict)
    # Where each committed offset sits in the group's offsets partition, as a coordinator-wide
    # sequence that follows log order: a transaction's offsets replace a committed one only if
    # they were written after it (Kafka compares record offsets the same way).
    offset_seq: dict[TopicPartition, int] = field(default_factory=dict)
    # Transactional offsets waiting for their producer's marker:
    # producer id -> partition -> (offset, sequence of its record).
    pending_txn: dict[int, dict[TopicPartition, tuple[OffsetAndMetadata, int]]] = field(
        default_factory=dict
    )

    def has_pending_txn(self, tp: TopicPartition) -> bool:
        """Whether some producer's open transaction holds an offset for ``tp``."""
        return any(tp in offsets for offsets in self.pending_txn.values())

    def rebalance_timeout_ms(self) -> int:
        return max((m.rebalance_timeout_ms for m in self.members.values()), default=0)

    def all_members_joined(self) -> bool:
        return not self.pending_members and all(m.join is not None for m in self.members.values())

    def is_leader(self, member_id: str) -> bool:
        return self.leader_id == member_id
