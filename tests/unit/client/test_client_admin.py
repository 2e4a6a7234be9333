"""Embedded AdminClient: topics, partitions, configs and groups, confluent-kafka shaped.

Goal: `broker.admin()` creates, deletes, lists and describes topics, grows partitions and
lists/describes/deletes groups, with per-item futures that hold a Kafka-named exception
on failure, and nothing changed by a failed call.
Method: each call's futures are resolved and the broker's state is checked afterwards
(list_topics, the logs, the group coordinator), including through a second admin call.
"""

from __future__ import annotations

import time

import pytest
from client_helpers import FAST_CONSUMER, end_offsets, poll_until, wait_assigned

from headwater.client import ConfigResource, NewPartitions, NewTopic, TopicPartition
from headwater.coordinator.group.errors import GroupIdNotFoundError, NonEmptyGroupError
from headwater.errors import (
    InvalidConfigurationError,
    InvalidPartitionsError,
    InvalidTopicError,
    TopicAlreadyExistsError,
    UnknownTopicOrPartitionError,
)


def user_topics(admin) -> list[str]:
    """The topics list_topics() names, internal ones left out."""
    return sorted(t for t in admin.list_topics().topics if not t.startswith("__"))


def test_list_topics_of_one_topic_and_of_an_unknown_one(broker) -> None:
    broker.create_topic("one", 2)
    md = broker.admin().list_topics("one")
    assert list(md.topics) == ["one"] and sorted(md.topics["one"].partitions) == [0, 1]
    assert md.brokers == {1: md.brokers[1]} and md.brokers[1].port == -1  # no address until served
    unknown = broker.consumer({"group.id": None}).list_topics("nope").topics["nope"]
    assert unknown.partitions == {} and unknown.error.name() == "UNKNOWN_TOPIC_OR_PART"
    assert "nope" not in broker.list_topics()
    # A producer's request creates it (auto.create.topics.enable, as librdkafka's Metadata).
    assert sorted(broker.producer().list_topics("nope").topics["nope"].partitions) == [0]
    assert "nope" in broker.list_topics()
    server = broker.serve("127.0.0.1", 0)
    try:
        me = broker.consumer({"group.id": None}).list_topics().brokers[1]
        assert f"{me.host}:{me.port}" == server.bootstrap_servers
    finally:
        server.close()


def test_create_topics_returns_futures_and_creates_logs(broker) -> None:
    admin = broker.admin()
    futures = admin.create_topics([
        NewTopic("a", num_partitions=3),
        NewTopic("b", 1, config={"retention.ms": 3600000, "cleanup.policy": "compact"}),
        NewTopic("c"),  # broker default num.partitions
    ])
    assert sorted(futures) == ["a", "b", "c"]
    assert [futures[t].result() for t in "abc"] == [None, None, None]
    md = admin.list_topics()  # confluent-kafka's ClusterMetadata, internal topics included
    assert {t: sorted(md.topics[t].partitions) for t in "abc"} == {"a": [0, 1, 2], "b": [0], "c": [0]}
    assert all(p.leader == 1 and p.replicas == p.isrs == [1] and p.error is None for p in md.topics["a"].partitions.values())
    assert "__consumer_offsets" in md.topics and md.cluster_id == broker.cluster_id
    topics = broker.list_topics()  # the store's view: ids and config overrides, no internal topics
    assert "__consumer_offsets" not in topics
    assert "__consumer_offsets" in broker.list_topics(include_internal=True)
    assert dict(topics["b"].config) == {"cleanup.policy": "compact", "retention.ms": 3600000}
    assert end_offsets(broker, "a") == [0, 0, 0]
    assert len({topics[t].topic_id for t in "abc"}) == 3


