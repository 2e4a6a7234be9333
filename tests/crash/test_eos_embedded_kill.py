"""Exactly-once with the embedded API under SIGKILL (issue 5 acceptance, embedded face).

Goal: a consume-transform-produce loop running on the embedded broker (read topic A in a group,
write topic B and send the consumed offsets in one transaction per batch), in a process that is
SIGKILLed at random moments and restarted, round after round, leaves topic B, read with
read_committed, holding every record of A exactly once and in A's order per partition.

Method: the data directory belongs to one process at a time (its lock), so each child opens the
Broker itself: recovery runs on every start (torn tails, producer state, __transaction_state
replay: a transaction the dead child left open is aborted when the next one's
init_transactions() fences it, or by its timeout). The parent writes N keyed records to A
(3 partitions), then starts children that copy batches of 1-40 records A -> B (same partition)
and SIGKILLs each 0-400 ms after it reports READY; a last child runs until the group's
committed offsets reach A's ends and reports DONE. The parent then opens the directory and
reads B with read_committed and read_uncommitted.

HEADWATER_CRASH_SEED replays the schedule (timings still vary).
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from test_eos_kill import _kill, _wait_line, copy_loop  # same child plumbing and loop as the wire version

TOPIC_IN, TOPIC_OUT, PARTITIONS, KEYS = "eos-in", "eos-out", 3, 9
GROUP, TXN_ID = "eos-embedded", "eos-embedded-txn"
BROKER_CONFIG = {"group.initial.rebalance.delay.ms": 0, "group.min.session.timeout.ms": 100, "flush.policy": "interval"}


def child_main(data_dir: str, child_seed: int, ends: dict[int, int]) -> None:
    """One incarnation of the loop: READY once assigned, DONE when every input is committed."""
    import headwater

    rng = random.Random(child_seed)
    with headwater.Broker(data_dir, BROKER_CONFIG) as broker:
        producer = broker.producer({"transactional.id": TXN_ID, "transaction.timeout.ms": 2000})
        producer.init_transactions(10)  # fences the dead incarnation, aborts what it left open
        consumer = broker.consumer({
            "group.id": GROUP, "group.instance.id": "worker", "isolation.level": "read_committed",
            "auto.offset.reset": "earliest", "enable.auto.commit": False, "session.timeout.ms": 1000,
        })
        consumer.subscribe([TOPIC_IN])
        copy_loop(producer, consumer, rng, ends, 0.05, 10, PARTITIONS, TOPIC_OUT)
        producer.close()


def _start(data_dir: str, child_seed: int, ends: dict[int, int], log: Any) -> subprocess.Popen[str]:
    cmd = [sys.executable, __file__, data_dir, str(child_seed), json.dumps(ends)]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=log, text=True)


def _read(broker: Any, isolation: str) -> dict[int, list[bytes]]:
    import headwater

    out: dict[int, list[bytes]] = {p: [] for p in range(PARTITIONS)}
    c = broker.consumer({"group.id": None, "isolation.level": isolation})
    c.assign([headwater.TopicPartition(TOPIC_OUT, p, headwater.OFFSET_BEGINNING) for p in range(PARTITIONS)])
    while msgs := c.consume(10000, 0.2):
        for m in msgs:
            out[m.partition()].append(m.value())
    c.close()
    return out


def test_embedded_consume_transform_produce_killed(tmp_path: Path) -> None:
    import headwater

    s = int(os.environ.get("HEADWATER_CRASH_SEED", random.randrange(1 << 32)))
    print(f"HEADWATER_CRASH_SEED={s}")
    rng = random.Random(s)
    data_dir = str(tmp_path / "data")
    n = 3000
    expected: dict[int, list[bytes]] = {p: [] for p in range(PARTITIONS)}
    with headwater.Broker(data_dir, BROKER_CONFIG) as broker:
        broker.create_topic(TOPIC_IN, PARTITIONS)
        broker.create_topic(TOPIC_OUT, PARTITIONS)
        producer = broker.producer()
        seqs = [0] * KEYS
        for _ in range(n):
            k = rng.randrange(KEYS)
            value = f"k{k}:{seqs[k]}".encode()
            seqs[k] += 1
            producer.produce(TOPIC_IN, value, key=f"k{k}".encode(), partition=k % PARTITIONS)
            expected[k % PARTITIONS].append(value)
        producer.flush(10)
    ends = {p: len(v) for p, v in expected.items()}
    log_path = tmp_path / "children.log"
    kills = 0
    started = time.monotonic()
    try:
        with open(log_path, "w") as log:
            for _ in range(8):
                proc = _start(data_dir, rng.getrandbits(32), ends, log)
                try:
                    if rng.random() < 0.2:
                        time.sleep(rng.uniform(0, 1.0))  # inside recovery, init or the join
                    else:
                        assert _wait_line(proc, "READY", 30), "child never got READY"
                        time.sleep(rng.uniform(0, 0.4))
                finally:
                    _kill(proc)
                kills += 1
            proc = _start(data_dir, rng.getrandbits(32), ends, log)
            try:
                assert _wait_line(proc, "DONE", 90), "the last child did not finish"
                assert proc.wait(timeout=30) == 0
            finally:
                _kill(proc)
    except AssertionError:
        print(log_path.read_text()[-4000:])
        raise
    finally:
        print(f"embedded eos loop: {kills} kills, {time.monotonic() - started:.1f}s")
    with headwater.Broker(data_dir, BROKER_CONFIG) as broker:
        got = _read(broker, "read_committed")
        everything = _read(broker, "read_uncommitted")
        committed = broker.group_coordinator.fetch_offsets(GROUP, [(TOPIC_IN, p) for p in range(PARTITIONS)])
    print(f"embedded eos loop: {sum(map(len, everything.values())) - n} records of aborted transactions in {TOPIC_OUT}")
    for p in range(PARTITIONS):
        assert len(got[p]) == len(expected[p]), f"partition {p}: {len(got[p])} records, want {len(expected[p])}"
        assert got[p] == expected[p], f"partition {p} differs"
    assert {tp.partition: om.offset for tp, om in committed.items()} == ends


if __name__ == "__main__":
    child_main(sys.argv[1], int(sys.argv[2]), {int(k): v for k, v in json.loads(sys.argv[3]).items()})
