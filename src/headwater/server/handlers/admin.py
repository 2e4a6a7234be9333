"""Admin API handlers: CreateTopics (19), DeleteTopics (20), DescribeConfigs (32),
CreatePartitions (37) and IncrementalAlterConfigs (44).

Every change goes through the embedded Broker (`create_topic`, `delete_topic`,
`create_partitions`, `alter_topic_config`), so a topic created over the wire is the same
persisted topic the embedded API sees, with the same validation (broker/metadata.py). A
`validate_only` request runs the metadata store's own checks with `validate_only=True` and
changes nothing.

Results are per item (topic or config resource): one bad item never fails its siblings. Each
failure is reported with `errors.error_code(exc)` and, where the version has the field,
`errors.error_message(exc)`.

Single node: the only replica is this broker (`ctx.server.node_id`). A replication factor
other than 1 (or -1, the default) is INVALID_REPLICATION_FACTOR; a manual assignment naming
another broker id, or more than one replica, is INVALID_REPLICA_ASSIGNMENT.

Topic configs are Kafka's names for the settings LogConfig (config.py) has (compression.type
included: `producer` keeps the producer's codec, a codec name recompresses in the log).

Config sources (DescribeConfigs): a topic override is DYNAMIC_TOPIC_CONFIG; a default the
broker was started with (`Broker(config={"log.retention.ms": ...})`) is STATIC_BROKER_CONFIG;
anything else is DEFAULT_CONFIG. Synonyms list them in that order (Kafka's precedence), the
broker-level ones under the broker config name headwater accepts (`log.<name>`).

Threading: topic changes write and fsync the metadata file (and create or delete partition
directories), so those handlers run their work in a worker thread (`asyncio.to_thread`) and the
event loop keeps serving other connections; the Broker is thread-safe. DescribeConfigs only
reads and runs inline.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Mapping
from dataclasses import fields
from typing import TYPE_CHECKING, Any

from headwater.broker.metadata import validate_topic_name
from headwater.client.broker import BROKER_DEFAULTS
from headwater.config import LogConfig
from headwater.coordinator.group import GroupCoordinatorConfig
from headwater.errors import (
    HeadwaterError,
    InvalidConfigurationError,
    InvalidReplicaAssignmentError,
    InvalidRequestError,
    InvalidTopicError,
    TopicAlreadyExistsError,
)
from headwater.server.errors import error_code, error_message

if TYPE_CHECKING:  # pragma: no cover
    from headwater.client.broker import Broker
    from headwater.server.context import RequestContext

log = logging.getLogger("headwater.server.admin")

# ---------------------------------------------------------------------------- codes

# Kafka's ConfigResource.Type ids.
RESOURCE_TOPIC = 2
RESOURCE_BROKER = 4

# DescribeConfigsResponse ConfigSource ids.
SOURCE_DYNAMIC_TOPIC_CONFIG = 1
SOURCE_STATIC_BROKER_CONFIG = 4
SOURCE_DEFAULT_CONFIG = 5

# DescribeConfigsResponse ConfigType ids.
TYPE_BOOLEAN = 1
TYPE_STRING = 2
TYPE_INT = 3
TYPE_LONG = 5
TYPE_DOUBLE = 6
TYPE_LIST = 7

# IncrementalAlterConfigs operations (Kafka's AlterConfigOp.OpType ids).
OP_SET = 0
OP_DELETE = 1
OP_APPEND = 2
OP_SUBTRACT = 3


# ---------------------------------------------------------------------------- the config catalogue

# Kafka's types for the topic configs (TopicConfig / LogConfig definitions). A LogConfig field
# missing here gets a type from its Python default (int -> LONG, float -> DOUBLE, str -> STRING).
_TOPIC_CONFIG_TYPES: dict[str, int] = {
    "segment.bytes": TYPE_INT,
    "segment.index.bytes": TYPE_INT,
    "index.interval.bytes": TYPE_INT,
    "max.message.bytes": TYPE_INT,
    "min.insync.replicas": TYPE_INT,
    "producer.id.expiration.ms": TYPE_INT,
    "cleanup.policy": TYPE_LIST,
    "compression.type": TYPE_STRING,
}

# Configs whose value is a comma-separated list: the only ones APPEND/SUBTRACT apply to.
_LIST_CONFIGS = frozenset({"cleanup.policy"})

# The broker config that supplies a topic config's default when the topic has no override.
# Broker() accepts `log.<name>` for every log setting; these two read better bare, as in Kafka.
_BROKER_SYNONYMS: dict[str, str] = {
    "min.insync.replicas": "min.insync.replicas",
    "producer.id.expiration.ms": "producer.id.expiration.ms",
}

_DOCS: dict[str, str] = {
    "cleanup.policy": "delete: drop old segments by retention.ms/retention.bytes; compact: keep "
    "the latest record per key; both: compact,delete.",
    "compression.type": "The codec batches are stored with: 'producer' keeps the producer's, a codec name (or 'uncompressed') recompresses to it.",
    "delete.retention.ms": "How long tombstones of a compacted topic stay readable.",
    "file.delete.delay.ms": "Delay before a deleted segment's files are removed.",
    "flush.messages": "With flush.policy=interval: fsync after this many messages.",
    "flush.ms": "With flush.policy=interval: fsync at least this often.",
    "flush.policy": "headwater: batch (fsync before acknowledging), interval (fsync every "
    "flush.ms/flush.messages) or none (leave it to the OS).",
    "index.interval.bytes": "Bytes between offset index entries.",
    "max.message.bytes": "Largest record batch the topic accepts.",
    "message.timestamp.type": "CreateTime (the producer's) or LogAppendTime (the broker's).",
    "min.cleanable.dirty.ratio": "Compact once uncleaned bytes are this share of the log.",
    "min.compaction.lag.ms": "Records younger than this are never compacted.",
    "min.insync.replicas": "Single node: always satisfied by the one replica.",
    "producer.id.expiration.ms": "Idle time after which a producer's sequence state is dropped.",
    "retention.bytes": "Largest size of a partition before old segments go (-1: no limit).",
    "retention.ms": "Age after which old segments go (-1: no limit).",
    "segment.bytes": "Size at which the active segment rolls.",
    "segment.index.bytes": "Size of a segment's offset and time index files.",
    "segment.jitter.ms": "Random jitter subtracted from segment.ms.",
    "segment.ms": "Age at which the active segment rolls.",
}

_LOG_CONFIG_NAMES: tuple[str, ...] = tuple(f.name.replace("_", ".") for f in fields(LogConfig))
TOPIC_CONFIG_NAMES: tuple[str, ...] = tuple(sorted(_LOG_CONFIG_NAMES))


def _format_value(value: Any) -> str:
    """A config value as Kafka prints it: booleans in lower case, everything else str()."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _python_type(value: Any, name: str = "") -> int:
    if isinstance(value, bool):
        return TYPE_BOOLEAN
    if isinstance(value, int):
        return TYPE_LONG if name.endswith((".ms", ".bytes", ".messages")) else TYPE_INT
    if isinstance(value, float):
        return TYPE_DOUBLE
    return TYPE_STRING


