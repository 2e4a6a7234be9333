"""The transaction coordinator's transitions and errors, one request at a time.

Goal: every row of the state table in coordinator.py (Kafka's TransactionCoordinator and
TransactionMetadata, kafka-spec.md d.2/d.3) answers as Kafka does, including the bad-input
rows of issue 5's acceptance (wrong order, unknown ids, epochs from the past, a timeout over
transaction.max.timeout.ms): the error Kafka returns, and no state change and no record.
Method: drive a coordinator with explicit ``now_ms`` and a counter producer-id allocator;
check results, errors, ``describe_transactions`` and the decoded ``__transaction_state``
records each step queued.
"""

from __future__ import annotations

import pytest
from txn_helpers import FIRST_PRODUCER_ID, Allocator, init, make, pending, states, value_record

from headwater.coordinator.group import offsets_partition_for
from headwater.coordinator.txn import (
    OFFSETS_TOPIC,
    ConcurrentTransactionsError,
    InitPending,
    InitResult,
    InvalidProducerIdMappingError,
    InvalidRequestError,
    InvalidTransactionTimeoutError,
    InvalidTxnStateError,
    MarkerWork,
    OperationNotAttemptedError,
    ProducerFencedError,
    TransactionalIdNotFoundError,
    TransactionCoordinator,
    TransactionCoordinatorConfig,
    TransactionState,
)
from headwater.coordinator.txn import records as rec
from headwater.coordinator.txn.errors import UnknownTopicOrPartitionError
from headwater.errors import ConfigError

PID = FIRST_PRODUCER_ID
S = TransactionState
TP0 = ("orders", 0)
TP1 = ("orders", 1)


@pytest.fixture
def coord() -> TransactionCoordinator:
    return make()


def ongoing(coord: TransactionCoordinator, txn_id: str = "t", now_ms: int = 0) -> InitResult:
    r = init(coord, txn_id, now_ms)
    assert coord.add_partitions(txn_id, r.producer_id, r.producer_epoch, [TP0, TP1], now_ms) == {
        TP0: None,
        TP1: None,
    }
    coord.take_records()
    return r


def describe(coord: TransactionCoordinator, txn_id: str = "t"):  # type: ignore[no-untyped-def]
    (d,) = coord.describe_transactions([txn_id])
    return d


# ------------------------------------------------------------------------------------------------
# InitProducerId.


def test_init_new_id_allocates_producer_id_with_epoch_0(coord: TransactionCoordinator) -> None:
    assert init(coord, "t", 5, timeout_ms=30000) == InitResult(PID, 0)
    (key, value), *rest = coord.take_records()
    assert rest == []
    assert rec.decode_key(key) == rec.TransactionLogKey("t")
    assert value is not None
    assert rec.decode_value(value) == rec.TransactionLogValue(PID, 0, 30000, 0, None, 5, -1)
    assert coord.highest_producer_id == PID


def test_init_existing_id_bumps_epoch_and_fences_old_instance(
    coord: TransactionCoordinator,
) -> None:
    old = init(coord, "t")
    new = init(coord, "t", 10)
    assert new == InitResult(PID, 1)
    errors = coord.add_partitions("t", PID, old.producer_epoch, [TP0], 11)
    assert isinstance(errors[TP0], ProducerFencedError)
    with pytest.raises(ProducerFencedError):
        coord.add_offsets("t", PID, old.producer_epoch, "g", 11)
    assert coord.add_partitions("t", PID, 1, [TP0], 12) == {TP0: None}
    with pytest.raises(ProducerFencedError):
        coord.end_txn("t", PID, old.producer_epoch, True, 13)
    assert describe(coord).transaction_state == "Ongoing"


def test_init_updates_timeout_and_separate_ids_get_separate_producer_ids(
    coord: TransactionCoordinator,
) -> None:
    init(coord, "a", timeout_ms=1000)
    init(coord, "a", timeout_ms=2000)
    assert init(coord, "b") == InitResult(PID + 1, 0)
    assert describe(coord, "a").transaction_timeout_ms == 2000


