"""Kafka wire primitives: bounds-checked readers and writers (kafka-spec g.3). No I/O.

Readers take `(buf, pos)` and return `(value, new_pos)`; `buf` is any bytes-like object, ideally a
memoryview so that RECORDS come back as zero-copy slices. Every reader checks the remaining length
before touching or allocating anything and raises `ProtocolDecodeError` on short or invalid input,
never IndexError, struct.error or a huge allocation: a length or array count is compared with the
bytes left *before* a string is sliced or a list is built.

Writers append to a `bytearray` and raise `ProtocolEncodeError` for values the format cannot carry.

Layouts (big-endian unless stated):

    int8/int16/int32/int64     1/2/4/8 bytes, two's complement
    uint16/uint32              2/4 bytes
    float64                    8 bytes IEEE-754
    bool                       1 byte, 0 = false, anything else = true (Kafka reads `!= 0`)
    uuid                       16 bytes (kept as 16 raw bytes here)
    unsigned varint            LEB128, 7 bits per byte, low group first; at most 5 bytes (32 bits)
    varint / varlong           zig-zag then LEB128; at most 5 / 10 bytes
    string                     int16 N (>= 0) + N bytes UTF-8; nullable: N = -1 is null
    compact string             uvarint N+1 + N bytes; 0 is null (nullable only)
    bytes                      int32 N + N bytes; nullable: N = -1 is null
    compact bytes              uvarint N+1 + N bytes; 0 is null
    array                      int32 count (-1 = null) + elements
    compact array              uvarint count+1 (0 = null) + elements
    tagged fields              uvarint n, then n x (uvarint tag, uvarint size, size bytes)

Thread-safety: pure functions, no shared state.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any

from headwater.protocol.errors import ProtocolDecodeError, ProtocolEncodeError

# Upper bound on any single array count, whatever the frame size. Together with the per-element
# minimum size check (count <= remaining bytes / smallest element) it bounds the memory a hostile
# frame can make us allocate to O(frame size); Kafka's own limit is the 100 MiB request size.
MAX_ARRAY_COUNT = 1 << 20

Reader = Callable[[Any, int], tuple[Any, int]]
Writer = Callable[[bytearray, Any], None]

_I8 = struct.Struct(">b")
_I16 = struct.Struct(">h")
_I32 = struct.Struct(">i")
_I64 = struct.Struct(">q")
_U16 = struct.Struct(">H")
_U32 = struct.Struct(">I")
_F64 = struct.Struct(">d")


def _short(what: str, need: int, buf: Any, pos: int) -> ProtocolDecodeError:
    return ProtocolDecodeError(
        f"truncated {what}: need {need} bytes at offset {pos}, have {max(0, len(buf) - pos)}"
    )


def _fixed_reader(st: struct.Struct, what: str) -> Reader:
    size = st.size
    unpack_from = st.unpack_from

    def read(buf: Any, pos: int) -> tuple[Any, int]:
        end = pos + size
        if end > len(buf):
            raise _short(what, size, buf, pos)
        return unpack_from(buf, pos)[0], end

    read.__name__ = f"read_{what}"
    return read


def _fixed_writer(st: struct.Struct, what: str) -> Writer:
    pack = st.pack

    def write(out: bytearray, value: Any) -> None:
        try:
            out += pack(value)
        except (struct.error, TypeError) as exc:
            raise ProtocolEncodeError(f"cannot encode {value!r} as {what}: {exc}") from None

    write.__name__ = f"write_{what}"
    return write


read_int8 = _fixed_reader(_I8, "int8")
read_int16 = _fixed_reader(_I16, "int16")
read_int32 = _fixed_reader(_I32, "int32")
read_int64 = _fixed_reader(_I64, "int64")
read_uint16 = _fixed_reader(_U16, "uint16")
read_uint32 = _fixed_reader(_U32, "uint32")
read_float64 = _fixed_reader(_F64, "float64")
write_int8 = _fixed_writer(_I8, "int8")
write_int16 = _fixed_writer(_I16, "int16")
write_int32 = _fixed_writer(_I32, "int32")
write_int64 = _fixed_writer(_I64, "int64")
write_uint16 = _fixed_writer(_U16, "uint16")
write_uint32 = _fixed_writer(_U32, "uint32")
write_float64 = _fixed_writer(_F64, "float64")


def read_bool(buf: Any, pos: int) -> tuple[bool, int]:
    if pos >= len(buf):
        raise _short("bool", 1, buf, pos)
    return buf[pos] != 0, pos + 1


def write_bool(out: bytearray, value: Any) -> None:
    out.append(1 if value else 0)


_ZERO_UUID = bytes(16)


def read_uuid(buf: Any, pos: int) -> tuple[bytes, int]:
    end = pos + 16
    if end > len(buf):
        raise _short("uuid", 16, buf, pos)
    return bytes(buf[pos:end]), end


def write_uuid(out: bytearray, value: Any) -> None:
    if value is None:
        value = _ZERO_UUID
    elif not isinstance(value, (bytes, bytearray, memoryview)):
        value = getattr(value, "bytes", value)  # uuid.UUID
    if len(value) != 16:
        raise ProtocolEncodeError(f"uuid must be 16 bytes, got {len(value)}")
    out += value


# ---- varints -----------------------------------------------------------------------------------


def _read_uvar(buf: Any, pos: int, max_bytes: int, what: str) -> tuple[int, int]:
    result = 0
    shift = 0
    n = len(buf)
    for _ in range(max_bytes):
        if pos >= n:
            raise _short(what, 1, buf, pos)
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return result, pos
        shift += 7
    raise ProtocolDecodeError(f"{what} longer than {max_bytes} bytes at offset {pos - max_bytes}")


def read_unsigned_varint(buf: Any, pos: int) -> tuple[int, int]:
    """LEB128 up to 32 bits (5 bytes). Fast path for the one-byte case (lengths < 128)."""
    if pos < len(buf):
        b = buf[pos]
        if b < 0x80:
            return b, pos + 1
    value, pos = _read_uvar(buf, pos, 5, "unsigned varint")
    if value > 0xFFFFFFFF:
        raise ProtocolDecodeError("unsigned varint exceeds 32 bits")
    return value, pos


def write_unsigned_varint(out: bytearray, value: int) -> None:
    if value < 0x80:
        if value < 0:
            raise ProtocolEncodeError(f"unsigned varint cannot be negative: {value}")
        out.append(value)
        return
    if value > 0xFFFFFFFF:
        raise ProtocolEncodeError(f"unsigned varint exceeds 32 bits: {value}")
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)


def read_varint(buf: Any, pos: int) -> tuple[int, int]:
    """Zig-zag int32 (at most 5 bytes)."""
    raw, pos = _read_uvar(buf, pos, 5, "varint")
    if raw > 0xFFFFFFFF:
        raise ProtocolDecodeError("varint exceeds 32 bits")
    return (raw >> 1) ^ -(raw & 1), pos


def read_varlong(buf: Any, pos: int) -> tuple[int, int]:
    """Zig-zag int64 (at most 10 bytes)."""
    raw, pos = _read_uvar(buf, pos, 10, "varlong")
    if raw > 0xFFFFFFFFFFFFFFFF:
        raise ProtocolDecodeError("varlong exceeds 64 bits")
    return (raw >> 1) ^ -(raw & 1), pos


def _write_zigzag(out: bytearray, value: int, bits: int) -> None:
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    if not lo <= value <= hi:
        raise ProtocolEncodeError(f"{value} does not fit a {bits}-bit varint")
    raw = (value << 1) ^ (value >> (bits - 1))
    raw &= (1 << bits) - 1
    while raw >= 0x80:
        out.append((raw & 0x7F) | 0x80)
        raw >>= 7
    out.append(raw)


def write_varint(out: bytearray, value: int) -> None:
    _write_zigzag(out, value, 32)


def write_varlong(out: bytearray, value: int) -> None:
    _write_zigzag(out, value, 64)


# ---- strings and bytes -------------------------------------------------------------------------


def _utf8(buf: Any, pos: int, end: int) -> str:
    try:
        return str(buf[pos:end], "utf-8")
    except UnicodeDecodeError as exc:
        raise ProtocolDecodeError(f"invalid UTF-8 in string at offset {pos}: {exc}") from None


def _take(buf: Any, pos: int, n: int, what: str) -> int:
    end = pos + n
    if end > len(buf):
        raise _short(what, n, buf, pos)
    return end


def read_string(buf: Any, pos: int) -> tuple[str, int]:
    n, pos = read_int16(buf, pos)
    if n < 0:
        raise ProtocolDecodeError(f"non-nullable string has length {n}")
    end = _take(buf, pos, n, "string")
    return _utf8(buf, pos, end), end


def read_nullable_string(buf: Any, pos: int) -> tuple[str | None, int]:
    n, pos = read_int16(buf, pos)
    if n < 0:
        if n != -1:
            raise ProtocolDecodeError(f"string length {n}")
        return None, pos
    end = _take(buf, pos, n, "string")
    return _utf8(buf, pos, end), end


def read_compact_string(buf: Any, pos: int) -> tuple[str, int]:
    n, pos = read_unsigned_varint(buf, pos)
    if n == 0:
        raise ProtocolDecodeError("non-nullable compact string is null")
    end = _take(buf, pos, n - 1, "compact string")
    return _utf8(buf, pos, end), end


def read_compact_nullable_string(buf: Any, pos: int) -> tuple[str | None, int]:
    n, pos = read_unsigned_varint(buf, pos)
    if n == 0:
        return None, pos
    end = _take(buf, pos, n - 1, "compact string")
    return _utf8(buf, pos, end), end


def _encode_str(value: Any) -> bytes:
    if not isinstance(value, str):
        raise ProtocolEncodeError(f"expected str, got {type(value).__name__}")
    return value.encode("utf-8")


def write_string(out: bytearray, value: Any) -> None:
    if value is None:
        raise ProtocolEncodeError("null in a non-nullable string")
    data = _encode_str(value)
    if len(data) > 0x7FFF:
        raise ProtocolEncodeError(f"string of {len(data)} bytes exceeds int16 length")
    out += _I16.pack(len(data))
    out += data


def write_nullable_string(out: bytearray, value: Any) -> None:
    if value is None:
        out += b"\xff\xff"
    else:
        write_string(out, value)


def write_compact_string(out: bytearray, value: Any) -> None:
    if value is None:
        raise ProtocolEncodeError("null in a non-nullable string")
    data = _encode_str(value)
    write_unsigned_varint(out, len(data) + 1)
    out += data


def write_compact_nullable_string(out: bytearray, value: Any) -> None:
    if value is None:
        out.append(0)
    else:
        write_compact_string(out, value)


def read_bytes(buf: Any, pos: int) -> tuple[bytes, int]:
    n, pos = read_int32(buf, pos)
    if n < 0:
        raise ProtocolDecodeError(f"non-nullable bytes has length {n}")
    end = _take(buf, pos, n, "bytes")
    return bytes(buf[pos:end]), end


def read_nullable_bytes(buf: Any, pos: int) -> tuple[bytes | None, int]:
    n, pos = read_int32(buf, pos)
    if n < 0:
        if n != -1:
            raise ProtocolDecodeError(f"bytes length {n}")
        return None, pos
    end = _take(buf, pos, n, "bytes")
    return bytes(buf[pos:end]), end


def read_compact_bytes(buf: Any, pos: int) -> tuple[bytes, int]:
    n, pos = read_unsigned_varint(buf, pos)
    if n == 0:
        raise ProtocolDecodeError("non-nullable compact bytes is null")
    end = _take(buf, pos, n - 1, "compact bytes")
    return bytes(buf[pos:end]), end


def read_compact_nullable_bytes(buf: Any, pos: int) -> tuple[bytes | None, int]:
    n, pos = read_unsigned_varint(buf, pos)
    if n == 0:
        return None, pos
    end = _take(buf, pos, n - 1, "compact bytes")
    return bytes(buf[pos:end]), end


def _check_bytes(value: Any) -> Any:
    if not isinstance(value, (bytes, bytearray, memoryview)):
        raise ProtocolEncodeError(f"expected bytes, got {type(value).__name__}")
    return value


def write_bytes(out: bytearray, value: Any) -> None:
    if value is None:
        raise ProtocolEncodeError("null in non-nullable bytes")
    value = _check_bytes(value)
    out += _I32.pack(len(value))
    out += value


def write_nullable_bytes(out: bytearray, value: Any) -> None:
    if value is None:
        out += b"\xff\xff\xff\xff"
    else:
        write_bytes(out, value)


def write_compact_bytes(out: bytearray, value: Any) -> None:
    if value is None:
        raise ProtocolEncodeError("null in non-nullable bytes")
    value = _check_bytes(value)
    write_unsigned_varint(out, len(value) + 1)
    out += value


def write_compact_nullable_bytes(out: bytearray, value: Any) -> None:
    if value is None:
        out.append(0)
    else:
        write_compact_bytes(out, value)


# RECORDS: the same layout as (compact) nullable bytes, but the value is a zero-copy slice of the
# input (a memoryview when `buf` is one). The record batches inside are not parsed here.


def read_records(buf: Any, pos: int) -> tuple[Any, int]:
    n, pos = read_int32(buf, pos)
    if n < 0:
        if n != -1:
            raise ProtocolDecodeError(f"records length {n}")
        return None, pos
    end = _take(buf, pos, n, "records")
    return buf[pos:end], end


def read_compact_records(buf: Any, pos: int) -> tuple[Any, int]:
    n, pos = read_unsigned_varint(buf, pos)
    if n == 0:
        return None, pos
    end = _take(buf, pos, n - 1, "records")
    return buf[pos:end], end


class GatherBuffer(bytearray):
    """An encode buffer that keeps large RECORDS values out of line (zero-copy Fetch).

    `write_records` appends the length prefix as usual but, instead of copying a value of at
    least GATHER_MIN bytes, records (position, value) in `deferred`; `parts()` then interleaves
    the buffer's slices with those values, ready for a gather write. `total_size` counts both.
    """

    GATHER_MIN = 4096

    def __init__(self, initial: bytes = b"") -> None:
        super().__init__(initial)
        self.deferred: list[tuple[int, Any]] = []
        self.deferred_bytes = 0

    def defer(self, value: Any) -> None:
        self.deferred.append((len(self), value))
        self.deferred_bytes += len(value)

    @property
    def total_size(self) -> int:
        return len(self) + self.deferred_bytes

    def parts(self) -> list[Any]:
        if not self.deferred:
            return [bytes(self)]
        out: list[Any] = []
        start = 0
        view = memoryview(self)
        for pos, value in self.deferred:
            if pos > start:
                out.append(view[start:pos])
            out.append(value)
            start = pos
        if start < len(self):
            out.append(view[start:])
        return out


def write_records(out: bytearray, value: Any) -> None:
    if value is None:
        out += b"\xff\xff\xff\xff"
        return
    value = _check_bytes(value)
    out += _I32.pack(len(value))
    if type(out) is GatherBuffer and len(value) >= GatherBuffer.GATHER_MIN:
        out.defer(value)
    else:
        out += value


def write_compact_records(out: bytearray, value: Any) -> None:
    if value is None:
        out.append(0)
        return
    value = _check_bytes(value)
    write_unsigned_varint(out, len(value) + 1)
    if type(out) is GatherBuffer and len(value) >= GatherBuffer.GATHER_MIN:
        out.defer(value)
    else:
        out += value


# ---- arrays ------------------------------------------------------------------------------------


def _check_count(buf: Any, pos: int, count: int, min_size: int) -> None:
    # Each element takes at least `min_size` bytes, so a count the remaining bytes cannot hold is
    # rejected before the list exists (an int32 count of 2**31-1 with 4 bytes left fails here).
    if count > MAX_ARRAY_COUNT or count * min_size > len(buf) - pos:
        raise ProtocolDecodeError(
            f"array count {count} cannot fit in {max(0, len(buf) - pos)} remaining bytes"
        )


def read_array(
    buf: Any, pos: int, read_elem: Reader, min_size: int = 1, nullable: bool = False
) -> tuple[list | None, int]:
    """Classic array: int32 count (-1 = null) then elements, each at least `min_size` bytes."""
    count, pos = read_int32(buf, pos)
    if count < 0:
        if count == -1 and nullable:
            return None, pos
        raise ProtocolDecodeError(f"array count {count}")
    _check_count(buf, pos, count, max(1, min_size))
    items = []
    append = items.append
    for _ in range(count):
        item, pos = read_elem(buf, pos)
        append(item)
    return items, pos


def read_compact_array(
    buf: Any, pos: int, read_elem: Reader, min_size: int = 1, nullable: bool = False
) -> tuple[list | None, int]:
    """Compact array: uvarint count+1 (0 = null) then elements."""
    n, pos = read_unsigned_varint(buf, pos)
    if n == 0:
        if nullable:
            return None, pos
        raise ProtocolDecodeError("non-nullable compact array is null")
    count = n - 1
    _check_count(buf, pos, count, max(1, min_size))
    items = []
    append = items.append
    for _ in range(count):
        item, pos = read_elem(buf, pos)
        append(item)
    return items, pos


def write_array(out: bytearray, values: Any, write_elem: Writer, nullable: bool = False) -> None:
    if values is None:
        if not nullable:
            raise ProtocolEncodeError("null in a non-nullable array")
        out += b"\xff\xff\xff\xff"
        return
    out += _I32.pack(len(values))
    for v in values:
        write_elem(out, v)


def write_compact_array(
    out: bytearray, values: Any, write_elem: Writer, nullable: bool = False
) -> None:
    if values is None:
        if not nullable:
            raise ProtocolEncodeError("null in a non-nullable array")
        out.append(0)
        return
    write_unsigned_varint(out, len(values) + 1)
    for v in values:
        write_elem(out, v)


# ---- tagged fields -----------------------------------------------------------------------------


def read_tagged_fields(
    buf: Any, pos: int, known: dict[int, Reader] | None = None, keep_unknown: bool = False
) -> tuple[dict[int, Any], int]:
    """Read a tag section; returns ({tag: value}, pos).

    Tags in `known` are decoded with their reader, which must consume exactly the declared size.
    Unknown tags are skipped (KIP-482: receivers ignore tags they do not understand), or kept as
    raw bytes with `keep_unknown`. Tags must be strictly ascending, as Kafka requires.
    """
    count, pos = read_unsigned_varint(buf, pos)
    _check_count(buf, pos, count, 2)
    found: dict[int, Any] = {}
    last = -1
    for _ in range(count):
        tag, pos = read_unsigned_varint(buf, pos)
        if tag <= last:
            raise ProtocolDecodeError(f"tagged field {tag} out of order after {last}")
        last = tag
        size, pos = read_unsigned_varint(buf, pos)
        end = _take(buf, pos, size, "tagged field")
        reader = known.get(tag) if known else None
        if reader is not None:
            # The reader sees only the declared bytes, so it cannot run into the next field.
            value, used = reader(buf[:end], pos)
            if used != end:
                raise ProtocolDecodeError(
                    f"tagged field {tag} declared {size} bytes, used {used - pos}"
                )
            found[tag] = value
        elif keep_unknown:
            found[tag] = bytes(buf[pos:end])
        pos = end
    return found, pos


def skip_tagged_fields(buf: Any, pos: int) -> int:
    """Skip a tag section entirely (e.g. the request header's, which has no known tags)."""
    return read_tagged_fields(buf, pos)[1]


def write_tagged_fields(out: bytearray, fields: dict[int, bytes] | None) -> None:
    """Write already-encoded tag payloads {tag: bytes} in ascending tag order."""
    if not fields:
        out.append(0)
        return
    write_unsigned_varint(out, len(fields))
    for tag in sorted(fields):
        data = fields[tag]
        write_unsigned_varint(out, tag)
        write_unsigned_varint(out, len(data))
        out += data
