"""The embedded transactional producer (issue 5 part 4; kafka-spec.md d), confluent-kafka shaped.

Goal: commit_transaction() makes a transaction's records visible to read_committed consumers
all at once, abort_transaction() hides them (read_uncommitted still sees them), a newer
instance fences an older one, the transaction timeout and a broker restart end a forgotten
transaction, calls in the wrong order fail with librdkafka's error and change nothing, and a
consume-transform-produce loop that crashes mid-transaction delivers every input exactly once.
Method: a real Broker on tmp_path; producers built with broker.producer({"transactional.id":
...}); outcomes read back with consumers assigned at both isolation levels and compared with
the records each transaction wrote; a crash is simulated by detaching the producer from the
broker (so close() cannot abort) or by a child process that exits with os._exit mid-transaction.
"""

from __future__ import annotations

import inspect
import subprocess
import sys
import textwrap
import time
from typing import Any

import pytest

from headwater.client import Broker, TopicPartition
from headwater.client.producer import (
    ERR__FENCED,
    ERR__NOT_CONFIGURED,
    ERR__PURGE_QUEUE,
    ERR__STATE,
    KafkaException,
)
from headwater.coordinator.txn import TransactionState

# TxnOffsetCommit exists in the group coordinator, which queues transactional offset batches
# that only take_batches_by_group() drains; until the broker appends them to __consumer_offsets
# these tests cannot pass (and are not run: the broker's timer would fail on every tick).
BROKER_PERSISTS_TXN_OFFSETS = "take_batches_by_group" in inspect.getsource(Broker)
needs_txn_offsets = pytest.mark.xfail(
    not BROKER_PERSISTS_TXN_OFFSETS,
    run=False,
    strict=True,
    reason="Broker does not yet append TxnOffsetCommit's transactional batches (take_batches_by_group)",
)


def txn_producer(broker: Any, txn_id: str = "tx", **config: Any) -> Any:
    p = broker.producer({"transactional.id": txn_id, "linger.ms": 1000, **config})
    p.init_transactions(5.0)
    return p


def read_all(broker: Any, topic: str, isolation: str) -> list[bytes]:
    """Every data record of every partition of `topic` at `isolation`, partition by partition."""
    n = broker.describe_topic(topic).partitions
    c = broker.consumer({"group.id": None, "isolation.level": isolation, "enable.partition.eof": False})
    c.assign([TopicPartition(topic, p, 0) for p in range(n)])
    out: list[Any] = []
    while True:
        got = c.consume(10000, 0)
        if not got:
            break
        out += [m for m in got if m.error() is None]
    c.close()
    out.sort(key=lambda m: (m.partition(), m.offset()))
    return [m.value() for m in out]


def lso_and_end(broker: Any, topic: str, partition: int = 0) -> tuple[int, int]:
    plog = broker.get_log(topic, partition)
    return plog.last_stable_offset, plog.log_end_offset


def error_of(exc_info: Any) -> Any:
    return exc_info.value.args[0]


def wait_until(predicate: Any, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.01)


# ---------------------------------------------------------------------------------- outcomes


def test_commit_is_visible_to_read_committed_and_abort_is_not(broker) -> None:
    broker.create_topic("t", 2)
    p = txn_producer(broker)
    p.begin_transaction()
    for i in range(6):
        p.produce("t", b"c%d" % i, partition=i % 2)
    p.commit_transaction()
    p.begin_transaction()
    for i in range(4):
        p.produce("t", b"a%d" % i, partition=i % 2)
    p.flush()  # sent: the records are in the logs, then aborted
    p.produce("t", b"unsent", partition=0)
    p.abort_transaction()
    p.begin_transaction()
    p.produce_batch("t", [b"b0", b"b1"], partition=1)
    p.commit_transaction()

    committed = read_all(broker, "t", "read_committed")
    assert committed == [b"c0", b"c2", b"c4", b"c1", b"c3", b"c5", b"b0", b"b1"]
    uncommitted = read_all(broker, "t", "read_uncommitted")
    assert sorted(uncommitted) == sorted(committed + [b"a0", b"a1", b"a2", b"a3"])
    assert b"unsent" not in uncommitted  # dropped by abort before it was sent
    for part in (0, 1):
        lso, end = lso_and_end(broker, "t", part)
        assert lso == end


