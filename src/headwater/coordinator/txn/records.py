"""``__transaction_state`` record keys and values, byte for byte as Kafka writes them.

Each record's key and value start with an int16 version (kafka-spec.md d.1). A null value is a
tombstone: the transactional id expired and the compacted partition forgets it. Layouts:

    TransactionLogKey (version 0, the only one)
      int16   version = 0
      STRING  transactional_id          int16 length + UTF-8

    TransactionLogValue v0 (written: Kafka writes v0 unless transaction.version 2 is enabled)
      int16   version = 0
      INT64   producer_id
      INT16   producer_epoch
      INT32   transaction_timeout_ms
      INT8    transaction_status        TransactionState id (Empty 0 ... PrepareEpochFence 7)
      ARRAY   partitions                int32 count, -1 = null (written null in Empty only)
        STRING  topic
        ARRAY   INT32 partition_ids
      INT64   last_update_timestamp_ms
      INT64   start_timestamp_ms        -1 = no transaction started

    TransactionLogValue v1 (read; written only on request): the same fields, flexible
      (COMPACT_STRING / COMPACT_ARRAY: unsigned varint length + 1, 0 = null; a TAGGED_FIELDS
      section after each partitions entry and at the end). Top-level tags:
        0  INT64  previous_producer_id      default -1
        1  INT64  next_producer_id          default -1
        2  INT16  client_transaction_version  default 0

Keys of any version other than 0 decode as ``UnknownKey`` (Kafka's loader skips them). A value
version above 1 is an error, as in Kafka (KIP-915 says new data goes in tagged fields only).

Every read is bounded by the buffer: a short or inconsistent buffer raises
``MalformedPayloadError``, never an IndexError or a struct.error.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from dataclasses import dataclass

from headwater.coordinator.group.records import offsets_partition_for
from headwater.coordinator.txn.errors import MalformedPayloadError

TRANSACTION_LOG_KEY_VERSION = 0
TRANSACTION_LOG_VALUE_VERSION = 0
TRANSACTION_LOG_VALUE_MAX_VERSION = 1

_I8 = struct.Struct(">b")
_I16 = struct.Struct(">h")
_I32 = struct.Struct(">i")
_I64 = struct.Struct(">q")

_TAG_PREVIOUS_PRODUCER_ID = 0
_TAG_NEXT_PRODUCER_ID = 1
_TAG_CLIENT_TRANSACTION_VERSION = 2


@dataclass(frozen=True)
class TransactionLogKey:
    transactional_id: str


@dataclass(frozen=True)
class UnknownKey:
    """A key of a record type this coordinator does not own (key version != 0)."""

    version: int


@dataclass(frozen=True)
class TransactionLogValue:
    """One transactional id's metadata as persisted (Kafka's field names, snake_case).

    ``partitions`` is None for Empty (Kafka writes a null array there), else topics in
    ascending order, each with ascending partition ids.
    """

    producer_id: int
    producer_epoch: int
    transaction_timeout_ms: int
    transaction_status: int
    partitions: tuple[tuple[str, tuple[int, ...]], ...] | None
    last_update_timestamp_ms: int
    start_timestamp_ms: int
    previous_producer_id: int = -1
    next_producer_id: int = -1
    client_transaction_version: int = 0


def group_partitions(
    partitions: Iterable[tuple[str, int]],
) -> tuple[tuple[str, tuple[int, ...]], ...]:
    """``{(topic, partition)}`` as ``((topic, (p0, p1, ...)), ...)``, both levels sorted."""
    by_topic: dict[str, list[int]] = {}
    for topic, partition in partitions:
        by_topic.setdefault(topic, []).append(partition)
    return tuple((t, tuple(sorted(set(ps)))) for t, ps in sorted(by_topic.items()))


def transaction_state_partition_for(transactional_id: str, num_partitions: int) -> int:
    """The ``__transaction_state`` partition that owns ``transactional_id`` (spec d.1).

    ``abs(javaStringHashCode(id)) % transaction.state.log.num.partitions``: the same function
    as for group ids in ``__consumer_offsets``.
    """
    return offsets_partition_for(transactional_id, num_partitions)


# ----------------------------------------------------------------------------------------------
# Encoding.


def _string(buf: bytearray, value: str) -> None:
    data = value.encode("utf-8")
    if len(data) > 0x7FFF:
        raise ValueError(f"string of {len(data)} bytes does not fit an int16 length")
    buf += _I16.pack(len(data))
    buf += data


def _uvarint(buf: bytearray, value: int) -> None:
    assert value >= 0
    while value >= 0x80:
        buf.append((value & 0x7F) | 0x80)
        value >>= 7
    buf.append(value)


def _compact_string(buf: bytearray, value: str) -> None:
    data = value.encode("utf-8")
    _uvarint(buf, len(data) + 1)
    buf += data


_V0_HEAD = struct.Struct(">hqhib")  # version 0, producer id, epoch, timeout, status
_V0_TAIL = struct.Struct(">qq")  # last update, start


def encode_partitions_v0(partitions: Iterable[tuple[str, int]] | None) -> bytes:
    """The v0 ``partitions`` array of a TransactionLogValue: topics and ids ascending, None
    as the null array (count -1)."""
    if partitions is None:
        return _I32.pack(-1)
    grouped = group_partitions(partitions)
    buf = bytearray(_I32.pack(len(grouped)))
    for topic, ids in grouped:
        _string(buf, topic)
        buf += _I32.pack(len(ids))
        buf += struct.pack(f">{len(ids)}i", *ids)
    return bytes(buf)


def encode_value_v0(
    producer_id: int,
    producer_epoch: int,
    transaction_timeout_ms: int,
    transaction_status: int,
    partitions_v0: bytes,
    last_update_timestamp_ms: int,
    start_timestamp_ms: int,
) -> bytes:
    """TransactionLogValue v0 from its fields, the partitions already encoded by
    ``encode_partitions_v0`` (the coordinator keeps that encoding while they don't change)."""
    return b"".join((
        _V0_HEAD.pack(0, producer_id, producer_epoch, transaction_timeout_ms, transaction_status),
        partitions_v0,
        _V0_TAIL.pack(last_update_timestamp_ms, start_timestamp_ms),
    ))


def encode_key(transactional_id: str) -> bytes:
    """TransactionLogKey v0."""
    buf = bytearray(_I16.pack(TRANSACTION_LOG_KEY_VERSION))
    _string(buf, transactional_id)
    return bytes(buf)


def encode_value(value: TransactionLogValue, version: int = TRANSACTION_LOG_VALUE_VERSION) -> bytes:
    """TransactionLogValue v0 (default, what Kafka writes for transaction.version < 2) or v1.

    v0 cannot carry the tagged fields; they are dropped, as Kafka drops them.
    """
    assert 0 <= version <= TRANSACTION_LOG_VALUE_MAX_VERSION, version
    if version == 0:
        return encode_value_v0(
            value.producer_id,
            value.producer_epoch,
            value.transaction_timeout_ms,
            value.transaction_status,
            encode_partitions_v0(value.partitions and [(t, p) for t, ps in value.partitions for p in ps]),
            value.last_update_timestamp_ms,
            value.start_timestamp_ms,
        )
    buf = bytearray(_I16.pack(version))
    buf += _I64.pack(value.producer_id)
    buf += _I16.pack(value.producer_epoch)
    buf += _I32.pack(value.transaction_timeout_ms)
    buf += _I8.pack(value.transaction_status)
    parts = value.partitions
    _uvarint(buf, 0 if parts is None else len(parts) + 1)
    for topic, ids in parts or ():
        _compact_string(buf, topic)
        _uvarint(buf, len(ids) + 1)
        for p in ids:
            buf += _I32.pack(p)
        _uvarint(buf, 0)  # the entry's tagged fields: none
    buf += _I64.pack(value.last_update_timestamp_ms)
    buf += _I64.pack(value.start_timestamp_ms)
    tags: list[tuple[int, bytes]] = []
    if value.previous_producer_id != -1:
        tags.append((_TAG_PREVIOUS_PRODUCER_ID, _I64.pack(value.previous_producer_id)))
    if value.next_producer_id != -1:
        tags.append((_TAG_NEXT_PRODUCER_ID, _I64.pack(value.next_producer_id)))
    if value.client_transaction_version != 0:
        tags.append(
            (_TAG_CLIENT_TRANSACTION_VERSION, _I16.pack(value.client_transaction_version))
        )
    _uvarint(buf, len(tags))
    for tag, data in tags:
        _uvarint(buf, tag)
        _uvarint(buf, len(data))
        buf += data
    return bytes(buf)


# ----------------------------------------------------------------------------------------------
# Decoding.


class _Reader:
    """Bounded reads of classic and compact fields."""

    __slots__ = ("_data", "_pos")

    def __init__(self, data: bytes) -> None:
        self._data = bytes(data)
        self._pos = 0

    @property
    def remaining(self) -> int:
        return len(self._data) - self._pos

    def take(self, n: int) -> bytes:
        if n < 0 or n > self.remaining:
            raise MalformedPayloadError(
                f"need {n} bytes at position {self._pos}, record has {len(self._data)}"
            )
        out = self._data[self._pos : self._pos + n]
        self._pos += n
        return out

    def int8(self) -> int:
        value: int = _I8.unpack(self.take(1))[0]
        return value

    def int16(self) -> int:
        value: int = _I16.unpack(self.take(2))[0]
        return value

    def int32(self) -> int:
        value: int = _I32.unpack(self.take(4))[0]
        return value

    def int64(self) -> int:
        value: int = _I64.unpack(self.take(8))[0]
        return value

    def uvarint(self) -> int:
        value = 0
        for shift in range(0, 35, 7):
            byte = self.take(1)[0]
            value |= (byte & 0x7F) << shift
            if not byte & 0x80:
                return value
        raise MalformedPayloadError("unsigned varint longer than 5 bytes")

    def _text(self, raw: bytes) -> str:
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise MalformedPayloadError(f"string is not UTF-8: {exc}") from None

    def string(self) -> str:
        n = self.int16()
        if n < 0:
            raise MalformedPayloadError(f"string length {n} where a string is required")
        return self._text(self.take(n))

    def compact_string(self) -> str:
        n = self.uvarint()
        if n == 0:
            raise MalformedPayloadError("null where a string is required")
        return self._text(self.take(n - 1))

    def count(self, flexible: bool, nullable: bool, min_element_bytes: int) -> int | None:
        """An array's element count (None = null), bounded by the bytes left."""
        n = (self.uvarint() - 1) if flexible else self.int32()
        if n == -1:
            if not nullable:
                raise MalformedPayloadError("null where an array is required")
            return None
        if n < 0 or n * min_element_bytes > self.remaining:
            raise MalformedPayloadError(f"array count {n} with {self.remaining} bytes left")
        return n


def decode_key(data: bytes) -> TransactionLogKey | UnknownKey:
    """Decode a ``__transaction_state`` key; trailing bytes are ignored.

    Raises:
        MalformedPayloadError: the key is truncated or its version is negative.
    """
    r = _Reader(data)
    version = r.int16()
    if version < 0:
        raise MalformedPayloadError(f"__transaction_state key version {version}")
    if version != TRANSACTION_LOG_KEY_VERSION:
        return UnknownKey(version)
    return TransactionLogKey(r.string())


def decode_value(data: bytes) -> TransactionLogValue:
    """Decode TransactionLogValue v0 or v1 (unknown tags are skipped).

    Raises:
        MalformedPayloadError: truncated bytes, a bad length, or a version outside 0-1.
    """
    r = _Reader(data)
    version = r.int16()
    if not 0 <= version <= TRANSACTION_LOG_VALUE_MAX_VERSION:
        raise MalformedPayloadError(f"TransactionLogValue version {version}")
    flexible = version >= 1
    producer_id = r.int64()
    producer_epoch = r.int16()
    timeout_ms = r.int32()
    status = r.int8()
    n = r.count(flexible, nullable=True, min_element_bytes=3 if flexible else 6)
    partitions: tuple[tuple[str, tuple[int, ...]], ...] | None = None
    if n is not None:
        entries = []
        for _ in range(n):
            topic = r.compact_string() if flexible else r.string()
            count = r.count(flexible, nullable=False, min_element_bytes=4)
            assert count is not None
            ids = tuple(r.int32() for _ in range(count))
            if flexible:
                _skip_tags(r)
            entries.append((topic, ids))
        partitions = tuple(entries)
    last_update = r.int64()
    start = r.int64()
    previous_producer_id = next_producer_id = -1
    client_transaction_version = 0
    if flexible:
        for _ in range(r.uvarint()):
            tag = r.uvarint()
            field = _Reader(r.take(r.uvarint()))
            if tag == _TAG_PREVIOUS_PRODUCER_ID:
                previous_producer_id = field.int64()
            elif tag == _TAG_NEXT_PRODUCER_ID:
                next_producer_id = field.int64()
            elif tag == _TAG_CLIENT_TRANSACTION_VERSION:
                client_transaction_version = field.int16()
    return TransactionLogValue(
        producer_id=producer_id,
        producer_epoch=producer_epoch,
        transaction_timeout_ms=timeout_ms,
        transaction_status=status,
        partitions=partitions,
        last_update_timestamp_ms=last_update,
        start_timestamp_ms=start,
        previous_producer_id=previous_producer_id,
        next_producer_id=next_producer_id,
        client_transaction_version=client_transaction_version,
    )


def _skip_tags(r: _Reader) -> None:
    for _ in range(r.uvarint()):
        r.uvarint()
        r.take(r.uvarint())
