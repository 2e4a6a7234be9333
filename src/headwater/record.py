"""The record layer: RecordBatch v2 codec functions bound to the C core or its pure twin.

Public names come from ``headwater._native`` (Cython over csrc/) unless the environment sets
``HEADWATER_NO_EXTENSIONS=1``, in which case the slow, obviously-correct ``headwater._pure``
twin is used. Both expose the same codec surface (see ``_native/_native.pyi``); segments and
indexes exist only natively.

On top of the codec this module adds the per-batch compression step (one codec call per
batch, kafka-spec.md a.7): ``compress_batch`` turns an uncompressed batch into a compressed
one (header kept, length/attributes/CRC rewritten), and ``batch_records`` decodes the records
of any batch, decompressing when needed.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator

from headwater import compression as _compression
from headwater.errors import CorruptRecordError

if os.environ.get("HEADWATER_NO_EXTENSIONS") == "1":
    from headwater import _pure as _impl

    IMPLEMENTATION = "pure"
else:
    from headwater._native import _native as _impl  # type: ignore[no-redef]

    IMPLEMENTATION = "native"

BATCH_HEADER_SIZE: int = _impl.BATCH_HEADER_SIZE
crc32c = _impl.crc32c
encode_varint = _impl.encode_varint
decode_varint = _impl.decode_varint
parse_batch_header = _impl.parse_batch_header
check_batch = _impl.check_batch
build_batch = _impl.build_batch
build_control_batch = _impl.build_control_batch
decode_records = _impl.decode_records
BatchHeader = _impl.BatchHeader
Record = _impl.Record

CODEC_NONE = _compression.NONE
CODEC_GZIP = _compression.GZIP
CODEC_SNAPPY = _compression.SNAPPY
CODEC_LZ4 = _compression.LZ4
CODEC_ZSTD = _compression.ZSTD

# Attributes sit at byte 21 and are followed by everything the CRC covers.
_ATTRIBUTES_POS = 21
_CRC_POS = 17
_LENGTH_POS = 8

# Largest decompressed records section we accept from one batch (compression-bomb cap).
MAX_DECOMPRESSED_BYTES = 256 * 1024 * 1024


def compress_batch(batch: bytes | bytearray | memoryview, codec: int | str | None, level: int | None = None) -> bytes:
    """Return ``batch`` (an uncompressed RecordBatch v2) with its records section compressed.

    The 61-byte header is kept; batchLength, the codec bits of attributes and the CRC are
    rewritten. ``codec`` may be an id (0-4) or a Kafka name (``"gzip"``, ``"snappy"``,
    ``"lz4"``, ``"zstd"``, ``"none"``/``None``).
    """
    codec_id = _compression.codec_id(codec)
    header = parse_batch_header(batch)
    if header.compression != CODEC_NONE:
        raise ValueError("batch is already compressed")
    raw = bytes(batch[: header.size])
    if codec_id == CODEC_NONE:
        return raw
    payload = _compression.compress(codec_id, memoryview(raw)[BATCH_HEADER_SIZE:], level)
    out = bytearray(raw[:BATCH_HEADER_SIZE])
    out += payload
    struct.pack_into(">i", out, _LENGTH_POS, len(out) - 12)
    struct.pack_into(">h", out, _ATTRIBUTES_POS, (header.attributes & ~0x07) | codec_id)
    struct.pack_into(">I", out, _CRC_POS, crc32c(memoryview(out)[_ATTRIBUTES_POS:]))
    return bytes(out)


def records_section(batch: bytes | bytearray | memoryview, header: object | None = None) -> bytes | memoryview:
    """The uncompressed records section of ``batch`` (decompressed if the batch is compressed)."""
    h = header if header is not None else parse_batch_header(batch)
    body = memoryview(batch)[BATCH_HEADER_SIZE : h.size]  # type: ignore[attr-defined]
    if h.compression == CODEC_NONE:  # type: ignore[attr-defined]
        return body
    try:
        return _compression.decompress(h.compression, body, MAX_DECOMPRESSED_BYTES)  # type: ignore[attr-defined]
    except CorruptRecordError:
        raise
    except Exception as exc:  # codec libraries raise their own types; normalise them
        raise CorruptRecordError(f"cannot decompress batch at offset {h.base_offset}: {exc}") from exc  # type: ignore[attr-defined]


def batch_records(batch: bytes | bytearray | memoryview, header: object | None = None) -> list:
    """Decode every record of one batch (any codec) into ``Record`` objects."""
    h = header if header is not None else parse_batch_header(batch)
    section = records_section(batch, h)
    append_time = h.max_timestamp if h.timestamp_type == 1 else -1  # type: ignore[attr-defined]
    return decode_records(section, h.records_count, h.base_offset, h.base_timestamp, append_time)  # type: ignore[attr-defined]


def iter_batches(buf: bytes | bytearray | memoryview) -> Iterator[tuple[object, memoryview]]:
    """Yield ``(header, view)`` for each whole batch in ``buf``; stops at a partial tail."""
    view = memoryview(buf)
    pos = 0
    end = len(view)
    while end - pos >= BATCH_HEADER_SIZE:
        (length,) = struct.unpack_from(">i", view, pos + _LENGTH_POS)
        if length < 0 or pos + 12 + length > end:
            break
        header = parse_batch_header(view, pos)
        yield header, view[pos : pos + header.size]
        pos += header.size


__all__ = [
    "IMPLEMENTATION",
    "BATCH_HEADER_SIZE",
    "crc32c",
    "encode_varint",
    "decode_varint",
    "parse_batch_header",
    "check_batch",
    "build_batch",
    "build_control_batch",
    "decode_records",
    "BatchHeader",
    "Record",
    "compress_batch",
    "records_section",
    "batch_records",
    "iter_batches",
]
