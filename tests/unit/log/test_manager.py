"""LogManager tests: partition directories, partition.metadata, deletion, retention, flush.

Goal: the data directory looks as Kafka lays it out (`<topic>-<partition>`, a
`partition.metadata` of version 0 with a base64url topic id), deletion goes through a
`-delete` rename that survives a crash, per-topic configs reach the logs, and the scheduled
jobs (retention, interval flush) act only when the now_ms they are given says so.
Method: real PartitionLogs in tmp_path; crashes are simulated by leaving the on-disk state a
crash would leave (a `-delete` directory, a stale partition directory) and reopening; time is
explicit now_ms values, never sleeps.
"""

from __future__ import annotations

import base64
import os
import time
import uuid
from pathlib import Path

import pytest

from headwater.config import LogConfig
from headwater.errors import (
    ConfigError,
    InconsistentTopicIdError,
    InvalidConfigurationError,
    UnknownTopicOrPartitionError,
)
from headwater.log.manager import (
    LogManager,
    decode_topic_id,
    encode_topic_id,
    new_topic_id,
    parse_partition_dir,
    read_partition_metadata,
)

DAY_MS = 86_400_000


@pytest.fixture
def manager(tmp_path: Path):
    managers: list[LogManager] = []

    def make(**kwargs: object) -> LogManager:
        m = LogManager(tmp_path / "data", **kwargs)  # type: ignore[arg-type]
        managers.append(m)
        return m

    yield make
    for m in managers:
        m.close_all()


def test_topic_id_is_base64url_without_padding() -> None:
    tid = uuid.UUID("00112233-4455-6677-8899-aabbccddeeff")
    text = encode_topic_id(tid)
    assert len(text) == 22 and "=" not in text
    assert base64.urlsafe_b64decode(text + "==") == tid.bytes
    assert decode_topic_id(text) == tid
    for _ in range(200):
        fresh = new_topic_id()
        assert not encode_topic_id(fresh).startswith("-")
        assert fresh.version == 4
    with pytest.raises(ValueError):
        decode_topic_id("short")
    with pytest.raises(ValueError):
        decode_topic_id("+" * 22)  # standard base64, not base64url


def test_partition_dir_names_follow_kafka() -> None:
    assert parse_partition_dir("orders-0") == ("orders", 0)
    assert parse_partition_dir("my-topic.v2-17") == ("my-topic.v2", 17)
    assert parse_partition_dir("a-b-c-3") == ("a-b-c", 3)
    for bad in (
        "orders",
        "orders-",
        "orders-01",
        "orders-x",
        "-1",
        "..-0",
        "orders-0.abc-delete",
        "t-1-delete",
    ):
        assert parse_partition_dir(bad) is None, bad


def test_create_log_makes_kafka_layout(manager, tmp_path: Path) -> None:
    m = manager()
    tid = new_topic_id()
    log = m.create_log("orders", 2, tid)
    log.append([b"v"])
    pdir = tmp_path / "data" / "orders-2"
    assert pdir.is_dir()
    text = (pdir / "partition.metadata").read_text()
    assert text == f"version: 0\ntopic_id: {encode_topic_id(tid)}\n"
    assert read_partition_metadata(str(pdir)) == tid
    assert (pdir / "00000000000000000000.log").exists()
    assert m.get_log("orders", 2) is log
    assert m.create_log("orders", 2, tid) is log  # idempotent
    assert m.partitions_on_disk() == [("orders", 2)]


def test_get_log_unknown_partition(manager) -> None:
    m = manager()
    with pytest.raises(UnknownTopicOrPartitionError) as info:
        m.get_log("nope", 0)
    assert info.value.code == 3


def test_create_log_rejects_other_topic_id(manager) -> None:
    m = manager()
    m.create_log("t", 0, new_topic_id())
    with pytest.raises(InconsistentTopicIdError):
        m.create_log("t", 0, new_topic_id())


def test_create_log_rejects_bad_names(manager) -> None:
    m = manager()
    with pytest.raises(ValueError):
        m.create_log("t", -1)
    with pytest.raises(ValueError):
        m.create_log("bad/name", 0)


def test_reopen_opens_every_partition_with_its_data(manager) -> None:
    m = manager()
    for p in range(3):
        m.create_log("t", p, new_topic_id()).append([b"x"] * (p + 1))
    m.close_all()
    m2 = manager()
    opened = dict(m2.logs())
    assert sorted(opened) == [("t", 0), ("t", 1), ("t", 2)]
    assert [opened[("t", p)].log_end_offset for p in range(3)] == [1, 2, 3]


def test_lazy_manager_opens_on_get(manager) -> None:
    m = manager()
    m.create_log("t", 0).append([b"x"])
    m.close_all()
    lazy = manager(load=False)
    assert list(lazy.logs()) == []
    assert lazy.get_log("t", 0).log_end_offset == 1


def test_delete_renames_then_removes(manager, tmp_path: Path, monkeypatch) -> None:
    m = manager()
    m.create_log("t", 0, new_topic_id()).append([b"x"])
    m.create_log("t", 1, new_topic_id())
    m.create_log("other", 0, new_topic_id())
    renames: list[tuple[str, str]] = []
    real_rename = os.rename

    def spy(src: str, dst: str) -> None:
        renames.append((os.path.basename(src), os.path.basename(dst)))
        real_rename(src, dst)

    monkeypatch.setattr(os, "rename", spy)
    assert m.delete_topic("t") == [0, 1]
    assert [src for src, _ in renames] == ["t-0", "t-1"]
    for src, dst in renames:
        prefix, _, rest = dst.partition(".")
        assert prefix == src and len(rest) == len("0" * 32 + "-delete") and rest.endswith("-delete")
    assert sorted(os.listdir(tmp_path / "data")) == ["other-0"]
    with pytest.raises(UnknownTopicOrPartitionError):
        m.get_log("t", 0)
    assert m.delete_log("t", 0) is False


