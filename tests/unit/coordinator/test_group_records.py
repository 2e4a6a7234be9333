"""__consumer_offsets record keys and values, byte for byte.

Goal: what the coordinator writes is what Kafka writes (kafka-protocol/records/OffsetCommit*,
GroupMetadata*), and every version Kafka may have written decodes.
Method: expected bytes are assembled by hand, field by field from the schema with
struct.pack, never with the module under test; decoders are fed hand-built v0-v4 values
(v4 with compact strings and tagged fields) and truncated input.
"""

from __future__ import annotations

import struct

import pytest

from headwater.coordinator.group import records as rec
from headwater.coordinator.group.errors import MalformedPayloadError


def i16(v: int) -> bytes:
    return struct.pack(">h", v)


def i32(v: int) -> bytes:
    return struct.pack(">i", v)


def i64(v: int) -> bytes:
    return struct.pack(">q", v)


def s(v: str | None) -> bytes:
    if v is None:
        return i16(-1)
    b = v.encode()
    return i16(len(b)) + b


def b(v: bytes) -> bytes:
    return i32(len(v)) + v


def cs(v: str | None) -> bytes:
    """COMPACT_STRING (lengths here are < 127, so one uvarint byte)."""
    if v is None:
        return b"\x00"
    data = v.encode()
    return bytes([len(data) + 1]) + data


def test_offset_commit_key_v1_bytes() -> None:
    expected = i16(1) + s("grp") + s("orders") + i32(7)
    assert rec.encode_offset_commit_key("grp", "orders", 7) == expected
    assert expected == b"\x00\x01\x00\x03grp\x00\x06orders\x00\x00\x00\x07"


def test_group_metadata_key_v2_bytes() -> None:
    assert rec.encode_group_metadata_key("grp") == b"\x00\x02\x00\x03grp"


def test_decode_keys_of_each_type() -> None:
    assert rec.decode_key(i16(1) + s("g") + s("t") + i32(3)) == rec.OffsetCommitKey("g", "t", 3)
    assert rec.decode_key(i16(0) + s("g") + s("t") + i32(3)) == rec.OffsetCommitKey("g", "t", 3)
    assert rec.decode_key(i16(2) + s("g")) == rec.GroupMetadataKey("g")
    assert rec.decode_key(i16(3) + s("g")) == rec.UnknownKey(3)  # KIP-848 record: skipped
    with pytest.raises(MalformedPayloadError):
        rec.decode_key(i16(-1))
    with pytest.raises(MalformedPayloadError):
        rec.decode_key(i16(1) + s("g") + s("t") + b"\x00\x00")


def test_offset_commit_value_v3_bytes() -> None:
    value = rec.OffsetCommitValue(offset=42, metadata="meta", commit_timestamp=1700, leader_epoch=5)
    expected = i16(3) + i64(42) + i32(5) + s("meta") + i64(1700)
    assert rec.encode_offset_commit_value(value) == expected
    assert rec.decode_offset_commit_value(expected) == value


def test_offset_commit_value_with_expiry_is_v1() -> None:
    value = rec.OffsetCommitValue(42, "", 1700, -1, expire_timestamp=9000)
    expected = i16(1) + i64(42) + s("") + i64(1700) + i64(9000)
    assert rec.encode_offset_commit_value(value) == expected
    assert rec.decode_offset_commit_value(expected) == value


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (i16(0) + i64(1) + s("m") + i64(2), rec.OffsetCommitValue(1, "m", 2)),
        (i16(1) + i64(1) + s("m") + i64(2) + i64(3), rec.OffsetCommitValue(1, "m", 2, -1, 3)),
        (i16(2) + i64(1) + s("m") + i64(2), rec.OffsetCommitValue(1, "m", 2)),
        (i16(3) + i64(1) + i32(9) + s("m") + i64(2), rec.OffsetCommitValue(1, "m", 2, 9)),
        # v4 flexible: compact metadata, then an empty tagged-field section.
        (
            i16(4) + i64(1) + i32(9) + cs("m") + i64(2) + b"\x00",
            rec.OffsetCommitValue(1, "m", 2, 9),
        ),
        # v4 with one unknown tagged field (tag 0, 2 bytes) is skipped.
        (
            i16(4) + i64(1) + i32(9) + cs("m") + i64(2) + b"\x01\x00\x02xy",
            rec.OffsetCommitValue(1, "m", 2, 9),
        ),
    ],
    ids=["v0", "v1", "v2", "v3", "v4", "v4-tagged"],
)
def test_offset_commit_value_reads_every_version(data: bytes, expected: object) -> None:
    assert rec.decode_offset_commit_value(data) == expected