def _topic_config_type(name: str) -> int:
    known = _TOPIC_CONFIG_TYPES.get(name)
    if known is not None:
        return known
    return _python_type(getattr(LogConfig(), name.replace(".", "_")))


def _broker_synonym(name: str) -> str:
    return _BROKER_SYNONYMS.get(name, "log." + name)


def _default_log_config(broker: Broker) -> LogConfig:
    """The broker's default LogConfig (its `log.*` settings over LogConfig's defaults)."""
    logs = getattr(broker, "_logs", None)
    config = getattr(logs, "default_config", None)
    return config if isinstance(config, LogConfig) else LogConfig()


def _entry(
    name: str,
    value: Any,
    *,
    read_only: bool,
    source: int,
    config_type: int,
    synonyms: list[dict[str, Any]] | None,
    documentation: bool,
) -> dict[str, Any]:
    return {
        "name": name,
        "value": None if value is None else _format_value(value),
        "read_only": read_only,
        "config_source": source,
        "is_sensitive": False,
        "synonyms": synonyms or [],
        "config_type": config_type,
        "documentation": _DOCS.get(name) if documentation else None,
    }


def topic_config_entries(
    broker: Broker,
    overrides: Mapping[str, Any],
    keys: Iterable[str] | None = None,
    *,
    include_synonyms: bool = False,
    include_documentation: bool = False,
) -> list[dict[str, Any]]:
    """Every config of a topic whose overrides are `overrides`, as DescribeConfigs entries.

    Args:
        keys: only these names (unknown ones are left out, as Kafka does); None = all.
    """
    wanted = TOPIC_CONFIG_NAMES if keys is None else [k for k in TOPIC_CONFIG_NAMES if k in set(keys)]
    broker_default = _default_log_config(broker)
    builtin = LogConfig()
    entries = []
    for name in wanted:
        attr = name.replace(".", "_")
        default_value = getattr(builtin, attr)
        broker_value = getattr(broker_default, attr)
        synonyms = []
        if name in overrides:
            synonyms.append({"name": name, "value": _format_value(overrides[name]), "source": SOURCE_DYNAMIC_TOPIC_CONFIG})
        if broker_value != default_value:
            synonyms.append({"name": _broker_synonym(name), "value": _format_value(broker_value), "source": SOURCE_STATIC_BROKER_CONFIG})
        synonyms.append({"name": _broker_synonym(name), "value": _format_value(default_value), "source": SOURCE_DEFAULT_CONFIG})
        if name in overrides:
            value, source = overrides[name], SOURCE_DYNAMIC_TOPIC_CONFIG
        elif broker_value != default_value:
            value, source = broker_value, SOURCE_STATIC_BROKER_CONFIG
        else:
            value, source = default_value, SOURCE_DEFAULT_CONFIG
        entries.append(_entry(
            name, value, read_only=False, source=source, config_type=_topic_config_type(name),
            synonyms=synonyms if include_synonyms else None, documentation=include_documentation,
        ))
    return entries


