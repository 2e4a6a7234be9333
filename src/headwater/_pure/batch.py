"""RecordBatch v2 in plain Python: parse and check headers, decode records, build batches.

This is the slow twin of csrc/hw_batch.c and the oracle it is tested against; it favours
plain, checked steps over speed. Layout (kafka-spec.md a.1; big-endian)::

    off  len  field                    covered by CRC
    ---  ---  -----------------------  --------------
      0    8  base_offset              no
      8    4  batch_length             no   bytes after this field (size - 12), >= 49
     12    4  partition_leader_epoch   no
     16    1  magic                    no   must be 2
     17    4  crc                      no   CRC-32C of bytes 21 .. end of batch
     21    2  attributes               yes  bits 0-2 codec, 3 timestamp type,
                                            4 transactional, 5 control, 6 delete horizon
     23    4  last_offset_delta        yes
     27    8  base_timestamp           yes
     35    8  max_timestamp            yes
     43    8  producer_id              yes
     51    2  producer_epoch           yes
     53    4  base_sequence            yes
     57    4  records_count            yes
     61    …  records                  yes  (compressed as one stream if codec != 0)

Each record (kafka-spec.md a.3; "varint" = zig-zag varint, see varint.py)::

    length              varint   bytes from attributes to the end of headers
    attributes          int8     unused
    timestamp_delta     varint   record timestamp - base_timestamp
    offset_delta        varint   record offset - base_offset
    key_length          varint   -1 = null key
    key                 bytes
    value_length        varint   -1 = null value
    value               bytes
    header_count        varint   >= 0
    headers[]:  key_length varint (>= 0), key UTF-8, value_length varint (-1 = null), value

Invariants checked on read: the whole batch lies inside the buffer (else ``TruncatedError``,
a partial tail that more bytes may complete); magic 2, batch_length >= 49, the CRC, attribute
bits 7-15 clear and codec <= 4, every record's length equal to the bytes it spans,
``records_count`` records filling the records section exactly,
``last_offset_delta >= records_count - 1``, offset deltas in [0, last_offset_delta], key and
value lengths >= -1, non-negative header counts and header key lengths. Header keys decode
as UTF-8 with U+FFFD for malformed bytes (as Java does). Failures are ``CorruptRecordError`` (``InvalidCrcError`` for the CRC).
Everything inside a complete batch is corruption, never truncation. Offsets and
timestamps are computed with int64 wrap-around, as Java does. No shared state: thread-safe.
"""

from __future__ import annotations

import struct
import time
from collections.abc import Sequence

from headwater._pure.crc32c import crc32c
from headwater._pure.varint import INT64_MAX, INT64_MIN, decode_varint, encode_varint
from headwater.errors import CorruptRecordError, InvalidCrcError, TruncatedError

Buffer = bytes | bytearray | memoryview

BATCH_HEADER_SIZE = 61
LOG_OVERHEAD = 12  # base_offset + batch_length
MAGIC = 2
# batch_length counts from partition_leader_epoch (byte 12) to the end: at least the rest
# of the header.
MIN_BATCH_LENGTH = BATCH_HEADER_SIZE - LOG_OVERHEAD  # 49

_HEADER = struct.Struct(">qiibIhiqqqhii")
assert _HEADER.size == BATCH_HEADER_SIZE
_LENGTH_POS = 8
_MAGIC_POS = 16
_CRC_POS = 17
_CRC_START = 21  # attributes: the first byte the CRC covers

ATTR_CODEC_MASK = 0x07
ATTR_TIMESTAMP_TYPE = 0x08
ATTR_TRANSACTIONAL = 0x10
ATTR_CONTROL = 0x20
ATTR_DELETE_HORIZON = 0x40
ATTR_KNOWN_BITS = 0x7F  # bits 7-15 are unused and must be 0
MAX_CODEC = 4  # zstd; ids 5-7 are invalid

_INT32_MIN = -(1 << 31)
_INT32_MAX = (1 << 31) - 1
_INT16_MIN = -(1 << 15)
_INT16_MAX = (1 << 15) - 1


