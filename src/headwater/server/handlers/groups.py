"""Consumer-group APIs over the broker's group coordinator (kafka-spec.md e.1-e.4).

FindCoordinator (10), JoinGroup (11), Heartbeat (12), LeaveGroup (13), SyncGroup (14),
OffsetCommit (8), OffsetFetch (9), DescribeGroups (15), ListGroups (16), DeleteGroups (42).

One coordinator for everyone: every call goes to ``broker.group_coordinator`` through
``broker._group_call`` (broker lock held, the records the call produced appended to
``__consumer_offsets`` before the lock is released). Embedded consumers
(``broker.consumer({"group.id": g})``) call the same object, so a wire member and an embedded
member of one group share generations, assignments and committed offsets.

Waiting: JoinGroup and a follower's SyncGroup get a ``Pending`` that another call completes
later: another member's join, the leader's sync, a leave, or the coordinator tick on the
broker's timer thread (every 50 ms: session expiry, rebalance and initial-delay deadlines). The
done-callback therefore runs on whichever thread drove the coordinator, with the broker lock
held; it only schedules the result onto the server's event loop (``call_soon_threadsafe``),
where the handler awaits it. The callback is attached while the lock is still held, so a
completion on another thread cannot slip between the call and the attachment.

A client that disconnects while its JoinGroup is parked: the handler task is cancelled (or its
response dropped), the Pending still completes inside the coordinator and the member stays until
it rejoins, leaves or its session/rebalance timeout removes it, as in Kafka. The callback never
raises into the coordinator: a finished future or a closed loop are both ignored. When the server
stops, a parked request answers NOT_COORDINATOR within ``_STOP_CHECK_S`` instead of holding the
shutdown for up to a rebalance timeout; the member stays in the group, as after a disconnect.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from headwater.coordinator.group import (
    CommitOffset,
    JoinGroupResult,
    LeaveMember,
    MemberIdRequiredError,
    Pending,
    SyncGroupResult,
    TopicPartition,
)
from headwater.errors import InvalidRequestError, KafkaApiError, NotCoordinatorError
from headwater.server.context import RequestContext
from headwater.server.errors import (
    NONE,
    error_code,
    error_message,
)

# FindCoordinator key types (FindCoordinatorRequest.json).
KEY_TYPE_GROUP = 0
KEY_TYPE_TRANSACTION = 1

# DescribeGroups v3+ include_authorized_operations: with no authorizer every operation a group
# supports is allowed. AclOperation codes READ=3, DELETE=6, DESCRIBE=8, one bit each.
_GROUP_AUTHORIZED_OPERATIONS = (1 << 3) | (1 << 6) | (1 << 8)
_AUTHORIZED_OPERATIONS_OMITTED = -(2**31)


# ----------------------------------------------------------------------------------------------
# Plumbing.

# How often a parked JoinGroup/SyncGroup checks whether the server is stopping.
_STOP_CHECK_S = 0.25


def _settle(future: asyncio.Future[Pending[Any]], pending: Pending[Any]) -> None:
    if not future.done():  # cancelled: the client went away, the answer is dropped
        future.set_result(pending)


async def _await_pending(ctx: RequestContext, start: Callable[[], Pending[Any]]) -> Pending[Any]:
    """Run ``start()`` (a coordinator call returning a Pending) under the broker lock and wait
    on the event loop until the Pending completes, whichever thread completes it."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[Pending[Any]] = loop.create_future()

    def on_done(pending: Pending[Any]) -> None:
        # Runs inside a coordinator call, possibly on the timer thread or an embedded
        # consumer's thread: hand over to the loop and never raise into the coordinator.
        try:
            loop.call_soon_threadsafe(_settle, future, pending)
        except RuntimeError:
            pass  # the loop is closed (server stopped): nobody is left to answer

    def call() -> Pending[Any]:
        pending = start()
        if not pending.done():
            pending.add_done_callback(on_done)
        return pending

    pending = ctx.broker._group_call(call)
    if pending.done():
        return pending
    # A parked request must not hold back the server's shutdown for up to a rebalance
    # timeout: check for it now and then (one timer per parked request, 4 per second).
    while True:
        done, _ = await asyncio.wait((future,), timeout=_STOP_CHECK_S)
        if done:
            return future.result()
        if ctx.server.stopping:
            return Pending.failed(NotCoordinatorError("the server is shutting down"))


