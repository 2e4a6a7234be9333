"""Group handlers called directly: error paths and the Pending-to-asyncio bridge.

Goal: every consumer-group API answers Kafka's codes for the error paths real clients rarely
hit on purpose (unknown member, illegal generation, MEMBER_ID_REQUIRED, invalid session
timeout, DeleteGroups on a non-empty group, unknown coordinator key types), for every version
the server advertises.

Method: each call goes through the real codec both ways (request encoded and decoded as the
server would, response encoded and decoded as a client would), so a field of the wrong type or
a null in a non-nullable field fails here, then runs the handler against a real Broker in a
temporary directory. The server object is a stand-in holding only what handlers read (broker,
node id, advertised address). The broker's own timer thread ticks the coordinator, so a
JoinGroup parked on a deadline is completed from another thread, as in production. Real
clients over sockets are in test_groups_clients.py.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from headwater.client import Broker
from headwater.protocol import (
    API_KEYS,
    decode_request,
    decode_response,
    encode_request,
    encode_response,
)
from headwater.server.context import RequestContext
from headwater.server.handlers import HANDLERS

FIND_COORDINATOR, JOIN_GROUP, HEARTBEAT, LEAVE_GROUP, SYNC_GROUP = 10, 11, 12, 13, 14
OFFSET_COMMIT, OFFSET_FETCH, DESCRIBE_GROUPS, LIST_GROUPS, DELETE_GROUPS = 8, 9, 15, 16, 42

NONE = 0
UNKNOWN_TOPIC_OR_PARTITION = 3
COORDINATOR_NOT_AVAILABLE = 15
ILLEGAL_GENERATION = 22
INCONSISTENT_GROUP_PROTOCOL = 23
UNKNOWN_MEMBER_ID = 25
INVALID_SESSION_TIMEOUT = 26
REBALANCE_IN_PROGRESS = 27
INVALID_REQUEST = 42
NON_EMPTY_GROUP = 68
GROUP_ID_NOT_FOUND = 69
MEMBER_ID_REQUIRED = 79
FENCED_INSTANCE_ID = 82

SESSION_MS = 10000


class FakeServer:
    """What the group handlers read from the KafkaServer."""

    node_id = 1
    advertised_host = "127.0.0.1"
    advertised_port = 19092
    stopping = False

    def __init__(self, broker: Broker) -> None:
        self.broker = broker


class FakeConnection:
    peer = ("127.0.0.1", 50000)


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    b = Broker(
        tmp_path / "data",
        {"group.initial.rebalance.delay.ms": 0, "group.min.session.timeout.ms": 100},
    )
    yield b
    b.close()


@pytest.fixture
def server(broker: Broker) -> FakeServer:
    return FakeServer(broker)


async def call_async(server: FakeServer, api_key: int, version: int, body: dict, client_id: str = "c") -> dict:
    """Encode `body` as a client would, decode it as the server does, run the handler and
    return the response as a client decodes it."""
    raw = encode_request(api_key, version, 7, body, client_id=client_id)
    # Skip the request header: int16 key, int16 version, int32 correlation, string client id,
    # plus an empty tag section in flexible versions.
    offset = 8 + 2 + len(client_id.encode())
    if API_KEYS[api_key].request.flexible[0] <= version:
        offset += 1
    request = decode_request(api_key, version, raw, offset)
    ctx = RequestContext(server, FakeConnection(), api_key, version, 7, client_id)  # type: ignore[arg-type]
    response = HANDLERS[api_key](ctx, request)
    if inspect.isawaitable(response):
        response = await asyncio.wait_for(response, timeout=10)
    correlation_id, decoded = decode_response(api_key, version, encode_response(api_key, version, 7, response))
    assert correlation_id == 7
    return decoded


def call(server: FakeServer, api_key: int, version: int, body: dict, client_id: str = "c") -> dict:
    return asyncio.run(call_async(server, api_key, version, body, client_id))


def join_body(group: str, member_id: str = "", *, instance_id: str | None = None, session_ms: int = SESSION_MS, meta: bytes = b"sub") -> dict:
    return {
        "group_id": group,
        "session_timeout_ms": session_ms,
        "rebalance_timeout_ms": 5000,
        "member_id": member_id,
        "group_instance_id": instance_id,
        "protocol_type": "consumer",
        "protocols": [{"name": "range", "metadata": meta}],
    }


def join_new_member(server: FakeServer, group: str, version: int = 5) -> dict:
    """The two-step join of v4+: MEMBER_ID_REQUIRED, then the join with the given id."""
    first = call(server, JOIN_GROUP, version, join_body(group))
    assert first["error_code"] == MEMBER_ID_REQUIRED
    return call(server, JOIN_GROUP, version, join_body(group, first["member_id"]))


def stable_single_member(server: FakeServer, group: str) -> dict:
    joined = join_new_member(server, group)
    assert joined["error_code"] == NONE
    synced = call(server, SYNC_GROUP, 3, {
        "group_id": group, "generation_id": joined["generation_id"], "member_id": joined["member_id"],
        "assignments": [{"member_id": joined["member_id"], "assignment": b"assigned"}],
    })
    assert synced == {**synced, "error_code": NONE, "assignment": b"assigned"}
    return joined


# ---------------------------------------------------------------------------------------------
# FindCoordinator


@pytest.mark.parametrize("version", range(0, 4))
def test_find_coordinator_group_is_this_node(server: FakeServer, version: int) -> None:
    got = call(server, FIND_COORDINATOR, version, {"key": "g", "key_type": 0})
    assert (got["error_code"], got["node_id"], got["host"], got["port"]) == (NONE, 1, "127.0.0.1", 19092)


@pytest.mark.parametrize("version", range(1, 4))
def test_find_coordinator_transaction_is_this_node(server: FakeServer, version: int) -> None:
    got = call(server, FIND_COORDINATOR, version, {"key": "txn-1", "key_type": 1})
    assert (got["error_code"], got["node_id"], got["host"], got["port"]) == (NONE, 1, "127.0.0.1", 19092)


def test_find_coordinator_unknown_key_type_is_invalid_request(server: FakeServer) -> None:
    got = call(server, FIND_COORDINATOR, 3, {"key": "s", "key_type": 2})
    assert got["error_code"] == INVALID_REQUEST


# ---------------------------------------------------------------------------------------------
# JoinGroup


@pytest.mark.parametrize("version", range(4, 8))
def test_join_v4_plus_requires_member_id_then_joins(server: FakeServer, version: int) -> None:
    first = call(server, JOIN_GROUP, version, join_body("g"), client_id="app")
    assert first["error_code"] == MEMBER_ID_REQUIRED
    assert first["member_id"].startswith("app-")
    assert first["generation_id"] == -1
    second = call(server, JOIN_GROUP, version, join_body("g", first["member_id"]), client_id="app")
    assert second["error_code"] == NONE
    assert second["member_id"] == second["leader"] == first["member_id"]
    assert second["generation_id"] == 1
    assert second["protocol_name"] == "range"
    assert [(m["member_id"], m["metadata"]) for m in second["members"]] == [(first["member_id"], b"sub")]
    if version >= 7:
        assert second["protocol_type"] == "consumer"


@pytest.mark.parametrize("version", range(0, 4))
def test_join_before_v4_joins_at_once(server: FakeServer, version: int) -> None:
    got = call(server, JOIN_GROUP, version, join_body("g"), client_id="old")
    assert got["error_code"] == NONE
    assert got["member_id"].startswith("old-")
    assert got["generation_id"] == 1


def test_join_member_id_required_error_has_null_protocol_name_in_v7(server: FakeServer) -> None:
    got = call(server, JOIN_GROUP, 7, join_body("g"))
    assert got["error_code"] == MEMBER_ID_REQUIRED
    assert got["protocol_name"] is None


@pytest.mark.parametrize("session_ms", [50, 1800001])
def test_join_session_timeout_out_of_bounds(server: FakeServer, session_ms: int) -> None:
    got = call(server, JOIN_GROUP, 5, join_body("g", session_ms=session_ms))
    assert got["error_code"] == INVALID_SESSION_TIMEOUT


def test_join_unknown_member_id(server: FakeServer) -> None:
    stable_single_member(server, "g")
    got = call(server, JOIN_GROUP, 5, join_body("g", "nobody"))
    assert got["error_code"] == UNKNOWN_MEMBER_ID


def test_join_inconsistent_protocol_type(server: FakeServer) -> None:
    stable_single_member(server, "g")
    body = join_body("g")
    body["protocol_type"] = "connect"
    assert call(server, JOIN_GROUP, 3, body)["error_code"] == INCONSISTENT_GROUP_PROTOCOL


def test_static_member_rejoin_gets_assignment_and_fences_old_id(server: FakeServer) -> None:
    first = call(server, JOIN_GROUP, 5, join_body("g", instance_id="i-1"), client_id="s")
    assert first["error_code"] == NONE  # static members skip MEMBER_ID_REQUIRED
    old_id = first["member_id"]
    assert old_id.startswith("i-1-")
    call(server, SYNC_GROUP, 3, {
        "group_id": "g", "generation_id": 1, "member_id": old_id, "group_instance_id": "i-1",
        "assignments": [{"member_id": old_id, "assignment": b"parts"}],
    })
    again = call(server, JOIN_GROUP, 5, join_body("g", instance_id="i-1"), client_id="s")
    assert again["error_code"] == NONE
    assert again["generation_id"] == 1  # no rebalance
    new_id = again["member_id"]
    assert new_id != old_id
    synced = call(server, SYNC_GROUP, 3, {"group_id": "g", "generation_id": 1, "member_id": new_id, "group_instance_id": "i-1"})
    assert (synced["error_code"], synced["assignment"]) == (NONE, b"parts")
    fenced = call(server, HEARTBEAT, 3, {"group_id": "g", "generation_id": 1, "member_id": old_id, "group_instance_id": "i-1"})
    assert fenced["error_code"] == FENCED_INSTANCE_ID


# ---------------------------------------------------------------------------------------------
# SyncGroup, Heartbeat


def test_sync_and_heartbeat_errors(server: FakeServer) -> None:
    joined = stable_single_member(server, "g")
    member, generation = joined["member_id"], joined["generation_id"]
    for version in range(0, 5):
        ok = call(server, HEARTBEAT, version, {"group_id": "g", "generation_id": generation, "member_id": member})
        assert ok["error_code"] == NONE
        bad_gen = call(server, HEARTBEAT, version, {"group_id": "g", "generation_id": generation + 1, "member_id": member})
        assert bad_gen["error_code"] == ILLEGAL_GENERATION
        unknown = call(server, HEARTBEAT, version, {"group_id": "g", "generation_id": generation, "member_id": "x"})
        assert unknown["error_code"] == UNKNOWN_MEMBER_ID
    for version in range(0, 6):
        again = call(server, SYNC_GROUP, version, {"group_id": "g", "generation_id": generation, "member_id": member})
        assert (again["error_code"], again["assignment"]) == (NONE, b"assigned")
        bad = call(server, SYNC_GROUP, version, {"group_id": "g", "generation_id": 99, "member_id": member})
        assert (bad["error_code"], bad["assignment"]) == (ILLEGAL_GENERATION, b"")
    v5 = call(server, SYNC_GROUP, 5, {"group_id": "g", "generation_id": generation, "member_id": member, "protocol_type": "consumer", "protocol_name": "range"})
    assert (v5["error_code"], v5["protocol_type"], v5["protocol_name"]) == (NONE, "consumer", "range")
    wrong = call(server, SYNC_GROUP, 5, {"group_id": "g", "generation_id": generation, "member_id": member, "protocol_type": "consumer", "protocol_name": "roundrobin"})
    assert wrong["error_code"] == INCONSISTENT_GROUP_PROTOCOL
    assert call(server, HEARTBEAT, 4, {"group_id": "nope", "generation_id": 1, "member_id": member})["error_code"] == UNKNOWN_MEMBER_ID


# ---------------------------------------------------------------------------------------------
# The Pending bridge: completion from another call, from the timer thread, after a disconnect.


def test_parked_join_completes_when_the_other_member_rejoins(server: FakeServer) -> None:
    a = stable_single_member(server, "g")

    async def scenario() -> tuple[dict, dict]:
        first = await call_async(server, JOIN_GROUP, 5, join_body("g"))
        b_join = asyncio.ensure_future(call_async(server, JOIN_GROUP, 5, join_body("g", first["member_id"])))
        await asyncio.sleep(0.2)
        assert not b_join.done(), "B must wait for A to rejoin"
        hb = await call_async(server, HEARTBEAT, 3, {"group_id": "g", "generation_id": a["generation_id"], "member_id": a["member_id"]})
        assert hb["error_code"] == REBALANCE_IN_PROGRESS
        a_join = await call_async(server, JOIN_GROUP, 5, join_body("g", a["member_id"]))
        return a_join, await b_join

    a_join, b_join = asyncio.run(scenario())
    assert a_join["error_code"] == b_join["error_code"] == NONE
    assert a_join["generation_id"] == b_join["generation_id"] == a["generation_id"] + 1
    assert a_join["leader"] == a["member_id"]
    assert len(a_join["members"]) == 2 and b_join["members"] == []


def test_join_completed_by_timer_thread(tmp_path: Path) -> None:
    """With an initial rebalance delay, only the broker's timer tick ends the join phase:
    the Pending completes on the timer thread and must reach the event loop."""
    with Broker(tmp_path / "d", {"group.initial.rebalance.delay.ms": 300, "group.min.session.timeout.ms": 100}) as b:
        server = FakeServer(b)

        async def scenario() -> tuple[dict, float]:
            first = await call_async(server, JOIN_GROUP, 6, join_body("g"))
            start = time.monotonic()
            got = await call_async(server, JOIN_GROUP, 6, join_body("g", first["member_id"]))
            return got, time.monotonic() - start

        got, waited = asyncio.run(scenario())
        assert got["error_code"] == NONE and got["generation_id"] == 1
        assert 0.25 <= waited < 5


def test_disconnect_during_parked_join_keeps_group_working(server: FakeServer) -> None:
    """A member whose JoinGroup is cancelled (its connection closed) is dropped by the
    rebalance timeout; the other member gets its generation and the group goes on."""
    a = stable_single_member(server, "g")

    async def scenario() -> dict:
        first = await call_async(server, JOIN_GROUP, 5, join_body("g"))
        body = join_body("g", first["member_id"])
        body["rebalance_timeout_ms"] = 300
        ghost = asyncio.ensure_future(call_async(server, JOIN_GROUP, 5, body))
        await asyncio.sleep(0.1)
        ghost.cancel()
        # A rejoins and completes the phase (both members had rejoined): the cancelled
        # member's answer is dropped without an error anywhere.
        a_join = await call_async(server, JOIN_GROUP, 5, join_body("g", a["member_id"]))
        assert a_join["error_code"] == NONE and len(a_join["members"]) == 2
        synced = await call_async(server, SYNC_GROUP, 3, {
            "group_id": "g", "generation_id": a_join["generation_id"], "member_id": a["member_id"],
            "assignments": [{"member_id": a["member_id"], "assignment": b"all"}],
        })
        assert synced["error_code"] == NONE
        # The ghost never heartbeats: its session (10 s) would drop it; leave for it instead,
        # as a client would, and check the group rebalances to A alone.
        left = await call_async(server, LEAVE_GROUP, 1, {"group_id": "g", "member_id": first["member_id"]})
        assert left["error_code"] == NONE
        return await call_async(server, JOIN_GROUP, 5, join_body("g", a["member_id"]))

    final = asyncio.run(scenario())
    assert final["error_code"] == NONE
    assert [m["member_id"] for m in final["members"]] == [a["member_id"]]


def test_silent_member_loses_its_place_after_session_timeout(server: FakeServer) -> None:
    first = call(server, JOIN_GROUP, 5, join_body("g", session_ms=300))
    joined = call(server, JOIN_GROUP, 5, join_body("g", first["member_id"], session_ms=300))
    assert joined["error_code"] == NONE
    deadline = time.monotonic() + 5
    state = ""
    while time.monotonic() < deadline:
        state = call(server, DESCRIBE_GROUPS, 0, {"groups": ["g"]})["groups"][0]["group_state"]
        if state == "Empty":
            break
        time.sleep(0.05)
    assert state == "Empty"
    hb = call(server, HEARTBEAT, 1, {"group_id": "g", "generation_id": joined["generation_id"], "member_id": joined["member_id"]})
    assert hb["error_code"] == UNKNOWN_MEMBER_ID


# ---------------------------------------------------------------------------------------------
# LeaveGroup


def test_leave_group_v0_and_batch_errors(server: FakeServer) -> None:
    a = stable_single_member(server, "g")
    assert call(server, LEAVE_GROUP, 0, {"group_id": "g", "member_id": "ghost"})["error_code"] == UNKNOWN_MEMBER_ID
    got = call(server, LEAVE_GROUP, 4, {"group_id": "g", "members": [
        {"member_id": "ghost", "group_instance_id": None},
        {"member_id": a["member_id"], "group_instance_id": None},
        {"member_id": "", "group_instance_id": "no-such-instance"},
    ]})
    assert got["error_code"] == NONE
    assert [(m["member_id"], m["error_code"]) for m in got["members"]] == [
        ("ghost", UNKNOWN_MEMBER_ID), (a["member_id"], NONE), ("", UNKNOWN_MEMBER_ID),
    ]
    assert call(server, DESCRIBE_GROUPS, 1, {"groups": ["g"]})["groups"][0]["group_state"] == "Empty"


def test_leave_static_member_by_instance_id(server: FakeServer) -> None:
    joined = call(server, JOIN_GROUP, 5, join_body("g", instance_id="i-9"))
    got = call(server, LEAVE_GROUP, 3, {"group_id": "g", "members": [{"member_id": "wrong", "group_instance_id": "i-9"}]})
    assert got["members"][0]["error_code"] == FENCED_INSTANCE_ID
    got = call(server, LEAVE_GROUP, 3, {"group_id": "g", "members": [{"member_id": joined["member_id"], "group_instance_id": "i-9"}]})
    assert got["members"][0]["error_code"] == NONE


# ---------------------------------------------------------------------------------------------
# OffsetCommit, OffsetFetch


def commit_body(group: str, generation: int, member: str, offsets: dict[tuple[str, int], int], **extra: Any) -> dict:
    topics: dict[str, list[dict]] = {}
    for (topic, partition), offset in offsets.items():
        topics.setdefault(topic, []).append({
            "partition_index": partition, "committed_offset": offset,
            "committed_leader_epoch": 0, "committed_metadata": f"m{offset}",
        })
    return {"group_id": group, "generation_id_or_member_epoch": generation, "member_id": member,
            "topics": [{"name": t, "partitions": p} for t, p in topics.items()], **extra}


def partition_codes(response: dict) -> dict[tuple[str, int], int]:
    return {(t["name"], p["partition_index"]): p["error_code"] for t in response["topics"] for p in t["partitions"]}


def test_offset_commit_generation_and_member_checks(server: FakeServer, broker: Broker) -> None:
    broker.create_topic("t", 2)
    joined = stable_single_member(server, "g")
    member, generation = joined["member_id"], joined["generation_id"]
    for version in range(2, 9):
        ok = call(server, OFFSET_COMMIT, version, commit_body("g", generation, member, {("t", 0): version, ("t", 1): 1}))
        assert set(partition_codes(ok).values()) == {NONE}
        bad_gen = call(server, OFFSET_COMMIT, version, commit_body("g", generation + 5, member, {("t", 0): 1, ("t", 1): 1}))
        assert set(partition_codes(bad_gen).values()) == {ILLEGAL_GENERATION}
        unknown = call(server, OFFSET_COMMIT, version, commit_body("g", generation, "ghost", {("t", 0): 1}))
        assert set(partition_codes(unknown).values()) == {UNKNOWN_MEMBER_ID}
        simple = call(server, OFFSET_COMMIT, version, commit_body("g", -1, "", {("t", 0): 1}))
        assert set(partition_codes(simple).values()) == {UNKNOWN_MEMBER_ID}  # group has members
    missing = call(server, OFFSET_COMMIT, 8, commit_body("g", generation, member, {("t", 0): 3, ("t", 7): 3, ("nope", 0): 3}))
    assert partition_codes(missing) == {("t", 0): NONE, ("t", 7): UNKNOWN_TOPIC_OR_PARTITION, ("nope", 0): UNKNOWN_TOPIC_OR_PARTITION}


def test_offset_commit_simple_on_empty_group_then_fetch_every_form(server: FakeServer, broker: Broker) -> None:
    broker.create_topic("a", 3)
    broker.create_topic("b", 1)
    # v6+ carries the leader epoch (0 here); older versions store -1.
    got = call(server, OFFSET_COMMIT, 6, commit_body("simple", -1, "", {("a", 0): 10, ("a", 2): 12, ("b", 0): 5}))
    assert set(partition_codes(got).values()) == {NONE}

    v1 = call(server, OFFSET_FETCH, 1, {"group_id": "simple", "topics": [{"name": "a", "partition_indexes": [0, 1]}]})
    assert [(p["partition_index"], p["committed_offset"], p["metadata"]) for p in v1["topics"][0]["partitions"]] == [(0, 10, "m10"), (1, -1, "")]
    for version in range(2, 8):
        every = call(server, OFFSET_FETCH, version, {"group_id": "simple", "topics": None, "require_stable": True})
        assert every["error_code"] == NONE
        flat = {(t["name"], p["partition_index"]): (p["committed_offset"], p["metadata"]) for t in every["topics"] for p in t["partitions"]}
        assert flat == {("a", 0): (10, "m10"), ("a", 2): (12, "m12"), ("b", 0): (5, "m5")}
        if version >= 5:
            assert {p["committed_leader_epoch"] for t in every["topics"] for p in t["partitions"]} == {0}
    batched = call(server, OFFSET_FETCH, 8, {"groups": [
        {"group_id": "simple", "topics": [{"name": "b", "partition_indexes": [0]}]},
        {"group_id": "simple", "topics": None},
        {"group_id": "unknown-group", "topics": [{"name": "a", "partition_indexes": [0]}]},
    ], "require_stable": False})
    g0, g1, g2 = batched["groups"]
    assert [(p["partition_index"], p["committed_offset"]) for p in g0["topics"][0]["partitions"]] == [(0, 5)]
    assert sum(len(t["partitions"]) for t in g1["topics"]) == 3
    assert (g2["error_code"], g2["topics"][0]["partitions"][0]["committed_offset"]) == (NONE, -1)


# ---------------------------------------------------------------------------------------------
# DescribeGroups, ListGroups, DeleteGroups


def test_describe_list_and_delete_groups(server: FakeServer, broker: Broker) -> None:
    broker.create_topic("t", 1)
    a = stable_single_member(server, "busy")
    call(server, OFFSET_COMMIT, 2, commit_body("idle", -1, "", {("t", 0): 1}))

    for version in range(0, 6):
        d = call(server, DESCRIBE_GROUPS, version, {"groups": ["busy", "idle", "missing"], "include_authorized_operations": True})
        busy, idle, missing = d["groups"]
        assert (busy["group_state"], busy["protocol_type"], busy["protocol_data"]) == ("Stable", "consumer", "range")
        assert [(m["member_id"], m["client_id"], m["client_host"], m["member_metadata"], m["member_assignment"]) for m in busy["members"]] == [
            (a["member_id"], "c", "/127.0.0.1", b"sub", b"assigned")
        ]
        assert (idle["group_state"], idle["members"]) == ("Empty", [])
        assert (missing["error_code"], missing["group_state"]) == (NONE, "Dead")
        if version >= 3:
            assert busy["authorized_operations"] > 0

    for version in range(0, 5):
        listed = call(server, LIST_GROUPS, version, {})
        assert [(g["group_id"], g["protocol_type"]) for g in listed["groups"]] == [("busy", "consumer"), ("idle", "")]
    only_stable = call(server, LIST_GROUPS, 4, {"states_filter": ["stable"]})
    assert [(g["group_id"], g["group_state"]) for g in only_stable["groups"]] == [("busy", "Stable")]

    for version in range(0, 3):
        got = call(server, DELETE_GROUPS, version, {"groups_names": ["busy", "missing"]})
        assert [(r["group_id"], r["error_code"]) for r in got["results"]] == [("busy", NON_EMPTY_GROUP), ("missing", GROUP_ID_NOT_FOUND)]
    got = call(server, DELETE_GROUPS, 2, {"groups_names": ["idle"]})
    assert got["results"] == [{"group_id": "idle", "error_code": NONE}]
    after = call(server, OFFSET_FETCH, 3, {"group_id": "idle", "topics": None})
    assert after["topics"] == []
    assert [g["group_id"] for g in call(server, LIST_GROUPS, 0, {})["groups"]] == ["busy"]


def test_parked_join_answers_not_coordinator_when_server_stops(server: FakeServer) -> None:
    """Shutdown must not wait a whole rebalance timeout for a parked JoinGroup."""
    a = stable_single_member(server, "g")
    NOT_COORDINATOR = 16

    async def scenario() -> tuple[dict, float]:
        first = await call_async(server, JOIN_GROUP, 5, join_body("g"))
        parked = asyncio.ensure_future(call_async(server, JOIN_GROUP, 5, join_body("g", first["member_id"])))
        await asyncio.sleep(0.3)
        assert not parked.done()
        start = time.monotonic()
        server.stopping = True
        got = await parked
        return got, time.monotonic() - start

    got, waited = asyncio.run(scenario())
    assert got["error_code"] == NOT_COORDINATOR
    assert waited < 1.0
    server.stopping = False
    # The group itself is intact: A can still rejoin and complete the pending rebalance.
    again = call(server, JOIN_GROUP, 5, join_body("g", a["member_id"]))
    assert again["error_code"] == NONE


def test_member_that_does_not_rejoin_is_dropped_after_rebalance_timeout(server: FakeServer) -> None:
    """JoinGroup v1+ carries the rebalance timeout: a member that does not rejoin within it
    is removed and the new generation goes on without it (the timer thread ends the phase)."""
    a_first = call(server, JOIN_GROUP, 5, {**join_body("g"), "rebalance_timeout_ms": 300})
    a = call(server, JOIN_GROUP, 5, {**join_body("g", a_first["member_id"]), "rebalance_timeout_ms": 300})
    call(server, SYNC_GROUP, 3, {"group_id": "g", "generation_id": a["generation_id"], "member_id": a["member_id"]})

    async def scenario() -> tuple[dict, float]:
        first = await call_async(server, JOIN_GROUP, 5, {**join_body("g"), "rebalance_timeout_ms": 300})
        start = time.monotonic()
        got = await call_async(server, JOIN_GROUP, 5, {**join_body("g", first["member_id"]), "rebalance_timeout_ms": 300})
        return got, time.monotonic() - start

    c, waited = asyncio.run(scenario())
    assert c["error_code"] == NONE
    assert c["generation_id"] == a["generation_id"] + 1
    assert c["leader"] == c["member_id"] and [m["member_id"] for m in c["members"]] == [c["member_id"]]
    assert 0.25 <= waited < 5
    hb = call(server, HEARTBEAT, 3, {"group_id": "g", "generation_id": a["generation_id"], "member_id": a["member_id"]})
    assert hb["error_code"] == UNKNOWN_MEMBER_ID
