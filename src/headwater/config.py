"""Typed settings with Kafka's names and defaults.

A config is given as a mapping of Kafka names (``{"segment.bytes": 1 << 20}``) or as keyword
arguments with underscores (``segment_bytes=1 << 20``); both spellings normalise to the dotted
Kafka name. Unknown names and out-of-range values raise ConfigError at open, not later.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from headwater.errors import ConfigError

LONG_MAX = 9223372036854775807

FLUSH_POLICIES = ("batch", "interval", "none")
TIMESTAMP_TYPES = ("CreateTime", "LogAppendTime")


# Topic compression.type values (Kafka's BrokerCompressionType).
COMPRESSION_TYPES = ("producer", "uncompressed", "gzip", "snappy", "lz4", "zstd")


@dataclass(frozen=True)
class LogConfig:
    """Per-partition log settings (kafka-spec.md b.3; docs/storage.md)."""

    segment_bytes: int = 1073741824
    segment_ms: int = 604800000
    segment_jitter_ms: int = 0
    segment_index_bytes: int = 10485760
    index_interval_bytes: int = 4096
    retention_ms: int = 604800000
    retention_bytes: int = -1
    max_message_bytes: int = 1048588
    message_timestamp_type: str = "CreateTime"
    flush_policy: str = "batch"
    flush_ms: int = 1000
    flush_messages: int = LONG_MAX
    cleanup_policy: str = "delete"
    delete_retention_ms: int = 86400000
    # Compaction (cleanup.policy=compact, log/cleaner.py): clean a log once the bytes not yet
    # cleaned are this share of its non-active bytes; keep records younger than the lag dirty.
    min_cleanable_dirty_ratio: float = 0.5
    min_compaction_lag_ms: int = 0
    file_delete_delay_ms: int = 0
    min_insync_replicas: int = 1
    # Broker-wide in Kafka; per partition here (kafka-spec.md c.5): idle producers' state goes.
    producer_id_expiration_ms: int = 86400000
    # "producer" keeps batches as the producer compressed them; a codec name (or
    # "uncompressed") makes the log store every batch with that codec, recompressing as Kafka.
    compression_type: str = "producer"

    @classmethod
    def from_mapping(cls, config: Mapping[str, Any] | None = None, **kwargs: Any) -> LogConfig:
        """Build from Kafka names (dotted) and/or underscore keyword names."""
        known = {f.name: f for f in fields(cls)}
        values: dict[str, Any] = {}
        merged: dict[str, Any] = dict(config or {})
        merged.update(kwargs)
        for name, value in merged.items():
            attr = name.replace(".", "_")
            if attr not in known:
                raise ConfigError(f"unknown log config {name!r}")
            default = known[attr].default
            if isinstance(default, int) and not isinstance(default, bool):
                try:
                    value = int(value)
                except (TypeError, ValueError) as exc:
                    raise ConfigError(f"{name} must be an integer, got {value!r}") from exc
            elif isinstance(default, float):
                try:
                    value = float(value)
                except (TypeError, ValueError) as exc:
                    raise ConfigError(f"{name} must be a number, got {value!r}") from exc
            values[attr] = value
        cfg = cls(**values)
        cfg.validate()
        return cfg

    def validate(self) -> None:
        if self.segment_bytes < 14:
            raise ConfigError("segment.bytes must be at least 14")
        if self.segment_index_bytes < 12:
            raise ConfigError("segment.index.bytes must hold at least one entry")
        if self.index_interval_bytes < 0:
            raise ConfigError("index.interval.bytes must be >= 0")
        if self.segment_ms < 1:
            raise ConfigError("segment.ms must be >= 1")
        if self.max_message_bytes < 0:
            raise ConfigError("max.message.bytes must be >= 0")
        if self.flush_policy not in FLUSH_POLICIES:
            raise ConfigError(f"flush.policy must be one of {FLUSH_POLICIES}")
        if self.message_timestamp_type not in TIMESTAMP_TYPES:
            raise ConfigError(f"message.timestamp.type must be one of {TIMESTAMP_TYPES}")
        if self.flush_ms < 0 or self.flush_messages < 1:
            raise ConfigError("flush.ms must be >= 0 and flush.messages >= 1")
        if self.retention_ms < -1 or self.retention_bytes < -1:
            raise ConfigError("retention.ms / retention.bytes must be >= -1")
        if not 0.0 <= self.min_cleanable_dirty_ratio <= 1.0:
            raise ConfigError("min.cleanable.dirty.ratio must be in [0, 1]")
        if self.min_compaction_lag_ms < 0 or self.delete_retention_ms < 0:
            raise ConfigError("min.compaction.lag.ms / delete.retention.ms must be >= 0")
        if self.producer_id_expiration_ms < 1:
            raise ConfigError("producer.id.expiration.ms must be >= 1")
        if self.compression_type not in COMPRESSION_TYPES:
            raise ConfigError(f"compression.type must be one of {COMPRESSION_TYPES}")

    def kafka_names(self) -> dict[str, Any]:
        """The settings under their Kafka (dotted) names."""
        return {f.name.replace("_", "."): getattr(self, f.name) for f in fields(self)}


def config_flag(name: str, value: Any) -> bool:
    """A boolean client setting as librdkafka reads it: True/False, 1/0, or the strings
    "true"/"false" (any case). Anything else is a ConfigError (bool("false") would be True)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise ConfigError(f"{name} must be true or false, not {value!r}")
