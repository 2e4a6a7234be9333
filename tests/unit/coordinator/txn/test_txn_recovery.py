"""Rebuilding the transaction coordinator from its ``__transaction_state`` records.

Goal: a restart at any point (after any prefix of the records written) comes back with the
same transactional ids, producer ids, epochs, states, partitions and timestamps; transactions
caught in PrepareCommit/PrepareAbort come back as MarkerWork and complete; Ongoing ones keep
their timeout from the original start; fencing still holds after the restart.
Method: run a scenario that walks every state, keep every record, and after each record load
the prefix into a fresh coordinator; compare ``describe_transactions`` with the live one at
that point. Bad records (truncated, unknown state id) must raise; other key versions, Dead
values and tombstones behave as Kafka's loader treats them.
"""

from __future__ import annotations

import pytest
from txn_helpers import FIRST_PRODUCER_ID, Allocator, init, make, pending, value_record

from headwater.coordinator.txn import (
    InitResult,
    MarkerWork,
    ProducerFencedError,
    TransactionCoordinator,
    TransactionState,
)
from headwater.coordinator.txn import records as rec
from headwater.coordinator.txn.errors import MalformedPayloadError

PID = FIRST_PRODUCER_ID
Record = tuple[bytes, bytes | None]
TP0 = ("orders", 0)


def snapshot(coord: TransactionCoordinator) -> list[object]:
    return list(coord.describe_transactions(sorted(coord.transactional_ids())))


def test_load_after_every_record_matches_the_live_state() -> None:
    live = make()
    log: list[Record] = []
    # expected[i - 1] = the state after the first i records, where observable: a call that
    # writes several records (markers_written + a waiting InitProducerId) shows only its end.
    expected: list[list[object] | None] = []

    def step() -> None:
        new = live.take_records()
        for r in new:
            log.append(r)
        expected.extend([None] * (len(new) - 1) + [snapshot(live)])

    a = init(live, "a", 1)
    step()
    live.add_partitions("a", PID, a.producer_epoch, [TP0, ("pay", 2)], 2)
    step()
    live.add_offsets("a", PID, a.producer_epoch, "g", 3)
    step()
    live.end_txn("a", PID, a.producer_epoch, True, 4)
    step()
    live.markers_written("a", 5)
    step()
    b = init(live, "b", 6, timeout_ms=100)
    step()
    live.add_partitions("b", b.producer_id, b.producer_epoch, [TP0], 7)
    step()
    live.tick(200)  # b times out: PrepareAbort with a bumped epoch
    step()
    live.markers_written("b", 201)
    step()
    init(live, "b", 202)
    step()
    c = init(live, "c", 203)
    step()
    live.add_partitions("c", c.producer_id, c.producer_epoch, [TP0], 204)
    step()
    p = pending(live, "c", 205)  # fences c's open transaction
    step()
    live.markers_written("c", 206)
    assert p.done()
    step()
    assert len(log) == len(expected) >= 14
    assert sum(e is None for e in expected) == 1

    for i in range(1, len(log) + 1):
        restarted = make()
        restarted.load(log[:i], 10_000)
        if expected[i - 1] is None:
            continue
        # The partial replay shows the state after the i-th record. Records of the same id
        # come in order, so the final state of each id equals the live state at that point.
        assert snapshot(restarted) == expected[i - 1], f"after {i} records"


@pytest.mark.parametrize("commit", [True, False])
def test_prepared_transaction_comes_back_as_marker_work_and_completes(commit: bool) -> None:
    live = make()
    r = init(live, "t", 0)
    live.add_partitions("t", PID, r.producer_epoch, [TP0, ("pay", 1)], 1)
    work = live.end_txn("t", PID, r.producer_epoch, commit, 2)
    log = live.take_records()

    restarted = make(coordinator_epoch=1)
    (again,) = restarted.load(log, 5)
    assert again == MarkerWork("t", PID, 0, 1, commit, (TP0, ("pay", 1)))
    assert work is not None and work.partitions == again.partitions
    assert restarted.pending_markers() == [again]
    # The client's EndTxn retry after the restart is answered as before the crash.
    from headwater.coordinator.txn import ConcurrentTransactionsError

    with pytest.raises(ConcurrentTransactionsError):
        restarted.end_txn("t", PID, r.producer_epoch, commit, 6)
    assert restarted.markers_written("t", 7) is True
    state = TransactionState.COMPLETE_COMMIT if commit else TransactionState.COMPLETE_ABORT
    assert restarted.state_of("t") is state
    assert restarted.end_txn("t", PID, r.producer_epoch, commit, 8) is None
    assert restarted.pending_markers() == []


def test_fence_abort_interrupted_by_restart_completes_and_stays_fenced() -> None:
    live = make()
    r = init(live, "t", 0)
    live.add_partitions("t", PID, r.producer_epoch, [TP0], 1)
    p = pending(live, "t", 2)  # a new instance fences the old one
    assert p.markers is not None
    log = live.take_records()

    restarted = make()
    (work,) = restarted.load(log, 3)
    assert work == p.markers
    restarted.markers_written("t", 4)
    # The waiting InitProducerId was lost with the process; the client retries.
    assert init(restarted, "t", 5) == InitResult(PID, 2)
    with pytest.raises(ProducerFencedError):
        restarted.end_txn("t", PID, 0, True, 6)


