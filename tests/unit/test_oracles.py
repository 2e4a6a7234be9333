"""Independent oracles: real Kafka client libraries read what we write and we read what they write.

Goal: our RecordBatch v2 codec (native and pure) and our compression module agree with the
record layers of kafka-python (3.x) and aiokafka (0.14), both its Cython and its pure-Python
variant, in both directions, for every codec. Those libraries were written against real
brokers, so agreement here is evidence of wire compatibility that does not depend on our own
reading of the spec.

Method:
  (a) We build a batch (``impl.build_batch``), compress it with
      ``headwater.record.compress_batch`` for each codec and hand it to each client reader
      (``DefaultRecordBatch`` directly and via ``MemoryRecords``): CRC validates, header
      fields, and every record's offset, timestamp, key, value and headers match.
  (b) Each client builder (``DefaultRecordBatchBuilder``) writes a batch with the same
      records for each codec; our ``parse_batch_header``/``check_batch`` accept it and
      ``headwater.record.batch_records`` plus ``impl.decode_records`` yield the same records.
The client libraries' snappy support is borrowed where needed: kafka-python reads snappy
through python-snappy, which is not installed, so its ``snappy`` module is replaced by a
two-function shim over cramjam's raw block codec; kafka-python's own xerial framing code is
still what frames and unframes the blocks.
"""

from __future__ import annotations

import importlib
import os
import struct
import types

import cramjam
import pytest

from headwater import compression

TS0 = 1700000000000
CODECS = ["none", "gzip", "snappy", "lz4", "zstd"]


def _sample_records() -> list[tuple[int, bytes | None, bytes | None, list]]:
    """(timestamp, key, value, headers) with every shape the format allows."""
    records = [
        (TS0, b"key", b"value", [("h", b"v")]),
        (TS0 + 5, None, b"v2", []),
        (TS0 - 3, b"", b"", [("", b""), ("null", None)]),  # negative delta, empty key/value
        (TS0 + 1, b"tombstone", None, []),
        (TS0 + 2, None, None, [("é✓", b"\x00\xff"), ("h", b"x" * 300)]),
    ]
    # Enough compressible payload that every client actually compresses (kafka-python and
    # aiokafka fall back to no compression when it does not help).
    for i in range(60):
        records.append(
            (TS0 + 10 + i, b"user-%03d" % (i % 7), b"payload %d " % i * 40, [("seq", b"%d" % i)])
        )
    return records


RECORDS = _sample_records()


def _expected(base_offset: int = 0) -> list[tuple]:
    return [
        (base_offset + i, ts, key, value, [tuple(h) for h in headers])
        for i, (ts, key, value, headers) in enumerate(RECORDS)
    ]


def _as_tuple(record) -> tuple:
    return (record.offset, record.timestamp, record.key, record.value,
            [tuple(h) for h in record.headers])


# -------------------------------------------------------------------------- client access


@pytest.fixture
def kafka_python_snappy(monkeypatch):
    """Give kafka-python a snappy module (raw blocks via cramjam) if python-snappy is absent."""
    import kafka.codec

    if kafka.codec.snappy is None:
        shim = types.SimpleNamespace(
            compress=lambda data: bytes(cramjam.snappy.compress_raw(bytes(data))),
            decompress=lambda data: bytes(cramjam.snappy.decompress_raw(bytes(data))),
        )
        monkeypatch.setattr(kafka.codec, "snappy", shim)


def _client(name: str):
    """(batch_class, memory_records_class, builder_class) of one client record layer."""
    if name == "kafka-python":
        from kafka.record.default_records import DefaultRecordBatch, DefaultRecordBatchBuilder
        from kafka.record.memory_records import MemoryRecords

        return DefaultRecordBatch, MemoryRecords, DefaultRecordBatchBuilder
    if name == "aiokafka-cython":
        try:
            crecords = importlib.import_module("aiokafka.record._crecords")
        except ImportError:
            pytest.skip("aiokafka was installed without its Cython extensions")
        return crecords.DefaultRecordBatch, crecords.MemoryRecords, crecords.DefaultRecordBatchBuilder
    assert name == "aiokafka-python"
    from aiokafka.record import default_records, memory_records

    return (default_records._DefaultRecordBatchPy, memory_records._MemoryRecordsPy,
            default_records._DefaultRecordBatchBuilderPy)


CLIENTS = ["kafka-python", "aiokafka-cython", "aiokafka-python"]


@pytest.fixture
def record_layer():
    """headwater.record, bound to native or (with HEADWATER_NO_EXTENSIONS=1) pure."""
    try:
        return importlib.import_module("headwater.record")
    except ImportError as exc:
        if os.environ.get("HEADWATER_NO_EXTENSIONS") == "1":
            raise
        pytest.fail(f"headwater.record does not import ({exc}); build the extension",
                    pytrace=False)


