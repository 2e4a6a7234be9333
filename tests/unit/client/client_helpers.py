"""Bounded polling and log-reading helpers for the embedded-client tests (see conftest.py)."""

from __future__ import annotations

import time
from typing import Any

from headwater.client import Broker, Message

FAST_BROKER = {
    "group.initial.rebalance.delay.ms": 0,
    "group.min.session.timeout.ms": 100,
}

# Consumer settings for group tests: short heartbeats so rebalances are noticed quickly.
FAST_CONSUMER = {
    "auto.offset.reset": "earliest",
    "session.timeout.ms": 6000,
    "heartbeat.interval.ms": 20,
}


def poll_until(consumer: Any, count: int, timeout: float = 5.0) -> list[Message]:
    """Poll until `count` data messages arrived or `timeout` seconds passed."""
    out: list[Message] = []
    deadline = time.monotonic() + timeout
    while len(out) < count and time.monotonic() < deadline:
        for m in consumer.consume(count - len(out), 0.05):
            if m.error() is None:
                out.append(m)
    return out


def poll_for(consumer: Any, seconds: float) -> list[Message]:
    """Every data message polled during `seconds`."""
    out: list[Message] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        out.extend(m for m in consumer.consume(1000, 0.02) if m.error() is None)
    return out


def wait_assigned(consumer: Any, timeout: float = 5.0, n: int | None = None) -> list[Any]:
    """Poll (discarding nothing: messages are buffered back into a list) until the consumer
    has an assignment (of `n` partitions when given). Returns messages polled meanwhile."""
    out: list[Message] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        out.extend(m for m in consumer.consume(1000, 0.02) if m.error() is None)
        a = consumer.assignment()
        if a and (n is None or len(a) == n):
            return out
    raise AssertionError(f"no assignment{'' if n is None else f' of {n}'} within {timeout}s: {consumer.assignment()}")


def log_records(broker: Broker, topic: str, partition: int) -> list[Any]:
    """Every record of (topic, partition), read straight from the log: (offset, key, value)."""
    plog = broker.get_log(topic, partition)
    out = []
    offset = plog.log_start_offset
    while offset < plog.log_end_offset:
        with plog.read(offset, 8 << 20) as result:
            recs = [(r.offset, r.key, r.value) for r in result]
            last = offset
            for header, view in result.batches():
                last = max(last, header.last_offset)
                view.release()
        out.extend(recs)
        offset = last + 1
    return out


def end_offsets(broker: Broker, topic: str) -> list[int]:
    n = broker.describe_topic(topic).partitions
    return [broker.get_log(topic, p).log_end_offset for p in range(n)]
