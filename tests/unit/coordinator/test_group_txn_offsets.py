"""Transactional offset commits (TxnOffsetCommit) in the group coordinator.

Goal: offsets committed in a transaction are held as pending for the producer id, invisible to
OffsetFetch (UNSTABLE_OFFSET_COMMIT with RequireStable) until the producer's COMMIT marker,
dropped on ABORT, ordered against ordinary commits by their position in the log (a later
OffsetCommit wins over an earlier transactional one, Kafka's record-offset rule); validation is
OffsetCommit's with Kafka's transactional relaxations; the records are Kafka's offset-commit
records, queued as a transactional batch of the producer; expiry and DeleteGroups treat pending
offsets as Kafka does (kafka-spec.md d.3, e.4).
Method: drive a coordinator directly; record bytes are checked against layouts written out by
hand from the spec (no Kafka client library involved).
"""

from __future__ import annotations

import pytest
from group_driver import Driver, make_coordinator

from headwater.coordinator.group import (
    CommitOffset,
    FencedInstanceIdError,
    GroupCoordinator,
    GroupCoordinatorConfig,
    GroupState,
    IllegalGenerationError,
    InvalidGroupIdError,
    LeaveMember,
    OffsetAndMetadata,
    OffsetMetadataTooLargeError,
    OffsetsBatch,
    RebalanceInProgressError,
    TopicPartition,
    UnknownMemberIdError,
    UnknownTopicOrPartitionError,
    UnstableOffsetCommitError,
    offsets_partition_for,
)
from headwater.coordinator.group import records as rec
from headwater.errors import InvalidRequestError

T0 = TopicPartition("t", 0)
T1 = TopicPartition("t", 1)
PID = 1000
EPOCH = 3


def txn_commit(
    coord: GroupCoordinator,
    offsets: dict[TopicPartition, int],
    *,
    group: str = "g",
    pid: int = PID,
    epoch: int = EPOCH,
    now_ms: int = 500,
    **kwargs: object,
) -> dict:
    return coord.txn_offset_commit(
        group,
        {tp: CommitOffset(o) for tp, o in offsets.items()},
        producer_id=pid,
        producer_epoch=epoch,
        now_ms=now_ms,
        **kwargs,  # type: ignore[arg-type]
    )


def committed(coord: GroupCoordinator, group: str = "g") -> dict[TopicPartition, int]:
    return {tp: om.offset for tp, om in coord.fetch_offsets(group).items()}


# ------------------------------------------------------------------------------------------
# Visibility: pending, commit, abort, RequireStable.


def test_pending_offsets_are_invisible_until_commit(coord: GroupCoordinator) -> None:
    coord.commit_offsets("g", {T0: CommitOffset(5)}, now_ms=100)
    assert txn_commit(coord, {T0: 10, T1: 20}) == {T0: None, T1: None}
    assert coord.fetch_offsets("g", [T0, T1]) == {
        T0: OffsetAndMetadata(5, commit_timestamp_ms=100),
        T1: OffsetAndMetadata(-1),
    }
    assert committed(coord) == {T0: 5}
    assert coord.pending_txn_offsets("g") == {
        PID: {T0: OffsetAndMetadata(10, -1, "", 500), T1: OffsetAndMetadata(20, -1, "", 500)}
    }
    assert coord.txn_producers() == [PID]

    assert coord.complete_txn(PID, True, 900) == 2
    assert coord.fetch_offsets("g", [T0, T1]) == {
        T0: OffsetAndMetadata(10, -1, "", 500),
        T1: OffsetAndMetadata(20, -1, "", 500),
    }
    assert coord.pending_txn_offsets("g") == {}
    assert coord.txn_producers() == []
    assert coord.complete_txn(PID, True, 901) == 0  # a second marker finds nothing


def test_abort_drops_pending_offsets(coord: GroupCoordinator) -> None:
    coord.commit_offsets("g", {T0: CommitOffset(5)}, now_ms=100)
    txn_commit(coord, {T0: 10, T1: 20})
    assert coord.complete_txn(PID, False, 900) == 2
    assert committed(coord) == {T0: 5}
    assert coord.pending_txn_offsets("g") == {}
    assert coord.fetch_offsets("g", [T0, T1], require_stable=True) == {
        T0: OffsetAndMetadata(5, commit_timestamp_ms=100),
        T1: OffsetAndMetadata(-1),
    }


