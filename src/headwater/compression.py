"""Per-batch compression codecs, byte-exact with what Kafka clients write (kafka-spec.md a.7).

Only the records section of a RecordBatch (bytes 61.. end) is compressed, as one stream per
batch; the 61-byte header stays plain and the CRC covers the compressed bytes. This module
only turns bytes into bytes: ``headwater.record`` splices the result into a batch.

    id  codec   stream written                              streams accepted on read
    --  ------  ------------------------------------------  --------------------------------
    0   none    -                                           -
    1   gzip    one RFC 1952 member (stdlib zlib)           any gzip member(s)
    2   snappy  xerial snappy-java framing (below)          xerial framing or one raw block
    3   lz4     LZ4 frame, FLG 0x60 BD 0x40 (below)         any valid LZ4 frame
    4   zstd    one zstd frame, streaming                   zstd frame(s), size may be absent

Xerial snappy framing (what snappy-java, kafka-python and aiokafka write)::

    +--------------------------+  0
    | magic  82 53 4E 41 50 50 59 00 |  8 bytes: 0x82 "SNAPPY" 0x00
    | version             int32 BE  |  = 1
    | compatible version  int32 BE  |  = 1
    +--------------------------+  16
    | chunk length        int32 BE  |  bytes of the raw snappy block that follows
    | raw snappy block              |  compresses at most 32 KiB of input
    +--------------------------+
    | ... more chunks ...           |

librdkafka producers send one raw snappy block with no framing; readers tell the two apart by
the 8-byte magic, exactly as librdkafka and kafka-python do.

LZ4 frame as Kafka's Java producer writes it::

    04 22 4D 18   magic 0x184D2204, little-endian
    60            FLG: version 01, independent blocks, no block checksum, no content size,
                  no content checksum
    40            BD: maximum block size 64 KiB
    82            HC: (xxhash32(FLG, BD) >> 8) & 0xFF
    blocks        uint32 LE size (high bit = stored uncompressed) + data
    00 00 00 00   end mark

Decompression is always capped by ``max_size``: a compression bomb (a few KiB that inflate
to gigabytes) raises ``CorruptRecordError`` after producing at most about ``max_size`` bytes
instead of allocating without limit. Every error a codec library raises becomes a
``CorruptRecordError`` naming the codec. Functions are pure and thread-safe.
"""

from __future__ import annotations

import io
import struct
import zlib

import cramjam
import lz4.frame
import zstandard

from headwater.errors import CorruptRecordError, UnsupportedCompressionTypeError

NONE = 0
GZIP = 1
SNAPPY = 2
LZ4 = 3
ZSTD = 4

_NAMES = {"none": NONE, "gzip": GZIP, "snappy": SNAPPY, "lz4": LZ4, "zstd": ZSTD}
CODEC_NAMES = {v: k for k, v in _NAMES.items()}

XERIAL_MAGIC = b"\x82SNAPPY\x00"
_XERIAL_HEADER = XERIAL_MAGIC + struct.pack(">ii", 1, 1)
# snappy-java's default block: each xerial chunk compresses at most this much input.
XERIAL_BLOCK_BYTES = 32 * 1024

_GZIP_MAGIC = b"\x1f\x8b"
# wbits for zlib: 16 + 15 = a gzip wrapper around a 32 KiB-window deflate stream.
_GZIP_WBITS = 16 + zlib.MAX_WBITS
# Input is fed to streaming decoders in slices of this size so that output is produced
# (and checked against max_size) incrementally.
_CHUNK_BYTES = 64 * 1024

Buffer = bytes | bytearray | memoryview


def codec_id(codec: int | str | None) -> int:
    """Normalise a codec given as an id (0-4), a Kafka name or None to its id.

    Args:
        codec: ``None``, ``"none"``, ``"gzip"``, ``"snappy"``, ``"lz4"``, ``"zstd"`` (any
            case) or an int id.

    Returns:
        The codec id, 0-4.

    Raises:
        UnsupportedCompressionTypeError: unknown name or id (5-7 are reserved by Kafka).
    """
    if codec is None:
        return NONE
    if isinstance(codec, str):
        try:
            return _NAMES[codec.lower()]
        except KeyError:
            raise UnsupportedCompressionTypeError(f"unknown compression codec {codec!r}") from None
    if isinstance(codec, int) and not isinstance(codec, bool) and NONE <= codec <= ZSTD:
        return int(codec)
    raise UnsupportedCompressionTypeError(f"unsupported compression codec id {codec!r}")