def broker_config_entries(
    broker: Broker,
    node_id: int,
    keys: Iterable[str] | None = None,
    *,
    include_synonyms: bool = False,
    include_documentation: bool = False,
) -> list[dict[str, Any]]:
    """The broker's configuration as DescribeConfigs entries, all read-only.

    headwater has no dynamic broker configs: everything is set when the Broker opens, so a
    value that differs from the built-in default is STATIC_BROKER_CONFIG, the rest
    DEFAULT_CONFIG.
    """
    # {name: (value, built-in default)}
    rows: dict[str, tuple[Any, Any]] = {}
    types: dict[str, int] = {}
    for name, default in BROKER_DEFAULTS.items():
        rows[name] = (broker.config.get(name, default), default)
    # Kafka's broker.id is the ZooKeeper-era name of node.id; tools still ask for it.
    rows["broker.id"] = (node_id, rows.get("node.id", (node_id, node_id))[1])
    rows.setdefault("node.id", (node_id, node_id))
    broker_default = _default_log_config(broker)
    builtin = LogConfig()
    for f in fields(LogConfig):
        topic_name = f.name.replace("_", ".")
        rows[_broker_synonym(topic_name)] = (getattr(broker_default, f.name), getattr(builtin, f.name))
        types[_broker_synonym(topic_name)] = _topic_config_type(topic_name)
    coordinator = getattr(getattr(broker, "group_coordinator", None), "config", None)
    if isinstance(coordinator, GroupCoordinatorConfig):
        plain = GroupCoordinatorConfig()
        for f in fields(GroupCoordinatorConfig):
            rows[f.name.replace("_", ".")] = (getattr(coordinator, f.name), getattr(plain, f.name))
    wanted = None if keys is None else set(keys)
    entries = []
    for name, (value, default) in sorted(rows.items()):
        if wanted is not None and name not in wanted:
            continue
        source = SOURCE_DEFAULT_CONFIG if value == default else SOURCE_STATIC_BROKER_CONFIG
        synonyms = [{"name": name, "value": _format_value(value), "source": source}]
        if source != SOURCE_DEFAULT_CONFIG:
            synonyms.append({"name": name, "value": _format_value(default), "source": SOURCE_DEFAULT_CONFIG})
        entries.append(_entry(
            name, value, read_only=True, source=source, config_type=types.get(name) or _python_type(value, name),
            synonyms=synonyms if include_synonyms else None, documentation=include_documentation,
        ))
    return entries