def _wrap64(value: int) -> int:
    """Two's-complement int64 wrap-around, as Java's long arithmetic does."""
    return ((value - INT64_MIN) % (1 << 64)) + INT64_MIN


class BatchHeader:
    """The 61-byte RecordBatch v2 header, decoded. Field names follow kafka-spec.md a.1."""

    __slots__ = (
        "base_offset",
        "batch_length",
        "partition_leader_epoch",
        "magic",
        "crc",
        "attributes",
        "last_offset_delta",
        "base_timestamp",
        "max_timestamp",
        "producer_id",
        "producer_epoch",
        "base_sequence",
        "records_count",
    )

    def __init__(
        self,
        base_offset: int,
        batch_length: int,
        partition_leader_epoch: int,
        magic: int,
        crc: int,
        attributes: int,
        last_offset_delta: int,
        base_timestamp: int,
        max_timestamp: int,
        producer_id: int,
        producer_epoch: int,
        base_sequence: int,
        records_count: int,
    ) -> None:
        self.base_offset = base_offset
        self.batch_length = batch_length
        self.partition_leader_epoch = partition_leader_epoch
        self.magic = magic
        self.crc = crc
        self.attributes = attributes
        self.last_offset_delta = last_offset_delta
        self.base_timestamp = base_timestamp
        self.max_timestamp = max_timestamp
        self.producer_id = producer_id
        self.producer_epoch = producer_epoch
        self.base_sequence = base_sequence
        self.records_count = records_count

    @property
    def size(self) -> int:
        """Bytes the whole batch occupies: 12 + batch_length."""
        return LOG_OVERHEAD + self.batch_length

    @property
    def last_offset(self) -> int:
        return _wrap64(self.base_offset + self.last_offset_delta)

    @property
    def compression(self) -> int:
        return self.attributes & ATTR_CODEC_MASK

    @property
    def timestamp_type(self) -> int:
        return (self.attributes >> 3) & 1

    @property
    def is_transactional(self) -> bool:
        return bool(self.attributes & ATTR_TRANSACTIONAL)

    @property
    def is_control(self) -> bool:
        return bool(self.attributes & ATTR_CONTROL)

    def _fields(self) -> tuple[int, ...]:
        return tuple(getattr(self, name) for name in self.__slots__)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, BatchHeader):
            return NotImplemented
        return self._fields() == other._fields()

    def __hash__(self) -> int:
        return hash(self._fields())

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.__slots__)
        return f"BatchHeader({fields})"


class Record:
    """One decoded record: absolute offset and timestamp, key, value, headers."""

    __slots__ = ("offset", "timestamp", "key", "value", "headers")

    def __init__(
        self,
        offset: int,
        timestamp: int,
        key: bytes | None,
        value: bytes | None,
        headers: list[tuple[str, bytes | None]] | None = None,
    ) -> None:
        self.offset = offset
        self.timestamp = timestamp
        self.key = key
        self.value = value
        self.headers = headers if headers is not None else []

    def _fields(self) -> tuple[object, ...]:
        return (self.offset, self.timestamp, self.key, self.value, list(self.headers))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Record):
            return NotImplemented
        return self._fields() == other._fields()

    __hash__ = None  # type: ignore[assignment]  # mutable

    def __repr__(self) -> str:
        return (
            f"Record(offset={self.offset!r}, timestamp={self.timestamp!r}, key={self.key!r}, "
            f"value={self.value!r}, headers={self.headers!r})"
        )


# ---------------------------------------------------------------------------------- read


