"""AdminClient shaped like confluent_kafka.admin.AdminClient, over an embedded Broker.

Every call returns {name: concurrent.futures.Future} as confluent-kafka does; the futures are
already complete (the broker is in-process), so `.result()` returns or raises at once.
"""

from __future__ import annotations

from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from headwater.errors import HeadwaterError

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

    def list_topics(self, topic: str | None = None, timeout: float = -1) -> Any:
        return self._broker.list_topics(topic)

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