@pytest.mark.parametrize("timeout_ms", [900001, 0, -1, 2**31 - 1])
def test_init_timeout_out_of_range_is_rejected_without_change(
    coord: TransactionCoordinator, timeout_ms: int
) -> None:
    with pytest.raises(InvalidTransactionTimeoutError) as exc:
        coord.init_producer_id("t", timeout_ms, 0)
    assert exc.value.code == 50
    assert coord.take_records() == []
    assert coord.state_of("t") is None
    init(coord, "t")
    coord.take_records()
    with pytest.raises(InvalidTransactionTimeoutError):
        coord.init_producer_id("t", timeout_ms, 1)
    assert coord.take_records() == []
    assert describe(coord).producer_epoch == 0


def test_init_timeout_at_configured_max_is_accepted() -> None:
    coord = make(TransactionCoordinatorConfig(transaction_max_timeout_ms=5000))
    assert init(coord, "t", timeout_ms=5000).producer_epoch == 0
    with pytest.raises(InvalidTransactionTimeoutError):
        coord.init_producer_id("t", 5001, 0)


def test_init_empty_transactional_id_is_invalid_request(coord: TransactionCoordinator) -> None:
    with pytest.raises(InvalidRequestError) as exc:
        coord.init_producer_id("", 60000, 0)
    assert exc.value.code == 42


@pytest.mark.parametrize(("pid", "epoch"), [(5, -1), (-1, 0)])
def test_init_with_only_one_of_producer_id_and_epoch_is_invalid_request(
    coord: TransactionCoordinator, pid: int, epoch: int
) -> None:
    with pytest.raises(InvalidRequestError):
        coord.init_producer_id("t", 60000, 0, producer_id=pid, producer_epoch=epoch)
    assert coord.take_records() == []


def test_init_while_ongoing_aborts_with_bumped_epoch_then_answers(
    coord: TransactionCoordinator,
) -> None:
    ongoing(coord)
    p = pending(coord, "t", 100)
    assert p.markers == MarkerWork("t", PID, 1, 0, False, (TP0, TP1))
    assert not p.done()
    # The old instance (epoch 0) is fenced at once.
    assert isinstance(coord.add_partitions("t", PID, 0, [TP0], 101)[TP0], ProducerFencedError)
    with pytest.raises(ProducerFencedError):
        coord.end_txn("t", PID, 0, True, 101)
    assert describe(coord).transaction_state == "PrepareAbort"
    assert coord.markers_written("t", 102) is True
    assert p.done()
    assert p.result() == InitResult(PID, 2)
    assert states(coord.take_records()) == [
        ("t", PID, 1, S.PREPARE_ABORT),
        ("t", PID, 1, S.COMPLETE_ABORT),
        ("t", PID, 2, S.EMPTY),
    ]


def test_init_while_prepare_commit_waits_and_commit_still_completes(
    coord: TransactionCoordinator,
) -> None:
    r = ongoing(coord)
    work = coord.end_txn("t", PID, r.producer_epoch, True, 10)
    assert work is not None and work.commit
    p = pending(coord, "t", 11)
    assert p.markers is None
    assert coord.pending_markers() == [work]
    coord.markers_written("t", 12)
    assert p.result() == InitResult(PID, 1)
    assert [s[3] for s in states(coord.take_records())] == [
        S.PREPARE_COMMIT,
        S.COMPLETE_COMMIT,
        S.EMPTY,
    ]


def test_cancelled_init_pending_never_completes_nor_bumps(coord: TransactionCoordinator) -> None:
    ongoing(coord)
    p = pending(coord, "t", 1)
    p.cancel()
    coord.markers_written("t", 2)
    assert not p.done()
    assert describe(coord).producer_epoch == 1
    assert describe(coord).transaction_state == "CompleteAbort"
    # Kafka's client retry: now answered at once.
    assert init(coord, "t", 3) == InitResult(PID, 2)


def test_two_waiting_inits_run_in_arrival_order_last_one_owns(
    coord: TransactionCoordinator,
) -> None:
    ongoing(coord)
    first = pending(coord, "t", 1)
    second = pending(coord, "t", 2)
    assert first.markers is not None and second.markers is None
    coord.markers_written("t", 3)
    assert first.result() == InitResult(PID, 2)
    assert second.result() == InitResult(PID, 3)
    assert isinstance(coord.add_partitions("t", PID, 2, [TP0], 4)[TP0], ProducerFencedError)