def parse_batch_header(buf: Buffer, pos: int = 0) -> BatchHeader:
    """Decode the header at ``buf[pos:]`` and check that the batch is whole and plausible.

    Checks, in order: 17 bytes present (through the magic), magic == 2, batch_length >= 49,
    61 header bytes present, the whole batch (12 + batch_length bytes) inside ``buf``. The
    CRC is not checked.

    Raises:
        IndexError: ``pos`` is outside ``[0, len(buf)]`` (a caller bug, not bad data).
        TruncatedError: ``buf`` ends before the header or the batch does.
        CorruptRecordError: bad magic or batch_length.
    """
    view = memoryview(buf).cast("B")
    if not 0 <= pos <= len(view):
        raise IndexError(f"position {pos} outside [0, {len(view)}]")
    available = len(view) - pos
    # Magic first: it says how to read the rest (kafka-spec.md a.1). A tail too short to
    # show the magic is a partial batch, not corruption.
    if available < _MAGIC_POS + 1:
        raise TruncatedError(
            f"batch at position {pos}: {max(available, 0)} bytes, too few to read the magic"
        )
    magic = view[pos + _MAGIC_POS]
    if magic != MAGIC:
        raise CorruptRecordError(f"batch at position {pos} has magic {magic}, not {MAGIC}")
    (batch_length,) = struct.unpack_from(">i", view, pos + _LENGTH_POS)
    if batch_length < MIN_BATCH_LENGTH:
        raise CorruptRecordError(
            f"batch at position {pos} has batch_length {batch_length} < {MIN_BATCH_LENGTH}"
        )
    if available < BATCH_HEADER_SIZE:
        raise TruncatedError(
            f"batch header at position {pos} needs {BATCH_HEADER_SIZE} bytes, {available} left"
        )
    header = BatchHeader(*_HEADER.unpack_from(view, pos))
    if header.size > available:
        raise TruncatedError(
            f"batch at position {pos} needs {header.size} bytes, {available} left"
        )
    return header


def check_batch(buf: Buffer, pos: int = 0) -> BatchHeader:
    """``parse_batch_header`` plus the CRC and, for uncompressed batches, every record.

    Checks after the header, in order: CRC-32C of bytes 21 .. end; records_count >= 0;
    last_offset_delta >= records_count - 1; attribute bits 7-15 clear; codec id <= 4. Then,
    uncompressed only, a structural walk: records_count records filling the records section
    exactly, each one's length equal to the bytes its fields take, offset deltas within
    [0, last_offset_delta], key/value lengths >= -1, header counts and header key lengths
    >= 0. Header keys are not UTF-8 checked (Kafka's broker does not either).

    Raises:
        TruncatedError: ``buf`` ends before the batch does.
        InvalidCrcError: the stored CRC does not match bytes 21 .. end.
        CorruptRecordError: any other inconsistency.
    """
    header = parse_batch_header(buf, pos)
    view = memoryview(buf).cast("B")[pos : pos + header.size]
    actual = crc32c(view[_CRC_START:])
    if actual != header.crc:
        raise InvalidCrcError(
            f"batch at offset {header.base_offset}: stored CRC {header.crc:#010x}, "
            f"computed {actual:#010x}"
        )
    if header.records_count < 0:
        raise CorruptRecordError(f"negative records_count {header.records_count}")
    if header.last_offset_delta < header.records_count - 1:
        raise CorruptRecordError(
            f"last_offset_delta {header.last_offset_delta} < records_count - 1 "
            f"({header.records_count - 1})"
        )
    if header.attributes & ~ATTR_KNOWN_BITS:
        raise CorruptRecordError(f"unknown attribute bits set in {header.attributes:#06x}")
    if header.compression > MAX_CODEC:
        raise CorruptRecordError(f"unknown compression codec id {header.compression}")
    if header.compression == 0:
        for raw in _walk(view[BATCH_HEADER_SIZE:], header.records_count):
            if not 0 <= raw.offset_delta <= header.last_offset_delta:
                raise CorruptRecordError(
                    f"offset delta {raw.offset_delta} outside [0, {header.last_offset_delta}]"
                )
    return header