def test_read_committed_stops_at_lso_while_open_and_continues_after_commit(broker) -> None:
    broker.create_topic("t", 1)
    p = txn_producer(broker)
    p.begin_transaction()
    p.produce("t", b"first")
    p.commit_transaction()
    p.begin_transaction()
    for i in range(3):
        p.produce("t", b"open%d" % i)
    p.flush()
    lso, end = lso_and_end(broker, "t")
    assert lso < end  # the open transaction pins the LSO at its first offset
    c = broker.consumer({"group.id": None, "isolation.level": "read_committed", "enable.partition.eof": False})
    c.assign([TopicPartition("t", 0, 0)])
    got = [m.value() for m in c.consume(100, 0.2) if m.error() is None]
    assert got == [b"first"]
    assert [m for m in c.consume(100, 0.1) if m.error() is None] == []
    assert read_all(broker, "t", "read_uncommitted") == [b"first", b"open0", b"open1", b"open2"]
    p.commit_transaction()
    later: list[bytes] = []
    deadline = time.monotonic() + 5
    while len(later) < 3 and time.monotonic() < deadline:
        later += [m.value() for m in c.consume(100, 0.05) if m.error() is None]
    assert later == [b"open0", b"open1", b"open2"]
    c.close()


def test_empty_transactions_commit_and_abort_locally(broker) -> None:
    p = txn_producer(broker)
    p.begin_transaction()
    p.commit_transaction()
    p.begin_transaction()
    p.abort_transaction()
    # Nothing reached the coordinator: the id is still Empty after InitProducerId.
    assert broker.txn_coordinator.state_of("tx") is TransactionState.EMPTY


def test_abort_purges_unsent_records_with_purge_queue_reports(broker) -> None:
    broker.create_topic("t", 1)
    p = txn_producer(broker)
    reports: list[Any] = []
    p.begin_transaction()
    for i in range(3):
        p.produce("t", b"v%d" % i, on_delivery=lambda err, msg: reports.append((err, msg.value())))
    p.abort_transaction()
    assert [(e.code(), v) for e, v in reports] == [(ERR__PURGE_QUEUE, b"v0"), (ERR__PURGE_QUEUE, b"v1"), (ERR__PURGE_QUEUE, b"v2")]
    assert lso_and_end(broker, "t") == (0, 0)
    assert len(p) == 0


# ----------------------------------------------------------------------------------- fencing


def test_newer_instance_fences_the_older_and_aborts_its_transaction(broker) -> None:
    broker.create_topic("t", 2)
    old = txn_producer(broker)
    old.begin_transaction()
    old.produce("t", b"zombie-sent", partition=0)
    old.flush()
    new = txn_producer(broker)  # InitProducerId: aborts old's open transaction, bumps the epoch
    assert new.producer_id == old.producer_id
    assert new.producer_epoch > old.producer_epoch
    assert read_all(broker, "t", "read_committed") == []
    assert read_all(broker, "t", "read_uncommitted") == [b"zombie-sent"]
    assert lso_and_end(broker, "t")[0] == lso_and_end(broker, "t")[1]

    # The zombie's writes are refused: a sent batch to a partition already in the (aborted)
    # transaction fails on the partition's epoch, a new partition on AddPartitionsToTxn.
    reports: list[Any] = []
    old.produce("t", b"zombie-late", partition=0, on_delivery=lambda err, msg: reports.append(err))
    old.flush()
    assert len(reports) == 1 and reports[0].code() == ERR__FENCED and reports[0].fatal()
    with pytest.raises(KafkaException) as info:
        old.commit_transaction()
    assert error_of(info).code() == ERR__FENCED
    assert error_of(info).fatal() and not error_of(info).txn_requires_abort()
    with pytest.raises(KafkaException) as info:
        old.begin_transaction()
    assert error_of(info).fatal()

    new.begin_transaction()
    new.produce("t", b"fresh", partition=1)
    new.commit_transaction()
    assert read_all(broker, "t", "read_committed") == [b"fresh"]


def test_zombie_commit_without_new_partitions_is_fenced(broker) -> None:
    broker.create_topic("t", 1)
    old = txn_producer(broker)
    old.begin_transaction()
    old.produce("t", b"x")
    old.flush()
    txn_producer(broker)
    with pytest.raises(KafkaException) as info:
        old.commit_transaction()
    assert error_of(info).code() == ERR__FENCED and error_of(info).fatal()
    with pytest.raises(KafkaException) as info:
        old.produce("t", b"y")
    assert error_of(info).fatal()
    assert read_all(broker, "t", "read_committed") == []


def test_transaction_timeout_aborts_and_fences_the_producer(make_broker) -> None:
    broker = make_broker()
    broker.create_topic("t", 1)
    p = txn_producer(broker, **{"transaction.timeout.ms": 200})
    p.begin_transaction()
    p.produce("t", b"slow")
    p.flush()
    wait_until(lambda: broker.txn_coordinator.state_of("tx") is TransactionState.COMPLETE_ABORT)
    lso, end = lso_and_end(broker, "t")
    assert lso == end
    assert read_all(broker, "t", "read_committed") == []
    with pytest.raises(KafkaException) as info:
        p.commit_transaction()
    assert error_of(info).code() == ERR__FENCED and error_of(info).fatal()


