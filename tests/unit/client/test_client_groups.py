"""Consumer groups through the embedded Consumer: queue split, rebalances, sessions, static
members and pub-sub.

Goal: members of one group split a topic's partitions with no record missed and, with
committed offsets, none repeated across a clean rebalance; a member that stops polling loses
its partitions after session.timeout.ms and another continues from its committed offset; a
static member restarted within its session keeps its assignment without a rebalance; two
groups each see every record.
Method: real Consumers driven round-robin from the test thread (membership only progresses
inside poll/consume, as in Kafka), against a broker with no initial rebalance delay and a
100 ms minimum session timeout. Every delivered (partition, offset) is recorded; assertions
compare them with the log end offsets. Generations come from broker.group_coordinator and
admin.describe_groups.
"""

from __future__ import annotations

import time
from collections import Counter

import pytest
from client_helpers import FAST_CONSUMER, end_offsets, poll_for, poll_until, wait_assigned

from headwater.client import KafkaException, TopicPartition
from headwater.coordinator.group import TopicPartition as GroupTP


def produce_round(producer, topic, partitions, per_partition, start=0):
    for i in range(start, start + per_partition):
        for p in range(partitions):
            producer.produce(topic, b"%d:%d" % (p, i), partition=p)
    producer.flush()


def committed_offset(broker, group, topic, partition):
    return broker.group_coordinator.fetch_offsets(group, [GroupTP(topic, partition)])[GroupTP(topic, partition)].offset


def all_records(broker, topic):
    return {(p, o) for p, end in enumerate(end_offsets(broker, topic)) for o in range(end)}


def step(consumer, delivered, commit, n=20):
    """One poll round of `consumer` (up to n messages): record and (optionally) commit each
    message synchronously."""
    for m in consumer.consume(n, 0.005):
        if m.error() is None:
            delivered.append((m.partition(), m.offset()))
            if commit:
                consumer.commit(message=m, asynchronous=False)


def three_members_join_while_consuming(broker, group_config, commit_each, on_revoke=None):
    """Members join one by one while records keep arriving; returns (delivered, consumers)."""
    broker.create_topic("t", 12)
    producer = broker.producer({"linger.ms": 1000})
    consumers = []
    delivered: list[tuple[int, int]] = []
    for round_ in range(90):
        if round_ in (0, 30, 60):
            c = broker.consumer({"group.id": "g", **FAST_CONSUMER, **group_config})
            c.subscribe(["t"], on_revoke=on_revoke)
            consumers.append(c)
        produce_round(producer, "t", 12, 1, start=round_)
        for c in consumers:
            # Fewer messages per poll than arrive per round: consumers hold fetched records
            # in their buffers when a rebalance comes.
            step(c, delivered, commit_each, n=4)
    total = 12 * 90
    deadline = time.monotonic() + 10
    idle_until = time.monotonic() + 1.0  # give up after 1 s without a new record (lost ones)
    while len(set(delivered)) < total and time.monotonic() < min(deadline, idle_until):
        before = len(delivered)
        for c in consumers:
            step(c, delivered, commit_each)
        if len(delivered) > before:
            idle_until = time.monotonic() + 1.0
    # Drain a little longer: a repeat could still arrive late.
    for _ in range(10):
        for c in consumers:
            step(c, delivered, commit_each)
    return delivered, consumers


def assert_exactly_once(broker, delivered):
    counts = Counter(delivered)
    repeated = {k: v for k, v in counts.items() if v > 1}
    missing = all_records(broker, "t") - set(delivered)
    assert not missing, f"{len(missing)} records never delivered, e.g. {sorted(missing)[:5]}"
    assert not repeated, f"{len(repeated)} records delivered twice, e.g. {sorted(repeated)[:5]}"


def test_three_members_split_twelve_partitions_exactly_once_with_sync_commits(broker) -> None:
    delivered, consumers = three_members_join_while_consuming(broker, {"enable.auto.commit": False}, commit_each=True)
    assert_exactly_once(broker, delivered)
    assignments = [sorted((tp.topic, tp.partition) for tp in c.assignment()) for c in consumers]
    assert [len(a) for a in assignments] == [4, 4, 4]
    assert sorted(sum(assignments, [])) == [("t", p) for p in range(12)]
    assert broker.group_coordinator.generation_id("g") >= 3
    for p in range(12):
        assert committed_offset(broker, "g", "t", p) == end_offsets(broker, "t")[p]