def test_init_pending_callback_sees_consistent_state(coord: TransactionCoordinator) -> None:
    ongoing(coord)
    p = pending(coord, "t", 1)
    seen: list[str] = []
    p.add_done_callback(lambda _p: seen.append(describe(coord).transaction_state))
    coord.markers_written("t", 2)
    assert seen == ["Empty"]


def test_epoch_exhaustion_rotates_producer_id() -> None:
    alloc = Allocator()
    coord = make(allocator=alloc)
    coord.load(
        [value_record("t", 7, 32765, 60000, 0, None, 0, -1)],
        0,
    )
    assert init(coord, "t") == InitResult(7, 32766)  # the last epoch handed out
    assert init(coord, "t") == InitResult(PID, 0)  # exhausted: a new producer id
    assert alloc.given == [PID]
    assert isinstance(
        coord.add_partitions("t", 7, 32766, [TP0], 1)[TP0], InvalidProducerIdMappingError
    )


def test_fencing_an_exhausted_epoch_uses_32767_then_rotates(coord: TransactionCoordinator) -> None:
    coord.load(
        [value_record("t", 7, 32766, 60000, 1, (("orders", (0,)),), 0, 0)],
        0,
    )
    p = pending(coord, "t", 1)
    assert p.markers is not None and p.markers.producer_epoch == 32767
    coord.markers_written("t", 2)
    assert p.result() == InitResult(PID, 0)


# KIP-360: InitProducerId with the producer's current id and epoch.


def test_kip360_bump_own_epoch_and_retry_of_lost_answer(coord: TransactionCoordinator) -> None:
    init(coord, "t")
    assert init(coord, "t", producer_id=PID, producer_epoch=0) == InitResult(PID, 1)
    # The answer was lost; the producer retries with its old epoch: same answer, no bump.
    assert init(coord, "t", producer_id=PID, producer_epoch=0) == InitResult(PID, 1)
    assert init(coord, "t", producer_id=PID, producer_epoch=1) == InitResult(PID, 2)


def test_kip360_stale_epoch_after_another_instance_is_fenced(coord: TransactionCoordinator) -> None:
    init(coord, "t")  # instance A: epoch 0
    init(coord, "t")  # instance B: epoch 1, last epoch -1
    coord.take_records()
    with pytest.raises(ProducerFencedError) as exc:
        coord.init_producer_id("t", 60000, 1, producer_id=PID, producer_epoch=0)
    assert exc.value.code == 90
    assert coord.take_records() == []
    assert describe(coord).producer_epoch == 1


def test_kip360_other_producer_id_is_fenced(coord: TransactionCoordinator) -> None:
    init(coord, "t")
    with pytest.raises(ProducerFencedError):
        coord.init_producer_id("t", 60000, 1, producer_id=PID + 77, producer_epoch=0)


def test_kip360_unknown_id_gets_a_new_producer_id(coord: TransactionCoordinator) -> None:
    assert init(coord, "t", producer_id=55, producer_epoch=3) == InitResult(PID, 0)


def test_kip360_retry_after_producer_id_rotation_is_answered_again() -> None:
    coord = make()
    coord.load(
        [value_record("t", 7, 32766, 60000, 0, None, 0, -1)],
        0,
    )
    assert init(coord, "t", producer_id=7, producer_epoch=32766) == InitResult(PID, 0)
    assert init(coord, "t", producer_id=7, producer_epoch=32766) == InitResult(PID, 0)
    with pytest.raises(ProducerFencedError):
        coord.init_producer_id("t", 60000, 1, producer_id=7, producer_epoch=5)


def test_kip360_stale_epoch_when_current_is_exhausted_is_fenced() -> None:
    coord = make()
    coord.load(
        [value_record("t", 7, 32767, 60000, 5, (), 0, 0)],
        0,
    )
    with pytest.raises(ProducerFencedError):
        coord.init_producer_id("t", 60000, 1, producer_id=7, producer_epoch=32766)
    assert init(coord, "t") == InitResult(PID, 0)


# ------------------------------------------------------------------------------------------------
# AddPartitionsToTxn / AddOffsetsToTxn.