def _check_topic_configs(configs: Iterable[tuple[str, Any]]) -> dict[str, Any]:
    """Topic config pairs from a request, checked by name; returns what the store should keep.

    Only Kafka's dotted names are accepted on the wire (the embedded API also takes
    underscores). A fixed config is accepted with its fixed value and dropped.

    Raises:
        InvalidConfigurationError: an unknown name, a name given twice, a null value or a
            fixed config with another value. Values are checked later by the store.
    """
    out: dict[str, Any] = {}
    seen: set[str] = set()
    for name, value in configs:
        if name in seen:
            raise InvalidConfigurationError(f"config {name!r} is given twice")
        seen.add(name)
        if name not in TOPIC_CONFIG_NAMES:
            raise InvalidConfigurationError(f"unknown topic config {name!r}")
        if value is None:
            raise InvalidConfigurationError(f"config {name!r} has a null value")
        out[name] = value
    return out


def _failure(exc: BaseException) -> tuple[int, str]:
    """(error_code, error_message) of a per-item failure; unexpected ones are logged."""
    if not isinstance(exc, (HeadwaterError, OSError)):
        log.error("admin request item failed", exc_info=exc)
    return error_code(exc), error_message(exc)


def _duplicates(names: Iterable[Any]) -> set[Any]:
    seen: set[Any] = set()
    dups: set[Any] = set()
    for name in names:
        (dups if name in seen else seen).add(name)
    return dups


# ---------------------------------------------------------------------------- CreateTopics


def _create_one(broker: Broker, node_id: int, topic: Mapping[str, Any], validate_only: bool) -> dict[str, Any]:
    name = topic["name"]
    partitions = int(topic["num_partitions"])
    replication_factor = int(topic["replication_factor"])
    assignments = topic["assignments"] or []
    validate_topic_name(name)
    if name in broker._store:
        # Checked before the store's refusal of internal names, so that creating an existing
        # internal topic says TOPIC_ALREADY_EXISTS, as Kafka does.
        raise TopicAlreadyExistsError(f"topic {name!r} already exists")
    if assignments:
        if partitions != -1 or replication_factor != -1:
            raise InvalidRequestError(
                "both num_partitions/replication_factor and a replica assignment were given; "
                "set the counts to -1 when assigning replicas"
            )
        indexes = sorted(a["partition_index"] for a in assignments)
        if indexes != list(range(len(assignments))):
            raise InvalidReplicaAssignmentError(
                f"partition indexes {indexes} are not the consecutive sequence 0..{len(assignments) - 1}"
            )
        for a in assignments:
            _check_replicas(a["broker_ids"], node_id, f"partition {a['partition_index']}")
        partitions, replication_factor = len(assignments), 1
    config = _check_topic_configs((c["name"], c["value"]) for c in topic["configs"] or [])
    if validate_only:
        meta = broker._store.create_topic(name, partitions, replication_factor, config, validate_only=True)
    else:
        meta = broker.create_topic(name, partitions, config, replication_factor=replication_factor)
    return {
        "name": name,
        "topic_id": meta.topic_id.bytes,
        "error_code": 0,
        "error_message": None,
        "num_partitions": meta.partitions,
        "replication_factor": meta.replication_factor,
        "configs": [
            {k: e[k] for k in ("name", "value", "read_only", "config_source", "is_sensitive")}
            for e in topic_config_entries(broker, meta.config)
        ],
    }