def _build_ours(impl, record_layer, codec: str, **fields) -> bytes:
    batch = impl.build_batch(
        [r[2] for r in RECORDS],
        keys=[r[1] for r in RECORDS],
        headers=[r[3] for r in RECORDS],
        timestamps=[r[0] for r in RECORDS],
        **fields,
    )
    return record_layer.compress_batch(batch, codec)


def _build_client(client: str, codec: str, *, transactional: bool = False) -> bytes:
    _, _, builder_class = _client(client)
    producer = (4242, 7, 100) if transactional else (-1, -1, -1)
    builder = builder_class(2, compression.codec_id(codec), transactional, *producer, 1 << 24)
    for i, (ts, key, value, headers) in enumerate(RECORDS):
        assert builder.append(i, ts, key, value, headers) is not None
    return bytes(builder.build())


# ------------------------------------------------------- (a) clients read what we write


@pytest.mark.usefixtures("kafka_python_snappy")
@pytest.mark.parametrize("client", CLIENTS)
@pytest.mark.parametrize("codec", CODECS)
def test_client_reads_our_batch(impl, record_layer, client, codec):
    batch = _build_ours(impl, record_layer, codec, base_offset=500, partition_leader_epoch=3)
    assert batch[22] & 0x07 == compression.codec_id(codec)
    batch_class, _, _ = _client(client)
    theirs = batch_class(batch)
    assert theirs.validate_crc()
    assert theirs.base_offset == 500
    assert theirs.magic == 2
    assert theirs.compression_type == compression.codec_id(codec)
    assert theirs.last_offset_delta == len(RECORDS) - 1
    assert theirs.first_timestamp == TS0
    assert theirs.max_timestamp == max(r[0] for r in RECORDS)
    assert (theirs.producer_id, theirs.producer_epoch, theirs.base_sequence) == (-1, -1, -1)
    assert not theirs.is_transactional and not theirs.is_control_batch
    assert [_as_tuple(r) for r in theirs] == _expected(500)


@pytest.mark.usefixtures("kafka_python_snappy")
@pytest.mark.parametrize("client", CLIENTS)
@pytest.mark.parametrize("codec", ["none", "zstd"])
def test_client_reads_our_transactional_batch(impl, record_layer, client, codec):
    batch = _build_ours(impl, record_layer, codec, producer_id=4242, producer_epoch=7,
                        base_sequence=100, attributes=0x10)
    batch_class, _, _ = _client(client)
    theirs = batch_class(batch)
    assert theirs.validate_crc()
    assert (theirs.producer_id, theirs.producer_epoch, theirs.base_sequence) == (4242, 7, 100)
    assert theirs.is_transactional and not theirs.is_control_batch
    assert [_as_tuple(r) for r in theirs] == _expected()


@pytest.mark.parametrize("client", CLIENTS)
def test_client_reads_our_control_batch(impl, client):
    batch = impl.build_control_batch(1, producer_id=4242, producer_epoch=7, coordinator_epoch=5,
                                     timestamp=TS0, base_offset=77)
    batch_class, _, _ = _client(client)
    theirs = batch_class(batch)
    assert theirs.validate_crc()
    assert theirs.is_control_batch and theirs.is_transactional
    (record,) = list(theirs)
    assert record.offset == 77
    assert bytes(record.key) == b"\x00\x00\x00\x01"
    assert bytes(record.value) == b"\x00\x00\x00\x00\x00\x05"


@pytest.mark.usefixtures("kafka_python_snappy")
@pytest.mark.parametrize("client", CLIENTS)
def test_client_memory_records_iterates_our_batches(impl, record_layer, client):
    stream = b"".join(
        _build_ours(impl, record_layer, codec, base_offset=len(RECORDS) * i)
        for i, codec in enumerate(CODECS)
    )
    _, memory_records_class, _ = _client(client)
    records = memory_records_class(stream)
    seen = []
    while records.has_next():
        batch = records.next_batch()
        assert batch.validate_crc()
        seen.extend(_as_tuple(r) for r in batch)
    assert seen == [row for i in range(len(CODECS)) for row in _expected(len(RECORDS) * i)]


def test_uncompressed_batch_is_byte_identical_to_kafka_python(impl):
    # kafka-python writes base_offset 0 and partition_leader_epoch 0.
    ours = impl.build_batch(
        [r[2] for r in RECORDS], keys=[r[1] for r in RECORDS], headers=[r[3] for r in RECORDS],
        timestamps=[r[0] for r in RECORDS], partition_leader_epoch=0,
    )
    assert ours == _build_client("kafka-python", "none")


# ------------------------------------------------------- (b) we read what clients write


