"""The data path: Produce (0), Fetch (1), ListOffsets (2), DeleteRecords (21),
InitProducerId (22) and OffsetForLeaderEpoch (23) (kafka-spec g.6, b.2, b.5, c).

Produce: versions 3-9 append; 0-2 are advertised only because librdkafka <= 2.11.0 enables
gzip/snappy/lz4 when the broker's Produce range contains 0 (kafka-spec h.2), and are answered
with UNSUPPORTED_VERSION per partition, as Kafka 4.0 does. Each partition carries exactly one
magic-2 RecordBatch, appended as received through `Broker._append_batch` (validation, offset
stamping and the idempotent-producer checks live in the log layer). acks=0 sends no response;
an error then closes the connection, as in Kafka, so the client notices.

Durability and the event loop: a `flush.policy=batch` log fdatasyncs inside the append, which
would stall every connection for the length of a disk flush. Such appends run on a small
thread pool (`_DURABLE_POOL`), one task per partition so their flushes overlap, while the loop
keeps serving; the request's connection waits for them, so a connection's appends still land
in request order (connections serve one request at a time, connection.py). Other policies
append inline: a memcpy into the mapping costs less than a thread hop. (The interval policy
still fdatasyncs inside an append once per flush.ms, and the timer's flush holds the log lock
while it syncs: both stall the loop for the length of that flush, 30-45 ms per partition per
second at 300k records/s. That is the log layer's to fix: sync outside the lock, leave
time-based flushes to the timer.)

Fetch: sessionless only (a full fetch is answered with session id 0, which tells the client we
declined to create a session; an incremental fetch names a session we never created and gets
FETCH_SESSION_ID_NOT_FOUND). Long poll: the read is repeated after every append (any
partition, `KafkaServer.wait_for_append`) until `min_bytes` are gathered or `max_wait_ms` has
passed; an error in any partition answers at once, as Kafka's DelayedFetch does. Partitions are
served in request order; the first one with data returns at least one whole batch whatever the
limits (KIP-74, done by `PartitionLog.read`), later ones are cut at their byte budget, possibly
mid-batch (clients drop a partial trailing batch), as Kafka's LogSegment.read does. One read
covers at most one segment, as in Kafka: the client fetches again from where it stopped.
read_committed (isolation_level 1): only whole batches below the last stable offset, with
AbortedTransactions = the aborted transactions overlapping the returned range (from the
`.txnindex`, `PartitionLog.read(isolation_level=READ_COMMITTED)`); read_uncommitted answers
AbortedTransactions null (kafka-spec d.4). ListOffsets latest is the LSO for read_committed.

Zero-copy: a partition's records are the memoryview `PartitionLog.read` returns (a view of the
segment mapping, or a slice of it); the response encoder writes it as its own gather buffer and
the view is released through `ctx.after_response` once the bytes are handed to the transport.
Until then the segment cannot be truncated or deleted (retention skips it and retries).

Leader epoch: one node, one constant leader epoch (`KafkaServer.leader_epoch`, 0). A client
naming a higher current epoch gets UNKNOWN_LEADER_EPOCH; a lower one (only possible if it
remembers a negative epoch, which it never sends) would be FENCED_LEADER_EPOCH; -1 means "not
known" and is not checked.

Thread-safety: handlers run on the server's loop; the Broker and PartitionLog are thread-safe.
"""

from __future__ import annotations

import asyncio
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from headwater.errors import (
    InvalidProducerEpochError,
    InvalidRecordError,
    InvalidTxnStateError,
    ProducerFencedError,
    UnsupportedCompressionTypeError,
)
from headwater.log.partition_log import MAX_TIMESTAMP
from headwater.server import errors as E
from headwater.server.context import RequestContext
from headwater.server.handlers.txn import init_producer_id_transactional

log = logging.getLogger("headwater.server")

# Error codes errors.py does not name yet (Kafka's Errors.java; see the module docstring of
# server/errors.py: to be moved there).
FETCH_SESSION_ID_NOT_FOUND = 70