def test_require_stable_answers_unstable_offset_commit(coord: GroupCoordinator) -> None:
    other = TopicPartition("u", 0)
    coord.commit_offsets("g", {T0: CommitOffset(5), other: CommitOffset(7)}, now_ms=100)
    txn_commit(coord, {T0: 10, T1: 20})
    got = coord.fetch_offsets("g", [T0, T1, other], require_stable=True)
    assert isinstance(got[T0], UnstableOffsetCommitError)
    assert isinstance(got[T1], UnstableOffsetCommitError)
    assert got[T0].code == 88 and got[T0].retriable
    assert got[other] == OffsetAndMetadata(7, commit_timestamp_ms=100)
    # All partitions: only committed ones are listed (Kafka's fetchAllOffsets), T0 unstable.
    every = coord.fetch_offsets("g", require_stable=True)
    assert list(every) == [T0, other]
    assert isinstance(every[T0], UnstableOffsetCommitError)
    # Without RequireStable: the last committed offsets, pending ignored.
    assert coord.fetch_offsets("g", [T0, T1]) == {
        T0: OffsetAndMetadata(5, commit_timestamp_ms=100),
        T1: OffsetAndMetadata(-1),
    }
    coord.complete_txn(PID, True, 900)
    stable = coord.fetch_offsets("g", [T0, T1], require_stable=True)
    assert {tp: om.offset for tp, om in stable.items()} == {T0: 10, T1: 20}  # type: ignore[union-attr]
    # Unknown group: nothing is pending, nothing committed.
    assert coord.fetch_offsets("nope", [T0], require_stable=True) == {T0: OffsetAndMetadata(-1)}


def test_producers_are_independent(coord: GroupCoordinator) -> None:
    txn_commit(coord, {T0: 10}, pid=1)
    txn_commit(coord, {T0: 20, T1: 21}, pid=2)
    coord.complete_txn(1, False, 600)
    assert committed(coord) == {}
    assert isinstance(coord.fetch_offsets("g", [T0], require_stable=True)[T0], Exception)
    coord.complete_txn(2, True, 700)
    assert committed(coord) == {T0: 20, T1: 21}


def test_a_later_txn_offset_commit_of_the_same_producer_replaces_the_pending_one(
    coord: GroupCoordinator,
) -> None:
    txn_commit(coord, {T0: 10})
    txn_commit(coord, {T0: 11})
    assert coord.pending_txn_offsets("g") == {PID: {T0: OffsetAndMetadata(11, -1, "", 500)}}
    coord.complete_txn(PID, True, 600)
    assert committed(coord) == {T0: 11}


# ------------------------------------------------------------------------------------------
# Ordering against ordinary commits (Kafka compares record offsets in the log).


def test_later_ordinary_commit_wins_over_earlier_txn_commit(coord: GroupCoordinator) -> None:
    txn_commit(coord, {T0: 10, T1: 11})
    coord.commit_offsets("g", {T0: CommitOffset(50)}, now_ms=600)
    coord.complete_txn(PID, True, 700)
    assert committed(coord) == {T0: 50, T1: 11}


def test_txn_commit_written_after_an_ordinary_commit_wins(coord: GroupCoordinator) -> None:
    coord.commit_offsets("g", {T0: CommitOffset(50)}, now_ms=100)
    txn_commit(coord, {T0: 10})
    coord.complete_txn(PID, True, 700)
    assert committed(coord) == {T0: 10}


def test_commit_order_between_two_transactions_follows_the_log(coord: GroupCoordinator) -> None:
    txn_commit(coord, {T0: 10}, pid=1)
    txn_commit(coord, {T0: 20}, pid=2)
    coord.complete_txn(2, True, 600)
    coord.complete_txn(1, True, 700)  # committed later, but written earlier: loses
    assert committed(coord) == {T0: 20}


# ------------------------------------------------------------------------------------------
# Records: formats and batching.