def test_offset_commit_value_truncated_raises() -> None:
    full = i16(3) + i64(1) + i32(9) + s("m") + i64(2)
    for cut in range(len(full)):
        with pytest.raises(MalformedPayloadError):
            rec.decode_offset_commit_value(full[:cut])


MEMBER = rec.MemberMetadata(
    member_id="c-1",
    client_id="cl",
    client_host="/10.0.0.1",
    session_timeout=10000,
    subscription=b"\x00\x01sub",
    assignment=b"asg",
    rebalance_timeout=30000,
    group_instance_id="inst",
)


def test_group_metadata_value_v3_bytes() -> None:
    value = rec.GroupMetadataValue("consumer", 4, "range", "c-1", 1234, (MEMBER,))
    expected = (
        i16(3)
        + s("consumer")
        + i32(4)
        + s("range")
        + s("c-1")
        + i64(1234)
        + i32(1)
        + s("c-1")
        + s("inst")
        + s("cl")
        + s("/10.0.0.1")
        + i32(30000)
        + i32(10000)
        + b(b"\x00\x01sub")
        + b(b"asg")
    )
    assert rec.encode_group_metadata_value(value) == expected
    assert rec.decode_group_metadata_value(expected) == value


def test_empty_group_metadata_value_has_null_protocol_and_leader() -> None:
    value = rec.GroupMetadataValue("consumer", 5, None, None, 99, ())
    expected = i16(3) + s("consumer") + i32(5) + i16(-1) + i16(-1) + i64(99) + i32(0)
    assert rec.encode_group_metadata_value(value) == expected
    assert rec.decode_group_metadata_value(expected) == value


def _member_v(version: int) -> bytes:
    out = s("c-1")
    if version >= 3:
        out += s("inst")
    out += s("cl") + s("/10.0.0.1")
    if version >= 1:
        out += i32(30000)
    return out + i32(10000) + b(b"\x00\x01sub") + b(b"asg")


@pytest.mark.parametrize("version", [0, 1, 2, 3])
def test_group_metadata_value_reads_classic_versions(version: int) -> None:
    data = i16(version) + s("consumer") + i32(4) + s("range") + s("c-1")
    if version >= 2:
        data += i64(1234)
    data += i32(1) + _member_v(version)
    got = rec.decode_group_metadata_value(data)
    assert got.generation == 4 and got.protocol == "range" and got.leader == "c-1"
    assert got.current_state_timestamp == (1234 if version >= 2 else -1)
    (m,) = got.members
    assert m.rebalance_timeout == (30000 if version >= 1 else -1)
    assert m.group_instance_id == ("inst" if version >= 3 else None)
    assert (m.member_id, m.client_id, m.client_host, m.session_timeout) == (
        "c-1",
        "cl",
        "/10.0.0.1",
        10000,
    )
    assert (m.subscription, m.assignment) == (b"\x00\x01sub", b"asg")


def test_group_metadata_value_reads_flexible_v4() -> None:
    member = (
        cs("c-1")
        + cs(None)
        + cs("cl")
        + cs("h")
        + i32(30000)
        + i32(10000)
        + bytes([4])
        + b"sub"  # COMPACT_BYTES
        + bytes([1])  # empty assignment
        + b"\x00"  # member tagged fields
    )
    data = i16(4) + cs("consumer") + i32(2) + cs("range") + cs("c-1") + i64(7) + bytes([2]) + member
    data += b"\x00"
    got = rec.decode_group_metadata_value(data)
    assert got == rec.GroupMetadataValue(
        "consumer",
        2,
        "range",
        "c-1",
        7,
        (rec.MemberMetadata("c-1", "cl", "h", 10000, b"sub", b"", 30000, None),),
    )


def test_group_metadata_value_truncated_raises() -> None:
    full = rec.encode_group_metadata_value(
        rec.GroupMetadataValue("consumer", 4, "range", "c-1", 1234, (MEMBER,))
    )
    for cut in range(len(full)):
        with pytest.raises(MalformedPayloadError):
            rec.decode_group_metadata_value(full[:cut])


def test_huge_array_count_is_rejected_without_allocating() -> None:
    data = i16(3) + s("consumer") + i32(4) + s(None) + s(None) + i64(0) + i32(0x7FFFFFFF)
    with pytest.raises(MalformedPayloadError):
        rec.decode_group_metadata_value(data)


@pytest.mark.parametrize(
    ("group", "partitions", "expected"),
    [
        # Java: "group".hashCode() = 98629247; abs % 50 = 47.
        ("group", 50, 47),
        # "polygenelubricants".hashCode() == Integer.MIN_VALUE: Utils.abs maps it to 0.
        ("polygenelubricants", 50, 0),
        ("", 50, 0),
    ],
)
def test_offsets_partition_for_matches_java_hash(
    group: str, partitions: int, expected: int
) -> None:
    assert rec.offsets_partition_for(group, partitions) == expected
