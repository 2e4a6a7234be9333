"""Consumer groups over the wire with real clients as the oracle.

Goal: the group APIs behave as Kafka's for confluent-kafka (librdkafka), kafka-python 3.x and
aiokafka: a group shares a topic with no loss and no duplicate, a member that leaves hands its
partitions over at the committed offsets, a static member restarts without a rebalance, a
member that goes silent loses its partitions after its session timeout, the admin APIs
describe and list groups, and an embedded consumer shares a group with a wire consumer.

Method: one Broker per test in tmp_path, served on 127.0.0.1:0, with
`group.initial.rebalance.delay.ms=0` and a small `group.min.session.timeout.ms` so the clients
can use short sessions. Records are written with the embedded producer, so these tests
exercise only the group and fetch paths of the server. Every wait is a loop with a deadline;
a failure shows up as an assertion, never as a hung test.
"""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, ConsumerGroupState, KafkaError, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient

from headwater.client.broker import Broker
from headwater.protocol import decode_response, encode_request

GROUP_CONFIG = {"group.initial.rebalance.delay.ms": 0, "group.min.session.timeout.ms": 500}

# librdkafka settings that keep a rebalance well under a second.
FAST_RDKAFKA = {
    "auto.offset.reset": "earliest",
    "enable.auto.commit": False,
    "session.timeout.ms": 6000,
    "heartbeat.interval.ms": 200,
    "fetch.wait.max.ms": 100,
}


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    with Broker(str(tmp_path / "data"), GROUP_CONFIG) as b:
        yield b


# server and bootstrap: conftest.py's, over this module's broker.


def fill(broker: Broker, topic: str, partitions: int, per_partition: int, tag: str) -> set[bytes]:
    """Append `per_partition` records to every partition; returns the values written."""
    producer = broker.producer()
    written: set[bytes] = set()
    for p in range(partitions):
        values = [f"{tag}-{p}-{i}".encode() for i in range(per_partition)]
        producer.produce_batch(topic, values, partition=p)
        written.update(values)
    producer.flush(10)
    producer.close()
    return written


def wait_until(condition: Callable[[], bool], timeout: float, step: Callable[[], None] | None = None, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        if step is not None:
            step()
        else:
            time.sleep(0.02)
    raise AssertionError(f"{what} not reached within {timeout}s")


class Member:
    """A confluent-kafka consumer plus what it received and every assignment it was given."""

    def __init__(self, bootstrap: str, group: str, topic: str, **config: Any) -> None:
        self.consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group, **FAST_RDKAFKA, **config})
        self.values: list[bytes] = []
        self.assignments: list[set[int]] = []
        self.revocations = 0
        self.assigned_at = 0
        self.consumer.subscribe([topic], on_assign=self._on_assign, on_revoke=self._on_revoke)

    def _on_assign(self, consumer: Any, partitions: list[TopicPartition]) -> None:
        self.assignments.append({tp.partition for tp in partitions})
        self.assigned_at = len(self.values)

    def _on_revoke(self, consumer: Any, partitions: list[TopicPartition]) -> None:
        # Commit what was read before giving partitions up: the next owner starts there
        # (the usual pattern; without it a rebalance re-delivers what was read since).
        self.revocations += 1
        self.commit()

    def commit(self) -> None:
        """Synchronous commit of what was read; "nothing new to commit" is not an error."""
        try:
            self.consumer.commit(asynchronous=False)
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError._NO_OFFSET:
                raise

    @property
    def assigned(self) -> set[int]:
        return {tp.partition for tp in self.consumer.assignment()}

    def poll(self, timeout: float = 0.05) -> None:
        for msg in self.consumer.consume(500, timeout):
            assert msg.error() is None, msg.error()
            self.values.append(msg.value())


def poll_all(members: list[Member]) -> Callable[[], None]:
    def step() -> None:
        for m in members:
            m.poll(0.02)
    return step


# ---------------------------------------------------------------------------------------------
# confluent-kafka


