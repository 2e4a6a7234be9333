"""AdminClient shaped like confluent_kafka.admin.AdminClient, over an embedded Broker.

Every call returns {name: concurrent.futures.Future} as confluent-kafka does; the futures are
already complete (the broker is in-process), so `.result()` returns or raises at once.
"""

from __future__ import annotations

from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from headwater.errors import HeadwaterError, KafkaError, UnknownTopicOrPartitionError

if TYPE_CHECKING:
    from headwater.client.broker import Broker


@dataclass
class NewTopic:
    """confluent_kafka.admin.NewTopic."""

    topic: str
    num_partitions: int = -1
    replication_factor: int = -1
    config: dict[str, Any] = field(default_factory=dict)


@dataclass
class NewPartitions:
    """confluent_kafka.admin.NewPartitions: grow `topic` to `new_total_count` partitions."""

    topic: str
    new_total_count: int


@dataclass(eq=False)
class ConfigResource:
    """confluent_kafka.admin.ConfigResource (only topics are described here)."""

    restype: Any
    name: str
    set_config: dict[str, Any] = field(default_factory=dict)


@dataclass
class BrokerMetadata:
    """confluent_kafka.admin.BrokerMetadata. An embedded broker has an address only while it
    serves the wire protocol (Broker.serve(): the advertised one); else host "" and port -1."""

    id: int
    host: str
    port: int

    def __str__(self) -> str:
        return f"{self.host}:{self.port}/{self.id}"


@dataclass
class PartitionMetadata:
    """confluent_kafka.admin.PartitionMetadata: one node is leader, replica and in sync."""

    id: int
    leader: int
    replicas: list[int]
    isrs: list[int]
    error: KafkaError | None = None


@dataclass
class TopicMetadata:
    """confluent_kafka.admin.TopicMetadata: `partitions` by id; `error` set (and no partition)
    for a topic asked for by name that does not exist."""

    topic: str
    partitions: dict[int, PartitionMetadata]
    error: KafkaError | None = None


@dataclass
class ClusterMetadata:
    """confluent_kafka.admin.ClusterMetadata: what list_topics() returns on every face."""

    cluster_id: str
    controller_id: int
    brokers: dict[int, BrokerMetadata]
    topics: dict[str, TopicMetadata]
    orig_broker_id: int
    orig_broker_name: str


def cluster_metadata(broker: Broker, topic: str | None = None, *, create: bool = False) -> ClusterMetadata:
    """list_topics(topic) of a Producer, Consumer or AdminClient: every topic, internal ones
    included (as a Metadata request answers), or the one named, with UNKNOWN_TOPIC_OR_PART
    when it does not exist. `create` (a producer's, as librdkafka's Metadata request allows
    it): a named topic that does not exist is created first, if auto.create.topics.enable."""
    if topic is not None and create:
        try:
            broker._partition_count(topic, create=True)
        except HeadwaterError:
            pass  # reported as the topic's error below
    node = int(broker.config["node.id"])
    servers = broker._servers
    if servers:
        me = BrokerMetadata(node, servers[0].advertised_host, servers[0].advertised_port)
    else:
        me = BrokerMetadata(node, "", -1)
    topics = {
        name: TopicMetadata(name, {p: PartitionMetadata(p, node, [node], [node]) for p in range(meta.partitions)})
        for name, meta in broker.list_topics(topic, include_internal=True).items()
    }
    if topic is not None and topic not in topics:
        topics[topic] = TopicMetadata(topic, {}, UnknownTopicOrPartitionError(f"unknown topic {topic!r}").args[0])
    return ClusterMetadata(broker.cluster_id, node, {node: me}, topics, node, str(me))


def _future(fn: Any, *args: Any) -> Future[Any]:
    fut: Future[Any] = Future()
    try:
        fut.set_result(fn(*args))
    except HeadwaterError as exc:
        fut.set_exception(exc)
    return fut


class AdminClient:
    def __init__(self, broker: Broker) -> None:
        self._broker = broker

    def create_topics(self, new_topics: list[NewTopic], validate_only: bool = False, **kwargs: Any) -> dict[str, Future[Any]]:
        b = self._broker

        def create(t: NewTopic) -> None:
            if validate_only:
                b._store.create_topic(t.topic, t.num_partitions, t.replication_factor, t.config, validate_only=True)
                return None
            n = int(b.config["num.partitions"]) if t.num_partitions == -1 else t.num_partitions
            b.create_topic(t.topic, n, t.config, replication_factor=t.replication_factor)
            return None

        return {t.topic: _future(create, t) for t in new_topics}

    def delete_topics(self, topics: list[str], **kwargs: Any) -> dict[str, Future[Any]]:
        return {t: _future(self._broker.delete_topic, t) for t in topics}

    def create_partitions(self, new_partitions: list[NewPartitions], **kwargs: Any) -> dict[str, Future[Any]]:
        return {p.topic: _future(lambda p=p: (self._broker.create_partitions(p.topic, p.new_total_count), None)[1]) for p in new_partitions}

    def list_topics(self, topic: str | None = None, timeout: float = -1) -> ClusterMetadata:
        return cluster_metadata(self._broker, topic)

    def cluster_id(self, timeout: float | None = None) -> str:
        return str(self._broker.cluster_id)

    def describe_configs(self, resources: list[ConfigResource], **kwargs: Any) -> dict[ConfigResource, Future[Any]]:
        return {r: _future(self._broker.topic_config, r.name) for r in resources}  # type: ignore[misc]

    def alter_configs(self, resources: list[ConfigResource], **kwargs: Any) -> dict[ConfigResource, Future[Any]]:
        return {r: _future(lambda r=r: (self._broker.alter_topic_config(r.name, r.set_config), None)[1]) for r in resources}  # type: ignore[misc]

    def list_groups(self, timeout: float = -1) -> list[Any]:
        b = self._broker
        with b._lock:
            return b.group_coordinator.list_groups()

    def describe_groups(self, group_ids: list[str], **kwargs: Any) -> dict[str, Future[Any]]:
        b = self._broker
        with b._lock:
            described = {g.group_id: g for g in b.group_coordinator.describe_groups(group_ids)}
        return {g: _future(lambda g=g: described[g]) for g in group_ids}

    def delete_groups(self, group_ids: list[str], **kwargs: Any) -> dict[str, Future[Any]]:
        b = self._broker
        errors = b._group_call(b.group_coordinator.delete_groups, group_ids)
        out: dict[str, Future[Any]] = {}
        for g in group_ids:
            fut: Future[Any] = Future()
            err = errors.get(g)
            if err is None:
                fut.set_result(None)
            else:
                fut.set_exception(err)
            out[g] = fut
        return out

    def group_lag(self, group_id: str) -> Any:
        """Per-partition lag of a group (committed offset vs log end)."""
        b = self._broker
        with b._lock:
            return b.group_coordinator.group_lag(group_id, lambda tp: b.get_log(tp.topic, tp.partition).high_watermark)
