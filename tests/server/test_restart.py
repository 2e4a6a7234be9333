"""`headwater serve` restarted on its data directory: groups resume, idempotent retries dedupe.

Goal: what a real deployment sees when the broker process goes away and comes back. (1) After a
clean stop (SIGTERM: exit code 0 within seconds) and a restart on the same directory, a consumer
group resumes from its committed offsets: no record lost, none delivered twice. (2) After a
SIGKILL in the middle of an idempotent confluent-kafka producer's stream (`acks=all`,
`flush.policy=batch`) and a restart on the same port, the producer reconnects and retries its
in-flight batches; the broker, having rebuilt its producer state from the log, appends each
record exactly once.

Whether a SIGKILL lands between a batch's append and its acknowledgement is up to timing, so a
third test makes that case certain: a raw client appends five idempotent batches, the server
is killed, and the same five batches sent again after the restart are answered with their
original offsets and append nothing (Kafka keeps the last five batches per producer).

Method: the server runs as a subprocess (`python -m headwater serve`), as in production; the
clients are confluent-kafka (librdkafka) in this process, and tests/server/wire.py's raw
client. Every wait has a deadline.
"""

from __future__ import annotations

import select
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import confluent_kafka
import pytest
from confluent_kafka.admin import AdminClient, NewTopic
from wire import RawClient

from headwater import record

START_TIMEOUT_S = 15
STOP_TIMEOUT_S = 5
DEADLINE_S = 30


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ServerProcess:
    """One `headwater serve` subprocess; stderr goes to a log file shown on failures."""

    def __init__(self, data_dir: str, port: int, log_path: str, *config: str) -> None:
        self.data_dir, self.port, self.log_path, self.config = data_dir, port, log_path, config
        self.proc: subprocess.Popen[str] | None = None

    def start(self) -> str:
        cmd = [sys.executable, "-m", "headwater", "serve", "--data-dir", self.data_dir,
               "--listen", f"127.0.0.1:{self.port}", "--config", "group.initial.rebalance.delay.ms=0"]
        for item in self.config:
            cmd += ["--config", item]
        with open(self.log_path, "a") as log:
            self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=log, text=True)
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], START_TIMEOUT_S)
        line = self.proc.stdout.readline() if ready else ""
        assert line.startswith("headwater listening on "), f"server did not start: {line!r}\n{self.stderr()}"
        address = line.split()[-1]
        assert address == f"127.0.0.1:{self.port}", address
        return address

    def stop(self, sig: int) -> tuple[int, float]:
        """Send `sig`; return (exit code, seconds to exit)."""
        assert self.proc is not None
        t0 = time.monotonic()
        self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=STOP_TIMEOUT_S)
            pytest.fail(f"server did not exit within {STOP_TIMEOUT_S} s of signal {sig}\n{self.stderr()}")
        elapsed = time.monotonic() - t0
        assert self.proc.stdout is not None
        self.proc.stdout.close()
        self.proc = None
        return rc, elapsed

    def kill_if_running(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=STOP_TIMEOUT_S)

    def stderr(self) -> str:
        with open(self.log_path) as f:
            return f.read()[-4000:]


@pytest.fixture
def servers(tmp_path: Any) -> Iterator[list[ServerProcess]]:
    """A list to register started servers in; any still running at teardown is killed."""
    started: list[ServerProcess] = []
    yield started
    for s in started:
        s.kill_if_running()


def create_topic(bootstrap: str, topic: str, partitions: int) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(topic, partitions, 1)], operation_timeout=10)[topic].result(timeout=DEADLINE_S)


def high_watermarks(bootstrap: str, topic: str, partitions: int) -> dict[int, int]:
    c = confluent_kafka.Consumer({"bootstrap.servers": bootstrap, "group.id": "hw-probe"})
    try:
        return {p: c.get_watermark_offsets(confluent_kafka.TopicPartition(topic, p), timeout=10)[1] for p in range(partitions)}
    finally:
        c.close()


def group_consumer(bootstrap: str, group: str) -> confluent_kafka.Consumer:
    return confluent_kafka.Consumer({
        "bootstrap.servers": bootstrap, "group.id": group, "auto.offset.reset": "earliest",
        "enable.auto.commit": False, "session.timeout.ms": 6000, "heartbeat.interval.ms": 500,
    })


