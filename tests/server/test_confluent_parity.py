"""The embedded Producer and Consumer answer as confluent-kafka does, call by call.

Goal: code written for confluent-kafka runs unchanged on the embedded face (issue 3 parts 2
and 4): the same return values, the same exceptions (`except KafkaException as e:` then
`e.args[0].code()`/`.name()`), the same argument bounds, for one scenario of API calls: the
producer's counters and value/header types, and the consumer's positions, commits, seeks,
pauses, watermarks, offsets_for_times, consume() bounds and calls after close.

Method: the oracle is confluent-kafka itself (librdkafka), connected over 127.0.0.1 to the same
broker served on the wire; the embedded face runs the same scenario through
`broker.producer()`/`broker.consumer()`. Each face has a topic of its own (two partitions) and a
group of its own. Every step records ("ok", value) or ("raise", exception kind, error name),
normalised only where the two faces cannot agree by construction (the topic's name, the
records' CreateTime); the two lists of steps must be equal. Most steps are decided in the
client (librdkafka's bounds and local error codes), so no broker behaviour is compared with
itself.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from headwater.client.broker import Broker

confluent_kafka = pytest.importorskip("confluent_kafka")

Step = tuple[str, Any]

# Where the embedded face answers otherwise, on purpose, and what each face says. position()
# before the application got a record of the partition: librdkafka reports OFFSET_INVALID
# (-1001) until then (and again after a seek), the embedded Consumer the offset it will fetch
# next (here: partition 1, assigned at OFFSET_BEGINNING, resolves to 0); AIOConsumer.position()
# (aiokafka's fetch position) and send_offsets_to_transaction(position(...)) build on that.
KNOWN_DIFFERENCES = {
    "position() before a fetch": (("ok", [(0, -1001), (1, -1001)]), ("ok", [(0, -1001), (1, 0)])),
}


def _outcome(fn: Callable[[], Any]) -> Step:
    try:
        return ("ok", fn())
    except Exception as exc:  # noqa: BLE001 - the exception is the result compared
        err = exc.args[0] if exc.args else None
        if hasattr(err, "name") and callable(err.name):
            # KafkaException (either library's): its KafkaError's librdkafka name.
            return ("raise", "KafkaException", err.name())
        for kind in (TypeError, ValueError, RuntimeError):
            if isinstance(exc, kind):
                return ("raise", kind.__name__)
        return ("raise", type(exc).__name__, str(exc))


def scenario(topic: str, group: str, make_producer: Callable[[dict[str, Any]], Any], make_consumer: Callable[[dict[str, Any]], Any], tp: Callable[..., Any], cluster_id: str) -> list[tuple[str, Step]]:
    """The calls, in order, and what each returned or raised."""
    steps: list[tuple[str, Step]] = []
    producer = make_producer({"linger.ms": 0})

    def step(name: str, fn: Callable[[], Any]) -> None:
        steps.append((name, _outcome(fn)))

    def offsets(tps: list[Any]) -> list[tuple[int, int]]:
        return [(x.partition, x.offset) for x in tps]

    step("len() of a new producer", lambda: len(producer))
    step("produce a str value", lambda: producer.produce(topic, "hello", partition=0))
    step("produce an int value", lambda: producer.produce(topic, 5, partition=0))
    step("produce dict headers", lambda: producer.produce(topic, b"v", partition=0, headers={"a": b"1", "b": None}))
    step("produce list headers", lambda: producer.produce(topic, b"v", partition=0, headers=[("a", b"1"), ("a", "2")]))
    step("produce a str key", lambda: producer.produce(topic, b"k", key="key", partition=1))
    step("produce with a timestamp", lambda: producer.produce(topic, b"t", partition=1, timestamp=1_234_567))
    reports: list[Any] = []

    def delivered(err: Any, msg: Any) -> None:
        reports.append((None if err is None else err.name(), msg.topic() == topic, msg.partition(), msg.offset(), msg.value()))

    step("produce with on_delivery", lambda: producer.produce(topic, b"d", partition=1, on_delivery=delivered))
    step("flush", lambda: producer.flush(10))
    step("the delivery report", lambda: reports)
    step("len() after flush", lambda: len(producer))
    step("poll(0)", lambda: producer.poll(0))
    step("produce to a partition the topic lacks", lambda: producer.produce(topic, b"v", partition=9))
    step("produce a value over message.max.bytes", lambda: producer.produce(topic, b"x" * 2_000_000, partition=0))

    def shape(md: Any) -> Any:
        """What list_topics() says of this face's topics and of the broker."""
        own = {n: t for n, t in md.topics.items() if n.startswith(topic) or n.startswith("__")}
        return (
            md.cluster_id is not None, md.controller_id, sorted((b.id, b.host, b.port) for b in md.brokers.values()),
            {n.replace(topic, "<topic>"): (
                {p: (m.id, m.leader, m.replicas, m.isrs, m.error) for p, m in t.partitions.items()},
                None if t.error is None else t.error.name(),
            ) for n, t in own.items()},
        )

    step("Producer.cluster_id() is the broker's", lambda: producer.cluster_id() == cluster_id)
    step("Producer.list_topics()", lambda: shape(producer.list_topics(timeout=10)))
    step("Producer.list_topics(a new topic): created", lambda: shape(producer.list_topics(topic + "-auto", timeout=10)))

    lingering = make_producer({"linger.ms": 60_000})
    purged: list[Any] = []
    step("produce, lingering", lambda: lingering.produce(topic, b"p", partition=0, on_delivery=lambda err, msg: purged.append((err.name(), msg.value()))))
    step("purge()", lambda: lingering.purge())
    step("poll(0) after purge", lambda: lingering.poll(0))
    step("the purged record's report", lambda: purged)
    step("flush() after purge", lambda: lingering.flush(5))

    # Settings as strings, as librdkafka reads them ("false" is not true).
    c = make_consumer({"group.id": group, "auto.offset.reset": "earliest", "enable.auto.commit": "false"})
    step("Consumer.cluster_id() is the broker's", lambda: c.cluster_id() == cluster_id)
    step("Consumer.list_topics(a missing topic)", lambda: shape(c.list_topics(topic + "-absent", timeout=10)))
    parts = [tp(topic, 0), tp(topic, 1)]
    step("position() of unassigned partitions", lambda: offsets(c.position(parts)))
    step("committed() before any commit", lambda: offsets(c.committed(parts, timeout=10)))
    step("commit() with nothing consumed", lambda: c.commit(asynchronous=False))
    step("assign", lambda: c.assign([tp(topic, 0), tp(topic, 1, confluent_kafka.OFFSET_BEGINNING)]))
    step("assignment()", lambda: offsets(c.assignment()))
    step("position() before a fetch", lambda: offsets(c.position(parts)))

    got: list[Any] = []

    def consume_all() -> int:
        deadline = time.monotonic() + 15
        while len(got) < 6 and time.monotonic() < deadline:
            m = c.poll(0.2)
            if m is not None and m.error() is None:
                got.append(m)
        return len(got)

    step("poll() until the 6 records", consume_all)
    step(
        "the records' fields",
        lambda: sorted(
            (m.partition(), m.offset(), m.key(), m.value(), m.headers(), m.timestamp()[0],
             m.timestamp()[1] if m.timestamp()[1] == 1_234_567 else "now", len(m))
            for m in got
        ),
    )
    step("position() after", lambda: offsets(c.position(parts)))
    step("commit(offsets=...)", lambda: offsets(c.commit(offsets=[tp(topic, 1, 2)], asynchronous=False)))
    step("committed()", lambda: offsets(c.committed(parts, timeout=10)))
    step("get_watermark_offsets()", lambda: c.get_watermark_offsets(tp(topic, 0), timeout=10))
    future_ms = int(time.time() * 1000) + 3_600_000
    step("offsets_for_times() past the end", lambda: offsets(c.offsets_for_times([tp(topic, 0, future_ms)], timeout=10)))
    step("offsets_for_times(0)", lambda: offsets(c.offsets_for_times([tp(topic, 1, 0)], timeout=10)))
    step("store_offsets() with enable.auto.offset.store on", lambda: c.store_offsets(message=got[0]))
    step("seek() of an unassigned partition", lambda: c.seek(tp(topic, 7, 0)))
    step("seek()", lambda: c.seek(tp(topic, 0, 1)))
    step("pause()", lambda: c.pause([tp(topic, 0)]))

    def poll_one(timeout: float) -> Any:
        m = c.poll(timeout)
        return None if m is None else (m.partition(), m.offset())

    step("poll() with the partition paused", lambda: poll_one(0.5))
    step("resume()", lambda: c.resume([tp(topic, 0)]))
    step("poll() after resume", lambda: poll_one(10))
    step("consume(0)", lambda: c.consume(0, 0.1))
    step("consume(-1)", lambda: c.consume(-1, 0.1))
    step("consume(1000001)", lambda: c.consume(1_000_001, 0.1))
    step("incremental_assign() of an assigned partition", lambda: c.incremental_assign([tp(topic, 0, 0)]))
    step("incremental_unassign()", lambda: c.incremental_unassign([tp(topic, 0)]))
    step("assignment() after incremental_unassign", lambda: offsets(c.assignment()))
    step("incremental_assign() at an offset", lambda: c.incremental_assign([tp(topic, 0, 2)]))
    step("poll() after incremental_assign", lambda: poll_one(10))
    step("unassign", lambda: c.unassign())
    step("assignment() after unassign", lambda: c.assignment())
    step("close", lambda: c.close())
    step("poll() after close", lambda: c.poll(0))
    step("close again", lambda: c.close())

    # At-least-once with enable.auto.offset.store=false: only stored offsets are committed.
    s = make_consumer({"group.id": group + "-store", "auto.offset.reset": "earliest", "enable.auto.commit": False, "enable.auto.offset.store": False})
    s.assign([tp(topic, 0, 0)])
    first = None
    deadline = time.monotonic() + 10
    while first is None and time.monotonic() < deadline:
        first = s.poll(0.2)
    step("a record, with enable.auto.offset.store off", lambda: (first.partition(), first.offset()))
    step("commit() with nothing stored", lambda: s.commit(asynchronous=False))
    step("store_offsets(message)", lambda: s.store_offsets(message=first))
    step("commit() of the stored offset", lambda: offsets(s.commit(asynchronous=False)))
    step("store_offsets(offsets)", lambda: s.store_offsets(offsets=[tp(topic, 0, 2)]))
    step("store_offsets() of an unassigned partition", lambda: s.store_offsets(offsets=[tp(topic, 1, 1)]))
    step("store_offsets() without arguments", lambda: s.store_offsets())
    step("commit() of the offsets stored", lambda: offsets(s.commit(asynchronous=False)))
    step("committed() after", lambda: offsets(s.committed([tp(topic, 0)], timeout=10)))
    s.close()
    return steps


