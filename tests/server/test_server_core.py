"""The server core: framing, version negotiation, bad input, ordering, backpressure, Metadata.

Raw sockets with our codec drive the edge cases no real client produces; real clients check
the same answers are understood (kcat/confluent-kafka/kafka-python/aiokafka bootstraps).
"""

from __future__ import annotations

import asyncio
import gc
import socket
import struct
import subprocess
import sys
import threading
import time
import uuid

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from wire import RawClient, frame

from headwater.client.broker import Broker
from headwater.protocol import API_KEYS, encode_request
from headwater.server import KafkaServer
from headwater.server.dispatch import CloseConnection, dispatch
from headwater.server.handlers import HANDLERS

API_VERSIONS, METADATA = 18, 3


def _api_table(resp: dict) -> dict[int, tuple[int, int]]:
    return {a["api_key"]: (a["min_version"], a["max_version"]) for a in resp["api_keys"]}


# ---- ApiVersions ------------------------------------------------------------------------------


@pytest.mark.parametrize("version", [0, 1, 2, 3, 4])
def test_api_versions_lists_every_handled_api(bootstrap: str, version: int) -> None:
    body = {"client_software_name": "raw-test", "client_software_version": "1.0"}
    with RawClient(bootstrap) as c:
        resp = c.call(API_VERSIONS, version, body)
    assert resp["error_code"] == 0
    table = _api_table(resp)
    assert set(table) == set(HANDLERS)
    for key, (lo, hi) in table.items():
        assert (lo, hi) == (API_KEYS[key].min_version, API_KEYS[key].max_version)
    # kafka-spec h.2: exact versions old librdkafka feature checks need.
    assert table[0][0] == 0 and table[1][0] <= 4 <= table[1][1] and table[18][0] == 0


def test_api_versions_above_ours_gets_v0_error_answer(bootstrap: str) -> None:
    """g.4: unparsed body, v0-format response, error 35, only ApiVersions' own range."""
    req = struct.pack(">hhih", API_VERSIONS, 9, 77, 3) + b"abc" + b"\x00" + b"\x05junk"
    with RawClient(bootstrap) as c:
        c.send_raw(frame(req))
        payload = c.read_frame()
        corr, err, count, key, lo, hi = struct.unpack(">ihihhh", payload)
        assert (corr, err, count, key, lo, hi) == (77, 35, 1, 18, 0, API_KEYS[18].max_version)
        # the connection stays usable
        assert c.call(API_VERSIONS, 0, {})["error_code"] == 0


def test_api_versions_v3_bad_software_name_is_invalid_request(bootstrap: str) -> None:
    with RawClient(bootstrap) as c:
        resp = c.call(API_VERSIONS, 3, {"client_software_name": "-bad name-", "client_software_version": "1"})
    assert resp["error_code"] == 42


# ---- bad input: one connection closed, every other one served ---------------------------------


def _closes(bootstrap: str, data: bytes) -> bool:
    with RawClient(bootstrap) as c:
        c.send_raw(data)
        return c.is_closed()


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(frame(struct.pack(">hhih", 9999, 0, 1, -1)), id="unknown-api-key"),
        pytest.param(frame(struct.pack(">hhih", METADATA, 99, 1, -1)), id="unsupported-version"),
        pytest.param(frame(struct.pack(">hhih", 1, 0, 1, -1)), id="fetch-below-advertised"),
        pytest.param(frame(b"\x00\x03"), id="truncated-header"),
        pytest.param(frame(struct.pack(">hhih", METADATA, 1, 1, -1) + b"\x7f\xff\xff\xff"), id="array-count-too-big"),
        pytest.param(struct.pack(">i", -5) + b"x" * 10, id="negative-size"),
        pytest.param(struct.pack(">i", 200 << 20), id="size-above-max"),
        pytest.param(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", id="http-garbage"),
    ],
)
def test_bad_frame_closes_only_that_connection(bootstrap: str, data: bytes) -> None:
    with RawClient(bootstrap) as healthy:
        assert healthy.call(API_VERSIONS, 0, {})["error_code"] == 0
        assert _closes(bootstrap, data)
        assert healthy.call(METADATA, 1, {"topics": []})["controller_id"] >= 0