# ------------------------------------------------------------------------- failed records


def test_failed_record_makes_the_transaction_abortable(broker) -> None:
    broker.create_topic("t", 1, {"max.message.bytes": 2000})
    p = txn_producer(broker)
    reports: list[Any] = []
    p.begin_transaction()
    p.produce("t", b"good")
    p.flush()
    p.produce("t", b"x" * 5000, on_delivery=lambda err, msg: reports.append(err))
    with pytest.raises(KafkaException) as info:
        p.commit_transaction()
    err = error_of(info)
    assert err.txn_requires_abort() and not err.fatal()
    assert reports and reports[0] is not None and reports[0].code() == 10  # MSG_SIZE_TOO_LARGE
    # While abortable: produce and begin are refused, commit repeats the error.
    with pytest.raises(KafkaException) as info:
        p.produce("t", b"more")
    assert error_of(info).code() == ERR__STATE
    with pytest.raises(KafkaException) as info:
        p.begin_transaction()
    assert error_of(info).txn_requires_abort()
    old_epoch = p.producer_epoch
    p.abort_transaction()
    assert p.producer_epoch == old_epoch + 1  # KIP-360 epoch bump after an abortable error
    p.begin_transaction()
    p.produce("t", b"after")
    p.commit_transaction()
    assert read_all(broker, "t", "read_committed") == [b"after"]
    assert read_all(broker, "t", "read_uncommitted") == [b"good", b"after"]


# --------------------------------------------------------------------------- wrong order


def test_calls_in_the_wrong_order_raise_state_errors_and_change_nothing(broker) -> None:
    broker.create_topic("t", 1)
    plain = broker.producer()
    with pytest.raises(KafkaException) as info:
        plain.init_transactions()
    assert error_of(info).code() == ERR__NOT_CONFIGURED
    plain.close()

    p = broker.producer({"transactional.id": "tx", "linger.ms": 1000})
    for call in (p.begin_transaction, p.commit_transaction, p.abort_transaction, lambda: p.produce("t", b"x"), lambda: p.produce_batch("t", [b"x"])):
        with pytest.raises(KafkaException) as info:
            call()
        assert error_of(info).code() == ERR__STATE
        assert not error_of(info).fatal() and not error_of(info).txn_requires_abort()
    assert broker.txn_coordinator.state_of("tx") is None  # nothing reached the coordinator
    p.init_transactions()
    with pytest.raises(KafkaException) as info:
        p.init_transactions()
    assert error_of(info).code() == ERR__STATE
    for call in (p.commit_transaction, p.abort_transaction, lambda: p.send_offsets_to_transaction([TopicPartition("t", 0, 1)], "g")):
        with pytest.raises(KafkaException) as info:
            call()
        assert error_of(info).code() == ERR__STATE
    p.begin_transaction()
    p.produce("t", b"kept")
    with pytest.raises(KafkaException) as info:
        p.begin_transaction()
    assert error_of(info).code() == ERR__STATE
    with pytest.raises(KafkaException) as info:
        p.init_transactions()
    assert error_of(info).code() == ERR__STATE
    p.commit_transaction()  # the open transaction survived the bad calls
    assert read_all(broker, "t", "read_committed") == [b"kept"]
    # After the commit, produce() of a known topic (the C fast path) is refused again.
    with pytest.raises(KafkaException) as info:
        p.produce("t", b"late")
    assert error_of(info).code() == ERR__STATE
    assert len(p) == 0


def test_lingering_batches_sent_by_the_timer_belong_to_the_transaction(broker) -> None:
    broker.create_topic("t", 1)
    p = txn_producer(broker, **{"linger.ms": 1})
    p.begin_transaction()
    for i in range(5):
        p.produce("t", b"v%d" % i)
    wait_until(lambda: lso_and_end(broker, "t")[1] == 5)  # the broker's timer sent them
    assert read_all(broker, "t", "read_committed") == []
    p.commit_transaction()
    assert read_all(broker, "t", "read_committed") == [b"v%d" % i for i in range(5)]


def test_transaction_timeout_over_the_broker_maximum_is_fatal(make_broker) -> None:
    broker = make_broker({"transaction.max.timeout.ms": 1000})
    p = broker.producer({"transactional.id": "tx", "transaction.timeout.ms": 5000})
    with pytest.raises(KafkaException) as info:
        p.init_transactions()
    assert error_of(info).code() == 50 and error_of(info).fatal()  # INVALID_TRANSACTION_TIMEOUT


