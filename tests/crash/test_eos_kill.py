"""Exactly-once over the wire under SIGKILL: of the client loop, and of the server (issue 5).

Goal 1 (test_consume_transform_produce_killed): a confluent-kafka consume-transform-produce
loop (read topic A in a group, write topic B and send the consumed offsets in one transaction
per batch) killed with SIGKILL at random moments and restarted, round after round, leaves
topic B, read with read_committed, holding every record of A exactly once and in A's order
(per partition, hence per key).

Method: the test process serves an embedded Broker on 127.0.0.1. The parent writes N records
to A (3 partitions, keys hashed to partitions, a per-key sequence in each value), then runs
this file as a child: a transactional producer (one transactional.id for every incarnation,
so each new one fences the last and aborts its open transaction) and a static group member
(group.instance.id, so a restarted child takes over the dead one's assignment without waiting
for its session to expire) that copy batches of 1-40 records from A to the same partition of
B. The parent SIGKILLs the child 0-300 ms after it reports READY (or, in some starts, 0-1.5 s
after starting it: inside init_transactions or the group join); after the kills a last child
runs until the group's committed offsets reach A's ends and reports DONE. The same loop runs
with aiokafka (``async with producer.transaction()``, partitions assigned by the consumer
itself, offsets sent to the group by id).

Goal 2 (test_server_killed_during_transactions): `headwater serve` SIGKILLed while a
confluent-kafka producer runs transactions (some committed, some aborted), restarted on the
same port: every transaction whose commit_transaction() returned is visible, every one whose
abort_transaction() returned is not, and each of the others is visible whole or not at all;
transactions left open by the dead producer end after transaction.timeout.ms (2 s); after
each restart a read_committed consumer sees only whole committed transactions.

Both tests print their seed; HEADWATER_CRASH_SEED replays the schedule (timings still vary).
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

TOPIC_IN = "eos-in"
TOPIC_OUT = "eos-out"
PARTITIONS = 3
KEYS = 12
GROUP = "eos-loop"
TXN_ID = "eos-loop-txn"
BROKER_CONFIG = {"group.initial.rebalance.delay.ms": 0, "group.min.session.timeout.ms": 100}
START_TIMEOUT_S = 20


def seed() -> int:
    return int(os.environ.get("HEADWATER_CRASH_SEED") or random.SystemRandom().getrandbits(32))


def read_committed(bootstrap: str, topic: str, partitions: int, timeout: float = 20.0, isolation: str = "read_committed") -> dict[int, list[bytes]]:
    """Every value of `topic` a read_committed consumer gets up to partition EOF (the LSO);
    ``isolation="read_uncommitted"`` reads up to the high watermark instead."""
    from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

    c = Consumer({
        "bootstrap.servers": bootstrap, "group.id": f"check-{time.monotonic_ns()}",
        "isolation.level": isolation, "enable.auto.commit": False,
        "enable.partition.eof": True, "fetch.wait.max.ms": 50,
    })
    try:
        c.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
        out: dict[int, list[bytes]] = {p: [] for p in range(partitions)}
        at_eof: set[int] = set()
        deadline = time.monotonic() + timeout
        while len(at_eof) < partitions:
            assert time.monotonic() < deadline, f"no EOF on {topic} within {timeout}s"
            m = c.poll(0.1)
            if m is None:
                continue
            if m.error():
                if m.error().code() == KafkaError._PARTITION_EOF:
                    at_eof.add(m.partition())
                    continue
                raise KafkaException(m.error())
            at_eof.discard(m.partition())
            out[m.partition()].append(m.value())
        return out
    finally:
        c.close()


# ---------------------------------------------------------------------------- the child loop


def copy_loop(producer: Any, consumer: Any, rng: random.Random, ends: dict[int, int], poll_s: float, call_s: float, partitions: int = PARTITIONS, topic_out: str = TOPIC_OUT) -> None:
    """The consume-transform-produce loop over confluent-kafka-shaped objects (the real
    client's or the embedded API's): batches of 1-40 records to the same partition of
    `topic_out` with their offsets, one transaction each. Prints READY once assigned and DONE
    (then closes the consumer) when the group's committed offsets reach `ends`."""
    ready = False
    while True:
        msgs = [m for m in consumer.consume(rng.randint(1, 40), poll_s) if not m.error()]
        assignment = consumer.assignment()
        if assignment and not ready:
            print("READY", flush=True)
            ready = True
        if not msgs:
            if len(assignment) == partitions:
                committed = consumer.committed(assignment, 10)
                if all(tp.offset >= ends[tp.partition] for tp in committed):
                    print("DONE", flush=True)
                    consumer.close()
                    return
            continue
        producer.begin_transaction()
        for m in msgs:
            producer.produce(topic_out, key=m.key(), value=m.value(), partition=m.partition())
        producer.flush(call_s)
        positions = [tp for tp in consumer.position(assignment) if tp.offset >= 0]
        producer.send_offsets_to_transaction(positions, consumer.consumer_group_metadata(), call_s)
        time.sleep(rng.uniform(0, 0.01))  # "transform" time: a kill here leaves an open txn
        producer.commit_transaction(call_s)