def _check_replicas(broker_ids: list[int], node_id: int, what: str) -> None:
    if not broker_ids:
        raise InvalidReplicaAssignmentError(f"{what} has no replicas")
    if len(set(broker_ids)) != len(broker_ids):
        raise InvalidReplicaAssignmentError(f"{what} lists a broker twice: {broker_ids}")
    unknown = [b for b in broker_ids if b != node_id]
    if unknown:
        raise InvalidReplicaAssignmentError(
            f"{what} names unknown broker(s) {unknown}; this cluster is the single node {node_id}"
        )


def _create_topics(ctx: RequestContext, request: Mapping[str, Any]) -> dict[str, Any]:
    broker = ctx.broker
    node_id = int(ctx.server.node_id)
    validate_only = bool(request.get("validate_only", False))
    topics = request["topics"] or []
    dups = _duplicates(t["name"] for t in topics)
    results = []
    reported: set[str] = set()
    for topic in topics:
        name = topic["name"]
        if name in dups:
            # Kafka answers every duplicated name once, with INVALID_REQUEST, and creates none.
            if name not in reported:
                reported.add(name)
                results.append({"name": name, "error_code": InvalidRequestError.code, "error_message": "duplicate topic name in the request"})
            continue
        try:
            results.append(_create_one(broker, node_id, topic, validate_only))
        except Exception as exc:
            code, message = _failure(exc)
            results.append({"name": name, "error_code": code, "error_message": message})
    return {"throttle_time_ms": 0, "topics": results}


async def handle_create_topics(ctx: RequestContext, request: dict[str, Any]) -> dict[str, Any]:
    """CreateTopics v2-5: create each topic (or, with validate_only, only check it)."""
    return await asyncio.to_thread(_create_topics, ctx, request)


# ---------------------------------------------------------------------------- DeleteTopics


def _delete_topics(ctx: RequestContext, request: Mapping[str, Any]) -> dict[str, Any]:
    broker = ctx.broker
    names = list(request.get("topic_names") or [])
    # v6+ names topics by struct (name or id); not advertised, but harmless to accept by name.
    names += [t["name"] for t in request.get("topics") or [] if t.get("name")]
    dups = _duplicates(names)
    results = []
    reported: set[str] = set()
    for name in names:
        if name in reported:
            continue
        reported.add(name)
        if name in dups:
            results.append({"name": name, "error_code": InvalidRequestError.code, "error_message": "duplicate topic name in the request"})
            continue
        try:
            meta = broker._store.get(name)
            if meta is not None and meta.internal:
                # Kafka's broker would delete it (only kafka-topics.sh refuses, client-side);
                # headwater refuses: __consumer_offsets holds every committed offset and group,
                # and the coordinator would keep appending to a log that is gone.
                # INVALID_TOPIC_EXCEPTION is what the metadata store's refusal maps to.
                raise InvalidTopicError(f"internal topic {name} cannot be deleted")
            broker.delete_topic(name)
            results.append({"name": name, "error_code": 0, "error_message": None})
        except Exception as exc:
            code, message = _failure(exc)
            results.append({"name": name, "error_code": code, "error_message": message})
    return {"throttle_time_ms": 0, "responses": results}


async def handle_delete_topics(ctx: RequestContext, request: dict[str, Any]) -> dict[str, Any]:
    """DeleteTopics v1-4: delete each named topic and its partition logs."""
    return await asyncio.to_thread(_delete_topics, ctx, request)


# ---------------------------------------------------------------------------- CreatePartitions


