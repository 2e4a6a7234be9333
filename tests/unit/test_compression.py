"""headwater.compression: the per-batch codecs, byte-exact with Kafka (kafka-spec.md a.7).

Goal: every codec round-trips any input; what we write is what Kafka's Java clients write
(xerial-framed snappy in 32 KiB chunks, LZ4 frames with FLG 0x60 / BD 0x40, zstd without a
content size); what we read includes the other streams real clients send (raw snappy from
librdkafka, concatenated gzip members, lz4 frames with other flags, multi-frame zstd); and
hostile input (garbage, truncation, compression bombs) always ends in CorruptRecordError
without allocating past ``max_size``.

Method: round trips over fixed sizes (0, 1 byte, 100 KiB random, 100 KiB compressible),
the spec's xerial example as literal bytes, frames built by the reference libraries
(gzip, cramjam, lz4.frame, zstandard) with settings other than ours, and hand-made bad
streams.
"""

from __future__ import annotations

import gzip
import random
import struct
import zlib

import cramjam
import lz4.frame
import pytest
import zstandard

from headwater import compression
from headwater.errors import CorruptRecordError, UnsupportedCompressionTypeError

CODECS = [compression.NONE, compression.GZIP, compression.SNAPPY, compression.LZ4,
          compression.ZSTD]
REAL_CODECS = CODECS[1:]
MIB = 1 << 20

_rng = random.Random(20240601)
PAYLOADS = {
    "empty": b"",
    "one-byte": b"\x07",
    "random-100k": _rng.randbytes(100 * 1024),
    "compressible-100k": b"".join(b"record %06d: hello headwater\n" % i for i in range(3600))[
        : 100 * 1024
    ],
}


@pytest.mark.parametrize("codec", CODECS)
@pytest.mark.parametrize("name", list(PAYLOADS))
def test_round_trip(codec, name):
    data = PAYLOADS[name]
    packed = compression.compress(codec, data)
    assert isinstance(packed, bytes)
    assert compression.decompress(codec, packed, len(data)) == data
    assert compression.decompress(codec, memoryview(packed), len(data) + 10) == data


@pytest.mark.parametrize("codec", REAL_CODECS)
def test_compressible_input_shrinks(codec):
    data = PAYLOADS["compressible-100k"]
    assert len(compression.compress(codec, data)) < len(data) // 3


@pytest.mark.parametrize(("codec", "level"), [(1, 1), (1, 9), (3, 9), (3, 16), (4, 1), (4, 19)])
def test_levels_round_trip(codec, level):
    data = PAYLOADS["compressible-100k"]
    assert compression.decompress(codec, compression.compress(codec, data, level), MIB) == data


# ------------------------------------------------------------------------------- codec ids


@pytest.mark.parametrize(
    ("given", "expected"),
    [(None, 0), ("none", 0), ("gzip", 1), ("snappy", 2), ("lz4", 3), ("zstd", 4), ("GZIP", 1),
     (0, 0), (1, 1), (2, 2), (3, 3), (4, 4)],
)
def test_codec_id(given, expected):
    assert compression.codec_id(given) == expected


@pytest.mark.parametrize("given", [5, 6, 7, 8, -1, "producer", "brotli", "", True])
def test_unknown_codec_is_unsupported(given):
    with pytest.raises(UnsupportedCompressionTypeError):
        compression.codec_id(given)
    with pytest.raises(UnsupportedCompressionTypeError):
        compression.compress(given, b"data")
    with pytest.raises(UnsupportedCompressionTypeError):
        compression.decompress(given, b"data", MIB)


def test_codec_constants():
    assert (compression.NONE, compression.GZIP, compression.SNAPPY, compression.LZ4,
            compression.ZSTD) == (0, 1, 2, 3, 4)


# ------------------------------------------------------------------------------------ gzip


def test_gzip_writes_a_gzip_member():
    packed = compression.compress("gzip", b"hello")
    assert packed[:3] == b"\x1f\x8b\x08"
    assert gzip.decompress(packed) == b"hello"


def test_gzip_reads_stdlib_gzip_and_concatenated_members():
    assert compression.decompress(1, gzip.compress(b"abc", mtime=0), 100) == b"abc"
    two = gzip.compress(b"abc") + gzip.compress(b"def")
    assert compression.decompress(1, two, 100) == b"abcdef"


def test_gzip_ignores_non_gzip_trailer():
    # Java's GZIPInputStream stops at bytes that are not another gzip header.
    assert compression.decompress(1, gzip.compress(b"abc") + b"\x00\x00", 100) == b"abc"


def test_gzip_rejects_zlib_and_raw_deflate():
    with pytest.raises(CorruptRecordError):
        compression.decompress(1, zlib.compress(b"abc"), 100)