def child_main(bootstrap: str, child_seed: int, ends: dict[int, int]) -> None:
    """The consume-transform-produce loop; prints READY once assigned, DONE at the end."""
    from confluent_kafka import Consumer, Producer

    rng = random.Random(child_seed)
    producer = Producer({"bootstrap.servers": bootstrap, "transactional.id": TXN_ID, "linger.ms": 2})
    producer.init_transactions(30)
    consumer = Consumer({
        "bootstrap.servers": bootstrap, "group.id": GROUP, "group.instance.id": "eos-worker",
        "isolation.level": "read_committed", "auto.offset.reset": "earliest",
        "enable.auto.commit": False, "session.timeout.ms": 6000, "heartbeat.interval.ms": 200,
        "fetch.wait.max.ms": 20,
    })
    consumer.subscribe([TOPIC_IN])
    copy_loop(producer, consumer, rng, ends, 0.1, 30)


async def aio_child_main(bootstrap: str, child_seed: int, ends: dict[int, int]) -> None:
    """The same loop with aiokafka: ``async with producer.transaction()`` per batch. aiokafka
    has no static membership, so the consumer assigns the partitions itself and the offsets go
    to the group by id (TxnOffsetCommit v0, generation -1): a restart resumes from them without
    waiting for a dead member's session to expire."""
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

    rng = random.Random(child_seed)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, transactional_id=TXN_ID, linger_ms=2)
    await producer.start()
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=GROUP, isolation_level="read_committed",
        enable_auto_commit=False, auto_offset_reset="earliest", fetch_max_wait_ms=20,
    )
    await consumer.start()
    tps = [TopicPartition(TOPIC_IN, p) for p in range(PARTITIONS)]
    consumer.assign(tps)
    print("READY", flush=True)
    while True:
        batches = await consumer.getmany(timeout_ms=100, max_records=rng.randint(1, 40))
        msgs = [m for tp in tps for m in batches.get(tp, [])]
        if not msgs:
            committed = [await consumer.committed(tp) or 0 for tp in tps]
            if all(committed[p] >= ends[p] for p in range(PARTITIONS)):
                print("DONE", flush=True)
                await consumer.stop()
                await producer.stop()
                return
            continue
        async with producer.transaction():
            for m in msgs:
                await producer.send(TOPIC_OUT, m.value, key=m.key, partition=m.partition)
            offsets = {tp: await consumer.position(tp) for tp in tps if batches.get(tp)}
            await producer.send_offsets_to_transaction(offsets, GROUP)
            await asyncio.sleep(rng.uniform(0, 0.01))  # a kill here leaves an open txn


def _wait_line(proc: subprocess.Popen[str], wanted: str, timeout: float) -> bool:
    """Read the child's stdout until a line equal to `wanted` (True) or timeout/EOF (False)."""
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        ready, _, _ = select.select([proc.stdout], [], [], left)
        if not ready:
            return False
        line = proc.stdout.readline()
        if not line:
            return False
        if line.strip() == wanted:
            return True


def _start_child(client: str, bootstrap: str, child_seed: int, ends: dict[int, int], log: Any) -> subprocess.Popen[str]:
    cmd = [sys.executable, __file__, client, bootstrap, str(child_seed), json.dumps(ends)]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=log, text=True)


