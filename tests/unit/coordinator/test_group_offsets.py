"""Committed offsets: OffsetCommit validation, OffsetFetch, records, replay, expiry, lag.

Goal: commits are validated as Kafka's ClassicGroup.validateOffsetCommit (kafka-spec.md e.4)
with per-partition errors; every accepted commit and every group change is emitted as a
Kafka-format __consumer_offsets record; replaying the emitted records into a fresh
coordinator restores committed offsets and group metadata (a rebuilt Stable group keeps
its generation, leader and assignments); offsets expire per KIP-211.
Method: drive a coordinator, collect ``take_records()`` as a compacted log would (the last
value per key wins, tombstones remove), ``load`` them into a new coordinator and compare.
"""

from __future__ import annotations

import pytest
from group_driver import SESSION_MS, Driver, make_coordinator

from headwater.coordinator.group import (
    CommitOffset,
    FencedInstanceIdError,
    GroupCoordinator,
    GroupCoordinatorConfig,
    GroupState,
    IllegalGenerationError,
    LeaveMember,
    OffsetAndMetadata,
    OffsetMetadataTooLargeError,
    TopicPartition,
    UnknownTopicOrPartitionError,
)
from headwater.coordinator.group import records as rec
from headwater.coordinator.group.errors import MalformedPayloadError
from headwater.coordinator.group.protocol import Assignment, encode_assignment
from headwater.errors import ConfigError

T0 = TopicPartition("t", 0)
T1 = TopicPartition("t", 1)


def compact(records: list[tuple[bytes, bytes | None]]) -> list[tuple[bytes, bytes | None]]:
    """What a compacted partition keeps: the last record per key, tombstones dropped."""
    last: dict[bytes, bytes | None] = {}
    for key, value in records:
        last.pop(key, None)
        last[key] = value
    return [(k, v) for k, v in last.items() if v is not None]


def test_commit_and_fetch_round_trip(coord: GroupCoordinator) -> None:
    errors = coord.commit_offsets(
        "g", {T0: CommitOffset(10, 3, "m"), T1: CommitOffset(20, metadata=None)}, now_ms=500
    )
    assert errors == {T0: None, T1: None}
    assert coord.fetch_offsets("g", [T0, T1, TopicPartition("t", 2)]) == {
        T0: OffsetAndMetadata(10, 3, "m", 500),
        T1: OffsetAndMetadata(20, -1, "", 500),
        TopicPartition("t", 2): OffsetAndMetadata(-1),
    }
    assert list(coord.fetch_offsets("g")) == [T0, T1]
    assert coord.fetch_offsets("nope", [T0]) == {T0: OffsetAndMetadata(-1)}
    key, value = coord.take_records()[0]
    assert key == b"\x00\x01\x00\x01g\x00\x01t\x00\x00\x00\x00"
    assert value == (
        b"\x00\x03"
        + (10).to_bytes(8, "big")
        + (3).to_bytes(4, "big")
        + b"\x00\x01m"
        + (500).to_bytes(8, "big")
    )


def test_commit_per_partition_errors() -> None:
    coord = GroupCoordinator(
        GroupCoordinatorConfig(offset_metadata_max_bytes=4),
        partition_count={"t": 2}.get,
    )
    errors = coord.commit_offsets(
        "g",
        {
            T0: CommitOffset(1, metadata="1234"),
            T1: CommitOffset(1, metadata="12345"),
            TopicPartition("t", 2): CommitOffset(1),
            TopicPartition("missing", 0): CommitOffset(1),
        },
        now_ms=0,
    )
    assert errors[T0] is None
    assert isinstance(errors[T1], OffsetMetadataTooLargeError) and errors[T1].code == 12
    assert isinstance(errors[TopicPartition("t", 2)], UnknownTopicOrPartitionError)
    assert errors[TopicPartition("missing", 0)].code == 3  # type: ignore[union-attr]
    assert len(coord.take_records()) == 1  # only the accepted partition is written
    assert list(coord.fetch_offsets("g")) == [T0]


def test_commit_to_unknown_group_with_generation_is_illegal(coord: GroupCoordinator) -> None:
    with pytest.raises(IllegalGenerationError):
        coord.commit_offsets("g", {T0: CommitOffset(1)}, generation_id=1, member_id="m", now_ms=0)
    assert coord.group_ids() == []