def test_txn_records_use_the_offset_commit_formats_byte_for_byte() -> None:
    txn = make_coordinator()
    plain = make_coordinator()
    commit = {T0: CommitOffset(10, 3, "m")}
    txn.txn_offset_commit("g", commit, producer_id=PID, producer_epoch=EPOCH, now_ms=500)
    plain.commit_offsets("g", commit, now_ms=500)
    batches = txn.take_batches_by_group()
    assert batches == {"g": [OffsetsBatch(plain.take_records(), PID, EPOCH)]}
    ((key, value),) = batches["g"][0].records
    # OffsetCommitKey v1: int16 version, STRING group, STRING topic, INT32 partition.
    assert key == b"\x00\x01" + b"\x00\x01g" + b"\x00\x01t" + b"\x00\x00\x00\x00"
    # OffsetCommitValue v3: int16 version, INT64 offset, INT32 leader epoch, STRING
    # metadata, INT64 commit timestamp (no expire timestamp: TxnOffsetCommit has none).
    assert value == (
        b"\x00\x03"
        + (10).to_bytes(8, "big")
        + (3).to_bytes(4, "big")
        + b"\x00\x01m"
        + (500).to_bytes(8, "big")
    )
    assert rec.decode_offset_commit_value(value) == rec.OffsetCommitValue(10, "m", 500, 3, -1)


def test_batches_keep_log_order_and_split_by_producer(coord: GroupCoordinator) -> None:
    coord.commit_offsets("g", {T0: CommitOffset(1)}, now_ms=1)
    txn_commit(coord, {T0: 2, T1: 3}, pid=7, epoch=0)
    txn_commit(coord, {T1: 4}, pid=7, epoch=0)
    txn_commit(coord, {T0: 5}, pid=8, epoch=2)
    coord.commit_offsets("g", {T1: CommitOffset(6)}, now_ms=2)
    coord.commit_offsets("h", {T0: CommitOffset(7)}, now_ms=3)
    out = coord.take_batches_by_group()
    assert set(out) == {"g", "h"}
    shape = [
        (b.producer_id, b.producer_epoch, b.is_transactional, len(b.records)) for b in out["g"]
    ]
    assert shape == [(-1, -1, False, 1), (7, 0, True, 3), (8, 2, True, 1), (-1, -1, False, 1)]
    offsets = [
        rec.decode_offset_commit_value(v).offset for b in out["g"] for _, v in b.records if v
    ]
    assert offsets == [1, 2, 3, 4, 5, 6]
    assert [b.is_transactional for b in out["h"]] == [False]
    assert coord.take_batches_by_group() == {}


def test_take_records_refuses_to_mix_in_transactional_records(coord: GroupCoordinator) -> None:
    coord.commit_offsets("g", {T0: CommitOffset(1)}, now_ms=1)
    assert len(coord.take_records_by_group()["g"]) == 1  # the old API, no transactions: fine
    txn_commit(coord, {T0: 2})
    with pytest.raises(RuntimeError, match="take_batches_by_group"):
        coord.take_records()
    with pytest.raises(RuntimeError):
        coord.take_records_by_group()
    assert [b.producer_id for b in coord.take_batches_by_group()["g"]] == [PID]  # still queued


# ------------------------------------------------------------------------------------------
# Validation (ClassicGroup.validateOffsetCommit with isTransactional = true).


def test_simple_txn_commit_creates_the_group(coord: GroupCoordinator) -> None:
    assert txn_commit(coord, {T0: 1}) == {T0: None}
    assert coord.group_ids() == ["g"]
    assert coord.group_state("g") is GroupState.EMPTY


def test_unknown_group_with_a_generation_is_illegal(coord: GroupCoordinator) -> None:
    with pytest.raises(IllegalGenerationError):
        txn_commit(coord, {T0: 1}, generation_id=1, member_id="m")
    assert coord.group_ids() == []
    assert coord.take_batches_by_group() == {}


