"""Transactions over the wire (kafka-spec.md d.3): InitProducerId with a transactional id,
AddPartitionsToTxn (24), AddOffsetsToTxn (25), EndTxn (26), TxnOffsetCommit (28),
DescribeProducers (61), DescribeTransactions (65) and ListTransactions (66).

One coordinator for everyone: calls go to ``broker.txn_coordinator`` through
``broker._txn_call`` (broker lock held; the ``__transaction_state`` records the call produced
are appended durably before it returns; the markers of a ``MarkerWork`` it returned are written
before it returns too). That call may fdatasync, so it runs on a worker thread
(``asyncio.to_thread``) while the event loop keeps serving. Embedded transactional producers
call the same coordinator, so a wire producer and an embedded one with one transactional.id
fence each other.

EndTxn is answered after the markers are written (Kafka answers once PrepareCommit/Abort is
durable and writes the markers afterwards): a client that got NONE for a commit can read its
records with read_committed at once.

InitProducerId while the id's previous transaction is still Ongoing or completing: the
coordinator returns an ``InitPending``. If starting that pending wrote the abort markers (an
Ongoing transaction fenced by this call), the pending is complete by the time ``_txn_call``
returns and its result is answered. Otherwise (markers of another call still being written)
it is cancelled and the answer is CONCURRENT_TRANSACTIONS, as Kafka does: the client retries.

PRODUCER_FENCED (90) is a newer code: Kafka's KafkaApis answers INVALID_PRODUCER_EPOCH (47)
instead to InitProducerId < v4 and to AddPartitionsToTxn/AddOffsetsToTxn/EndTxn < v2, and the
same here. TxnOffsetCommit v0-3 predate PRODUCER_FENCED: 47 there too.

TxnOffsetCommit goes to the group coordinator (``group_coordinator.txn_offset_commit``), which
holds the offsets as pending until the producer's marker reaches the group's
``__consumer_offsets`` partition; the broker appends them as a transactional batch of the
producer. Before that, the producer must own the transaction and the offsets partition must be
in it (AddOffsetsToTxn first), checked with the transaction coordinator
(``verify_partitions``, what Kafka 3.6+ does with transaction.partition.verification.enable):
this fences a zombie's TxnOffsetCommit even before a marker of the new epoch reached the
offsets partition.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from headwater.coordinator.group import CommitOffset, TopicPartition
from headwater.coordinator.group.records import offsets_partition_for
from headwater.coordinator.txn import OFFSETS_TOPIC, InitPending, InitResult
from headwater.errors import (
    ConcurrentTransactionsError,
    InvalidRequestError,
    ProducerFencedError,
)
from headwater.server import errors as E
from headwater.server.context import RequestContext

log = logging.getLogger("headwater.server")

ADD_PARTITIONS_TO_TXN = 24
ADD_OFFSETS_TO_TXN = 25
END_TXN = 26
TXN_OFFSET_COMMIT = 28
DESCRIBE_PRODUCERS = 61
DESCRIBE_TRANSACTIONS = 65
LIST_TRANSACTIONS = 66

INVALID_PRODUCER_EPOCH = 47
PRODUCER_FENCED = ProducerFencedError.code
CONCURRENT_TRANSACTIONS = ConcurrentTransactionsError.code


def _code(exc: BaseException, fenced_as_epoch: bool) -> int:
    """error_code(exc); PRODUCER_FENCED as INVALID_PRODUCER_EPOCH for old request versions."""
    code = E.error_code(exc)
    if code == E.UNKNOWN_SERVER_ERROR:
        log.error("unexpected error serving a transaction request", exc_info=exc)
    if fenced_as_epoch and code == PRODUCER_FENCED:
        return INVALID_PRODUCER_EPOCH
    return code


async def _call(ctx: RequestContext, fn: Any, *args: Any) -> Any:
    """``broker._txn_call(fn, *args)`` off the event loop (it may fdatasync and write markers)."""
    return await asyncio.to_thread(ctx.broker._txn_call, fn, *args)


# ---------------------------------------------------------------------------- InitProducerId (22)


async def init_producer_id_transactional(ctx: RequestContext, request: dict) -> dict:
    """InitProducerId v0-4 with a non-null transactional id (data.py routes it here)."""
    fail = {"throttle_time_ms": 0, "producer_id": -1, "producer_epoch": -1}
    fenced_as_epoch = ctx.api_version < 4
    coordinator = ctx.broker.txn_coordinator
    try:
        out = await _call(
            ctx,
            coordinator.init_producer_id,
            request["transactional_id"],
            request["transaction_timeout_ms"],
            ctx.now_ms(),
            request["producer_id"],
            request["producer_epoch"],
        )
        if isinstance(out, InitPending):
            if not out.done():
                out.cancel()
                return {**fail, "error_code": CONCURRENT_TRANSACTIONS}
            out = out.result()
    except Exception as exc:
        return {**fail, "error_code": _code(exc, fenced_as_epoch)}
    assert isinstance(out, InitResult)
    return {
        "throttle_time_ms": 0,
        "error_code": E.NONE,
        "producer_id": out.producer_id,
        "producer_epoch": out.producer_epoch,
    }


# ---------------------------------------------------------------------------- AddPartitionsToTxn (24)


async def add_partitions_to_txn(ctx: RequestContext, request: dict) -> dict:
    """AddPartitionsToTxn v0-3 (the client form; v4+ batched broker form is not advertised)."""
    fenced_as_epoch = ctx.api_version < 2
    topics = request["v3_and_below_topics"]
    parts = [(t["name"], p) for t in topics for p in t["partitions"]]
    coordinator = ctx.broker.txn_coordinator
    codes: dict[tuple[str, int], int]
    try:
        errors = await _call(
            ctx,
            coordinator.add_partitions,
            request["v3_and_below_transactional_id"],
            request["v3_and_below_producer_id"],
            request["v3_and_below_producer_epoch"],
            parts,
            ctx.now_ms(),
        )
        codes = {tp: E.NONE if err is None else _code(err, fenced_as_epoch) for tp, err in errors.items()}
    except Exception as exc:
        code = _code(exc, fenced_as_epoch)
        codes = dict.fromkeys(parts, code)
    results = []
    for t in topics:
        results.append({
            "name": t["name"],
            "results_by_partition": [
                {"partition_index": p, "partition_error_code": codes.get((t["name"], p), E.NONE)}
                for p in t["partitions"]
            ],
        })
    return {"throttle_time_ms": 0, "results_by_topic_v3_and_below": results}


# ---------------------------------------------------------------------------- AddOffsetsToTxn (25)


async def add_offsets_to_txn(ctx: RequestContext, request: dict) -> dict:
    """AddOffsetsToTxn v0-3: the group's ``__consumer_offsets`` partition joins the transaction."""
    coordinator = ctx.broker.txn_coordinator
    try:
        if not request["group_id"]:
            raise InvalidRequestError("AddOffsetsToTxn with an empty group id")
        await _call(
            ctx,
            coordinator.add_offsets,
            request["transactional_id"],
            request["producer_id"],
            request["producer_epoch"],
            request["group_id"],
            ctx.now_ms(),
        )
    except Exception as exc:
        return {"throttle_time_ms": 0, "error_code": _code(exc, ctx.api_version < 2)}
    return {"throttle_time_ms": 0, "error_code": E.NONE}


