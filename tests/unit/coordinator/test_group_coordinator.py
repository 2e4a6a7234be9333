"""Group membership end to end: join/sync rounds, sessions, static members, votes, leaves.

Goal: the coordinator behaves as Kafka's classic protocol (kafka-spec.md e.2) over whole
exchanges, not only single cells: three consumers split 12 partitions; a silent member is
removed after its session timeout and the rest rebalance; a static member restarting within
its session keeps its assignment without a new generation; leader choice, protocol vote,
the MEMBER_ID_REQUIRED two-step, the initial rebalance delay, LeaveGroup and the admin views.
Method: drive a coordinator with explicit ``now_ms`` values and deterministic member ids, as
consumers would (members run the real assignors over the real Subscription bytes), and check
answers, states, events and the records the coordinator asks to persist.
"""

from __future__ import annotations

import pytest
from group_driver import SESSION_MS, Driver, make_coordinator

from headwater.coordinator.group import (
    FencedInstanceIdError,
    GroupIdNotFoundError,
    GroupMaxSizeReachedError,
    GroupState,
    InconsistentGroupProtocolError,
    InvalidGroupIdError,
    InvalidSessionTimeoutError,
    JoinGroupResult,
    LeaveMember,
    MemberIdRequiredError,
    NonEmptyGroupError,
    RebalanceInProgressError,
    Subscription,
    TopicPartition,
    UnknownMemberIdError,
)
from headwater.coordinator.group import records as rec
from headwater.coordinator.group.assignors import get_assignor
from headwater.coordinator.group.protocol import (
    decode_assignment,
    decode_subscription,
    encode_assignment,
    encode_subscription,
)

SUB = encode_subscription(Subscription(("orders",)))


def leader_assigns(result: JoinGroupResult, partitions: int = 12) -> dict[str, bytes]:
    """What a consumer leader does: decode subscriptions, run the assignor, encode."""
    subs = {
        m.member_id: decode_subscription(m.metadata, m.group_instance_id) for m in result.members
    }
    assignor = get_assignor(result.protocol_name or "")
    return {
        m: encode_assignment(a) for m, a in assignor.assign({"orders": partitions}, subs).items()
    }


def join_sync_round(d: Driver, joins: dict[str, object]) -> dict[str, list[TopicPartition]]:
    """Finish a round whose JoinGroup pendings are ``joins``; return each member's partitions."""
    results = {m: p.result() for m, p in joins.items()}  # type: ignore[attr-defined]
    leader = next(r for r in results.values() if r.is_leader)
    pendings = {m: d.sync(m, r.generation_id) for m, r in results.items() if not r.is_leader}
    pendings[leader.member_id] = d.sync(
        leader.member_id, leader.generation_id, leader_assigns(leader)
    )
    return {
        m: list(decode_assignment(p.result().assignment).partitions) for m, p in pendings.items()
    }


def test_three_members_split_twelve_partitions(driver: Driver) -> None:
    a = driver.join("a", protocols=[("range", SUB)])
    b = driver.join("b", protocols=[("range", SUB)])
    # b's arrival restarted the phase; a rejoins with its id (it learned of it by heartbeat).
    a_id = a.result().member_id
    with pytest.raises(RebalanceInProgressError):
        driver.heartbeat(a_id, 1)
    a = driver.join(member_id=a_id, protocols=[("range", SUB)])
    b_id = b.result().member_id
    c = driver.join("c", protocols=[("range", SUB)])
    a = driver.join(member_id=a_id, protocols=[("range", SUB)])
    b = driver.join(member_id=b_id, protocols=[("range", SUB)])
    c_id = c.result().member_id
    assigned = join_sync_round(driver, {a_id: a, b_id: b, c_id: c})
    assert a.result().generation_id == 3
    assert assigned == {
        a_id: [TopicPartition("orders", p) for p in range(0, 4)],
        b_id: [TopicPartition("orders", p) for p in range(4, 8)],
        c_id: [TopicPartition("orders", p) for p in range(8, 12)],
    }
    assert driver.coord.group_state("g") is GroupState.STABLE
    for m in (a_id, b_id, c_id):
        driver.heartbeat(m, 3)


