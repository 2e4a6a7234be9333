"""The pure-Python twin of headwater._native's codec surface: slow, obviously correct.

``headwater.record`` binds to this package when ``HEADWATER_NO_EXTENSIONS=1``, and the test
suite runs every codec test against both, so any disagreement with the C core is a bug in one
of them. Names, arguments, results and exceptions match ``_native/_native.pyi`` above its
"segments" line; segments and indexes exist only natively.

    crc32c.py   CRC-32C, table driven            (csrc/hw_crc32c.c)
    varint.py   zig-zag varlong encode/decode    (csrc/hw_varint.c)
    batch.py    RecordBatch v2 header, records   (csrc/hw_batch.c); byte layout drawn there

This package never imports headwater._native.
"""

from __future__ import annotations

from headwater._pure.batch import (
    BATCH_HEADER_SIZE,
    LOG_OVERHEAD,
    MAGIC,
    BatchHeader,
    Record,
    build_batch,
    build_control_batch,
    check_batch,
    decode_records,
    parse_batch_header,
)
from headwater._pure.crc32c import crc32c, crc32c_impl
from headwater._pure.varint import decode_varint, encode_varint

# hw_status codes, mirroring csrc/hw_common.h (exposed for tests).
HW_OK = 0
HW_ERR_TRUNCATED = 1
HW_ERR_CORRUPT = 2
HW_ERR_CRC = 3
HW_ERR_OVERFLOW = 4
HW_ERR_FULL = 5
HW_ERR_IO = 6

__all__ = [
    "BATCH_HEADER_SIZE",
    "LOG_OVERHEAD",
    "MAGIC",
    "HW_OK",
    "HW_ERR_TRUNCATED",
    "HW_ERR_CORRUPT",
    "HW_ERR_CRC",
    "HW_ERR_OVERFLOW",
    "HW_ERR_FULL",
    "HW_ERR_IO",
    "crc32c",
    "crc32c_impl",
    "encode_varint",
    "decode_varint",
    "BatchHeader",
    "parse_batch_header",
    "check_batch",
    "build_batch",
    "build_control_batch",
    "Record",
    "decode_records",
]