def test_three_members_exactly_once_with_auto_commit_at_rebalance(broker) -> None:
    delivered, _ = three_members_join_while_consuming(broker, {"enable.auto.commit": True, "auto.commit.interval.ms": 60_000}, commit_each=False)
    assert_exactly_once(broker, delivered)


def test_commit_in_on_revoke_commits_current_positions(broker) -> None:
    errors: list[BaseException] = []

    def on_revoke(consumer, partitions):
        try:
            consumer.commit(asynchronous=False)
        except Exception as exc:
            errors.append(exc)

    broker.create_topic("t", 2)
    produce_round(broker.producer(), "t", 2, 5)
    c = broker.consumer({"group.id": "g", **FAST_CONSUMER, "enable.auto.commit": False})
    c.subscribe(["t"], on_revoke=on_revoke)
    assert len(poll_until(c, 10)) == 10
    c.unsubscribe()
    assert errors == []
    assert [committed_offset(broker, "g", "t", p) for p in range(2)] == [5, 5]


def test_on_assign_and_on_revoke_callbacks_follow_the_rebalance(broker) -> None:
    broker.create_topic("t", 4)
    events: dict[str, list] = {"a": [], "b": []}
    # Which half each member gets depends on member-id order; the shape of the events does not.

    def cbs(name):
        return (lambda c, parts: events[name].append(("assign", sorted(p.partition for p in parts))),
                lambda c, parts: events[name].append(("revoke", sorted(p.partition for p in parts))))

    a = broker.consumer({"group.id": "g", **FAST_CONSUMER, "partition.assignment.strategy": "range"})
    a.subscribe(["t"], *cbs("a"))
    wait_assigned(a, n=4)
    b = broker.consumer({"group.id": "g", **FAST_CONSUMER, "partition.assignment.strategy": "range"})
    b.subscribe(["t"], *cbs("b"))
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and not (len(a.assignment()) == 2 and len(b.assignment()) == 2):
        a.consume(10, 0.01)
        b.consume(10, 0.01)
    kept = sorted(tp.partition for tp in a.assignment())
    moved = sorted(tp.partition for tp in b.assignment())
    assert sorted(kept + moved) == [0, 1, 2, 3] and kept in ([0, 1], [2, 3])
    assert events["a"] == [("assign", [0, 1, 2, 3]), ("revoke", [0, 1, 2, 3]), ("assign", kept)]
    assert events["b"] == [("assign", moved)]


def test_cooperative_sticky_revokes_only_moved_partitions(broker) -> None:
    broker.create_topic("t", 4)
    revoked: list[list[int]] = []
    cfg = {"group.id": "g", **FAST_CONSUMER, "partition.assignment.strategy": "cooperative-sticky"}
    a = broker.consumer(cfg)
    a.subscribe(["t"], on_revoke=lambda c, parts: revoked.append(sorted(p.partition for p in parts)))
    wait_assigned(a, n=4)
    b = broker.consumer(cfg)
    b.subscribe(["t"])
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and not (len(a.assignment()) == 2 and len(b.assignment()) == 2):
        a.consume(10, 0.01)
        b.consume(10, 0.01)
    assert len(a.assignment()) == 2 and len(b.assignment()) == 2
    assert len(revoked) == 1 and len(revoked[0]) == 2  # only what moved to b
    assert {tp.partition for tp in a.assignment()} | {tp.partition for tp in b.assignment()} == {0, 1, 2, 3}