def test_silent_member_removed_after_session_timeout_then_rebalance(driver: Driver) -> None:
    results, _ = driver.stable_group(3)
    leader, f1, f2 = list(results)
    gen = results[leader].generation_id
    # leader and f1 heartbeat every 3 s; f2 goes silent.
    for _ in range(3):
        driver.tick(3000)
        driver.heartbeat(leader, gen)
        driver.heartbeat(f1, gen)
    assert driver.now == 1000 + 9000
    assert driver.tick(999) == []
    events = driver.tick(1)  # f2's last contact was its SyncGroup at t=1000: 10 s later
    assert [(e.kind, e.member_id) for e in events[:2]] == [
        ("member_removed", f2),
        ("rebalance_started", None),
    ]
    assert driver.coord.group_state("g") is GroupState.PREPARING_REBALANCE
    with pytest.raises(RebalanceInProgressError):
        driver.heartbeat(leader, gen)
    with pytest.raises(UnknownMemberIdError):
        driver.heartbeat(f2, gen)
    p1 = driver.join(member_id=leader)
    p2 = driver.join(member_id=f1)
    assert p1.result().generation_id == gen + 1
    assert [m.member_id for m in p1.result().members] == [leader, f1]
    assert p2.result().members == ()


def test_static_member_restart_keeps_assignment_without_rebalance(driver: Driver) -> None:
    p0 = driver.join("c0", instance_id="i0")
    first = p0.result()
    p1 = driver.join("c1", instance_id="i1")
    driver.join(member_id=first.member_id, instance_id="i0")
    r1 = p1.result()
    gen = r1.generation_id
    assert r1.member_id == "i1-2"  # static member ids are instance id + "-" + unique
    driver.sync(first.member_id, gen, {first.member_id: b"A", r1.member_id: b"B"}, "i0")
    assert driver.sync(r1.member_id, gen, instance_id="i1").result().assignment == b"B"
    driver.tick()
    driver.tick(4000)
    # i1 restarts (new process, empty member id) within its 10 s session.
    restarted = driver.join("c1", instance_id="i1").result()
    assert restarted.member_id != r1.member_id
    assert restarted.generation_id == gen and restarted.members == ()
    assert restarted.leader_id == first.member_id
    assert driver.coord.group_state("g") is GroupState.STABLE
    sync = driver.sync(restarted.member_id, gen, instance_id="i1").result()
    assert sync.assignment == b"B"
    assert [e.kind for e in driver.tick()] == []  # no rebalance
    # The old incarnation is fenced everywhere.
    with pytest.raises(FencedInstanceIdError):
        driver.heartbeat(r1.member_id, gen, "i1")
    with pytest.raises(FencedInstanceIdError):
        driver.sync(r1.member_id, gen, instance_id="i1").result()
    driver.heartbeat(restarted.member_id, gen, "i1")
    # The replacement was persisted (GroupMetadata with the new member id).
    value = rec.decode_group_metadata_value(driver.coord.take_records()[-1][1] or b"")
    assert [m.member_id for m in value.members] == [first.member_id, restarted.member_id]


def test_static_leader_restart_skips_assignment(driver: Driver) -> None:
    leader = driver.join("c0", instance_id="i0").result()
    driver.sync(leader.member_id, leader.generation_id, {leader.member_id: b"A"})
    r = driver.join("c0", instance_id="i0").result()
    assert r.skip_assignment and r.is_leader and len(r.members) == 1
    old_client = driver.join("c0", instance_id="i0", supports_skip_assignment=False).result()
    # Without SkipAssignment the leader is hidden: it must not run the assignor.
    assert not old_client.skip_assignment and not old_client.is_leader
    assert old_client.leader_id == r.member_id
    assert driver.coord.generation_id("g") == leader.generation_id