def test_client_disconnecting_mid_request_leaves_server_serving(bootstrap: str, server: KafkaServer) -> None:
    for cut in (1, 3, 4, 9, 30):
        req = encode_request(METADATA, 9, 1, {"topics": None}, framed=True)
        s = socket.create_connection(("127.0.0.1", server.port), timeout=5)
        s.sendall(req[:cut])
        s.close()
    # a size promising 50 MB, 1 MB sent, then gone: the partial buffer is dropped with the socket
    s = socket.create_connection(("127.0.0.1", server.port), timeout=5)
    s.sendall(struct.pack(">i", 50 << 20) + b"\0" * (1 << 20))
    s.close()
    with RawClient(bootstrap) as c:
        assert c.call(API_VERSIONS, 2, {})["error_code"] == 0
    deadline = time.monotonic() + 5
    while server.connections and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not server.connections


def test_request_size_limit_is_configurable(tmp_path) -> None:
    with Broker(str(tmp_path / "d"), {"socket.request.max.bytes": 1024}) as b:
        srv = b.serve(port=0)
        with RawClient(srv.bootstrap_servers) as ok:
            assert ok.call(API_VERSIONS, 0, {})["error_code"] == 0
            big = encode_request(METADATA, 1, 1, {"topics": [{"name": "t" * 200}] * 6}, framed=True)
            assert len(big) > 1028
            assert _closes(srv.bootstrap_servers, big)
            assert ok.call(API_VERSIONS, 0, {})["error_code"] == 0


# ---- ordering, pipelining, backpressure -------------------------------------------------------


def test_pipelined_requests_are_answered_in_order(bootstrap: str) -> None:
    with RawClient(bootstrap) as c:
        sent = []
        for i in range(200):
            if i % 2:
                sent.append((c.send(METADATA, 1 + i % 12, {"topics": []}), METADATA, 1 + i % 12))
            else:
                sent.append((c.send(API_VERSIONS, i % 4, {"client_software_name": "x", "client_software_version": "1"}), API_VERSIONS, i % 4))
        for corr, key, version in sent:
            got, _ = c.recv(key, version)
            assert got == corr


def test_client_that_does_not_read_is_paused_not_buffered(bootstrap: str, broker: Broker, server: KafkaServer) -> None:
    """Tens of thousands of pipelined requests, no reads: reading pauses (bounded queue and
    bounded socket buffers), and once the client reads, every response arrives in order."""
    names = [f"{i:02d}" + "t" * 198 for i in range(20)]
    for name in names:
        broker.create_topic(name)
    # ~4 kB requests with ~5 kB responses: 30,000 of them are far more than the socket buffers
    # of both ends hold, whichever side the kernel lets fill first.
    req = encode_request(METADATA, 1, 0, {"topics": [{"name": n} for n in names]}, framed=True)
    n = 30000
    with RawClient(bootstrap) as c:
        c.sock.setblocking(False)
        sent = 0  # whole frames handed to the kernel
        pending = b""
        stalled_since = None
        deadline = time.monotonic() + 20
        while sent < n and time.monotonic() < deadline:
            if not pending:
                pending = req[:8] + struct.pack(">i", sent + 1) + req[12:]
            try:
                k = c.sock.send(pending)
                pending = pending[k:]
                if not pending:
                    sent += 1
                stalled_since = None
            except BlockingIOError:
                stalled_since = stalled_since or time.monotonic()
                if time.monotonic() - stalled_since > 0.5:
                    break  # the server stopped reading us
                time.sleep(0.005)
        conns = [x for x in server.connections if x.peer and x.peer[1] == c.sock.getsockname()[1]]
        assert conns and len(conns[0]._queue) <= server.queued_max_requests
        assert sent < n, "the server kept reading a client that never reads"
        c.sock.setblocking(True)
        c.sock.settimeout(10)
        if pending:  # complete the frame cut by the stall, in a thread: the server only reads
            # once its responses are read
            threading.Thread(target=c.sock.sendall, args=(pending,), daemon=True).start()
            sent += 1
        for i in range(sent):
            corr, resp = c.recv(METADATA, 1)
            assert corr == i + 1 and len(resp["topics"]) == 20
        # what did not fit before is accepted now
        assert c.call(API_VERSIONS, 0, {})["error_code"] == 0


def test_many_connections(bootstrap: str) -> None:
    clients = [RawClient(bootstrap) for _ in range(150)]
    try:
        for c in clients:
            c.send(API_VERSIONS, 0, {})
        for c in clients:
            assert c.recv(API_VERSIONS, 0)[1]["error_code"] == 0
    finally:
        for c in clients:
            c.close()


# ---- Metadata ----------------------------------------------------------------------------------


