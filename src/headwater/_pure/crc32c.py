"""CRC-32C (Castagnoli), table driven, one byte at a time: the reference for csrc/hw_crc32c.c.

Parameters (kafka-spec.md f.4)::

    polynomial   0x1EDC6F41 (bit-reflected: 0x82F63B78)
    init         0xFFFFFFFF
    reflect      in and out
    xorout       0xFFFFFFFF
    check        crc32c(b"123456789") == 0xE3069283

RecordBatch v2 stores this CRC at byte 17 and computes it over bytes 21 .. end of batch.
``value`` continues a previous result, as the PyPI ``crc32c`` package does:
``crc32c(b, crc32c(a)) == crc32c(a + b)``. Pure functions; the table is built once at import.
"""

from __future__ import annotations

_POLY_REFLECTED = 0x82F63B78
_MASK32 = 0xFFFFFFFF


def _make_table() -> tuple[int, ...]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ _POLY_REFLECTED if crc & 1 else crc >> 1
        table.append(crc)
    return tuple(table)


_TABLE = _make_table()


def crc32c(data: bytes | bytearray | memoryview, value: int = 0) -> int:
    """CRC-32C of ``data``, continuing from ``value`` (a previous crc32c result, or 0).

    Args:
        data: any bytes-like object.
        value: a previous CRC to continue from; 0 starts afresh.

    Returns:
        The CRC as an unsigned 32-bit int.
    """
    if not 0 <= value <= _MASK32:
        raise OverflowError(f"crc value {value} is not an unsigned 32-bit int")
    crc = value ^ _MASK32
    table = _TABLE
    for byte in memoryview(data).cast("B"):
        crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ _MASK32


def crc32c_impl() -> str:
    """Which implementation computes CRCs here: always ``"python"``."""
    return "python"