def test_static_member_restart_with_new_metadata_keeps_generation(driver: Driver) -> None:
    """Kafka's rule: a restarted static member whose metadata bytes changed (a new process has
    no owned partitions) does not rebalance while the group's protocol still fits."""
    r = driver.join("c0", instance_id="i0").result()
    driver.sync(r.member_id, r.generation_id, {r.member_id: b"A"})
    p = driver.join("c0", instance_id="i0", protocols=[("range", b"other")])
    assert p.done()
    assert p.result().generation_id == r.generation_id
    assert p.result().member_id != r.member_id


def test_static_member_restart_with_unsupported_protocol_is_rejected(driver: Driver) -> None:
    r = driver.join("c0", instance_id="i0").result()
    driver.sync(r.member_id, r.generation_id, {r.member_id: b"A"})
    with pytest.raises(InconsistentGroupProtocolError):
        driver.join("c0", instance_id="i0", protocols=[("roundrobin", b"x")]).result()
    assert driver.coord.generation_id("g") == r.generation_id


def test_static_member_expires_after_session_timeout(driver: Driver) -> None:
    r = driver.join("c0", instance_id="i0").result()
    driver.sync(r.member_id, r.generation_id, {r.member_id: b"A"})
    driver.tick(SESSION_MS)
    assert driver.coord.group_state("g") is GroupState.EMPTY
    with pytest.raises(UnknownMemberIdError):
        driver.heartbeat(r.member_id, r.generation_id, "i0")


def test_leader_is_first_member_and_moves_when_it_leaves(driver: Driver) -> None:
    results, _ = driver.stable_group(3)
    leader, f1, f2 = list(results)
    assert results[leader].is_leader and leader.startswith("c0-")
    assert driver.coord.leave_group("g", [LeaveMember(leader)], now_ms=driver.now) == [None]
    p2 = driver.join(member_id=f2)
    p1 = driver.join(member_id=f1)
    assert p1.result().leader_id == f1 == p2.result().leader_id
    assert p1.result().is_leader and len(p1.result().members) == 2


def test_protocol_vote_picks_most_voted_common_protocol(driver: Driver) -> None:
    p0 = driver.join("c0", protocols=[("range", b"0"), ("roundrobin", b"0"), ("sticky", b"0")])
    m0 = p0.result().member_id
    p1 = driver.join("c1", protocols=[("roundrobin", b"1"), ("range", b"1")])
    p2 = driver.join("c2", protocols=[("roundrobin", b"2"), ("range", b"2")])
    driver.join(member_id=m0, protocols=[("range", b"0"), ("roundrobin", b"0")])
    r = p1.result()
    assert r.protocol_name == "roundrobin" and p2.result().protocol_name == "roundrobin"
    assert not p1.result().is_leader and not p2.result().is_leader  # c0 stayed leader
    # The leader sees each member's metadata for the chosen protocol.
    rejoined = driver.join(member_id=m0, protocols=[("range", b"0"), ("roundrobin", b"0")])
    assert [m.metadata for m in rejoined.result().members] == [b"0", b"1", b"2"]


def test_protocol_vote_tie_goes_to_leader_preference(driver: Driver) -> None:
    p0 = driver.join("c0", protocols=[("range", b"0"), ("roundrobin", b"0")])
    m0 = p0.result().member_id
    p1 = driver.join("c1", protocols=[("roundrobin", b"1"), ("range", b"1")])
    driver.join(member_id=m0, protocols=[("range", b"0"), ("roundrobin", b"0")])
    assert p1.result().protocol_name == "range"


def test_inconsistent_protocols_rejected(driver: Driver) -> None:
    driver.join("c0", protocols=[("range", b"")]).result()
    with pytest.raises(InconsistentGroupProtocolError):
        driver.join("c1", protocols=[("roundrobin", b"")]).result()
    with pytest.raises(InconsistentGroupProtocolError):
        driver.join("c1", protocol_type="connect").result()
    with pytest.raises(InconsistentGroupProtocolError):
        Driver(make_coordinator(), group="h").join("c", protocols=[]).result()


