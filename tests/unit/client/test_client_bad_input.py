"""Bad input to the embedded faces: clear exceptions, Kafka error names, nothing written.

Goal: unknown topics (auto.create.topics.enable=false), invalid topic names, partitions out
of range, oversize records, wrong argument types and calls on closed producers, consumers and
brokers each raise a specific exception (a KafkaApiError subclass with Kafka's code where
Kafka has one), and leave no trace: no topic created, no record appended, nothing buffered.
Method: each bad call is followed by a flush and a check of the log end offsets, the topic
list and the producer's queue length.
"""

from __future__ import annotations

import numpy as np
import pytest
from client_helpers import end_offsets

from headwater.client import TopicPartition
from headwater.errors import (
    InvalidTopicError,
    KafkaApiError,
    MessageTooLargeError,
    UnknownTopicOrPartitionError,
)


def assert_nothing_written(broker, producer, topic="t"):
    producer.flush()
    assert len(producer) == 0
    assert sum(end_offsets(broker, topic)) == 0


# ----------------------------------------------------------------- unknown topic / partition


def test_unknown_topic_without_auto_create(make_broker) -> None:
    broker = make_broker({"auto.create.topics.enable": False})
    p = broker.producer()
    with pytest.raises(UnknownTopicOrPartitionError) as info:
        p.produce("missing", b"v")
    assert info.value.code == 3
    with pytest.raises(UnknownTopicOrPartitionError):
        p.produce_batch("missing", [b"v"])
    c = broker.consumer({"group.id": "g"})
    with pytest.raises(UnknownTopicOrPartitionError):
        c.assign([TopicPartition("missing", 0)])
    p.flush()
    assert broker.list_topics() == {}


def test_unknown_topic_is_auto_created_by_default(broker) -> None:
    p = broker.producer()
    p.produce("fresh", b"v")
    p.flush()
    assert broker.describe_topic("fresh").partitions == 1
    assert end_offsets(broker, "fresh") == [1]


@pytest.mark.parametrize("name", ["bad name", "a/b", "", ".", "..", "x" * 250, "ünï"])
def test_invalid_topic_name(broker, name) -> None:
    p = broker.producer()
    with pytest.raises(InvalidTopicError) as info:
        p.produce(name, b"v")
    assert info.value.code == 17
    with pytest.raises(InvalidTopicError):
        broker.create_topic(name, 1)
    p.flush()
    assert broker.list_topics() == {}


def test_partition_out_of_range(broker) -> None:
    broker.create_topic("t", 2)
    p = broker.producer()
    with pytest.raises(UnknownTopicOrPartitionError):
        p.produce("t", b"v", partition=2)
    with pytest.raises(UnknownTopicOrPartitionError):
        p.produce_batch("t", [b"v"], partition=7)
    assert_nothing_written(broker, p)
    c = broker.consumer()
    with pytest.raises(UnknownTopicOrPartitionError):
        c.assign([TopicPartition("t", 2)])
    with pytest.raises(UnknownTopicOrPartitionError):
        c.get_watermark_offsets(TopicPartition("t", 9))


# ----------------------------------------------------------------- oversize


def test_oversize_record_is_refused_at_produce(broker) -> None:
    broker.create_topic("t", 1)
    p = broker.producer({"message.max.bytes": 1000})
    with pytest.raises(MessageTooLargeError) as info:
        p.produce("t", b"x" * 1001)
    assert info.value.code == 10
    with pytest.raises(MessageTooLargeError):
        p.produce("t", b"x" * 600, key=b"k" * 600)  # key + value
    p.produce("t", b"x" * 1000)  # exactly the limit is fine
    p.flush()
    assert end_offsets(broker, "t") == [1]


def test_oversize_batch_record_against_topic_max_message_bytes(broker) -> None:
    broker.create_topic("t", 1, {"max.message.bytes": 2000})
    p = broker.producer()
    with pytest.raises(MessageTooLargeError):
        p.produce_batch("t", [b"small", b"x" * 5000])
    assert_nothing_written(broker, p)


# ----------------------------------------------------------------- wrong types