class _Reader:
    """A bounded cursor: every read stays inside [pos, end) or raises CorruptRecordError.

    Used only inside a complete records section, where running out of bytes means a length
    field lied: corruption, never truncation.
    """

    __slots__ = ("view", "pos", "end")

    def __init__(self, view: memoryview, pos: int, end: int) -> None:
        self.view = view
        self.pos = pos
        self.end = end

    def varint(self, what: str, low: int = _INT32_MIN, high: int = _INT32_MAX) -> int:
        """A zig-zag varint in [low, high]; the default range is Kafka's int32 "varint"."""
        try:
            value, next_pos = decode_varint(self.view[: self.end], self.pos)
        except CorruptRecordError as exc:  # includes TruncatedError: see the class docstring
            raise CorruptRecordError(f"{what}: {exc}") from None
        if not low <= value <= high:
            raise CorruptRecordError(f"{what} {value} is out of range [{low}, {high}]")
        self.pos = next_pos
        return value

    def take(self, n: int, what: str) -> bytes:
        if n > self.end - self.pos:
            raise CorruptRecordError(f"{what} of {n} bytes overruns its record")
        data = bytes(self.view[self.pos : self.pos + n])
        self.pos += n
        return data

    def nullable_bytes(self, what: str) -> bytes | None:
        length = self.varint(f"{what} length", low=-1)
        return None if length == -1 else self.take(length, what)


class _RawRecord:
    """One record's fields as stored: deltas, and header keys still as bytes."""

    __slots__ = ("timestamp_delta", "offset_delta", "key", "value", "headers")

    def __init__(self, timestamp_delta: int, offset_delta: int, key: bytes | None,
                 value: bytes | None, headers: list[tuple[bytes, bytes | None]]) -> None:
        self.timestamp_delta = timestamp_delta
        self.offset_delta = offset_delta
        self.key = key
        self.value = value
        self.headers = headers


def _read_record(reader: _Reader) -> _RawRecord:
    """Read attributes .. headers; ``reader`` is bounded by the record's length field."""
    reader.take(1, "record attributes")
    timestamp_delta = reader.varint("timestamp delta", INT64_MIN, INT64_MAX)
    offset_delta = reader.varint("offset delta")
    key = reader.nullable_bytes("key")
    value = reader.nullable_bytes("value")
    header_count = reader.varint("header count", low=0)
    headers: list[tuple[bytes, bytes | None]] = []
    # Each header takes at least 2 bytes, so this loop ends within the record's length.
    for _ in range(header_count):
        key_length = reader.varint("header key length", low=0)
        header_key = reader.take(key_length, "header key")
        headers.append((header_key, reader.nullable_bytes("header value")))
    return _RawRecord(timestamp_delta, offset_delta, key, value, headers)


def _walk(view: memoryview, count: int) -> list[_RawRecord]:
    """Split a records section into exactly ``count`` records; trailing bytes are corrupt."""
    if count < 0:
        raise CorruptRecordError(f"negative record count {count}")
    out: list[_RawRecord] = []
    pos = 0
    for index in range(count):
        if pos >= len(view):
            raise CorruptRecordError(f"records section ends after {index} of {count} records")
        prefix = _Reader(view, pos, len(view))
        length = prefix.varint(f"record {index} length")
        body = prefix.pos
        if length < 1 or length > len(view) - body:
            raise CorruptRecordError(
                f"record {index} length {length} does not fit the records section "
                f"({len(view) - body} bytes left)"
            )
        reader = _Reader(view, body, body + length)
        out.append(_read_record(reader))
        if reader.pos != reader.end:
            raise CorruptRecordError(
                f"record {index} length {length} but its fields use {reader.pos - body} bytes"
            )
        pos = reader.end
    if pos != len(view):
        raise CorruptRecordError(
            f"{len(view) - pos} bytes left in the records section after {count} records"
        )
    return out


def _utf8(raw: bytes) -> str:
    # Malformed sequences become U+FFFD, as Java's new String(bytes, UTF_8) does in Kafka's
    # DefaultRecord.readHeaders: a bad header key never makes a batch unreadable.
    return raw.decode("utf-8", errors="replace")