def test_ongoing_transaction_keeps_its_timeout_across_restart() -> None:
    live = make()
    r = init(live, "t", 0, timeout_ms=1000)
    live.add_partitions("t", PID, r.producer_epoch, [TP0], 100)
    log = live.take_records()

    restarted = make()
    assert restarted.load(log, 900) == []
    assert restarted.state_of("t") is TransactionState.ONGOING
    assert restarted.next_deadline_ms() == 1101
    assert restarted.tick(1100) == []
    (work,) = restarted.tick(1101)
    assert (work.commit, work.producer_epoch, work.partitions) == (False, 1, (TP0,))


def test_epochs_continue_after_restart_so_fencing_holds() -> None:
    alloc = Allocator()
    live = make(allocator=alloc)
    init(live, "t", 0)
    init(live, "t", 1)
    log = live.take_records()
    restarted = make(allocator=Allocator(next_id=alloc.next_id))
    restarted.load(log, 2)
    assert restarted.highest_producer_id == PID
    assert init(restarted, "t", 3) == InitResult(PID, 2)
    assert restarted.add_partitions("t", PID, 1, [TP0], 4)[TP0] is not None


def test_tombstone_removes_the_id_and_later_values_bring_it_back() -> None:
    key = rec.encode_key("t")
    restarted = make()
    restarted.load([value_record("t", 5, 0, 100, 0, None, 0, -1), (key, None)], 0)
    assert restarted.state_of("t") is None
    again = make()
    again.load(
        [
            value_record("t", 5, 0, 100, 0, None, 0, -1),
            (key, None),
            value_record("t", 9, 3, 100, 4, (), 0, 0),
        ],
        0,
    )
    (d,) = again.describe_transactions(["t"])
    assert (d.producer_id, d.producer_epoch, d.transaction_state) == (9, 3, "CompleteCommit")
    assert again.highest_producer_id == 9


def test_expiry_tombstone_replays_as_removed() -> None:
    from headwater.coordinator.txn import TransactionCoordinatorConfig

    live = make(TransactionCoordinatorConfig(transactional_id_expiration_ms=10))
    init(live, "t", 0)
    live.tick(10)
    log = live.take_records()
    assert log[-1] == (rec.encode_key("t"), None)
    restarted = make()
    restarted.load(log, 11)
    assert restarted.transactional_ids() == []


def test_dead_and_epoch_fence_values_load_as_kafka_never_wrote_them() -> None:
    restarted = make()
    restarted.load(
        [
            value_record("dead", 5, 0, 100, 6, (), 0, 0),
            value_record("fencing", 6, 2, 100, 7, (("orders", (0,)),), 10, 10),
        ],
        0,
    )
    assert restarted.state_of("dead") is None
    assert restarted.state_of("fencing") is TransactionState.ONGOING
    (work,) = restarted.tick(111)
    assert (work.producer_id, work.producer_epoch, work.partitions) == (6, 3, (TP0,))


def test_other_key_versions_are_skipped() -> None:
    restarted = make()
    restarted.load(
        [(b"\x00\x05anything", b"\x00\x00"), value_record("t", 5, 0, 100, 0, None, 0, -1)], 0
    )
    assert restarted.transactional_ids() == ["t"]


@pytest.mark.parametrize(
    "record",
    [
        (rec.encode_key("t"), b"\x00\x00\x00"),
        (b"\x00", None),
        value_record("t", 5, 0, 100, 8, None, 0, -1),
        value_record("t", 5, 0, 100, -1, None, 0, -1),
    ],
)
def test_malformed_records_raise(record: Record) -> None:
    with pytest.raises(MalformedPayloadError):
        make().load([record], 0)


def test_v1_values_load() -> None:
    value = rec.TransactionLogValue(
        9,
        4,
        100,
        1,
        (("orders", (0,)),),
        3,
        2,
        previous_producer_id=7,
        client_transaction_version=1,
    )
    restarted = make()
    restarted.load([(rec.encode_key("t"), rec.encode_value(value, version=1))], 0)
    (d,) = restarted.describe_transactions(["t"])
    assert (d.producer_id, d.producer_epoch, d.transaction_state) == (9, 4, "Ongoing")
    assert (d.transaction_timeout_ms, d.transaction_start_time_ms) == (100, 2)
    assert d.topics == (("orders", (0,)),)
    # Like Kafka, the last epoch is not persisted: a KIP-360 retry with an epoch other than
    # the current one is fenced after a restart.
    empty = rec.TransactionLogValue(9, 4, 100, 0, None, 3, -1, previous_producer_id=7)
    restarted.load([(rec.encode_key("e"), rec.encode_value(empty, version=1))], 0)
    with pytest.raises(ProducerFencedError):
        restarted.init_producer_id("e", 100, 1, producer_id=9, producer_epoch=3)
    assert init(restarted, "e", 2, producer_id=9, producer_epoch=4) == InitResult(9, 5)