def test_static_member_commit_validation(driver: Driver) -> None:
    r = driver.join("c", instance_id="i").result()
    driver.sync(r.member_id, r.generation_id, {r.member_id: b""})
    commit = {T0: CommitOffset(7)}
    ok = driver.coord.commit_offsets(
        "g",
        commit,
        generation_id=r.generation_id,
        member_id=r.member_id,
        group_instance_id="i",
        now_ms=driver.now,
    )
    assert ok == {T0: None}
    with pytest.raises(FencedInstanceIdError):
        driver.coord.commit_offsets(
            "g",
            commit,
            generation_id=r.generation_id,
            member_id="old-id",
            group_instance_id="i",
            now_ms=driver.now,
        )


def test_commit_refreshes_the_session(driver: Driver) -> None:
    results, _ = driver.stable_group(1)
    (m,) = results
    gen = results[m].generation_id
    driver.tick(SESSION_MS - 1)
    driver.coord.commit_offsets(
        "g", {T0: CommitOffset(1)}, generation_id=gen, member_id=m, now_ms=driver.now
    )
    driver.tick(SESSION_MS - 1)
    assert driver.coord.group_state("g") is GroupState.STABLE


def test_replay_restores_offsets_and_group_metadata(driver: Driver) -> None:
    a = encode_assignment(Assignment((T0,)))
    b = encode_assignment(Assignment((T1,)))
    results, _ = driver.stable_group(2, assign=lambda ms: dict(zip(ms, [a, b], strict=True)))
    leader, follower = list(results)
    gen = results[leader].generation_id
    driver.coord.commit_offsets(
        "g", {T0: CommitOffset(5)}, generation_id=gen, member_id=leader, now_ms=driver.now
    )
    driver.coord.commit_offsets(
        "g", {T0: CommitOffset(9, 2, "x")}, generation_id=gen, member_id=leader, now_ms=driver.now
    )
    driver.coord.commit_offsets("simple", {T1: CommitOffset(3)}, now_ms=driver.now)
    driver.coord.commit_offsets("gone", {T1: CommitOffset(3)}, now_ms=driver.now)
    driver.coord.delete_groups(["gone"])
    log = driver.coord.take_records()

    for records in (log, compact(log)):
        fresh = make_coordinator()
        assert fresh.load(records, now_ms=50_000) == 2
        assert fresh.group_ids() == ["g", "simple"]
        assert fresh.fetch_offsets("g") == {T0: OffsetAndMetadata(9, 2, "x", driver.now)}
        assert fresh.fetch_offsets("simple") == {T1: OffsetAndMetadata(3, -1, "", driver.now)}
        assert fresh.group_state("g") is GroupState.STABLE
        assert fresh.group_state("simple") is GroupState.EMPTY
        assert fresh.generation_id("g") == gen
        (described,) = fresh.describe_groups(["g"])
        assert described.protocol_data == "range"
        assert {m.member_id: m.member_assignment for m in described.members} == {
            leader: a,
            follower: b,
        }
        # Members carry on: heartbeat and sync with the generation they had before.
        fresh.heartbeat("g", member_id=follower, generation_id=gen, now_ms=50_000)
        sync = fresh.sync_group("g", member_id=follower, generation_id=gen, now_ms=50_000)
        assert sync.result().assignment == b
        # ...and sessions restart at load time: silent members expire a session later.
        fresh.tick(50_000 + SESSION_MS - 1)
        assert fresh.group_state("g") is GroupState.STABLE
        events = fresh.tick(50_000 + SESSION_MS)
        assert {e.member_id for e in events if e.kind == "member_removed"} == {leader, follower}
        assert fresh.group_state("g") is GroupState.EMPTY


def test_replay_of_an_emptied_group(driver: Driver) -> None:
    results, _ = driver.stable_group(1)
    (m,) = results
    driver.coord.leave_group("g", [LeaveMember(m)], now_ms=driver.now)
    fresh = make_coordinator()
    assert fresh.load(driver.coord.take_records(), now_ms=0) == 1
    assert fresh.group_state("g") is GroupState.EMPTY
    assert fresh.generation_id("g") == results[m].generation_id + 1
    # A member joining the reloaded group continues the generation count.
    assert Driver(fresh).join().result().generation_id == results[m].generation_id + 2