def _create_partitions_one(broker: Broker, node_id: int, topic: Mapping[str, Any], validate_only: bool) -> None:
    name = topic["name"]
    total = int(topic["count"])
    meta = broker.describe_topic(name)
    if meta.internal:
        # The group coordinator maps a group to a __consumer_offsets partition by hash modulo
        # the count: growing it would split a group's records over two partitions.
        raise InvalidTopicError(f"the partition count of internal topic {name} cannot change")
    assignments = topic["assignments"]
    if assignments is not None:
        added = total - meta.partitions
        if added > 0 and len(assignments) != added:
            raise InvalidReplicaAssignmentError(
                f"increasing the partition count by {added} but {len(assignments)} assignments were given"
            )
        for i, a in enumerate(assignments):
            _check_replicas(a["broker_ids"], node_id, f"new partition {meta.partitions + i}")
    if validate_only:
        broker._store.create_partitions(name, total, validate_only=True)
    else:
        broker.create_partitions(name, total)


def _create_partitions(ctx: RequestContext, request: Mapping[str, Any]) -> dict[str, Any]:
    broker = ctx.broker
    node_id = int(ctx.server.node_id)
    validate_only = bool(request.get("validate_only", False))
    topics = request["topics"] or []
    dups = _duplicates(t["name"] for t in topics)
    results = []
    reported: set[str] = set()
    for topic in topics:
        name = topic["name"]
        if name in reported:
            continue
        if name in dups:
            reported.add(name)
            results.append({"name": name, "error_code": InvalidRequestError.code, "error_message": "duplicate topic in the request"})
            continue
        try:
            _create_partitions_one(broker, node_id, topic, validate_only)
            results.append({"name": name, "error_code": 0, "error_message": None})
        except Exception as exc:
            code, message = _failure(exc)
            results.append({"name": name, "error_code": code, "error_message": message})
    return {"throttle_time_ms": 0, "results": results}


async def handle_create_partitions(ctx: RequestContext, request: dict[str, Any]) -> dict[str, Any]:
    """CreatePartitions v0-3: grow each topic to `count` partitions."""
    return await asyncio.to_thread(_create_partitions, ctx, request)


# ---------------------------------------------------------------------------- DescribeConfigs


def _describe_resource(ctx: RequestContext, resource: Mapping[str, Any], synonyms: bool, documentation: bool) -> list[dict[str, Any]]:
    rtype = resource["resource_type"]
    name = resource["resource_name"]
    # Kafka treats an empty key list like null: every config.
    keys = resource["configuration_keys"] or None
    broker = ctx.broker
    if rtype == RESOURCE_TOPIC:
        validate_topic_name(name)
        meta = broker.describe_topic(name)
        return topic_config_entries(broker, meta.config, keys, include_synonyms=synonyms, include_documentation=documentation)
    if rtype == RESOURCE_BROKER:
        node_id = int(ctx.server.node_id)
        if name == "":
            # Kafka: the empty name is the cluster-wide *dynamic* default broker config.
            # headwater has no dynamic broker configs, so that set is empty.
            return []
        if name != str(node_id):
            raise InvalidRequestError(f"unexpected broker id {name!r}; this node is {node_id} (or '' for the default)")
        return broker_config_entries(broker, node_id, keys, include_synonyms=synonyms, include_documentation=documentation)
    raise InvalidRequestError(f"unsupported resource type {rtype} (topics are 2, brokers 4)")


def handle_describe_configs(ctx: RequestContext, request: dict[str, Any]) -> dict[str, Any]:
    """DescribeConfigs v1-4: the configs of topics and of this broker."""
    synonyms = bool(request.get("include_synonyms", False))
    documentation = bool(request.get("include_documentation", False))
    results = []
    for resource in request["resources"] or []:
        result: dict[str, Any] = {
            "resource_type": resource["resource_type"],
            "resource_name": resource["resource_name"],
            "error_code": 0,
            "error_message": None,
            "configs": [],
        }
        try:
            result["configs"] = _describe_resource(ctx, resource, synonyms, documentation)
        except Exception as exc:
            result["error_code"], result["error_message"] = _failure(exc)
        results.append(result)
    return {"throttle_time_ms": 0, "results": results}