def decode_records(
    records: Buffer,
    count: int,
    base_offset: int,
    base_timestamp: int,
    log_append_time: int = -1,
) -> list[Record]:
    """Decode ``count`` records from an uncompressed records section.

    The section must hold exactly ``count`` records: trailing bytes are corrupt, as in Kafka
    ("Incorrect number of records" / "Invalid record size").

    Args:
        records: the records section (batch bytes 61 .. end, decompressed).
        count: records_count from the batch header.
        base_offset: the batch's base_offset; record offsets are base_offset + offset_delta.
        base_timestamp: the batch's base_timestamp.
        log_append_time: if >= 0, every record's timestamp (LogAppendTime batches).

    Returns:
        The records, in order.

    Raises:
        CorruptRecordError: any inconsistency; nothing outside ``records`` is read. Header
            keys that are not valid UTF-8 are decoded with U+FFFD replacements, as Java does.
    """
    out = []
    for raw in _walk(memoryview(records).cast("B"), count):
        timestamp = (
            log_append_time
            if log_append_time >= 0
            else _wrap64(base_timestamp + raw.timestamp_delta)
        )
        headers = [(_utf8(k), v) for k, v in raw.headers]
        out.append(Record(_wrap64(base_offset + raw.offset_delta), timestamp, raw.key,
                          raw.value, headers))
    return out


# --------------------------------------------------------------------------------- build


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _check_int(value: int, low: int, high: int, what: str) -> None:
    if not low <= value <= high:
        raise OverflowError(f"{what} {value} is out of range [{low}, {high}]")


def _encode_nullable(data: Buffer | None) -> bytes:
    if data is None:
        return encode_varint(-1)
    raw = bytes(data)
    return encode_varint(len(raw)) + raw


def _encode_record(
    offset_delta: int,
    timestamp_delta: int,
    key: Buffer | None,
    value: Buffer | None,
    headers: Sequence[tuple[str, Buffer | None]] | None,
) -> bytes:
    body = bytearray(b"\x00")  # attributes
    body += encode_varint(timestamp_delta)
    body += encode_varint(offset_delta)
    body += _encode_nullable(key)
    body += _encode_nullable(value)
    headers = headers or ()
    body += encode_varint(len(headers))
    for header_key, header_value in headers:
        raw_key = header_key.encode("utf-8")
        body += encode_varint(len(raw_key)) + raw_key
        body += _encode_nullable(header_value)
    return encode_varint(len(body)) + bytes(body)


def _assemble(
    records: bytes,
    count: int,
    *,
    base_offset: int,
    partition_leader_epoch: int,
    attributes: int,
    last_offset_delta: int,
    base_timestamp: int,
    max_timestamp: int,
    producer_id: int,
    producer_epoch: int,
    base_sequence: int,
) -> bytes:
    """Write the header with a zero CRC, append the records, then patch the CRC in."""
    _check_int(base_offset, INT64_MIN, INT64_MAX, "base_offset")
    _check_int(partition_leader_epoch, _INT32_MIN, _INT32_MAX, "partition_leader_epoch")
    _check_int(attributes, _INT16_MIN, _INT16_MAX, "attributes")
    _check_int(base_timestamp, INT64_MIN, INT64_MAX, "base_timestamp")
    _check_int(max_timestamp, INT64_MIN, INT64_MAX, "max_timestamp")
    _check_int(producer_id, INT64_MIN, INT64_MAX, "producer_id")
    _check_int(producer_epoch, _INT16_MIN, _INT16_MAX, "producer_epoch")
    _check_int(base_sequence, _INT32_MIN, _INT32_MAX, "base_sequence")
    batch_length = BATCH_HEADER_SIZE - LOG_OVERHEAD + len(records)
    _check_int(batch_length, 0, _INT32_MAX, "batch_length")
    out = bytearray(
        _HEADER.pack(
            base_offset, batch_length, partition_leader_epoch, MAGIC, 0, attributes,
            last_offset_delta, base_timestamp, max_timestamp, producer_id, producer_epoch,
            base_sequence, count,
        )
    )
    out += records
    struct.pack_into(">I", out, _CRC_POS, crc32c(memoryview(out)[_CRC_START:]))
    return bytes(out)


