"""compression.type on a topic: every batch is stored with that codec (Kafka's LogValidator
recompression), whatever the producer sent; `producer` keeps the producer's codec."""

from __future__ import annotations

import time

import pytest

from headwater import record
from headwater.errors import ConfigError
from headwater.log import PartitionLog

CODECS = {"uncompressed": 0, "gzip": 1, "snappy": 2, "lz4": 3, "zstd": 4}


@pytest.mark.parametrize("topic", ["producer", *CODECS])
@pytest.mark.parametrize("sent", ["none", "gzip", "lz4", "zstd", "snappy"])
def test_batches_are_stored_with_the_topic_codec(tmp_path, topic: str, sent: str) -> None:
    raw = record.build_batch([b"a" * 50, None, b"c" * 70], [b"k1", b"k2", None], [[("h", b"1")], [], []],
                             timestamp=int(time.time() * 1000), producer_id=7, producer_epoch=0, base_sequence=0)
    raw = record.compress_batch(raw, sent)
    with PartitionLog.open(tmp_path / "p", {"compression.type": topic}) as log:
        first = log.append_batch_ex(raw)
        again = log.append_batch_ex(raw)  # an idempotent retry is still recognised
        log.append([b"plain"], compression="gzip")
        with log.read(0) as result:
            codecs = [h.compression for h, v in result.batches() if not v.release()]
            recs = [(r.offset, r.key, r.value, list(r.headers)) for r in result]
    expected = record._compression.codec_id(sent) if topic == "producer" else CODECS[topic]
    assert codecs[0] == expected
    assert codecs[1] == (1 if topic == "producer" else CODECS[topic])
    assert again.duplicate and again.base_offset == first.base_offset == 0
    assert recs == [(0, b"k1", b"a" * 50, [("h", b"1")]), (1, b"k2", None, []), (2, None, b"c" * 70, []), (3, None, b"plain", [])]


def test_unknown_compression_type_is_a_config_error(tmp_path) -> None:
    with pytest.raises(ConfigError):
        PartitionLog.open(tmp_path / "p", {"compression.type": "brotli"})