@pytest.mark.parametrize("value", [42, 3.5, object(), ["list"]])
def test_value_of_wrong_type(broker, value) -> None:
    broker.create_topic("t", 1)
    p = broker.producer()
    with pytest.raises(TypeError):
        p.produce("t", value)
    with pytest.raises(TypeError):
        p.produce("t", b"v", key=value)
    assert_nothing_written(broker, p)


def test_str_value_and_key_are_utf8(broker) -> None:
    broker.create_topic("t", 1)
    p = broker.producer()
    p.produce("t", "välue", key="kéy")
    p.flush()
    with broker.get_log("t", 0).read(0) as result:
        (rec,) = list(result)
        assert (bytes(rec.key), bytes(rec.value)) == ("kéy".encode(), "välue".encode())


def test_produce_batch_wrong_types(broker) -> None:
    broker.create_topic("t", 1)
    p = broker.producer()
    with pytest.raises(TypeError):
        p.produce_batch("t", [1, 2, 3])
    with pytest.raises(TypeError):
        p.produce_batch("t", np.arange(3), keys=[b"a", b"b", b"c"])
    with pytest.raises(ValueError):
        p.produce_batch("t", [b"a", b"b"], keys=[b"k"])
    with pytest.raises(ValueError):
        p.produce_batch("t", [])
    assert_nothing_written(broker, p)


@pytest.mark.parametrize("bad", [{"headers": [(1, b"x")]}, {"headers": 5}, {"timestamp": "soon"}])
def test_bad_headers_or_timestamp_write_nothing(broker, bad) -> None:
    broker.create_topic("t", 1)
    p = broker.producer()
    with pytest.raises((TypeError, ValueError)):
        p.produce("t", b"v", **bad)
    assert_nothing_written(broker, p)


def test_subscribe_takes_a_list_not_a_str(broker) -> None:
    broker.create_topic("t", 1)
    c = broker.consumer({"group.id": "g"})
    with pytest.raises(TypeError):
        c.subscribe("t")
    assert c.assignment() == []
    # confluent-kafka's bounds (checked against it): 0 returns no message, outside 0..1M raises.
    assert c.consume(0, 0.01) == []
    for n in (-1, 1_000_001):
        with pytest.raises(ValueError, match="between 0 and 1000000"):
            c.consume(n)


def test_unknown_producer_config_is_a_config_error(broker) -> None:
    from headwater.errors import ConfigError

    with pytest.raises(ConfigError):
        broker.producer({"linger.mss": 5})
    with pytest.raises(ConfigError):
        broker.producer({"partitioner": "nonsense"})
    with pytest.raises(ConfigError):
        broker.consumer({"partition.assignment.strategy": "nonsense"})


# ----------------------------------------------------------------- closed objects


def test_closed_producer_refuses_produce(broker) -> None:
    broker.create_topic("t", 1)
    p = broker.producer()
    p.produce("t", b"before")
    p.close()
    assert end_offsets(broker, "t") == [1]  # close flushed
    with pytest.raises(RuntimeError, match="closed"):
        p.produce("t", b"after")
    with pytest.raises(RuntimeError, match="closed"):
        p.produce_batch("t", [b"after"])
    p.close()  # idempotent
    assert end_offsets(broker, "t") == [1]


CONSUMER_CALLS = {
    "poll": lambda c: c.poll(0),
    "consume": lambda c: c.consume(1, 0),
    "consume_batch": lambda c: c.consume_batch(),
    "subscribe": lambda c: c.subscribe(["t"]),
    "assign": lambda c: c.assign([TopicPartition("t", 0)]),
    "commit": lambda c: c.commit(offsets=[TopicPartition("t", 0, 1)]),
}
CONSUMER_CALLS_UNCHECKED = {
    "committed": lambda c: c.committed([TopicPartition("t", 0)]),
    "position": lambda c: c.position([TopicPartition("t", 0)]),
    "get_watermark_offsets": lambda c: c.get_watermark_offsets(TopicPartition("t", 0)),
    "pause": lambda c: c.pause([TopicPartition("t", 0)]),
}


@pytest.mark.parametrize("call", sorted(CONSUMER_CALLS))
def test_closed_consumer_raises(broker, call) -> None:
    broker.create_topic("t", 1)
    c = broker.consumer({"group.id": "g"})
    c.close()
    with pytest.raises(RuntimeError, match="closed"):
        CONSUMER_CALLS[call](c)
    c.close()  # idempotent


