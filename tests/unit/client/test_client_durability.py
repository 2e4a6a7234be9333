"""Idempotent producer state, reopening a data directory, and the data-directory lock.

Goal: a retried batch of an idempotent producer is never appended twice (also after the broker
is closed and reopened, or killed without closing); sequence gaps and stale epochs are refused
with Kafka's errors and write nothing; reopening restores topics (same ids, counts, configs,
data) and committed offsets; a second owner of the directory gets DataDirLockedError that
points to server mode.
Method: batches are appended the way the wire server will append them: through
Broker._append with an explicit producer id/epoch/base sequence, and through
PartitionLog.append_batch_ex with a batch built by kafka-python's DefaultRecordBatchBuilder.
Log end offsets are compared before and after every retry. The unclean stop and the second
owner run in subprocesses (the lock is per open file, the kill is real).
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
from client_helpers import FAST_CONSUMER, end_offsets, log_records, poll_until, wait_assigned

from headwater.client import TopicPartition
from headwater.errors import DataDirLockedError, InvalidProducerEpochError, OutOfOrderSequenceError


def kafka_python_batch(producer_id, epoch, base_sequence, values, key=b"k"):
    builder_mod = pytest.importorskip("kafka.record.default_records")
    b = builder_mod.DefaultRecordBatchBuilder(
        magic=2, compression_type=0, is_transactional=0, producer_id=producer_id,
        producer_epoch=epoch, base_sequence=base_sequence, batch_size=1 << 20,
    )
    for i, v in enumerate(values):
        b.append(i, timestamp=None, key=key, value=v, headers=[])
    return bytes(b.build())


# ----------------------------------------------------------------- idempotence


def test_retried_batch_returns_original_offset_and_is_not_appended(broker) -> None:
    broker.create_topic("t", 1)
    pid, epoch = broker._init_producer_id()
    first = broker._append("t", 0, [b"a", b"b"], producer_id=pid, producer_epoch=epoch, base_sequence=0)
    second = broker._append("t", 0, [b"c"], producer_id=pid, producer_epoch=epoch, base_sequence=2)
    assert (first, second) == (0, 2)
    # The producer did not see the acks and retries both batches.
    assert broker._append("t", 0, [b"a", b"b"], producer_id=pid, producer_epoch=epoch, base_sequence=0) == 0
    assert broker._append("t", 0, [b"c"], producer_id=pid, producer_epoch=epoch, base_sequence=2) == 2
    assert end_offsets(broker, "t") == [3]
    assert [v for _, _, v in log_records(broker, "t", 0)] == [b"a", b"b", b"c"]


def test_duplicates_recognised_among_the_last_five_batches(broker) -> None:
    broker.create_topic("t", 1)
    plog = broker.get_log("t", 0)
    pid, epoch = broker._init_producer_id()
    batches = [kafka_python_batch(pid, epoch, 2 * i, [b"%d.0" % i, b"%d.1" % i]) for i in range(5)]
    bases = [plog.append_batch_ex(raw).base_offset for raw in batches]
    assert bases == [0, 2, 4, 6, 8]
    for i, raw in enumerate(batches):
        res = plog.append_batch_ex(raw)
        assert (res.duplicate, res.base_offset, res.last_offset) == (True, 2 * i, 2 * i + 1)
    assert plog.log_end_offset == 10


def test_sequence_gap_and_stale_epoch_are_refused_and_write_nothing(broker) -> None:
    broker.create_topic("t", 1)
    pid, _ = broker._init_producer_id()
    broker._append("t", 0, [b"a"], producer_id=pid, producer_epoch=0, base_sequence=0)
    with pytest.raises(OutOfOrderSequenceError):
        broker._append("t", 0, [b"gap"], producer_id=pid, producer_epoch=0, base_sequence=5)
    broker._append("t", 0, [b"new epoch"], producer_id=pid, producer_epoch=1, base_sequence=0)
    with pytest.raises(InvalidProducerEpochError):
        broker._append("t", 0, [b"zombie"], producer_id=pid, producer_epoch=0, base_sequence=1)
    assert [v for _, _, v in log_records(broker, "t", 0)] == [b"a", b"new epoch"]


def test_idempotent_producers_get_distinct_ids_and_stamp_batches(broker) -> None:
    broker.create_topic("t", 1)
    p1, p2 = broker.producer(), broker.producer()
    plain = broker.producer({"enable.idempotence": False})
    assert p1.producer_id >= 0 and p2.producer_id >= 0 and p1.producer_id != p2.producer_id
    assert plain.producer_id == -1
    for p in (p1, p2, p1, plain):
        p.produce("t", b"x")
        p.flush()
    with broker.get_log("t", 0).read(0) as result:
        headers = [h for h, view in result.batches() if not view.release()]
    assert [(h.producer_id, h.base_sequence) for h in headers] == [
        (p1.producer_id, 0), (p2.producer_id, 0), (p1.producer_id, 1), (-1, -1)
    ]


# ----------------------------------------------------------------- reopen


def test_reopen_restores_topics_ids_configs_and_data(make_broker) -> None:
    b = make_broker()
    b.create_topic("orders", 3, {"retention.ms": 3600000})
    b.create_topic("logs", 1)
    p = b.producer()
    for i in range(30):
        p.produce("orders", b"%d" % i, key=b"k%d" % i)
    p.flush()
    ids = {name: t.topic_id for name, t in b.list_topics().items()}
    ends = end_offsets(b, "orders")
    b.close()
    b2 = make_broker()
    topics = b2.list_topics()
    assert {name: t.topic_id for name, t in topics.items()} == ids
    assert topics["orders"].partitions == 3
    assert b2.topic_config("orders")["retention.ms"] == 3600000
    assert end_offsets(b2, "orders") == ends
    assert sorted(v for part in range(3) for _, _, v in log_records(b2, "orders", part)) == sorted(b"%d" % i for i in range(30))


def test_reopen_restores_committed_offsets(make_broker) -> None:
    b = make_broker()
    b.create_topic("t", 2)
    p = b.producer()
    for i in range(20):
        p.produce("t", b"%d" % i, partition=i % 2)
    p.flush()
    c = b.consumer({"group.id": "g", **FAST_CONSUMER, "enable.auto.commit": False})
    c.subscribe(["t"])
    msgs = wait_assigned(c, n=2)
    msgs += poll_until(c, 20 - len(msgs))
    c.commit(offsets=[TopicPartition("t", 0, 4), TopicPartition("t", 1, 7, metadata="m")], asynchronous=False)
    c.close()
    b.close()
    b2 = make_broker()
    c2 = b2.consumer({"group.id": "g", **FAST_CONSUMER})
    got = c2.committed([TopicPartition("t", 0), TopicPartition("t", 1)])
    assert [(tp.offset, tp.metadata) for tp in got] == [(4, None), (7, "m")]
    c2.subscribe(["t"])
    msgs = wait_assigned(c2, n=2)
    msgs += poll_until(c2, 9 - len(msgs))
    assert sorted((m.partition(), m.offset()) for m in msgs) == [(0, o) for o in range(4, 10)] + [(1, o) for o in range(7, 10)]
    assert b2.admin().list_groups()[0].group_id == "g"


def test_reopen_keeps_producer_state_so_retries_are_still_duplicates(make_broker) -> None:
    b = make_broker()
    b.create_topic("t", 1)
    p = b.producer()
    pid, epoch = p.producer_id, p.producer_epoch
    p.produce_batch("t", [b"a", b"b", b"c"])
    p.produce_batch("t", [b"d"])
    p.close()
    b.close()
    b2 = make_broker()
    # The last batch (sequence 3) retried after the restart: the original offset, nothing new.
    assert b2._append("t", 0, [b"d"], producer_id=pid, producer_epoch=epoch, base_sequence=3) == 3
    raw = kafka_python_batch(pid, epoch, 3, [b"d"], key=None)
    res = b2.get_log("t", 0).append_batch_ex(raw)
    assert (res.duplicate, res.base_offset) == (True, 3)
    assert end_offsets(b2, "t") == [4]
    # As in Kafka (kafka-spec.md c.4) a snapshot keeps only the last batch per producer, so an
    # older batch retried after a clean restart is out of order, not silently re-appended.
    with pytest.raises(OutOfOrderSequenceError):
        b2.get_log("t", 0).append_batch_ex(kafka_python_batch(pid, epoch, 0, [b"a", b"b", b"c"], key=None))
    assert end_offsets(b2, "t") == [4]
    # The sequence continues; a gap is still refused.
    with pytest.raises(OutOfOrderSequenceError):
        b2._append("t", 0, [b"x"], producer_id=pid, producer_epoch=epoch, base_sequence=9)
    assert b2._append("t", 0, [b"e"], producer_id=pid, producer_epoch=epoch, base_sequence=4) == 4
    # A new producer never reuses an id handed out before the restart.
    assert b2.producer().producer_id > pid


def _run(code: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=timeout)


def test_producer_state_rebuilt_from_log_after_unclean_stop(tmp_path, make_broker) -> None:
    data = tmp_path / "data"
    proc = _run(f"""
        import os
        from headwater.client import Broker
        b = Broker({str(data)!r}, {{"group.initial.rebalance.delay.ms": 0}})
        b.create_topic("t", 1)
        pid, epoch = b._init_producer_id()
        b._append("t", 0, [b"a", b"b"], producer_id=pid, producer_epoch=epoch, base_sequence=0)
        b._append("t", 0, [b"c"], producer_id=pid, producer_epoch=epoch, base_sequence=2)
        b.get_log("t", 0).flush()
        print(pid, epoch, flush=True)
        os._exit(0)  # no close(): no producer-state snapshot, no clean shutdown marker
    """)
    assert proc.returncode == 0, proc.stderr
    pid, epoch = map(int, proc.stdout.split())
    b = make_broker(data_dir=data)
    assert b._append("t", 0, [b"c"], producer_id=pid, producer_epoch=epoch, base_sequence=2) == 2
    assert b._append("t", 0, [b"a", b"b"], producer_id=pid, producer_epoch=epoch, base_sequence=0) == 0
    assert end_offsets(b, "t") == [3]
    assert b._init_producer_id()[0] > pid


# ----------------------------------------------------------------- the lock


def test_second_broker_in_another_process_gets_data_dir_locked_error(tmp_path, make_broker) -> None:
    data = tmp_path / "data"
    make_broker(data_dir=data)
    proc = _run(f"""
        from headwater.client import Broker
        from headwater.errors import DataDirLockedError
        try:
            Broker({str(data)!r})
        except DataDirLockedError as exc:
            print("LOCKED", exc)
        else:
            print("OPENED")
    """)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("LOCKED"), proc.stdout + proc.stderr
    assert "server mode" in proc.stdout


def test_second_broker_in_this_process_gets_data_dir_locked_error(tmp_path, make_broker) -> None:
    data = tmp_path / "data"
    first = make_broker(data_dir=data)
    with pytest.raises(DataDirLockedError, match="server mode"):
        make_broker(data_dir=data)
    first.close()
    make_broker(data_dir=data).close()  # released on close
