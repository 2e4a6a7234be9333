"""The classic-protocol group coordinator as a deterministic state machine.

``GroupCoordinator`` owns every classic consumer group of one broker: membership, generations,
the join/sync protocol, sessions, static membership and committed offsets (kafka-spec.md e.1,
e.2, e.4). It never touches a socket, a clock, a file or a thread:

- Time: every method that can start or check a timer takes ``now_ms``; ``tick(now_ms)`` expires
  sessions and pending member ids and ends join phases whose (initial or rebalance) deadline
  passed. ``next_deadline_ms()`` says when a tick next has work, so a server can sleep until
  then and an embedded client can simply tick on every poll.
- Waiting: JoinGroup and SyncGroup return a ``Pending`` that a later call completes (see
  ``pending.py``). Completions are queued and delivered at the end of the outermost coordinator
  call, after the state is consistent, so a done-callback may call the coordinator again.
- Errors: group-level errors are raised as ``KafkaApiError`` subclasses, or, for JoinGroup and
  SyncGroup, delivered through the ``Pending``. Per-partition (OffsetCommit) and per-member
  (LeaveGroup) errors are returned as values (an error instance or None).
- Persistence: state changes that Kafka writes to ``__consumer_offsets`` are queued as
  ``(key, value)`` records (value None = tombstone, formats in ``records.py``);
  ``take_batches_by_group()`` drains them in order (``take_records()`` too, while no
  transactional offsets are queued). The caller appends them to the compacted partition that
  owns the group (``offsets_partition_for``) and, on open, rebuilds the coordinator with
  ``load_entries(entries, now_ms)`` once per partition (``load(records, now_ms)`` for logs
  without transactions). State is applied before the records are persisted; if the append
  fails the caller must drop and reload the coordinator.
- Transactional offsets (TxnOffsetCommit, kafka-spec.md d.3): ``txn_offset_commit`` validates
  like OffsetCommit and holds the offsets as pending for the producer id; they are queued as a
  transactional batch of that producer (same record formats) and stay invisible to
  ``fetch_offsets`` (which answers UNSTABLE_OFFSET_COMMIT for them with ``require_stable``)
  until ``complete_txn`` reports the producer's marker in the group's offsets partition:
  COMMIT makes them committed unless a commit written later to the log already replaced them
  (Kafka's record-offset rule), ABORT drops them. The order of the log is tracked as a
  coordinator-wide sequence: every queued record takes the next number, and replay numbers the
  entries in log order, so the caller must append the records in the order they are drained.

State table (spec e.2), the request each state accepts:

    state                JoinGroup                 SyncGroup                Heartbeat     OffsetCommit
    Empty                new member -> Preparing   UNKNOWN_MEMBER_ID        UNKNOWN_MEMBER generation -1 only
    PreparingRebalance   parked until phase ends   REBALANCE_IN_PROGRESS    REBALANCE_IN_ previous generation
    CompletingRebalance  same metadata: answered   follower parked until    NONE          REBALANCE_IN_PROGRESS
                         else new rebalance        the leader syncs
    Stable               follower, same metadata:  stored assignment        NONE          current generation
                         answered; else rebalance
    Dead                 COORDINATOR_NOT_AVAILABLE UNKNOWN_MEMBER_ID        COORDINATOR_  COORDINATOR_NOT_
                         / UNKNOWN_MEMBER_ID                                NOT_AVAILABLE AVAILABLE

A group is Dead only between deletion (DeleteGroups, offsets expired) and its removal from
the coordinator, which happen in one call; a later request finds no group and behaves as for
a new one.

Deviations from Kafka, on purpose: a protocol-vote tie goes to the candidate listed first by the
leader (Kafka's pick is a hash-map order).

Not thread-safe: one thread (the event loop, or the embedded broker's lock holder) drives it.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal, TypeVar, overload

from headwater.coordinator._config import int_settings
from headwater.coordinator.group import records as rec
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
    NO_OFFSET,
    ClassicGroup,
    CommitOffset,
    DescribedGroup,
    DescribedGroupMember,
    GroupEvent,
    GroupState,
    JoinGroupMember,
    JoinGroupResult,
    LeaveMember,
    ListedGroup,
    Member,
    OffsetAndMetadata,
    OffsetsBatch,
    PartitionLag,
    SyncGroupResult,
)
from headwater.coordinator.group.pending import Pending
from headwater.coordinator.group.protocol import TopicPartition, decode_assignment
from headwater.errors import InvalidRequestError, KafkaApiError

T = TypeVar("T")

Record = tuple[bytes, bytes | None]
# A replay entry, in the log order of one __consumer_offsets partition:
#   ("record", key, value)                  a record of a non-transactional batch
#   ("txn_record", producer_id, key, value) a record of a transactional batch
#   ("marker", producer_id, commit)         a COMMIT (True) / ABORT (False) control record
ReplayEntry = tuple[Any, ...]
# A queued record: (group id, producer id or -1, producer epoch or -1, key, value).
_Queued = tuple[str, int, int, bytes, bytes | None]

EMPTY = GroupState.EMPTY
PREPARING = GroupState.PREPARING_REBALANCE
COMPLETING = GroupState.COMPLETING_REBALANCE
STABLE = GroupState.STABLE
DEAD = GroupState.DEAD


@dataclass(frozen=True)
class GroupCoordinatorConfig:
    """Broker settings of the group coordinator, Kafka's names with dots as underscores."""

    group_min_session_timeout_ms: int = 6000
    group_max_session_timeout_ms: int = 1800000
    group_initial_rebalance_delay_ms: int = 3000
    group_max_size: int = 2147483647
    offset_metadata_max_bytes: int = 4096
    offsets_retention_minutes: int = 10080

    @property
    def offsets_retention_ms(self) -> int:
        return self.offsets_retention_minutes * 60_000

    @classmethod
    def from_mapping(
        cls, config: Mapping[str, Any] | None = None, **kwargs: Any
    ) -> GroupCoordinatorConfig:
        """Build from Kafka names (``group.initial.rebalance.delay.ms``) and/or keywords.

        Raises:
            ConfigError: unknown name, non-integer or negative value.
        """
        return cls(**int_settings(cls, config, kwargs, "group coordinator", 0))


def _default_member_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4()}"