PRODUCE = 0
FETCH = 1
LIST_OFFSETS = 2
DELETE_RECORDS = 21
INIT_PRODUCER_ID = 22
OFFSET_FOR_LEADER_EPOCH = 23

READ_COMMITTED = 1
INTERNAL_TOPICS = frozenset({"__consumer_offsets", "__transaction_state"})

# RecordBatch v2 header positions (kafka-spec a.1): magic int8 at 16, attributes int16 at 21
# (codec = low 3 bits of its low byte, 22), base offset int64 at 0.
_MAGIC_POS = 16
_ATTRIBUTES_LOW_POS = 22
_TRANSACTIONAL = 0x10  # attributes bit 4
_PRODUCER_ID_POS = 43  # RecordBatch v2: int64 producerId, then int16 producerEpoch
_PRODUCER_EPOCH_POS = 51
_MIN_BATCH = 61
_ZSTD = 4

# Threads for appends that fdatasync (flush.policy=batch) and other blocking log work. Four let
# the partitions of one Produce sync at once (a 4-partition request with 230 KB per partition
# was answered in 5.1 ms instead of 6.7 ms); one partition's appends are serialised by its
# log's lock anyway, and one connection's by its FIFO. Threads start on first use.
_DURABLE_POOL = ThreadPoolExecutor(max_workers=4, thread_name_prefix="headwater-append")


def _code(exc: BaseException) -> int:
    """error_code(exc), logging the traceback of anything that maps to UNKNOWN_SERVER_ERROR."""
    code = E.error_code(exc)
    if code == E.UNKNOWN_SERVER_ERROR:
        log.error("unexpected error serving a data-path request", exc_info=exc)
    return code


def _check_leader_epoch(ctx: RequestContext, current_leader_epoch: int) -> int:
    """NONE, or the error for a client that names another current leader epoch than ours."""
    if current_leader_epoch < 0:
        return E.NONE
    ours = ctx.server.leader_epoch
    if current_leader_epoch > ours:
        return E.UNKNOWN_LEADER_EPOCH
    if current_leader_epoch < ours:
        return E.FENCED_LEADER_EPOCH
    return E.NONE


# ---------------------------------------------------------------------------- Produce (0)


def _produce_error(index: int, code: int, message: str | None) -> dict:
    return {
        "index": index,
        "error_code": code,
        "base_offset": -1,
        "log_append_time_ms": -1,
        "log_start_offset": -1,
        "record_errors": [],
        "error_message": message,
    }


def _check_produce_records(records: Any, version: int) -> None:
    """Kafka's ProduceRequest.validateRecords, the part that needs no parsing: the data starts
    with a magic-2 batch, and zstd needs v7+. "Exactly one batch" and the CRC are checked by
    the log's append (InvalidRecordError / CorruptRecordError)."""
    if records is None or len(records) < _MIN_BATCH:
        raise InvalidRecordError(f"Produce v{version} needs exactly one record batch per partition")
    if records[_MAGIC_POS] != 2:
        raise InvalidRecordError(
            f"Produce v{version} accepts only magic 2 record batches, not magic {records[_MAGIC_POS]}"
        )
    if version < 7 and records[_ATTRIBUTES_LOW_POS] & 0x07 == _ZSTD:
        raise UnsupportedCompressionTypeError(f"zstd batches need Produce v7+, not v{version}")