def test_confluent_group_of_three_shares_then_takes_over_from_commits(broker: Broker, bootstrap: str) -> None:
    broker.create_topic("t", 6)
    first = fill(broker, "t", 6, 100, "a")
    members = [Member(bootstrap, "g3", "t") for _ in range(3)]
    try:
        step = poll_all(members)
        wait_until(lambda: sorted(len(m.assigned) for m in members) == [2, 2, 2], 20, step, "three members with two partitions each")
        wait_until(lambda: sum(len(m.values) for m in members) >= len(first), 20, step, "every record of the first batch")
        got = Counter(v for m in members for v in m.values)
        assert set(got) == first and max(got.values()) == 1, "loss or duplicate in the first batch"
        for m in members:
            m.commit()
            parts = [TopicPartition("t", p) for p in sorted(m.assigned)]
            committed = m.consumer.committed(parts, timeout=10)
            assert [tp.offset for tp in committed] == [100] * len(parts)
            # position() is "last read + 1" since the assignment, unknown (-1001) for a
            # partition read to the end by its previous owner.
            read_since_assigned = {int(v.split(b"-")[1]) for v in m.values[m.assigned_at:]}
            positions = {tp.partition: tp.offset for tp in m.consumer.position(parts)}
            assert positions == {p: 100 if p in read_since_assigned else -1001 for p in m.assigned}
        assert {p: om.offset for p, om in ((tp.partition, om) for tp, om in broker.group_coordinator.fetch_offsets("g3").items())} == dict.fromkeys(range(6), 100)

        admin = AdminClient({"bootstrap.servers": bootstrap})
        listed = admin.list_consumer_groups(request_timeout=10).result(timeout=15)
        assert [(g.group_id, g.state) for g in listed.valid] == [("g3", ConsumerGroupState.STABLE)]
        described = admin.describe_consumer_groups(["g3"], request_timeout=10)["g3"].result(timeout=15)
        assert described.state == ConsumerGroupState.STABLE
        assert described.partition_assignor == "range"
        owned = sorted(tp.partition for member in described.members for tp in member.assignment.topic_partitions)
        assert len(described.members) == 3 and owned == list(range(6))
        with pytest.raises(KafkaException) as refused:
            admin.delete_consumer_groups(["g3"], request_timeout=10)["g3"].result(timeout=15)
        assert refused.value.args[0].code() == KafkaError.NON_EMPTY_GROUP

        # Second batch: the first member reads part of it, commits and leaves; the other two
        # take over its partitions from its committed offsets.
        second = fill(broker, "t", 6, 100, "b")
        leaver, stayers = members[0], members[1:]
        marks = [len(m.values) for m in members]
        wait_until(lambda: len(leaver.values) - marks[0] >= 50, 10, lambda: leaver.poll(0.02), "the leaver reading part of the second batch")
        leaver.commit()
        leaver.consumer.close()
        members = stayers

        def second_read() -> list[bytes]:
            return [v for m, mark in zip((leaver, *stayers), marks, strict=True) for v in m.values[mark:]]

        step = poll_all(stayers)
        wait_until(lambda: sorted(len(m.assigned) for m in stayers) == [3, 3], 20, step, "two members with three partitions each")
        wait_until(lambda: len(second_read()) >= len(second), 20, step, "every record of the second batch")
        step()
        second_got = Counter(second_read())
        assert set(second_got) == second, "records lost in the takeover (or first-batch records read again)"
        assert max(second_got.values()) == 1, "records read twice across the takeover"
    finally:
        for m in members:
            m.consumer.close()


def test_confluent_static_member_restart_keeps_assignment_without_rebalance(broker: Broker, bootstrap: str) -> None:
    broker.create_topic("s", 4)
    a = Member(bootstrap, "static", "s", **{"group.instance.id": "member-a"})
    b = Member(bootstrap, "static", "s", **{"group.instance.id": "member-b"})
    restarted = None
    try:
        step = poll_all([a, b])
        wait_until(lambda: len(a.assigned) == 2 and len(b.assigned) == 2, 20, step, "two static members with two partitions each")
        step()
        a_parts = a.assigned
        b_assign_calls, b_revocations = len(b.assignments), b.revocations
        generation = broker.group_coordinator.generation_id("static")
        # A static member does not send LeaveGroup on close: its place waits for it.
        a.consumer.close()
        restarted = Member(bootstrap, "static", "s", **{"group.instance.id": "member-a"})
        wait_until(lambda: bool(restarted.assignments), 10, poll_all([restarted, b]), "the restarted member's assignment")
        assert restarted.assignments[-1] == a_parts
        # Give a (wrong) rebalance time to show up on b before checking it did not happen.
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline:
            poll_all([restarted, b])()
        assert (len(b.assignments), b.revocations) == (b_assign_calls, b_revocations)
        assert b.assigned == {0, 1, 2, 3} - a_parts
        assert broker.group_coordinator.generation_id("static") == generation
    finally:
        for m in (a, b, restarted):
            if m is not None:
                try:
                    m.consumer.close()
                except RuntimeError:
                    pass  # already closed