def _client_host(ctx: RequestContext) -> str:
    """The member's address as Kafka reports it in DescribeGroups ("/127.0.0.1")."""
    peer = getattr(ctx.connection, "peer", None)  # the socket's peername tuple
    return f"/{peer[0]}" if isinstance(peer, tuple) and peer else ""


# ----------------------------------------------------------------------------------------------
# FindCoordinator.


def find_coordinator(ctx: RequestContext, request: dict) -> dict:
    """FindCoordinator v0-3: this node coordinates every group and every transactional id
    (key type 1: the broker's transaction coordinator, served by handlers/txn.py)."""
    key_type = request["key_type"]
    if key_type in (KEY_TYPE_GROUP, KEY_TYPE_TRANSACTION):
        server = ctx.server
        return {
            "error_code": NONE,
            "error_message": None,
            "node_id": server.node_id,
            "host": server.advertised_host,
            "port": server.advertised_port,
        }
    exc = InvalidRequestError(f"unknown coordinator key type {key_type}")
    return {"error_code": error_code(exc), "error_message": error_message(exc), "node_id": -1, "host": "", "port": -1}


# ----------------------------------------------------------------------------------------------
# JoinGroup, SyncGroup, Heartbeat, LeaveGroup.


async def join_group(ctx: RequestContext, request: dict) -> dict:
    """JoinGroup v0-7: parked until the join phase completes (the response may take up to the
    group's rebalance timeout). v4+ new dynamic members get MEMBER_ID_REQUIRED with their id
    first; v5+ static members (group_instance_id) replace their previous member id."""
    version = ctx.api_version
    broker = ctx.broker
    coordinator = broker.group_coordinator
    protocols = [(p["name"], bytes(p["metadata"])) for p in request["protocols"]]

    def start() -> Pending[JoinGroupResult]:
        return coordinator.join_group(
            request["group_id"],
            member_id=request["member_id"],
            group_instance_id=request["group_instance_id"],
            client_id=ctx.client_id or "",
            client_host=_client_host(ctx),
            session_timeout_ms=request["session_timeout_ms"],
            rebalance_timeout_ms=request["rebalance_timeout_ms"],
            protocol_type=request["protocol_type"],
            protocols=protocols,
            now_ms=ctx.now_ms(),
            require_known_member_id=version >= 4,
            supports_skip_assignment=version >= 9,
        )

    pending = await _await_pending(ctx, start)
    exc = pending.exception()
    if exc is not None:
        return {
            "error_code": error_code(exc),
            "generation_id": -1,
            "protocol_type": None,
            "protocol_name": None if version >= 7 else "",
            "leader": "",
            # MEMBER_ID_REQUIRED carries the id to rejoin with; other errors echo the request's.
            "member_id": exc.member_id if isinstance(exc, MemberIdRequiredError) else request["member_id"],
            "members": [],
        }
    result: JoinGroupResult = pending.result()
    return {
        "error_code": NONE,
        "generation_id": result.generation_id,
        "protocol_type": result.protocol_type,
        "protocol_name": result.protocol_name if version >= 7 else (result.protocol_name or ""),
        "leader": result.leader_id,
        "skip_assignment": result.skip_assignment,
        "member_id": result.member_id,
        "members": [
            {"member_id": m.member_id, "group_instance_id": m.group_instance_id, "metadata": m.metadata}
            for m in result.members
        ],
    }


async def sync_group(ctx: RequestContext, request: dict) -> dict:
    """SyncGroup v0-5: the leader's assignments are stored and every member gets its own
    bytes; a follower is parked until the leader syncs."""
    coordinator = ctx.broker.group_coordinator
    assignments = {a["member_id"]: bytes(a["assignment"]) for a in request["assignments"]}

    def start() -> Pending[SyncGroupResult]:
        return coordinator.sync_group(
            request["group_id"],
            member_id=request["member_id"],
            generation_id=request["generation_id"],
            group_instance_id=request["group_instance_id"],
            protocol_type=request["protocol_type"],
            protocol_name=request["protocol_name"],
            assignments=assignments,
            now_ms=ctx.now_ms(),
        )

    pending = await _await_pending(ctx, start)
    exc = pending.exception()
    if exc is not None:
        return {"error_code": error_code(exc), "protocol_type": None, "protocol_name": None, "assignment": b""}
    result: SyncGroupResult = pending.result()
    return {
        "error_code": NONE,
        "protocol_type": result.protocol_type,
        "protocol_name": result.protocol_name,
        "assignment": result.assignment,
    }


