"""``__consumer_offsets`` record keys and values, byte for byte as Kafka writes them.

A record's key and value each start with an int16 version; the key version selects the record
type (kafka-spec.md e.1). A null value is a tombstone: the compacted partition then forgets the
key. Layouts (classic encoding, see ``_codec``):

    OffsetCommitKey v0/v1 (v1 written)       GroupMetadataKey v2
      int16   version                          int16   version = 2
      STRING  group                            STRING  group
      STRING  topic
      INT32   partition

    OffsetCommitValue (v3 written; v1 written when an expire timestamp is set, as Kafka does)
      int16   version
      INT64   offset
      INT32   leader_epoch          v3+ (-1 = unknown)
      STRING  metadata
      INT64   commit_timestamp
      INT64   expire_timestamp      v1 only
      TAGGED  (v4: flexible, COMPACT_STRING metadata)

    GroupMetadataValue (v3 written; v0-v4 read)
      int16   version
      STRING  protocol_type
      INT32   generation
      STRING  protocol              nullable
      STRING  leader                nullable
      INT64   current_state_timestamp   v2+ (-1 = unknown)
      ARRAY   members
        STRING  member_id
        STRING  group_instance_id   v3+ nullable
        STRING  client_id
        STRING  client_host
        INT32   rebalance_timeout   v1+ (-1 = unknown)
        INT32   session_timeout
        BYTES   subscription
        BYTES   assignment
      (v4: flexible, compact types and tagged fields on the value and on each member)

Keys of versions 3 and above (KIP-848 consumer groups, share groups) decode as ``UnknownKey``
so a replay skips them instead of failing.
"""

from __future__ import annotations

from dataclasses import dataclass

from headwater.coordinator.group._codec import Reader, Writer
from headwater.coordinator.group.errors import MalformedPayloadError

OFFSET_COMMIT_KEY_VERSION = 1
GROUP_METADATA_KEY_VERSION = 2
OFFSET_COMMIT_VALUE_VERSION = 3
GROUP_METADATA_VALUE_VERSION = 3


@dataclass(frozen=True)
class OffsetCommitKey:
    group: str
    topic: str
    partition: int


@dataclass(frozen=True)
class GroupMetadataKey:
    group: str


@dataclass(frozen=True)
class UnknownKey:
    """A key of a record type this coordinator does not own (key version >= 3)."""

    version: int


@dataclass(frozen=True)
class OffsetCommitValue:
    offset: int
    metadata: str = ""
    commit_timestamp: int = -1
    leader_epoch: int = -1
    expire_timestamp: int = -1


@dataclass(frozen=True)
class MemberMetadata:
    member_id: str
    client_id: str
    client_host: str
    session_timeout: int
    subscription: bytes
    assignment: bytes
    rebalance_timeout: int = -1
    group_instance_id: str | None = None


@dataclass(frozen=True)
class GroupMetadataValue:
    protocol_type: str
    generation: int
    protocol: str | None
    leader: str | None
    current_state_timestamp: int = -1
    members: tuple[MemberMetadata, ...] = ()


# Keys.


def encode_offset_commit_key(group: str, topic: str, partition: int) -> bytes:
    """OffsetCommitKey v1."""
    w = Writer()
    w.int16(OFFSET_COMMIT_KEY_VERSION)
    w.string(group)
    w.string(topic)
    w.int32(partition)
    return w.finish()


def encode_group_metadata_key(group: str) -> bytes:
    """GroupMetadataKey v2."""
    w = Writer()
    w.int16(GROUP_METADATA_KEY_VERSION)
    w.string(group)
    return w.finish()


def decode_key(data: bytes) -> OffsetCommitKey | GroupMetadataKey | UnknownKey:
    """Decode any ``__consumer_offsets`` key; trailing bytes are ignored.

    Raises:
        MalformedPayloadError: the key is truncated or has a negative version.
    """
    r = Reader(data)
    version = r.int16()
    if version in (0, 1):
        return OffsetCommitKey(r.string(), r.string(), r.int32())
    if version == 2:
        return GroupMetadataKey(r.string())
    if version < 0:
        raise MalformedPayloadError(f"__consumer_offsets key version {version}")
    return UnknownKey(version)


# Offset commit values.


