"""Data-path handlers (Produce, Fetch, ListOffsets, OffsetForLeaderEpoch, DeleteRecords,
InitProducerId): error paths called directly, and the long poll against the real loop.

Goal: every rule of kafka-spec g.6/b.2/b.5/c the data path implements answers Kafka's codes:
bad acks, two batches in one partition, magic 1, zstd before Produce v7, unknown topics (no
auto-creation on Produce), acks=0 silence, idempotent duplicates, KIP-74, read_committed
stopping at the last stable offset, out-of-range offsets, fetch sessions, leader epochs,
ListOffsets by time and max timestamp, DeleteRecords bounds, InitProducerId without and with a
transactional id.

Method: a real Broker in tmp_path is served by the real KafkaServer (the `server` fixture).
`call()` encodes the request with the codec, decodes it as the server would, runs the handler
on the server's own event loop (so `wait_for_append` and appends from other threads behave as
in production), then encodes and decodes the response as a client would: a misspelled field
or a value of the wrong type fails here. `Wire` speaks the protocol over a socket for what only
the connection shows (acks=0 sends nothing; views are released once the response is written).
Every wait is bounded. Real clients are in test_data_path_clients.py.
"""

from __future__ import annotations

import asyncio
import inspect
import socket
import struct
import threading
import time
from typing import Any

import pytest

from headwater import record
from headwater.protocol import (
    decode_request,
    decode_request_header,
    decode_response,
    encode_request,
    encode_response,
)
from headwater.server.context import RequestContext
from headwater.server.handlers import HANDLERS

PRODUCE, FETCH, LIST_OFFSETS, METADATA = 0, 1, 2, 3
DELETE_RECORDS, INIT_PRODUCER_ID, OFFSET_FOR_LEADER_EPOCH = 21, 22, 23

NONE = 0
OFFSET_OUT_OF_RANGE = 1
CORRUPT_MESSAGE = 2
UNKNOWN_TOPIC_OR_PARTITION = 3
INVALID_TOPIC_EXCEPTION = 17
INVALID_REQUIRED_ACKS = 21
UNSUPPORTED_VERSION = 35
INVALID_REQUEST = 42
TRANSACTIONAL_ID_AUTHORIZATION_FAILED = 53
FETCH_SESSION_ID_NOT_FOUND = 70
UNKNOWN_LEADER_EPOCH = 75
UNSUPPORTED_COMPRESSION_TYPE = 76
INVALID_RECORD = 87

TRANSACTIONAL = 0x10  # batch attributes bit 4


# ---------------------------------------------------------------------------- helpers


def call(server: Any, api_key: int, version: int, body: dict, timeout: float = 10.0) -> dict | None:
    """Run one request through codec + handler (on the server's loop) + codec."""
    raw = encode_request(api_key, version, 7, body)
    header = decode_request_header(raw)
    request = decode_request(api_key, version, raw, header.body_offset)
    ctx = RequestContext(server, None, api_key, version, 7, "test")

    async def run() -> Any:
        out = HANDLERS[api_key](ctx, request)
        if inspect.isawaitable(out):
            out = await out
        return out

    out = asyncio.run_coroutine_threadsafe(run(), server.loop).result(timeout)
    try:
        if out is None:
            return None
        encoded = encode_response(api_key, version, 7, out)
    finally:
        ctx.run_after()
    corr, response = decode_response(api_key, version, encoded)
    assert corr == 7
    return response


class Wire:
    """A minimal Kafka client over one socket: send requests, read framed responses."""

    def __init__(self, bootstrap: str) -> None:
        host, port = bootstrap.rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)), timeout=10)
        self.corr = 0

    def send(self, api_key: int, version: int, body: dict) -> int:
        self.corr += 1
        self.sock.sendall(encode_request(api_key, version, self.corr, body, framed=True))
        return self.corr

    def recv(self, api_key: int, version: int) -> tuple[int, dict]:
        (size,) = struct.unpack(">i", self._read(4))
        return decode_response(api_key, version, self._read(size))

    def _read(self, n: int) -> bytes:
        out = bytearray()
        while len(out) < n:
            chunk = self.sock.recv(n - len(out))
            if not chunk:
                raise ConnectionError("server closed the connection")
            out += chunk
        return bytes(out)

    def close(self) -> None:
        self.sock.close()