class RawMember:
    """A group member speaking the protocol over a plain socket: it joins, syncs and then
    goes silent with the socket still open (a hung process, not a closed one)."""

    def __init__(self, bootstrap: str) -> None:
        host, port = bootstrap.rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)), timeout=20)
        self.correlation_id = 0

    def call(self, api_key: int, version: int, body: dict) -> dict:
        self.correlation_id += 1
        self.sock.sendall(encode_request(api_key, version, self.correlation_id, body, client_id="raw", framed=True))
        size = int.from_bytes(self._read(4), "big")
        correlation_id, response = decode_response(api_key, version, self._read(size))
        assert correlation_id == self.correlation_id
        return response

    def _read(self, n: int) -> bytes:
        buf = bytearray()
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            assert chunk, "server closed the connection"
            buf += chunk
        return bytes(buf)

    def close(self) -> None:
        self.sock.close()


def test_silent_member_loses_partitions_after_session_timeout(broker: Broker, bootstrap: str) -> None:
    broker.create_topic("q", 6)
    survivor = Member(bootstrap, "silent", "q")
    raw = RawMember(bootstrap)
    try:
        wait_until(lambda: len(survivor.assigned) == 6, 20, lambda: survivor.poll(0.02), "the first member owning every partition")
        session_ms = 1000
        # Subscription v0 for topic "q" (int16 version, [string] topics, bytes user data).
        subscription = b"\x00\x00" + b"\x00\x00\x00\x01" + b"\x00\x01q" + b"\xff\xff\xff\xff"
        joined: dict[str, Any] = {}

        def join() -> None:
            body = {"group_id": "silent", "session_timeout_ms": session_ms, "rebalance_timeout_ms": 10000,
                    "member_id": "", "protocol_type": "consumer",
                    "protocols": [{"name": "range", "metadata": subscription}]}
            first = raw.call(11, 5, body)
            assert first["error_code"] == 79
            joined.update(raw.call(11, 5, {**body, "member_id": first["member_id"]}))
            synced = raw.call(14, 3, {"group_id": "silent", "generation_id": joined["generation_id"], "member_id": joined["member_id"]})
            joined["sync_error"] = synced["error_code"]
            joined["silent_since"] = time.monotonic()

        thread = threading.Thread(target=join, daemon=True)
        thread.start()
        wait_until(lambda: "silent_since" in joined, 20, lambda: survivor.poll(0.02), "the raw member's join and sync")
        thread.join(5)
        assert joined["error_code"] == 0 and joined["sync_error"] == 0
        wait_until(lambda: len(survivor.assigned) == 3, 10, lambda: survivor.poll(0.02), "the first member giving up half")
        wait_until(lambda: len(survivor.assigned) == 6, 10, lambda: survivor.poll(0.02), "the first member owning every partition again")
        waited = time.monotonic() - joined["silent_since"]
        assert waited >= session_ms / 1000 - 0.1, f"partitions taken back after {waited:.2f}s, before the session expired"
        described = broker.group_coordinator.describe_groups(["silent"])[0]
        assert [m.member_id for m in described.members] == [survivor.consumer.memberid()]
    finally:
        raw.close()
        survivor.consumer.close()


def test_disconnect_during_parked_join_does_not_break_the_group(broker: Broker, bootstrap: str) -> None:
    """A member closes its socket while its JoinGroup is parked: the join phase still
    completes for the others, the dropped member expires with its session, and the survivor
    ends up owning everything again."""
    broker.create_topic("d", 4)
    survivor = Member(bootstrap, "drop", "d")
    raw = RawMember(bootstrap)
    try:
        wait_until(lambda: len(survivor.assigned) == 4, 20, lambda: survivor.poll(0.02), "the first member owning every partition")
        subscription = b"\x00\x00" + b"\x00\x00\x00\x01" + b"\x00\x01d" + b"\xff\xff\xff\xff"
        body = {"group_id": "drop", "session_timeout_ms": 1000, "rebalance_timeout_ms": 10000, "member_id": "",
                "protocol_type": "consumer", "protocols": [{"name": "range", "metadata": subscription}]}
        first = raw.call(11, 5, body)
        assert first["error_code"] == 79
        raw.sock.sendall(encode_request(11, 5, 99, {**body, "member_id": first["member_id"]}, client_id="raw", framed=True))
        wait_until(lambda: broker.group_coordinator.group_state("drop").value == "PreparingRebalance", 5, what="the rebalance the join started")
        raw.close()  # gone while parked
        wait_until(lambda: len(survivor.assigned) == 2, 10, lambda: survivor.poll(0.02), "the generation with the dropped member")
        wait_until(lambda: len(survivor.assigned) == 4, 10, lambda: survivor.poll(0.02), "the survivor owning everything again")
        assert [m.member_id for m in broker.group_coordinator.describe_groups(["drop"])[0].members] == [survivor.consumer.memberid()]
    finally:
        raw.close()
        survivor.consumer.close()