@pytest.mark.parametrize("strategy", ["cooperative-sticky", "range"])
def test_on_assign_sets_start_offsets_as_confluent_kafka_code_does(broker, strategy) -> None:
    """confluent-kafka's pattern: the on_assign callback sets where each partition starts,
    with incremental_assign() under a cooperative protocol and assign() under an eager one.
    The partitions are already assigned when the callback runs; neither call conflicts."""
    broker.create_topic("t", 2)
    produce_round(broker.producer(), "t", 2, 10)
    starts = {0: 7, 1: 4}

    def on_assign(consumer, parts):
        parts = [TopicPartition(tp.topic, tp.partition, starts[tp.partition]) for tp in parts]
        if strategy == "cooperative-sticky":
            consumer.incremental_assign(parts)
        else:
            consumer.assign(parts)

    c = broker.consumer({"group.id": "g", **FAST_CONSUMER, "partition.assignment.strategy": strategy})
    c.subscribe(["t"], on_assign=on_assign)
    got = poll_until(c, 9)
    assert sorted((m.partition(), m.offset()) for m in got) == [(0, i) for i in range(7, 10)] + [(1, i) for i in range(4, 10)]
    with pytest.raises(KafkaException):  # outside the callback, an assigned partition conflicts
        c.incremental_assign([TopicPartition("t", 0, 0)])
    c.close()


def test_member_that_stops_polling_loses_partitions_after_session_timeout(broker) -> None:
    broker.create_topic("t", 2)
    producer = broker.producer()
    produce_round(producer, "t", 2, 10)
    cfg = {"group.id": "g", **FAST_CONSUMER, "session.timeout.ms": 300, "enable.auto.commit": False,
           "partition.assignment.strategy": "range"}
    a = broker.consumer(cfg)
    a.subscribe(["t"])
    wait_assigned(a, n=2)
    b = broker.consumer(cfg)
    b.subscribe(["t"])
    delivered_a: list[tuple[int, int]] = []
    delivered_b: list[tuple[int, int]] = []
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and not (len(a.assignment()) == 1 and len(b.assignment()) == 1):
        step(a, delivered_a, commit=False)
        step(b, delivered_b, commit=False)
    (a_part,) = [tp.partition for tp in a.assignment()]
    # a reads 3 records of its partition and commits them, then stops polling for good.
    a.seek(TopicPartition("t", a_part, 0))
    got = poll_until(a, 3)
    got = [m for m in got if m.partition() == a_part][:3]
    assert [m.offset() for m in got] == [0, 1, 2]
    a.commit(message=got[-1], asynchronous=False)
    assert committed_offset(broker, "g", "t", a_part) == 3
    generation = broker.group_coordinator.generation_id("g")
    started = time.monotonic()
    delivered_b.clear()
    deadline = started + 5
    while time.monotonic() < deadline and len(b.assignment()) < 2:
        step(b, delivered_b, commit=False)
    elapsed = time.monotonic() - started
    assert len(b.assignment()) == 2, "b never took over a's partition"
    assert elapsed >= 0.25, f"a was removed after {elapsed:.3f}s, before its 300 ms session ended"
    assert broker.group_coordinator.generation_id("g") > generation
    described = broker.admin().describe_groups(["g"])["g"].result()
    assert [m.member_id for m in described.members] == [b.memberid()]
    # b continues a's partition exactly at a's committed offset.
    delivered_b += [(m.partition(), m.offset()) for m in poll_for(b, 0.3)]
    taken = sorted(o for p, o in delivered_b if p == a_part)
    assert taken == list(range(3, 10))


def test_static_member_restart_within_session_keeps_assignment_without_rebalance(broker) -> None:
    broker.create_topic("t", 4)
    cfg = {"group.id": "g", **FAST_CONSUMER, "session.timeout.ms": 5000, "partition.assignment.strategy": "range"}
    s1 = broker.consumer({**cfg, "group.instance.id": "s1"})
    s1.subscribe(["t"])
    wait_assigned(s1, n=4)
    s2 = broker.consumer({**cfg, "group.instance.id": "s2"})
    s2.subscribe(["t"])
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and not (len(s1.assignment()) == 2 and len(s2.assignment()) == 2):
        s1.consume(10, 0.01)
        s2.consume(10, 0.01)
    before_s1 = sorted(tp.partition for tp in s1.assignment())
    before_s2 = sorted(tp.partition for tp in s2.assignment())
    generation = broker.group_coordinator.generation_id("g")
    s1.close()  # a static member does not leave the group on close
    assert broker.group_coordinator.generation_id("g") == generation
    restarted = broker.consumer({**cfg, "group.instance.id": "s1"})
    restarted.subscribe(["t"])
    deadline = time.monotonic() + 5
    polls = 0
    while time.monotonic() < deadline and (len(restarted.assignment()) != 2 or polls < 10):
        polls += 1  # keep polling a while after: a (wrong) rebalance shows itself
        restarted.consume(10, 0.01)
        s2.consume(10, 0.01)
    assert sorted(tp.partition for tp in restarted.assignment()) == before_s1
    assert sorted(tp.partition for tp in s2.assignment()) == before_s2
    assert broker.group_coordinator.generation_id("g") == generation
    described = broker.admin().describe_groups(["g"])["g"].result()
    assert described.state == "Stable"
    assert sorted(m.group_instance_id for m in described.members) == ["s1", "s2"]