def test_sigterm_restart_group_resumes_from_committed_offsets(tmp_path: Any, servers: list[ServerProcess]) -> None:
    data_dir, topic, group, n, partitions = str(tmp_path / "data"), "restart-orders", "restart-group", 300, 3
    server = ServerProcess(data_dir, free_port(), str(tmp_path / "server.log"))
    servers.append(server)
    bootstrap = server.start()
    create_topic(bootstrap, topic, partitions)

    p = confluent_kafka.Producer({"bootstrap.servers": bootstrap, "linger.ms": 5, "enable.idempotence": True})
    for i in range(n):
        p.produce(topic, f"m{i}".encode(), key=f"k{i}".encode())
    assert p.flush(DEADLINE_S) == 0

    # First life: read about half, commit what was read, leave the group.
    first: list[tuple[int, int, bytes]] = []
    c = group_consumer(bootstrap, group)
    c.subscribe([topic])
    end = time.monotonic() + DEADLINE_S
    while len(first) < n // 2:
        assert time.monotonic() < end, f"first consumer read {len(first)} of {n // 2}"
        for m in c.consume(50, timeout=0.2):
            assert m.error() is None, m.error()
            first.append((m.partition(), m.offset(), m.value()))
    next_offsets: dict[int, int] = {}
    for part, offset, _ in first:
        next_offsets[part] = max(next_offsets.get(part, 0), offset + 1)
    commits = [confluent_kafka.TopicPartition(topic, part, off) for part, off in next_offsets.items()]
    c.commit(offsets=commits, asynchronous=False)
    c.close()

    # The producer's connection is still open: SIGTERM must not wait for clients to leave.
    rc, elapsed = server.stop(signal.SIGTERM)
    assert rc == 0, server.stderr()
    assert elapsed < STOP_TIMEOUT_S
    del p

    # Second life on the same directory (and a new port): the group picks up at its commits.
    server.port = free_port()
    bootstrap = server.start()
    assert sum(high_watermarks(bootstrap, topic, partitions).values()) == n
    second: list[tuple[int, int, bytes]] = []
    c = group_consumer(bootstrap, group)
    c.subscribe([topic])
    try:
        end = time.monotonic() + DEADLINE_S
        while len(first) + len(second) < n:
            assert time.monotonic() < end, f"read {len(first)} + {len(second)} of {n}"
            for m in c.consume(100, timeout=0.2):
                assert m.error() is None, m.error()
                second.append((m.partition(), m.offset(), m.value()))
        for m in c.consume(100, timeout=0.5):  # a duplicate would show up here
            second.append((m.partition(), m.offset(), m.value()))
    finally:
        c.close()

    for part, offset, _ in second:
        assert offset >= next_offsets.get(part, 0), (part, offset, next_offsets)
    everything = first + second
    assert len(everything) == n
    assert sorted(v for _, _, v in everything) == sorted(f"m{i}".encode() for i in range(n))

    rc, _ = server.stop(signal.SIGTERM)
    assert rc == 0, server.stderr()


def test_sigkill_mid_stream_idempotent_producer_has_no_duplicates(tmp_path: Any, servers: list[ServerProcess]) -> None:
    data_dir, topic, partitions, n = str(tmp_path / "data"), "restart-idem", 2, 30_000
    server = ServerProcess(data_dir, free_port(), str(tmp_path / "server.log"), "flush.policy=batch")
    servers.append(server)
    bootstrap = server.start()
    create_topic(bootstrap, topic, partitions)

    producer = confluent_kafka.Producer({
        "bootstrap.servers": bootstrap, "enable.idempotence": True, "acks": "all", "linger.ms": 5,
        "batch.num.messages": 500, "message.timeout.ms": 40_000, "retry.backoff.ms": 50,
        "reconnect.backoff.ms": 50, "reconnect.backoff.max.ms": 250,
    })
    acked: list[tuple[int, int, int]] = []  # (partition, offset, i)
    errors: list[str] = []
    lock = threading.Lock()

    def reporter(i: int) -> Any:
        def on_delivery(err: Any, msg: Any) -> None:
            with lock:
                if err is not None:
                    errors.append(f"m{i}: {err}")
                else:
                    acked.append((msg.partition(), msg.offset(), i))

        return on_delivery

    # The stream lasts about 1.5 s (chunks of 500 with 25 ms pauses) so the kill lands mid-way.
    def produce_all() -> None:
        for i in range(n):
            producer.produce(topic, f"m{i}".encode(), key=str(i % 97).encode(), on_delivery=reporter(i))
            if i % 500 == 499:
                producer.poll(0)
                time.sleep(0.025)

    t = threading.Thread(target=produce_all, name="idempotent-producer")
    t.start()
    end = time.monotonic() + DEADLINE_S
    while True:
        producer.poll(0.01)
        with lock:
            if len(acked) >= n // 4 + 123:  # not on a 500-record chunk boundary
                break
        assert time.monotonic() < end, f"only {len(acked)} records acknowledged before the kill"

    rc, _ = server.stop(signal.SIGKILL)
    assert rc == -signal.SIGKILL
    with lock:
        acked_before_kill = len(acked)
    assert acked_before_kill < n, "the stream ended before the kill"
    time.sleep(0.3)  # librdkafka notices the dead connection and queues its retries
    server.start()  # same directory, same port

    t.join(DEADLINE_S)
    assert not t.is_alive()
    remaining = producer.flush(DEADLINE_S)
    assert remaining == 0, f"{remaining} records still queued after {DEADLINE_S} s\n{server.stderr()}"
    assert errors == [], errors[:5]
    assert len(acked) == n
    # The producer was told one distinct offset per record.
    assert len({(part, off) for part, off, _ in acked}) == n

    # Read the topic back: each record exactly once, at the offset it was acknowledged at,
    # in produce order within its partition.
    ends = high_watermarks(bootstrap, topic, partitions)
    assert sum(ends.values()) == n, f"{sum(ends.values()) - n} extra records (duplicates) in the log: {ends}"
    c = confluent_kafka.Consumer({"bootstrap.servers": bootstrap, "group.id": "idem-check", "enable.auto.commit": False})
    got: list[tuple[int, int, int]] = []
    try:
        c.assign([confluent_kafka.TopicPartition(topic, part, confluent_kafka.OFFSET_BEGINNING) for part in range(partitions)])
        end = time.monotonic() + DEADLINE_S
        while len(got) < n:
            assert time.monotonic() < end, f"read back {len(got)} of {n}"
            for m in c.consume(5000, timeout=0.2):
                assert m.error() is None, m.error()
                got.append((m.partition(), m.offset(), int(m.value()[1:])))
    finally:
        c.close()
    counts = Counter(i for _, _, i in got)
    assert [i for i, k in counts.items() if k > 1] == []
    assert set(counts) == set(range(n))
    assert sorted(got) == sorted(acked)
    for part in range(partitions):
        seq = [i for p_, _, i in sorted(got) if p_ == part]
        assert seq == sorted(seq), f"partition {part} out of produce order"

    rc, _ = server.stop(signal.SIGTERM)
    assert rc == 0, server.stderr()