# ---------------------------------------------------------------------------------- snappy

XERIAL_EXAMPLE = bytes.fromhex(
    "82534e41505059000000000100000001" "0000000b" "171468656c6c6f20420600"
)
RAW_EXAMPLE = bytes.fromhex("171468656c6c6f20420600")


def test_snappy_spec_xerial_example_decodes():
    assert compression.decompress(2, XERIAL_EXAMPLE, 100) == b"hello hello hello hello"


def test_snappy_spec_raw_example_decodes():
    # librdkafka producers send one raw block with no framing.
    assert compression.decompress(2, RAW_EXAMPLE, 100) == b"hello hello hello hello"


def test_snappy_writes_spec_xerial_example():
    assert compression.compress("snappy", b"hello hello hello hello") == XERIAL_EXAMPLE


def test_snappy_xerial_chunks_are_32k_of_input():
    data = PAYLOADS["random-100k"]
    packed = compression.compress(2, data)
    assert packed[:16] == b"\x82SNAPPY\x00" + struct.pack(">ii", 1, 1)
    pos, chunks = 16, []
    while pos < len(packed):
        (length,) = struct.unpack_from(">i", packed, pos)
        chunks.append(bytes(cramjam.snappy.decompress_raw(packed[pos + 4 : pos + 4 + length])))
        pos += 4 + length
    assert pos == len(packed)
    assert [len(c) for c in chunks] == [32768, 32768, 32768, 4096]
    assert b"".join(chunks) == data


def test_snappy_raw_large_block_decodes():
    data = PAYLOADS["compressible-100k"]
    raw = bytes(cramjam.snappy.compress_raw(data))
    assert compression.decompress(2, raw, len(data)) == data


def test_snappy_empty_xerial_stream_is_empty():
    assert compression.decompress(2, XERIAL_EXAMPLE[:16], 10) == b""


@pytest.mark.parametrize(
    "bad",
    [
        XERIAL_EXAMPLE[:12],  # header cut short
        XERIAL_EXAMPLE[:18],  # chunk length cut short
        XERIAL_EXAMPLE[:-1],  # chunk cut short
        XERIAL_EXAMPLE[:16] + struct.pack(">i", -5) + RAW_EXAMPLE,  # negative chunk length
        XERIAL_EXAMPLE[:16] + struct.pack(">i", 100) + RAW_EXAMPLE,  # chunk past the end
        RAW_EXAMPLE[:-2],  # raw block cut short
        b"\xff\xff\xff\xff\xff\xff",  # raw block with a bad length preamble
    ],
)
def test_snappy_bad_streams_are_corrupt(bad):
    with pytest.raises(CorruptRecordError):
        compression.decompress(2, bad, MIB)


# ------------------------------------------------------------------------------------- lz4


def test_lz4_frame_header_as_kafka_writes_it():
    packed = compression.compress("lz4", b"hello")
    # magic, FLG 0x60 (v01, independent blocks, no checksums, no size), BD 0x40 (64 KiB), HC.
    assert packed[:7] == bytes.fromhex("04224d18604082")
    assert packed[-4:] == b"\x00\x00\x00\x00"  # end mark, no content checksum after it
    assert lz4.frame.decompress(packed) == b"hello"


def test_lz4_blocks_are_at_most_64k():
    data = PAYLOADS["random-100k"]
    packed = compression.compress(3, data)
    pos, sizes = 7, []
    while True:
        (size,) = struct.unpack_from("<I", packed, pos)
        if size == 0:
            break
        sizes.append(size & 0x7FFFFFFF)
        pos += 4 + (size & 0x7FFFFFFF)
    assert len(sizes) == 2  # 64 KiB + 36 KiB of input
    assert pos + 4 == len(packed)


@pytest.mark.parametrize(
    "options",
    [
        {},  # python-lz4 defaults: linked blocks, content size stored
        {"content_checksum": True, "block_checksum": True},
        {"block_size": lz4.frame.BLOCKSIZE_MAX4MB, "compression_level": 12},
    ],
)
def test_lz4_reads_other_valid_frames(options):
    data = PAYLOADS["compressible-100k"]
    assert compression.decompress(3, lz4.frame.compress(data, **options), MIB) == data


def test_lz4_bad_streams_are_corrupt():
    packed = compression.compress(3, PAYLOADS["compressible-100k"])
    for bad in (packed[:4], packed[:-4], packed[:7] + b"\xff" * 20, b"\x04\x22\x4d\x18"):
        with pytest.raises(CorruptRecordError):
            compression.decompress(3, bad, MIB)
    hc_wrong = bytearray(packed)
    hc_wrong[6] ^= 0xFF
    with pytest.raises(CorruptRecordError):
        compression.decompress(3, bytes(hc_wrong), MIB)