def _verify_transactional(broker: Any, txn_id: str | None, topic: str, index: int, records: Any) -> None:
    """A transactional batch only for a partition of the producer's open transaction
    (KIP-890's verification, Kafka 3.6+'s transaction.partition.verification.enable): a batch
    the coordinator does not expect would open a transaction nobody ends. That happens when
    the server restarted meanwhile (the Ongoing record is written lazily) or when the
    transaction was already aborted. INVALID_TXN_STATE, or the fencing error."""
    if txn_id is None:
        raise InvalidTxnStateError("a transactional batch in a Produce request without a transactional id")
    producer_id = int.from_bytes(records[_PRODUCER_ID_POS:_PRODUCER_ID_POS + 8], "big", signed=True)
    epoch = int.from_bytes(records[_PRODUCER_EPOCH_POS:_PRODUCER_EPOCH_POS + 2], "big", signed=True)
    # Read-only and without the broker lock: a transaction call holding it may be in an
    # fdatasync, and this runs on the event loop. Each read is GIL-atomic; the answer is as
    # fresh as Kafka's own check, made when the request arrives.
    error = broker.txn_coordinator.verify_partitions(txn_id, producer_id, epoch, [(topic, index)])[(topic, index)]
    if isinstance(error, ProducerFencedError):
        # Produce answers a stale epoch as the log does: INVALID_PRODUCER_EPOCH (47).
        raise InvalidProducerEpochError(str(error))
    if error is not None:
        raise error


def _append_partition(broker: Any, topic: str, index: int, records: Any, version: int, txn_id: str | None = None) -> dict:
    """Append one partition's batch; its ProduceResponse partition entry."""
    try:
        if topic in INTERNAL_TOPICS:
            return _produce_error(index, E.INVALID_TOPIC_EXCEPTION, f"cannot append to internal topic {topic}")
        _check_produce_records(records, version)
        if records[_ATTRIBUTES_LOW_POS] & _TRANSACTIONAL:
            _verify_transactional(broker, txn_id, topic, index, records)
        res = broker._append_batch(topic, index, records)
    except Exception as exc:
        return _produce_error(index, _code(exc), E.error_message(exc))
    return {
        "index": index,
        "error_code": E.NONE,
        "base_offset": res.base_offset,
        "log_append_time_ms": res.log_append_time,
        "log_start_offset": res.log_start_offset,
    }


def _append_all(broker: Any, topics: list, version: int, txn_id: str | None) -> list:
    out = []
    for t in topics:
        name = t["name"]
        out.append({
            "name": name,
            "partition_responses": [
                _append_partition(broker, name, p["index"], p["records"], version, txn_id) for p in t["partition_data"]
            ],
        })
    return out


def _is_durable(broker: Any, topics: list) -> bool:
    """Does some partition of the request fsync inside its append (flush.policy=batch)?"""
    for t in topics:
        for p in t["partition_data"]:
            try:
                if broker.get_log(t["name"], p["index"]).config.flush_policy == "batch":
                    return True
            except Exception:  # unknown partition: its append fails fast, inline is fine
                continue
    return False


def _produce_failed(topics: list, code: int, message: str) -> list:
    return [
        {"name": t["name"], "partition_responses": [_produce_error(p["index"], code, message) for p in t["partition_data"]]}
        for t in topics
    ]


def _produce_response(ctx: RequestContext, acks: int, responses: list) -> dict | None:
    if acks == 0:
        # No response for acks=0; an error closes the connection instead (Kafka does this so
        # the client refreshes its metadata rather than producing into the void).
        if any(p["error_code"] for t in responses for p in t["partition_responses"]):
            abort = getattr(ctx.connection, "abort", None)
            if abort is not None:
                abort()
        return None
    return {"responses": responses, "throttle_time_ms": 0}


def handle_produce(ctx: RequestContext, request: dict) -> Any:
    """Produce: a response dict, None (acks=0), or an awaitable of either when some partition
    must reach the disk first (flush.policy=batch: the append runs off the event loop)."""
    version = ctx.api_version
    acks = request["acks"]
    topics = request["topic_data"]
    if version < 3:
        return _produce_response(ctx, acks, _produce_failed(
            topics, E.UNSUPPORTED_VERSION, f"Produce v{version} (message format v0/v1) is not supported; use v3+"
        ))
    if acks not in (0, 1, -1):
        return _produce_response(ctx, acks, _produce_failed(
            topics, E.INVALID_REQUIRED_ACKS, f"acks must be 0, 1 or -1, not {acks}"
        ))
    broker = ctx.broker
    txn_id = request.get("transactional_id")
    if _is_durable(broker, topics):
        return _produce_durable(ctx, acks, topics, version, txn_id)
    return _produce_response(ctx, acks, _append_all(broker, topics, version, txn_id))