PRODUCE, INIT_PRODUCER_ID = 0, 22


def produce_raw(client: RawClient, topic: str, raw: bytes) -> dict[str, Any]:
    resp = client.call(PRODUCE, 9, {
        "transactional_id": None, "acks": -1, "timeout_ms": 5000,
        "topic_data": [{"name": topic, "partition_data": [{"index": 0, "records": raw}]}],
    })
    part: dict[str, Any] = resp["responses"][0]["partition_responses"][0]
    return part


def test_sigkill_then_resent_batches_are_answered_with_original_offsets(tmp_path: Any, servers: list[ServerProcess]) -> None:
    topic = "restart-raw"
    server = ServerProcess(str(tmp_path / "data"), free_port(), str(tmp_path / "server.log"), "flush.policy=batch")
    servers.append(server)
    bootstrap = server.start()
    create_topic(bootstrap, topic, 1)
    with RawClient(bootstrap) as c:
        pid_resp = c.call(INIT_PRODUCER_ID, 1, {"transactional_id": None, "transaction_timeout_ms": 60000})
        assert pid_resp["error_code"] == 0
        pid, epoch = pid_resp["producer_id"], pid_resp["producer_epoch"]
        batches = [
            record.build_batch([f"b{b}-r{r}".encode() for r in range(3)], producer_id=pid, producer_epoch=epoch, base_sequence=3 * b)
            for b in range(6)
        ]
        first = [produce_raw(c, topic, raw) for raw in batches[:5]]
    assert [(p["error_code"], p["base_offset"]) for p in first] == [(0, 3 * b) for b in range(5)]

    rc, _ = server.stop(signal.SIGKILL)
    assert rc == -signal.SIGKILL
    server.start()
    with RawClient(bootstrap) as c:
        # The producer never saw those answers: it sends the five batches again, in order.
        again = [produce_raw(c, topic, raw) for raw in batches[:5]]
        assert [(p["error_code"], p["base_offset"]) for p in again] == [(0, 3 * b) for b in range(5)]
        nxt = produce_raw(c, topic, batches[5])
        assert (nxt["error_code"], nxt["base_offset"]) == (0, 15)
        # A sequence gap is still refused after the restart: the state is real, not reset.
        gap = record.build_batch([b"gap"], producer_id=pid, producer_epoch=epoch, base_sequence=30)
        assert produce_raw(c, topic, gap)["error_code"] == 45  # OUT_OF_ORDER_SEQUENCE_NUMBER
    assert high_watermarks(bootstrap, topic, 1) == {0: 18}
    rc, _ = server.stop(signal.SIGTERM)
    assert rc == 0, server.stderr()