def test_load_skips_foreign_record_types_and_rejects_garbage(coord: GroupCoordinator) -> None:
    foreign = (b"\x00\x03\x00\x01g", b"\x00\x00whatever")  # KIP-848 ConsumerGroupMetadata
    assert coord.load([foreign], now_ms=0) == 0
    with pytest.raises(MalformedPayloadError):
        coord.load([(rec.encode_offset_commit_key("g", "t", 0), b"\x00\x03\x00")], now_ms=0)


def test_expire_offsets_of_empty_consumer_group(driver: Driver) -> None:
    retention = 10080 * 60_000
    results, _ = driver.stable_group(1)
    (m,) = results
    gen = results[m].generation_id
    driver.coord.commit_offsets(
        "g", {T0: CommitOffset(1)}, generation_id=gen, member_id=m, now_ms=driver.now
    )
    driver.coord.leave_group("g", [LeaveMember(m)], now_ms=driver.now + 100)
    empty_since = driver.now + 100
    driver.coord.take_records()
    assert driver.coord.expire_offsets(empty_since + retention - 1) == 0
    assert driver.coord.expire_offsets(empty_since + retention) == 1
    assert driver.coord.take_records() == [
        (rec.encode_offset_commit_key("g", "t", 0), None),
        (rec.encode_group_metadata_key("g"), None),
    ]
    assert driver.coord.group_ids() == []


def test_expire_offsets_standalone_and_explicit(coord: GroupCoordinator) -> None:
    retention = 10080 * 60_000
    coord.commit_offsets("s", {T0: CommitOffset(1)}, now_ms=0)
    coord.commit_offsets("s", {T1: CommitOffset(1)}, now_ms=1000)
    coord.commit_offsets("x", {T0: CommitOffset(1)}, retention_time_ms=60_000, now_ms=0)
    assert coord.fetch_offsets("x")[T0].expire_timestamp_ms == 60_000
    assert coord.expire_offsets(60_000) == 1  # x's explicit retention
    assert coord.expire_offsets(retention) == 1  # s: t-0 committed at 0
    assert list(coord.fetch_offsets("s")) == [T1]
    assert coord.group_ids() == ["s"]


def test_offsets_of_active_group_do_not_expire(driver: Driver) -> None:
    results, _ = driver.stable_group(1)
    (m,) = results
    gen = results[m].generation_id
    driver.coord.commit_offsets(
        "g", {T0: CommitOffset(1)}, generation_id=gen, member_id=m, now_ms=driver.now
    )
    assert driver.coord.expire_offsets(10**13) == 0


def test_group_lag(driver: Driver) -> None:
    a = encode_assignment(Assignment((T0, T1)))
    results, _ = driver.stable_group(1, assign=lambda ms: {ms[0]: a})
    (m,) = results
    gen = results[m].generation_id
    driver.coord.commit_offsets(
        "g",
        {T0: CommitOffset(40), TopicPartition("old", 0): CommitOffset(5)},
        generation_id=gen,
        member_id=m,
        now_ms=driver.now,
    )
    ends = {T0: 100, T1: 7}
    lag = driver.coord.group_lag("g", ends.get)
    assert [
        (tp, x.member_id, x.committed_offset, x.log_end_offset, x.lag) for tp, x in lag.items()
    ] == [
        (TopicPartition("old", 0), None, 5, None, None),
        (T0, m, 40, 100, 60),
        (T1, m, -1, 7, None),
    ]


def test_config_from_kafka_names() -> None:
    cfg = GroupCoordinatorConfig.from_mapping(
        {"group.initial.rebalance.delay.ms": 0}, group_max_size=5
    )
    assert cfg.group_initial_rebalance_delay_ms == 0 and cfg.group_max_size == 5
    assert cfg.offsets_retention_ms == 10080 * 60_000
    with pytest.raises(ConfigError):
        GroupCoordinatorConfig.from_mapping({"group.bogus": 1})
    with pytest.raises(ConfigError):
        GroupCoordinatorConfig.from_mapping({"group.max.size": "many"})