def test_embedded_client_answers_as_confluent_kafka(broker: Broker, bootstrap: str) -> None:
    import headwater

    for topic in ("wire", "embedded"):
        broker.create_topic(topic, 2)
    ck_producers: list[Any] = []

    def ck_producer(cfg: dict[str, Any]) -> Any:
        ck_producers.append(confluent_kafka.Producer({"bootstrap.servers": bootstrap, **cfg}))
        return ck_producers[-1]

    oracle = scenario(
        "wire", "g-wire", ck_producer,
        lambda cfg: confluent_kafka.Consumer({"bootstrap.servers": bootstrap, **cfg}),
        confluent_kafka.TopicPartition, broker.cluster_id,
    )
    for p in ck_producers:
        p.flush(10)
    del ck_producers[:], p  # librdkafka's threads stop with them, before the server does
    ours = scenario("embedded", "g-embedded", broker.producer, broker.consumer, headwater.TopicPartition, broker.cluster_id)

    assert [name for name, _ in ours] == [name for name, _ in oracle]
    diffs = {name: (theirs, mine) for (name, theirs), (_, mine) in zip(oracle, ours, strict=True) if theirs != mine}
    assert diffs == KNOWN_DIFFERENCES, "\n".join(f"{n}: confluent-kafka {t!r}, embedded {m!r}" for n, (t, m) in diffs.items())
    # The oracle's answers are the interesting ones; spot-check that the scenario exercised them.
    answers = dict(oracle)
    assert answers["commit() with nothing consumed"] == ("raise", "KafkaException", "_NO_OFFSET")
    assert answers["seek() of an unassigned partition"] == ("raise", "KafkaException", "_STATE")
    assert answers["poll() until the 6 records"] == ("ok", 6)
    assert answers["produce to a partition the topic lacks"] == ("raise", "KafkaException", "_UNKNOWN_PARTITION")
    assert answers["the delivery report"] == ("ok", [(None, True, 1, 2, b"d")])
    assert answers["consume(0)"] == ("ok", [])
    assert answers["the purged record's report"] == ("ok", [("_PURGE_QUEUE", b"p")])
    assert answers["commit() of the stored offset"] == ("ok", [(0, 1)])
    assert answers["commit() of the offsets stored"] == ("ok", [(0, 2)])
    assert answers["store_offsets() with enable.auto.offset.store on"] == ("raise", "KafkaException", "_INVALID_ARG")
    assert answers["incremental_assign() of an assigned partition"] == ("raise", "KafkaException", "_CONFLICT")
    assert answers["Consumer.cluster_id() is the broker's"] == ("ok", True)