def test_startup_removes_leftover_delete_dirs(manager, tmp_path: Path) -> None:
    """A crash after the rename and before the removal leaves a -delete dir: gone on start."""
    data = tmp_path / "data"
    m = manager()
    m.create_log("t", 0).append([b"x"])
    m.close_all()
    os.rename(data / "t-0", data / f"t-0.{uuid.uuid4().hex}-delete")
    (data / "keep-me.txt").write_text("not ours")
    m2 = manager()
    assert len(m2.removed_on_start) == 1
    assert sorted(os.listdir(data)) == ["keep-me.txt"]
    assert list(m2.logs()) == []


def test_remove_unknown_drops_stale_dirs(manager) -> None:
    m = manager()
    live, stale = new_topic_id(), new_topic_id()
    m.create_log("live", 0, live)
    m.create_log("live", 1, stale)  # directory from an older "live" with another id
    m.create_log("live", 5, live)  # beyond the partition count
    m.create_log("gone", 0, new_topic_id())
    removed = m.remove_unknown({"live": (live, 2)})
    assert sorted(removed) == [("gone", 0), ("live", 1), ("live", 5)]
    assert m.partitions_on_disk() == [("live", 0)]


def test_topic_config_overrides_reach_logs(manager) -> None:
    m = manager(config={"segment.bytes": 1 << 20}, topic_configs={"small": {"segment.bytes": 4096}})
    small = m.create_log("small", 0)
    big = m.create_log("big", 0)
    assert small.config.segment_bytes == 4096
    assert big.config.segment_bytes == 1 << 20
    m.set_topic_config("big", {"retention.ms": 5})
    assert big.config.retention_ms == 5 and big.config.segment_bytes == 1 << 20
    m.set_topic_config("small", None)
    assert small.config == m.default_config


def test_bad_configs_raise_invalid_configuration(manager) -> None:
    with pytest.raises(InvalidConfigurationError) as info:
        manager(config={"no.such.config": 1})
    assert info.value.code == 40 and isinstance(info.value, ConfigError)
    m = manager()
    with pytest.raises(InvalidConfigurationError):
        m.set_topic_config("t", {"segment.bytes": 1})
    assert m.topic_config("t") == LogConfig()


def _fill(log, batches: int, timestamp: int) -> None:
    for _ in range(batches):
        # Keys: one topic of the test is compacted, and compacted topics reject null keys.
        log.append([b"v" * 200] * 5, keys=[b"k%d" % i for i in range(5)], timestamp=timestamp)


def test_retention_is_driven_by_now_ms(manager) -> None:
    m = manager(config={"segment.bytes": 2048, "flush.policy": "none"})
    m.set_topic_config("short", {"retention.ms": DAY_MS})
    m.set_topic_config("compacted", {"retention.ms": DAY_MS, "cleanup.policy": "compact"})
    t0 = 1_700_000_000_000
    short = m.create_log("short", 0)
    compacted = m.create_log("compacted", 0)
    default = m.create_log("default", 0)  # retention.ms = 7 days
    for log in (short, compacted, default):
        _fill(log, 6, t0)
    assert len(short.segments) > 2
    assert m.run_retention(t0 + DAY_MS) == {}  # exactly at the limit: kept
    result = m.run_retention(t0 + DAY_MS + 1)
    assert list(result) == [("short", 0)]
    assert short.log_start_offset == short.log_end_offset == 30
    assert compacted.log_start_offset == 0  # compact only: retention does not apply
    assert default.log_start_offset == 0
    result = m.run_retention(t0 + 7 * DAY_MS + 1)
    assert list(result) == [("default", 0)]


def test_retention_bytes(manager) -> None:
    m = manager(config={"segment.bytes": 2048, "retention.ms": -1, "flush.policy": "none"})
    m.set_topic_config("t", {"retention.bytes": 4096})
    log = m.create_log("t", 0)
    _fill(log, 10, 1)
    assert m.run_retention(2)[("t", 0)]
    assert log.size_bytes <= 4096 + 2048


def test_interval_flush_is_driven_by_now_ms(manager) -> None:
    m = manager(config={"flush.policy": "interval", "flush.ms": 1000})
    log = m.create_log("t", 0)
    idle = m.create_log("idle", 0)
    batch_policy = m.create_log("b", 0)
    m.set_topic_config("b", {"flush.policy": "batch"})
    log.append([b"x"])
    batch_policy.append([b"x"])
    assert log.recovery_point == 0
    assert m.maybe_flush_all(0) == []  # the interval has not passed
    later = int(time.time() * 1000) + 10_000
    assert m.maybe_flush_all(later) == [("t", 0)]
    assert log.recovery_point == 1
    assert idle.recovery_point == 0
    assert m.maybe_flush_all(later + 10_000) == []  # nothing new to flush


def test_close_all_closes_cleanly_and_refuses_more(manager, tmp_path: Path) -> None:
    m = manager()
    m.create_log("t", 0).append([b"x"])
    m.close_all()
    m.close_all()  # idempotent
    assert (tmp_path / "data" / "t-0" / ".clean-shutdown").exists()
    with pytest.raises(RuntimeError):
        m.get_log("t", 0)
