"""A subscribed group follows topic changes: new partitions and new pattern matches.

Goal: partitions added with CreatePartitions (and topics matching a subscribed pattern) get
assigned without any restart, as Kafka's leader-driven rebalance does. Method: two members of a
group consume a topic; partitions are added through the admin API; both keep polling until the
union of their assignments covers the new partitions and records produced there are consumed.
The same for a pattern subscription and a newly created matching topic.
"""

from __future__ import annotations

import time

import headwater
from headwater import NewPartitions


def _broker(tmp_path):  # type: ignore[no-untyped-def]
    return headwater.Broker(str(tmp_path / "d"), {"group.initial.rebalance.delay.ms": 0, "group.min.session.timeout.ms": 100})


def _consumer(b, name):  # type: ignore[no-untyped-def]
    return b.consumer({
        "group.id": "g", "client.id": name, "auto.offset.reset": "earliest",
        "session.timeout.ms": 3000, "heartbeat.interval.ms": 100,
        "topic.metadata.refresh.interval.ms": 50,
    })


def _poll_until(consumers, predicate, seconds=10.0):  # type: ignore[no-untyped-def]
    seen = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for c in consumers:
            for m in c.consume(100, 0.01):
                if m.error() is None:
                    seen.append((m.topic(), m.partition(), m.offset()))
        if predicate(seen):
            return seen
    raise AssertionError(f"condition not met in {seconds}s; seen {len(seen)}")


def test_added_partitions_are_assigned_and_consumed(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with _broker(tmp_path) as b:
        b.create_topic("t", partitions=2)
        cs = [_consumer(b, "a"), _consumer(b, "b")]
        for c in cs:
            c.subscribe(["t"])
        p = b.producer()
        for part in range(2):
            p.produce("t", b"before", partition=part)
        p.flush()
        _poll_until(cs, lambda seen: len(seen) >= 2)
        b.admin().create_partitions([NewPartitions("t", 4)])["t"].result()
        for part in (2, 3):
            p.produce("t", b"after-%d" % part, partition=part)
        p.flush()
        seen = _poll_until(cs, lambda seen: {s[1] for s in seen if s[1] >= 2} == {2, 3})
        assert {s[1] for s in seen} >= {2, 3}
        assigned = sorted(tp.partition for c in cs for tp in c.assignment())
        assert assigned == [0, 1, 2, 3]
        for c in cs:
            c.close()


def test_pattern_subscription_picks_up_new_topics(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with _broker(tmp_path) as b:
        b.create_topic("logs-a", partitions=1)
        c = _consumer(b, "a")
        c.subscribe(["^logs-.*"])
        p = b.producer()
        p.produce("logs-a", b"1", partition=0)
        p.flush()
        _poll_until([c], lambda seen: len(seen) >= 1)
        b.create_topic("logs-b", partitions=1)
        p.produce("logs-b", b"2", partition=0)
        p.flush()
        seen = _poll_until([c], lambda seen: any(s[0] == "logs-b" for s in seen))
        assert ("logs-b", 0, 0) in seen
        c.close()