# ---------------------------------------------------------------------- close and restart


def test_close_with_an_open_transaction_aborts_it(make_broker, tmp_path) -> None:
    broker = make_broker()
    broker.create_topic("t", 1)
    p = txn_producer(broker)
    p.begin_transaction()
    p.produce("t", b"sent")
    p.flush()
    p.produce("t", b"unsent")
    broker.close()  # closes the producer: the transaction is aborted, not left open
    broker = make_broker()
    assert broker.txn_coordinator.state_of("tx") is TransactionState.COMPLETE_ABORT
    assert read_all(broker, "t", "read_uncommitted") == [b"sent"]
    assert read_all(broker, "t", "read_committed") == []
    lso, end = lso_and_end(broker, "t")
    assert lso == end


CRASH_CHILD = textwrap.dedent(
    """
    import os, sys, time
    from headwater.client import Broker
    # argv[3]: "tick" lets the timer write the lazy Ongoing record before the crash; "none"
    # keeps the timer away, so the crash loses it.
    interval = 5 if sys.argv[3] == "tick" else 600000
    b = Broker(sys.argv[1], {"group.initial.rebalance.delay.ms": 0, "timer.interval.ms": interval})
    b.create_topic("t", 2)
    p = b.producer({"transactional.id": "tx", "transaction.timeout.ms": int(sys.argv[2]), "linger.ms": 1000})
    p.init_transactions()
    p.begin_transaction()
    p.produce("t", b"committed", partition=0)
    p.commit_transaction()
    p.begin_transaction()
    for i in range(4):
        p.produce("t", b"lost%d" % i, partition=i % 2)
    p.flush()
    if sys.argv[3] == "tick":
        time.sleep(0.3)  # the coordinator's tick (every 50 ms) appends the Ongoing record
    os._exit(0)  # a crash: no close, no abort, no flush of anything else
    """
)


@pytest.mark.parametrize("how", ["timeout", "new_instance", "hanging"])
def test_crash_with_an_open_transaction_ends_it_after_reopen(make_broker, tmp_path, how) -> None:
    """An open transaction ends after a crash: its Ongoing record (written by the timer's
    tick) survived, so the timeout or the next instance aborts it; or it did not, and the
    broker aborts the hanging transaction as it opens."""
    data = tmp_path / "data"
    # "timeout": long enough that neither the child (it sleeps 0.3 s for the tick, during
    # which its own coordinator step would end an expired transaction) nor the reopened
    # broker before the first assertion can see it expire; short enough to wait out below.
    timeout_ms = 2000 if how == "timeout" else 60000
    args = [str(data), str(timeout_ms), "none" if how == "hanging" else "tick"]
    subprocess.run([sys.executable, "-c", CRASH_CHILD, *args], check=True, timeout=60)
    broker = make_broker()
    if how == "hanging":
        assert broker.txn_coordinator.state_of("tx") is TransactionState.EMPTY  # Init's record
        for part in (0, 1):
            lso, end = lso_and_end(broker, "t", part)
            assert lso == end  # aborted as the broker opened
    else:
        assert broker.txn_coordinator.state_of("tx") is TransactionState.ONGOING
    assert read_all(broker, "t", "read_committed") == [b"committed"]
    if how == "timeout":
        # The start timestamp survived the restart: the broker's timer aborts it.
        wait_until(lambda: broker.txn_coordinator.state_of("tx") is TransactionState.COMPLETE_ABORT)
    else:
        p = txn_producer(broker)  # fences the crashed instance and aborts its transaction
        assert broker.txn_coordinator.state_of("tx") is TransactionState.EMPTY
        p.begin_transaction()
        p.produce("t", b"resumed", partition=1)
        p.commit_transaction()
    expected = [b"committed"] + ([b"resumed"] if how != "timeout" else [])
    assert read_all(broker, "t", "read_committed") == expected
    assert sorted(read_all(broker, "t", "read_uncommitted")) == sorted(expected + [b"lost0", b"lost1", b"lost2", b"lost3"])
    for part in (0, 1):
        lso, end = lso_and_end(broker, "t", part)
        assert lso == end


TWO_PARTITION_COMMIT_CHILD = textwrap.dedent(
    """
    import os, sys
    from headwater.client import Broker
    # The timer's tick would write the lazy CompleteCommit record within 50 ms: keep it away.
    b = Broker(sys.argv[1], {"timer.interval.ms": 600000})
    b.create_topic("t", 2)
    p = b.producer({"transactional.id": "tx", "linger.ms": 1000})
    p.init_transactions()
    p.begin_transaction()
    p.produce("t", b"a", partition=0)
    p.produce("t", b"b", partition=1)
    p.commit_transaction()  # two-phase: PrepareCommit durable, CompleteCommit lazy
    """
)
COMMIT_THEN_CRASH_CHILD = TWO_PARTITION_COMMIT_CHILD + "os._exit(0)  # a crash right after the commit returned\n"