def batch(values: list[bytes], **kwargs: Any) -> bytes:
    return record.build_batch(values, **kwargs)


def produce_body(topic: str, parts: dict[int, bytes | None], acks: int = -1, txn: str | None = None) -> dict:
    return {
        "transactional_id": txn,
        "acks": acks,
        "timeout_ms": 5000,
        "topic_data": [{"name": topic, "partition_data": [{"index": i, "records": r} for i, r in parts.items()]}],
    }


def produce_one(server: Any, topic: str, raw: bytes, version: int = 9, partition: int = 0) -> dict:
    resp = call(server, PRODUCE, version, produce_body(topic, {partition: raw}))
    assert resp is not None
    return resp["responses"][0]["partition_responses"][0]


def fetch_body(topic: str, offsets: dict[int, int], *, max_wait_ms: int = 0, min_bytes: int = 0,
               max_bytes: int = 52428800, partition_max_bytes: int = 1048576, isolation_level: int = 0,
               session_id: int = 0, session_epoch: int = -1, current_leader_epoch: int = -1) -> dict:
    return {
        "replica_id": -1,
        "max_wait_ms": max_wait_ms,
        "min_bytes": min_bytes,
        "max_bytes": max_bytes,
        "isolation_level": isolation_level,
        "session_id": session_id,
        "session_epoch": session_epoch,
        "topics": [{
            "topic": topic,
            "partitions": [
                {"partition": p, "current_leader_epoch": current_leader_epoch, "fetch_offset": o,
                 "log_start_offset": -1, "partition_max_bytes": partition_max_bytes}
                for p, o in offsets.items()
            ],
        }],
        "forgotten_topics_data": [],
        "rack_id": "",
    }


def fetch_parts(server: Any, topic: str, offsets: dict[int, int], version: int = 12, **kwargs: Any) -> list[dict]:
    resp = call(server, FETCH, version, fetch_body(topic, offsets, **kwargs))
    assert resp is not None and resp["error_code"] == NONE
    return resp["responses"][0]["partitions"]


def values_of(records: Any) -> list[bytes]:
    return [r.value for _, view in record.iter_batches(records or b"") for r in record.batch_records(view)]


def list_offsets(server: Any, topic: str, timestamp: int, version: int = 7, isolation_level: int = 0, partition: int = 0) -> dict:
    resp = call(server, LIST_OFFSETS, version, {
        "replica_id": -1,
        "isolation_level": isolation_level,
        "topics": [{"name": topic, "partitions": [{"partition_index": partition, "current_leader_epoch": -1, "timestamp": timestamp}]}],
    })
    assert resp is not None
    return resp["topics"][0]["partitions"][0]


# ---------------------------------------------------------------------------- Produce


def test_produce_appends_and_reports_offsets(broker: Any, server: Any) -> None:
    broker.create_topic("t", 1)
    first = produce_one(server, "t", batch([b"a", b"b"]))
    second = produce_one(server, "t", batch([b"c"]), version=3)
    assert (first["error_code"], first["base_offset"], first["log_start_offset"]) == (NONE, 0, 0)
    assert (second["error_code"], second["base_offset"]) == (NONE, 2)
    assert first["log_append_time_ms"] == -1  # CreateTime topic
    assert broker.get_log("t", 0).log_end_offset == 3


def test_produce_bad_acks_is_invalid_required_acks(broker: Any, server: Any) -> None:
    broker.create_topic("t", 1)
    resp = call(server, PRODUCE, 9, produce_body("t", {0: batch([b"x"])}, acks=2))
    part = resp["responses"][0]["partition_responses"][0]  # type: ignore[index]
    assert (part["error_code"], part["base_offset"]) == (INVALID_REQUIRED_ACKS, -1)
    assert part["error_message"]
    assert broker.get_log("t", 0).log_end_offset == 0


def test_produce_two_batches_in_one_partition_is_invalid_record(broker: Any, server: Any) -> None:
    broker.create_topic("t", 1)
    part = produce_one(server, "t", batch([b"a"]) + batch([b"b"]))
    assert (part["error_code"], part["base_offset"]) == (INVALID_RECORD, -1)
    assert broker.get_log("t", 0).log_end_offset == 0


