"""LogConfig: Kafka names, defaults, both spellings, and ConfigError for bad input.

Goal: the config surface docs/storage.md documents is what PartitionLog.open accepts: Kafka's
defaults (kafka-spec.md b.3), dotted and underscore names, and a ConfigError (not a late
failure) for unknown names and out-of-range values, leaving no files behind besides the dir.

Method: build LogConfig directly and through PartitionLog.open, compare with literal values.
"""

from __future__ import annotations

import os

import pytest

from headwater.config import LogConfig
from headwater.errors import ConfigError
from headwater.log import PartitionLog


def test_kafka_defaults():
    c = LogConfig()
    assert c.segment_bytes == 1073741824
    assert c.segment_ms == 604800000
    assert c.segment_index_bytes == 10485760
    assert c.index_interval_bytes == 4096
    assert c.retention_ms == 604800000
    assert c.retention_bytes == -1
    assert c.max_message_bytes == 1048588
    assert c.message_timestamp_type == "CreateTime"
    assert c.flush_policy == "batch"


def test_dotted_and_underscore_names_agree():
    a = LogConfig.from_mapping({"segment.bytes": 4096, "retention.ms": "-1"})
    b = LogConfig.from_mapping(segment_bytes=4096, retention_ms=-1)
    assert a == b and a.segment_bytes == 4096 and a.retention_ms == -1
    assert a.kafka_names()["segment.bytes"] == 4096


@pytest.mark.parametrize(
    "config",
    [
        {"segment.bytez": 1},
        {"no_such": 1},
        {"segment.bytes": 13},
        {"segment.bytes": "big"},
        {"segment.bytes": None},
        {"segment.ms": 0},
        {"segment.index.bytes": 11},
        {"index.interval.bytes": -1},
        {"max.message.bytes": -1},
        {"retention.ms": -2},
        {"retention.bytes": -2},
        {"flush.policy": "sometimes"},
        {"flush.messages": 0},
        {"flush.ms": -1},
        {"message.timestamp.type": "BrokerTime"},
    ],
)
def test_bad_config_raises_configerror(config, tmp_path):
    with pytest.raises(ConfigError):
        LogConfig.from_mapping(config)
    path = tmp_path / "t-0"
    with pytest.raises(ConfigError):
        PartitionLog.open(path, **config)
    assert not path.exists() or not any(n.endswith(".log") for n in os.listdir(path))


def test_open_accepts_logconfig_and_overrides(tmp_path):
    base = LogConfig.from_mapping({"segment.bytes": 4096})
    log = PartitionLog.open(tmp_path / "a-0", base, retention_ms=5)
    try:
        assert log.config.segment_bytes == 4096 and log.config.retention_ms == 5
    finally:
        log.close()
    log = PartitionLog.open(tmp_path / "b-0", {"segment.bytes": 8192})
    try:
        assert log.config.segment_bytes == 8192
    finally:
        log.close()
