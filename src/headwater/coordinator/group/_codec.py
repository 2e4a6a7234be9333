"""Kafka's primitive types for the group coordinator's payloads (kafka-spec.md g.3).

Classic (non-flexible) encoding, used by the consumer-protocol payloads and by the
``__consumer_offsets`` records we write:

    INT16/INT32/INT64   big-endian two's complement
    STRING              int16 length + UTF-8 bytes (length -1 = null, nullable only)
    BYTES               int32 length + bytes (length -1 = null, nullable only)
    ARRAY               int32 count + elements (count -1 = null)

Flexible ("compact") encoding, only read here (OffsetCommitValue v4, GroupMetadataValue v4):

    COMPACT_STRING/BYTES/ARRAY  unsigned varint (length + 1), 0 = null, then the data
    TAGGED_FIELDS               unsigned varint count, then {uvarint tag, uvarint size, bytes}

Every read is bounded by the buffer: a short buffer raises MalformedPayloadError, never an
IndexError or a struct.error.
"""

from __future__ import annotations

import struct

from headwater.coordinator.group.errors import MalformedPayloadError

_I16 = struct.Struct(">h")
_I32 = struct.Struct(">i")
_I64 = struct.Struct(">q")


class Writer:
    """Appends classic-encoded fields to a bytearray."""

    __slots__ = ("buf",)

    def __init__(self) -> None:
        self.buf = bytearray()

    def int16(self, value: int) -> None:
        self.buf += _I16.pack(value)

    def int32(self, value: int) -> None:
        self.buf += _I32.pack(value)

    def int64(self, value: int) -> None:
        self.buf += _I64.pack(value)

    def string(self, value: str | None) -> None:
        if value is None:
            self.buf += _I16.pack(-1)
            return
        data = value.encode("utf-8")
        if len(data) > 0x7FFF:
            raise ValueError(f"string of {len(data)} bytes does not fit an int16 length")
        self.buf += _I16.pack(len(data))
        self.buf += data

    def bytes_(self, value: bytes | None) -> None:
        if value is None:
            self.buf += _I32.pack(-1)
            return
        self.buf += _I32.pack(len(value))
        self.buf += value

    def finish(self) -> bytes:
        return bytes(self.buf)


class Reader:
    """Reads classic and compact fields from a buffer, bounded by its end."""

    __slots__ = ("_data", "_pos")

    def __init__(self, data: bytes | bytearray | memoryview) -> None:
        self._data = bytes(data)
        self._pos = 0

    @property
    def remaining(self) -> int:
        return len(self._data) - self._pos

    def _take(self, n: int) -> bytes:
        if n < 0 or self._pos + n > len(self._data):
            raise MalformedPayloadError(
                f"need {n} bytes at position {self._pos}, buffer has {len(self._data)}"
            )
        out = self._data[self._pos : self._pos + n]
        self._pos += n
        return out

    def int16(self) -> int:
        value: int = _I16.unpack(self._take(2))[0]
        return value

    def int32(self) -> int:
        value: int = _I32.unpack(self._take(4))[0]
        return value

    def int64(self) -> int:
        value: int = _I64.unpack(self._take(8))[0]
        return value

    def _decode(self, raw: bytes) -> str:
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise MalformedPayloadError(f"string is not UTF-8: {exc}") from None

    def nullable_string(self) -> str | None:
        n = self.int16()
        if n == -1:
            return None
        if n < 0:
            raise MalformedPayloadError(f"negative string length {n}")
        return self._decode(self._take(n))

    def string(self) -> str:
        value = self.nullable_string()
        if value is None:
            raise MalformedPayloadError("null where a non-nullable string is required")
        return value

    def nullable_bytes(self) -> bytes | None:
        n = self.int32()
        if n == -1:
            return None
        if n < 0:
            raise MalformedPayloadError(f"negative bytes length {n}")
        return self._take(n)

    def bytes_(self) -> bytes:
        value = self.nullable_bytes()
        if value is None:
            raise MalformedPayloadError("null where non-nullable bytes are required")
        return value

    def array_count(self) -> int:
        """An ARRAY's count; -1 (null) reads as 0 elements. Bounded by the bytes left."""
        n = self.int32()
        if n == -1:
            return 0
        if n < 0 or n > self.remaining:
            raise MalformedPayloadError(f"array count {n} with {self.remaining} bytes left")
        return n

    # Compact (flexible-version) types.

    def uvarint(self) -> int:
        value = 0
        for shift in range(0, 35, 7):
            byte = self._take(1)[0]
            value |= (byte & 0x7F) << shift
            if not byte & 0x80:
                return value
        raise MalformedPayloadError("unsigned varint longer than 5 bytes")

    def compact_nullable_string(self) -> str | None:
        n = self.uvarint()
        if n == 0:
            return None
        return self._decode(self._take(n - 1))

    def compact_string(self) -> str:
        value = self.compact_nullable_string()
        if value is None:
            raise MalformedPayloadError("null where a non-nullable string is required")
        return value

    def compact_bytes(self) -> bytes:
        n = self.uvarint()
        if n == 0:
            raise MalformedPayloadError("null where non-nullable bytes are required")
        return self._take(n - 1)

    def compact_array_count(self) -> int:
        n = self.uvarint()
        if n == 0:
            return 0
        if n - 1 > self.remaining:
            raise MalformedPayloadError(f"array count {n - 1} with {self.remaining} bytes left")
        return n - 1

    def tagged_fields(self) -> None:
        """Skip a tagged-field section (we know no tags of these records)."""
        for _ in range(self.uvarint()):
            self.uvarint()
            self._take(self.uvarint())
