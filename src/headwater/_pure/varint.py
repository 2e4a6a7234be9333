"""Zig-zag varints, as Kafka record fields use them (kafka-spec.md a.3).

A signed int64 ``n`` is zig-zagged to the unsigned ``(n << 1) ^ (n >> 63)`` (so small
magnitudes of either sign stay short: 0→0, -1→1, 1→2, -2→3) and written 7 bits per byte,
least significant group first; the high bit of each byte says another byte follows::

    300  -> zig-zag 600 = 0b100_1011000 -> d8 04
            byte 0: 1 1011000   (continue, low 7 bits)
            byte 1: 0 0000100   (last, next 7 bits)

At most 10 bytes encode any int64. The decoder is bounded: it never reads past the end of
the buffer (``TruncatedError``) and never reads an 11th byte (``CorruptRecordError``). Bits
beyond 64 in a 10th byte are dropped, as Java's ``ByteUtils.readVarlong`` drops them, and
overlong encodings (``80 00`` for 0) are accepted.
"""

from __future__ import annotations

from headwater.errors import CorruptRecordError, TruncatedError

MAX_VARINT_BYTES = 10
_MASK64 = (1 << 64) - 1
INT64_MIN = -(1 << 63)
INT64_MAX = (1 << 63) - 1


def encode_varint(value: int) -> bytes:
    """Zig-zag varlong encoding of ``value``.

    Raises:
        OverflowError: ``value`` does not fit a signed 64-bit int.
    """
    if not INT64_MIN <= value <= INT64_MAX:
        raise OverflowError(f"{value} does not fit a signed 64-bit int")
    zigzag = ((value << 1) ^ (value >> 63)) & _MASK64
    out = bytearray()
    while zigzag >= 0x80:
        out.append((zigzag & 0x7F) | 0x80)
        zigzag >>= 7
    out.append(zigzag)
    return bytes(out)


def decode_varint(buf: bytes | bytearray | memoryview, pos: int = 0) -> tuple[int, int]:
    """Decode the zig-zag varlong at ``buf[pos:]``.

    Returns:
        ``(value, next_pos)``.

    Raises:
        IndexError: ``pos`` is outside ``[0, len(buf)]`` (a caller bug, not bad data).
        TruncatedError: the buffer ends before the last byte of the varint.
        CorruptRecordError: 10 bytes read and the varint still continues.
    """
    view = memoryview(buf).cast("B")
    if not 0 <= pos <= len(view):
        raise IndexError(f"position {pos} outside [0, {len(view)}]")
    zigzag = 0
    for i in range(MAX_VARINT_BYTES):
        if pos + i >= len(view):
            raise TruncatedError(f"buffer ends inside a varint at position {pos}")
        byte = view[pos + i]
        zigzag |= (byte & 0x7F) << (7 * i)
        if not byte & 0x80:
            zigzag &= _MASK64
            return (zigzag >> 1) ^ -(zigzag & 1), pos + i + 1
    raise CorruptRecordError(f"varint at position {pos} is longer than {MAX_VARINT_BYTES} bytes")