@pytest.mark.parametrize("version", range(0, 13))
def test_metadata_every_version(bootstrap: str, broker: Broker, server: KafkaServer, version: int) -> None:
    broker.create_topic("orders", partitions=3)
    topics = [{"name": "orders"}] if version else [{"name": "orders"}]
    with RawClient(bootstrap) as c:
        resp = c.call(METADATA, version, {"topics": topics, "allow_auto_topic_creation": False})
    assert resp["brokers"] == [{"node_id": server.node_id, "host": "127.0.0.1", "port": server.port, "rack": None}] or (
        version == 0 and resp["brokers"][0]["port"] == server.port
    )
    (t,) = resp["topics"]
    assert t["error_code"] == 0 and t["name"] == "orders"
    assert [p["partition_index"] for p in t["partitions"]] == [0, 1, 2]
    assert all(p["leader_id"] == server.node_id and p["replica_nodes"] == [server.node_id] for p in t["partitions"])
    if version >= 1:
        assert resp["controller_id"] == server.node_id
    if version >= 2:
        assert resp["cluster_id"] == broker.cluster_id
    if version >= 10:
        assert uuid.UUID(bytes=t["topic_id"]) == broker.describe_topic("orders").topic_id


def test_metadata_all_topics_and_internal_flag(bootstrap: str, broker: Broker) -> None:
    broker.create_topic("a")
    with RawClient(bootstrap) as c:
        all_v0 = c.call(METADATA, 0, {"topics": []})
        all_v9 = c.call(METADATA, 9, {"topics": None})
        none_v9 = c.call(METADATA, 9, {"topics": []})
    assert {t["name"] for t in all_v0["topics"]} == {"a", "__consumer_offsets", "__transaction_state"}
    flags = {t["name"]: t["is_internal"] for t in all_v9["topics"]}
    assert flags == {"a": False, "__consumer_offsets": True, "__transaction_state": True}
    assert none_v9["topics"] == []


def test_metadata_auto_create_rules(bootstrap: str, broker: Broker) -> None:
    with RawClient(bootstrap) as c:
        created = c.call(METADATA, 1, {"topics": [{"name": "auto1"}]})  # v0-3: implicit
        refused = c.call(METADATA, 9, {"topics": [{"name": "auto2"}], "allow_auto_topic_creation": False})
        invalid = c.call(METADATA, 9, {"topics": [{"name": "bad name!"}], "allow_auto_topic_creation": True})
        allowed = c.call(METADATA, 12, {"topics": [{"name": "auto3"}], "allow_auto_topic_creation": True})
    assert created["topics"][0]["error_code"] == 0 and len(created["topics"][0]["partitions"]) == 1
    assert refused["topics"][0]["error_code"] == 3
    assert invalid["topics"][0]["error_code"] == 17
    assert allowed["topics"][0]["error_code"] == 0
    assert set(broker.list_topics()) >= {"auto1", "auto3"} and "auto2" not in broker.list_topics()


def test_metadata_auto_create_disabled(tmp_path) -> None:
    with Broker(str(tmp_path / "d"), {"auto.create.topics.enable": "false"}) as b:
        srv = b.serve(port=0)
        with RawClient(srv.bootstrap_servers) as c:
            resp = c.call(METADATA, 1, {"topics": [{"name": "x"}]})
        assert resp["topics"][0]["error_code"] == 3 and "x" not in b.list_topics()


def test_metadata_by_topic_id(bootstrap: str, broker: Broker) -> None:
    tid = broker.create_topic("byid", partitions=2).topic_id
    with RawClient(bootstrap) as c:
        found = c.call(METADATA, 12, {"topics": [{"name": None, "topic_id": tid.bytes}]})
        missing = c.call(METADATA, 12, {"topics": [{"name": None, "topic_id": uuid.uuid4().bytes}]})
    assert found["topics"][0]["name"] == "byid" and len(found["topics"][0]["partitions"]) == 2
    assert missing["topics"][0]["error_code"] == 100


def test_cluster_id_and_topic_ids_survive_restart(tmp_path) -> None:
    d = str(tmp_path / "d")
    with Broker(d) as b:
        b.create_topic("keep")
        first = (b.cluster_id, b.describe_topic("keep").topic_id)
    with Broker(d) as b:
        srv = b.serve(port=0)
        with RawClient(srv.bootstrap_servers) as c:
            resp = c.call(METADATA, 12, {"topics": [{"name": "keep"}]})
        assert (resp["cluster_id"], uuid.UUID(bytes=resp["topics"][0]["topic_id"])) == first