def txn_state_records(broker: Any) -> list[Any]:
    """The decoded values of __transaction_state, in log order."""
    from headwater.coordinator.txn import records as rec

    return [rec.decode_value(v) for _, v in broker._read_internal_records("__transaction_state") if v is not None]


def test_commit_then_crash_before_the_complete_record_completes_again(make_broker, tmp_path) -> None:
    """The CompleteCommit record waits for the next coordinator record (one append per
    transaction fewer): a crash before it leaves PrepareCommit last in __transaction_state, and
    recovery writes the markers again. The committed records are visible once, and a second
    COMMIT marker in each partition changes nothing."""
    data = tmp_path / "data"
    subprocess.run([sys.executable, "-c", COMMIT_THEN_CRASH_CHILD, str(data)], check=True, timeout=60)
    broker = make_broker()
    statuses = [v.transaction_status for v in txn_state_records(broker)]
    assert statuses[-2:] == [int(TransactionState.PREPARE_COMMIT), int(TransactionState.COMPLETE_COMMIT)]
    assert int(TransactionState.COMPLETE_COMMIT) not in statuses[:-1]  # the crash lost the deferred one
    assert broker.txn_coordinator.state_of("tx") is TransactionState.COMPLETE_COMMIT
    assert sorted(read_all(broker, "t", "read_committed")) == [b"a", b"b"]
    for part in (0, 1):
        lso, end = lso_and_end(broker, "t", part)
        assert (lso, end) == (3, 3)  # the record, its marker, the marker written again
    p = txn_producer(broker)
    p.begin_transaction()
    p.produce("t", b"c", partition=0)
    p.commit_transaction()
    assert sorted(read_all(broker, "t", "read_committed")) == [b"a", b"b", b"c"]


def test_two_phase_commits_write_one_record_each_and_close_writes_the_last(make_broker) -> None:
    """A commit over two partitions writes its PrepareCommit (durable before the markers). The
    CompleteCommit after it is lazy, and __transaction_state is compacted: each append holds
    one record per id, its latest, so the next transaction's Ongoing replaces it; that Ongoing
    is written at once (recovery must not take the PrepareCommit for the last word while the
    next transaction's data is in the partitions). Close writes the last CompleteCommit."""
    broker = make_broker({"timer.interval.ms": 600000})  # no tick: the calls alone decide
    broker.create_topic("t", 2)
    p = txn_producer(broker)
    for i in range(3):
        p.begin_transaction()
        p.produce("t", b"%d" % i, partition=0)
        p.produce("t", b"%d" % i, partition=1)
        p.commit_transaction()
    broker.close()
    broker = make_broker()
    statuses = [v.transaction_status for v in txn_state_records(broker)]
    empty, ongoing, prepare, complete = (int(TransactionState.EMPTY), int(TransactionState.ONGOING), int(TransactionState.PREPARE_COMMIT), int(TransactionState.COMPLETE_COMMIT))
    assert statuses == [empty, prepare, ongoing, prepare, ongoing, prepare, complete]
    assert broker.txn_coordinator.state_of("tx") is TransactionState.COMPLETE_COMMIT
    assert read_all(broker, "t", "read_committed") == [b"0", b"1", b"2", b"0", b"1", b"2"]


TWO_PHASE_THEN_CRASH_CHILD = TWO_PARTITION_COMMIT_CHILD + textwrap.dedent(
    """
    p.begin_transaction()
    p.produce("t", b"open0", partition=0)
    p.produce("t", b"open1", partition=1)
    p.flush()
    os._exit(0)
    """
)


def test_crash_in_the_transaction_after_a_two_phase_commit_does_not_commit_it(make_broker, tmp_path) -> None:
    """If the id's last record were still the PrepareCommit, recovery would write its COMMIT
    markers again, after the open transaction's data, and commit that too. The open
    transaction's Ongoing record is written before its data, so it is aborted instead."""
    data = tmp_path / "data"
    subprocess.run([sys.executable, "-c", TWO_PHASE_THEN_CRASH_CHILD, str(data)], check=True, timeout=60)
    broker = make_broker()
    assert broker.txn_coordinator.state_of("tx") is TransactionState.ONGOING
    assert read_all(broker, "t", "read_committed") == [b"a", b"b"]
    txn_producer(broker)  # the next instance aborts the open transaction
    assert read_all(broker, "t", "read_committed") == [b"a", b"b"]
    assert read_all(broker, "t", "read_uncommitted") == [b"a", b"open0", b"b", b"open1"]


