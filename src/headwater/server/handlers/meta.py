"""ApiVersions (18), Metadata (3), DescribeCluster (60): what a client learns before anything else.

Identity rules (kafka-spec h.4): the one broker is listed with its advertised address, is the
controller, and leads every partition with a constant leader epoch; replicas = ISR = [self].
"""

from __future__ import annotations

import re
import uuid
from typing import Any

from headwater.broker.metadata import validate_topic_name
from headwater.errors import InvalidTopicError, KafkaApiError, UnknownTopicOrPartitionError
from headwater.server import errors as E
from headwater.server.context import RequestContext

_SOFTWARE = re.compile(r"[a-zA-Z0-9](?:[a-zA-Z0-9\-.]*[a-zA-Z0-9])?")
_NO_OPERATIONS = -2147483648  # authorized operations not computed (Kafka's INT32_MIN sentinel)
_ZERO_UUID = bytes(16)


def handle_api_versions(ctx: RequestContext, request: dict) -> dict:
    from headwater.server.dispatch import advertised_versions

    if ctx.api_version >= 3:
        # Kafka validates the software name/version and answers INVALID_REQUEST (librdkafka then
        # retries with v0).
        for field in ("client_software_name", "client_software_version"):
            if not _SOFTWARE.fullmatch(request.get(field) or ""):
                return {"error_code": E.INVALID_REQUEST, "api_keys": []}
    return {
        "error_code": E.NONE,
        "api_keys": [{"api_key": k, "min_version": lo, "max_version": hi} for k, lo, hi in advertised_versions()],
        "throttle_time_ms": 0,
    }


def _broker_entry(ctx: RequestContext) -> dict:
    server = ctx.server
    return {"node_id": server.node_id, "host": server.advertised_host, "port": server.advertised_port, "rack": None}


def _topic_entry(ctx: RequestContext, meta: Any) -> dict:
    node = ctx.server.node_id
    return {
        "error_code": E.NONE,
        "name": meta.name,
        "topic_id": meta.topic_id.bytes,
        "is_internal": bool(meta.internal),
        "partitions": [
            {
                "error_code": E.NONE,
                "partition_index": p,
                "leader_id": node,
                "leader_epoch": ctx.server.leader_epoch,
                "replica_nodes": [node],
                "isr_nodes": [node],
                "offline_replicas": [],
            }
            for p in range(meta.partitions)
        ],
        "topic_authorized_operations": _NO_OPERATIONS,
    }


def _error_topic(name: str | None, code: int, topic_id: bytes = _ZERO_UUID) -> dict:
    return {"error_code": code, "name": name, "topic_id": topic_id, "is_internal": False, "partitions": [], "topic_authorized_operations": _NO_OPERATIONS}


def _lookup(ctx: RequestContext, name: str, allow_create: bool) -> dict:
    broker = ctx.broker
    store = broker._store
    meta = store.get(name)
    if meta is None:
        try:
            validate_topic_name(name)
        except (InvalidTopicError, ValueError):
            return _error_topic(name, E.INVALID_TOPIC_EXCEPTION)
        if not (allow_create and broker.config["auto.create.topics.enable"]):
            return _error_topic(name, E.UNKNOWN_TOPIC_OR_PARTITION)
        try:
            broker._partition_count(name, create=True)
        except KafkaApiError as exc:
            if store.get(name) is None:
                return _error_topic(name, E.error_code(exc))
        meta = store.get(name)
        if meta is None:  # pragma: no cover - created and deleted concurrently
            return _error_topic(name, E.UNKNOWN_TOPIC_OR_PARTITION)
    return _topic_entry(ctx, meta)


def handle_metadata(ctx: RequestContext, request: dict) -> dict:
    broker = ctx.broker
    version = ctx.api_version
    requested = request["topics"]
    if requested is None or (version == 0 and not requested):
        topics = [_topic_entry(ctx, m) for _, m in sorted(broker._store.list_topics(include_internal=True).items())]
    else:
        # v0-3 create implicitly; v4+ say so in the request (kafka-spec g.6 Metadata).
        allow = True if version < 4 else bool(request["allow_auto_topic_creation"])
        topics = []
        for entry in requested:
            name = entry.get("name")
            topic_id = entry.get("topic_id") or _ZERO_UUID
            if name is None:
                meta = broker._store.topic_by_id(uuid.UUID(bytes=bytes(topic_id))) if topic_id != _ZERO_UUID else None
                if meta is None:
                    topics.append(_error_topic(None, E.UNKNOWN_TOPIC_ID, bytes(topic_id)))
                else:
                    topics.append(_topic_entry(ctx, meta))
                continue
            try:
                topics.append(_lookup(ctx, name, allow))
            except UnknownTopicOrPartitionError:
                topics.append(_error_topic(name, E.UNKNOWN_TOPIC_OR_PARTITION))
    return {
        "throttle_time_ms": 0,
        "brokers": [_broker_entry(ctx)],
        "cluster_id": ctx.server.cluster_id,
        "controller_id": ctx.server.node_id,
        "topics": topics,
        "cluster_authorized_operations": _NO_OPERATIONS,
    }


def handle_describe_cluster(ctx: RequestContext, request: dict) -> dict:
    b = _broker_entry(ctx)
    return {
        "throttle_time_ms": 0,
        "error_code": E.NONE,
        "error_message": None,
        "endpoint_type": request.get("endpoint_type", 1),
        "cluster_id": ctx.server.cluster_id,
        "controller_id": ctx.server.node_id,
        "brokers": [{"broker_id": b["node_id"], "host": b["host"], "port": b["port"], "rack": None}],
        "cluster_authorized_operations": _NO_OPERATIONS,
    }


HANDLERS = {
    18: handle_api_versions,
    3: handle_metadata,
    60: handle_describe_cluster,
}
