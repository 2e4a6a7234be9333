"""Consumer-protocol Subscription/Assignment codecs (kafka-spec.md e.3).

Goal: payloads are Kafka's classic encoding for versions 0-3, decoders accept higher versions
and trailing bytes, and the empty assignment librdkafka sends (zero bytes) decodes.
Method: byte-exact comparison with payloads assembled by hand from the table in e.3;
round trips for every version; truncation at every byte.
"""

from __future__ import annotations

import struct

import pytest

from headwater.coordinator.group.errors import MalformedPayloadError
from headwater.coordinator.group.protocol import (
    Assignment,
    Subscription,
    TopicPartition,
    decode_assignment,
    decode_subscription,
    encode_assignment,
    encode_subscription,
)


def i16(v: int) -> bytes:
    return struct.pack(">h", v)


def i32(v: int) -> bytes:
    return struct.pack(">i", v)


def s(v: str | None) -> bytes:
    if v is None:
        return i16(-1)
    return i16(len(v.encode())) + v.encode()


SUB = Subscription(
    topics=("a", "b"),
    user_data=b"ud",
    owned_partitions=(TopicPartition("a", 0), TopicPartition("a", 2), TopicPartition("b", 1)),
    generation_id=7,
    rack_id="r1",
)
OWNED = i32(2) + s("a") + i32(2) + i32(0) + i32(2) + s("b") + i32(1) + i32(1)


@pytest.mark.parametrize(
    ("version", "expected"),
    [
        (0, i16(0) + i32(2) + s("a") + s("b") + i32(2) + b"ud"),
        (1, i16(1) + i32(2) + s("a") + s("b") + i32(2) + b"ud" + OWNED),
        (2, i16(2) + i32(2) + s("a") + s("b") + i32(2) + b"ud" + OWNED + i32(7)),
        (3, i16(3) + i32(2) + s("a") + s("b") + i32(2) + b"ud" + OWNED + i32(7) + s("r1")),
    ],
)
def test_subscription_bytes_per_version(version: int, expected: bytes) -> None:
    assert encode_subscription(SUB, version) == expected
    got = decode_subscription(expected)
    assert got.topics == SUB.topics and got.user_data == b"ud"
    if version >= 1:
        assert got.owned_partitions == SUB.owned_partitions
    assert got.generation_id == (7 if version >= 2 else -1)
    assert got.rack_id == ("r1" if version >= 3 else None)


def test_subscription_null_user_data_and_higher_version() -> None:
    data = i16(0) + i32(1) + s("t") + i32(-1)
    assert encode_subscription(Subscription(("t",)), 0) == data
    # A v4 payload with a field we do not know: the known prefix decodes.
    v4 = i16(4) + i32(1) + s("t") + i32(-1) + i32(0) + i32(-1) + s(None) + b"future"
    assert decode_subscription(v4) == Subscription(("t",))


def test_subscription_carries_instance_id_outside_the_bytes() -> None:
    sub = decode_subscription(encode_subscription(SUB), group_instance_id="i-1")
    assert sub == SUB and sub.group_instance_id == "i-1"


def test_assignment_bytes_and_empty() -> None:
    a = Assignment((TopicPartition("a", 0), TopicPartition("a", 1)), None)
    expected = i16(0) + i32(1) + s("a") + i32(2) + i32(0) + i32(1) + i32(-1)
    assert encode_assignment(a) == expected
    assert decode_assignment(expected) == a
    assert encode_assignment(a, 3)[:2] == i16(3)
    assert decode_assignment(b"") == Assignment()
    assert decode_assignment(expected + b"trailing") == a


@pytest.mark.parametrize("version", [0, 1, 2, 3])
def test_truncated_subscription_raises(version: int) -> None:
    full = encode_subscription(SUB, version)
    for cut in range(1, len(full)):
        with pytest.raises(MalformedPayloadError):
            decode_subscription(full[:cut])


def test_bad_versions_rejected() -> None:
    with pytest.raises(ValueError):
        encode_subscription(SUB, 4)
    with pytest.raises(MalformedPayloadError):
        decode_subscription(i16(-1))
    with pytest.raises(MalformedPayloadError):
        decode_assignment(i16(-2) + i32(0))