# ---------------------------------------------------------------------------- IncrementalAlterConfigs


def _list_items(value: Any) -> list[str]:
    if value is None:
        return []
    return [item.strip() for item in str(value).split(",") if item.strip()]


def _alter_topic(broker: Broker, name: str, configs: list[Mapping[str, Any]], validate_only: bool) -> None:
    validate_topic_name(name)
    current = broker.topic_config(name)  # raises UnknownTopicOrPartitionError
    dups = _duplicates(c["name"] for c in configs)
    if dups:
        raise InvalidRequestError(f"config(s) {sorted(dups)} appear more than once")
    set_values: dict[str, Any] = {}
    deletes: list[str] = []
    for c in configs:
        key, op, value = c["name"], c["config_operation"], c["value"]
        if op not in (OP_SET, OP_DELETE, OP_APPEND, OP_SUBTRACT):
            raise InvalidRequestError(f"unknown config operation {op} for {key!r}")
        if key not in TOPIC_CONFIG_NAMES:
            raise InvalidConfigurationError(f"unknown topic config {key!r}")
        if op == OP_SET:
            set_values.update(_check_topic_configs([(key, value)]))
        elif op == OP_DELETE:
            deletes.append(key)
        else:
            if key not in _LIST_CONFIGS:
                raise InvalidConfigurationError(f"{key} is not a list config; APPEND and SUBTRACT apply to list configs ({', '.join(sorted(_LIST_CONFIGS))})")
            items = _list_items(current.get(key))
            change = _list_items(value)
            if op == OP_APPEND:
                items += [i for i in change if i not in items]
            else:
                items = [i for i in items if i not in change]
            set_values[key] = ",".join(items)
    if validate_only:
        broker._store.alter_topic_config(name, set_values, deletes, validate_only=True)
    else:
        broker.alter_topic_config(name, set_values, deletes)


def _incremental_alter_configs(ctx: RequestContext, request: Mapping[str, Any]) -> dict[str, Any]:
    broker = ctx.broker
    validate_only = bool(request.get("validate_only", False))
    resources = request["resources"] or []
    dups = _duplicates((r["resource_type"], r["resource_name"]) for r in resources)
    responses = []
    reported: set[tuple[int, str]] = set()
    for resource in resources:
        key = (resource["resource_type"], resource["resource_name"])
        if key in reported:
            continue
        reported.add(key)
        response = {"resource_type": key[0], "resource_name": key[1], "error_code": 0, "error_message": None}
        try:
            if key in dups:
                raise InvalidRequestError("duplicate resource in the request")
            if key[0] == RESOURCE_TOPIC:
                _alter_topic(broker, key[1], list(resource["configs"] or []), validate_only)
            elif key[0] == RESOURCE_BROKER:
                raise InvalidRequestError("headwater has no dynamic broker configs; set them when the broker starts")
            else:
                raise InvalidRequestError(f"unsupported resource type {key[0]} (topics are 2)")
        except Exception as exc:
            response["error_code"], response["error_message"] = _failure(exc)
        responses.append(response)
    return {"throttle_time_ms": 0, "responses": responses}


async def handle_incremental_alter_configs(ctx: RequestContext, request: dict[str, Any]) -> dict[str, Any]:
    """IncrementalAlterConfigs v0-1: SET/DELETE/APPEND/SUBTRACT topic config overrides."""
    return await asyncio.to_thread(_incremental_alter_configs, ctx, request)


HANDLERS: dict[int, Any] = {
    19: handle_create_topics,
    20: handle_delete_topics,
    32: handle_describe_configs,
    37: handle_create_partitions,
    44: handle_incremental_alter_configs,
}

__all__ = ["HANDLERS", "TOPIC_CONFIG_NAMES", "broker_config_entries", "topic_config_entries"]