def test_produce_magic_1_and_empty_records_are_invalid_record(broker: Any, server: Any) -> None:
    broker.create_topic("t", 1)
    legacy = bytearray(batch([b"a"]))
    legacy[16] = 1
    assert produce_one(server, "t", bytes(legacy))["error_code"] == INVALID_RECORD
    resp = call(server, PRODUCE, 9, produce_body("t", {0: None}))
    assert resp["responses"][0]["partition_responses"][0]["error_code"] == INVALID_RECORD  # type: ignore[index]


def test_produce_bad_crc_is_corrupt_message(broker: Any, server: Any) -> None:
    broker.create_topic("t", 1)
    bad = bytearray(batch([b"a" * 50]))
    bad[-1] ^= 0xFF
    assert produce_one(server, "t", bytes(bad))["error_code"] == CORRUPT_MESSAGE


def test_produce_zstd_before_v7_is_unsupported_compression_type(broker: Any, server: Any) -> None:
    broker.create_topic("t", 1)
    zstd = record.compress_batch(batch([b"z" * 100] * 10), "zstd")
    assert produce_one(server, "t", zstd, version=6)["error_code"] == UNSUPPORTED_COMPRESSION_TYPE
    ok = produce_one(server, "t", zstd, version=7)
    assert (ok["error_code"], ok["base_offset"]) == (NONE, 0)
    gzip = record.compress_batch(batch([b"g"] * 3), "gzip")
    assert produce_one(server, "t", gzip, version=3)["error_code"] == NONE


def test_produce_v0_to_v2_answer_unsupported_version(broker: Any, server: Any) -> None:
    broker.create_topic("t", 1)
    for version in (0, 1, 2):
        part = produce_one(server, "t", batch([b"a"]), version=version)
        assert (part["error_code"], part["base_offset"]) == (UNSUPPORTED_VERSION, -1)
    assert broker.get_log("t", 0).log_end_offset == 0


def test_produce_unknown_topic_is_not_auto_created(broker: Any, server: Any) -> None:
    assert broker.config["auto.create.topics.enable"]
    part = produce_one(server, "nope", batch([b"a"]))
    assert part["error_code"] == UNKNOWN_TOPIC_OR_PARTITION
    assert "nope" not in broker.list_topics()
    broker.create_topic("t", 1)
    assert produce_one(server, "t", batch([b"a"]), partition=1)["error_code"] == UNKNOWN_TOPIC_OR_PARTITION


def test_produce_to_internal_topic_is_refused(broker: Any, server: Any) -> None:
    part = produce_one(server, "__consumer_offsets", batch([b"a"]))
    assert part["error_code"] == INVALID_TOPIC_EXCEPTION


def test_produce_idempotent_retry_answers_original_offset(broker: Any, server: Any) -> None:
    broker.create_topic("t", 1)
    pid, epoch = broker._init_producer_id()
    produce_one(server, "t", batch([b"other"]))
    raw = batch([b"a", b"b"], producer_id=pid, producer_epoch=epoch, base_sequence=0)
    first = produce_one(server, "t", raw)
    retry = produce_one(server, "t", raw)
    assert (first["error_code"], first["base_offset"]) == (NONE, 1)
    assert (retry["error_code"], retry["base_offset"]) == (NONE, 1)
    assert broker.get_log("t", 0).log_end_offset == 3
    gap = produce_one(server, "t", batch([b"c"], producer_id=pid, producer_epoch=epoch, base_sequence=5))
    assert gap["error_code"] == 45  # OUT_OF_ORDER_SEQUENCE_NUMBER


def test_produce_acks_0_sends_no_response(broker: Any, server: Any, bootstrap: str) -> None:
    broker.create_topic("t", 1)
    assert call(server, PRODUCE, 9, produce_body("t", {0: batch([b"a"])}, acks=0)) is None
    wire = Wire(bootstrap)
    try:
        wire.send(PRODUCE, 9, produce_body("t", {0: batch([b"b"])}, acks=0))
        corr = wire.send(METADATA, 9, {"topics": [], "allow_auto_topic_creation": False})
        got, _ = wire.recv(METADATA, 9)  # the first bytes back answer the Metadata request
        assert got == corr
    finally:
        wire.close()
    assert broker.get_log("t", 0).log_end_offset == 2