def test_add_partitions_starts_transaction_and_records_it(coord: TransactionCoordinator) -> None:
    r = init(coord, "t")
    coord.take_records()
    assert coord.add_partitions("t", PID, r.producer_epoch, [TP1, TP0], 50) == {
        TP1: None,
        TP0: None,
    }
    d = describe(coord)
    assert (d.transaction_state, d.transaction_start_time_ms) == ("Ongoing", 50)
    assert d.topics == (("orders", (0, 1)),)
    ((_, value),) = coord.take_records()
    assert value is not None
    assert rec.decode_value(value) == rec.TransactionLogValue(
        PID, 0, 60000, 1, (("orders", (0, 1)),), 50, 50
    )


def test_add_known_partitions_again_writes_nothing_new_ones_keep_start(
    coord: TransactionCoordinator,
) -> None:
    r = ongoing(coord, now_ms=5)
    assert coord.add_partitions("t", PID, r.producer_epoch, [TP0], 9) == {TP0: None}
    assert coord.take_records() == []
    # Partly known: the new one is added.
    assert coord.add_partitions("t", PID, r.producer_epoch, [TP1, ("pay", 3)], 10) == {
        TP1: None,
        ("pay", 3): None,
    }
    ((_, value),) = coord.take_records()
    assert value is not None
    v = rec.decode_value(value)
    assert (v.start_timestamp_ms, v.last_update_timestamp_ms) == (5, 10)
    assert v.partitions == (("orders", (0, 1)), ("pay", (3,)))


def test_add_partitions_unknown_id_is_invalid_producer_id_mapping(
    coord: TransactionCoordinator,
) -> None:
    errors = coord.add_partitions("nope", 1, 0, [TP0, TP1], 0)
    assert {type(e) for e in errors.values()} == {InvalidProducerIdMappingError}
    assert errors[TP0] is not None and errors[TP0].code == 49
    assert coord.take_records() == []
    assert coord.state_of("nope") is None


def test_add_partitions_wrong_producer_id_and_epochs(coord: TransactionCoordinator) -> None:
    init(coord, "t")
    init(coord, "t")  # epoch 1
    coord.take_records()
    assert isinstance(
        coord.add_partitions("t", PID + 1, 1, [TP0], 0)[TP0], InvalidProducerIdMappingError
    )
    assert isinstance(coord.add_partitions("t", PID, 0, [TP0], 0)[TP0], ProducerFencedError)
    assert isinstance(coord.add_partitions("t", PID, 2, [TP0], 0)[TP0], ProducerFencedError)
    assert coord.take_records() == []
    assert describe(coord).transaction_state == "Empty"


@pytest.mark.parametrize("commit", [True, False])
def test_add_partitions_while_markers_pending_is_concurrent_transactions(
    coord: TransactionCoordinator, commit: bool
) -> None:
    r = ongoing(coord)
    coord.end_txn("t", PID, r.producer_epoch, commit, 1)
    coord.take_records()
    err = coord.add_partitions("t", PID, r.producer_epoch, [("new", 0)], 2)[("new", 0)]
    assert isinstance(err, ConcurrentTransactionsError) and err.retriable and err.code == 51
    with pytest.raises(ConcurrentTransactionsError):
        coord.add_offsets("t", PID, r.producer_epoch, "g", 2)
    assert coord.take_records() == []


def test_add_partitions_unknown_topic_fails_whole_request() -> None:
    coord = make(partition_count=lambda t: 2 if t == "orders" else None)
    r = init(coord, "t")
    coord.take_records()
    errors = coord.add_partitions("t", PID, r.producer_epoch, [TP0, ("orders", 2), ("ghost", 0)], 1)
    assert isinstance(errors[TP0], OperationNotAttemptedError) and errors[TP0].code == 55
    assert isinstance(errors[("orders", 2)], UnknownTopicOrPartitionError)
    assert isinstance(errors[("ghost", 0)], UnknownTopicOrPartitionError)
    assert coord.take_records() == []
    assert describe(coord).transaction_state == "Empty"