def build_batch(
    values: Sequence[Buffer | None],
    keys: Sequence[Buffer | None] | None = None,
    headers: Sequence[Sequence[tuple[str, Buffer | None]] | None] | None = None,
    timestamps: Sequence[int] | None = None,
    *,
    base_offset: int = 0,
    timestamp: int = -1,
    producer_id: int = -1,
    producer_epoch: int = -1,
    base_sequence: int = -1,
    partition_leader_epoch: int = -1,
    attributes: int = 0,
) -> bytes:
    """Build one uncompressed RecordBatch v2; record i gets offset delta i.

    Args:
        values: record values (None = tombstone).
        keys: record keys, same length as ``values``; None = all keys null.
        headers: per-record header lists of ``(str, bytes | None)``; None = no headers.
        timestamps: per-record timestamps; None = ``timestamp`` for all.
        base_offset, producer_id, producer_epoch, base_sequence, partition_leader_epoch:
            header fields, written as given.
        timestamp: timestamp for every record when ``timestamps`` is None; -1 = now (ms).
        attributes: transactional/control/timestamp-type bits; codec bits must be 0.

    Returns:
        The batch bytes. base_timestamp is the first record's timestamp, max_timestamp the
        largest.

    Raises:
        ValueError: no records, mismatched sequence lengths, or codec bits in attributes.
        OverflowError: a field does not fit its wire width.
    """
    count = len(values)
    if count == 0:
        raise ValueError("a batch needs at least one record")
    if keys is not None and len(keys) != count:
        raise ValueError(f"{len(keys)} keys for {count} values")
    if headers is not None and len(headers) != count:
        raise ValueError(f"{len(headers)} header lists for {count} values")
    if timestamps is not None and len(timestamps) != count:
        raise ValueError(f"{len(timestamps)} timestamps for {count} values")
    if attributes & ATTR_CODEC_MASK:
        raise ValueError("build_batch writes uncompressed batches: codec bits must be 0")
    _check_int(count - 1, 0, _INT32_MAX, "last_offset_delta")
    if timestamps is None:
        ts = _now_ms() if timestamp == -1 else timestamp
        record_timestamps = [ts] * count
    else:
        record_timestamps = list(timestamps)
    base_timestamp = record_timestamps[0]
    records = bytearray()
    for i in range(count):
        records += _encode_record(
            i,
            # Java's long subtraction wraps; decoding wraps back, so any pair round-trips.
            _wrap64(record_timestamps[i] - base_timestamp),
            None if keys is None else keys[i],
            values[i],
            None if headers is None else headers[i],
        )
    return _assemble(
        bytes(records),
        count,
        base_offset=base_offset,
        partition_leader_epoch=partition_leader_epoch,
        attributes=attributes,
        last_offset_delta=count - 1,
        base_timestamp=base_timestamp,
        max_timestamp=max(record_timestamps),
        producer_id=producer_id,
        producer_epoch=producer_epoch,
        base_sequence=base_sequence,
    )


CONTROL_ABORT = 0
CONTROL_COMMIT = 1


def build_control_batch(
    control_type: int,
    *,
    producer_id: int,
    producer_epoch: int,
    coordinator_epoch: int,
    timestamp: int,
    base_offset: int = 0,
    partition_leader_epoch: int = -1,
) -> bytes:
    """A transaction marker batch (kafka-spec.md a.5).

    Attributes 0x30 (transactional | control), base_sequence -1, one record whose key is
    ``int16 version 0, int16 control_type`` and whose value is
    ``int16 version 0, int32 coordinator_epoch``.

    Raises:
        OverflowError: a field does not fit its wire width.
    """
    _check_int(control_type, _INT16_MIN, _INT16_MAX, "control_type")
    _check_int(coordinator_epoch, _INT32_MIN, _INT32_MAX, "coordinator_epoch")
    key = struct.pack(">hh", 0, control_type)
    value = struct.pack(">hi", 0, coordinator_epoch)
    record = _encode_record(0, 0, key, value, None)
    return _assemble(
        record,
        1,
        base_offset=base_offset,
        partition_leader_epoch=partition_leader_epoch,
        attributes=ATTR_TRANSACTIONAL | ATTR_CONTROL,
        last_offset_delta=0,
        base_timestamp=timestamp,
        max_timestamp=timestamp,
        producer_id=producer_id,
        producer_epoch=producer_epoch,
        base_sequence=-1,
    )