def test_produce_acks_0_error_closes_the_connection(broker: Any, bootstrap: str) -> None:
    wire = Wire(bootstrap)
    try:
        wire.send(PRODUCE, 9, produce_body("missing", {0: batch([b"a"])}, acks=0))
        wire.send(METADATA, 9, {"topics": [], "allow_auto_topic_creation": False})
        with pytest.raises((ConnectionError, OSError)):
            wire.recv(METADATA, 9)
    finally:
        wire.close()


def test_produce_durable_append_runs_off_the_loop(tmp_path: Any) -> None:
    """flush.policy=batch: the fdatasync happens in an executor thread; results are the same."""
    from headwater.client.broker import Broker

    with Broker(str(tmp_path / "d"), {"flush.policy": "batch"}) as b:
        srv = b.serve(port=0)
        try:
            b.create_topic("t", 2)
            resp = call(srv, PRODUCE, 9, {
                "transactional_id": None, "acks": -1, "timeout_ms": 1000,
                "topic_data": [{"name": "t", "partition_data": [
                    {"index": 0, "records": batch([b"a"])},
                    {"index": 1, "records": batch([b"b", b"c"])},
                ]}],
            })
            parts = resp["responses"][0]["partition_responses"]  # type: ignore[index]
            assert [(p["index"], p["error_code"], p["base_offset"]) for p in parts] == [(0, NONE, 0), (1, NONE, 0)]
            assert b.get_log("t", 1).recovery_point == 2  # synced before the answer
        finally:
            srv.close()


# ---------------------------------------------------------------------------- Fetch


def test_fetch_returns_records_and_offsets(broker: Any, server: Any) -> None:
    broker.create_topic("t", 1)
    produce_one(server, "t", batch([b"a", b"b"]))
    produce_one(server, "t", batch([b"c"]))
    (part,) = fetch_parts(server, "t", {0: 1})
    assert part["error_code"] == NONE
    assert (part["high_watermark"], part["last_stable_offset"], part["log_start_offset"]) == (3, 3, 0)
    assert part["aborted_transactions"] is None  # read_uncommitted
    assert part["preferred_read_replica"] == -1
    # Data starts at the batch holding the fetch offset (b.2).
    assert values_of(part["records"]) == [b"a", b"b", b"c"]


def test_fetch_at_log_end_is_empty_and_past_it_is_out_of_range(broker: Any, server: Any) -> None:
    broker.create_topic("t", 1)
    produce_one(server, "t", batch([b"a"]))
    (at_end,) = fetch_parts(server, "t", {0: 1})
    assert (at_end["error_code"], len(at_end["records"]), at_end["high_watermark"]) == (NONE, 0, 1)
    (past,) = fetch_parts(server, "t", {0: 2})
    assert (past["error_code"], past["high_watermark"]) == (OFFSET_OUT_OF_RANGE, -1)


def test_fetch_error_answers_without_waiting(broker: Any, server: Any) -> None:
    t0 = time.monotonic()
    (part,) = fetch_parts(server, "ghost", {0: 0}, max_wait_ms=5000, min_bytes=1)
    assert part["error_code"] == UNKNOWN_TOPIC_OR_PARTITION
    assert time.monotonic() - t0 < 2.0


def test_fetch_kip74_first_batch_exceeds_both_limits(broker: Any, server: Any) -> None:
    broker.create_topic("t", 3)
    big = batch([b"x" * 5000])
    for p in range(3):
        produce_one(server, "t", big, partition=p)
        produce_one(server, "t", batch([b"y"]), partition=p)
    parts = fetch_parts(server, "t", {0: 0, 1: 0, 2: 0}, max_bytes=100, partition_max_bytes=100)
    # The first partition with data returns one whole batch, though it is 50x the limits ...
    assert len(parts[0]["records"]) == len(big)
    assert values_of(parts[0]["records"]) == [b"x" * 5000]
    # ... and the response budget is then spent: the others return nothing, without error.
    assert [(p["error_code"], len(p["records"])) for p in parts[1:]] == [(NONE, 0), (NONE, 0)]
    # Partition order is request order.
    assert [p["partition_index"] for p in parts] == [0, 1, 2]