# ------------------------------------------------------------------------------------ zstd


def test_zstd_writes_no_content_size():
    packed = compression.compress("zstd", b"hello" * 100)
    assert packed[:4] == b"\x28\xb5\x2f\xfd"
    assert zstandard.get_frame_parameters(packed).content_size == zstandard.CONTENTSIZE_UNKNOWN


def test_zstd_reads_frames_with_and_without_content_size():
    data = PAYLOADS["compressible-100k"]
    with_size = zstandard.ZstdCompressor(write_content_size=True).compress(data)
    assert compression.decompress(4, with_size, MIB) == data
    two_frames = compression.compress(4, b"abc") + compression.compress(4, b"def")
    assert compression.decompress(4, two_frames, MIB) == b"abcdef"


def test_zstd_bad_streams_are_corrupt():
    packed = compression.compress(4, PAYLOADS["random-100k"])
    for bad in (packed[:3], packed[:10], packed[:-1], packed + b"junk"):
        with pytest.raises(CorruptRecordError):
            compression.decompress(4, bad, MIB)


# ------------------------------------------------------------------------ hostile input


@pytest.mark.parametrize("codec", REAL_CODECS)
def test_compression_bomb_is_capped(codec):
    bomb = compression.compress(codec, b"\x00" * (64 * MIB))
    assert len(bomb) < 4 * MIB
    with pytest.raises(CorruptRecordError, match="decompressed size exceeds"):
        compression.decompress(codec, bomb, MIB)


@pytest.mark.parametrize("codec", CODECS)
def test_output_exactly_max_size_is_accepted(codec):
    data = b"x" * 5000
    packed = compression.compress(codec, data)
    assert compression.decompress(codec, packed, 5000) == data
    with pytest.raises(CorruptRecordError, match="decompressed size exceeds"):
        compression.decompress(codec, packed, 4999)


def test_zstd_bomb_with_declared_size_is_capped():
    bomb = zstandard.ZstdCompressor(write_content_size=True).compress(b"\x00" * (64 * MIB))
    with pytest.raises(CorruptRecordError, match="decompressed size exceeds"):
        compression.decompress(4, bomb, MIB)


def test_snappy_raw_bomb_is_refused_before_allocation():
    # A preamble claiming ~4 GiB: refused from the preamble alone.
    claim = bytes([0xFF, 0xFF, 0xFF, 0xFF, 0x0F]) + b"\x00" * 8
    with pytest.raises(CorruptRecordError, match="decompressed size exceeds"):
        compression.decompress(2, claim, MIB)


@pytest.mark.parametrize("codec", REAL_CODECS)
@pytest.mark.parametrize("seed", range(5))
def test_garbage_is_corrupt(codec, seed):
    garbage = random.Random(seed).randbytes(1 + seed * 97)
    with pytest.raises(CorruptRecordError):
        compression.decompress(codec, garbage, MIB)


@pytest.mark.parametrize("codec", REAL_CODECS)
def test_empty_payload_is_corrupt(codec):
    with pytest.raises(CorruptRecordError):
        compression.decompress(codec, b"", MIB)


@pytest.mark.parametrize("codec", REAL_CODECS)
def test_truncated_streams_are_corrupt(codec):
    packed = compression.compress(codec, PAYLOADS["random-100k"])
    for cut in (1, 2, len(packed) // 3, len(packed) - 1):
        with pytest.raises(CorruptRecordError):
            compression.decompress(codec, packed[:cut], MIB)


@pytest.mark.parametrize("codec", REAL_CODECS)
def test_bit_flips_never_escape_as_other_errors(codec):
    packed = compression.compress(codec, PAYLOADS["compressible-100k"][:4000])
    rng = random.Random(codec)
    for _ in range(200):
        bad = bytearray(packed)
        bad[rng.randrange(len(bad))] ^= 1 << rng.randrange(8)
        try:
            out = compression.decompress(codec, bytes(bad), MIB)
        except CorruptRecordError:
            continue
        assert isinstance(out, bytes)  # some flips are harmless (e.g. gzip mtime)


def test_none_codec_copies_and_caps():
    assert compression.decompress(0, b"abc", 3) == b"abc"
    with pytest.raises(CorruptRecordError):
        compression.decompress(0, b"abcd", 3)
    assert compression.compress(None, memoryview(b"abc")) == b"abc"


def test_module_imports_nothing_above_errors():
    import ast
    import inspect

    tree = ast.parse(inspect.getsource(compression))
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module)
        elif isinstance(node, ast.Import):
            imported.update(alias.name for alias in node.names)
    assert {m for m in imported if m.startswith("headwater")} == {"headwater.errors"}