# ---------------------------------------------------------------------------- EndTxn (26)


async def end_txn(ctx: RequestContext, request: dict) -> dict:
    """EndTxn v0-3: commit or abort; answered once every marker is written."""
    coordinator = ctx.broker.txn_coordinator
    try:
        await _call(
            ctx,
            coordinator.end_txn,
            request["transactional_id"],
            request["producer_id"],
            request["producer_epoch"],
            bool(request["committed"]),
            ctx.now_ms(),
        )
    except Exception as exc:
        return {"throttle_time_ms": 0, "error_code": _code(exc, ctx.api_version < 2)}
    return {"throttle_time_ms": 0, "error_code": E.NONE}


# ---------------------------------------------------------------------------- TxnOffsetCommit (28)


def _txn_offset_commit(ctx: RequestContext, request: dict) -> dict[tuple[str, int], int]:
    """Verify the transaction, then hand the offsets to the group coordinator; codes per
    partition. Runs on a worker thread (the broker lock may be held by a marker write)."""
    broker = ctx.broker
    parts = [(t["name"], p["partition_index"]) for t in request["topics"] for p in t["partitions"]]
    group_id = request["group_id"]
    try:
        if not group_id:
            raise InvalidRequestError("TxnOffsetCommit with an empty group id")
        n = broker.txn_coordinator.config.offsets_topic_num_partitions
        offsets_tp = (OFFSETS_TOPIC, offsets_partition_for(group_id, n))
        verified = broker._txn_call(
            broker.txn_coordinator.verify_partitions,
            request["transactional_id"],
            request["producer_id"],
            request["producer_epoch"],
            [offsets_tp],
        )
        if verified[offsets_tp] is not None:
            raise verified[offsets_tp]
        offsets = {
            TopicPartition(t["name"], p["partition_index"]): CommitOffset(
                p["committed_offset"],
                leader_epoch=p["committed_leader_epoch"],
                metadata=p["committed_metadata"],
            )
            for t in request["topics"]
            for p in t["partitions"]
        }
        errors = broker._group_call(
            broker.group_coordinator.txn_offset_commit,
            group_id,
            offsets,
            producer_id=request["producer_id"],
            producer_epoch=request["producer_epoch"],
            generation_id=request["generation_id"],
            member_id=request["member_id"],
            group_instance_id=request["group_instance_id"],
            now_ms=ctx.now_ms(),
        )
    except Exception as exc:
        return dict.fromkeys(parts, _code(exc, True))
    return {(tp[0], tp[1]): E.NONE if err is None else _code(err, True) for tp, err in errors.items()}