def test_fetch_kip74_applies_to_the_first_partition_with_data(broker: Any, server: Any) -> None:
    broker.create_topic("t", 2)
    big = batch([b"x" * 5000])
    produce_one(server, "t", big, partition=1)
    empty, full = fetch_parts(server, "t", {0: 0, 1: 0}, max_bytes=10, partition_max_bytes=10)
    assert (empty["error_code"], len(empty["records"])) == (NONE, 0)
    assert len(full["records"]) == len(big)


def test_fetch_later_partition_is_cut_at_its_budget(broker: Any, server: Any) -> None:
    broker.create_topic("t", 2)
    small, big = batch([b"s" * 100]), batch([b"x" * 5000])
    produce_one(server, "t", small, partition=0)
    produce_one(server, "t", big, partition=1)
    p0, p1 = fetch_parts(server, "t", {0: 0, 1: 0}, max_bytes=len(small) + 1000, partition_max_bytes=100_000)
    assert len(p0["records"]) == len(small)
    # Kafka's minOneMessage=false read: a prefix of the batch, which clients discard.
    assert len(p1["records"]) == 1000
    assert values_of(p1["records"]) == []


def test_fetch_partition_max_bytes_keeps_whole_batches(broker: Any, server: Any) -> None:
    broker.create_topic("t", 1)
    one = batch([b"a" * 300])
    for _ in range(5):
        produce_one(server, "t", one)
    (part,) = fetch_parts(server, "t", {0: 0}, partition_max_bytes=len(one) * 2 + 10)
    assert len(part["records"]) == 2 * len(one)


def test_fetch_reads_one_segment_at_a_time(tmp_path: Any) -> None:
    """As Kafka: a fetch stops at the end of the segment holding the fetch offset; the next
    fetch, from where it stopped, continues in the next segment."""
    from headwater.client.broker import Broker

    one = batch([b"s" * 400])
    with Broker(str(tmp_path / "d"), {"segment.bytes": len(one) * 3}) as b:
        srv = b.serve(port=0)
        try:
            b.create_topic("t", 1)
            for _ in range(7):
                produce_one(srv, "t", one)
            assert len(b.get_log("t", 0).segments) >= 3
            offset, seen, fetches = 0, 0, 0
            while offset < 7 and fetches < 10:
                (part,) = fetch_parts(srv, "t", {0: offset})
                got = len(values_of(part["records"]))
                assert 1 <= got <= 3
                seen, offset, fetches = seen + got, offset + got, fetches + 1
            assert (seen, fetches) == (7, 3)
        finally:
            srv.close()


def test_fetch_long_poll_answers_on_concurrent_append(broker: Any, server: Any) -> None:
    broker.create_topic("t", 1)
    producer = broker.producer({"linger.ms": 0})

    def later() -> None:
        time.sleep(0.3)
        producer.produce("t", b"late", partition=0)
        producer.flush(5)

    thread = threading.Thread(target=later)
    t0 = time.monotonic()
    thread.start()
    try:
        (part,) = fetch_parts(server, "t", {0: 0}, max_wait_ms=5000, min_bytes=1)
    finally:
        thread.join(10)
        producer.close()
    elapsed = time.monotonic() - t0
    assert values_of(part["records"]) == [b"late"]
    assert 0.25 <= elapsed < 3.0, elapsed


def test_fetch_long_poll_keeps_waiting_below_min_bytes(broker: Any, server: Any) -> None:
    """An append that leaves the fetch below min_bytes does not answer it; max_wait_ms does."""
    broker.create_topic("t", 1)
    broker.create_topic("other", 1)

    def later() -> None:
        time.sleep(0.1)
        produce_one(server, "other", batch([b"elsewhere"]))  # wakes the poll, not enough
        produce_one(server, "t", batch([b"tiny"]))

    thread = threading.Thread(target=later)
    t0 = time.monotonic()
    thread.start()
    try:
        (part,) = fetch_parts(server, "t", {0: 0}, max_wait_ms=600, min_bytes=100_000)
    finally:
        thread.join(10)
    elapsed = time.monotonic() - t0
    assert values_of(part["records"]) == [b"tiny"]
    assert 0.55 <= elapsed < 3.0, elapsed