@pytest.mark.usefixtures("kafka_python_snappy")
@pytest.mark.parametrize("client", CLIENTS)
@pytest.mark.parametrize("codec", CODECS)
@pytest.mark.parametrize("transactional", [False, True], ids=["plain", "txn"])
def test_we_read_client_batch(impl, record_layer, client, codec, transactional):
    batch = _build_client(client, codec, transactional=transactional)
    header = impl.check_batch(batch)
    assert impl.parse_batch_header(batch).crc == header.crc
    assert header.compression == compression.codec_id(codec)  # the client did compress
    assert header.size == len(batch)
    assert header.records_count == len(RECORDS)
    assert header.last_offset_delta == len(RECORDS) - 1
    assert header.base_timestamp == TS0
    assert header.max_timestamp == max(r[0] for r in RECORDS)
    assert header.is_transactional is transactional
    assert not header.is_control
    if transactional:
        assert (header.producer_id, header.producer_epoch, header.base_sequence) == (4242, 7, 100)

    # Through the record layer (whichever implementation it is bound to) ...
    assert [_as_tuple(r) for r in record_layer.batch_records(batch)] == _expected()
    # ... and through this implementation's decode_records directly.
    section = memoryview(batch)[61:]
    if header.compression:
        section = compression.decompress(header.compression, section, 1 << 26)
    records = impl.decode_records(section, header.records_count, header.base_offset,
                                  header.base_timestamp)
    assert [_as_tuple(r) for r in records] == _expected()


@pytest.mark.usefixtures("kafka_python_snappy")
@pytest.mark.parametrize("client", CLIENTS)
@pytest.mark.parametrize("codec", ["gzip", "snappy", "lz4", "zstd"])
def test_client_compressed_records_match_ours_uncompressed(impl, client, codec):
    # The decompressed records section a client wrote equals the one we build ourselves.
    batch = _build_client(client, codec)
    section = compression.decompress(codec, memoryview(batch)[61:], 1 << 26)
    ours = impl.build_batch(
        [r[2] for r in RECORDS], keys=[r[1] for r in RECORDS], headers=[r[3] for r in RECORDS],
        timestamps=[r[0] for r in RECORDS],
    )
    assert section == ours[61:]


@pytest.mark.parametrize("client", CLIENTS)
def test_we_reject_client_batch_with_flipped_byte(impl, client):
    from headwater.errors import InvalidCrcError

    batch = bytearray(_build_client(client, "none"))
    batch[100] ^= 0x01
    with pytest.raises(InvalidCrcError):
        impl.check_batch(bytes(batch))


def test_kafka_python_log_append_time_batch(impl, record_layer):
    # LogAppendTime is set by a broker; emulate one by setting bit 3 and max_timestamp.
    batch = bytearray(_build_client("kafka-python", "lz4"))
    struct.pack_into(">h", batch, 21, struct.unpack_from(">h", batch, 21)[0] | 0x08)
    struct.pack_into(">q", batch, 35, TS0 + 99999)
    struct.pack_into(">I", batch, 17, impl.crc32c(memoryview(batch)[21:]))
    header = impl.check_batch(bytes(batch))
    assert header.timestamp_type == 1
    records = record_layer.batch_records(bytes(batch))
    assert {r.timestamp for r in records} == {TS0 + 99999}


def test_value_only_batch_across_varint_widths_is_byte_identical_to_kafka_python(impl, tmp_path):
    """The producer's path (values only, one timestamp) writes its varints without a loop for
    one and two bytes: value lengths, record lengths and offset deltas here cross the 1/2 and
    2/3-byte boundaries (zig-zag 64 and 8192). kafka-python must write the same bytes, both
    for build_batch and for the batch a segment append writes into its file."""
    lengths = [0, 1, 62, 63, 64, 65, 100, 8190, 8191, 8192, 8193, 20000]
    values = [b"v" * lengths[i % len(lengths)] if i % 50 else None for i in range(8300)]
    _, _, builder_class = _client("kafka-python")
    builder = builder_class(magic=2, compression_type=0, is_transactional=False,
                            producer_id=-1, producer_epoch=-1, base_sequence=-1, batch_size=1 << 30)
    for offset, value in enumerate(values):
        builder.append(offset, timestamp=TS0, key=None, value=value, headers=[])
    theirs = bytes(builder.build())
    # kafka-python writes partition_leader_epoch 0.
    assert impl.build_batch(values, timestamp=TS0, partition_leader_epoch=0) == theirs
    if impl.__name__ == "headwater._native._native":
        seg = impl.Segment(str(tmp_path / "0.log"), 64 << 20, True)
        position, size = seg.append_records(values, None, TS0, 0, 0)
        seg.close()
        with open(tmp_path / "0.log", "rb") as f:
            f.seek(position)
            assert f.read(size) == theirs
