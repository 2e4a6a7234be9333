"""Consumer-protocol payloads: Subscription and Assignment, versions 0-3 (kafka-spec.md e.3).

The broker treats both as opaque bytes (stored and echoed byte-exact); the client side (the
assignors and the embedded consumer) encodes and decodes them here. Classic encoding, an int16
version first, then the struct of that version:

    Subscription
      int16   version
      ARRAY   topics                 [STRING]
      BYTES   user_data              nullable
      ARRAY   owned_partitions       v1+  [{STRING topic, ARRAY [INT32] partitions}]
      INT32   generation_id          v2+  (-1 = unknown)
      STRING  rack_id                v3+  nullable

    Assignment (same layout for v0-v3)
      int16   version
      ARRAY   assigned_partitions    [{STRING topic, ARRAY [INT32] partitions}]
      BYTES   user_data              nullable

A decoder reads the prefix it knows and ignores trailing bytes, so a payload of a higher
version (or with fields a later Kafka appends) still decodes. An Assignment of zero bytes means
"empty assignment" (librdkafka sends it). ``Subscription.group_instance_id`` is not part of the
encoding: the JoinGroup response carries it beside the metadata, and the range/roundrobin
assignors sort static members by it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import NamedTuple

from headwater.coordinator.group._codec import Reader, Writer
from headwater.coordinator.group.errors import MalformedPayloadError

SUBSCRIPTION_VERSION_MAX = 3
ASSIGNMENT_VERSION_MAX = 3


class TopicPartition(NamedTuple):
    """A topic name and a partition index."""

    topic: str
    partition: int


@dataclass(frozen=True)
class Subscription:
    """What one member subscribes to (JoinGroup ``protocols[].metadata``)."""

    topics: tuple[str, ...]
    user_data: bytes | None = None
    owned_partitions: tuple[TopicPartition, ...] = ()
    generation_id: int = -1
    rack_id: str | None = None
    group_instance_id: str | None = field(default=None, compare=False)


@dataclass(frozen=True)
class Assignment:
    """The partitions given to one member (SyncGroup ``assignment``)."""

    partitions: tuple[TopicPartition, ...] = ()
    user_data: bytes | None = None


def _group_by_topic(partitions: Iterable[TopicPartition]) -> dict[str, list[int]]:
    """Topic -> partitions, topics in order of first appearance, partitions as given."""
    out: dict[str, list[int]] = {}
    for tp in partitions:
        out.setdefault(tp.topic, []).append(tp.partition)
    return out


def _write_topic_partitions(w: Writer, partitions: Iterable[TopicPartition]) -> None:
    grouped = _group_by_topic(partitions)
    w.int32(len(grouped))
    for topic, parts in grouped.items():
        w.string(topic)
        w.int32(len(parts))
        for p in parts:
            w.int32(p)


def _read_topic_partitions(r: Reader) -> tuple[TopicPartition, ...]:
    out: list[TopicPartition] = []
    for _ in range(r.array_count()):
        topic = r.string()
        for _ in range(r.array_count()):
            out.append(TopicPartition(topic, r.int32()))
    return tuple(out)


def encode_subscription(sub: Subscription, version: int = SUBSCRIPTION_VERSION_MAX) -> bytes:
    """Encode ``sub`` as Subscription ``version`` (0-3); fields of later versions are dropped."""
    if not 0 <= version <= SUBSCRIPTION_VERSION_MAX:
        raise ValueError(f"Subscription version {version} not in 0..{SUBSCRIPTION_VERSION_MAX}")
    w = Writer()
    w.int16(version)
    w.int32(len(sub.topics))
    for topic in sub.topics:
        w.string(topic)
    w.bytes_(sub.user_data)
    if version >= 1:
        _write_topic_partitions(w, sub.owned_partitions)
    if version >= 2:
        w.int32(sub.generation_id)
    if version >= 3:
        w.string(sub.rack_id)
    return w.finish()


def decode_subscription(data: bytes, group_instance_id: str | None = None) -> Subscription:
    """Decode a Subscription of any version (fields beyond v3 are ignored).

    Raises:
        MalformedPayloadError: the bytes end early or hold a negative version.
    """
    r = Reader(data)
    version = r.int16()
    if version < 0:
        raise MalformedPayloadError(f"Subscription version {version}")
    topics = tuple(r.string() for _ in range(r.array_count()))
    user_data = r.nullable_bytes()
    owned: tuple[TopicPartition, ...] = ()
    generation_id = -1
    rack_id = None
    if version >= 1:
        owned = _read_topic_partitions(r)
    if version >= 2:
        generation_id = r.int32()
    if version >= 3:
        rack_id = r.nullable_string()
    return Subscription(topics, user_data, owned, generation_id, rack_id, group_instance_id)


def encode_assignment(assignment: Assignment, version: int = 0) -> bytes:
    """Encode ``assignment`` as Assignment ``version`` (0-3, all the same layout)."""
    if not 0 <= version <= ASSIGNMENT_VERSION_MAX:
        raise ValueError(f"Assignment version {version} not in 0..{ASSIGNMENT_VERSION_MAX}")
    w = Writer()
    w.int16(version)
    _write_topic_partitions(w, assignment.partitions)
    w.bytes_(assignment.user_data)
    return w.finish()


def decode_assignment(data: bytes) -> Assignment:
    """Decode an Assignment of any version; zero bytes is the empty assignment.

    Raises:
        MalformedPayloadError: the bytes end early or hold a negative version.
    """
    if len(data) == 0:
        return Assignment()
    r = Reader(data)
    version = r.int16()
    if version < 0:
        raise MalformedPayloadError(f"Assignment version {version}")
    partitions = _read_topic_partitions(r)
    user_data = r.nullable_bytes()
    return Assignment(partitions, user_data)
