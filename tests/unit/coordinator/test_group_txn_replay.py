"""Replay of transactional offset commits from __consumer_offsets.

Goal: ``load_entries`` rebuilds exactly the state the live coordinator had: ordinary records
commit, transactional records are pending for their producer until its COMMIT/ABORT marker
in the same partition, a committed transaction's offsets lose to ordinary commits written after
them in the log, tombstones clear pending offsets, and transactions whose markers were not all
written before a crash stay pending until ``complete_txn`` after restart.
Method: hand-built entry lists for each rule; then a differential test: random ordinary and
transactional commits, markers (sometimes interrupted by a "crash" after some partitions) and
deletions drive a live coordinator while a model log records what a broker would append; after
every step a coordinator rebuilt from the log must equal the live one.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import pytest
from group_driver import make_coordinator

from headwater.coordinator.group import (
    CommitOffset,
    GroupCoordinator,
    OffsetAndMetadata,
    TopicPartition,
    UnstableOffsetCommitError,
    offsets_partition_for,
)
from headwater.coordinator.group import records as rec

T0 = TopicPartition("t", 0)
T1 = TopicPartition("t", 1)


def key(tp: TopicPartition, group: str = "g") -> bytes:
    return rec.encode_offset_commit_key(group, tp.topic, tp.partition)


def value(offset: int, ts: int = 0) -> bytes:
    return rec.encode_offset_commit_value(rec.OffsetCommitValue(offset, "", ts))


def committed(coord: GroupCoordinator, group: str = "g") -> dict[TopicPartition, int]:
    return {tp: om.offset for tp, om in coord.fetch_offsets(group).items()}


def pending(coord: GroupCoordinator, group: str = "g") -> dict[int, dict[TopicPartition, int]]:
    return {
        pid: {tp: om.offset for tp, om in held.items()}
        for pid, held in coord.pending_txn_offsets(group).items()
    }


# ------------------------------------------------------------------------------------------
# One rule per test.


def test_replay_commit_marker_makes_offsets_committed(coord: GroupCoordinator) -> None:
    loaded = coord.load_entries(
        [
            ("record", key(T0), value(5)),
            ("txn_record", 7, key(T0), value(10)),
            ("txn_record", 7, key(T1), value(11)),
            ("marker", 7, True),
        ],
        now_ms=0,
    )
    assert loaded == 1
    assert committed(coord) == {T0: 10, T1: 11}
    assert pending(coord) == {}
    assert coord.txn_producers() == []


def test_replay_abort_marker_drops_offsets(coord: GroupCoordinator) -> None:
    coord.load_entries(
        [
            ("record", key(T0), value(5)),
            ("txn_record", 7, key(T0), value(10)),
            ("txn_record", 7, key(T1), value(11)),
            ("marker", 7, False),
        ],
        now_ms=0,
    )
    assert committed(coord) == {T0: 5}
    assert pending(coord) == {}


def test_replay_without_marker_leaves_offsets_pending(coord: GroupCoordinator) -> None:
    coord.load_entries(
        [("txn_record", 7, key(T0), value(10)), ("txn_record", 8, key(T1, "h"), value(3))],
        now_ms=0,
    )
    assert coord.group_ids() == ["g", "h"]  # a group with only pending offsets exists (Empty)
    assert committed(coord) == {}
    assert pending(coord) == {7: {T0: 10}}
    assert coord.txn_producers() == [7, 8]
    assert isinstance(
        coord.fetch_offsets("g", [T0], require_stable=True)[T0], UnstableOffsetCommitError
    )
    # After restart the transaction coordinator finishes the transaction.
    coord.complete_txn(7, True, 100)
    coord.complete_txn(8, False, 100)
    assert committed(coord) == {T0: 10}
    assert committed(coord, "h") == {}
    assert coord.fetch_offsets("g", [T0], require_stable=True) == {
        T0: OffsetAndMetadata(10, -1, "", 0)
    }


@pytest.mark.parametrize(
    ("entries", "expected"),
    [
        # ordinary commit written after the transactional one: it wins
        ([("txn_record", 7, key(T0), value(10)), ("record", key(T0), value(50))], 50),
        # ordinary commit written before: the transaction wins
        ([("record", key(T0), value(50)), ("txn_record", 7, key(T0), value(10))], 10),
    ],
)
def test_replay_orders_by_log_position(
    coord: GroupCoordinator, entries: list[tuple], expected: int
) -> None:
    coord.load_entries([*entries, ("marker", 7, True)], now_ms=0)
    assert committed(coord) == {T0: expected}


def test_replay_marker_only_completes_its_producer_and_later_records_start_over(
    coord: GroupCoordinator,
) -> None:
    coord.load_entries(
        [
            ("txn_record", 7, key(T0), value(10)),
            ("txn_record", 8, key(T1), value(20)),
            ("marker", 7, True),
            ("txn_record", 7, key(T0), value(30)),  # the producer's next transaction
        ],
        now_ms=0,
    )
    assert committed(coord) == {T0: 10}
    assert pending(coord) == {7: {T0: 30}, 8: {T1: 20}}


def test_replay_tombstone_clears_pending_offsets(coord: GroupCoordinator) -> None:
    coord.load_entries(
        [
            ("record", key(T0), value(5)),
            ("txn_record", 7, key(T0), value(10)),
            ("txn_record", 7, key(T1), value(11)),
            ("record", key(T0), None),
            ("marker", 7, True),
        ],
        now_ms=0,
    )
    assert committed(coord) == {T1: 11}


def test_markers_complete_only_the_transactions_of_their_own_load_call(
    coord: GroupCoordinator,
) -> None:
    # Partition A: the producer's first transaction committed, its second one interrupted
    # before A's marker. Partition B (replayed separately) holds both markers.
    coord.load_entries(
        [
            ("txn_record", 7, key(T0, "a"), value(1)),
            ("marker", 7, True),
            ("txn_record", 7, key(T0, "a"), value(2)),
        ],
        now_ms=0,
    )
    coord.load_entries(
        [
            ("txn_record", 7, key(T0, "b"), value(1)),
            ("marker", 7, True),
            ("txn_record", 7, key(T0, "b"), value(2)),
            ("marker", 7, False),
        ],
        now_ms=0,
    )
    assert committed(coord, "a") == {T0: 1}
    assert pending(coord, "a") == {7: {T0: 2}}
    assert committed(coord, "b") == {T0: 1}
    assert pending(coord, "b") == {}


def test_load_rejects_unknown_entry_kinds(coord: GroupCoordinator) -> None:
    with pytest.raises(ValueError, match="unknown replay entry"):
        coord.load_entries([("batch", key(T0), value(1))], now_ms=0)


# ------------------------------------------------------------------------------------------
# Differential: live coordinator versus a coordinator rebuilt from the log.

N_PARTITIONS = 3
GROUPS = ["g0", "g1", "g2", "g3", "g4"]
TPS = [TopicPartition("t", p) for p in range(3)]
PIDS = [100, 101, 102]


@dataclass
class ModelLog:
    """__consumer_offsets as a broker would write it: per partition, replay entries."""

    partitions: dict[int, list[tuple]] = field(
        default_factory=lambda: {p: [] for p in range(N_PARTITIONS)}
    )
    # producer id -> offsets partitions its open transaction wrote to (AddOffsetsToTxn).
    txn_partitions: dict[int, set[int]] = field(default_factory=dict)

    def persist(self, coord: GroupCoordinator) -> None:
        for group, batches in coord.take_batches_by_group().items():
            p = offsets_partition_for(group, N_PARTITIONS)
            for batch in batches:
                for k, v in batch.records:
                    if batch.is_transactional:
                        self.partitions[p].append(("txn_record", batch.producer_id, k, v))
                        self.txn_partitions.setdefault(batch.producer_id, set()).add(p)
                    else:
                        self.partitions[p].append(("record", k, v))

    def write_marker(self, coord: GroupCoordinator, pid: int, commit: bool, p: int) -> None:
        self.partitions[p].append(("marker", pid, commit))
        coord.complete_txn(pid, commit, 0, offsets_partition=p, num_partitions=N_PARTITIONS)

    def replay(self) -> GroupCoordinator:
        coord = make_coordinator()
        for p in range(N_PARTITIONS):
            coord.load_entries(self.partitions[p], now_ms=0)
        return coord


def snapshot(coord: GroupCoordinator) -> dict:
    out = {}
    for g in coord.group_ids():
        c, p = coord.fetch_offsets(g), coord.pending_txn_offsets(g)
        if c or p:
            out[g] = (c, p)
    return out


@pytest.mark.parametrize("seed", range(12))
def test_replay_equals_live_state(seed: int) -> None:
    rnd = random.Random(seed)
    live = make_coordinator()
    log = ModelLog()
    now = 0
    for _ in range(150):
        now += 1
        op = rnd.random()
        group = rnd.choice(GROUPS)
        tps = rnd.sample(TPS, rnd.randint(1, 2))
        if op < 0.3:
            live.commit_offsets(
                group, {tp: CommitOffset(rnd.randint(0, 999)) for tp in tps}, now_ms=now
            )
        elif op < 0.65:
            pid = rnd.choice(PIDS)
            live.txn_offset_commit(
                group,
                {tp: CommitOffset(rnd.randint(0, 999)) for tp in tps},
                producer_id=pid,
                producer_epoch=0,
                now_ms=now,
            )
        elif op < 0.95:
            open_pids = [pid for pid in PIDS if log.txn_partitions.get(pid)]
            if not open_pids:
                continue
            pid = rnd.choice(open_pids)
            commit = rnd.random() < 0.6
            targets = sorted(log.txn_partitions.pop(pid))
            crash_after = rnd.randint(0, len(targets)) if rnd.random() < 0.3 else len(targets)
            for p in targets[:crash_after]:
                log.write_marker(live, pid, commit, p)
            if crash_after < len(targets):
                live = log.replay()  # the process died mid-way: restart from the log
                for p in targets[crash_after:]:  # the transaction coordinator resumes
                    log.write_marker(live, pid, commit, p)
        else:
            live.delete_groups([group])
        log.persist(live)
        assert snapshot(log.replay()) == snapshot(live)
    # Finish every transaction; nothing stays pending, live and replay still agree.
    for pid, targets in sorted(log.txn_partitions.items()):
        for p in sorted(targets):
            log.write_marker(live, pid, True, p)
    assert live.txn_producers() == []
    rebuilt = log.replay()
    assert snapshot(rebuilt) == snapshot(live)
    assert rebuilt.txn_producers() == []
