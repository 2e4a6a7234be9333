"""The classic group state table (kafka-spec.md e.2), cell by cell.

Goal: each of JoinGroup, SyncGroup, Heartbeat and OffsetCommit gets the answer the table
gives in each of Empty, PreparingRebalance, CompletingRebalance, Stable and Dead.
Method: fixtures bring one group into each state through the public API (Dead, which only
exists inside the call that deletes a group, is forced on the group object) and then send
one request; the test checks the answer and the state afterwards.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from group_driver import Driver, make_coordinator

from headwater.coordinator.group import (
    CommitOffset,
    CoordinatorNotAvailableError,
    GroupState,
    IllegalGenerationError,
    LeaveMember,
    RebalanceInProgressError,
    TopicPartition,
    UnknownMemberIdError,
)

TP = TopicPartition("t", 0)


@dataclass
class Setup:
    d: Driver
    leader: str
    follower: str
    generation: int

    @property
    def state(self) -> GroupState:
        return self.d.coord.group_state(self.d.group)


def stable(d: Driver) -> Setup:
    results, _ = d.stable_group(2)
    leader = next(m for m, r in results.items() if r.is_leader)
    follower = next(m for m in results if m != leader)
    return Setup(d, leader, follower, results[leader].generation_id)


def completing(d: Driver) -> Setup:
    first = d.join("c0").result()
    second = d.join("c1")
    first = d.join(member_id=first.member_id).result()
    assert second.done()
    s = Setup(d, first.member_id, second.result().member_id, first.generation_id)
    assert s.state is GroupState.COMPLETING_REBALANCE
    return s


def preparing(d: Driver) -> Setup:
    s = stable(d)
    pending = d.join("newcomer")
    assert not pending.done()
    assert s.state is GroupState.PREPARING_REBALANCE
    return s


def empty(d: Driver) -> Setup:
    s = stable(d)
    d.coord.leave_group(d.group, [LeaveMember(s.leader), LeaveMember(s.follower)], now_ms=d.now)
    assert s.state is GroupState.EMPTY
    return s


def dead(d: Driver) -> Setup:
    s = stable(d)
    d.coord._groups[d.group].state = GroupState.DEAD  # only reachable inside DeleteGroups
    return s


# JoinGroup.


def test_join_empty_new_member_starts_rebalance() -> None:
    d = Driver(make_coordinator(group_initial_rebalance_delay_ms=3000))
    p = d.join("c0")
    assert not p.done()
    assert d.coord.group_state("g") is GroupState.PREPARING_REBALANCE
    d.tick(3000)
    assert p.result().generation_id == 1
    assert d.coord.group_state("g") is GroupState.COMPLETING_REBALANCE


def test_join_empty_known_member_is_unknown(driver: Driver) -> None:
    s = empty(driver)
    with pytest.raises(UnknownMemberIdError):
        driver.join(member_id=s.leader).result()
    assert s.state is GroupState.EMPTY


def test_join_preparing_parks_until_all_members_rejoin(driver: Driver) -> None:
    s = preparing(driver)
    p_leader = driver.join(member_id=s.leader)
    assert not p_leader.done()
    p_follower = driver.join(member_id=s.follower)
    assert p_leader.done() and p_follower.done()
    assert p_leader.result().generation_id == s.generation + 1
    assert s.state is GroupState.COMPLETING_REBALANCE


def test_join_preparing_ends_on_rebalance_timeout(driver: Driver) -> None:
    s = preparing(driver)
    p_leader = driver.join(member_id=s.leader)
    # The follower keeps heartbeating (so its session lives) but never rejoins.
    for _ in range(6):
        driver.tick(4_999)
        with pytest.raises(RebalanceInProgressError):
            driver.heartbeat(s.follower, s.generation)
    assert driver.now == 1_000 + 29_994
    driver.tick(5)
    assert not p_leader.done()
    events = driver.tick(1)
    assert p_leader.done()
    result = p_leader.result()
    assert [m.member_id for m in result.members] == [s.leader, "newcomer-3"]
    assert any(e.kind == "member_removed" and e.member_id == s.follower for e in events)


def test_join_completing_same_metadata_returns_current_generation(driver: Driver) -> None:
    s = completing(driver)
    again = driver.join(member_id=s.leader).result()
    assert again.generation_id == s.generation and again.is_leader
    assert len(again.members) == 2
    follower = driver.join(member_id=s.follower).result()
    assert follower.members == () and follower.generation_id == s.generation
    assert s.state is GroupState.COMPLETING_REBALANCE


def test_join_completing_changed_metadata_rebalances(driver: Driver) -> None:
    s = completing(driver)
    p = driver.join(member_id=s.follower, protocols=[("range", b"other")])
    assert not p.done()
    assert s.state is GroupState.PREPARING_REBALANCE


def test_join_stable_follower_same_metadata_gets_current_generation(driver: Driver) -> None:
    s = stable(driver)
    r = driver.join(member_id=s.follower).result()
    assert r.generation_id == s.generation and r.leader_id == s.leader and r.members == ()
    assert s.state is GroupState.STABLE


@pytest.mark.parametrize("who", ["leader", "changed"])
def test_join_stable_leader_or_changed_metadata_rebalances(driver: Driver, who: str) -> None:
    s = stable(driver)
    if who == "leader":
        p = driver.join(member_id=s.leader)
    else:
        p = driver.join(member_id=s.follower, protocols=[("range", b"new-topics")])
    assert not p.done()
    assert s.state is GroupState.PREPARING_REBALANCE


def test_join_dead(driver: Driver) -> None:
    s = dead(driver)
    with pytest.raises(CoordinatorNotAvailableError):
        driver.join("x").result()
    with pytest.raises(UnknownMemberIdError):
        driver.join(member_id=s.leader).result()


# SyncGroup.


def test_sync_empty_is_unknown_member(driver: Driver) -> None:
    s = empty(driver)
    with pytest.raises(UnknownMemberIdError):
        driver.sync(s.leader, s.generation).result()


def test_sync_preparing_is_rebalance_in_progress(driver: Driver) -> None:
    s = preparing(driver)
    with pytest.raises(RebalanceInProgressError):
        driver.sync(s.follower, s.generation).result()


def test_sync_completing_follower_waits_for_leader(driver: Driver) -> None:
    s = completing(driver)
    driver.coord.take_records()
    p_follower = driver.sync(s.follower, s.generation)
    assert not p_follower.done()
    p_leader = driver.sync(s.leader, s.generation, {s.leader: b"A", s.follower: b"B"})
    # The leader's assignments are persisted (one GroupMetadata record) before anyone hears.
    (record,) = driver.coord.take_records()
    assert record[0] == b"\x00\x02\x00\x01g" and record[1] is not None
    assert p_leader.result().assignment == b"A"
    assert p_follower.result().assignment == b"B"
    assert s.state is GroupState.STABLE


def test_sync_completing_member_missing_from_leader_gets_empty(driver: Driver) -> None:
    s = completing(driver)
    driver.sync(s.leader, s.generation, {s.leader: b"A"})
    assert driver.sync(s.follower, s.generation).result().assignment == b""


def test_sync_stable_returns_stored_assignment(driver: Driver) -> None:
    s = stable(driver)
    assert driver.sync(s.follower, s.generation).result().assignment == s.follower.encode()


def test_sync_dead_is_unknown_member(driver: Driver) -> None:
    s = dead(driver)
    with pytest.raises(UnknownMemberIdError):
        driver.sync(s.leader, s.generation).result()


# Heartbeat.


def test_heartbeat_empty_is_unknown_member(driver: Driver) -> None:
    s = empty(driver)
    with pytest.raises(UnknownMemberIdError):
        driver.heartbeat(s.leader, s.generation)


def test_heartbeat_preparing_is_rebalance_in_progress(driver: Driver) -> None:
    s = preparing(driver)
    with pytest.raises(RebalanceInProgressError):
        driver.heartbeat(s.follower, s.generation)


@pytest.mark.parametrize("make", [completing, stable])
def test_heartbeat_completing_and_stable_ok(driver: Driver, make) -> None:  # type: ignore[no-untyped-def]
    s = make(driver)
    driver.heartbeat(s.follower, s.generation)
    with pytest.raises(IllegalGenerationError):
        driver.heartbeat(s.follower, s.generation - 1)


def test_heartbeat_dead_is_coordinator_not_available(driver: Driver) -> None:
    s = dead(driver)
    with pytest.raises(CoordinatorNotAvailableError):
        driver.heartbeat(s.leader, s.generation)


# OffsetCommit.


def commit(d: Driver, generation: int, member: str = "") -> dict:
    return d.coord.commit_offsets(
        d.group,
        {TP: CommitOffset(5)},
        generation_id=generation,
        member_id=member,
        now_ms=d.now,
    )


def test_commit_empty_only_generation_minus_one(driver: Driver) -> None:
    s = empty(driver)
    assert commit(driver, -1) == {TP: None}
    with pytest.raises(UnknownMemberIdError):
        commit(driver, s.generation, s.leader)


def test_commit_preparing_from_previous_generation(driver: Driver) -> None:
    s = preparing(driver)
    assert commit(driver, s.generation, s.follower) == {TP: None}
    with pytest.raises(UnknownMemberIdError):
        commit(driver, -1)


def test_commit_completing_is_rebalance_in_progress(driver: Driver) -> None:
    s = completing(driver)
    with pytest.raises(RebalanceInProgressError):
        commit(driver, s.generation, s.follower)


def test_commit_stable_current_generation(driver: Driver) -> None:
    s = stable(driver)
    assert commit(driver, s.generation, s.follower) == {TP: None}
    with pytest.raises(IllegalGenerationError):
        commit(driver, s.generation - 1, s.follower)
    with pytest.raises(UnknownMemberIdError):
        commit(driver, -1)


def test_commit_dead_is_coordinator_not_available(driver: Driver) -> None:
    s = dead(driver)
    with pytest.raises(CoordinatorNotAvailableError):
        commit(driver, s.generation, s.leader)