# Where the embedded AdminClient answers otherwise, on purpose: a listed group's type is
# CLASSIC (every headwater group is), where librdkafka, over a ListGroups that carries no type,
# says UNKNOWN; an embedded member has no network address, so its host is "embedded".
KNOWN_ADMIN_DIFFERENCES = {
    "list_consumer_groups(): the groups' types": (("ok", ["UNKNOWN"]), ("ok", ["CLASSIC"])),
    "describe_consumer_groups(): the member's host": (("ok", ["/127.0.0.1"]), ("ok", ["embedded"])),
}


def admin_scenario(topic: str, group: str, admin: Any, tp: Callable[..., Any], groups: Any, spec: Any, new_topic: Callable[..., Any], cluster_id: str, make_consumer: Callable[[dict[str, Any]], Any], states: Any, topics: Any, topic_id: str) -> list[tuple[str, Step]]:
    """The AdminClient calls a lag monitor or an offsets tool makes, and what each answered
    (futures resolved: their result, or the error they fail with)."""
    steps: list[tuple[str, Step]] = []

    def step(name: str, fn: Callable[[], Any]) -> None:
        steps.append((name, _outcome(fn)))

    def each(futures: dict[Any, Any], show: Callable[[Any], Any]) -> list[tuple[Any, Step]]:
        """Per key (a group or topic: this face's, by name; a partition: its number), the
        future's outcome."""
        return sorted(
            ((k.replace(group, "<group>").replace(topic, "<topic>") if isinstance(k, str) else (k.partition,)), _outcome(lambda f=f: show(f.result(10))))
            for k, f in futures.items()
        )

    def parts(result: Any) -> Any:
        return (result.group_id == group, [(t.topic == topic, t.partition, t.offset, t.error) for t in result.topic_partitions])

    step("cluster_id() is the broker's", lambda: admin.cluster_id() == cluster_id)
    step("create_topics() of an existing topic", lambda: each(admin.create_topics([new_topic(topic, 2, 1)]), lambda r: r))
    step("alter_consumer_group_offsets()", lambda: each(admin.alter_consumer_group_offsets([groups(group, [tp(topic, 0, 3), tp(topic, 1, 2)])]), parts))
    step("list_consumer_group_offsets(): every partition", lambda: each(admin.list_consumer_group_offsets([groups(group)]), parts))
    step("list_consumer_group_offsets(): one partition", lambda: each(admin.list_consumer_group_offsets([groups(group, [tp(topic, 1)])]), parts))
    step("list_consumer_group_offsets() of an unknown group", lambda: [r[1] for r in each(admin.list_consumer_group_offsets([groups(group + "-none")]), lambda r: r.topic_partitions)])
    step("list_consumer_group_offsets() of two groups", lambda: admin.list_consumer_group_offsets([groups(group), groups(group + "-2")]))

    # A group with a member (static, so its member id starts with its instance id).
    member = make_consumer({"group.id": group + "-active", "client.id": "parity-client", "group.instance.id": "parity-1"})
    member.subscribe([topic])
    deadline = time.monotonic() + 15
    while not member.assignment() and time.monotonic() < deadline:
        member.poll(0.1)

    def listing(result: Any) -> Any:
        return sorted(
            (g.group_id.replace(group, "<group>"), g.is_simple_consumer_group, g.state.name)
            for g in result.valid if g.group_id.startswith(group)
        )

    step("list_consumer_groups()", lambda: (listing(admin.list_consumer_groups().result(10)), admin.list_consumer_groups().result(10).errors))
    step("list_consumer_groups(): the groups' types", lambda: sorted({g.type.name for g in admin.list_consumer_groups().result(10).valid}))
    step("list_consumer_groups(states={STABLE})", lambda: listing(admin.list_consumer_groups(states={states.STABLE}).result(10)))

    def description(d: Any) -> Any:
        return (
            d.group_id.replace(group, "<group>"), d.is_simple_consumer_group, d.partition_assignor, d.state.name,
            (d.coordinator.id, d.coordinator.host, d.coordinator.port, d.coordinator.rack), d.type.name,
            [(m.member_id.startswith("parity-1-"), m.client_id, m.group_instance_id,
              sorted((t.topic == topic, t.partition, t.offset) for t in m.assignment.topic_partitions)) for m in d.members],
        )

    step("describe_consumer_groups()", lambda: each(admin.describe_consumer_groups([group + "-active", group, group + "-none"]), description))
    step("describe_consumer_groups(): the member's host", lambda: [m.host for m in admin.describe_consumer_groups([group + "-active"])[group + "-active"].result(10).members])
    member.close()

    def info(r: Any) -> Any:
        return (r.offset, r.timestamp > 0, r.leader_epoch)

    step("list_offsets() earliest and latest", lambda: each(admin.list_offsets({tp(topic, 0): spec.earliest(), tp(topic, 1): spec.latest()}), info))
    step("list_offsets() max_timestamp", lambda: each(admin.list_offsets({tp(topic, 0): spec.max_timestamp()}), info))
    step("list_offsets() for_timestamp(0)", lambda: each(admin.list_offsets({tp(topic, 1): spec.for_timestamp(0)}), info))
    step("list_offsets() past the last record", lambda: each(admin.list_offsets({tp(topic, 1): spec.for_timestamp(int(time.time() * 1000) + 3_600_000)}), info))
    step("list_offsets() of a partition the topic lacks", lambda: each(admin.list_offsets({tp(topic, 7): spec.latest()}), info))
    def topic_description(d: Any) -> Any:
        def node(n: Any) -> Any:
            return (n.id, n.host, n.port, n.rack)

        return (d.name == topic, str(d.topic_id) == topic_id, d.is_internal, d.authorized_operations,
                [(p.id, node(p.leader), [node(r) for r in p.replicas], [node(r) for r in p.isr]) for p in d.partitions])

    step("describe_topics()", lambda: each(admin.describe_topics(topics([topic, topic + "-absent"])), topic_description))

    def cluster(c: Any) -> Any:
        return (c.cluster_id == cluster_id, (c.controller.id, c.controller.host, c.controller.port), [(n.id, n.host, n.port, n.rack) for n in c.nodes], c.authorized_operations)

    step("describe_cluster()", lambda: cluster(admin.describe_cluster().result(10)))
    step("delete_records()", lambda: each(admin.delete_records([tp(topic, 0, 2), tp(topic, 1, -1)]), lambda r: r.low_watermark))
    step("delete_records() past the high watermark", lambda: each(admin.delete_records([tp(topic, 0, 99)]), lambda r: r.low_watermark))
    step("list_offsets() earliest after delete_records", lambda: each(admin.list_offsets({tp(topic, 0): spec.earliest()}), info))
    step("delete_consumer_groups()", lambda: [r[1] for r in each(admin.delete_consumer_groups([group, group + "-none"]), lambda r: r)])
    step("list_consumer_group_offsets() after delete", lambda: each(admin.list_consumer_group_offsets([groups(group)]), parts))
    return steps