async def txn_offset_commit(ctx: RequestContext, request: dict) -> dict:
    """TxnOffsetCommit v0-3: offsets held for the transaction, visible once it commits."""
    codes = await asyncio.to_thread(_txn_offset_commit, ctx, request)
    return {
        "throttle_time_ms": 0,
        "topics": [
            {
                "name": t["name"],
                "partitions": [
                    {
                        "partition_index": p["partition_index"],
                        "error_code": codes.get((t["name"], p["partition_index"]), E.NONE),
                    }
                    for p in t["partitions"]
                ],
            }
            for t in request["topics"]
        ],
    }


# ---------------------------------------------------------------------------- Describe/List (61, 65, 66)


def describe_transactions(ctx: RequestContext, request: dict) -> dict:
    """DescribeTransactions v0: state, timeout, start, producer and partitions per id;
    TRANSACTIONAL_ID_NOT_FOUND (105) for an id the coordinator does not know."""
    broker = ctx.broker
    described = broker._txn_call(broker.txn_coordinator.describe_transactions, list(request["transactional_ids"]))
    return {
        "throttle_time_ms": 0,
        "transaction_states": [
            {
                "error_code": d.error_code,
                "transactional_id": d.transactional_id,
                "transaction_state": d.transaction_state,
                "transaction_timeout_ms": d.transaction_timeout_ms,
                "transaction_start_time_ms": d.transaction_start_time_ms,
                "producer_id": d.producer_id,
                "producer_epoch": d.producer_epoch,
                "topics": [{"topic": topic, "partitions": list(ps)} for topic, ps in d.topics],
            }
            for d in described
        ],
    }


def list_transactions(ctx: RequestContext, request: dict) -> dict:
    """ListTransactions v0-1: every transactional id, filtered by state, producer id and (v1)
    minimum running time; unknown state names are echoed in ``unknown_state_filters``."""
    broker = ctx.broker
    duration = request["duration_filter"] if ctx.api_version >= 1 else -1
    listed = broker._txn_call(
        broker.txn_coordinator.list_transactions,
        list(request["state_filters"]),
        list(request["producer_id_filters"]),
        duration,
        ctx.now_ms(),
    )
    return {
        "throttle_time_ms": 0,
        "error_code": E.NONE,
        "unknown_state_filters": list(listed.unknown_state_filters),
        "transaction_states": [
            {"transactional_id": t.transactional_id, "producer_id": t.producer_id, "transaction_state": t.transaction_state}
            for t in listed.transaction_states
        ],
    }


def _active_producers(plog: Any) -> list[dict]:
    # One C-level copy of the dict (atomic under the GIL) while appends may run on the
    # durable-append threads; a field read a moment late is fine for a describe.
    out = []
    for e in list(plog.producer_state.producers.values()):
        first = e.current_txn_first_offset
        out.append({
            "producer_id": e.producer_id,
            "producer_epoch": e.producer_epoch,
            "last_sequence": -1 if e.is_empty else e.last_seq,
            "last_timestamp": e.last_timestamp,
            "coordinator_epoch": e.coordinator_epoch,
            "current_txn_start_offset": -1 if first is None else first,
        })
    return out


def describe_producers(ctx: RequestContext, request: dict) -> dict:
    """DescribeProducers v0: the producer state of each partition (kafka-spec.md c.2), what
    ``kafka-transactions.sh describe-producers`` shows (open transactions hanging the LSO)."""
    broker = ctx.broker
    topics = []
    for t in request["topics"]:
        parts = []
        for index in t["partition_indexes"]:
            entry: dict[str, Any] = {"partition_index": index, "error_code": E.NONE, "error_message": None, "active_producers": []}
            try:
                entry["active_producers"] = _active_producers(broker.get_log(t["name"], index))
            except Exception as exc:
                entry["error_code"] = _code(exc, False)
                entry["error_message"] = E.error_message(exc)
            parts.append(entry)
        topics.append({"name": t["name"], "partitions": parts})
    return {"throttle_time_ms": 0, "topics": topics}


HANDLERS: dict[int, Any] = {
    ADD_PARTITIONS_TO_TXN: add_partitions_to_txn,
    ADD_OFFSETS_TO_TXN: add_offsets_to_txn,
    END_TXN: end_txn,
    TXN_OFFSET_COMMIT: txn_offset_commit,
    DESCRIBE_PRODUCERS: describe_producers,
    DESCRIBE_TRANSACTIONS: describe_transactions,
    LIST_TRANSACTIONS: list_transactions,
}

__all__ = ["HANDLERS", "init_producer_id_transactional"]