def test_add_partitions_empty_transactional_id_is_invalid_request(
    coord: TransactionCoordinator,
) -> None:
    assert isinstance(coord.add_partitions("", 1, 0, [TP0], 0)[TP0], InvalidRequestError)


def test_add_partition_is_add_partitions_of_one_raising_its_error(coord: TransactionCoordinator) -> None:
    with pytest.raises(InvalidProducerIdMappingError):
        coord.add_partition("t", PID, 0, TP0, 0)
    r = init(coord, "t")
    coord.take_records()
    with pytest.raises(ProducerFencedError):
        coord.add_partition("t", PID, r.producer_epoch + 1, TP0, 1)
    assert coord.take_records() == []
    coord.add_partition("t", PID, r.producer_epoch, TP0, 7)
    d = describe(coord)
    assert (d.transaction_state, d.transaction_start_time_ms, d.topics) == ("Ongoing", 7, (("orders", (0,)),))
    ((_, value),) = coord.take_records()
    assert value is not None and rec.decode_value(value).transaction_status == int(S.ONGOING)
    coord.end_txn("t", PID, r.producer_epoch, True, 8)
    with pytest.raises(ConcurrentTransactionsError):
        coord.add_partition("t", PID, r.producer_epoch, TP1, 9)


def test_add_offsets_adds_the_groups_offsets_partition(coord: TransactionCoordinator) -> None:
    r = init(coord, "t")
    tp = coord.add_offsets("t", PID, r.producer_epoch, "my-group", 3)
    assert tp == (OFFSETS_TOPIC, offsets_partition_for("my-group", 50))
    d = describe(coord)
    assert d.transaction_state == "Ongoing" and d.transaction_start_time_ms == 3
    assert d.topics == ((OFFSETS_TOPIC, (tp[1],)),)


def test_add_offsets_uses_injected_partition_function() -> None:
    coord = make(offsets_partition=lambda group: len(group))
    r = init(coord, "t")
    assert coord.add_offsets("t", PID, r.producer_epoch, "abc", 0) == (OFFSETS_TOPIC, 3)


def test_add_offsets_errors_raise(coord: TransactionCoordinator) -> None:
    with pytest.raises(InvalidProducerIdMappingError):
        coord.add_offsets("t", PID, 0, "g", 0)
    init(coord, "t")
    init(coord, "t")
    with pytest.raises(ProducerFencedError):
        coord.add_offsets("t", PID, 0, "g", 0)


# ------------------------------------------------------------------------------------------------
# EndTxn and markers.


@pytest.mark.parametrize("commit", [True, False])
def test_end_txn_prepares_and_completes(coord: TransactionCoordinator, commit: bool) -> None:
    r = ongoing(coord, now_ms=1)
    work = coord.end_txn("t", PID, r.producer_epoch, commit, 7)
    assert work == MarkerWork("t", PID, 0, 0, commit, (TP0, TP1))
    assert describe(coord).transaction_state == ("PrepareCommit" if commit else "PrepareAbort")
    assert coord.markers_written("t", 9) is True
    d = describe(coord)
    assert d.transaction_state == ("CompleteCommit" if commit else "CompleteAbort")
    assert d.topics == () and d.producer_epoch == 0
    records = coord.take_records()
    assert [s[3] for s in states(records)] == (
        [S.PREPARE_COMMIT, S.COMPLETE_COMMIT] if commit else [S.PREPARE_ABORT, S.COMPLETE_ABORT]
    )
    prepare, complete = (rec.decode_value(v) for _, v in records if v is not None)
    assert prepare.partitions == (("orders", (0, 1)),) and prepare.last_update_timestamp_ms == 7
    assert complete.partitions == () and complete.start_timestamp_ms == 1
    assert complete.last_update_timestamp_ms == 9


@pytest.mark.parametrize("commit", [True, False])
def test_end_txn_retries_as_kafka_answers_them(coord: TransactionCoordinator, commit: bool) -> None:
    r = ongoing(coord)
    e = r.producer_epoch
    coord.end_txn("t", PID, e, commit, 1)
    coord.take_records()
    with pytest.raises(ConcurrentTransactionsError):
        coord.end_txn("t", PID, e, commit, 2)  # same outcome while completing
    with pytest.raises(InvalidTxnStateError) as exc:
        coord.end_txn("t", PID, e, not commit, 2)  # opposite outcome while completing
    assert exc.value.code == 48
    coord.markers_written("t", 3)
    coord.take_records()
    assert coord.end_txn("t", PID, e, commit, 4) is None  # retry after completion: OK
    with pytest.raises(InvalidTxnStateError):
        coord.end_txn("t", PID, e, not commit, 4)
    assert coord.take_records() == []