async def _produce_durable(ctx: RequestContext, acks: int, topics: list, version: int, txn_id: str | None) -> dict | None:
    """Each partition's append (and fdatasync) on the pool at once: different partitions are
    different files, so their flushes overlap instead of adding up."""
    loop = asyncio.get_running_loop()
    pool = _DURABLE_POOL
    broker = ctx.broker
    pending = [
        [loop.run_in_executor(pool, _append_partition, broker, t["name"], p["index"], p["records"], version, txn_id)
         for p in t["partition_data"]]
        for t in topics
    ]
    responses = [
        {"name": t["name"], "partition_responses": list(await asyncio.gather(*futures))}
        for t, futures in zip(topics, pending, strict=True)
    ]
    return _produce_response(ctx, acks, responses)


# ---------------------------------------------------------------------------- Fetch (1)


def _fetch_error(index: int, code: int) -> dict:
    # As Kafka's LogReadResult for a failed read: every offset unknown, empty records.
    return {
        "partition_index": index,
        "error_code": code,
        "high_watermark": -1,
        "last_stable_offset": -1,
        "log_start_offset": -1,
        "aborted_transactions": None,
        "preferred_read_replica": -1,
        "records": b"",
    }


def _aborted_list(aborted: list[tuple[int, int]] | None) -> list:
    """The read's aborted transactions as Fetch's AbortedTransactions entries."""
    return [{"producer_id": pid, "first_offset": first} for pid, first in aborted or ()]


def _topic_is_zstd(broker: Any, topic: str) -> bool:
    try:
        return str(broker.topic_config(topic).get("compression.type", "")).lower() == "zstd"
    except Exception:  # unknown topic: the partition read reports it
        return False


class _FetchPass:
    """One read of every requested partition; what the long poll decides on."""

    __slots__ = ("responses", "nbytes", "error", "views")

    def __init__(self) -> None:
        self.responses: list = []
        self.nbytes = 0
        self.error = False
        self.views: list = []  # ReadResults and slices to release after the response

    def release(self) -> None:
        views, self.views = self.views, []
        for v in reversed(views):  # slices first, then the results they were cut from
            v.release()


def _fetch_pass(ctx: RequestContext, request: dict) -> _FetchPass:
    version = ctx.api_version
    broker = ctx.broker
    read_committed = request["isolation_level"] == READ_COMMITTED
    budget = request["max_bytes"]
    out = _FetchPass()
    first = True  # KIP-74: no partition has returned data yet
    for t in request["topics"]:
        name = t["topic"]
        zstd_topic = version < 10 and _topic_is_zstd(broker, name)
        parts = []
        for p in t["partitions"]:
            index = p["partition"]
            code = _check_leader_epoch(ctx, p["current_leader_epoch"])
            if code == E.NONE and zstd_topic:
                code = E.UNSUPPORTED_COMPRESSION_TYPE
            if code != E.NONE:
                parts.append(_fetch_error(index, code))
                out.error = True
                continue
            try:
                plog = broker.get_log(name, index)
                limit = max(0, min(p["partition_max_bytes"], budget))
                if read_committed:
                    # Whole batches below the LSO, with the aborted transactions overlapping
                    # them (kafka-spec d.4); both from one look at the log under its lock.
                    result = plog.read(p["fetch_offset"], limit, verify_crc=False, isolation_level=READ_COMMITTED)
                else:
                    result = plog.read(p["fetch_offset"], limit, verify_crc=False)
                lso = result.last_stable_offset
            except Exception as exc:
                parts.append(_fetch_error(index, _code(exc)))
                out.error = True
                continue
            view = result.view
            records: Any = b""
            if view is not None:
                out.views.append(result)
                size = len(view)
                if not first and size > limit:
                    size = limit  # Kafka cuts later partitions mid-batch (minOneMessage=false)
                if size == len(view):
                    records = view
                elif size > 0:
                    records = view[:size]
                    out.views.append(records)
                if size > 0:
                    first = False
                    budget -= size
                    out.nbytes += size
            parts.append({
                "partition_index": index,
                "error_code": E.NONE,
                "high_watermark": result.high_watermark,
                "last_stable_offset": lso,
                "log_start_offset": result.log_start_offset,
                "aborted_transactions": _aborted_list(result.aborted_transactions) if read_committed else None,
                "preferred_read_replica": -1,
                "records": records,
            })
        out.responses.append({"topic": name, "partitions": parts})
    return out