def _kill(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    if proc.stdout is not None:
        proc.stdout.close()


@pytest.mark.parametrize("client", ["confluent", "aiokafka"])
def test_consume_transform_produce_killed(tmp_path: Path, client: str) -> None:
    from headwater.client.broker import Broker

    if client == "aiokafka":
        pytest.importorskip("aiokafka")
    s = seed()
    print(f"HEADWATER_CRASH_SEED={s}")
    rng = random.Random(s)
    n = 2400
    with Broker(str(tmp_path / "data"), BROKER_CONFIG) as broker:
        broker.create_topic(TOPIC_IN, PARTITIONS)
        broker.create_topic(TOPIC_OUT, PARTITIONS)
        expected: dict[int, list[bytes]] = {p: [] for p in range(PARTITIONS)}
        seqs = [0] * KEYS
        producer = broker.producer()
        for _ in range(n):
            k = rng.randrange(KEYS)
            value = f"k{k}:{seqs[k]}".encode()
            seqs[k] += 1
            producer.produce(TOPIC_IN, value, key=f"k{k}".encode(), partition=k % PARTITIONS)
            expected[k % PARTITIONS].append(value)
        producer.flush(10)
        producer.close()
        ends = {p: len(v) for p, v in expected.items()}

        srv = broker.serve(host="127.0.0.1", port=0)
        bootstrap = str(srv.bootstrap_servers)
        log_path = tmp_path / "children.log"
        kills = 0
        started = time.monotonic()
        try:
            with open(log_path, "w") as log:
                for _ in range(10):
                    proc = _start_child(client, bootstrap, rng.getrandbits(32), ends, log)
                    try:
                        if rng.random() < 0.2:
                            time.sleep(rng.uniform(0, 1.5))  # inside imports, init or the join
                        else:
                            assert _wait_line(proc, "READY", START_TIMEOUT_S), "child never got READY"
                            time.sleep(rng.uniform(0, 0.3))
                    finally:
                        _kill(proc)
                    kills += 1
                proc = _start_child(client, bootstrap, rng.getrandbits(32), ends, log)
                try:
                    assert _wait_line(proc, "DONE", 60), "the last child did not finish"
                    assert proc.wait(timeout=20) == 0
                finally:
                    _kill(proc)
        except AssertionError:
            print(log_path.read_text()[-4000:])
            raise
        finally:
            elapsed = time.monotonic() - started
            print(f"eos loop ({client}): {kills} kills, {elapsed:.1f}s")

        got = read_committed(bootstrap, TOPIC_OUT, PARTITIONS)
        everything = read_committed(bootstrap, TOPIC_OUT, PARTITIONS, isolation="read_uncommitted")
        aborted = sum(map(len, everything.values())) - n
        print(f"eos loop: {aborted} records of aborted (killed or fenced) transactions in {TOPIC_OUT}")
        srv.close()
        for p in range(PARTITIONS):
            # Exactly once and in order: B's partition is A's partition, record for record.
            assert len(got[p]) == len(expected[p]), f"partition {p}: {len(got[p])} records, want {len(expected[p])}"
            assert got[p] == expected[p], f"partition {p} differs"
        committed = broker.group_coordinator.fetch_offsets(GROUP, [(TOPIC_IN, p) for p in range(PARTITIONS)])
        assert {tp.partition: om.offset for tp, om in committed.items()} == ends


# ---------------------------------------------------------------------------- the server killed


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class _Server:
    """`python -m headwater serve` on a fixed port and data directory."""

    def __init__(self, data_dir: Path, port: int, log_path: Path) -> None:
        self.data_dir, self.port, self.log_path = data_dir, port, log_path
        self.proc: subprocess.Popen[str] | None = None

    def start(self) -> str:
        cmd = [sys.executable, "-m", "headwater", "serve", "--data-dir", str(self.data_dir),
               "--listen", f"127.0.0.1:{self.port}", "--config", "group.initial.rebalance.delay.ms=0"]
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:  # the port of the killed server may linger a moment
            with open(self.log_path, "a") as log:
                self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=log, text=True)
            assert self.proc.stdout is not None
            ready, _, _ = select.select([self.proc.stdout], [], [], START_TIMEOUT_S)
            line = self.proc.stdout.readline() if ready else ""
            if line.startswith("headwater listening on "):
                return line.split()[-1]
            self.kill()
            assert time.monotonic() < deadline, f"server did not start: {line!r}\n{self.log_path.read_text()[-3000:]}"
            time.sleep(0.2)

    def kill(self) -> None:
        if self.proc is not None:
            _kill(self.proc)
            self.proc = None


@pytest.fixture
def server_proc(tmp_path: Path) -> Iterator[_Server]:
    srv = _Server(tmp_path / "srv", _free_port(), tmp_path / "server.log")
    try:
        yield srv
    finally:
        srv.kill()


