"""AdminClient shaped like confluent_kafka.admin.AdminClient, over an embedded Broker.

Every call returns {name: concurrent.futures.Future} as confluent-kafka does; the futures are
already complete (the broker is in-process), so `.result()` returns or raises at once.
"""

from __future__ import annotations

import base64
import time
import uuid
from concurrent.futures import Future
from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING, Any

from headwater.client.message import OFFSET_INVALID, TopicPartition
from headwater.coordinator.group import CommitOffset
from headwater.coordinator.group import TopicPartition as GroupTP
from headwater.coordinator.group.protocol import decode_assignment
from headwater.errors import HeadwaterError, KafkaApiError, KafkaError, UnknownTopicOrPartitionError
from headwater.log.partition_log import EARLIEST_TIMESTAMP, LATEST_TIMESTAMP, MAX_TIMESTAMP

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


def _broker_metadata(broker: Broker) -> BrokerMetadata:
    """This broker: its node id, and its advertised address while it serves the wire."""
    node = int(broker.config["node.id"])
    servers = broker._servers
    if servers:
        return BrokerMetadata(node, servers[0].advertised_host, servers[0].advertised_port)
    return BrokerMetadata(node, "", -1)


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
    me = _broker_metadata(broker)
    node = me.id
    topics = {
        name: TopicMetadata(name, {p: PartitionMetadata(p, node, [node], [node]) for p in range(meta.partitions)})
        for name, meta in broker.list_topics(topic, include_internal=True).items()
    }
    if topic is not None and topic not in topics:
        topics[topic] = TopicMetadata(topic, {}, UnknownTopicOrPartitionError(f"unknown topic {topic!r}").args[0])
    return ClusterMetadata(broker.cluster_id, node, {node: me}, topics, node, str(me))


@dataclass
class ConsumerGroupTopicPartitions:
    """confluent_kafka.ConsumerGroupTopicPartitions: a group and some of its partitions
    (None: every partition with a committed offset)."""

    group_id: str
    topic_partitions: list[TopicPartition] | None = None


class OffsetSpec:
    """confluent_kafka.admin.OffsetSpec: what list_offsets() looks up for a partition."""

    __slots__ = ("_value",)

    def __init__(self, value: int) -> None:
        self._value = value

    @classmethod
    def earliest(cls) -> OffsetSpec:
        return cls(EARLIEST_TIMESTAMP)

    @classmethod
    def latest(cls) -> OffsetSpec:
        return cls(LATEST_TIMESTAMP)

    @classmethod
    def max_timestamp(cls) -> OffsetSpec:
        return cls(MAX_TIMESTAMP)

    @classmethod
    def for_timestamp(cls, timestamp: int) -> OffsetSpec:
        return cls(int(timestamp))

    def __repr__(self) -> str:
        return f"OffsetSpec({self._value})"


@dataclass
class ListOffsetsResultInfo:
    """confluent_kafka.admin.ListOffsetsResultInfo: offset -1 when nothing matches."""

    offset: int
    timestamp: int
    leader_epoch: int | None


class ConsumerGroupState(Enum):
    """confluent_kafka.ConsumerGroupState (librdkafka's values)."""

    UNKNOWN = 0
    PREPARING_REBALANCING = 1
    COMPLETING_REBALANCING = 2
    STABLE = 3
    DEAD = 4
    EMPTY = 5


class ConsumerGroupType(Enum):
    """confluent_kafka.ConsumerGroupType: headwater's groups are all the classic protocol's."""

    UNKNOWN = 0
    CONSUMER = 1
    CLASSIC = 2


# The coordinator's state names (Kafka's) -> ConsumerGroupState.
_GROUP_STATES = {
    "PreparingRebalance": ConsumerGroupState.PREPARING_REBALANCING,
    "CompletingRebalance": ConsumerGroupState.COMPLETING_REBALANCING,
    "Stable": ConsumerGroupState.STABLE,
    "Dead": ConsumerGroupState.DEAD,
    "Empty": ConsumerGroupState.EMPTY,
}


