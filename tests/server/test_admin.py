"""Admin APIs over the wire: CreateTopics, DeleteTopics, CreatePartitions, DescribeConfigs and
IncrementalAlterConfigs.

Goal: the admin clients people use (confluent-kafka's AdminClient, kafka-python 3.x's
KafkaAdminClient, aiokafka's AIOKafkaAdminClient, kcat -L) administer topics on a headwater
server unchanged, and what they do is real: a topic created over the wire is the embedded
broker's topic (broker.list_topics), survives a reopen of the data directory, and its configs
reach the partition logs. Error paths are checked by their Kafka error codes.

Method: each test serves a fresh Broker on 127.0.0.1:0 (tests/server/conftest.py) and drives it
with a real client; every client call has a timeout. One test speaks the protocol with a raw
socket to cover every advertised version of the five APIs, including the fields only some
versions carry (v5 CreateTopics results, v3 config types and documentation).
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import struct
import subprocess
from typing import Any

import pytest
from confluent_kafka import KafkaException
from confluent_kafka.admin import (
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    ConfigSource,
    NewPartitions,
    NewTopic,
    ResourceType,
)

from headwater.client.broker import Broker
from headwater.protocol.codec import decode_response, encode_request
from headwater.protocol.messages import API_KEYS

TIMEOUT_S = 10.0
KCAT = "/usr/bin/kcat"

CREATE_TOPICS, DELETE_TOPICS, DESCRIBE_CONFIGS, CREATE_PARTITIONS, INCREMENTAL_ALTER_CONFIGS = 19, 20, 32, 37, 44
NONE, UNKNOWN_TOPIC_OR_PARTITION, INVALID_TOPIC_EXCEPTION = 0, 3, 17
TOPIC_ALREADY_EXISTS, INVALID_PARTITIONS, INVALID_REPLICATION_FACTOR = 36, 37, 38
INVALID_REPLICA_ASSIGNMENT, INVALID_CONFIG, INVALID_REQUEST = 39, 40, 42


# ---------------------------------------------------------------------------- helpers


def admin(bootstrap: str) -> AdminClient:
    return AdminClient({"bootstrap.servers": bootstrap, "socket.timeout.ms": 5000})


def result(future: Any) -> Any:
    return future.result(timeout=TIMEOUT_S)


def error_of(future: Any) -> int:
    """The Kafka error code a confluent-kafka admin future fails with (NONE if it succeeds)."""
    try:
        future.result(timeout=TIMEOUT_S)
    except KafkaException as exc:
        return int(exc.args[0].code())
    return NONE


def create(client: AdminClient, *topics: NewTopic, validate_only: bool = False) -> dict[str, int]:
    futures = client.create_topics(list(topics), operation_timeout=5, request_timeout=TIMEOUT_S, validate_only=validate_only)
    return {name: error_of(f) for name, f in futures.items()}


def describe_topic(client: AdminClient, topic: str) -> dict[str, Any]:
    (future,) = client.describe_configs([ConfigResource(ResourceType.TOPIC, topic)], request_timeout=TIMEOUT_S).values()
    return dict(result(future))


def incremental(client: AdminClient, topic: str, *entries: ConfigEntry, validate_only: bool = False) -> int:
    resource = ConfigResource(ResourceType.TOPIC, topic, incremental_configs=list(entries))
    (future,) = client.incremental_alter_configs([resource], request_timeout=TIMEOUT_S, validate_only=validate_only).values()
    return error_of(future)


def op(name: str, value: str | None, kind: AlterConfigOpType) -> ConfigEntry:
    return ConfigEntry(name, value, incremental_operation=kind)


def kcat_topics(bootstrap: str) -> dict[str, int]:
    """{topic: partition count} from `kcat -L -J`."""
    out = subprocess.run([KCAT, "-b", bootstrap, "-L", "-J", "-m", "5"], capture_output=True, text=True, timeout=TIMEOUT_S, check=True)
    doc = json.loads(out.stdout)
    return {t["topic"]: len(t["partitions"]) for t in doc["topics"]}


def segment_files(broker: Broker, topic: str, partition: int) -> list[str]:
    path = broker.get_log(topic, partition).path
    return sorted(f for f in os.listdir(path) if f.endswith(".log"))


class RawClient:
    """One Kafka connection speaking our own codec: a request in, the decoded response out."""

    def __init__(self, bootstrap: str) -> None:
        host, port = bootstrap.rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)), timeout=TIMEOUT_S)
        self.correlation_id = 0

    def call(self, api_key: int, version: int, body: dict[str, Any]) -> dict[str, Any]:
        self.correlation_id += 1
        self.sock.sendall(encode_request(api_key, version, self.correlation_id, body, framed=True))
        (size,) = struct.unpack(">i", self._read(4))
        correlation_id, response = decode_response(api_key, version, self._read(size))
        assert correlation_id == self.correlation_id
        return response

    def _read(self, n: int) -> bytes:
        buf = bytearray()
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise ConnectionError("server closed the connection")
            buf += chunk
        return bytes(buf)

    def close(self) -> None:
        self.sock.close()


def versions(api_key: int) -> range:
    info = API_KEYS[api_key]
    return range(info.min_version, info.max_version + 1)


# ---------------------------------------------------------------------------- confluent-kafka


def test_create_topics_visible_to_every_face_and_survive_reopen(broker: Broker) -> None:
    server = broker.serve(host="127.0.0.1", port=0)
    try:
        client = admin(server.bootstrap_servers)
        errors = create(
            client,
            NewTopic("orders", num_partitions=3, replication_factor=1, config={"retention.ms": "3600000", "cleanup.policy": "compact"}),
            NewTopic("defaults"),  # -1/-1: the broker's num.partitions and replication factor 1
        )
        assert errors == {"orders": NONE, "defaults": NONE}
        listed = result_topics(client)
        assert listed["orders"] == 3 and listed["defaults"] == int(broker.config["num.partitions"])
        assert kcat_topics(server.bootstrap_servers)["orders"] == 3
        assert set(broker.list_topics()) >= {"orders", "defaults"}
        assert broker.describe_topic("orders").partitions == 3
        assert broker.get_log("orders", 2).config.retention_ms == 3600000
        assert broker.topic_config("orders")["cleanup.policy"] == "compact"
    finally:
        server.close()
    data_dir = broker.data_dir
    broker.close()
    with Broker(data_dir) as reopened:
        assert reopened.describe_topic("orders").partitions == 3
        assert dict(reopened.describe_topic("orders").config) == {"cleanup.policy": "compact", "retention.ms": 3600000}
        assert reopened.get_log("orders", 1).config.cleanup_policy == "compact"
        assert "defaults" in reopened.list_topics()


def result_topics(client: AdminClient) -> dict[str, int]:
    metadata = client.list_topics(timeout=TIMEOUT_S)
    return {name: len(t.partitions) for name, t in metadata.topics.items()}


def test_create_topics_validate_only_creates_nothing(broker: Broker, bootstrap: str) -> None:
    client = admin(bootstrap)
    assert create(client, NewTopic("checked", 4, 1, config={"segment.bytes": "1048576"}), validate_only=True) == {"checked": NONE}
    assert "checked" not in broker.list_topics()
    assert "checked" not in result_topics(client)
    # validate_only still validates.
    assert create(client, NewTopic("checked", 4, 3), validate_only=True) == {"checked": INVALID_REPLICATION_FACTOR}
    assert not os.path.exists(os.path.join(broker.data_dir, "checked-0"))


def test_create_topics_errors(broker: Broker, bootstrap: str) -> None:
    broker.create_topic("taken", 1)
    client = admin(bootstrap)
    errors = create(
        client,
        NewTopic("taken", 1, 1),
        NewTopic("too-many-replicas", 1, 3),
        NewTopic("unknown-config", 1, 1, config={"no.such.config": "1"}),
        NewTopic("bad-value", 1, 1, config={"retention.ms": "soon"}),
        NewTopic("bad-policy", 1, 1, config={"cleanup.policy": "forever"}),
        NewTopic("bad-compression", 1, 1, config={"compression.type": "brotli"}),
        NewTopic("bad/name", 1, 1),
    )
    assert errors == {
        "taken": TOPIC_ALREADY_EXISTS,
        "too-many-replicas": INVALID_REPLICATION_FACTOR,
        "unknown-config": INVALID_CONFIG,
        "bad-value": INVALID_CONFIG,
        "bad-policy": INVALID_CONFIG,
        "bad-compression": INVALID_CONFIG,
        "bad/name": INVALID_TOPIC_EXCEPTION,
    }
    # The one failure per topic left no half-created topic behind, and "taken" is unchanged.
    assert set(broker.list_topics()) == {"taken"}
    # compression.type takes Kafka's values and is stored like any topic config.
    assert create(client, NewTopic("lz4-topic", 1, 1, config={"compression.type": "lz4"})) == {"lz4-topic": NONE}
    assert dict(broker.describe_topic("lz4-topic").config) == {"compression.type": "lz4"}


def test_create_topics_with_replica_assignment(broker: Broker, bootstrap: str) -> None:
    client = admin(bootstrap)
    node = int(broker.config["node.id"])
    assert create(client, NewTopic("assigned", 2, replica_assignment=[[node], [node]])) == {"assigned": NONE}
    assert broker.describe_topic("assigned").partitions == 2
    errors = create(
        client,
        NewTopic("elsewhere", 1, replica_assignment=[[node + 1]]),
        NewTopic("two-replicas", 1, replica_assignment=[[node, node + 1]]),
    )
    assert errors == {"elsewhere": INVALID_REPLICA_ASSIGNMENT, "two-replicas": INVALID_REPLICA_ASSIGNMENT}
    assert "elsewhere" not in broker.list_topics()


def test_describe_configs_sources_and_synonyms(tmp_path: Any) -> None:
    # A broker-wide default set at startup shows as STATIC_BROKER_CONFIG, a topic override as
    # DYNAMIC_TOPIC_CONFIG, the rest as DEFAULT_CONFIG.
    with Broker(str(tmp_path / "data"), {"log.segment.bytes": 8 << 20}) as broker:
        broker.create_topic("described", 1, {"retention.ms": 60000})
        server = broker.serve(host="127.0.0.1", port=0)
        try:
            client = admin(server.bootstrap_servers)
            configs = describe_topic(client, "described")
            for name in ("cleanup.policy", "retention.ms", "segment.bytes", "max.message.bytes",
                         "message.timestamp.type", "min.insync.replicas", "compression.type"):
                assert name in configs, name
            retention = configs["retention.ms"]
            assert retention.value == "60000" and retention.source == ConfigSource.DYNAMIC_TOPIC_CONFIG.value
            assert not retention.is_read_only and not retention.is_sensitive
            segment = configs["segment.bytes"]
            assert segment.value == str(8 << 20) and segment.source == ConfigSource.STATIC_BROKER_CONFIG.value
            assert configs["cleanup.policy"].value == "delete"
            assert configs["cleanup.policy"].source == ConfigSource.DEFAULT_CONFIG.value
            assert configs["compression.type"].value == "producer" and not configs["compression.type"].is_read_only
            # librdkafka asks for synonyms: the override first, then the defaults it shadows.
            synonyms = list(retention.synonyms.values())
            assert [s.source for s in synonyms] == [ConfigSource.DYNAMIC_TOPIC_CONFIG.value, ConfigSource.DEFAULT_CONFIG.value]

            node = str(broker.config["node.id"])
            (future,) = client.describe_configs([ConfigResource(ResourceType.BROKER, node)], request_timeout=TIMEOUT_S).values()
            broker_configs = dict(result(future))
            assert broker_configs["num.partitions"].value == str(broker.config["num.partitions"])
            assert broker_configs["log.segment.bytes"].value == str(8 << 20)
            assert broker_configs["log.segment.bytes"].source == ConfigSource.STATIC_BROKER_CONFIG.value
            assert broker_configs["auto.create.topics.enable"].value == "true"

            (future,) = client.describe_configs([ConfigResource(ResourceType.TOPIC, "missing")], request_timeout=TIMEOUT_S).values()
            assert error_of(future) == UNKNOWN_TOPIC_OR_PARTITION
        finally:
            server.close()


def test_incremental_alter_configs_take_effect(broker: Broker, bootstrap: str) -> None:
    client = admin(bootstrap)
    assert create(client, NewTopic("tuned", 1, 1)) == {"tuned": NONE}

    # SET: persisted, in the effective config and in the open partition log.
    assert incremental(client, "tuned", op("retention.ms", "5000", AlterConfigOpType.SET),
                       op("segment.bytes", "4096", AlterConfigOpType.SET)) == NONE
    assert broker.topic_config("tuned")["retention.ms"] == 5000
    plog = broker.get_log("tuned", 0)
    assert plog.config.retention_ms == 5000 and plog.config.segment_bytes == 4096
    assert describe_topic(client, "tuned")["segment.bytes"].value == "4096"
    # The new segment size is live: 20 batches of 1 KB roll several 4 KB segments.
    producer = broker.producer()
    for _ in range(20):
        producer.produce("tuned", b"x" * 1000, partition=0)
        producer.flush(TIMEOUT_S)
    assert len(segment_files(broker, "tuned", 0)) >= 5

    # APPEND/SUBTRACT work on the list config cleanup.policy, from its effective value.
    assert incremental(client, "tuned", op("cleanup.policy", "compact", AlterConfigOpType.APPEND)) == NONE
    assert broker.topic_config("tuned")["cleanup.policy"] == "compact,delete"
    assert incremental(client, "tuned", op("cleanup.policy", "delete", AlterConfigOpType.SUBTRACT)) == NONE
    assert broker.get_log("tuned", 0).config.cleanup_policy == "compact"

    # DELETE returns to the default.
    assert incremental(client, "tuned", op("retention.ms", None, AlterConfigOpType.DELETE)) == NONE
    assert "retention.ms" not in broker.describe_topic("tuned").config
    assert broker.get_log("tuned", 0).config.retention_ms == 604800000

    # validate_only checks and changes nothing.
    assert incremental(client, "tuned", op("retention.ms", "1", AlterConfigOpType.SET), validate_only=True) == NONE
    assert "retention.ms" not in broker.describe_topic("tuned").config

    # Errors are per resource and leave the topic as it was.
    before = dict(broker.describe_topic("tuned").config)
    assert incremental(client, "tuned", op("retention.ms", "1000", AlterConfigOpType.APPEND)) == INVALID_CONFIG
    assert incremental(client, "tuned", op("no.such.config", "1", AlterConfigOpType.SET)) == INVALID_CONFIG
    assert incremental(client, "tuned", op("segment.bytes", "tiny", AlterConfigOpType.SET),
                       op("retention.ms", "1000", AlterConfigOpType.SET)) == INVALID_CONFIG
    assert incremental(client, "missing", op("retention.ms", "1000", AlterConfigOpType.SET)) == UNKNOWN_TOPIC_OR_PARTITION
    assert dict(broker.describe_topic("tuned").config) == before


def test_create_partitions(broker: Broker, bootstrap: str) -> None:
    client = admin(bootstrap)
    assert create(client, NewTopic("growing", 2, 1)) == {"growing": NONE}

    def grow(total: int, validate_only: bool = False, assignment: Any = None) -> int:
        # confluent-kafka rejects an explicit replica_assignment=None.
        new = NewPartitions("growing", total) if assignment is None else NewPartitions("growing", total, replica_assignment=assignment)
        futures = client.create_partitions([new], validate_only=validate_only, request_timeout=TIMEOUT_S)
        return error_of(futures["growing"])

    assert grow(5, validate_only=True) == NONE
    assert broker.describe_topic("growing").partitions == 2
    assert grow(5) == NONE
    assert broker.describe_topic("growing").partitions == 5
    assert broker.get_log("growing", 4).log_end_offset == 0
    assert result_topics(client)["growing"] == 5
    assert grow(5) == INVALID_PARTITIONS
    assert grow(3) == INVALID_PARTITIONS
    node = int(broker.config["node.id"])
    assert grow(6, assignment=[[node + 1]]) == INVALID_REPLICA_ASSIGNMENT
    assert grow(6, assignment=[[node]]) == NONE
    assert broker.describe_topic("growing").partitions == 6
    futures = client.create_partitions([NewPartitions("missing", 3)], request_timeout=TIMEOUT_S)
    assert error_of(futures["missing"]) == UNKNOWN_TOPIC_OR_PARTITION


def test_delete_topics(broker: Broker, bootstrap: str) -> None:
    client = admin(bootstrap)
    assert create(client, NewTopic("doomed", 2, 1), NewTopic("kept", 1, 1)) == {"doomed": NONE, "kept": NONE}
    doomed_dir = broker.get_log("doomed", 0).path
    futures = client.delete_topics(["doomed", "never-was", "__consumer_offsets"], operation_timeout=5, request_timeout=TIMEOUT_S)
    assert error_of(futures["doomed"]) == NONE
    assert error_of(futures["never-was"]) == UNKNOWN_TOPIC_OR_PARTITION
    # Kafka's broker would delete it; headwater refuses (see handlers/admin.py).
    assert error_of(futures["__consumer_offsets"]) == INVALID_TOPIC_EXCEPTION
    assert set(broker.list_topics()) == {"kept"}
    assert "__consumer_offsets" in broker.list_topics(include_internal=True)
    assert not os.path.exists(doomed_dir)
    assert set(kcat_topics(bootstrap)) == {"kept", "__consumer_offsets", "__transaction_state"}
    # The name is free again, with a new topic id.
    assert create(client, NewTopic("doomed", 1, 1)) == {"doomed": NONE}


# ---------------------------------------------------------------------------- kafka-python, aiokafka


def test_kafka_python_admin(broker: Broker, bootstrap: str) -> None:
    from kafka.admin import ConfigResource as KPConfigResource
    from kafka.admin import ConfigResourceType, KafkaAdminClient
    from kafka.admin import NewPartitions as KPNewPartitions
    from kafka.admin import NewTopic as KPNewTopic
    from kafka.errors import (
        InvalidReplicationFactorError,
        TopicAlreadyExistsError,
        UnknownTopicOrPartitionError,
    )

    client = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=int(TIMEOUT_S * 1000))
    try:
        client.create_topics([KPNewTopic("kp-topic", 2, 1, topic_configs={"retention.ms": "120000"})], timeout_ms=5000)
        assert broker.describe_topic("kp-topic").partitions == 2
        assert "kp-topic" in client.list_topics()
        with pytest.raises(TopicAlreadyExistsError):
            client.create_topics([KPNewTopic("kp-topic", 2, 1)], timeout_ms=5000)
        with pytest.raises(InvalidReplicationFactorError):
            client.create_topics([KPNewTopic("kp-replicated", 1, 2)], timeout_ms=5000)

        described = client.describe_configs([KPConfigResource(ConfigResourceType.TOPIC, "kp-topic")])
        assert described_value(described, "retention.ms") == "120000"

        client.create_partitions({"kp-topic": KPNewPartitions(4)}, timeout_ms=5000)
        assert broker.describe_topic("kp-topic").partitions == 4

        client.delete_topics(["kp-topic"], timeout_ms=5000)
        assert "kp-topic" not in broker.list_topics()
        with pytest.raises(UnknownTopicOrPartitionError):
            client.delete_topics(["kp-topic"], timeout_ms=5000)
    finally:
        client.close()


def described_value(described: dict[str, Any], name: str) -> str | None:
    """The value of topic config `name` in kafka-python 3.x's describe_configs answer:
    {"topic": {topic: {config name: {"value": ..., "config_source": ...}}}}."""
    (configs,) = described["topic"].values()
    return configs[name]["value"] if name in configs else None


def test_aiokafka_admin_create_and_delete(broker: Broker, bootstrap: str) -> None:
    from aiokafka.admin import AIOKafkaAdminClient
    from aiokafka.admin import NewTopic as AIONewTopic

    async def run() -> None:
        client = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=int(TIMEOUT_S * 1000))
        await asyncio.wait_for(client.start(), TIMEOUT_S)
        try:
            await asyncio.wait_for(client.create_topics([AIONewTopic("aio-topic", 3, 1)], timeout_ms=5000), TIMEOUT_S)
            assert broker.describe_topic("aio-topic").partitions == 3
            assert "aio-topic" in await asyncio.wait_for(client.list_topics(), TIMEOUT_S)
            await asyncio.wait_for(client.delete_topics(["aio-topic"], timeout_ms=5000), TIMEOUT_S)
            assert "aio-topic" not in broker.list_topics()
        finally:
            await client.close()

    asyncio.run(run())


# ---------------------------------------------------------------------------- every version, raw


def test_every_advertised_version_over_a_raw_socket(broker: Broker, bootstrap: str) -> None:
    node = str(broker.config["node.id"])
    raw = RawClient(bootstrap)
    try:
        for v in versions(CREATE_TOPICS):
            name = f"raw-{v}"
            response = raw.call(CREATE_TOPICS, v, {"topics": [
                {"name": name, "num_partitions": -1, "replication_factor": -1,
                 "assignments": [], "configs": [{"name": "max.message.bytes", "value": "2000000"}]},
                {"name": name, "num_partitions": 1, "replication_factor": 1, "assignments": [], "configs": []},
                {"name": f"raw-both-{v}", "num_partitions": 2, "replication_factor": -1,
                 "assignments": [{"partition_index": 0, "broker_ids": [int(node)]}], "configs": []},
            ], "timeout_ms": 5000, "validate_only": False})
            by_name = {t["name"]: t for t in response["topics"]}
            # A name given twice is INVALID_REQUEST, once, and nothing is created for it.
            assert by_name[name]["error_code"] == INVALID_REQUEST
            assert by_name[f"raw-both-{v}"]["error_code"] == INVALID_REQUEST
            assert name not in broker.list_topics()
            single = raw.call(CREATE_TOPICS, v, {"topics": [
                {"name": name, "num_partitions": -1, "replication_factor": -1,
                 "assignments": [], "configs": [{"name": "max.message.bytes", "value": "2000000"}]},
            ], "timeout_ms": 5000, "validate_only": False})["topics"][0]
            assert single["error_code"] == NONE and single["name"] == name
            assert broker.get_log(name, 0).config.max_message_bytes == 2000000
            if v >= 5:
                assert single["num_partitions"] == int(broker.config["num.partitions"])
                assert single["replication_factor"] == 1
                configs = {c["name"]: c for c in single["configs"]}
                assert configs["max.message.bytes"]["value"] == "2000000"
                assert configs["max.message.bytes"]["config_source"] == 1
                assert configs["retention.ms"]["config_source"] == 5

        for v in versions(DESCRIBE_CONFIGS):
            response = raw.call(DESCRIBE_CONFIGS, v, {"resources": [
                {"resource_type": 2, "resource_name": "raw-2", "configuration_keys": ["max.message.bytes", "no.such"]},
                {"resource_type": 2, "resource_name": "raw-2", "configuration_keys": []},
                {"resource_type": 4, "resource_name": node, "configuration_keys": None},
                {"resource_type": 4, "resource_name": "", "configuration_keys": None},
                {"resource_type": 4, "resource_name": "12345", "configuration_keys": None},
                {"resource_type": 8, "resource_name": node, "configuration_keys": None},
            ], "include_synonyms": True, "include_documentation": True})
            filtered, everything, this_broker, dynamic_default, other_broker, logger = response["results"]
            assert [c["name"] for c in filtered["configs"]] == ["max.message.bytes"]
            entry = filtered["configs"][0]
            assert entry["value"] == "2000000" and entry["config_source"] == 1 and entry["synonyms"][0]["source"] == 1
            if v >= 3:
                assert entry["config_type"] == 3  # INT
                assert entry["documentation"]
            assert len(everything["configs"]) >= 15  # empty key list = every config, as in Kafka
            assert this_broker["error_code"] == NONE and all(c["read_only"] for c in this_broker["configs"])
            assert dynamic_default["error_code"] == NONE and dynamic_default["configs"] == []
            assert other_broker["error_code"] == INVALID_REQUEST
            assert logger["error_code"] == INVALID_REQUEST

        for v in versions(INCREMENTAL_ALTER_CONFIGS):
            response = raw.call(INCREMENTAL_ALTER_CONFIGS, v, {"resources": [
                {"resource_type": 2, "resource_name": "raw-2", "configs": [
                    {"name": "retention.ms", "config_operation": 0, "value": str(1000 + v)},
                    {"name": "message.timestamp.type", "config_operation": 0, "value": "LogAppendTime"}]},
                {"resource_type": 2, "resource_name": "raw-3", "configs": [
                    {"name": "retention.ms", "config_operation": 0, "value": "1"},
                    {"name": "retention.ms", "config_operation": 1, "value": None}]},
                {"resource_type": 2, "resource_name": "raw-4", "configs": [
                    {"name": "retention.ms", "config_operation": 9, "value": "1"}]},
                {"resource_type": 4, "resource_name": node, "configs": [
                    {"name": "num.partitions", "config_operation": 0, "value": "3"}]},
            ], "validate_only": False})
            codes = [r["error_code"] for r in response["responses"]]
            assert codes == [NONE, INVALID_REQUEST, INVALID_REQUEST, INVALID_REQUEST]
            assert broker.get_log("raw-2", 0).config.retention_ms == 1000 + v
            assert broker.get_log("raw-2", 0).config.message_timestamp_type == "LogAppendTime"
            assert "retention.ms" not in broker.describe_topic("raw-3").config

        for v in versions(CREATE_PARTITIONS):
            response = raw.call(CREATE_PARTITIONS, v, {"topics": [
                {"name": "raw-2", "count": 2 + v, "assignments": None},
                {"name": "raw-3", "count": 3, "assignments": [{"broker_ids": [int(node)]}]},  # 3 - 1 = 2 new, 1 given
                {"name": "__consumer_offsets", "count": 10, "assignments": None},
            ], "timeout_ms": 5000, "validate_only": False})
            codes = [r["error_code"] for r in response["results"]]
            assert codes == [NONE, INVALID_REPLICA_ASSIGNMENT, INVALID_TOPIC_EXCEPTION]
            assert broker.describe_topic("raw-2").partitions == 2 + v
            assert response["results"][1]["error_message"]

        for v in versions(DELETE_TOPICS):
            response = raw.call(DELETE_TOPICS, v, {"topic_names": [f"raw-{v + 1}", "raw-missing"], "timeout_ms": 5000})
            codes = {r["name"]: r["error_code"] for r in response["responses"]}
            assert codes == {f"raw-{v + 1}": NONE, "raw-missing": UNKNOWN_TOPIC_OR_PARTITION}
            assert f"raw-{v + 1}" not in broker.list_topics()
    finally:
        raw.close()


def test_validate_only_over_the_wire_never_changes_state(broker: Broker, bootstrap: str) -> None:
    broker.create_topic("stable", 2, {"retention.ms": 1000})
    raw = RawClient(bootstrap)
    try:
        created = raw.call(CREATE_TOPICS, 5, {"topics": [
            {"name": "phantom", "num_partitions": 3, "replication_factor": 1, "assignments": [], "configs": []},
        ], "timeout_ms": 5000, "validate_only": True})["topics"][0]
        assert created["error_code"] == NONE and created["num_partitions"] == 3
        grown = raw.call(CREATE_PARTITIONS, 3, {"topics": [{"name": "stable", "count": 4, "assignments": None}],
                                                "timeout_ms": 5000, "validate_only": True})["results"][0]
        assert grown["error_code"] == NONE
        altered = raw.call(INCREMENTAL_ALTER_CONFIGS, 1, {"resources": [
            {"resource_type": 2, "resource_name": "stable", "configs": [
                {"name": "retention.ms", "config_operation": 1, "value": None},
                {"name": "cleanup.policy", "config_operation": 2, "value": "compact"}]},
        ], "validate_only": True})["responses"][0]
        assert altered["error_code"] == NONE
        assert "phantom" not in broker.list_topics()
        assert broker.describe_topic("stable").partitions == 2
        assert dict(broker.describe_topic("stable").config) == {"retention.ms": 1000}
        assert broker.get_log("stable", 0).config.cleanup_policy == "delete"
    finally:
        raw.close()


def test_internal_topic_is_listed_but_protected(broker: Broker, bootstrap: str) -> None:
    client = admin(bootstrap)
    assert "__consumer_offsets" in result_topics(client)
    assert create(client, NewTopic("__consumer_offsets", 1, 1)) == {"__consumer_offsets": TOPIC_ALREADY_EXISTS}
    futures = client.create_partitions([NewPartitions("__consumer_offsets", 8)], request_timeout=TIMEOUT_S)
    assert error_of(futures["__consumer_offsets"]) == INVALID_TOPIC_EXCEPTION
    futures = client.delete_topics(["__consumer_offsets"], operation_timeout=5, request_timeout=TIMEOUT_S)
    assert error_of(futures["__consumer_offsets"]) == INVALID_TOPIC_EXCEPTION
    assert broker.describe_topic("__consumer_offsets").partitions == int(broker.config["offsets.topic.num.partitions"])
    # __transaction_state exists from the start too (the transaction coordinator's log).
    assert create(client, NewTopic("__transaction_state", 1, 1)) == {"__transaction_state": TOPIC_ALREADY_EXISTS}