@pytest.mark.parametrize("leader", ["wire", "embedded"])
def test_embedded_and_wire_consumer_share_one_group(broker: Broker, bootstrap: str, leader: str) -> None:
    """Whichever side leads (runs the assignor), both read their half and commit to the same
    group; the leader is the member that was there first."""
    broker.create_topic("mix", 6)
    embedded = broker.consumer({"group.id": "mixed", "auto.offset.reset": "earliest", "enable.auto.commit": False,
                                "session.timeout.ms": 6000, "heartbeat.interval.ms": 200})
    embedded_values: list[bytes] = []
    wire: Member | None = None
    try:
        if leader == "embedded":
            embedded.subscribe(["mix"])
            wait_until(lambda: len(embedded.assignment()) == 6, 10, lambda: embedded.consume(10, 0.02), "the embedded member alone")
            wire = Member(bootstrap, "mixed", "mix")
        else:
            wire = Member(bootstrap, "mixed", "mix")
            wait_until(lambda: len(wire.assigned) == 6, 10, lambda: wire.poll(0.02), "the wire member alone")
            embedded.subscribe(["mix"])

        def step() -> None:
            wire.poll(0.02)
            for msg in embedded.consume(500, 0.02):
                embedded_values.append(msg.value())

        wait_until(lambda: len(wire.assigned) == 3 and len(embedded.assignment()) == 3, 20, step, "three partitions each")
        leader_id = broker.group_coordinator._groups["mixed"].leader_id  # who ran the assignor
        assert (leader_id == wire.consumer.memberid()) == (leader == "wire")
        wire_parts = wire.assigned
        embedded_parts = {tp.partition for tp in embedded.assignment()}
        assert wire_parts | embedded_parts == set(range(6)) and not wire_parts & embedded_parts
        written = fill(broker, "mix", 6, 50, "m")
        wait_until(lambda: len(wire.values) + len(embedded_values) >= len(written), 20, step, "every record")
        step()
        got = Counter(wire.values + embedded_values)
        assert set(got) == written and max(got.values()) == 1
        assert {int(v.split(b"-")[1]) for v in wire.values} == wire_parts
        assert {int(v.split(b"-")[1]) for v in embedded_values} == embedded_parts
        embedded.commit(asynchronous=False)
        wire.commit()
        committed = wire.consumer.committed([TopicPartition("mix", p) for p in range(6)], timeout=10)
        assert [tp.offset for tp in committed] == [50] * 6
    finally:
        if wire is not None:
            wire.consumer.close()
        embedded.close()


# ---------------------------------------------------------------------------------------------
# kafka-python and aiokafka


def test_kafka_python_consumer_group_commit_and_resume(broker: Broker, bootstrap: str) -> None:
    from kafka import KafkaConsumer

    broker.create_topic("kp", 3)
    first = fill(broker, "kp", 3, 20, "x")

    def consumer() -> Any:
        return KafkaConsumer("kp", bootstrap_servers=bootstrap, group_id="kpg", auto_offset_reset="earliest",
                             enable_auto_commit=False, session_timeout_ms=6000, heartbeat_interval_ms=500,
                             fetch_max_wait_ms=100, consumer_timeout_ms=200)

    c = consumer()
    seen: list[bytes] = []
    try:
        deadline = time.monotonic() + 20
        while len(seen) < len(first) and time.monotonic() < deadline:
            for batch in c.poll(timeout_ms=200).values():
                seen.extend(r.value for r in batch)
        assert Counter(seen) == Counter(first)
        c.commit()
    finally:
        c.close()
    assert {tp.partition: om.offset for tp, om in broker.group_coordinator.fetch_offsets("kpg").items()} == {0: 20, 1: 20, 2: 20}
    assert broker.group_coordinator.describe_groups(["kpg"])[0].state == "Empty"  # close() left the group

    second = fill(broker, "kp", 3, 5, "y")
    c = consumer()
    seen = []
    try:
        deadline = time.monotonic() + 20
        while len(seen) < len(second) and time.monotonic() < deadline:
            for batch in c.poll(timeout_ms=200).values():
                seen.extend(r.value for r in batch)
        time_left = deadline - time.monotonic()
        assert time_left > 0, f"only {len(seen)} of {len(second)} records"
        assert Counter(seen) == Counter(second), "resumed somewhere other than the committed offsets"
    finally:
        c.close()