@dataclass
class Node:
    """confluent_kafka.Node: a broker (the embedded one: see BrokerMetadata for its address)."""

    id: int
    host: str
    port: int
    rack: str | None = None


@dataclass
class ConsumerGroupListing:
    """confluent_kafka.admin.ConsumerGroupListing. A group with an empty protocol type (only
    committed offsets, no members ever) is a simple consumer group."""

    group_id: str
    is_simple_consumer_group: bool
    state: ConsumerGroupState
    type: ConsumerGroupType = ConsumerGroupType.CLASSIC


@dataclass
class ListConsumerGroupsResult:
    """confluent_kafka.admin.ListConsumerGroupsResult."""

    valid: list[ConsumerGroupListing]
    errors: list[KafkaError] = field(default_factory=list)


@dataclass
class MemberAssignment:
    """confluent_kafka.admin.MemberAssignment."""

    topic_partitions: list[TopicPartition]


@dataclass
class MemberDescription:
    """confluent_kafka.admin.MemberDescription. `host` is "embedded" for an embedded member."""

    member_id: str
    client_id: str
    host: str
    assignment: MemberAssignment
    group_instance_id: str | None = None
    target_assignment: MemberAssignment | None = None


@dataclass
class ConsumerGroupDescription:
    """confluent_kafka.admin.ConsumerGroupDescription (members and assignor only while the
    group is Stable, as DescribeGroups answers)."""

    group_id: str
    is_simple_consumer_group: bool
    members: list[MemberDescription]
    partition_assignor: str
    state: ConsumerGroupState
    coordinator: Node
    authorized_operations: list[Any] | None = None
    type: ConsumerGroupType = ConsumerGroupType.CLASSIC


class TopicCollection:
    """confluent_kafka.TopicCollection: topics by name, for describe_topics()."""

    def __init__(self, topic_names: list[str]) -> None:
        self.topic_names = list(topic_names)


class Uuid:
    """confluent_kafka.Uuid of a topic id. str() is librdkafka's spelling: standard base64
    without padding (Kafka's own, TopicMetadata.topic_id_str, is the URL-safe alphabet)."""

    __slots__ = ("_uuid",)

    def __init__(self, value: uuid.UUID) -> None:
        self._uuid = value

    def get_most_significant_bits(self) -> int:
        return _signed64(self._uuid.int >> 64)

    def get_least_significant_bits(self) -> int:
        return _signed64(self._uuid.int & 0xFFFFFFFFFFFFFFFF)

    def __str__(self) -> str:
        return base64.b64encode(self._uuid.bytes).decode("ascii").rstrip("=")

    def __repr__(self) -> str:
        return str(self)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Uuid) and other._uuid == self._uuid

    def __hash__(self) -> int:
        return hash(self._uuid)


