"""``__transaction_state`` keys and values, byte for byte.

Goal: what the transaction coordinator writes is what Kafka writes (TransactionLogKey v0,
TransactionLogValue v0; kafka-spec.md d.1), and v1 values (flexible, tagged fields) decode.
Method: expected bytes are assembled by hand from the schema with struct.pack, never with the
module under test; a second oracle, kafka-python 3's generic schema codec fed our own table
of the TransactionLogValue fields, decodes what we encode and encodes what we decode (skipped
when that kafka-python is not installed). Truncated and inconsistent bytes must raise
MalformedPayloadError.
"""

from __future__ import annotations

import io
import struct

import pytest

from headwater.coordinator.txn import records as rec
from headwater.coordinator.txn.errors import MalformedPayloadError


def i8(v: int) -> bytes:
    return struct.pack(">b", v)


def i16(v: int) -> bytes:
    return struct.pack(">h", v)


def i32(v: int) -> bytes:
    return struct.pack(">i", v)


def i64(v: int) -> bytes:
    return struct.pack(">q", v)


def s(v: str) -> bytes:
    b = v.encode()
    return i16(len(b)) + b


ONGOING = rec.TransactionLogValue(
    producer_id=4242,
    producer_epoch=3,
    transaction_timeout_ms=60000,
    transaction_status=1,
    partitions=(("orders", (0, 2)), ("payments", (1,))),
    last_update_timestamp_ms=1_700_000_000_500,
    start_timestamp_ms=1_700_000_000_000,
)


def test_key_v0_bytes() -> None:
    assert rec.encode_key("txn-1") == i16(0) + s("txn-1")
    assert rec.encode_key("txn-1") == b"\x00\x00\x00\x05txn-1"
    assert rec.decode_key(b"\x00\x00\x00\x05txn-1") == rec.TransactionLogKey("txn-1")


def test_key_of_other_version_is_unknown_and_negative_is_malformed() -> None:
    assert rec.decode_key(i16(1) + s("x")) == rec.UnknownKey(1)
    with pytest.raises(MalformedPayloadError):
        rec.decode_key(i16(-1))
    with pytest.raises(MalformedPayloadError):
        rec.decode_key(b"\x00")
    with pytest.raises(MalformedPayloadError):
        rec.decode_key(i16(0) + i16(5) + b"ab")


def test_value_v0_ongoing_bytes() -> None:
    expected = (
        i16(0)
        + i64(4242)
        + i16(3)
        + i32(60000)
        + i8(1)
        + i32(2)
        + s("orders")
        + i32(2)
        + i32(0)
        + i32(2)
        + s("payments")
        + i32(1)
        + i32(1)
        + i64(1_700_000_000_500)
        + i64(1_700_000_000_000)
    )
    assert rec.encode_value(ONGOING) == expected
    assert rec.decode_value(expected) == ONGOING


def test_value_v0_empty_has_null_partitions_pinned_vector() -> None:
    value = rec.TransactionLogValue(1000, 0, 60000, 0, None, 5, -1)
    data = rec.encode_value(value)
    # version 0 | pid 1000 | epoch 0 | timeout 60000 | status 0 | null array | ts 5 | start -1
    assert data.hex() == "".join(
        [
            "0000",
            "00000000000003e8",
            "0000",
            "0000ea60",
            "00",
            "ffffffff",
            "0000000000000005",
            "ffffffffffffffff",
        ]
    )
    assert rec.decode_value(data) == value


def test_value_v0_complete_has_empty_not_null_partitions() -> None:
    value = rec.TransactionLogValue(1000, 0, 60000, 4, (), 9, 7)
    data = rec.encode_value(value)
    assert data[2 + 8 + 2 + 4 + 1 :][:4] == i32(0)
    assert rec.decode_value(data) == value


def test_value_v1_decodes_compact_fields_and_tags() -> None:
    prefix = (
        i16(1)
        + i64(7)
        + i16(2)
        + i32(1000)
        + i8(2)
        + bytes([2])  # one partitions entry (compact count = n + 1)
        + bytes([2])
        + b"t"  # compact string "t"
        + bytes([3])
        + i32(4)
        + i32(5)  # two partition ids
        + bytes([0])  # the entry's tagged fields: none
        + i64(11)
        + i64(10)
    )
    known_tags = (
        bytes([0, 8])
        + i64(6)  # tag 0: previous producer id
        + bytes([1, 8])
        + i64(8)  # tag 1: next producer id
        + bytes([2, 2])
        + i16(2)  # tag 2: client transaction version
    )
    unknown_tag = bytes([9, 3]) + b"xyz"
    v = rec.decode_value(prefix + bytes([4]) + known_tags + unknown_tag)
    assert v == rec.TransactionLogValue(7, 2, 1000, 2, (("t", (4, 5)),), 11, 10, 6, 8, 2)
    # Our v1 encoder writes the known tags in tag order and nothing else.
    assert rec.encode_value(v, version=1) == prefix + bytes([3]) + known_tags


def test_value_v1_null_partitions_and_no_tags() -> None:
    value = rec.TransactionLogValue(1, 0, 5, 0, None, 2, -1)
    data = rec.encode_value(value, version=1)
    assert data == i16(1) + i64(1) + i16(0) + i32(5) + i8(0) + b"\x00" + i64(2) + i64(-1) + b"\x00"
    assert rec.decode_value(data) == value


@pytest.mark.parametrize("version", [-1, 2, 7])
def test_value_unknown_version_is_malformed(version: int) -> None:
    with pytest.raises(MalformedPayloadError):
        rec.decode_value(i16(version) + rec.encode_value(ONGOING)[2:])