def test_member_and_generation_are_checked(driver: Driver) -> None:
    results, _ = driver.stable_group(2)
    m = next(iter(results))
    gen = results[m].generation_id
    coord = driver.coord
    coord.take_batches_by_group()
    with pytest.raises(UnknownMemberIdError):
        txn_commit(coord, {T0: 1}, generation_id=gen, member_id="stranger")
    with pytest.raises(IllegalGenerationError):
        txn_commit(coord, {T0: 1}, generation_id=gen - 1, member_id=m)
    with pytest.raises(UnknownMemberIdError):  # a member id without a generation
        txn_commit(coord, {T0: 1}, member_id="stranger")
    assert coord.pending_txn_offsets("g") == {}
    assert coord.take_batches_by_group() == {}
    assert txn_commit(coord, {T0: 1}, generation_id=gen, member_id=m) == {T0: None}
    # TxnOffsetCommit v0-2 carry no member: accepted on a group with members, unlike
    # OffsetCommit (Kafka: "does not apply to transactional offset commits").
    assert txn_commit(coord, {T1: 2}) == {T1: None}
    with pytest.raises(UnknownMemberIdError):
        coord.commit_offsets("g", {T1: CommitOffset(2)}, now_ms=driver.now)


def test_static_member_fencing(driver: Driver) -> None:
    r = driver.join("c", instance_id="i").result()
    driver.sync(r.member_id, r.generation_id, {r.member_id: b""})
    kwargs = {"generation_id": r.generation_id, "group_instance_id": "i"}
    with pytest.raises(FencedInstanceIdError):
        txn_commit(driver.coord, {T0: 1}, member_id="old-id", **kwargs)
    assert txn_commit(driver.coord, {T0: 1}, member_id=r.member_id, **kwargs) == {T0: None}


def test_completing_rebalance_does_not_refuse_txn_commits(driver: Driver) -> None:
    r = driver.join("c").result()
    assert driver.coord.group_state("g") is GroupState.COMPLETING_REBALANCE
    kwargs = {"generation_id": r.generation_id, "member_id": r.member_id}
    assert txn_commit(driver.coord, {T0: 1}, **kwargs) == {T0: None}
    with pytest.raises(RebalanceInProgressError):
        driver.coord.commit_offsets("g", {T0: CommitOffset(1)}, now_ms=driver.now, **kwargs)


def test_bad_requests(coord: GroupCoordinator) -> None:
    with pytest.raises(InvalidGroupIdError):
        txn_commit(coord, {T0: 1}, group="")
    with pytest.raises(InvalidRequestError):
        txn_commit(coord, {T0: 1}, pid=-1)
    assert coord.group_ids() == []


def test_per_partition_errors() -> None:
    coord = GroupCoordinator(
        GroupCoordinatorConfig(offset_metadata_max_bytes=4), partition_count={"t": 2}.get
    )
    out = coord.txn_offset_commit(
        "g",
        {
            T0: (1, -1, "1234"),
            T1: CommitOffset(1, metadata="12345"),
            TopicPartition("t", 2): (1, -1, None),
            TopicPartition("nope", 0): (1, -1, ""),
        },
        producer_id=PID,
        producer_epoch=0,
        now_ms=0,
    )
    assert out[T0] is None
    assert isinstance(out[T1], OffsetMetadataTooLargeError)
    assert isinstance(out[TopicPartition("t", 2)], UnknownTopicOrPartitionError)
    assert isinstance(out[TopicPartition("nope", 0)], UnknownTopicOrPartitionError)
    assert coord.pending_txn_offsets("g") == {PID: {T0: OffsetAndMetadata(1, -1, "1234", 0)}}
    (batch,) = coord.take_batches_by_group()["g"]
    assert len(batch.records) == 1


# ------------------------------------------------------------------------------------------
# Reverting a TxnOffsetCommit whose batch could not be appended.


def test_revert_restores_the_previous_pending_offsets(coord: GroupCoordinator) -> None:
    txn_commit(coord, {T0: 10})
    coord.take_batches_by_group()
    txn_commit(coord, {T0: 11, T1: 12})
    coord.take_batches_by_group()  # the append of this batch fails (say, a fenced epoch)
    coord.revert_last_txn_offset_commit()
    assert coord.pending_txn_offsets("g") == {PID: {T0: OffsetAndMetadata(10, -1, "", 500)}}
    coord.revert_last_txn_offset_commit()  # only the last call can be reverted
    assert coord.pending_txn_offsets("g") == {PID: {T0: OffsetAndMetadata(10, -1, "", 500)}}
    coord.complete_txn(PID, True, 600)
    assert committed(coord) == {T0: 10}