@pytest.mark.parametrize("call", sorted(CONSUMER_CALLS_UNCHECKED))
def test_closed_consumer_raises_on_queries(broker, call) -> None:
    broker.create_topic("t", 1)
    c = broker.consumer({"group.id": "g"})
    c.close()
    with pytest.raises(RuntimeError, match="closed"):
        CONSUMER_CALLS_UNCHECKED[call](c)


def test_closed_broker_refuses_new_faces_and_closes_old_ones(make_broker) -> None:
    broker = make_broker()
    broker.create_topic("t", 1)
    p = broker.producer({"linger.ms": 10_000})
    c = broker.consumer()
    p.produce("t", b"buffered")
    broker.close()
    assert broker.closed
    with pytest.raises(RuntimeError, match="closed"):
        p.produce("t", b"after")
    with pytest.raises(RuntimeError, match="closed"):
        c.poll(0)
    with pytest.raises(RuntimeError, match="closed"):
        broker.producer()
    with pytest.raises(RuntimeError, match="closed"):
        broker.consumer()
    with pytest.raises(RuntimeError, match="closed"):
        broker.create_topic("u", 1)
    broker.close()  # idempotent
    reopened = make_broker()
    assert end_offsets(reopened, "t") == [1]  # the buffered record was flushed by close()


def test_kafka_api_errors_carry_codes() -> None:
    for exc, code in ((UnknownTopicOrPartitionError, 3), (InvalidTopicError, 17), (MessageTooLargeError, 10)):
        assert issubclass(exc, KafkaApiError) and exc.code == code


def test_produce_batch_timestamp_is_stamped_on_every_path(broker) -> None:
    """produce_batch(timestamp=T): lists, numpy arrays, keyed (several partitions), fixed."""
    import numpy as np

    broker.create_topic("ts", partitions=3)
    p = broker.producer()
    T = 1_600_000_000_123
    p.produce_batch("ts", [b"a", b"b"], timestamp=T, partition=0)
    p.produce_batch("ts", np.array([b"c", b"d"], dtype="S1"), timestamp=T + 1, partition=1)
    p.produce_batch("ts", [b"e", b"f", b"g"], keys=[b"k1", b"k2", b"k3"], timestamp=T + 2)
    p.produce_batch("ts", [b"h"], keys=[b"k"], partition=2, timestamp=T + 3)
    p.flush()
    stamps = {}
    for part in range(3):
        plog = broker.get_log("ts", part)
        with plog.read(0, 1 << 20) as result:
            for rec in result:
                stamps[rec.value] = rec.timestamp
    assert stamps == {b"a": T, b"b": T, b"c": T + 1, b"d": T + 1, b"e": T + 2, b"f": T + 2, b"g": T + 2, b"h": T + 3}


@pytest.mark.parametrize("off", [False, "false", "FALSE", 0])
def test_boolean_settings_given_as_strings_mean_what_they_say(broker, off) -> None:
    """librdkafka reads "false" as false; bool("false") is True, which turned auto-commit on."""
    broker.create_topic("t", 1)
    p = broker.producer({"enable.idempotence": off})
    assert p.producer_id == -1  # not idempotent
    p.produce("t", b"v", partition=0)
    p.flush()
    c = broker.consumer({"group.id": "g", "auto.offset.reset": "earliest", "enable.auto.commit": off})
    c.assign([TopicPartition("t", 0)])
    assert c.poll(5) is not None
    c.close()  # auto-commit would commit the position here
    check = broker.consumer({"group.id": "g"})
    assert check.committed([TopicPartition("t", 0)])[0].offset == -1001
    check.close()


@pytest.mark.parametrize("name", ["enable.auto.commit", "enable.auto.offset.store", "enable.partition.eof"])
def test_boolean_setting_with_a_non_boolean_value_is_a_config_error(broker, name) -> None:
    from headwater.errors import ConfigError

    with pytest.raises(ConfigError, match=name):
        broker.consumer({"group.id": "g", name: "yes"})
    with pytest.raises(ConfigError, match="enable.idempotence"):
        broker.producer({"enable.idempotence": "maybe"})