def test_static_member_gone_past_session_timeout_is_replaced_by_rebalance(broker) -> None:
    broker.create_topic("t", 2)
    cfg = {"group.id": "g", **FAST_CONSUMER, "session.timeout.ms": 200}
    s1 = broker.consumer({**cfg, "group.instance.id": "s1"})
    s1.subscribe(["t"])
    wait_assigned(s1, n=2)
    s2 = broker.consumer({**cfg, "group.instance.id": "s2"})
    s2.subscribe(["t"])
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and not (len(s1.assignment()) == 1 and len(s2.assignment()) == 1):
        s1.consume(10, 0.01)
        s2.consume(10, 0.01)
    s1.close()
    generation = broker.group_coordinator.generation_id("g")
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and len(s2.assignment()) < 2:
        s2.consume(10, 0.01)
    assert len(s2.assignment()) == 2
    assert broker.group_coordinator.generation_id("g") > generation


def test_two_groups_each_see_every_record(broker) -> None:
    broker.create_topic("t", 3)
    producer = broker.producer()
    produce_round(producer, "t", 3, 50)
    g1 = [broker.consumer({"group.id": "g1", **FAST_CONSUMER, "enable.auto.commit": False}) for _ in range(2)]
    g2 = [broker.consumer({"group.id": "g2", **FAST_CONSUMER, "enable.auto.commit": False})]
    for c in g1 + g2:
        c.subscribe(["t"])
    seen: dict[str, list] = {"g1": [], "g2": []}
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and (len(seen["g1"]) < 150 or len(seen["g2"]) < 150):
        for name, members in (("g1", g1), ("g2", g2)):
            for c in members:
                step(c, seen[name], commit=True)
    for _ in range(5):
        for name, members in (("g1", g1), ("g2", g2)):
            for c in members:
                step(c, seen[name], commit=True)
    every = all_records(broker, "t")
    for name in ("g1", "g2"):
        assert set(seen[name]) == every, name
        assert len(seen[name]) == len(every), f"{name} saw repeats"


def test_subscribe_by_pattern(broker) -> None:
    producer = broker.producer()
    for name in ("orders-eu", "orders-us", "payments"):
        broker.create_topic(name, 1)
        producer.produce(name, b"x")
    producer.flush()
    c = broker.consumer({"group.id": "g", **FAST_CONSUMER})
    c.subscribe(["^orders-.*"])
    msgs = poll_until(c, 2)
    assert sorted(m.topic() for m in msgs) == ["orders-eu", "orders-us"]
    assert sorted(tp.topic for tp in c.assignment()) == ["orders-eu", "orders-us"]


def test_unsubscribe_and_close_leave_the_group(broker) -> None:
    broker.create_topic("t", 2)
    a = broker.consumer({"group.id": "g", **FAST_CONSUMER})
    a.subscribe(["t"])
    wait_assigned(a, n=2)
    a.unsubscribe()
    assert a.assignment() == []
    assert broker.admin().describe_groups(["g"])["g"].result().members == ()
    b = broker.consumer({"group.id": "g", **FAST_CONSUMER})
    b.subscribe(["t"])
    wait_assigned(b, n=2)
    b.close()
    assert broker.group_coordinator.group_state("g").value == "Empty"