def test_end_txn_without_transaction_is_invalid_txn_state(coord: TransactionCoordinator) -> None:
    r = init(coord, "t")
    coord.take_records()
    for commit in (True, False):
        with pytest.raises(InvalidTxnStateError):
            coord.end_txn("t", PID, r.producer_epoch, commit, 1)
    assert coord.take_records() == []
    assert describe(coord).transaction_state == "Empty"


def test_end_txn_unknown_id_wrong_producer_or_epoch(coord: TransactionCoordinator) -> None:
    with pytest.raises(InvalidProducerIdMappingError):
        coord.end_txn("t", PID, 0, True, 0)
    with pytest.raises(InvalidRequestError):
        coord.end_txn("", PID, 0, True, 0)
    ongoing(coord)
    with pytest.raises(InvalidProducerIdMappingError):
        coord.end_txn("t", PID + 1, 0, True, 0)
    with pytest.raises(ProducerFencedError):
        coord.end_txn("t", PID, 1, True, 0)
    with pytest.raises(ProducerFencedError):
        coord.end_txn("t", PID, -1, True, 0)
    assert describe(coord).transaction_state == "Ongoing"
    assert coord.take_records() == []


def test_transaction_after_complete_starts_fresh(coord: TransactionCoordinator) -> None:
    r = ongoing(coord, now_ms=1)
    coord.end_txn("t", PID, r.producer_epoch, True, 2)
    coord.markers_written("t", 3)
    assert coord.add_partitions("t", PID, r.producer_epoch, [("pay", 0)], 20) == {("pay", 0): None}
    d = describe(coord)
    assert d.transaction_start_time_ms == 20 and d.topics == (("pay", (0,)),)
    work = coord.end_txn("t", PID, r.producer_epoch, False, 21)
    assert work is not None and work.partitions == (("pay", 0),)


def test_end_txn_with_no_partitions_still_needs_markers_written(
    coord: TransactionCoordinator,
) -> None:
    r = init(coord, "t")
    assert coord.add_partitions("t", PID, r.producer_epoch, [], 1) == {}
    work = coord.end_txn("t", PID, r.producer_epoch, True, 2)
    assert work is not None and work.partitions == ()
    assert coord.markers_written("t", 3)
    assert describe(coord).transaction_state == "CompleteCommit"


def test_markers_written_without_prepare_is_a_no_op(coord: TransactionCoordinator) -> None:
    assert coord.markers_written("ghost", 0) is False
    r = ongoing(coord)
    assert coord.markers_written("t", 1) is False
    coord.end_txn("t", PID, r.producer_epoch, True, 2)
    assert coord.markers_written("t", 3) is True
    coord.take_records()
    assert coord.markers_written("t", 4) is False  # the same MarkerWork reported twice
    assert coord.take_records() == []


def test_marker_work_carries_the_coordinator_epoch() -> None:
    coord = make(coordinator_epoch=9)
    r = ongoing(coord)
    work = coord.end_txn("t", PID, r.producer_epoch, True, 1)
    assert work is not None and work.coordinator_epoch == 9


def test_verify_partitions_for_the_produce_path(coord: TransactionCoordinator) -> None:
    r = ongoing(coord)
    got = coord.verify_partitions("t", PID, r.producer_epoch, [TP0, ("other", 0)])
    assert got[TP0] is None and isinstance(got[("other", 0)], InvalidTxnStateError)
    assert isinstance(coord.verify_partitions("t", PID, 5, [TP0])[TP0], ProducerFencedError)
    assert isinstance(
        coord.verify_partitions("x", PID, 0, [TP0])[TP0], InvalidProducerIdMappingError
    )
    coord.end_txn("t", PID, r.producer_epoch, True, 1)
    assert isinstance(coord.verify_partitions("t", PID, 0, [TP0])[TP0], ConcurrentTransactionsError)
    coord.markers_written("t", 2)
    coord.take_records()
    assert isinstance(coord.verify_partitions("t", PID, 0, [TP0])[TP0], InvalidTxnStateError)
    assert coord.take_records() == []  # verifying changes nothing
    assert describe(coord).transaction_state == "CompleteCommit"