def _librdkafka_uuid(topic_id: Any) -> str:
    """A topic id as confluent_kafka.Uuid prints it: standard base64, no padding."""
    import base64

    return base64.b64encode(topic_id.bytes).decode("ascii").rstrip("=")


def test_embedded_admin_answers_as_confluent_kafka(broker: Broker, bootstrap: str) -> None:
    from confluent_kafka.admin import AdminClient, NewTopic, OffsetSpec

    import headwater

    for topic in ("wire", "embedded"):
        broker.create_topic(topic, 2)
        p = broker.producer()
        for i in range(10):
            p.produce(topic, b"v%d" % i, partition=i % 2)
        p.flush()
    fast = {"session.timeout.ms": 6000, "heartbeat.interval.ms": 100}
    oracle = admin_scenario(
        "wire", "g-wire", AdminClient({"bootstrap.servers": bootstrap}), confluent_kafka.TopicPartition,
        confluent_kafka.ConsumerGroupTopicPartitions, OffsetSpec, NewTopic, broker.cluster_id,
        lambda cfg: confluent_kafka.Consumer({"bootstrap.servers": bootstrap, **fast, **cfg}), confluent_kafka.ConsumerGroupState,
        confluent_kafka.TopicCollection, _librdkafka_uuid(broker.describe_topic("wire").topic_id),
    )
    ours = admin_scenario(
        "embedded", "g-embedded", broker.admin(), headwater.TopicPartition,
        headwater.ConsumerGroupTopicPartitions, headwater.OffsetSpec, headwater.NewTopic, broker.cluster_id,
        lambda cfg: broker.consumer({**fast, **cfg}), headwater.ConsumerGroupState,
        headwater.TopicCollection, _librdkafka_uuid(broker.describe_topic("embedded").topic_id),
    )
    diffs = {name: (theirs, mine) for (name, theirs), (_, mine) in zip(oracle, ours, strict=True) if theirs != mine}
    assert diffs == KNOWN_ADMIN_DIFFERENCES, "\n".join(f"{n}: confluent-kafka {t!r}, embedded {m!r}" for n, (t, m) in diffs.items())
    answers = dict(oracle)
    described = dict(answers["describe_consumer_groups()"][1])
    assert described["<group>-active"][1][3] == "STABLE" and len(described["<group>-active"][1][6]) == 1
    assert described["<group>-none"][1][3] == "DEAD"
    assert answers["delete_records()"] == ("ok", [((0,), ("ok", 2)), ((1,), ("ok", 5))])
    assert dict(answers["describe_topics()"][1])["<topic>"][1][:3] == (True, True, False)
    assert answers["list_consumer_group_offsets(): every partition"] == ("ok", [("<group>", ("ok", (True, [(True, 0, 3, None), (True, 1, 2, None)])))])
    assert answers["list_offsets() earliest and latest"] == ("ok", [((0,), ("ok", (0, False, 0))), ((1,), ("ok", (5, False, 0)))])
    assert answers["delete_consumer_groups()"] == ("ok", [("ok", None), ("raise", "KafkaException", "GROUP_ID_NOT_FOUND")])