def compress(codec: int | str | None, data: Buffer, level: int | None = None) -> bytes:
    """Compress ``data`` the way Kafka's Java producer would for ``codec``.

    Args:
        codec: codec id or name (see ``codec_id``).
        data: the uncompressed records section.
        level: codec level (gzip 0-9, lz4 0-16, zstd -131072..22); ``None`` = library default.

    Returns:
        The compressed stream (``bytes(data)`` for codec 0).

    Raises:
        UnsupportedCompressionTypeError: unknown codec.
    """
    cid = codec_id(codec)
    raw = bytes(data)
    if cid == NONE:
        return raw
    if cid == GZIP:
        return _gzip_compress(raw, level)
    if cid == SNAPPY:
        return _snappy_compress_xerial(raw)
    if cid == LZ4:
        return lz4.frame.compress(
            raw,
            compression_level=0 if level is None else level,
            block_size=lz4.frame.BLOCKSIZE_MAX64KB,
            block_linked=False,
            content_checksum=False,
            block_checksum=False,
            store_size=False,
        )
    assert cid == ZSTD
    # compressobj streams, so (like Java's ZstdOutputStream) no content size is written.
    cctx = zstandard.ZstdCompressor(level=3 if level is None else level)
    stream = cctx.compressobj()
    return stream.compress(raw) + stream.flush()


def decompress(codec: int | str | None, data: Buffer, max_size: int) -> bytes:
    """Decompress one batch's records section.

    Args:
        codec: codec id or name (see ``codec_id``).
        data: the compressed stream.
        max_size: largest acceptable output in bytes.

    Returns:
        The uncompressed bytes.

    Raises:
        CorruptRecordError: the stream is malformed, truncated, or inflates past ``max_size``.
        UnsupportedCompressionTypeError: unknown codec.
    """
    cid = codec_id(codec)
    raw = bytes(data)
    if cid == NONE:
        _check_size(len(raw), max_size, "none")
        return raw
    if not raw:
        raise CorruptRecordError(f"{CODEC_NAMES[cid]}: compressed payload is empty")
    try:
        if cid == GZIP:
            return _gzip_decompress(raw, max_size)
        if cid == SNAPPY:
            return _snappy_decompress(raw, max_size)
        if cid == LZ4:
            return _lz4_decompress(raw, max_size)
        return _zstd_decompress(raw, max_size)
    except CorruptRecordError:
        raise
    except (zlib.error, cramjam.DecompressionError, RuntimeError, ValueError,
            zstandard.ZstdError, MemoryError, OverflowError, EOFError) as exc:
        # lz4.frame raises RuntimeError; the others raise their own types.
        raise CorruptRecordError(f"{CODEC_NAMES[cid]}: cannot decompress: {exc}") from exc


def _check_size(size: int, max_size: int, name: str) -> None:
    if size > max_size:
        raise CorruptRecordError(
            f"{name}: decompressed size exceeds max_size ({size} > {max_size} bytes)"
        )


# ---------------------------------------------------------------------------------- gzip


def _gzip_compress(raw: bytes, level: int | None) -> bytes:
    comp = zlib.compressobj(-1 if level is None else level, zlib.DEFLATED, _GZIP_WBITS)
    return comp.compress(raw) + comp.flush()


def _gzip_decompress(raw: bytes, max_size: int) -> bytes:
    out = bytearray()
    data = raw
    while True:
        member = zlib.decompressobj(_GZIP_WBITS)
        pending = data
        while not member.eof:
            chunk = member.decompress(pending, max_size - len(out) + 1)
            out += chunk
            _check_size(len(out), max_size, "gzip")
            pending = member.unconsumed_tail
            if not pending and not chunk and not member.eof:
                raise CorruptRecordError("gzip: stream is truncated")
        data = member.unused_data
        # Java's GZIPInputStream reads concatenated members and ignores anything after the
        # last one that is not a gzip header; do the same.
        if not data.startswith(_GZIP_MAGIC):
            return bytes(out)


