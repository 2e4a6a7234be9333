"""The transaction coordinator against a small model, in random request orders.

Goal: in any interleaving of InitProducerId, AddPartitionsToTxn, EndTxn (from the current
instance or a fenced one), marker completion, timeouts and restarts, the coordinator gives the
answer the model predicts, and a restart from its own records restores the same state (with
the MarkerWork of every Prepare* transaction).
Method: hypothesis RuleBasedStateMachine. The model keeps, per transactional id, the producer
id, epoch, a state name, the partition set and the start timestamp, with transitions written
from Kafka's rules (kafka-spec.md d.3) independently of the coordinator's code; it leaves out
KIP-360 and epoch exhaustion, which the unit tests cover.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule
from txn_helpers import FIRST_PRODUCER_ID, Allocator

from headwater.coordinator.txn import (
    ConcurrentTransactionsError,
    InitPending,
    InitResult,
    InvalidProducerIdMappingError,
    InvalidTxnStateError,
    MarkerWork,
    ProducerFencedError,
    TransactionCoordinator,
)

IDS = ["a", "b"]
PARTITIONS = [("x", 0), ("x", 1), ("y", 0)]
TIMEOUT_MS = 1000


@dataclass
class Txn:
    producer_id: int
    epoch: int = 0
    state: str = "Empty"
    partitions: set[tuple[str, int]] = field(default_factory=set)
    start_ms: int = -1
    waiting: list[InitPending] = field(default_factory=list)
    one_phase: bool = False  # a PrepareCommit of one partition: no record, its marker decides

    def work(self, coordinator_epoch: int) -> MarkerWork:
        return MarkerWork(
            "",
            self.producer_id,
            self.epoch,
            coordinator_epoch,
            self.state == "PrepareCommit",
            tuple(sorted(self.partitions)),
        )


class TxnMachine(RuleBasedStateMachine):
    latest_records_only = False

    def __init__(self) -> None:
        super().__init__()
        self.allocator = Allocator()
        self.coordinator_epoch = 0
        self.coord = TransactionCoordinator(None, self.allocator, latest_records_only=self.latest_records_only)
        self.log: list[tuple[bytes, bytes | None]] = []
        self.model: dict[str, Txn] = {}
        self.next_pid = FIRST_PRODUCER_ID
        self.now = 0

    def _work(self, txn_id: str) -> MarkerWork:
        w = self.model[txn_id].work(self.coordinator_epoch)
        return MarkerWork(
            txn_id, w.producer_id, w.producer_epoch, w.coordinator_epoch, w.commit, w.partitions
        )

    def _producer(self, txn_id: str, stale: bool) -> tuple[int, int]:
        m = self.model.get(txn_id)
        if m is None:
            return 4242, 0
        return m.producer_id, m.epoch - 1 if stale else m.epoch

    @rule(txn_id=st.sampled_from(IDS), step=st.integers(0, 50))
    def init(self, txn_id: str, step: int) -> None:
        self.now += step
        out = self.coord.init_producer_id(txn_id, TIMEOUT_MS, self.now)
        m = self.model.get(txn_id)
        if m is None:
            self.model[txn_id] = Txn(self.next_pid)
            self.next_pid += 1
            assert out == InitResult(self.model[txn_id].producer_id, 0)
        elif m.state == "Ongoing":
            m.epoch += 1
            m.state = "PrepareAbort"
            assert isinstance(out, InitPending)
            assert out.markers == self._work(txn_id)
            m.waiting.append(out)
        elif m.state.startswith("Prepare"):
            assert isinstance(out, InitPending) and out.markers is None
            m.waiting.append(out)
        else:
            m.epoch += 1
            m.state, m.partitions, m.start_ms = "Empty", set(), -1
            assert out == InitResult(m.producer_id, m.epoch)

    @rule(
        txn_id=st.sampled_from(IDS),
        parts=st.lists(st.sampled_from(PARTITIONS), max_size=2),
        stale=st.sampled_from([False, False, False, True]),
        step=st.integers(0, 50),
    )
    def add(self, txn_id: str, parts: list[tuple[str, int]], stale: bool, step: int) -> None:
        self.now += step
        pid, epoch = self._producer(txn_id, stale)
        got = self.coord.add_partitions(txn_id, pid, epoch, parts, self.now)
        assert set(got) == set(parts)
        m = self.model.get(txn_id)
        errors = set(map(type, got.values()))
        if m is None:
            assert errors <= {InvalidProducerIdMappingError}
        elif stale:
            assert errors <= {ProducerFencedError}
        elif m.state.startswith("Prepare"):
            assert errors <= {ConcurrentTransactionsError}
        else:
            assert errors <= {type(None)}
            if m.state != "Ongoing":
                m.start_ms = self.now
            m.state = "Ongoing"
            m.partitions.update(parts)

    @rule(
        txn_id=st.sampled_from(IDS),
        commit=st.booleans(),
        stale=st.sampled_from([False, False, False, True]),
        step=st.integers(0, 50),
    )
    def end(self, txn_id: str, commit: bool, stale: bool, step: int) -> None:
        self.now += step
        pid, epoch = self._producer(txn_id, stale)
        m = self.model.get(txn_id)
        try:
            work = self.coord.end_txn(txn_id, pid, epoch, commit, self.now)
        except (
            InvalidProducerIdMappingError,
            ProducerFencedError,
            ConcurrentTransactionsError,
            InvalidTxnStateError,
        ) as exc:
            error: type[Exception] | None = type(exc)
            work = None
        else:
            error = None
        outcome = "Commit" if commit else "Abort"
        if m is None:
            assert error is InvalidProducerIdMappingError
        elif stale:
            assert error is ProducerFencedError
        elif m.state == "Ongoing":
            m.state = "Prepare" + outcome
            m.one_phase = commit and len(m.partitions) == 1
            assert error is None and work == self._work(txn_id)
        elif m.state == "Complete" + outcome:
            assert error is None and work is None
        elif m.state == "Prepare" + outcome:
            assert error is ConcurrentTransactionsError
        else:
            assert error is InvalidTxnStateError

    @rule(txn_id=st.sampled_from(IDS), step=st.integers(0, 50))
    def markers_written(self, txn_id: str, step: int) -> None:
        self.now += step
        done = self.coord.markers_written(txn_id, self.now)
        m = self.model.get(txn_id)
        if m is None or not m.state.startswith("Prepare"):
            assert done is False
            return
        assert done is True
        m.one_phase = False
        m.state = "Complete" + m.state[len("Prepare") :]
        m.partitions = set()
        for p in m.waiting:
            m.epoch += 1
            m.state, m.start_ms = "Empty", -1
            assert p.result() == InitResult(m.producer_id, m.epoch)
        m.waiting = []

    @rule(step=st.integers(0, 1500))
    def tick(self, step: int) -> None:
        self.now += step
        works = self.coord.tick(self.now)
        expected = []
        for txn_id, m in self.model.items():
            if m.state == "Ongoing" and m.start_ms + TIMEOUT_MS < self.now:
                m.epoch += 1
                m.state = "PrepareAbort"
                expected.append(self._work(txn_id))
        assert sorted(works, key=str) == sorted(expected, key=str)

    @rule()
    def restart(self) -> None:
        self.log.extend(self.coord.take_records())
        self.coordinator_epoch += 1
        self.allocator = Allocator(next_id=self.allocator.next_id)
        self.coord = TransactionCoordinator(
            None, self.allocator, coordinator_epoch=self.coordinator_epoch, latest_records_only=self.latest_records_only
        )
        works = self.coord.load(self.log, self.now)
        for m in self.model.values():
            if m.one_phase:
                # Its marker was never reported written: no record says PrepareCommit, and
                # the transaction comes back Ongoing (the timeout aborts it).
                m.state, m.one_phase = "Ongoing", False
        expected = [self._work(i) for i, m in self.model.items() if m.state.startswith("Prepare")]
        assert sorted(works, key=str) == sorted(expected, key=str)
        for m in self.model.values():
            for p in m.waiting:
                assert not p.done()
            m.waiting = []  # lost with the process; clients retry

    @invariant()
    def matches_model(self) -> None:
        self.log.extend(self.coord.take_records())
        described = self.coord.describe_transactions(IDS)
        for d in described:
            m = self.model.get(d.transactional_id)
            if m is None:
                assert d.error_code == 105
                continue
            assert d.error_code == 0
            assert (d.producer_id, d.producer_epoch, d.transaction_state) == (
                m.producer_id,
                m.epoch,
                m.state,
            )
            assert {(t, p) for t, ps in d.topics for p in ps} == m.partitions
            assert d.transaction_start_time_ms == m.start_ms


TxnMachine.TestCase.settings = settings(
    max_examples=150,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
test_txn_coordinator_matches_model = TxnMachine.TestCase


class LatestRecordsTxnMachine(TxnMachine):
    """The same with ``latest_records_only`` (the broker's mode): one record per id and take."""

    latest_records_only = True


LatestRecordsTxnMachine.TestCase.settings = TxnMachine.TestCase.settings
test_txn_coordinator_latest_records_matches_model = LatestRecordsTxnMachine.TestCase