def test_revert_forgets_a_group_the_commit_created(coord: GroupCoordinator) -> None:
    txn_commit(coord, {T0: 10}, group="new")
    coord.revert_last_txn_offset_commit()  # not drained yet: the records go too
    assert coord.group_ids() == []
    assert coord.txn_producers() == []
    assert coord.take_batches_by_group() == {}


def test_revert_is_a_no_op_once_the_transaction_completed(coord: GroupCoordinator) -> None:
    txn_commit(coord, {T0: 10})
    coord.take_batches_by_group()
    coord.complete_txn(PID, True, 600)
    coord.revert_last_txn_offset_commit()
    assert committed(coord) == {T0: 10}


# ------------------------------------------------------------------------------------------
# Markers per offsets partition.


def test_complete_txn_only_touches_the_groups_of_the_marker_partition() -> None:
    coord = make_coordinator()
    n = 4
    groups = [f"g{i}" for i in range(40)]
    by_partition: dict[int, str] = {}
    for g in groups:
        by_partition.setdefault(offsets_partition_for(g, n), g)
    assert len(by_partition) >= 2
    (p_a, ga), (p_b, gb) = sorted(by_partition.items())[:2]
    txn_commit(coord, {T0: 1}, group=ga)
    txn_commit(coord, {T0: 2}, group=gb)
    assert coord.complete_txn(PID, True, 600, offsets_partition=p_a, num_partitions=n) == 1
    assert committed(coord, ga) == {T0: 1}
    assert committed(coord, gb) == {}
    assert coord.txn_producers() == [PID]
    assert coord.complete_txn(PID, True, 600, offsets_partition=p_b, num_partitions=n) == 1
    assert committed(coord, gb) == {T0: 2}
    assert coord.txn_producers() == []
    with pytest.raises(ValueError):
        coord.complete_txn(PID, True, 600, offsets_partition=p_a)


# ------------------------------------------------------------------------------------------
# Expiry and deletion.


def test_pending_offsets_block_expiry_of_their_partition_and_group(
    coord: GroupCoordinator,
) -> None:
    retention = 10080 * 60_000
    coord.commit_offsets("s", {T0: CommitOffset(1), T1: CommitOffset(1)}, now_ms=0)
    txn_commit(coord, {T0: 5}, group="s", now_ms=0)
    txn_commit(coord, {T0: 5}, group="only-pending", now_ms=0)
    coord.take_batches_by_group()
    assert coord.expire_offsets(retention) == 1  # T1 expires; T0 is held by the transaction
    assert committed(coord, "s") == {T0: 1}
    assert coord.group_ids() == ["only-pending", "s"]
    (batch,) = coord.take_batches_by_group()["s"]
    assert batch.records == [(rec.encode_offset_commit_key("s", "t", 1), None)]
    coord.complete_txn(PID, False, retention)
    assert coord.expire_offsets(retention) == 1
    assert coord.group_ids() == []


def test_delete_group_with_pending_offsets_tombstones_them(coord: GroupCoordinator) -> None:
    coord.commit_offsets("g", {T0: CommitOffset(1)}, now_ms=0)
    txn_commit(coord, {T0: 2, T1: 3})
    coord.take_batches_by_group()
    assert coord.delete_groups(["g"]) == {"g": None}
    (batch,) = coord.take_batches_by_group()["g"]
    assert not batch.is_transactional
    assert batch.records == [
        (rec.encode_offset_commit_key("g", "t", 0), None),
        (rec.encode_offset_commit_key("g", "t", 1), None),
        (rec.encode_group_metadata_key("g"), None),
    ]
    assert coord.txn_producers() == []
    assert coord.complete_txn(PID, True, 600) == 0  # the marker restores nothing
    assert coord.group_ids() == []


def test_group_with_members_and_pending_offsets_is_not_deletable(driver: Driver) -> None:
    results, _ = driver.stable_group(1)
    (m,) = results
    txn_commit(driver.coord, {T0: 1}, generation_id=results[m].generation_id, member_id=m)
    assert driver.coord.delete_groups(["g"])["g"].code == 68  # type: ignore[union-attr]
    driver.coord.leave_group("g", [LeaveMember(m)], now_ms=driver.now)
    assert driver.coord.delete_groups(["g"]) == {"g": None}