def test_value_every_truncation_is_malformed() -> None:
    for data in (rec.encode_value(ONGOING), rec.encode_value(ONGOING, version=1)):
        for cut in range(len(data)):
            with pytest.raises(MalformedPayloadError):
                rec.decode_value(data[:cut])


def test_value_huge_array_count_is_malformed_not_a_memory_bomb() -> None:
    data = i16(0) + i64(1) + i16(0) + i32(1) + i8(1) + i32(0x7FFFFFFF) + b"\x00" * 20
    with pytest.raises(MalformedPayloadError):
        rec.decode_value(data)
    bad_string = i16(0) + i64(1) + i16(0) + i32(1) + i8(1) + i32(1) + i16(2) + b"\xff\xfe"
    with pytest.raises(MalformedPayloadError):
        rec.decode_value(bad_string + i32(0) + i64(0) + i64(0))


def test_group_partitions_sorts_and_dedups() -> None:
    got = rec.group_partitions([("b", 2), ("a", 1), ("b", 0), ("b", 2)])
    assert got == (("a", (1,)), ("b", (0, 2)))


def test_transaction_state_partition_is_java_hash_mod() -> None:
    # "a".hashCode() == 97; "" -> 0; "polygenelubricants".hashCode() == Integer.MIN_VALUE,
    # which Kafka's Utils.abs maps to 0.
    assert rec.transaction_state_partition_for("a", 50) == 97 % 50
    assert rec.transaction_state_partition_for("", 50) == 0
    assert rec.transaction_state_partition_for("polygenelubricants", 50) == 0
    # "ab".hashCode() == 97 * 31 + 98 == 3105
    assert rec.transaction_state_partition_for("ab", 50) == 3105 % 50


# ---------------------------------------------------------------------------------------------
# Oracle: kafka-python 3's schema-driven codec, fed our own table of TransactionLogValue.

_VALUE_TABLE = {
    "name": "TransactionLogValue",
    "type": "data",
    "validVersions": "0-1",
    "flexibleVersions": "1+",
    "fields": [
        {"name": "ProducerId", "type": "int64", "versions": "0+"},
        {
            "name": "PreviousProducerId",
            "type": "int64",
            "versions": "1+",
            "taggedVersions": "1+",
            "tag": 0,
            "default": -1,
        },
        {
            "name": "NextProducerId",
            "type": "int64",
            "versions": "1+",
            "taggedVersions": "1+",
            "tag": 1,
            "default": -1,
        },
        {"name": "ProducerEpoch", "type": "int16", "versions": "0+"},
        {"name": "TransactionTimeoutMs", "type": "int32", "versions": "0+"},
        {"name": "TransactionStatus", "type": "int8", "versions": "0+"},
        {
            "name": "TransactionPartitions",
            "type": "[]PartitionsSchema",
            "versions": "0+",
            "nullableVersions": "0+",
            "fields": [
                {"name": "Topic", "type": "string", "versions": "0+"},
                {"name": "PartitionIds", "type": "[]int32", "versions": "0+"},
            ],
        },
        {"name": "TransactionLastUpdateTimestampMs", "type": "int64", "versions": "0+"},
        {"name": "TransactionStartTimestampMs", "type": "int64", "versions": "0+"},
        {
            "name": "ClientTransactionVersion",
            "type": "int16",
            "versions": "1+",
            "taggedVersions": "1+",
            "tag": 2,
            "default": 0,
        },
    ],
}


def _oracle():  # type: ignore[no-untyped-def]
    try:
        from kafka.protocol.data_container import DataContainer
        from kafka.protocol.schemas.fields.struct import StructField
    except ImportError:
        pytest.skip("kafka-python >= 3 (schema-driven codec) is not installed")
    field = StructField(_VALUE_TABLE)

    class Value(DataContainer):
        _struct = field

    field.set_data_class(Value)
    return field


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.parametrize("version", [0, 1])
@pytest.mark.parametrize("partitions", [ONGOING.partitions, None, ()])
def test_value_matches_kafka_python_schema_codec(
    version: int, partitions: tuple[tuple[str, tuple[int, ...]], ...] | None
) -> None:
    field = _oracle()
    value = rec.TransactionLogValue(
        4242, 3, 60000, 1, partitions, 99, 42, previous_producer_id=17, client_transaction_version=2
    )
    data = rec.encode_value(value, version=version)
    assert data[:2] == i16(version)
    flexible = version >= 1
    buf = io.BytesIO(data[2:])
    got = field.decode(buf, version=version, compact=flexible, tagged=flexible)
    assert buf.read() == b""
    assert got.producer_id == 4242
    assert got.producer_epoch == 3
    assert got.transaction_timeout_ms == 60000
    assert got.transaction_status == 1
    assert got.transaction_last_update_timestamp_ms == 99
    assert got.transaction_start_timestamp_ms == 42
    if partitions is None:
        assert got.transaction_partitions is None
    else:
        assert [(p.topic, tuple(p.partition_ids)) for p in got.transaction_partitions] == list(
            partitions
        )
    if flexible:
        assert got.previous_producer_id == 17
        assert got.client_transaction_version == 2
    # And the other way: the oracle's bytes decode to the same value.
    theirs = data[:2] + bytes(field.encode(got, version=version, compact=flexible, tagged=flexible))
    assert theirs == data
    expected = value if flexible else rec.TransactionLogValue(4242, 3, 60000, 1, partitions, 99, 42)
    assert rec.decode_value(theirs) == expected