# ------------------------------------------------------------------------------------------------
# Timers.


def test_timeout_aborts_with_epoch_bump_strictly_after_deadline() -> None:
    coord = make()
    init(coord, "t", 0, timeout_ms=1000)
    coord.add_partitions("t", PID, 0, [TP0], 100)
    coord.take_records()
    assert coord.next_deadline_ms() == 1101
    assert coord.tick(1100) == []  # start + timeout < now is strict
    (work,) = coord.tick(1101)
    assert work == MarkerWork("t", PID, 1, 0, False, (TP0,))
    assert coord.tick(1200) == []  # already being aborted
    # The producer's EndTxn(commit) arrives late: fenced; its transaction is aborted.
    with pytest.raises(ProducerFencedError):
        coord.end_txn("t", PID, 0, True, 1102)
    assert isinstance(coord.add_partitions("t", PID, 0, [TP1], 1102)[TP1], ProducerFencedError)
    coord.markers_written("t", 1103)
    assert [s[2:] for s in states(coord.take_records())] == [
        (1, S.PREPARE_ABORT),
        (1, S.COMPLETE_ABORT),
    ]
    assert init(coord, "t", 1104) == InitResult(PID, 2)


def test_timeout_does_not_touch_prepared_or_empty_transactions() -> None:
    coord = make()
    init(coord, "idle", 0, timeout_ms=10)
    r = init(coord, "t", 0, timeout_ms=10)
    coord.add_partitions("t", PID + 1, r.producer_epoch, [TP0], 0)
    coord.end_txn("t", PID + 1, r.producer_epoch, True, 1)
    assert coord.tick(10_000) == []
    assert describe(coord).transaction_state == "PrepareCommit"
    assert describe(coord, "idle").transaction_state == "Empty"


def test_transactional_id_expires_after_idle_period() -> None:
    coord = make(TransactionCoordinatorConfig(transactional_id_expiration_ms=1000))
    r = ongoing(coord, now_ms=0)
    coord.end_txn("t", PID, r.producer_epoch, True, 10)
    coord.markers_written("t", 20)
    init(coord, "fresh", 500)
    coord.take_records()
    assert coord.next_deadline_ms() == 1020
    assert coord.tick(1019) == []
    assert coord.take_records() == []
    coord.tick(1020)
    assert coord.take_records() == [(rec.encode_key("t"), None)]
    assert coord.state_of("t") is None and coord.state_of("fresh") is S.EMPTY
    (d,) = coord.describe_transactions(["t"])
    assert d.error_code == TransactionalIdNotFoundError.code == 105
    assert isinstance(
        coord.add_partitions("t", PID, 0, [TP0], 1021)[TP0], InvalidProducerIdMappingError
    )
    assert init(coord, "t", 1022) == InitResult(PID + 2, 0)


def test_ids_with_markers_pending_or_open_transactions_never_expire() -> None:
    coord = make(TransactionCoordinatorConfig(transactional_id_expiration_ms=10))
    r = ongoing(coord, "a")
    coord.end_txn("a", r.producer_id, r.producer_epoch, True, 0)
    b = init(coord, "b", 0, timeout_ms=900000)
    coord.add_partitions("b", b.producer_id, b.producer_epoch, [TP0], 0)
    coord.take_records()
    coord.tick(500_000)
    assert coord.take_records() == []
    assert coord.state_of("a") is S.PREPARE_COMMIT and coord.state_of("b") is S.ONGOING


# ------------------------------------------------------------------------------------------------
# DescribeTransactions / ListTransactions / config / routing.