def heartbeat(ctx: RequestContext, request: dict) -> dict:
    """Heartbeat v0-4: refreshes the member's session; REBALANCE_IN_PROGRESS means rejoin."""
    broker = ctx.broker
    try:
        broker._group_call(
            broker.group_coordinator.heartbeat,
            request["group_id"],
            member_id=request["member_id"],
            generation_id=request["generation_id"],
            group_instance_id=request["group_instance_id"],
            now_ms=ctx.now_ms(),
        )
    except KafkaApiError as exc:
        return {"error_code": error_code(exc)}
    return {"error_code": NONE}


def leave_group(ctx: RequestContext, request: dict) -> dict:
    """LeaveGroup v0-4. v0-2 name one member and report its error at the top level; v3+
    carry a batch (static members by group_instance_id) with one error per member."""
    broker = ctx.broker
    if ctx.api_version >= 3:
        leaving = [LeaveMember(m["member_id"], m["group_instance_id"]) for m in request["members"]]
    else:
        leaving = [LeaveMember(request["member_id"])]
    try:
        errors = broker._group_call(
            broker.group_coordinator.leave_group, request["group_id"], leaving, now_ms=ctx.now_ms()
        )
    except KafkaApiError as exc:
        return {"error_code": error_code(exc), "members": []}
    codes = [NONE if e is None else error_code(e) for e in errors]
    if ctx.api_version < 3:
        return {"error_code": codes[0]}
    return {
        "error_code": NONE,
        "members": [
            {"member_id": m.member_id, "group_instance_id": m.group_instance_id, "error_code": code}
            for m, code in zip(leaving, codes, strict=True)
        ],
    }


# ----------------------------------------------------------------------------------------------
# OffsetCommit, OffsetFetch.


def offset_commit(ctx: RequestContext, request: dict) -> dict:
    """OffsetCommit v2-8: member and generation checked as the coordinator defines them
    (generation -1 with no member = a "simple" commit, accepted while the group is Empty);
    a group-level error is reported on every partition, as Kafka does."""
    broker = ctx.broker
    offsets: dict[TopicPartition, CommitOffset] = {}
    for topic in request["topics"]:
        for p in topic["partitions"]:
            offsets[TopicPartition(topic["name"], p["partition_index"])] = CommitOffset(
                p["committed_offset"], p["committed_leader_epoch"], p["committed_metadata"]
            )
    group_code = NONE
    results: dict[TopicPartition, KafkaApiError | None] = {}
    try:
        results = broker._group_call(
            broker.group_coordinator.commit_offsets,
            request["group_id"],
            offsets,
            generation_id=request["generation_id_or_member_epoch"],
            member_id=request["member_id"],
            group_instance_id=request["group_instance_id"],
            retention_time_ms=request["retention_time_ms"],
            now_ms=ctx.now_ms(),
        )
    except KafkaApiError as exc:
        group_code = error_code(exc)

    def code_of(tp: TopicPartition) -> int:
        if group_code != NONE:
            return group_code
        error = results.get(tp)
        return NONE if error is None else error_code(error)

    return {
        "topics": [
            {
                "name": topic["name"],
                "partitions": [
                    {
                        "partition_index": p["partition_index"],
                        "error_code": code_of(TopicPartition(topic["name"], p["partition_index"])),
                    }
                    for p in topic["partitions"]
                ],
            }
            for topic in request["topics"]
        ]
    }


def _fetch_group_offsets(ctx: RequestContext, group_id: str, topics: list[dict] | None, require_stable: bool = False) -> list[dict]:
    """Committed offsets of one group as OffsetFetch topics; ``topics=None``: all committed.

    A partition without a commit answers offset -1, metadata "" and no error (Kafka's
    INVALID_OFFSET). With ``require_stable`` (v7+; librdkafka's read_committed consumers set
    it) a partition whose offset an open transaction holds (TxnOffsetCommit not yet committed
    or aborted) answers UNSTABLE_OFFSET_COMMIT with offset -1; the client retries.
    """
    broker = ctx.broker
    wanted = None
    if topics is not None:
        wanted = [TopicPartition(t["name"], p) for t in topics for p in t["partition_indexes"]]
    committed = broker._group_call(broker.group_coordinator.fetch_offsets, group_id, wanted, require_stable=require_stable)
    by_topic: dict[str, list[dict]] = {}
    if topics is not None:
        for t in topics:  # keep the request's topic order, even for topics with no partitions
            by_topic.setdefault(t["name"], [])
    for tp, om in committed.items():
        if isinstance(om, KafkaApiError):
            by_topic.setdefault(tp.topic, []).append(
                {"partition_index": tp.partition, "committed_offset": -1, "committed_leader_epoch": -1, "metadata": "", "error_code": error_code(om)}
            )
            continue
        by_topic.setdefault(tp.topic, []).append(
            {
                "partition_index": tp.partition,
                "committed_offset": om.offset,
                "committed_leader_epoch": om.leader_epoch,
                "metadata": om.metadata if om.offset >= 0 else "",
                "error_code": NONE,
            }
        )
    return [{"name": name, "partitions": parts} for name, parts in by_topic.items()]