async def handle_fetch(ctx: RequestContext, request: dict) -> dict:
    """Fetch v4-12, sessionless, with the min_bytes/max_wait_ms long poll."""
    start = time.monotonic()
    if request["session_epoch"] not in (0, -1):
        # An incremental fetch (epoch > 0) names a session; we never create one.
        return {"throttle_time_ms": 0, "error_code": FETCH_SESSION_ID_NOT_FOUND, "session_id": 0, "responses": []}
    max_wait_s = max(request["max_wait_ms"], 0) / 1000.0
    min_bytes = request["min_bytes"]
    while True:
        result = _fetch_pass(ctx, request)
        remaining = start + max_wait_s - time.monotonic()
        if result.error or result.nbytes >= min_bytes or remaining <= 0:
            break
        result.release()
        if not await ctx.server.wait_for_append(remaining):
            result = _fetch_pass(ctx, request)  # timed out (or stopping): answer what there is
            break
    ctx.after_response(result.release)
    return {"throttle_time_ms": 0, "error_code": E.NONE, "session_id": 0, "responses": result.responses}


# ---------------------------------------------------------------------------- ListOffsets (2)


def _list_offset(ctx: RequestContext, plog: Any, timestamp: int, read_committed: bool) -> tuple[int, int]:
    """(offset, timestamp) for one ListOffsets partition; (-1, -1) when nothing matches."""
    if timestamp == MAX_TIMESTAMP and ctx.api_version < 7:
        return -1, -1  # -3 below v7 is no special value: Kafka looks it up as a time, finds nothing
    return plog.list_offset(timestamp, read_committed)  # type: ignore[no-any-return]


def handle_list_offsets(ctx: RequestContext, request: dict) -> dict:
    """ListOffsets v1-7: earliest, latest (HW or LSO), max timestamp (v7) and by timestamp."""
    broker = ctx.broker
    read_committed = request["isolation_level"] == READ_COMMITTED
    seen: set[tuple[str, int]] = set()
    dupes: set[tuple[str, int]] = set()
    for t in request["topics"]:
        for p in t["partitions"]:
            key = (t["name"], p["partition_index"])
            (dupes if key in seen else seen).add(key)
    topics = []
    for t in request["topics"]:
        name = t["name"]
        parts = []
        for p in t["partitions"]:
            index = p["partition_index"]
            entry = {"partition_index": index, "error_code": E.NONE, "timestamp": -1, "offset": -1, "leader_epoch": -1}
            if (name, index) in dupes:
                entry["error_code"] = E.INVALID_REQUEST  # Kafka refuses a partition listed twice
            else:
                code = _check_leader_epoch(ctx, p["current_leader_epoch"])
                if code != E.NONE:
                    entry["error_code"] = code
                else:
                    try:
                        plog = broker.get_log(name, index)
                        offset, ts = _list_offset(ctx, plog, p["timestamp"], read_committed)
                    except Exception as exc:
                        entry["error_code"] = _code(exc)
                    else:
                        entry["offset"] = offset
                        entry["timestamp"] = ts
                        entry["leader_epoch"] = ctx.server.leader_epoch if offset >= 0 else -1
            parts.append(entry)
        topics.append({"name": name, "partitions": parts})
    return {"throttle_time_ms": 0, "topics": topics}


# ---------------------------------------------------------------------------- OffsetForLeaderEpoch (23)