# -------------------------------------------------------------------------------- snappy


def _snappy_compress_xerial(raw: bytes) -> bytes:
    out = bytearray(_XERIAL_HEADER)
    for start in range(0, len(raw), XERIAL_BLOCK_BYTES):
        block = bytes(cramjam.snappy.compress_raw(raw[start : start + XERIAL_BLOCK_BYTES]))
        out += struct.pack(">i", len(block))
        out += block
    return bytes(out)


def _snappy_block_length(block: bytes) -> int:
    """The uncompressed length a raw snappy block declares (its uvarint preamble)."""
    value = 0
    for i in range(min(len(block), 5)):
        b = block[i]
        value |= (b & 0x7F) << (7 * i)
        if not b & 0x80:
            return value
    raise CorruptRecordError("snappy: bad block length preamble")


def _snappy_raw_block(block: bytes, produced: int, max_size: int) -> bytes:
    # Check the declared length first so a bomb never gets allocated.
    _check_size(produced + _snappy_block_length(block), max_size, "snappy")
    return bytes(cramjam.snappy.decompress_raw(block))


def _snappy_decompress(raw: bytes, max_size: int) -> bytes:
    if not raw.startswith(XERIAL_MAGIC):
        return _snappy_raw_block(raw, 0, max_size)
    if len(raw) < len(_XERIAL_HEADER):
        raise CorruptRecordError("snappy: xerial header is truncated")
    out = bytearray()
    pos = len(_XERIAL_HEADER)
    while pos < len(raw):
        if len(raw) - pos < 4:
            raise CorruptRecordError("snappy: xerial chunk length is truncated")
        (length,) = struct.unpack_from(">i", raw, pos)
        pos += 4
        if length < 0 or length > len(raw) - pos:
            raise CorruptRecordError(f"snappy: xerial chunk length {length} is out of bounds")
        out += _snappy_raw_block(raw[pos : pos + length], len(out), max_size)
        pos += length
    return bytes(out)


# ----------------------------------------------------------------------------------- lz4


def _lz4_decompress(raw: bytes, max_size: int) -> bytes:
    dec = lz4.frame.LZ4FrameDecompressor()
    out = bytearray()
    pending: bytes = raw
    while not dec.eof:
        chunk = dec.decompress(pending, max_length=max_size - len(out) + 1)
        out += chunk
        _check_size(len(out), max_size, "lz4")
        pending = b""
        if dec.needs_input and not dec.eof:
            raise CorruptRecordError("lz4: frame is truncated")
    # Like Java's KafkaLZ4BlockInputStream, read one frame and ignore what follows.
    return bytes(out)


# ---------------------------------------------------------------------------------- zstd


def _zstd_decompress(raw: bytes, max_size: int) -> bytes:
    dctx = zstandard.ZstdDecompressor()
    # Pass 1, capped: stream the output in chunks without knowing the content size, so a
    # bomb stops at max_size + one chunk.
    reader = dctx.stream_reader(io.BytesIO(raw), read_across_frames=True)
    total = 0
    while True:
        chunk = reader.read(_CHUNK_BYTES)
        if not chunk:
            break
        total += len(chunk)
        _check_size(total, max_size, "zstd")
    # Pass 2, now known to be small: stream_reader stops silently at a truncated frame, so
    # walk the frames with decompressobj, whose `eof` says whether each one ended.
    out = bytearray()
    data = raw
    while data:
        frame = dctx.decompressobj()
        out += frame.decompress(data)
        _check_size(len(out), max_size, "zstd")
        if not frame.eof:
            raise CorruptRecordError("zstd: frame is truncated")
        data = frame.unused_data
    return bytes(out)


__all__ = [
    "NONE",
    "GZIP",
    "SNAPPY",
    "LZ4",
    "ZSTD",
    "CODEC_NAMES",
    "XERIAL_MAGIC",
    "XERIAL_BLOCK_BYTES",
    "codec_id",
    "compress",
    "decompress",
]