def test_member_id_required_two_step(driver: Driver) -> None:
    first = driver.join("c0", require_known_member_id=True)
    with pytest.raises(MemberIdRequiredError) as info:
        first.result()
    member_id = info.value.member_id
    assert member_id == "c0-1" and info.value.code == 79
    r = driver.join(member_id=member_id, require_known_member_id=True).result()
    assert r.member_id == member_id and r.generation_id == 1


def test_pending_member_id_expires_and_unblocks_the_phase(driver: Driver) -> None:
    results, _ = driver.stable_group(1)
    (m0,) = results
    with pytest.raises(MemberIdRequiredError):
        driver.join("late", require_known_member_id=True).result()
    # A rebalance started by another join now waits for the pending member too.
    p_new = driver.join("c9")
    p0 = driver.join(member_id=m0)
    assert not p0.done() and not p_new.done()
    events = driver.tick(SESSION_MS)
    assert ("pending_member_expired", "late-2") in [(e.kind, e.member_id) for e in events]
    assert p0.done() and p_new.done()


def test_initial_rebalance_delay_waits_for_more_members() -> None:
    d = Driver(make_coordinator(group_initial_rebalance_delay_ms=3000))
    a = d.join("a", rebalance_ms=10_000)
    d.tick(2000)
    b = d.join("b", rebalance_ms=10_000)
    d.tick(1000)  # t+3000: a new member arrived, so the delay is extended by 3000
    assert not a.done() and not b.done()
    assert d.coord.next_deadline_ms() == d.now + 3000
    d.tick(3000)
    assert a.result().generation_id == 1 and len(a.result().members) == 2


def test_initial_rebalance_delay_bounded_by_rebalance_timeout() -> None:
    d = Driver(make_coordinator(group_initial_rebalance_delay_ms=3000))
    a = d.join("a", rebalance_ms=4000)
    for i in range(5):
        d.tick(1000)
        d.join(f"x{i}", rebalance_ms=4000)
    assert a.done()  # 3000 + at most 1000 remaining, then forced


def test_bad_requests_rejected(driver: Driver) -> None:
    with pytest.raises(InvalidSessionTimeoutError):
        driver.join(session_ms=5999).result()
    with pytest.raises(InvalidSessionTimeoutError):
        driver.join(session_ms=1_800_001).result()
    with pytest.raises(InvalidGroupIdError):
        Driver(driver.coord, group="").join().result()
    with pytest.raises(UnknownMemberIdError):
        driver.join(member_id="nobody").result()
    assert driver.coord.group_ids() == []  # failed joins leave no group behind
    small = Driver(make_coordinator(group_max_size=1))
    small.join("a").result()
    with pytest.raises(GroupMaxSizeReachedError):
        small.join("b").result()


def test_newer_join_supersedes_parked_join(driver: Driver) -> None:
    results, _ = driver.stable_group(2)
    leader, follower = list(results)
    p1 = driver.join(member_id=leader)
    p2 = driver.join(member_id=leader)
    with pytest.raises(RebalanceInProgressError):
        p1.result()
    driver.join(member_id=follower)
    assert p2.result().generation_id == 3


def test_rebalance_fails_parked_syncs(driver: Driver) -> None:
    results, _ = driver.stable_group(1)
    (m0,) = results
    p = driver.join("c1")
    r0 = driver.join(member_id=m0).result()
    follower_sync = driver.sync(p.result().member_id, r0.generation_id)
    assert not follower_sync.done()
    driver.join("c2")
    with pytest.raises(RebalanceInProgressError):
        follower_sync.result()