@pytest.mark.parametrize("hex_id", ["1f9e7da0133f4cd6a1de38dabb4ec795", "b71b2cfba2e245a9a418f48f9ed7a733", "ffffffffffffffff0000000000000001"])
def test_topic_id_prints_as_confluent_kafka_uuid(hex_id: str) -> None:
    """describe_topics()' topic_id answers as confluent_kafka.Uuid built from the same bits:
    str() (librdkafka's standard base64 alphabet, ids with '+' and '/' among them) and both
    halves as signed 64-bit integers."""
    import uuid

    from headwater.client.admin import Uuid

    ours = Uuid(uuid.UUID(hex_id))
    theirs = confluent_kafka.Uuid(ours.get_most_significant_bits(), ours.get_least_significant_bits())
    assert str(ours) == str(theirs)
    assert (ours.get_most_significant_bits(), ours.get_least_significant_bits()) == (
        theirs.get_most_significant_bits(), theirs.get_least_significant_bits())


def test_close_revokes_as_confluent_kafka_does(broker: Broker, bootstrap: str) -> None:
    """A subscribed consumer's close() calls on_revoke with its partitions, as librdkafka's
    does (code that flushes its state in on_revoke relies on it at shutdown); the callback
    sees the offsets auto-commit stored for them (committed() from inside it)."""

    def run(topic: str, make_consumer: Callable[[dict[str, Any]], Any]) -> list[Any]:
        events: list[Any] = []
        c = make_consumer({
            "group.id": "close-" + topic, "auto.offset.reset": "earliest", "session.timeout.ms": 6000,
            "heartbeat.interval.ms": 100,
        })

        def on_revoke(consumer: Any, parts: list[Any]) -> None:
            events.append(("revoke", sorted(p.partition for p in parts)))

        c.subscribe([topic], on_assign=lambda consumer, parts: events.append(("assign", sorted(p.partition for p in parts))), on_revoke=on_revoke)
        got = 0
        deadline = time.monotonic() + 15
        while got < 4 and time.monotonic() < deadline:
            m = c.poll(0.1)
            got += m is not None and m.error() is None
        events.append(("consumed", got))
        c.close()
        events.append(("closed",))
        check = make_consumer({"group.id": "close-" + topic})
        events.append(("committed after close", sorted((t.partition, t.offset) for t in check.committed([confluent_kafka.TopicPartition(topic, 0), confluent_kafka.TopicPartition(topic, 1)], timeout=10))))
        check.close()
        return events

    for topic in ("cw", "ce"):
        broker.create_topic(topic, 2)
        p = broker.producer()
        for i in range(4):
            p.produce(topic, b"v", partition=i % 2)
        p.flush()
    oracle = run("cw", lambda cfg: confluent_kafka.Consumer({"bootstrap.servers": bootstrap, **cfg}))
    ours = run("ce", broker.consumer)
    assert ours == oracle
    assert oracle == [("assign", [0, 1]), ("consumed", 4), ("revoke", [0, 1]), ("closed",), ("committed after close", [(0, 2), (1, 2)])]