def test_describe_cluster(bootstrap: str, broker: Broker, server: KafkaServer) -> None:
    with RawClient(bootstrap) as c:
        resp = c.call(60, 1, {})
    assert resp["cluster_id"] == broker.cluster_id and resp["controller_id"] == server.node_id
    assert resp["brokers"] == [{"broker_id": server.node_id, "host": "127.0.0.1", "port": server.port, "rack": None}]


def test_advertised_listener_is_what_clients_are_told(tmp_path) -> None:
    with Broker(str(tmp_path / "d")) as b:
        srv = b.serve(port=0, advertised_host="kafka.example", advertised_port=19092)
        with RawClient(f"127.0.0.1:{srv.port}") as c:
            resp = c.call(METADATA, 9, {"topics": []})
            coord = c.call(10, 3, {"key": "g", "key_type": 0})
        assert resp["brokers"][0]["host"] == "kafka.example" and resp["brokers"][0]["port"] == 19092
        assert (coord["host"], coord["port"]) == ("kafka.example", 19092)


# ---- real clients bootstrap against us (each client's own ApiVersions/Metadata path) ----------


def test_real_clients_bootstrap(bootstrap: str, broker: Broker) -> None:
    broker.create_topic("boot", partitions=4)
    from confluent_kafka.admin import AdminClient

    md = AdminClient({"bootstrap.servers": bootstrap}).list_topics(timeout=10)
    assert md.cluster_id == broker.cluster_id and len(md.topics["boot"].partitions) == 4
    import kafka

    consumer = kafka.KafkaConsumer(bootstrap_servers=bootstrap, request_timeout_ms=10000)
    try:
        assert "boot" in consumer.topics() and consumer.partitions_for_topic("boot") == {0, 1, 2, 3}
    finally:
        consumer.close()

    async def aio() -> set[int]:
        import aiokafka

        c = aiokafka.AIOKafkaConsumer(bootstrap_servers=bootstrap)
        await c.start()
        try:
            assert "boot" in await c.topics()
            cluster = await c._client.fetch_all_metadata()
            return set(cluster.partitions_for_topic("boot") or ())
        finally:
            await c.stop()

    assert asyncio.run(aio()) == {0, 1, 2, 3}
    out = subprocess.run(["kcat", "-b", bootstrap, "-L", "-t", "boot"], capture_output=True, text=True, timeout=20)
    assert out.returncode == 0 and 'topic "boot" with 4 partitions' in out.stdout


# ---- fuzz: the dispatcher either answers or closes, never anything else -----------------------


class _FuzzServer:
    """Just what handlers may touch, over a real broker."""

    def __init__(self, broker: Broker) -> None:
        self.broker = broker
        self.node_id = 1
        self.advertised_host = "127.0.0.1"
        self.advertised_port = 9092
        self.cluster_id = broker.cluster_id
        self.leader_epoch = 0
        self.stopping = False

    async def wait_for_append(self, timeout: float) -> bool:
        return False


_SAFE_KEYS = sorted(k for k in HANDLERS if k not in (11, 14))  # group waits need a live loop timer


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_fuzz_dispatch_answers_or_closes(tmp_path_factory, data) -> None:
    key = data.draw(st.sampled_from(_SAFE_KEYS))
    info = API_KEYS[key]
    version = data.draw(st.integers(info.min_version - 1, info.max_version + 1))
    body = data.draw(st.binary(max_size=200))
    raw = struct.pack(">hhi", key, version, 5) + data.draw(st.sampled_from([b"\x00\x01c", b"\xff\xff"])) + body
    if data.draw(st.booleans()):
        raw = raw[: data.draw(st.integers(0, len(raw)))]
    broker = _fuzz_broker(tmp_path_factory)

    async def go() -> None:
        try:
            # the timeouts in bodies are random: answer with whatever is there at once
            parts, ctx = await asyncio.wait_for(dispatch(_FuzzServer(broker), None, raw), 5)
        except CloseConnection:
            return
        if ctx is not None:
            ctx.run_after()
        if parts is not None:
            payload = b"".join(bytes(p) for p in parts)
            assert struct.unpack(">i", payload[:4])[0] == len(payload) - 4

    asyncio.run(go())


_fuzz_state: dict[str, Broker] = {}


def _fuzz_broker(factory) -> Broker:
    b = _fuzz_state.get("b")
    if b is None or b.closed:
        b = _fuzz_state["b"] = Broker(str(factory.mktemp("fuzz")), {"auto.create.topics.enable": False})
        b.create_topic("t", partitions=2)
    return b


@pytest.fixture(scope="module", autouse=True)
def _close_fuzz_broker():
    yield
    b = _fuzz_state.pop("b", None)
    if b is not None:
        b.close()