def test_leave_group_variants(driver: Driver) -> None:
    s0 = driver.join("c0", instance_id="i0").result()
    p1 = driver.join("c1")
    driver.join(member_id=s0.member_id, instance_id="i0")
    m1 = p1.result().member_id
    errors = driver.coord.leave_group(
        "g",
        [
            LeaveMember("nobody"),
            LeaveMember("wrong-id", "i0"),
            LeaveMember("", "unknown-instance"),
            LeaveMember(m1),
        ],
        now_ms=driver.now,
    )
    assert [type(e) for e in errors] == [
        UnknownMemberIdError,
        FencedInstanceIdError,
        UnknownMemberIdError,
        type(None),
    ]
    # The rebalance after m1 left completes once i0 rejoins.
    r = driver.join(member_id=s0.member_id, instance_id="i0").result()
    assert [m.member_id for m in r.members] == [s0.member_id]
    assert driver.coord.leave_group("g", [LeaveMember("", "i0")], now_ms=driver.now) == [None]
    assert driver.coord.group_state("g") is GroupState.EMPTY
    assert driver.coord.generation_id("g") == r.generation_id + 1
    missing = driver.coord.leave_group("nope", [LeaveMember("x")], now_ms=driver.now)
    assert isinstance(missing[0], UnknownMemberIdError)


def test_describe_list_delete(driver: Driver) -> None:
    results, assignments = driver.stable_group(2)
    (described,) = driver.coord.describe_groups(["g"])
    assert described.state == "Stable" and described.protocol_data == "range"
    assert {m.member_id: m.member_assignment for m in described.members} == assignments
    assert described.members[0].member_metadata == b"sub"
    (unknown,) = driver.coord.describe_groups(["nope"])
    assert unknown.state == "Dead" and unknown.members == ()
    driver.join("c9")
    (preparing,) = driver.coord.describe_groups(["g"])
    assert preparing.protocol_data == "" and preparing.members[0].member_metadata == b""
    other = Driver(driver.coord, group="a-simple")
    other.coord.commit_offsets("a-simple", {}, now_ms=0)
    listed = driver.coord.list_groups()
    assert [(x.group_id, x.state, x.protocol_type) for x in listed] == [
        ("a-simple", "Empty", ""),
        ("g", "PreparingRebalance", "consumer"),
    ]
    assert [x.group_id for x in driver.coord.list_groups(states_filter=["empty"])] == ["a-simple"]
    assert driver.coord.list_groups(types_filter=["consumer"]) == []
    deleted = driver.coord.delete_groups(["g", "a-simple", "nope"])
    assert isinstance(deleted["g"], NonEmptyGroupError)
    assert deleted["a-simple"] is None
    assert isinstance(deleted["nope"], GroupIdNotFoundError)
    assert driver.coord.take_records()[-1] == (rec.encode_group_metadata_key("a-simple"), None)
    assert driver.coord.group_ids() == ["g"]


def test_callbacks_may_reenter_the_coordinator(driver: Driver) -> None:
    """An embedded consumer syncs from inside its join callback."""
    syncs = []

    def on_join(p):  # type: ignore[no-untyped-def]
        r = p.result()
        assignments = {m.member_id: b"x" for m in r.members}
        syncs.append(driver.sync(r.member_id, r.generation_id, assignments))

    results, _ = driver.stable_group(1)
    (m0,) = results
    p_new = driver.join("c1")
    p_new.add_done_callback(on_join)
    p0 = driver.join(member_id=m0)
    p0.add_done_callback(on_join)
    assert len(syncs) == 2 and all(s.done() for s in syncs)
    assert driver.coord.group_state("g") is GroupState.STABLE


def test_next_deadline_tracks_sessions_and_phases(driver: Driver) -> None:
    assert driver.coord.next_deadline_ms() is None
    results, _ = driver.stable_group(2)
    assert driver.coord.next_deadline_ms() == driver.now + SESSION_MS
    driver.join("c9")
    # Preparing: the rebalance deadline (30 s) is later than the unparked sessions (10 s).
    assert driver.coord.next_deadline_ms() == driver.now + SESSION_MS