def test_one_partition_commit_is_one_phase(make_broker) -> None:
    """One participant: its COMMIT marker is the decision; no PrepareCommit record, and the
    lazy Ongoing and CompleteCommit records wait for a record that must be durable (here the
    abort's PrepareAbort, which replaces them: one record per id and append)."""
    broker = make_broker({"timer.interval.ms": 600000})
    broker.create_topic("t", 2)
    p = txn_producer(broker)
    for i in range(3):
        p.begin_transaction()
        p.produce("t", b"%d" % i, partition=1)
        p.commit_transaction()
    p.begin_transaction()
    p.produce("t", b"aborted", partition=1)
    p.flush()
    p.abort_transaction()  # aborts keep their PrepareAbort record
    broker.close()
    broker = make_broker()
    statuses = [v.transaction_status for v in txn_state_records(broker)]
    empty = int(TransactionState.EMPTY)
    prepare_abort, complete_abort = int(TransactionState.PREPARE_ABORT), int(TransactionState.COMPLETE_ABORT)
    assert statuses == [empty, prepare_abort, complete_abort]
    assert read_all(broker, "t", "read_committed") == [b"0", b"1", b"2"]


ONE_PHASE_COMMIT_THEN_CRASH_CHILD = textwrap.dedent(
    """
    import os, sys
    from headwater.client import Broker
    b = Broker(sys.argv[1], {"timer.interval.ms": 600000})
    b.create_topic("t", 1)
    p = b.producer({"transactional.id": "tx", "linger.ms": 1000, "transaction.timeout.ms": 1000})
    p.init_transactions()
    p.begin_transaction()
    p.produce("t", b"a")
    p.produce("t", b"b")
    p.flush()
    with b._lock:
        b._persist_txn_records_locked()  # what the timer's tick does: the lazy Ongoing record
    p.commit_transaction()
    os._exit(0)  # a crash right after the commit returned: Ongoing is the id's last record
    """
)


def test_one_phase_commit_then_crash_stays_committed(make_broker, tmp_path) -> None:
    """A one-phase commit leaves Ongoing last in __transaction_state; recovery aborts it after
    the timeout, and that ABORT marker finds no open transaction: the records stay committed."""
    data = tmp_path / "data"
    subprocess.run([sys.executable, "-c", ONE_PHASE_COMMIT_THEN_CRASH_CHILD, str(data)], check=True, timeout=60)
    broker = make_broker()
    statuses = [v.transaction_status for v in txn_state_records(broker)]
    assert statuses[-1] == int(TransactionState.ONGOING)
    assert lso_and_end(broker, "t") == (3, 3)  # two records and the COMMIT marker
    assert read_all(broker, "t", "read_committed") == [b"a", b"b"]
    deadline = time.monotonic() + 20
    while broker.txn_coordinator.state_of("tx") is not TransactionState.COMPLETE_ABORT:
        assert time.monotonic() < deadline, broker.txn_coordinator.state_of("tx")
        time.sleep(0.05)
    assert read_all(broker, "t", "read_committed") == [b"a", b"b"]
    plog = broker.get_log("t", 0)
    assert plog.aborted_transactions(0, plog.log_end_offset) == []
    assert lso_and_end(broker, "t") == (4, 4)  # the no-op ABORT marker


def test_hanging_transaction_is_aborted_on_open(make_broker) -> None:
    """Transactional data whose Ongoing record was lost (a power loss: the record rides on the
    next fsync) is aborted when the broker opens, so the last stable offset moves on."""
    broker = make_broker()
    broker.create_topic("t", 1)
    broker.get_log("t", 0).append([b"lost"], producer_id=4242, producer_epoch=3, base_sequence=0, is_transactional=True)
    assert lso_and_end(broker, "t") == (0, 1)
    broker.close()
    broker = make_broker()
    assert lso_and_end(broker, "t") == (2, 2)
    assert read_all(broker, "t", "read_committed") == []
    assert read_all(broker, "t", "read_uncommitted") == [b"lost"]
    plog = broker.get_log("t", 0)
    assert [(a.producer_id, a.first_offset) for a in plog.aborted_txn_entries(0, 2)] == [(4242, 0)]


def test_open_transaction_known_to_the_coordinator_is_not_aborted_on_open(make_broker) -> None:
    broker = make_broker({"transaction.max.timeout.ms": 900000})
    broker.create_topic("t", 1)
    p = txn_producer(broker)
    p.begin_transaction()
    p.produce("t", b"open")
    p.flush()
    broker._unregister_producer(p)  # a crash: close() does not abort it
    broker.close()
    broker = make_broker()
    assert lso_and_end(broker, "t") == (0, 1)  # still open: the timeout (60 s) ends it
    assert broker.txn_coordinator.state_of("tx") is TransactionState.ONGOING