def test_aiokafka_consumer_group_getmany_commit(broker: Broker, bootstrap: str) -> None:
    from aiokafka import AIOKafkaConsumer
    from aiokafka.structs import TopicPartition as AioTP

    broker.create_topic("aio", 2)
    written = fill(broker, "aio", 2, 30, "z")

    async def run() -> tuple[list[bytes], dict[int, int]]:
        consumer = AIOKafkaConsumer("aio", bootstrap_servers=bootstrap, group_id="aiog", auto_offset_reset="earliest",
                                    enable_auto_commit=False, session_timeout_ms=6000, heartbeat_interval_ms=500,
                                    fetch_max_wait_ms=100)
        await consumer.start()
        values: list[bytes] = []
        try:
            deadline = time.monotonic() + 20
            while len(values) < len(written) and time.monotonic() < deadline:
                for records in (await consumer.getmany(timeout_ms=200)).values():
                    values.extend(r.value for r in records)
            await consumer.commit()
            committed = {p: await consumer.committed(AioTP("aio", p)) for p in range(2)}
        finally:
            await consumer.stop()
        return values, committed

    values, committed = asyncio.run(asyncio.wait_for(run(), 40))
    assert Counter(values) == Counter(written)
    assert committed == {0: 30, 1: 30}
    assert {tp.partition: om.offset for tp, om in broker.group_coordinator.fetch_offsets("aiog").items()} == {0: 30, 1: 30}


# ---------------------------------------------------------------------------------------------
# kcat (librdkafka 2.0.2 from Debian: exact-version feature checks, kafka-spec h.2)


@pytest.mark.skipif(shutil.which("kcat") is None, reason="kcat not installed (.ci/run installs it)")
def test_kcat_balanced_consumer_commits_then_group_is_deleted(broker: Broker, bootstrap: str) -> None:
    broker.create_topic("kc", 4)
    written = fill(broker, "kc", 4, 5, "k")
    proc = subprocess.run(
        ["kcat", "-b", bootstrap, "-G", "kcat-group", "-o", "beginning", "-e", "-q",
         "-X", "session.timeout.ms=6000", "kc"],
        capture_output=True, timeout=30,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert Counter(proc.stdout.split()) == Counter(written)
    offsets = broker.group_coordinator.fetch_offsets("kcat-group")
    assert {tp.partition: om.offset for tp, om in offsets.items()} == dict.fromkeys(range(4), 5)

    admin = AdminClient({"bootstrap.servers": bootstrap})
    assert admin.delete_consumer_groups(["kcat-group"], request_timeout=10)["kcat-group"].result(timeout=15) is None
    assert broker.group_coordinator.fetch_offsets("kcat-group") == {}
    with pytest.raises(KafkaException) as missing:
        admin.delete_consumer_groups(["kcat-group"], request_timeout=10)["kcat-group"].result(timeout=15)
    assert missing.value.args[0].code() == KafkaError.GROUP_ID_NOT_FOUND


def test_committed_offsets_survive_broker_restart(tmp_path: Path) -> None:
    """Offsets committed over the wire are in __consumer_offsets: a new broker process on the
    same directory (another port) lets the group resume exactly there."""
    data = str(tmp_path / "data")
    with Broker(data, GROUP_CONFIG) as b:
        b.create_topic("r", 2)
        first = fill(b, "r", 2, 10, "old")
        with b.serve(host="127.0.0.1", port=0) as srv:
            m = Member(srv.bootstrap_servers, "rg", "r")
            try:
                wait_until(lambda: len(m.values) >= len(first), 20, lambda: m.poll(0.02), "the first records")
                m.commit()
            finally:
                m.consumer.close()
    with Broker(data, GROUP_CONFIG) as b:
        second = fill(b, "r", 2, 3, "new")
        with b.serve(host="127.0.0.1", port=0) as srv:
            m = Member(srv.bootstrap_servers, "rg", "r")
            try:
                wait_until(lambda: len(m.values) >= len(second), 20, lambda: m.poll(0.02), "the new records")
                deadline = time.monotonic() + 0.3
                while time.monotonic() < deadline:
                    m.poll(0.02)
                assert Counter(m.values) == Counter(second)
            finally:
                m.consumer.close()