def _run_transactions(bootstrap: str, txn_id: str, tag: str, rng: random.Random, outcomes: dict[str, str], stop: threading.Event) -> Any:
    """Transactions of 4 records over 2 partitions each until `stop` or an error; outcome per
    transaction: "committed"/"aborted" once the call returned, "unknown" when it failed or was
    never ended. Returns the producer (left open: it is abandoned with the dead server)."""
    from confluent_kafka import Producer

    producer = Producer({
        "bootstrap.servers": bootstrap, "transactional.id": txn_id, "transaction.timeout.ms": 2000,
        "linger.ms": 2, "message.timeout.ms": 2000, "socket.timeout.ms": 2000,
        "log_level": 2,  # the abandoned producer keeps reconnecting to the killed server
    })
    try:
        producer.init_transactions(3)
    except Exception:  # the server died during the init: nothing was started
        return producer
    i = 0
    while not stop.is_set():
        name = f"{tag}-{i}"
        outcomes[name] = "unknown"
        try:
            producer.begin_transaction()
            for j in range(4):
                producer.produce(TOPIC_OUT, value=f"{name}:{j}".encode(), partition=j % 2)
            if rng.random() < 0.25:
                producer.flush(2)
                producer.abort_transaction(2)
                outcomes[name] = "aborted"
            else:
                producer.commit_transaction(2)
                outcomes[name] = "committed"
        except Exception:
            return producer
        i += 1
    return producer


def list_transaction_states(bootstrap: str) -> dict[str, str]:
    """ListTransactions v0 over a raw connection: {transactional id: state}."""
    from headwater.protocol import decode_response, encode_request

    host, port = bootstrap.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(encode_request(66, 0, 1, {"state_filters": [], "producer_id_filters": []}, client_id="check", framed=True))
        data = b""
        while len(data) < 4 or len(data) < 4 + int.from_bytes(data[:4], "big"):
            chunk = sock.recv(65536)
            assert chunk, "connection closed"
            data += chunk
    _, resp = decode_response(66, 0, data[4:])
    return {t["transactional_id"]: t["transaction_state"] for t in resp["transaction_states"]}


def _check_whole(got: dict[int, list[bytes]], outcomes: dict[str, str]) -> set[str]:
    """Every visible transaction is whole and was not aborted; returns the visible ones."""
    counts: dict[str, int] = {}
    for values in got.values():
        for v in values:
            name = v.decode().split(":")[0]
            counts[name] = counts.get(name, 0) + 1
    for name, count in counts.items():
        assert count == 4, f"transaction {name}: {count} of 4 records visible"
        assert outcomes.get(name) != "aborted", f"aborted transaction {name} is visible"
    return set(counts)


def test_server_killed_during_transactions(server_proc: _Server) -> None:
    from confluent_kafka.admin import AdminClient, NewTopic

    s = seed()
    print(f"HEADWATER_CRASH_SEED={s}")
    rng = random.Random(s)
    bootstrap = server_proc.start()
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(TOPIC_OUT, 2, 1)])[TOPIC_OUT].result(timeout=20)
    outcomes: dict[str, str] = {}
    abandoned: list[Any] = []
    rounds = 4
    for r in range(rounds):
        stop = threading.Event()
        box: list[Any] = []
        worker = threading.Thread(
            target=lambda r=r, stop=stop, box=box: box.append(_run_transactions(bootstrap, f"crash-tx-{r}", f"r{r}", rng, outcomes, stop)),
            daemon=True,
        )
        worker.start()
        time.sleep(rng.uniform(0.3, 1.0))
        server_proc.kill()
        stop.set()
        worker.join(timeout=30)
        assert not worker.is_alive(), "the producer thread did not give up"
        abandoned.extend(box)
        assert server_proc.start() == bootstrap
        # Right after the restart: only whole, not aborted transactions are visible.
        visible = _check_whole(read_committed(bootstrap, TOPIC_OUT, 2), outcomes)
        missing = {n for n, o in outcomes.items() if o == "committed"} - visible
        assert not missing, f"committed transactions not visible after restart {r}: {sorted(missing)[:5]}"

    # Transactions the dead producers left open end by their timeout: nothing stays Ongoing.
    deadline = time.monotonic() + 20
    while True:
        states = list_transaction_states(bootstrap)
        if all(st in ("Empty", "CompleteCommit", "CompleteAbort") for st in states.values()):
            break
        assert time.monotonic() < deadline, f"transactions still open: {states}"
        time.sleep(0.2)
    got = read_committed(bootstrap, TOPIC_OUT, 2)
    visible = _check_whole(got, outcomes)
    committed = {n for n, o in outcomes.items() if o == "committed"}
    assert committed <= visible
    assert committed, "no transaction committed at all"
    print(f"server kills: {rounds}, transactions: {len(outcomes)}, committed {len(committed)}, "
          f"unknown {sum(o == 'unknown' for o in outcomes.values())}, visible {len(visible)}")
    for p in abandoned:
        p.purge()


if __name__ == "__main__":
    _ends = {int(k): v for k, v in json.loads(sys.argv[4]).items()}
    if sys.argv[1] == "confluent":
        child_main(sys.argv[2], int(sys.argv[3]), _ends)
    elif sys.argv[1] == "aiokafka":
        asyncio.run(aio_child_main(sys.argv[2], int(sys.argv[3]), _ends))