def test_create_topics_errors_per_topic_and_nothing_created(broker) -> None:
    admin = broker.admin()
    broker.create_topic("exists", 1)
    futures = admin.create_topics([
        NewTopic("exists", 2),
        NewTopic("bad name!", 1),
        NewTopic("", 1),
        NewTopic("x" * 250, 1),
        NewTopic("badcfg", 1, config={"no.such.config": 1}),
        NewTopic("__consumer_offsets", 1),
        NewTopic("good", 2),
    ])
    expected = {
        "exists": TopicAlreadyExistsError,
        "bad name!": InvalidTopicError,
        "": InvalidTopicError,
        "x" * 250: InvalidTopicError,
        "badcfg": InvalidConfigurationError,
        "__consumer_offsets": InvalidTopicError,
    }
    for name, exc in expected.items():
        with pytest.raises(exc):
            futures[name].result()
    assert futures["good"].result() is None
    assert user_topics(admin) == ["exists", "good"]
    assert broker.describe_topic("exists").partitions == 1


@pytest.mark.parametrize("count", [0, -5])
def test_create_topics_with_invalid_partition_count(broker, count) -> None:
    fut = broker.admin().create_topics([NewTopic("bad", count)])["bad"]
    with pytest.raises(InvalidPartitionsError):
        fut.result()
    assert user_topics(broker.admin()) == []


def test_create_topics_validate_only_changes_nothing(broker) -> None:
    admin = broker.admin()
    assert admin.create_topics([NewTopic("v", 2)], validate_only=True)["v"].result() is None
    assert user_topics(admin) == []
    with pytest.raises(InvalidTopicError):
        admin.create_topics([NewTopic("bad/name", 2)], validate_only=True)["bad/name"].result()


def test_delete_topics(broker) -> None:
    admin = broker.admin()
    broker.create_topic("gone", 2)
    broker.create_topic("kept", 1)
    p = broker.producer()
    p.produce("gone", b"x", partition=1)
    p.flush()
    futures = admin.delete_topics(["gone", "never"])
    assert futures["gone"].result() is None
    with pytest.raises(UnknownTopicOrPartitionError):
        futures["never"].result()
    assert user_topics(admin) == ["kept"]
    with pytest.raises(InvalidTopicError):
        admin.delete_topics(["__consumer_offsets"])["__consumer_offsets"].result()
    # Created again: a new id and empty logs.
    old_id = broker.describe_topic("kept").topic_id
    admin.create_topics([NewTopic("gone", 2)])["gone"].result()
    assert end_offsets(broker, "gone") == [0, 0]
    assert broker.describe_topic("kept").topic_id == old_id


def test_list_topics_single_topic(broker) -> None:
    broker.create_topic("a", 2)
    broker.create_topic("b", 1)
    admin = broker.admin()
    assert list(admin.list_topics("a").topics) == ["a"]
    assert list(admin.list_topics("nope").topics) == ["nope"]  # with its error, no partition


def test_create_partitions(broker) -> None:
    admin = broker.admin()
    broker.create_topic("t", 2)
    fut = admin.create_partitions([NewPartitions("t", 5)])
    assert fut["t"].result() is None
    assert broker.describe_topic("t").partitions == 5
    assert end_offsets(broker, "t") == [0] * 5
    for bad in (5, 3):
        with pytest.raises(InvalidPartitionsError):
            admin.create_partitions([NewPartitions("t", bad)])["t"].result()
    with pytest.raises(UnknownTopicOrPartitionError):
        admin.create_partitions([NewPartitions("nope", 3)])["nope"].result()
    assert broker.describe_topic("t").partitions == 5
    p = broker.producer()
    p.produce("t", b"x", partition=4)
    p.flush()
    assert end_offsets(broker, "t") == [0, 0, 0, 0, 1]


def test_existing_producer_sees_new_partitions(broker) -> None:
    broker.create_topic("t", 2)
    p = broker.producer()
    p.produce("t", b"x", partition=0)
    broker.admin().create_partitions([NewPartitions("t", 4)])["t"].result()
    p.produce("t", b"y", partition=3)
    p.flush()
    assert end_offsets(broker, "t") == [1, 0, 0, 1]