def offset_fetch(ctx: RequestContext, request: dict) -> dict:
    """OffsetFetch v1-8: one group (v1-7; topics null = every committed partition, v2+) or a
    batch of groups (v8). ``require_stable`` (v7+): see _fetch_group_offsets."""
    if ctx.api_version >= 8:
        groups = []
        for g in request["groups"]:
            try:
                topics = _fetch_group_offsets(ctx, g["group_id"], g["topics"], request["require_stable"])
                groups.append({"group_id": g["group_id"], "topics": topics, "error_code": NONE})
            except KafkaApiError as exc:
                groups.append({"group_id": g["group_id"], "topics": [], "error_code": error_code(exc)})
        return {"groups": groups}
    try:
        topics = _fetch_group_offsets(ctx, request["group_id"], request["topics"], request["require_stable"])
    except KafkaApiError as exc:
        return {"topics": [], "error_code": error_code(exc)}
    return {"topics": topics, "error_code": NONE}


# ----------------------------------------------------------------------------------------------
# DescribeGroups, ListGroups, DeleteGroups.


def describe_groups(ctx: RequestContext, request: dict) -> dict:
    """DescribeGroups v0-5: state names as Kafka's (Empty, PreparingRebalance,
    CompletingRebalance, Stable, Dead); member metadata/assignment bytes while Stable. An
    unknown group is reported as Dead with no error, as Kafka does."""
    broker = ctx.broker
    described = broker._group_call(broker.group_coordinator.describe_groups, list(request["groups"]))
    operations = (
        _GROUP_AUTHORIZED_OPERATIONS
        if request["include_authorized_operations"]
        else _AUTHORIZED_OPERATIONS_OMITTED
    )
    return {
        "groups": [
            {
                "error_code": NONE,
                "group_id": g.group_id,
                "group_state": g.state,
                "protocol_type": g.protocol_type,
                "protocol_data": g.protocol_data,
                "members": [
                    {
                        "member_id": m.member_id,
                        "group_instance_id": m.group_instance_id,
                        "client_id": m.client_id,
                        "client_host": m.client_host,
                        "member_metadata": m.member_metadata,
                        "member_assignment": m.member_assignment,
                    }
                    for m in g.members
                ],
                "authorized_operations": operations,
            }
            for g in described
        ]
    }


def list_groups(ctx: RequestContext, request: dict) -> dict:
    """ListGroups v0-4; v4 filters by state (case-insensitive, empty = all)."""
    broker = ctx.broker
    listed = broker._group_call(
        broker.group_coordinator.list_groups,
        request["states_filter"] or None,
        request["types_filter"] or None,
    )
    return {
        "error_code": NONE,
        "groups": [
            {
                "group_id": g.group_id,
                "protocol_type": g.protocol_type,
                "group_state": g.state,
                "group_type": g.group_type,
            }
            for g in listed
        ],
    }


def delete_groups(ctx: RequestContext, request: dict) -> dict:
    """DeleteGroups v0-2: an Empty group and its offsets are deleted; a group with members
    answers NON_EMPTY_GROUP, an unknown one GROUP_ID_NOT_FOUND."""
    broker = ctx.broker
    names = list(dict.fromkeys(request["groups_names"]))  # a repeated name is answered once
    errors = broker._group_call(broker.group_coordinator.delete_groups, names)
    return {
        "results": [
            {"group_id": name, "error_code": NONE if errors[name] is None else error_code(errors[name])}
            for name in names
        ]
    }


HANDLERS: dict[int, Any] = {
    8: offset_commit,
    9: offset_fetch,
    10: find_coordinator,
    11: join_group,
    12: heartbeat,
    13: leave_group,
    14: sync_group,
    15: describe_groups,
    16: list_groups,
    42: delete_groups,
}