def test_describe_transactions_fields_and_unknown(coord: TransactionCoordinator) -> None:
    ongoing(coord, now_ms=77)
    d, unknown = coord.describe_transactions(["t", "ghost"])
    assert (d.error_code, d.transaction_state, d.transaction_timeout_ms) == (0, "Ongoing", 60000)
    assert (d.producer_id, d.producer_epoch, d.transaction_start_time_ms) == (PID, 0, 77)
    assert d.topics == (("orders", (0, 1)),)
    assert unknown.transactional_id == "ghost" and unknown.error_code == 105


def test_list_transactions_filters(coord: TransactionCoordinator) -> None:
    ongoing(coord, "a", now_ms=0)
    init(coord, "b", 0)
    ongoing(coord, "c", now_ms=50)
    everything = coord.list_transactions()
    assert [(t.transactional_id, t.transaction_state) for t in everything.transaction_states] == [
        ("a", "Ongoing"),
        ("b", "Empty"),
        ("c", "Ongoing"),
    ]
    assert everything.unknown_state_filters == ()
    only = coord.list_transactions(state_filters=["Empty", "Bogus"])
    assert [t.transactional_id for t in only.transaction_states] == ["b"]
    assert only.unknown_state_filters == ("Bogus",)
    assert coord.list_transactions(state_filters=["Bogus"]).transaction_states == ()
    by_pid = coord.list_transactions(producer_id_filters=[PID + 2, 999])
    assert [t.producer_id for t in by_pid.transaction_states] == [PID + 2]
    long_running = coord.list_transactions(
        state_filters=["Ongoing"], duration_filter_ms=60, now_ms=100
    )
    assert [t.transactional_id for t in long_running.transaction_states] == ["a"]


def test_state_names_are_kafkas() -> None:
    assert [s.kafka_name for s in S] == [
        "Empty",
        "Ongoing",
        "PrepareCommit",
        "PrepareAbort",
        "CompleteCommit",
        "CompleteAbort",
        "Dead",
        "PrepareEpochFence",
    ]
    assert S.from_kafka_name("PrepareEpochFence") is S.PREPARE_EPOCH_FENCE
    assert S.from_kafka_name("ongoing") is None


def test_config_from_kafka_names() -> None:
    cfg = TransactionCoordinatorConfig.from_mapping(
        {"transaction.max.timeout.ms": "1000"}, transactional_id_expiration_ms=5
    )
    assert cfg.transaction_max_timeout_ms == 1000 and cfg.transactional_id_expiration_ms == 5
    assert TransactionCoordinatorConfig().transaction_max_timeout_ms == 900000
    assert TransactionCoordinatorConfig().transactional_id_expiration_ms == 604800000
    with pytest.raises(ConfigError):
        TransactionCoordinatorConfig.from_mapping({"transaction.bogus": 1})
    with pytest.raises(ConfigError):
        TransactionCoordinatorConfig.from_mapping({"transaction.max.timeout.ms": "x"})
    with pytest.raises(ConfigError):
        TransactionCoordinatorConfig.from_mapping({"transaction.max.timeout.ms": 0})


def test_take_records_by_partition_routes_by_transactional_id(
    coord: TransactionCoordinator,
) -> None:
    init(coord, "a")
    init(coord, "ab")
    init(coord, "a")
    routed = coord.take_records_by_partition()
    assert sorted(routed) == sorted({97 % 50, 3105 % 50})
    assert [rec.decode_key(k) for k, _ in routed[97 % 50]] == [rec.TransactionLogKey("a")] * 2
    assert coord.take_records() == []


def test_init_pending_type_is_a_pending(coord: TransactionCoordinator) -> None:
    ongoing(coord)
    p = coord.init_producer_id("t", 60000, 1)
    assert isinstance(p, InitPending)
    with pytest.raises(RuntimeError):
        p.result()


def test_kip360_init_while_ongoing_fences_then_answers_producer_fenced(
    coord: TransactionCoordinator,
) -> None:
    # Kafka: the fence bumps the epoch with no last epoch, so the retry of an InitProducerId
    # that carried the old epoch is PRODUCER_FENCED.
    ongoing(coord)
    p = pending(coord, "t", 1, producer_id=PID, producer_epoch=0)
    assert p.markers is not None and p.markers.producer_epoch == 1
    coord.markers_written("t", 2)
    assert isinstance(p.exception(), ProducerFencedError)
    assert describe(coord).producer_epoch == 1