def test_batch_policy_fsyncs_a_transaction_once_at_commit(make_broker) -> None:
    """flush.policy=batch: a transactional batch is not fsync'd on its own; the one-phase COMMIT
    marker's fsync covers it. Two partitions: both are fsync'd before the PrepareCommit."""
    broker = make_broker({"flush.policy": "batch"})
    broker.create_topic("t", 2)
    p = txn_producer(broker)
    seg = lambda part: broker.get_log("t", part).segments[-1].log  # noqa: E731
    p.begin_transaction()
    p.produce("t", b"x" * 100, partition=0)
    p.flush()
    assert seg(0).synced < seg(0).size  # appended, not yet durable
    p.commit_transaction()
    assert seg(0).synced == seg(0).size
    p.begin_transaction()
    p.produce("t", b"y" * 100, partition=0)
    p.produce("t", b"z" * 100, partition=1)
    p.flush()
    assert seg(0).synced < seg(0).size and seg(1).synced < seg(1).size
    order: list[str] = []
    for part in (0, 1):
        plog = broker.get_log("t", part)
        orig = plog.sync_transactional
        plog.sync_transactional = lambda orig=orig, part=part: (order.append(f"sync {part}"), orig())[1]  # type: ignore[method-assign]
    tlog = broker.get_log("__transaction_state", 0)
    orig_append = tlog.append_coordinator_records

    def spy(keys, values, *, sync=True):  # type: ignore[no-untyped-def]
        order.append(f"state sync={sync}")
        return orig_append(keys, values, sync=sync)

    tlog.append_coordinator_records = spy  # type: ignore[method-assign]
    p.commit_transaction()
    # Data durable, then PrepareCommit. A lazy record (sync=False: an Ongoing nobody waits on)
    # may be written at any time, by the broker timer's step too: not part of the order.
    durable = [e for e in order if e != "state sync=False"]
    assert durable[:3] == ["sync 0", "sync 1", "state sync=True"]
    assert seg(0).synced == seg(0).size and seg(1).synced == seg(1).size
    assert read_all(broker, "t", "read_committed") == [b"x" * 100, b"y" * 100, b"z" * 100]


# ------------------------------------------------------------- consume-transform-produce


def group_metadata(consumer: Any) -> Any:
    """The consumer's consumer_group_metadata() (confluent-kafka's shape)."""
    meta = consumer.consumer_group_metadata()
    assert meta.group_id == consumer._group
    return meta


def detach(broker: Any, producer: Any, consumer: Any) -> None:
    """A crash of the application: neither close() runs (no abort, no LeaveGroup)."""
    broker._unregister_producer(producer)
    broker._unregister_consumer(consumer)


@needs_txn_offsets
def test_consume_transform_produce_with_crashes_is_exactly_once(broker) -> None:
    broker.create_topic("in", 2)
    broker.create_topic("out", 2)
    keys = [b"k%d" % (i % 7) for i in range(300)]
    src = broker.producer({"linger.ms": 0})
    for i, k in enumerate(keys):
        src.produce("in", b"%d" % i, key=k)
    src.flush()

    def start() -> tuple[Any, Any]:
        c = broker.consumer({
            "group.id": "etl", "auto.offset.reset": "earliest", "enable.auto.commit": False,
            "isolation.level": "read_committed", "session.timeout.ms": 300, "heartbeat.interval.ms": 20,
        })
        c.subscribe(["in"])
        return c, txn_producer(broker, "etl-0")

    consumer, producer = start()
    rounds = 0
    done = 0
    deadline = time.monotonic() + 20
    while done < len(keys) and time.monotonic() < deadline:
        msgs = [m for m in consumer.consume(37, 0.05) if m.error() is None]
        if not msgs:
            continue
        rounds += 1
        producer.begin_transaction()
        for m in msgs:
            producer.produce("out", b"out-" + m.value(), key=m.key())
        positions = {}
        for m in msgs:
            positions[(m.topic(), m.partition())] = m.offset() + 1
        producer.send_offsets_to_transaction([TopicPartition(t, p, o) for (t, p), o in positions.items()], group_metadata(consumer))
        if rounds % 3 == 0:
            producer.flush()  # the records are in the log, then the process "dies"
            detach(broker, producer, consumer)
            consumer, producer = start()
            continue
        producer.commit_transaction()
        done = len(read_all(broker, "out", "read_committed"))
    consumer.close()
    producer.close()

    out = read_all(broker, "out", "read_committed")
    assert sorted(out) == sorted(b"out-%d" % i for i in range(len(keys)))  # each exactly once
    assert rounds >= 6
    # The crashed rounds did write their records: read_uncommitted sees those duplicates.
    assert len(read_all(broker, "out", "read_uncommitted")) > len(out)
    # Per-key order: within a key, outputs appear in input order.
    by_key: dict[int, list[int]] = {}
    for v in out:
        i = int(v[4:])
        by_key.setdefault(i % 7, []).append(i)
    for seq in by_key.values():
        assert seq == sorted(seq)