def _signed64(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


@dataclass
class TopicPartitionInfo:
    """confluent_kafka.TopicPartitionInfo: on one node it leads, is the replica and in sync."""

    id: int
    leader: Node
    replicas: list[Node]
    isr: list[Node]


@dataclass
class TopicDescription:
    """confluent_kafka.admin.TopicDescription."""

    name: str
    topic_id: Uuid
    is_internal: bool
    partitions: list[TopicPartitionInfo]
    authorized_operations: list[Any] | None = None


@dataclass
class DescribeClusterResult:
    """confluent_kafka.admin.DescribeClusterResult: one node, the controller too."""

    controller: Node
    nodes: list[Node]
    cluster_id: str
    authorized_operations: list[Any] | None = None


@dataclass
class DeletedRecords:
    """confluent_kafka.admin.DeletedRecords: the partition's new low watermark."""

    low_watermark: int


def _node(broker: Broker) -> Node:
    me = _broker_metadata(broker)
    return Node(me.id, me.host, me.port)


class NoEntryError(KafkaApiError):
    """librdkafka's _NOENT (-156): list_offsets() of a partition the topic does not have."""

    code = -156


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

    def poll(self, timeout: float = -1) -> int:
        """confluent-kafka's event poll: every future here is complete when it is returned,
        so there is never an event to serve; returns 0 at once."""
        return 0

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

    def list_consumer_groups(self, states: set[ConsumerGroupState] | None = None, types: set[ConsumerGroupType] | None = None, **kwargs: Any) -> Future[ListConsumerGroupsResult]:
        """Every group (in one of `states`, of one of `types`, when given)."""
        b = self._broker
        wanted = None if not states else {st.name for st in states}

        def listing() -> ListConsumerGroupsResult:
            if types and ConsumerGroupType.CLASSIC not in types:
                return ListConsumerGroupsResult([])
            with b._lock:
                groups = b.group_coordinator.list_groups()
            out = []
            for g in groups:
                state = _GROUP_STATES.get(g.state, ConsumerGroupState.UNKNOWN)
                if wanted is None or state.name in wanted:
                    out.append(ConsumerGroupListing(g.group_id, not g.protocol_type, state))
            return ListConsumerGroupsResult(out)

        return _future(listing)

    def describe_consumer_groups(self, group_ids: list[str], include_authorized_operations: bool = False, **kwargs: Any) -> dict[str, Future[ConsumerGroupDescription]]:
        """Each group's state, members and their assignments (a group that does not exist is
        described as DEAD, as Kafka's DescribeGroups answers)."""
        b = self._broker
        with b._lock:
            described = {g.group_id: g for g in b.group_coordinator.describe_groups(group_ids)}
        node = _node(b)

        def describe(group_id: str) -> ConsumerGroupDescription:
            g = described[group_id]
            members = []
            for m in g.members:
                parts = decode_assignment(m.member_assignment).partitions if m.member_assignment else ()
                members.append(MemberDescription(
                    m.member_id, m.client_id, m.client_host,
                    MemberAssignment([TopicPartition(t, p) for t, p in parts]), m.group_instance_id,
                ))
            state = _GROUP_STATES.get(g.state, ConsumerGroupState.UNKNOWN)
            return ConsumerGroupDescription(group_id, not g.protocol_type, members, g.protocol_data, state, node)

        return {g: _future(describe, g) for g in group_ids}

    def describe_topics(self, topics: TopicCollection, include_authorized_operations: bool = False, **kwargs: Any) -> dict[str, Future[TopicDescription]]:
        """Each topic's id, internal flag and partitions (UNKNOWN_TOPIC_OR_PART if none)."""
        b = self._broker
        node = _node(b)

        def describe(name: str) -> TopicDescription:
            meta = b.describe_topic(name)
            parts = [TopicPartitionInfo(p, node, [node], [node]) for p in range(meta.partitions)]
            return TopicDescription(meta.name, Uuid(meta.topic_id), meta.internal, parts)

        return {name: _future(describe, name) for name in topics.topic_names}

    def describe_cluster(self, include_authorized_operations: bool = False, **kwargs: Any) -> Future[DescribeClusterResult]:
        node = _node(self._broker)
        return _future(lambda: DescribeClusterResult(node, [node], str(self._broker.cluster_id)))

    def delete_records(self, topic_partition_offsets: list[TopicPartition], **kwargs: Any) -> dict[TopicPartition, Future[DeletedRecords]]:
        """Delete each partition's records before its offset (-1: the high watermark);
        the futures give the new low watermarks (Broker.delete_records)."""
        b = self._broker
        return {
            tp: _future(lambda tp=tp: DeletedRecords(b.delete_records(tp.topic, tp.partition, int(tp.offset))))
            for tp in topic_partition_offsets
        }

    def delete_consumer_groups(self, group_ids: list[str], **kwargs: Any) -> dict[str, Future[Any]]:
        """confluent-kafka 2's name of delete_groups()."""
        return self.delete_groups(group_ids, **kwargs)

    def list_consumer_group_offsets(self, list_consumer_group_offsets_request: list[ConsumerGroupTopicPartitions], require_stable: bool = False, **kwargs: Any) -> dict[str, Future[ConsumerGroupTopicPartitions]]:
        """The committed offsets of one group: of the partitions named, each (OFFSET_INVALID
        where nothing is committed), or of every partition it has an offset for. With
        `require_stable`, a partition whose offset waits on an open transaction fails the
        future with UNSTABLE_OFFSET_COMMIT (retriable)."""
        request = self._one_group(list_consumer_group_offsets_request, "listing")
        b = self._broker

        def fetch() -> ConsumerGroupTopicPartitions:
            named = None if request.topic_partitions is None else [GroupTP(tp.topic, tp.partition) for tp in request.topic_partitions]
            with b._lock:
                got = b.group_coordinator.fetch_offsets(request.group_id, named, require_stable=require_stable)
            out = []
            for gtp, committed in sorted(got.items()):
                if isinstance(committed, KafkaApiError):
                    raise committed
                if named is None and committed.offset < 0:
                    continue
                tp = TopicPartition(gtp.topic, gtp.partition, committed.offset if committed.offset >= 0 else OFFSET_INVALID)
                tp.metadata = committed.metadata or None
                out.append(tp)
            return ConsumerGroupTopicPartitions(request.group_id, out)

        return {request.group_id: _future(fetch)}

    def alter_consumer_group_offsets(self, alter_consumer_group_offsets_request: list[ConsumerGroupTopicPartitions], **kwargs: Any) -> dict[str, Future[ConsumerGroupTopicPartitions]]:
        """Commit offsets for one group that has no active member (Kafka refuses a group
        in use, per partition: the TopicPartition's `error`)."""
        request = self._one_group(alter_consumer_group_offsets_request, "altering")
        if not request.topic_partitions:
            raise ValueError("alter_consumer_group_offsets needs at least one TopicPartition")
        b = self._broker

        def alter() -> ConsumerGroupTopicPartitions:
            offsets = {
                GroupTP(tp.topic, tp.partition): CommitOffset(tp.offset, metadata=tp.metadata or "")
                for tp in request.topic_partitions or ()
            }
            errors = b._group_call(b.group_coordinator.commit_offsets, request.group_id, offsets, now_ms=int(time.time() * 1000))
            out = []
            for gtp, co in offsets.items():
                tp = TopicPartition(gtp.topic, gtp.partition, co.offset)
                err = errors.get(gtp)
                tp.error = None if err is None else err.args[0]
                out.append(tp)
            return ConsumerGroupTopicPartitions(request.group_id, out)

        return {request.group_id: _future(alter)}

    @staticmethod
    def _one_group(requests: list[ConsumerGroupTopicPartitions], doing: str) -> ConsumerGroupTopicPartitions:
        if len(requests) != 1:
            raise ValueError(f"Currently we support {doing} offsets for a single consumer group only")
        return requests[0]

    def list_offsets(self, topic_partition_offsets: dict[TopicPartition, OffsetSpec], isolation_level: Any = None, **kwargs: Any) -> dict[TopicPartition, Future[ListOffsetsResultInfo]]:
        """ListOffsets per partition: OffsetSpec.earliest(), latest() (the last stable offset
        under IsolationLevel.READ_COMMITTED), max_timestamp() or for_timestamp(ms)."""
        b = self._broker
        read_committed = isolation_level is not None and "COMMITTED" in str(isolation_level).upper() and "UNCOMMITTED" not in str(isolation_level).upper()

        def one(tp: TopicPartition, spec: OffsetSpec) -> ListOffsetsResultInfo:
            count = b._partition_count_or_none(tp.topic)
            if count is None or not 0 <= tp.partition < count:
                raise NoEntryError(f"{tp.topic}-{tp.partition}: no such partition")
            plog = b.get_log(tp.topic, tp.partition)
            offset, timestamp = plog.list_offset(spec._value, read_committed)
            return ListOffsetsResultInfo(offset, timestamp, plog.partition_leader_epoch if offset >= 0 else None)

        return {tp: _future(one, tp, spec) for tp, spec in topic_partition_offsets.items()}

    def group_lag(self, group_id: str) -> Any:
        """Per-partition lag of a group (committed offset vs log end)."""
        b = self._broker
        with b._lock:
            return b.group_coordinator.group_lag(group_id, lambda tp: b.get_log(tp.topic, tp.partition).high_watermark)