def test_fetch_max_wait_without_data_returns_empty(broker: Any, server: Any) -> None:
    broker.create_topic("t", 1)
    t0 = time.monotonic()
    (part,) = fetch_parts(server, "t", {0: 0}, max_wait_ms=300, min_bytes=1)
    elapsed = time.monotonic() - t0
    assert (part["error_code"], len(part["records"]), part["high_watermark"]) == (NONE, 0, 0)
    assert 0.28 <= elapsed < 3.0, elapsed


def test_fetch_read_committed_stops_at_last_stable_offset(broker: Any, server: Any) -> None:
    broker.create_topic("t", 1)
    produce_one(server, "t", batch([b"plain"]))
    coordinator = broker.txn_coordinator
    # The coordinator's clock is the caller's: now, or the broker timer's next step (every
    # 50 ms) would find a transaction begun in 1970 long timed out and its id expired.
    now_ms = int(time.time() * 1000)
    init = broker._txn_call(coordinator.init_producer_id, "tx", 60000, now_ms)
    pid, epoch = init.producer_id, init.producer_epoch
    broker._txn_call(coordinator.add_partitions, "tx", pid, epoch, [("t", 0)], now_ms)  # AddPartitionsToTxn
    txn = batch([b"open-txn"], producer_id=pid, producer_epoch=epoch, base_sequence=0, attributes=TRANSACTIONAL)
    resp = call(server, PRODUCE, 9, produce_body("t", {0: txn}, txn="tx"))
    assert resp is not None and resp["responses"][0]["partition_responses"][0]["error_code"] == NONE
    produce_one(server, "t", batch([b"after"]))
    (committed,) = fetch_parts(server, "t", {0: 0}, isolation_level=1)
    assert (committed["high_watermark"], committed["last_stable_offset"]) == (3, 1)
    assert values_of(committed["records"]) == [b"plain"]
    assert committed["aborted_transactions"] == []
    (uncommitted,) = fetch_parts(server, "t", {0: 0}, isolation_level=0)
    assert values_of(uncommitted["records"]) == [b"plain", b"open-txn", b"after"]
    assert uncommitted["last_stable_offset"] == 1
    # ListOffsets latest follows the isolation level too.
    assert list_offsets(server, "t", -1, isolation_level=1)["offset"] == 1
    assert list_offsets(server, "t", -1, isolation_level=0)["offset"] == 3


def test_fetch_incremental_session_is_not_found(broker: Any, server: Any) -> None:
    broker.create_topic("t", 1)
    resp = call(server, FETCH, 12, fetch_body("t", {0: 0}, session_id=123, session_epoch=4))
    assert (resp["error_code"], resp["responses"]) == (FETCH_SESSION_ID_NOT_FOUND, [])  # type: ignore[index]
    # A full fetch asking for a new session (epoch 0) is served, sessionless (id 0).
    resp = call(server, FETCH, 12, fetch_body("t", {0: 0}, session_id=0, session_epoch=0))
    assert (resp["error_code"], resp["session_id"]) == (NONE, 0)  # type: ignore[index]


def test_fetch_leader_epoch_ahead_is_unknown(broker: Any, server: Any) -> None:
    broker.create_topic("t", 1)
    (part,) = fetch_parts(server, "t", {0: 0}, version=9, current_leader_epoch=3)
    assert part["error_code"] == UNKNOWN_LEADER_EPOCH
    (part,) = fetch_parts(server, "t", {0: 0}, version=9, current_leader_epoch=0)
    assert part["error_code"] == NONE


def test_fetch_zstd_topic_before_v10_is_unsupported(broker: Any, server: Any, monkeypatch: Any) -> None:
    """Kafka refuses Fetch < v10 on a topic whose compression.type is zstd. Topic configs do
    not carry compression.type yet, so the broker's answer is patched to say it."""
    broker.create_topic("t", 1)
    real = broker.topic_config
    monkeypatch.setattr(broker, "topic_config", lambda name: {**real(name), "compression.type": "zstd"})
    (old,) = fetch_parts(server, "t", {0: 0}, version=9)
    (new,) = fetch_parts(server, "t", {0: 0}, version=10)
    assert (old["error_code"], new["error_code"]) == (UNSUPPORTED_COMPRESSION_TYPE, NONE)