class GroupCoordinator:
    """Classic consumer groups and committed offsets, driven step by step.

    Args:
        config: coordinator settings (defaults are Kafka's).
        member_id_factory: ``prefix -> member id``; the prefix is the client id (dynamic
            members) or the group instance id (static members). Default
            ``prefix + "-" + uuid4()``; tests inject a counter for determinism.
        partition_count: ``topic -> number of partitions``, or None when the topic does not
            exist; OffsetCommit answers UNKNOWN_TOPIC_OR_PARTITION from it. Default: every
            partition exists.
    """

    def __init__(
        self,
        config: GroupCoordinatorConfig | None = None,
        *,
        member_id_factory: Callable[[str], str] | None = None,
        partition_count: Callable[[str], int | None] | None = None,
    ) -> None:
        self.config = config or GroupCoordinatorConfig()
        self._new_member_id = member_id_factory or _default_member_id
        self._partition_count = partition_count
        self._groups: dict[str, ClassicGroup] = {}
        self._records: list[_Queued] = []
        # Log-order sequence of every record queued or replayed (see the module docstring).
        self._seq = 0
        # producer id -> groups holding pending offsets of that producer's open transaction.
        self._txn_groups: dict[int, set[str]] = {}
        # What the last txn_offset_commit changed, to revert it if its append fails.
        self._txn_undo: _TxnUndo | None = None
        self._events: list[GroupEvent] = []
        self._deliveries: list[tuple[Pending[Any], Any, KafkaApiError | None]] = []

    # ------------------------------------------------------------------------------------------
    # Delivery of pending responses and queued records.

    def _complete(self, pending: Pending[T], result: T) -> None:
        self._deliveries.append((pending, result, None))

    def _fail(self, pending: Pending[Any], error: KafkaApiError) -> None:
        self._deliveries.append((pending, None, error))

    def _deliver(self) -> None:
        while self._deliveries:
            pending, result, error = self._deliveries.pop(0)
            if error is not None:
                pending.set_exception(error)
            else:
                pending.set_result(result)

    def _queue(self, group_id: str, key: bytes, value: bytes | None) -> int:
        """Queue a non-transactional record; return its log-order sequence."""
        self._seq += 1
        self._records.append((group_id, -1, -1, key, value))
        return self._seq

    def _check_no_txn_queued(self) -> None:
        if any(q[1] >= 0 for q in self._records):
            raise RuntimeError(
                "transactional offset records are queued: drain with take_batches_by_group(), "
                "which keeps them apart from the others and in log order"
            )

    def take_records(self) -> list[Record]:
        """Drain the ``__consumer_offsets`` records to append, oldest first.

        Raises:
            RuntimeError: transactional records are queued (``txn_offset_commit``); they must
                be appended as transactional batches: use ``take_batches_by_group``.
        """
        self._check_no_txn_queued()
        out, self._records = self._records, []
        return [(key, value) for _, _, _, key, value in out]

    def take_records_by_group(self) -> dict[str, list[Record]]:
        """Like ``take_records`` but split by group id (to route to offsets partitions).

        Raises:
            RuntimeError: as ``take_records``.
        """
        self._check_no_txn_queued()
        out: dict[str, list[Record]] = {}
        for group_id, _, _, key, value in self._records:
            out.setdefault(group_id, []).append((key, value))
        self._records = []
        return out

    def take_batches_by_group(self) -> dict[str, list[OffsetsBatch]]:
        """Drain every queued record as batches to append, per group id, in log order.

        Consecutive records of one group with the same producer make one batch. A batch with
        ``producer_id == -1`` is ordinary; any other is a transactional batch of
        (``producer_id``, ``producer_epoch``) (TxnOffsetCommit). The caller appends each
        group's batches, in list order, to the partition ``offsets_partition_for(group)``;
        batches of different groups may be merged or reordered freely (they never touch the
        same keys), but one group's batches must keep their order: transactional offsets are
        ordered against ordinary commits by their position in the log.
        """
        out: dict[str, list[OffsetsBatch]] = {}
        for group_id, producer_id, producer_epoch, key, value in self._records:
            batches = out.setdefault(group_id, [])
            last = batches[-1] if batches else None
            if last is None or (last.producer_id, last.producer_epoch) != (
                producer_id,
                producer_epoch,
            ):
                last = OffsetsBatch([], producer_id, producer_epoch)
                batches.append(last)
            last.records.append((key, value))
        self._records = []
        return out

    # ------------------------------------------------------------------------------------------
    # JoinGroup.

    def join_group(
        self,
        group_id: str,
        *,
        member_id: str = "",
        group_instance_id: str | None = None,
        client_id: str = "",
        client_host: str = "",
        session_timeout_ms: int,
        rebalance_timeout_ms: int = -1,
        protocol_type: str,
        protocols: Sequence[tuple[str, bytes]],
        now_ms: int,
        require_known_member_id: bool = False,
        supports_skip_assignment: bool = True,
    ) -> Pending[JoinGroupResult]:
        """JoinGroup: register or refresh a member; the result arrives when the phase ends.

        Args:
            member_id: "" for a new member (or a static member restarting).
            rebalance_timeout_ms: ``max.poll.interval.ms``; -1 (JoinGroup v0) uses the
                session timeout.
            protocols: (assignor name, Subscription bytes) in the member's preference order.
            require_known_member_id: the two-step join of JoinGroup v4+: a new dynamic member
                gets MEMBER_ID_REQUIRED carrying its id and must join again with it. False for
                the embedded client and JoinGroup v0-3.
            supports_skip_assignment: JoinGroup v9+ (and the embedded client): a static leader
                rejoining a Stable group is told to skip the assignor instead of being hidden.

        Returns:
            A Pending completed with a JoinGroupResult, or with INVALID_GROUP_ID,
            INVALID_SESSION_TIMEOUT, UNKNOWN_MEMBER_ID, FENCED_INSTANCE_ID,
            INCONSISTENT_GROUP_PROTOCOL, GROUP_MAX_SIZE_REACHED, MEMBER_ID_REQUIRED,
            COORDINATOR_NOT_AVAILABLE or REBALANCE_IN_PROGRESS (superseded by a newer join).
        """
        try:
            pending = self._join(
                group_id,
                member_id,
                group_instance_id,
                client_id,
                client_host,
                session_timeout_ms,
                rebalance_timeout_ms if rebalance_timeout_ms >= 0 else session_timeout_ms,
                protocol_type,
                tuple((name, bytes(meta)) for name, meta in protocols),
                now_ms,
                require_known_member_id,
                supports_skip_assignment,
            )
        except KafkaApiError as exc:
            pending = Pending.failed(exc)
        self._deliver()
        return pending

    def _join(
        self,
        group_id: str,
        member_id: str,
        instance_id: str | None,
        client_id: str,
        client_host: str,
        session_timeout_ms: int,
        rebalance_timeout_ms: int,
        protocol_type: str,
        protocols: tuple[tuple[str, bytes], ...],
        now_ms: int,
        require_known_member_id: bool,
        supports_skip: bool,
    ) -> Pending[JoinGroupResult]:
        if not group_id:
            raise InvalidGroupIdError("group id must not be empty")
        cfg = self.config
        if not (
            cfg.group_min_session_timeout_ms
            <= session_timeout_ms
            <= cfg.group_max_session_timeout_ms
        ):
            raise InvalidSessionTimeoutError(
                f"session.timeout.ms {session_timeout_ms} not in "
                f"[{cfg.group_min_session_timeout_ms}, {cfg.group_max_session_timeout_ms}]"
            )
        group = self._groups.get(group_id)
        created = group is None
        if group is None:
            if member_id:
                raise UnknownMemberIdError(f"group {group_id!r} does not exist")
            group = ClassicGroup(group_id, state_timestamp_ms=now_ms)
        if group.state is DEAD:
            if member_id:
                raise UnknownMemberIdError(f"group {group_id!r} is dead")
            raise CoordinatorNotAvailableError(f"group {group_id!r} is dead")
        join = _JoinRequest(
            member_id,
            instance_id,
            client_id,
            client_host,
            session_timeout_ms,
            rebalance_timeout_ms,
            protocol_type,
            protocols,
            supports_skip,
        )
        if not member_id:
            self._check_protocols(group, protocol_type, protocols)
            if instance_id is not None and instance_id in group.static_members:
                new_id = self._new_member_id(instance_id)
                return self._replace_static_member(group, join, new_id, now_ms)
            if len(group.members) + len(group.pending_members) >= cfg.group_max_size:
                raise GroupMaxSizeReachedError(f"group {group_id!r} has {cfg.group_max_size}")
            new_id = self._new_member_id(instance_id if instance_id is not None else client_id)
            if created:
                self._groups[group_id] = group
            if instance_id is None and require_known_member_id:
                group.pending_members[new_id] = now_ms + session_timeout_ms
                raise MemberIdRequiredError(new_id)
            return self._add_member(group, join, new_id, now_ms)

        if member_id in group.pending_members:
            self._check_protocols(group, protocol_type, protocols)
            del group.pending_members[member_id]
            return self._add_member(group, join, member_id, now_ms)

        self._validate_member(group, member_id, instance_id)
        self._check_protocols(group, protocol_type, protocols)
        member = group.members[member_id]
        member.session_deadline_ms = now_ms + member.session_timeout_ms
        if group.state is PREPARING:
            pending = self._park_join(group, member, join)
            self._maybe_complete_join(group, now_ms)
            return pending
        if group.state is COMPLETING:
            if member.protocols == protocols:
                return Pending.completed(self._join_result(group, member_id, with_members=None))
            pending = self._park_join(group, member, join)
            self._prepare_rebalance(group, now_ms, f"member {member_id} changed its metadata")
            self._maybe_complete_join(group, now_ms)
            return pending
        assert group.state is STABLE, group.state
        if group.is_leader(member_id) or member.protocols != protocols:
            pending = self._park_join(group, member, join)
            why = "the leader rejoined" if group.is_leader(member_id) else "metadata changed"
            self._prepare_rebalance(group, now_ms, f"member {member_id}: {why}")
            self._maybe_complete_join(group, now_ms)
            return pending
        return Pending.completed(self._join_result(group, member_id, with_members=False))

    def _check_protocols(
        self, group: ClassicGroup, protocol_type: str, protocols: tuple[tuple[str, bytes], ...]
    ) -> None:
        names = [name for name, _ in protocols]
        if not group.members:
            ok = bool(protocol_type) and bool(names)
        else:
            ok = protocol_type == group.protocol_type and any(
                all(name in m.protocol_names() for m in group.members.values()) for name in names
            )
        if not ok:
            raise InconsistentGroupProtocolError(
                f"protocol type {protocol_type!r} / {names} not supported by group "
                f"{group.group_id!r} (type {group.protocol_type!r})"
            )

    def _validate_member(
        self, group: ClassicGroup, member_id: str, instance_id: str | None
    ) -> None:
        if instance_id is not None:
            current = group.static_members.get(instance_id)
            if current is None:
                raise UnknownMemberIdError(f"unknown group.instance.id {instance_id!r}")
            if current != member_id:
                raise FencedInstanceIdError(
                    f"group.instance.id {instance_id!r} now belongs to {current!r}, not "
                    f"{member_id!r}"
                )
        if member_id not in group.members:
            raise UnknownMemberIdError(f"unknown member {member_id!r} in {group.group_id!r}")

    def _park_join(
        self, group: ClassicGroup, member: Member, join: _JoinRequest
    ) -> Pending[JoinGroupResult]:
        if member.join is not None:
            self._fail(member.join, RebalanceInProgressError("superseded by a newer JoinGroup"))
        member.protocols = join.protocols
        member.rebalance_timeout_ms = join.rebalance_timeout_ms
        member.session_timeout_ms = join.session_timeout_ms
        member.client_id = join.client_id or member.client_id
        member.client_host = join.client_host or member.client_host
        pending: Pending[JoinGroupResult] = Pending()
        member.join = pending
        return pending

    def _add_member(
        self, group: ClassicGroup, join: _JoinRequest, member_id: str, now_ms: int
    ) -> Pending[JoinGroupResult]:
        member = Member(
            member_id=member_id,
            group_instance_id=join.group_instance_id,
            client_id=join.client_id,
            client_host=join.client_host,
            rebalance_timeout_ms=join.rebalance_timeout_ms,
            session_timeout_ms=join.session_timeout_ms,
            protocol_type=join.protocol_type,
            protocols=join.protocols,
            session_deadline_ms=now_ms + join.session_timeout_ms,
        )
        if not group.members:
            group.protocol_type = join.protocol_type
        group.members[member_id] = member
        if join.group_instance_id is not None:
            group.static_members[join.group_instance_id] = member_id
        if group.leader_id is None:
            group.leader_id = member_id
        pending: Pending[JoinGroupResult] = Pending()
        member.join = pending
        if group.state is PREPARING and group.initial_delay_deadline_ms is not None:
            group.new_member_added = True
        if group.state in (EMPTY, STABLE, COMPLETING):
            self._prepare_rebalance(group, now_ms, f"new member {member_id} joined")
        self._maybe_complete_join(group, now_ms)
        return pending

    def _replace_static_member(
        self, group: ClassicGroup, join: _JoinRequest, new_id: str, now_ms: int
    ) -> Pending[JoinGroupResult]:
        assert join.group_instance_id is not None
        old_id = group.static_members[join.group_instance_id]
        old = group.members[old_id]
        fenced = FencedInstanceIdError(f"static member {old_id!r} replaced by {new_id!r}")
        if old.join is not None:
            self._fail(old.join, fenced)
        if old.sync is not None:
            self._fail(old.sync, fenced)
        previous_leader = group.leader_id
        member = replace(
            old,
            member_id=new_id,
            client_id=join.client_id,
            client_host=join.client_host,
            join=None,
            sync=None,
            session_deadline_ms=now_ms + join.session_timeout_ms,
        )
        # Keep the member's position: leader re-election and describe order follow join order.
        group.members = {
            (new_id if mid == old_id else mid): (member if mid == old_id else m)
            for mid, m in group.members.items()
        }
        group.static_members[join.group_instance_id] = new_id
        if group.leader_id == old_id:
            group.leader_id = new_id
        if group.state is STABLE:
            member.protocols = join.protocols
            member.rebalance_timeout_ms = join.rebalance_timeout_ms
            member.session_timeout_ms = join.session_timeout_ms
            # Kafka's rule: no rebalance as long as the group's protocol still fits. The
            # metadata bytes of a restarted member differ anyway (its owned partitions and
            # generation start empty), so comparing them would rebalance on every restart.
            unchanged = self._select_protocol(group) == group.protocol_name
            if unchanged:
                self._store_group(group)
                is_leader = group.is_leader(new_id)
                if join.supports_skip_assignment and is_leader:
                    result = self._join_result(group, new_id, with_members=True)
                    result = replace(result, skip_assignment=True)
                else:
                    result = self._join_result(group, new_id, with_members=False)
                    result = replace(result, leader_id=previous_leader or "")
                return Pending.completed(result)
            pending = self._park_join(group, member, join)
            self._prepare_rebalance(group, now_ms, f"static member {new_id} changed metadata")
            self._maybe_complete_join(group, now_ms)
            return pending
        pending = self._park_join(group, member, join)
        if group.state is COMPLETING:
            # The leader may already be assigning for the old member id: start over.
            self._prepare_rebalance(group, now_ms, f"static member {new_id} replaced {old_id}")
        self._maybe_complete_join(group, now_ms)
        return pending

    def _join_result(
        self, group: ClassicGroup, member_id: str, *, with_members: bool | None
    ) -> JoinGroupResult:
        """The current generation's JoinGroup answer; ``with_members=None``: if leader."""
        if with_members is None:
            with_members = group.is_leader(member_id)
        members: tuple[JoinGroupMember, ...] = ()
        if with_members:
            members = tuple(
                JoinGroupMember(m.member_id, m.group_instance_id, m.metadata(group.protocol_name))
                for m in group.members.values()
            )
        return JoinGroupResult(
            member_id=member_id,
            generation_id=group.generation_id,
            protocol_type=group.protocol_type,
            protocol_name=group.protocol_name,
            leader_id=group.leader_id or "",
            members=members,
        )

    # ------------------------------------------------------------------------------------------
    # Rebalance phases.

    def _prepare_rebalance(self, group: ClassicGroup, now_ms: int, reason: str) -> None:
        if group.state is COMPLETING:
            error = RebalanceInProgressError(f"rebalance started: {reason}")
            for m in group.members.values():
                m.assignment = b""
                if m.sync is not None:
                    self._fail(m.sync, error)
                    m.sync = None
        if group.state is EMPTY:
            delay = self.config.group_initial_rebalance_delay_ms
            group.initial_delay_deadline_ms = now_ms + delay
            group.initial_delay_remaining_ms = max(group.rebalance_timeout_ms() - delay, 0)
            group.new_member_added = False
        else:
            group.join_deadline_ms = now_ms + group.rebalance_timeout_ms()
        group.state = PREPARING
        group.state_timestamp_ms = now_ms
        self._events.append(GroupEvent("rebalance_started", group.group_id, reason=reason))

    def _maybe_complete_join(self, group: ClassicGroup, now_ms: int) -> None:
        if group.state is not PREPARING:
            return
        if group.initial_delay_deadline_ms is not None:
            while now_ms >= group.initial_delay_deadline_ms:
                if group.new_member_added and group.initial_delay_remaining_ms > 0:
                    delay = min(
                        self.config.group_initial_rebalance_delay_ms,
                        group.initial_delay_remaining_ms,
                    )
                    group.initial_delay_remaining_ms -= delay
                    group.initial_delay_deadline_ms = now_ms + delay
                    group.new_member_added = False
                    continue
                group.initial_delay_deadline_ms = None
                self._complete_join(group, now_ms)
                return
            return
        if group.all_members_joined() or (
            group.join_deadline_ms is not None and now_ms >= group.join_deadline_ms
        ):
            self._complete_join(group, now_ms)

    def _complete_join(self, group: ClassicGroup, now_ms: int) -> None:
        for m in list(group.members.values()):
            if m.join is None and m.group_instance_id is None:
                self._remove_member(group, m, "did not rejoin within the rebalance timeout")
        group.join_deadline_ms = None
        group.initial_delay_deadline_ms = None
        group.generation_id += 1
        group.state_timestamp_ms = now_ms
        if not group.members:
            group.protocol_name = None
            group.leader_id = None
            group.state = EMPTY
            self._store_group(group)
            self._events.append(GroupEvent("group_empty", group.group_id))
            return
        joined = [m for m in group.members.values() if m.join is not None]
        leader = group.members.get(group.leader_id or "")
        if joined and (leader is None or leader.join is None):
            group.leader_id = joined[0].member_id
        group.protocol_name = self._select_protocol(group)
        group.state = COMPLETING
        for m in joined:
            assert m.join is not None
            self._complete(m.join, self._join_result(group, m.member_id, with_members=None))
            m.join = None
            m.session_deadline_ms = now_ms + m.session_timeout_ms
        self._events.append(GroupEvent("join_completed", group.group_id))

    def _select_protocol(self, group: ClassicGroup) -> str | None:
        """Vote: each member's first protocol that every member supports; most votes wins."""
        members = list(group.members.values())
        if not members:
            return None
        candidates = [
            name
            for name in members[0].protocol_names()
            if all(name in m.protocol_names() for m in members)
        ]
        if not candidates:
            return None
        votes = dict.fromkeys(candidates, 0)
        for m in members:
            vote = next(name for name in m.protocol_names() if name in votes)
            votes[vote] += 1
        leader = group.members.get(group.leader_id or "")
        preference = leader.protocol_names() if leader else candidates
        best = max(votes.values())
        return next(n for n in preference if votes.get(n) == best)

    def _remove_member(self, group: ClassicGroup, member: Member, reason: str) -> None:
        error = UnknownMemberIdError(f"member {member.member_id!r} removed: {reason}")
        if member.join is not None:
            self._fail(member.join, error)
        if member.sync is not None:
            self._fail(member.sync, error)
        del group.members[member.member_id]
        if member.group_instance_id is not None:
            group.static_members.pop(member.group_instance_id, None)
        if group.leader_id == member.member_id:
            group.leader_id = next(iter(group.members), None)
        self._events.append(GroupEvent("member_removed", group.group_id, member.member_id, reason))

    def _after_removal(self, group: ClassicGroup, now_ms: int, reason: str) -> None:
        if group.state in (STABLE, COMPLETING):
            self._prepare_rebalance(group, now_ms, reason)
        self._maybe_complete_join(group, now_ms)

    # ------------------------------------------------------------------------------------------
    # SyncGroup, Heartbeat, LeaveGroup.

    def sync_group(
        self,
        group_id: str,
        *,
        member_id: str,
        generation_id: int,
        group_instance_id: str | None = None,
        protocol_type: str | None = None,
        protocol_name: str | None = None,
        assignments: Mapping[str, bytes] | None = None,
        now_ms: int,
    ) -> Pending[SyncGroupResult]:
        """SyncGroup: the leader hands out assignments; everyone gets their own bytes.

        Args:
            protocol_type, protocol_name: SyncGroup v5 checks; None skips the check.
            assignments: the leader's {member_id: Assignment bytes}; followers send none.

        Returns:
            A Pending completed with a SyncGroupResult, or with INVALID_GROUP_ID,
            UNKNOWN_MEMBER_ID, FENCED_INSTANCE_ID, ILLEGAL_GENERATION,
            INCONSISTENT_GROUP_PROTOCOL or REBALANCE_IN_PROGRESS.
        """
        try:
            pending = self._sync(
                group_id,
                member_id,
                generation_id,
                group_instance_id,
                protocol_type,
                protocol_name,
                assignments or {},
                now_ms,
            )
        except KafkaApiError as exc:
            pending = Pending.failed(exc)
        self._deliver()
        return pending

    def _sync(
        self,
        group_id: str,
        member_id: str,
        generation_id: int,
        instance_id: str | None,
        protocol_type: str | None,
        protocol_name: str | None,
        assignments: Mapping[str, bytes],
        now_ms: int,
    ) -> Pending[SyncGroupResult]:
        if not group_id:
            raise InvalidGroupIdError("group id must not be empty")
        group = self._groups.get(group_id)
        if group is None or group.state is DEAD:
            raise UnknownMemberIdError(f"group {group_id!r} does not exist")
        self._validate_member(group, member_id, instance_id)
        if generation_id != group.generation_id:
            raise IllegalGenerationError(
                f"generation {generation_id}, group {group_id!r} is at {group.generation_id}"
            )
        if protocol_type is not None and protocol_type != group.protocol_type:
            raise InconsistentGroupProtocolError(f"protocol type {protocol_type!r}")
        if protocol_name is not None and protocol_name != group.protocol_name:
            raise InconsistentGroupProtocolError(f"protocol name {protocol_name!r}")
        member = group.members[member_id]
        if group.state is PREPARING:
            raise RebalanceInProgressError(f"group {group_id!r} is rebalancing")
        member.session_deadline_ms = now_ms + member.session_timeout_ms
        if group.state is STABLE:
            return Pending.completed(
                SyncGroupResult(group.protocol_type, group.protocol_name, member.assignment)
            )
        assert group.state is COMPLETING, group.state
        if member.sync is not None:
            self._fail(member.sync, RebalanceInProgressError("superseded by a newer SyncGroup"))
        pending: Pending[SyncGroupResult] = Pending()
        member.sync = pending
        if group.is_leader(member_id):
            for m in group.members.values():
                m.assignment = bytes(assignments.get(m.member_id, b""))
            group.state = STABLE
            group.state_timestamp_ms = now_ms
            self._store_group(group)
            for m in group.members.values():
                if m.sync is not None:
                    self._complete(
                        m.sync,
                        SyncGroupResult(group.protocol_type, group.protocol_name, m.assignment),
                    )
                    m.sync = None
            self._events.append(GroupEvent("sync_completed", group_id))
        return pending

    def heartbeat(
        self,
        group_id: str,
        *,
        member_id: str,
        generation_id: int,
        group_instance_id: str | None = None,
        now_ms: int,
    ) -> None:
        """Heartbeat: keep the member's session alive.

        Raises:
            InvalidGroupIdError, UnknownMemberIdError, FencedInstanceIdError,
            IllegalGenerationError, CoordinatorNotAvailableError (Dead),
            RebalanceInProgressError (PreparingRebalance: rejoin; the session is still
            refreshed).
        """
        if not group_id:
            raise InvalidGroupIdError("group id must not be empty")
        group = self._groups.get(group_id)
        if group is None:
            raise UnknownMemberIdError(f"group {group_id!r} does not exist")
        if group.state is DEAD:
            raise CoordinatorNotAvailableError(f"group {group_id!r} is dead")
        self._validate_member(group, member_id, group_instance_id)
        if generation_id != group.generation_id:
            raise IllegalGenerationError(
                f"generation {generation_id}, group {group_id!r} is at {group.generation_id}"
            )
        member = group.members[member_id]
        member.session_deadline_ms = now_ms + member.session_timeout_ms
        if group.state is PREPARING:
            raise RebalanceInProgressError(f"group {group_id!r} is rebalancing")

    def leave_group(
        self, group_id: str, members: Sequence[LeaveMember], *, now_ms: int
    ) -> list[KafkaApiError | None]:
        """LeaveGroup for one or more members; returns one error (or None) per member.

        A member given with its ``group_instance_id`` is removed by instance id (a member id
        that does not match gives FENCED_INSTANCE_ID); otherwise by member id, which may also
        be a pending (MEMBER_ID_REQUIRED) id.

        Raises:
            InvalidGroupIdError: empty group id.
            CoordinatorNotAvailableError: the group is Dead.
        """
        if not group_id:
            raise InvalidGroupIdError("group id must not be empty")
        group = self._groups.get(group_id)
        if group is None:
            return [UnknownMemberIdError(f"group {group_id!r} does not exist") for _ in members]
        if group.state is DEAD:
            raise CoordinatorNotAvailableError(f"group {group_id!r} is dead")
        out: list[KafkaApiError | None] = []
        removed = False
        for leaving in members:
            error: KafkaApiError | None = None
            if leaving.group_instance_id is not None:
                current = group.static_members.get(leaving.group_instance_id)
                if current is None:
                    error = UnknownMemberIdError(f"unknown instance {leaving.group_instance_id!r}")
                elif leaving.member_id and leaving.member_id != current:
                    error = FencedInstanceIdError(
                        f"instance {leaving.group_instance_id!r} belongs to {current!r}"
                    )
                else:
                    self._remove_member(group, group.members[current], "left the group")
                    removed = True
            elif leaving.member_id in group.pending_members:
                del group.pending_members[leaving.member_id]
                removed = True
            elif leaving.member_id in group.members:
                self._remove_member(group, group.members[leaving.member_id], "left the group")
                removed = True
            else:
                error = UnknownMemberIdError(f"unknown member {leaving.member_id!r}")
            out.append(error)
        if removed:
            self._after_removal(group, now_ms, "members left the group")
        self._deliver()
        return out

    # ------------------------------------------------------------------------------------------
    # Timers.

    def tick(self, now_ms: int) -> list[GroupEvent]:
        """Run every timer due at ``now_ms``; return the events since the previous tick.

        Expires pending member ids (MEMBER_ID_REQUIRED never answered) and sessions of members
        that are not parked in a JoinGroup or SyncGroup, ends join phases whose initial delay
        or rebalance timeout passed (removing dynamic members that did not rejoin), and
        completes the Pendings that this settles.
        """
        for group in list(self._groups.values()):
            for member_id, deadline in list(group.pending_members.items()):
                if now_ms >= deadline:
                    del group.pending_members[member_id]
                    self._events.append(
                        GroupEvent("pending_member_expired", group.group_id, member_id)
                    )
            expired = [
                m
                for m in group.members.values()
                if m.join is None and m.sync is None and now_ms >= m.session_deadline_ms
            ]
            for m in expired:
                self._remove_member(group, m, "session timeout expired")
            if expired:
                self._after_removal(group, now_ms, "session timeout expired")
            self._maybe_complete_join(group, now_ms)
        events, self._events = self._events, []
        self._deliver()
        return events

    def next_deadline_ms(self) -> int | None:
        """The earliest time at which ``tick`` has something to do, or None."""
        deadlines: list[int] = []
        for g in self._groups.values():
            deadlines.extend(g.pending_members.values())
            deadlines.extend(
                m.session_deadline_ms
                for m in g.members.values()
                if m.join is None and m.sync is None
            )
            if g.state is PREPARING:
                if g.initial_delay_deadline_ms is not None:
                    deadlines.append(g.initial_delay_deadline_ms)
                elif g.join_deadline_ms is not None:
                    deadlines.append(g.join_deadline_ms)
        return min(deadlines, default=None)

    # ------------------------------------------------------------------------------------------
    # Offsets.

    def commit_offsets(
        self,
        group_id: str,
        offsets: Mapping[TopicPartition, CommitOffset],
        *,
        generation_id: int = -1,
        member_id: str = "",
        group_instance_id: str | None = None,
        retention_time_ms: int = -1,
        now_ms: int,
    ) -> dict[TopicPartition, KafkaApiError | None]:
        """OffsetCommit (kafka-spec.md e.4): validate the member, then store each partition.

        ``generation_id == -1`` with no member is a "simple" commit (assign() consumers, admin
        tools), accepted only while the group is Empty; such a commit creates the group.
        ``retention_time_ms`` (OffsetCommit v2-4) sets an explicit expire timestamp.

        Returns:
            {partition: None (stored) | UnknownTopicOrPartitionError |
            OffsetMetadataTooLargeError}.

        Raises:
            IllegalGenerationError: no such group and ``generation_id >= 0``, or another
                generation.
            UnknownMemberIdError, FencedInstanceIdError, RebalanceInProgressError
                (CompletingRebalance), CoordinatorNotAvailableError (Dead).
        """
        group = self._groups.get(group_id)
        if group is None:
            if generation_id >= 0:
                raise IllegalGenerationError(f"group {group_id!r} does not exist")
            group = ClassicGroup(group_id, state_timestamp_ms=now_ms)
            self._groups[group_id] = group
        self._validate_offset_commit(group, generation_id, member_id, group_instance_id)
        if member_id in group.members:
            member = group.members[member_id]
            member.session_deadline_ms = now_ms + member.session_timeout_ms
        expire = now_ms + retention_time_ms if retention_time_ms >= 0 else -1
        out: dict[TopicPartition, KafkaApiError | None] = {}
        for tp, commit in offsets.items():
            tp = TopicPartition(*tp)
            error = self._check_partition_commit(tp, commit)
            if error is not None:
                out[tp] = error
                continue
            metadata = commit.metadata or ""
            stored = OffsetAndMetadata(commit.offset, commit.leader_epoch, metadata, now_ms, expire)
            seq = self._queue(group_id, *self._offset_record(group_id, tp, stored))
            group.offsets[tp] = stored
            group.offset_seq[tp] = seq
            out[tp] = None
        return out

    def _check_partition_commit(
        self, tp: TopicPartition, commit: CommitOffset
    ) -> KafkaApiError | None:
        """The per-partition error of an (Txn)OffsetCommit, or None."""
        count = self._partition_count(tp.topic) if self._partition_count else None
        if self._partition_count is not None and (count is None or not 0 <= tp.partition < count):
            return UnknownTopicOrPartitionError(f"{tp.topic}-{tp.partition}")
        metadata = commit.metadata or ""
        if len(metadata) > self.config.offset_metadata_max_bytes:
            return OffsetMetadataTooLargeError(
                f"{len(metadata)} > offset.metadata.max.bytes "
                f"{self.config.offset_metadata_max_bytes}"
            )
        return None

    @staticmethod
    def _offset_record(group_id: str, tp: TopicPartition, om: OffsetAndMetadata) -> Record:
        return (
            rec.encode_offset_commit_key(group_id, tp.topic, tp.partition),
            rec.encode_offset_commit_value(
                rec.OffsetCommitValue(
                    om.offset,
                    om.metadata,
                    om.commit_timestamp_ms,
                    om.leader_epoch,
                    om.expire_timestamp_ms,
                )
            ),
        )

    def _validate_offset_commit(
        self,
        group: ClassicGroup,
        generation_id: int,
        member_id: str,
        instance_id: str | None,
        *,
        transactional: bool = False,
    ) -> None:
        """Kafka's ClassicGroup.validateOffsetCommit. A transactional commit (TxnOffsetCommit
        v0-2 carry no member) may come without a member into a non-empty group, and is not
        refused while the group completes a rebalance."""
        if group.state is DEAD:
            raise CoordinatorNotAvailableError(f"group {group.group_id!r} is dead")
        if generation_id < 0 and group.state is EMPTY:
            return
        if generation_id >= 0 or member_id or instance_id is not None:
            self._validate_member(group, member_id, instance_id)
            if generation_id != group.generation_id:
                raise IllegalGenerationError(
                    f"generation {generation_id}, group {group.group_id!r} is at "
                    f"{group.generation_id}"
                )
        elif not transactional and group.state is not EMPTY:
            raise UnknownMemberIdError(
                f"group {group.group_id!r} has members: commits need a member and generation"
            )
        if not transactional and group.state is COMPLETING:
            raise RebalanceInProgressError(f"group {group.group_id!r} is completing a rebalance")

    # ------------------------------------------------------------------------------------------
    # Transactional offsets: TxnOffsetCommit and the markers that end a transaction.

    def txn_offset_commit(
        self,
        group_id: str,
        offsets: Mapping[TopicPartition, CommitOffset | tuple[int, int, str | None]],
        *,
        producer_id: int,
        producer_epoch: int,
        generation_id: int = -1,
        member_id: str = "",
        group_instance_id: str | None = None,
        now_ms: int,
    ) -> dict[TopicPartition, KafkaApiError | None]:
        """TxnOffsetCommit (kafka-spec.md d.3): hold offsets for an open transaction.

        Validation is OffsetCommit's with Kafka's transactional relaxations (see
        ``_validate_offset_commit``); generation -1 with no member is accepted on an Empty
        group and creates it if needed, as Kafka's "simple" commits. Accepted offsets become
        pending for ``producer_id`` (a later TxnOffsetCommit of the same producer replaces
        them) and are queued as a transactional batch of (``producer_id``,
        ``producer_epoch``) in the same record formats as OffsetCommit. They stay invisible to
        ``fetch_offsets`` until ``complete_txn(producer_id, commit=True)``. The producer's
        epoch is not checked here: the log's producer state fences a stale epoch when the
        batch is appended, and the transaction coordinator owns the transaction.

        Args:
            offsets: {partition: CommitOffset or (offset, leader_epoch, metadata)}.

        Returns:
            {partition: None (pending) | UnknownTopicOrPartitionError |
            OffsetMetadataTooLargeError}.

        Raises:
            InvalidGroupIdError: empty group id.
            InvalidRequestError: ``producer_id`` < 0 (not a transactional producer).
            IllegalGenerationError: no such group and ``generation_id >= 0``, or another
                generation.
            UnknownMemberIdError, FencedInstanceIdError, CoordinatorNotAvailableError (Dead).
        """
        if not group_id:
            raise InvalidGroupIdError("group id must not be empty")
        if producer_id < 0:
            raise InvalidRequestError(f"TxnOffsetCommit needs a producer id, got {producer_id}")
        self._txn_undo = None
        group = self._groups.get(group_id)
        created = group is None
        if group is None:
            if generation_id >= 0:
                raise IllegalGenerationError(f"group {group_id!r} does not exist")
            group = ClassicGroup(group_id, state_timestamp_ms=now_ms)
            self._groups[group_id] = group
        self._validate_offset_commit(
            group, generation_id, member_id, group_instance_id, transactional=True
        )
        held = group.pending_txn.get(producer_id)
        self._txn_undo = _TxnUndo(
            group_id, producer_id, created, None if held is None else dict(held)
        )
        out: dict[TopicPartition, KafkaApiError | None] = {}
        for tp, value in offsets.items():
            tp = TopicPartition(*tp)
            commit = value if isinstance(value, CommitOffset) else CommitOffset(*value)
            error = self._check_partition_commit(tp, commit)
            if error is not None:
                out[tp] = error
                continue
            stored = OffsetAndMetadata(
                commit.offset, commit.leader_epoch, commit.metadata or "", now_ms
            )
            key, record_value = self._offset_record(group_id, tp, stored)
            self._seq += 1
            self._records.append((group_id, producer_id, producer_epoch, key, record_value))
            group.pending_txn.setdefault(producer_id, {})[tp] = (stored, self._seq)
            self._txn_groups.setdefault(producer_id, set()).add(group_id)
            out[tp] = None
        return out

    def revert_last_txn_offset_commit(self) -> None:
        """Undo the last ``txn_offset_commit``: its transactional batch was not appended.

        Kafka holds TxnOffsetCommit offsets only once their batch is in the log; a failed
        append (the log fences a stale producer epoch: INVALID_PRODUCER_EPOCH /
        PRODUCER_FENCED, or an I/O error) leaves nothing behind. Call this right after that
        failure, before any other coordinator call: it restores the producer's pending
        offsets of that group as they were, forgets a group the call created, and drops the
        producer's records of that group if they are still queued. No-op when there is nothing to
        revert (also after ``complete_txn`` or ``delete_groups``, which settle the state).
        """
        undo, self._txn_undo = self._txn_undo, None
        if undo is None:
            return
        self._records = [
            q for q in self._records if (q[0], q[1]) != (undo.group_id, undo.producer_id)
        ]
        group = self._groups.get(undo.group_id)
        if group is None:
            return
        if undo.previous is None:
            group.pending_txn.pop(undo.producer_id, None)
            self._forget_txn_group(undo.producer_id, undo.group_id)
        else:
            group.pending_txn[undo.producer_id] = undo.previous
        if (
            undo.created
            and not group.offsets
            and not group.pending_txn
            and not group.members
            and group.state is EMPTY
        ):
            del self._groups[undo.group_id]

    def complete_txn(
        self,
        producer_id: int,
        commit: bool,
        now_ms: int,
        *,
        offsets_partition: int | None = None,
        num_partitions: int | None = None,
    ) -> int:
        """A COMMIT (``commit=True``) or ABORT marker of ``producer_id`` was written.

        Call it after writing the marker to a ``__consumer_offsets`` partition, with that
        partition (``offsets_partition`` of ``num_partitions``): only the groups it owns are
        completed, as in Kafka, where each offsets partition replays its own markers. Without
        a partition every group is completed (a broker that writes the marker to every offsets
        partition of the transaction at once, under one lock).

        COMMIT: each pending offset of the producer becomes the committed offset of its
        partition, unless the committed one was written to the log after it (a later
        OffsetCommit wins over an earlier transactional one; Kafka compares record offsets).
        ABORT: they are dropped. A producer with nothing pending is a no-op. Nothing is queued:
        the marker is the record. ``now_ms`` is accepted for symmetry with the other calls;
        completion reads no clock (the offsets keep their TxnOffsetCommit timestamp).

        Returns:
            How many pending offsets were resolved (committed, superseded or dropped).
        """
        del now_ms
        self._txn_undo = None
        if (offsets_partition is None) != (num_partitions is None):
            raise ValueError("give both offsets_partition and num_partitions, or neither")
        group_ids = self._txn_groups.get(producer_id)
        if not group_ids:
            return 0
        resolved = 0
        for group_id in sorted(group_ids):
            if num_partitions is not None and (
                rec.offsets_partition_for(group_id, num_partitions) != offsets_partition
            ):
                continue
            group_ids.discard(group_id)
            group = self._groups[group_id]
            pending = group.pending_txn.pop(producer_id, {})
            resolved += len(pending)
            if commit:
                _apply_committed_txn(group.offsets, group.offset_seq, pending)
        if not group_ids:
            del self._txn_groups[producer_id]
        return resolved

    def pending_txn_offsets(
        self, group_id: str
    ) -> dict[int, dict[TopicPartition, OffsetAndMetadata]]:
        """The offsets open transactions hold for a group: {producer id: {partition: offset}}."""
        group = self._groups.get(group_id)
        if group is None:
            return {}
        return {
            pid: {tp: om for tp, (om, _) in sorted(offsets.items())}
            for pid, offsets in sorted(group.pending_txn.items())
        }

    def txn_producers(self) -> list[int]:
        """Producer ids whose open transactions hold offsets (their markers are awaited)."""
        return sorted(self._txn_groups)

    @overload
    def fetch_offsets(
        self,
        group_id: str,
        partitions: Iterable[TopicPartition] | None = None,
        *,
        require_stable: Literal[False] = False,
    ) -> dict[TopicPartition, OffsetAndMetadata]: ...

    @overload
    def fetch_offsets(
        self,
        group_id: str,
        partitions: Iterable[TopicPartition] | None = None,
        *,
        require_stable: bool,
    ) -> dict[TopicPartition, OffsetAndMetadata | UnstableOffsetCommitError]: ...

    def fetch_offsets(
        self,
        group_id: str,
        partitions: Iterable[TopicPartition] | None = None,
        *,
        require_stable: bool = False,
    ) -> dict[TopicPartition, OffsetAndMetadata | UnstableOffsetCommitError]:
        """OffsetFetch: committed offsets; ``partitions=None`` returns every committed one.

        A partition with no commit (or an unknown group) maps to ``offset == -1``. Offsets of
        open transactions are never returned. With ``require_stable`` (OffsetFetch v7+
        RequireStable) a partition that an open transaction holds an offset for maps to an
        ``UnstableOffsetCommitError`` instead (UNSTABLE_OFFSET_COMMIT, 88; the wire answer
        carries offset -1, leader epoch -1, metadata ""); with ``partitions=None`` only
        committed partitions are listed, as in Kafka.
        """
        group = self._groups.get(group_id)
        committed = group.offsets if group is not None else {}
        if partitions is None:
            wanted = sorted(committed)
        else:
            wanted = [TopicPartition(*tp) for tp in partitions]
        out: dict[TopicPartition, OffsetAndMetadata | UnstableOffsetCommitError] = {}
        for tp in wanted:
            if require_stable and group is not None and group.has_pending_txn(tp):
                out[tp] = UnstableOffsetCommitError(
                    f"group {group_id!r} has a pending transactional offset for "
                    f"{tp.topic}-{tp.partition}"
                )
            else:
                out[tp] = committed.get(tp, NO_OFFSET)
        return out

    def expire_offsets(self, now_ms: int) -> int:
        """Drop offsets past ``offsets.retention.minutes``; returns how many expired.

        Kafka's rules (KIP-211): offsets of a group using group management expire only while
        the group is Empty, counted from when it became Empty; a group without a protocol type
        (simple commits only) counts from each commit; an explicit expire timestamp (v1
        records) wins. An Empty group left with no offsets becomes Dead and is removed.
        As in Kafka, an offset does not expire while an open transaction holds one for the
        same partition, and a group with pending transactional offsets is kept.
        The caller schedules this (Kafka: every offsets.retention.check.interval.ms, 600000).
        """
        retention = self.config.offsets_retention_ms
        count = 0
        for group in list(self._groups.values()):
            if group.protocol_type is not None and group.state is not EMPTY:
                continue
            for tp, om in list(group.offsets.items()):
                if om.expire_timestamp_ms >= 0:
                    due = om.expire_timestamp_ms
                elif group.protocol_type is not None:
                    due = group.state_timestamp_ms + retention
                else:
                    due = om.commit_timestamp_ms + retention
                if now_ms >= due and not group.has_pending_txn(tp):
                    del group.offsets[tp]
                    group.offset_seq.pop(tp, None)
                    self._queue(
                        group.group_id,
                        rec.encode_offset_commit_key(group.group_id, tp.topic, tp.partition),
                        None,
                    )
                    count += 1
            if (
                group.state is EMPTY
                and not group.offsets
                and not group.members
                and not group.pending_txn
            ):
                self._queue(group.group_id, rec.encode_group_metadata_key(group.group_id), None)
                group.state = DEAD
                del self._groups[group.group_id]
                self._events.append(GroupEvent("offsets_expired", group.group_id))
        return count

    def group_lag(
        self, group_id: str, log_end_offset: Callable[[TopicPartition], int | None]
    ) -> dict[TopicPartition, PartitionLag]:
        """Per-partition lag over the committed and currently assigned partitions.

        ``log_end_offset`` gives a partition's end offset (the high watermark for consumers),
        or None if unknown. Assignments are decoded as consumer-protocol Assignments when the
        group's protocol type is "consumer"; undecodable ones are skipped.
        """
        group = self._groups.get(group_id)
        if group is None:
            return {}
        owner: dict[TopicPartition, str] = {}
        if group.protocol_type == "consumer":
            for m in group.members.values():
                try:
                    assignment = decode_assignment(m.assignment)
                except MalformedPayloadError:
                    continue
                for tp in assignment.partitions:
                    owner[tp] = m.member_id
        out: dict[TopicPartition, PartitionLag] = {}
        for tp in sorted(set(group.offsets) | set(owner)):
            committed = group.offsets.get(tp, NO_OFFSET).offset
            end = log_end_offset(tp)
            lag = max(end - committed, 0) if end is not None and committed >= 0 else None
            out[tp] = PartitionLag(owner.get(tp), committed, end, lag)
        return out

    # ------------------------------------------------------------------------------------------
    # Admin: ListGroups, DescribeGroups, DeleteGroups.

    def list_groups(
        self, states_filter: Iterable[str] | None = None, types_filter: Iterable[str] | None = None
    ) -> list[ListedGroup]:
        """ListGroups; filters compare case-insensitively (ListGroups v4 states, v5 types)."""
        states = {s.lower() for s in states_filter} if states_filter else None
        types = {t.lower() for t in types_filter} if types_filter else None
        if types is not None and "classic" not in types:
            return []
        return [
            ListedGroup(g.group_id, g.protocol_type or "", g.state.value)
            for g in sorted(self._groups.values(), key=lambda g: g.group_id)
            if states is None or g.state.value.lower() in states
        ]

    def describe_groups(self, group_ids: Iterable[str]) -> list[DescribedGroup]:
        """DescribeGroups. Member metadata and the protocol name are given only when Stable."""
        out: list[DescribedGroup] = []
        for group_id in group_ids:
            g = self._groups.get(group_id)
            if g is None:
                out.append(DescribedGroup(group_id, DEAD.value, "", ""))
                continue
            stable = g.state is STABLE
            members = tuple(
                DescribedGroupMember(
                    m.member_id,
                    m.group_instance_id,
                    m.client_id,
                    m.client_host,
                    m.metadata(g.protocol_name) if stable else b"",
                    m.assignment if stable else b"",
                )
                for m in g.members.values()
            )
            out.append(
                DescribedGroup(
                    group_id,
                    g.state.value,
                    g.protocol_type or "",
                    (g.protocol_name or "") if stable else "",
                    members,
                )
            )
        return out

    def delete_groups(self, group_ids: Iterable[str]) -> dict[str, KafkaApiError | None]:
        """DeleteGroups: an Empty group and its offsets are tombstoned and forgotten.

        Pending transactional offsets do not keep an Empty group alive (Kafka's
        deleteAllOffsets): a partition held only by an open transaction gets a tombstone too,
        and the pending offsets are dropped, so a later COMMIT marker restores nothing (replay
        agrees: a tombstone clears the pending offsets of its partition).

        Returns:
            {group_id: None | GroupIdNotFoundError | NonEmptyGroupError}.
        """
        self._txn_undo = None
        out: dict[str, KafkaApiError | None] = {}
        for group_id in group_ids:
            g = self._groups.get(group_id)
            if g is None or g.state is DEAD:
                out[group_id] = GroupIdNotFoundError(f"group {group_id!r} does not exist")
                continue
            if g.state is not EMPTY or g.members:
                out[group_id] = NonEmptyGroupError(f"group {group_id!r} is {g.state.value}")
                continue
            pending_only = {tp for held in g.pending_txn.values() for tp in held} - set(g.offsets)
            for tp in sorted(set(g.offsets) | pending_only):
                self._queue(
                    group_id, rec.encode_offset_commit_key(group_id, tp.topic, tp.partition), None
                )
            self._queue(group_id, rec.encode_group_metadata_key(group_id), None)
            for producer_id in g.pending_txn:
                self._forget_txn_group(producer_id, group_id)
            g.pending_txn.clear()
            g.state = DEAD
            del self._groups[group_id]
            self._events.append(GroupEvent("group_deleted", group_id))
            out[group_id] = None
        return out

    # ------------------------------------------------------------------------------------------
    # Introspection for the embedded broker.

    def group_ids(self) -> list[str]:
        return sorted(self._groups)

    def group_state(self, group_id: str) -> GroupState:
        """The group's state; Dead when the group does not exist."""
        g = self._groups.get(group_id)
        return g.state if g is not None else DEAD

    def generation_id(self, group_id: str) -> int:
        g = self._groups.get(group_id)
        return g.generation_id if g is not None else -1

    # ------------------------------------------------------------------------------------------
    # Persistence.

    def _store_group(self, group: ClassicGroup) -> None:
        members = tuple(
            rec.MemberMetadata(
                member_id=m.member_id,
                client_id=m.client_id,
                client_host=m.client_host,
                session_timeout=m.session_timeout_ms,
                subscription=m.metadata(group.protocol_name),
                assignment=m.assignment,
                rebalance_timeout=m.rebalance_timeout_ms,
                group_instance_id=m.group_instance_id,
            )
            for m in group.members.values()
        )
        value = rec.GroupMetadataValue(
            protocol_type=group.protocol_type or "",
            generation=group.generation_id,
            protocol=group.protocol_name,
            leader=group.leader_id if group.members else None,
            current_state_timestamp=group.state_timestamp_ms,
            members=members,
        )
        self._queue(
            group.group_id,
            rec.encode_group_metadata_key(group.group_id),
            rec.encode_group_metadata_value(value),
        )

    def _forget_txn_group(self, producer_id: int, group_id: str) -> None:
        group_ids = self._txn_groups.get(producer_id)
        if group_ids is not None:
            group_ids.discard(group_id)
            if not group_ids:
                del self._txn_groups[producer_id]

    def load(self, records: Iterable[Record], now_ms: int) -> int:
        """Rebuild groups and offsets from ``(key, value)`` records of non-transactional batches.

        ``load_entries`` with every record as ``("record", key, value)``; see there.
        """
        return self.load_entries((("record", key, value) for key, value in records), now_ms)

    def load_entries(self, entries: Iterable[ReplayEntry], now_ms: int) -> int:
        """Rebuild groups and offsets by replaying ONE ``__consumer_offsets`` partition.

        ``entries`` are in log order (``ReplayEntry``): ``("record", key, value)`` for a
        record of an ordinary batch, ``("txn_record", producer_id, key, value)`` for a record
        of a transactional batch (the batch header's producer id), ``("marker", producer_id,
        commit)`` for a COMMIT/ABORT control record. Transactional offsets are pending until
        their producer's marker in this partition: COMMIT applies them unless a commit written
        later in the log already replaced them, ABORT drops them; with no marker they stay
        pending, and the transaction coordinator completes them after restart through
        ``complete_txn``. A tombstone clears its partition's committed and pending offsets.
        Call once per partition: a marker completes only the transactions of the entries
        given with it (markers of one producer in different partitions may belong to
        different transactions when a crash interrupted the marker writes).

        A group with members comes back Stable with its generation, leader, protocol and
        assignments; every member gets a fresh session (``now_ms`` + its session timeout) and
        must heartbeat as usual. A group with offsets only (committed or pending) comes back
        Empty. Keys of other record types (KIP-848, share groups) are skipped. Groups already
        in memory must not appear in ``entries`` (each offsets partition owns disjoint groups).

        Returns:
            How many groups were loaded.

        Raises:
            MalformedPayloadError: a key or value does not decode.
            ValueError: an entry of an unknown kind.
        """
        offsets: dict[str, dict[TopicPartition, tuple[OffsetAndMetadata, int]]] = {}
        pending: dict[str, dict[int, dict[TopicPartition, tuple[OffsetAndMetadata, int]]]] = {}
        by_producer: dict[int, set[str]] = {}
        metadata: dict[str, rec.GroupMetadataValue | None] = {}
        for entry in entries:
            kind = entry[0]
            if kind == "marker":
                _, producer_id, commit = entry
                for name in by_producer.pop(producer_id, ()):
                    held = pending[name].pop(producer_id, {})
                    if not pending[name]:
                        del pending[name]
                    if commit:
                        group_offsets = offsets.setdefault(name, {})
                        for tp, (om, seq) in held.items():
                            current = group_offsets.get(tp)
                            if current is None or seq > current[1]:
                                group_offsets[tp] = (om, seq)
                continue
            if kind == "record":
                _, key, value = entry
                producer_id = -1
            elif kind == "txn_record":
                _, producer_id, key, value = entry
            else:
                raise ValueError(f"unknown replay entry kind {kind!r}")
            self._seq += 1
            k = rec.decode_key(key)
            if isinstance(k, rec.OffsetCommitKey):
                tp = TopicPartition(k.topic, k.partition)
                if value is None:
                    offsets.get(k.group, {}).pop(tp, None)
                    group_pending = pending.get(k.group, {})
                    for pid in list(group_pending):
                        group_pending[pid].pop(tp, None)
                        if not group_pending[pid]:
                            del group_pending[pid]
                            by_producer[pid].discard(k.group)
                    if not group_pending:
                        pending.pop(k.group, None)
                    continue
                v = rec.decode_offset_commit_value(value)
                om = OffsetAndMetadata(
                    v.offset, v.leader_epoch, v.metadata, v.commit_timestamp, v.expire_timestamp
                )
                if producer_id < 0:
                    offsets.setdefault(k.group, {})[tp] = (om, self._seq)
                else:
                    pending.setdefault(k.group, {}).setdefault(producer_id, {})[tp] = (
                        om,
                        self._seq,
                    )
                    by_producer.setdefault(producer_id, set()).add(k.group)
            elif isinstance(k, rec.GroupMetadataKey):
                metadata[k.group] = (
                    None if value is None else rec.decode_group_metadata_value(value)
                )
        names = (
            {g for g, o in offsets.items() if o}
            | {g for g, m in metadata.items() if m}
            | set(pending)
        )
        for name in sorted(names):
            assert name not in self._groups, f"group {name!r} loaded twice"
            group = ClassicGroup(name, state_timestamp_ms=now_ms)
            for tp, (om, seq) in offsets.get(name, {}).items():
                group.offsets[tp] = om
                group.offset_seq[tp] = seq
            group.pending_txn = pending.get(name, {})
            for producer_id in group.pending_txn:
                self._txn_groups.setdefault(producer_id, set()).add(name)
            md = metadata.get(name)
            if md is not None:
                self._restore_membership(group, md, now_ms)
            self._groups[name] = group
        return len(names)

    def _restore_membership(
        self, group: ClassicGroup, md: rec.GroupMetadataValue, now_ms: int
    ) -> None:
        group.protocol_type = md.protocol_type or None
        group.generation_id = md.generation
        group.protocol_name = md.protocol
        if md.current_state_timestamp >= 0:
            group.state_timestamp_ms = md.current_state_timestamp
        for m in md.members:
            protocols = ((md.protocol, m.subscription),) if md.protocol else ()
            rebalance = m.rebalance_timeout if m.rebalance_timeout >= 0 else m.session_timeout
            group.members[m.member_id] = Member(
                member_id=m.member_id,
                group_instance_id=m.group_instance_id,
                client_id=m.client_id,
                client_host=m.client_host,
                rebalance_timeout_ms=rebalance,
                session_timeout_ms=m.session_timeout,
                protocol_type=md.protocol_type,
                protocols=protocols,
                session_deadline_ms=now_ms + m.session_timeout,
                assignment=m.assignment,
            )
            if m.group_instance_id is not None:
                group.static_members[m.group_instance_id] = m.member_id
        if group.members:
            group.state = STABLE
            group.leader_id = md.leader if md.leader in group.members else next(iter(group.members))


def _apply_committed_txn(
    offsets: dict[TopicPartition, OffsetAndMetadata],
    offset_seq: dict[TopicPartition, int],
    committed: Mapping[TopicPartition, tuple[OffsetAndMetadata, int]],
) -> None:
    """Make a committed transaction's offsets the group's, each unless the group's committed
    offset was written later in the log (Kafka: ``recordOffset`` comparison)."""
    for tp, (om, seq) in committed.items():
        if tp not in offsets or seq > offset_seq.get(tp, -1):
            offsets[tp] = om
            offset_seq[tp] = seq


@dataclass(frozen=True)
class _TxnUndo:
    """How to revert one txn_offset_commit: the producer's pending offsets of the group
    before it (None: none), and whether it created the group."""

    group_id: str
    producer_id: int
    created: bool
    previous: dict[TopicPartition, tuple[OffsetAndMetadata, int]] | None


@dataclass(frozen=True)
class _JoinRequest:
    member_id: str
    group_instance_id: str | None
    client_id: str
    client_host: str
    session_timeout_ms: int
    rebalance_timeout_ms: int
    protocol_type: str
    protocols: tuple[tuple[str, bytes], ...]
    supports_skip_assignment: bool