@needs_txn_offsets
def test_offsets_sent_in_an_aborted_transaction_are_not_committed(broker) -> None:
    broker.create_topic("in", 1)
    c = broker.consumer({"group.id": "g", "enable.auto.commit": False})
    p = txn_producer(broker)
    p.begin_transaction()
    p.send_offsets_to_transaction([TopicPartition("in", 0, 5)], group_metadata(c))
    p.abort_transaction()
    assert c.committed([TopicPartition("in", 0)])[0].offset < 0
    p.begin_transaction()
    p.send_offsets_to_transaction([TopicPartition("in", 0, 7)], group_metadata(c))
    p.commit_transaction()
    assert c.committed([TopicPartition("in", 0)])[0].offset == 7
    c.close()


def test_send_offsets_with_nothing_valid_is_a_no_op(broker) -> None:
    p = txn_producer(broker)
    p.begin_transaction()
    p.send_offsets_to_transaction([TopicPartition("in", 0, -1001)], "g")
    p.commit_transaction()
    assert broker.txn_coordinator.state_of("tx") is TransactionState.EMPTY



# ---------------------------------------------------------------------------- aiokafka twin


def test_aio_transaction_context_commits_on_success_and_aborts_on_error(broker) -> None:
    import asyncio

    from headwater.client import AIOProducer

    broker.create_topic("t", 1)

    async def main() -> list[Any]:
        producer = AIOProducer(broker, transactional_id="aio", linger_ms=1000)
        await producer.start()
        async with producer.transaction():
            fut = await producer.send("t", b"kept")
        meta = await asyncio.wait_for(fut, 5)
        with pytest.raises(RuntimeError, match="boom"):
            async with producer.transaction():
                await producer.send("t", b"sent-then-aborted")
                await producer.flush()
                lost = await producer.send("t", b"never-sent")
                raise RuntimeError("boom")
        with pytest.raises(KafkaException) as info:
            await producer.send("t", b"outside")  # no transaction open
        assert error_of(info).code() == ERR__STATE
        producer.begin_transaction()
        await producer.send("t", b"explicit")
        await producer.commit_transaction()
        await producer.stop()
        return [meta.offset, lost]

    offset, lost = asyncio.run(main())
    assert offset == 0
    assert lost.done() and lost.exception() is not None
    assert read_all(broker, "t", "read_committed") == [b"kept", b"explicit"]
    assert read_all(broker, "t", "read_uncommitted") == [b"kept", b"sent-then-aborted", b"explicit"]


def test_aio_start_fences_an_older_instance(broker) -> None:
    import asyncio

    from headwater.client import AIOProducer

    broker.create_topic("t", 1)

    async def main() -> Any:
        old = AIOProducer(broker, transactional_id="aio")
        await old.start()
        old.begin_transaction()
        await old.send("t", b"zombie")
        await old.flush()
        new = AIOProducer(broker, transactional_id="aio")
        await new.start()
        with pytest.raises(KafkaException) as info:
            await old.commit_transaction()
        async with new.transaction():
            await new.send("t", b"fresh")
        await new.stop()
        await old.stop()
        return error_of(info)

    err = asyncio.run(main())
    assert err.code() == ERR__FENCED and err.fatal()
    assert read_all(broker, "t", "read_committed") == [b"fresh"]


@needs_txn_offsets
def test_aio_send_offsets_to_transaction(broker) -> None:
    import asyncio

    from headwater.client import AIOProducer

    broker.create_topic("in", 1)

    async def main() -> None:
        producer = AIOProducer(broker, transactional_id="aio")
        await producer.start()
        async with producer.transaction():
            await producer.send_offsets_to_transaction({TopicPartition("in", 0): 3}, "g")
        with pytest.raises(ValueError):
            async with producer.transaction():
                await producer.send_offsets_to_transaction({("in", 0): 9}, "g")
                raise ValueError
        await producer.stop()

    asyncio.run(main())
    c = broker.consumer({"group.id": "g"})
    assert c.committed([TopicPartition("in", 0)])[0].offset == 3
    c.close()