def encode_offset_commit_value(value: OffsetCommitValue) -> bytes:
    """OffsetCommitValue v3, or v1 when ``expire_timestamp`` is set (Kafka's choice)."""
    w = Writer()
    if value.expire_timestamp != -1:
        w.int16(1)
        w.int64(value.offset)
        w.string(value.metadata)
        w.int64(value.commit_timestamp)
        w.int64(value.expire_timestamp)
        return w.finish()
    w.int16(OFFSET_COMMIT_VALUE_VERSION)
    w.int64(value.offset)
    w.int32(value.leader_epoch)
    w.string(value.metadata)
    w.int64(value.commit_timestamp)
    return w.finish()


def decode_offset_commit_value(data: bytes) -> OffsetCommitValue:
    """Decode OffsetCommitValue v0-v4; later versions are read as v4's known prefix.

    Raises:
        MalformedPayloadError: truncated bytes or a negative version.
    """
    r = Reader(data)
    version = r.int16()
    if version < 0:
        raise MalformedPayloadError(f"OffsetCommitValue version {version}")
    offset = r.int64()
    leader_epoch = r.int32() if version >= 3 else -1
    metadata = r.compact_string() if version >= 4 else r.string()
    commit_timestamp = r.int64()
    expire_timestamp = r.int64() if version == 1 else -1
    if version >= 4:
        r.tagged_fields()
    return OffsetCommitValue(offset, metadata, commit_timestamp, leader_epoch, expire_timestamp)


# Group metadata values.


def encode_group_metadata_value(value: GroupMetadataValue) -> bytes:
    """GroupMetadataValue v3."""
    w = Writer()
    w.int16(GROUP_METADATA_VALUE_VERSION)
    w.string(value.protocol_type)
    w.int32(value.generation)
    w.string(value.protocol)
    w.string(value.leader)
    w.int64(value.current_state_timestamp)
    w.int32(len(value.members))
    for m in value.members:
        w.string(m.member_id)
        w.string(m.group_instance_id)
        w.string(m.client_id)
        w.string(m.client_host)
        w.int32(m.rebalance_timeout)
        w.int32(m.session_timeout)
        w.bytes_(m.subscription)
        w.bytes_(m.assignment)
    return w.finish()


def decode_group_metadata_value(data: bytes) -> GroupMetadataValue:
    """Decode GroupMetadataValue v0-v4; later versions are read as v4's known prefix.

    Raises:
        MalformedPayloadError: truncated bytes or a negative version.
    """
    r = Reader(data)
    version = r.int16()
    if version < 0:
        raise MalformedPayloadError(f"GroupMetadataValue version {version}")
    flexible = version >= 4
    if flexible:
        protocol_type = r.compact_string()
        generation = r.int32()
        protocol = r.compact_nullable_string()
        leader = r.compact_nullable_string()
    else:
        protocol_type = r.string()
        generation = r.int32()
        protocol = r.nullable_string()
        leader = r.nullable_string()
    state_timestamp = r.int64() if version >= 2 else -1
    count = r.compact_array_count() if flexible else r.array_count()
    members = []
    for _ in range(count):
        if flexible:
            member_id = r.compact_string()
            instance_id = r.compact_nullable_string()
            client_id = r.compact_string()
            client_host = r.compact_string()
            rebalance_timeout = r.int32()
            session_timeout = r.int32()
            subscription = r.compact_bytes()
            assignment = r.compact_bytes()
            r.tagged_fields()
        else:
            member_id = r.string()
            instance_id = r.nullable_string() if version >= 3 else None
            client_id = r.string()
            client_host = r.string()
            rebalance_timeout = r.int32() if version >= 1 else -1
            session_timeout = r.int32()
            subscription = r.bytes_()
            assignment = r.bytes_()
        members.append(
            MemberMetadata(
                member_id,
                client_id,
                client_host,
                session_timeout,
                subscription,
                assignment,
                rebalance_timeout,
                instance_id,
            )
        )
    if flexible:
        r.tagged_fields()
    return GroupMetadataValue(
        protocol_type, generation, protocol, leader, state_timestamp, tuple(members)
    )


def offsets_partition_for(group_id: str, num_partitions: int) -> int:
    """The ``__consumer_offsets`` partition that owns ``group_id`` (kafka-spec.md e.1).

    ``abs(javaStringHashCode(group_id)) % num_partitions``, with Java's ``Utils.abs``
    (``Integer.MIN_VALUE`` maps to 0, not to itself).
    """
    h = 0
    data = group_id.encode("utf-16-be")
    for i in range(0, len(data), 2):
        h = (31 * h + ((data[i] << 8) | data[i + 1])) & 0xFFFFFFFF
    if h >= 0x80000000:
        h -= 0x100000000
    return (0 if h == -0x80000000 else abs(h)) % num_partitions