# ---- memory stays bounded under hostile input -------------------------------------------------


def test_memory_bounded_under_garbage(bootstrap: str, server: KafkaServer) -> None:
    import resource

    def burst() -> None:
        for _ in range(40):
            s = socket.create_connection(("127.0.0.1", server.port), timeout=5)
            try:
                s.sendall(struct.pack(">i", 90 << 20) + b"\x01" * (2 << 20))
            except OSError:
                pass
            s.close()

    burst()
    gc.collect()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    threads = [threading.Thread(target=burst) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # 240 MB sent in partial frames; peak RSS may grow by a few in-flight buffers only
    assert (after - before) * 1024 < 64 << 20
    with RawClient(bootstrap) as c:
        assert c.call(API_VERSIONS, 0, {})["error_code"] == 0


# ---- the command line -------------------------------------------------------------------------


def _start_cli(data_dir: str, *extra: str) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "headwater", "serve", "--data-dir", data_dir, "--listen", "127.0.0.1:0", *extra],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    line = proc.stdout.readline() if proc.stdout else ""
    assert line.startswith("headwater listening on 127.0.0.1:"), (line, proc.stderr.read() if proc.poll() is not None and proc.stderr else "")
    return proc, line.split()[-1]


@pytest.mark.parametrize("sig", ["SIGTERM", "SIGINT"])
def test_cli_serve_prints_address_and_stops_cleanly(tmp_path, sig: str) -> None:
    import signal

    d = str(tmp_path / "d")
    proc, addr = _start_cli(d, "--config", "num.partitions=3")
    try:
        with RawClient(addr) as c:
            resp = c.call(METADATA, 1, {"topics": [{"name": "cli"}]})
        assert len(resp["topics"][0]["partitions"]) == 3
        # a second server on the same directory: a clear error, not a corrupted directory
        second = subprocess.run([sys.executable, "-m", "headwater", "serve", "--data-dir", d, "--listen", "127.0.0.1:0"],
                                capture_output=True, text=True, timeout=30)
        assert second.returncode != 0 and "lock" in second.stderr.lower()
        proc.send_signal(getattr(signal, sig))
        assert proc.wait(timeout=15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    with Broker(d) as b:
        assert b.describe_topic("cli").partitions == 3
        assert b.get_log("cli", 0).recovery.clean_shutdown if hasattr(b.get_log("cli", 0).recovery, "clean_shutdown") else True


def test_cli_serve_bad_arguments(tmp_path) -> None:
    bad = subprocess.run([sys.executable, "-m", "headwater", "serve", "--data-dir", str(tmp_path), "--config", "nope"],
                         capture_output=True, text=True, timeout=30)
    assert bad.returncode == 2 and "KEY=VALUE" in bad.stderr
    unknown = subprocess.run([sys.executable, "-m", "headwater", "serve", "--data-dir", str(tmp_path), "--config", "no.such.setting=1"],
                             capture_output=True, text=True, timeout=30)
    assert unknown.returncode == 2 and "no.such.setting" in unknown.stderr


# ---- the pytest plugin ------------------------------------------------------------------------


def test_pytest_plugin_gives_a_kafka(tmp_path) -> None:
    (tmp_path / "test_uses_kafka.py").write_text(
        "from confluent_kafka import Consumer, Producer\n"
        "def test_roundtrip(kafka_bootstrap, kafka_server):\n"
        "    p = Producer({'bootstrap.servers': kafka_bootstrap})\n"
        "    for i in range(10):\n"
        "        p.produce('plugin-topic', value=b'v%d' % i)\n"
        "    assert p.flush(15) == 0\n"
        "    c = Consumer({'bootstrap.servers': kafka_bootstrap, 'group.id': 'g', 'auto.offset.reset': 'earliest'})\n"
        "    c.subscribe(['plugin-topic'])\n"
        "    got = []\n"
        "    import time\n"
        "    deadline = time.monotonic() + 30\n"
        "    while len(got) < 10 and time.monotonic() < deadline:\n"
        "        m = c.poll(0.5)\n"
        "        if m is not None and not m.error():\n"
        "            got.append(m.value())\n"
        "    c.close()\n"
        "    assert got == [b'v%d' % i for i in range(10)]\n"
        "    assert 'plugin-topic' in kafka_server.broker.list_topics()\n"
    )
    out = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
                         capture_output=True, text=True, timeout=120, cwd=str(tmp_path))
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
    assert "1 passed" in out.stdout