def test_fetch_over_the_wire_releases_segment_views(broker: Any, server: Any, bootstrap: str) -> None:
    """Zero-copy: the segment is pinned while the response is built, free once it is sent."""
    broker.create_topic("t", 1)
    produce_one(server, "t", batch([b"v" * 10_000]))
    wire = Wire(bootstrap)
    try:
        wire.send(FETCH, 12, fetch_body("t", {0: 0}))
        _, resp = wire.recv(FETCH, 12)
    finally:
        wire.close()
    assert values_of(resp["responses"][0]["partitions"][0]["records"]) == [b"v" * 10_000]
    seg = broker.get_log("t", 0).segments[-1]
    deadline = time.monotonic() + 5
    while seg.log.exported_views and time.monotonic() < deadline:
        time.sleep(0.01)
    assert seg.log.exported_views == 0


# ---------------------------------------------------------------------------- ListOffsets


def test_list_offsets_earliest_latest_and_by_time(broker: Any, server: Any) -> None:
    broker.create_topic("t", 1)
    produce_one(server, "t", batch([b"a", b"b"], timestamps=[1000, 1500]))
    produce_one(server, "t", batch([b"c"], timestamps=[3000]))
    produce_one(server, "t", batch([b"d"], timestamps=[2000]))
    assert (list_offsets(server, "t", -2)["offset"], list_offsets(server, "t", -1)["offset"]) == (0, 4)
    hit = list_offsets(server, "t", 1200)
    assert (hit["error_code"], hit["offset"], hit["timestamp"], hit["leader_epoch"]) == (NONE, 1, 1500, 0)
    assert (list_offsets(server, "t", 1000)["offset"], list_offsets(server, "t", 1501)["offset"]) == (0, 2)
    miss = list_offsets(server, "t", 9000)
    assert (miss["offset"], miss["timestamp"], miss["leader_epoch"]) == (-1, -1, -1)
    # KIP-734 (v7): the record with the largest timestamp, not the last one.
    top = list_offsets(server, "t", -3)
    assert (top["offset"], top["timestamp"]) == (2, 3000)
    assert list_offsets(server, "t", 1200, version=1)["offset"] == 1


def test_list_offsets_errors(broker: Any, server: Any) -> None:
    broker.create_topic("t", 1)
    assert list_offsets(server, "ghost", -1)["error_code"] == UNKNOWN_TOPIC_OR_PARTITION
    assert list_offsets(server, "t", -1, partition=4)["error_code"] == UNKNOWN_TOPIC_OR_PARTITION
    resp = call(server, LIST_OFFSETS, 7, {"replica_id": -1, "isolation_level": 0, "topics": [
        {"name": "t", "partitions": [{"partition_index": 0, "current_leader_epoch": 9, "timestamp": -1},
                                     {"partition_index": 0, "current_leader_epoch": -1, "timestamp": -1}]},
    ]})
    codes = [p["error_code"] for p in resp["topics"][0]["partitions"]]  # type: ignore[index]
    assert codes == [INVALID_REQUEST, INVALID_REQUEST]  # a partition listed twice
    resp = call(server, LIST_OFFSETS, 7, {"replica_id": -1, "isolation_level": 0, "topics": [
        {"name": "t", "partitions": [{"partition_index": 0, "current_leader_epoch": 9, "timestamp": -1}]},
    ]})
    assert resp["topics"][0]["partitions"][0]["error_code"] == UNKNOWN_LEADER_EPOCH  # type: ignore[index]


# ---------------------------------------------------------------------------- DeleteRecords


def delete_records(server: Any, topic: str, offset: int, partition: int = 0) -> dict:
    resp = call(server, DELETE_RECORDS, 2, {
        "topics": [{"name": topic, "partitions": [{"partition_index": partition, "offset": offset}]}],
        "timeout_ms": 1000,
    })
    return resp["topics"][0]["partitions"][0]  # type: ignore[index]


def test_delete_records_moves_the_low_watermark(broker: Any, server: Any) -> None:
    broker.create_topic("t", 1)
    for v in (b"a", b"b", b"c"):
        produce_one(server, "t", batch([v]))
    assert (delete_records(server, "t", 2)["error_code"], delete_records(server, "t", 2)["low_watermark"]) == (NONE, 2)
    assert list_offsets(server, "t", -2)["offset"] == 2
    (below,) = fetch_parts(server, "t", {0: 1})
    assert below["error_code"] == OFFSET_OUT_OF_RANGE
    (kept,) = fetch_parts(server, "t", {0: 2})
    assert (values_of(kept["records"]), kept["log_start_offset"]) == ([b"c"], 2)
    # Deleting below the low watermark keeps it; -1 means the high watermark.
    assert delete_records(server, "t", 1)["low_watermark"] == 2
    assert delete_records(server, "t", -1)["low_watermark"] == 3