def handle_offset_for_leader_epoch(ctx: RequestContext, request: dict) -> dict:
    """OffsetForLeaderEpoch v2-4. One constant leader epoch, starting at offset 0: its end
    offset is the log end; any other epoch is unknown (-1/-1, Kafka's UNDEFINED answer)."""
    broker = ctx.broker
    ours = ctx.server.leader_epoch
    topics = []
    for t in request["topics"]:
        name = t["topic"]
        parts = []
        for p in t["partitions"]:
            index = p["partition"]
            entry = {"partition": index, "error_code": E.NONE, "leader_epoch": -1, "end_offset": -1}
            code = _check_leader_epoch(ctx, p["current_leader_epoch"])
            if code != E.NONE:
                entry["error_code"] = code
            else:
                try:
                    plog = broker.get_log(name, index)
                except Exception as exc:
                    entry["error_code"] = _code(exc)
                else:
                    if p["leader_epoch"] == ours:
                        entry["leader_epoch"] = ours
                        entry["end_offset"] = plog.log_end_offset
            parts.append(entry)
        topics.append({"topic": name, "partitions": parts})
    return {"throttle_time_ms": 0, "topics": topics}


# ---------------------------------------------------------------------------- DeleteRecords (21)


def _delete_records(broker: Any, name: str, index: int, offset: int) -> dict:
    entry = {"partition_index": index, "low_watermark": -1, "error_code": E.NONE}
    try:
        entry["low_watermark"] = broker.delete_records(name, index, offset)
    except Exception as exc:
        entry["error_code"] = _code(exc)
    return entry


def _delete_records_all(broker: Any, topics: list) -> list:
    return [
        {
            "name": t["name"],
            "partitions": [_delete_records(broker, t["name"], p["partition_index"], p["offset"]) for p in t["partitions"]],
        }
        for t in topics
    ]


async def handle_delete_records(ctx: RequestContext, request: dict) -> dict:
    """DeleteRecords v0-2: advance each partition's log start offset (-1 = high watermark).
    Segment deletion and the directory fsync run off the event loop."""
    loop = asyncio.get_running_loop()
    topics = await loop.run_in_executor(_DURABLE_POOL, _delete_records_all, ctx.broker, request["topics"])
    return {"throttle_time_ms": 0, "topics": topics}


# ---------------------------------------------------------------------------- InitProducerId (22)


def handle_init_producer_id(ctx: RequestContext, request: dict) -> Any:
    """InitProducerId v0-4.

    A null transactional id is an idempotent producer: as Kafka's TransactionCoordinator does
    for it, every call gets a new producer id with epoch 0, including the KIP-360 "bump" of v3+
    that names the current (producer_id, producer_epoch): a fresh id is the same as a bumped
    epoch to the producer state (a new producer starts at any sequence) and never overflows the
    epoch. A transactional id goes to the transaction coordinator (handlers/txn.py; the answer
    is an awaitable, the coordinator call may fdatasync).
    """
    txn_id = request["transactional_id"]
    fail = {"throttle_time_ms": 0, "producer_id": -1, "producer_epoch": -1}
    pid, epoch = request["producer_id"], request["producer_epoch"]
    if (pid == -1) != (epoch == -1):
        return {**fail, "error_code": E.INVALID_REQUEST}  # Kafka: both or neither
    if txn_id is not None:
        if txn_id == "":
            return {**fail, "error_code": E.INVALID_REQUEST}
        return init_producer_id_transactional(ctx, request)
    try:
        producer_id, producer_epoch = ctx.broker._init_producer_id()
    except Exception as exc:
        return {**fail, "error_code": _code(exc)}
    return {"throttle_time_ms": 0, "error_code": E.NONE, "producer_id": producer_id, "producer_epoch": producer_epoch}


HANDLERS: dict[int, Any] = {
    PRODUCE: handle_produce,
    FETCH: handle_fetch,
    LIST_OFFSETS: handle_list_offsets,
    DELETE_RECORDS: handle_delete_records,
    INIT_PRODUCER_ID: handle_init_producer_id,
    OFFSET_FOR_LEADER_EPOCH: handle_offset_for_leader_epoch,
}

__all__ = ["HANDLERS"]