def test_partition_eof_events_as_confluent_kafka(broker: Broker, bootstrap: str) -> None:
    """enable.partition.eof: each partition's end is reported once as a message whose error is
    _PARTITION_EOF (offset = the end), again after new records are read, as librdkafka does."""

    def run(topic: str, make_consumer: Callable[[dict[str, Any]], Any]) -> list[Any]:
        c = make_consumer({"group.id": "eof-" + topic, "enable.partition.eof": True, "auto.offset.reset": "earliest", "enable.auto.commit": False})
        c.assign([confluent_kafka.TopicPartition(topic, 0), confluent_kafka.TopicPartition(topic, 1)])
        events: list[Any] = []

        def poll_until(count: int) -> None:
            deadline = time.monotonic() + 10
            while len(events) < count and time.monotonic() < deadline:
                m = c.poll(0.2)
                if m is not None:
                    e = m.error()
                    events.append((m.partition(), m.offset(), None if e is None else e.name(), None if e else m.value(), m.topic() == topic))

        poll_until(4)
        first = sorted(events)  # the two partitions' events may interleave
        p = broker.producer()
        p.produce(topic, b"late", partition=1)
        p.flush()
        poll_until(6)
        c.close()
        return first + events[4:]

    for topic in ("eof-wire", "eof-embedded"):
        broker.create_topic(topic, 2)
        p = broker.producer()
        for i in range(2):
            p.produce(topic, b"v%d" % i, partition=0)
        p.flush()
    oracle = run("eof-wire", lambda cfg: confluent_kafka.Consumer({"bootstrap.servers": bootstrap, **cfg}))
    ours = run("eof-embedded", broker.consumer)
    assert ours == oracle
    assert oracle == [
        (0, 0, None, b"v0", True), (0, 1, None, b"v1", True), (0, 2, "_PARTITION_EOF", None, True),
        (1, 0, "_PARTITION_EOF", None, True), (1, 0, None, b"late", True), (1, 1, "_PARTITION_EOF", None, True),
    ]