def test_delete_records_errors(broker: Any, server: Any) -> None:
    broker.create_topic("t", 1)
    produce_one(server, "t", batch([b"a"]))
    beyond = delete_records(server, "t", 5)
    assert (beyond["error_code"], beyond["low_watermark"]) == (OFFSET_OUT_OF_RANGE, -1)
    assert delete_records(server, "t", -7)["error_code"] == OFFSET_OUT_OF_RANGE
    assert delete_records(server, "ghost", 0)["error_code"] == UNKNOWN_TOPIC_OR_PARTITION
    broker.create_topic("compacted", 1, {"cleanup.policy": "compact"})
    assert delete_records(server, "compacted", 0)["error_code"] == 44  # POLICY_VIOLATION


# ---------------------------------------------------------------------------- OffsetForLeaderEpoch


def test_offset_for_leader_epoch(broker: Any, server: Any) -> None:
    broker.create_topic("t", 1)
    produce_one(server, "t", batch([b"a", b"b"]))

    def ask(epoch: int, current: int = -1, version: int = 4, topic: str = "t") -> dict:
        resp = call(server, OFFSET_FOR_LEADER_EPOCH, version, {"replica_id": -1, "topics": [
            {"topic": topic, "partitions": [{"partition": 0, "current_leader_epoch": current, "leader_epoch": epoch}]},
        ]})
        return resp["topics"][0]["partitions"][0]  # type: ignore[index]

    ok = ask(0, current=0)
    assert (ok["error_code"], ok["leader_epoch"], ok["end_offset"]) == (NONE, 0, 2)
    assert ask(0, version=2)["end_offset"] == 2
    unknown = ask(5)
    assert (unknown["error_code"], unknown["leader_epoch"], unknown["end_offset"]) == (NONE, -1, -1)
    assert ask(0, current=1)["error_code"] == UNKNOWN_LEADER_EPOCH
    assert ask(0, topic="ghost")["error_code"] == UNKNOWN_TOPIC_OR_PARTITION


# ---------------------------------------------------------------------------- InitProducerId


def init_pid(server: Any, version: int, txn: str | None = None, pid: int = -1, epoch: int = -1) -> dict:
    resp = call(server, INIT_PRODUCER_ID, version, {
        "transactional_id": txn, "transaction_timeout_ms": 60000, "producer_id": pid, "producer_epoch": epoch,
    })
    assert resp is not None
    return resp


def test_init_producer_id_idempotent(broker: Any, server: Any) -> None:
    a, b = init_pid(server, 0), init_pid(server, 4)
    assert (a["error_code"], a["producer_epoch"], b["error_code"], b["producer_epoch"]) == (NONE, 0, NONE, 0)
    assert a["producer_id"] >= 0 and b["producer_id"] != a["producer_id"]
    # KIP-360 bump of an idempotent producer: as Kafka, a fresh producer id with epoch 0.
    bumped = init_pid(server, 3, pid=b["producer_id"], epoch=0)
    assert (bumped["error_code"], bumped["producer_epoch"]) == (NONE, 0)
    assert bumped["producer_id"] not in (a["producer_id"], b["producer_id"])
    half = init_pid(server, 4, pid=b["producer_id"], epoch=-1)
    assert (half["error_code"], half["producer_id"]) == (INVALID_REQUEST, -1)


def test_init_producer_id_transactional_goes_to_the_transaction_coordinator(broker: Any, server: Any) -> None:
    first = init_pid(server, 4, txn="my-txn")
    again = init_pid(server, 4, txn="my-txn")  # a new instance: same id, epoch bumped (fencing)
    assert (first["error_code"], first["producer_epoch"]) == (0, 0) and first["producer_id"] >= 0
    assert (again["error_code"], again["producer_id"], again["producer_epoch"]) == (0, first["producer_id"], 1)
    assert init_pid(server, 1, txn="")["error_code"] == INVALID_REQUEST