def test_describe_topic_config_through_broker(broker) -> None:
    broker.create_topic("t", 1, {"retention.ms": 1000})
    cfg = broker.topic_config("t")
    assert cfg["retention.ms"] == 1000
    assert cfg["cleanup.policy"] == "delete"


def test_describe_and_alter_configs(broker) -> None:
    broker.create_topic("t", 1, {"retention.ms": 1000})
    admin = broker.admin()
    res = ConfigResource("topic", "t")
    cfg = admin.describe_configs([res])[res].result()
    assert cfg["retention.ms"] == 1000
    res2 = ConfigResource("topic", "t", set_config={"retention.ms": 2000})
    admin.alter_configs([res2])[res2].result()
    assert broker.topic_config("t")["retention.ms"] == 2000


def test_list_describe_and_delete_groups(broker) -> None:
    broker.create_topic("t", 2)
    p = broker.producer()
    for i in range(6):
        p.produce("t", b"%d" % i, partition=i % 2)
    p.flush()
    admin = broker.admin()
    c = broker.consumer({"group.id": "g", **FAST_CONSUMER, "enable.auto.commit": False})
    c.subscribe(["t"])
    msgs = wait_assigned(c, n=2)
    msgs += poll_until(c, 6 - len(msgs))
    c.commit(asynchronous=False)
    listed = admin.list_groups()
    assert [(g.group_id, g.state, g.protocol_type) for g in listed] == [("g", "Stable", "consumer")]
    d = admin.describe_groups(["g", "unknown"])
    g = d["g"].result()
    assert (g.state, g.protocol_type, g.protocol_data) == ("Stable", "consumer", "range")
    assert [m.member_id for m in g.members] == [c.memberid()]
    assert d["unknown"].result().state == "Dead"
    lag = admin.group_lag("g")
    assert lag is not None
    with pytest.raises(NonEmptyGroupError):
        admin.delete_groups(["g"])["g"].result()
    assert len(msgs) == 6
    c.close()
    assert admin.list_groups()[0].state == "Empty"
    futures = admin.delete_groups(["g", "never"])
    assert futures["g"].result() is None
    with pytest.raises(GroupIdNotFoundError):
        futures["never"].result()
    assert admin.list_groups() == []
    # The committed offsets went with the group: a new member starts from auto.offset.reset.
    c2 = broker.consumer({"group.id": "g", **FAST_CONSUMER})
    c2.assign([TopicPartition("t", 0)])
    assert [m.offset() for m in poll_until(c2, 3)] == [0, 1, 2]


def test_admin_futures_are_complete_at_once(broker) -> None:
    t0 = time.monotonic()
    futs = broker.admin().create_topics([NewTopic("t", 1)])
    assert futs["t"].done()
    assert time.monotonic() - t0 < 1


def test_list_offsets_latest_under_read_committed_is_the_last_stable_offset(broker) -> None:
    """OffsetSpec.latest() is the high watermark, or with isolation_level READ_COMMITTED the last
    stable offset: an open transaction's records are not "latest" for such a reader."""
    from headwater.client.admin import OffsetSpec

    broker.create_topic("t", 1)
    plain = broker.producer()
    plain.produce("t", b"before", partition=0)
    plain.flush()
    txn = broker.producer({"transactional.id": "lo"})
    txn.init_transactions()
    txn.begin_transaction()
    txn.produce("t", b"open", partition=0)
    txn.flush()
    admin = broker.admin()
    tp = TopicPartition("t", 0)

    def latest(**kwargs) -> int:
        return admin.list_offsets({tp: OffsetSpec.latest()}, **kwargs)[tp].result().offset

    assert latest() == 2 and latest(isolation_level="read_uncommitted") == 2
    assert latest(isolation_level="READ_COMMITTED") == 1
    txn.commit_transaction()
    assert latest(isolation_level="READ_COMMITTED") == latest() == 3  # the record and its marker
