"""Topic metadata store tests: CRUD, validation, persistence and atomic replacement.

Goal: topics behave as Kafka's admin API defines them (error codes 3, 17, 36, 37, 38, 40),
topic ids are stable across reopens and new for a re-created topic, and the metadata file is
never half-written: after a crash the store holds either the old or the new state.
Method: a MetadataStore in tmp_path, reopened to check persistence; crashes are simulated by
leaving the files a crash would leave (a stray `.tmp` beside the old file) and by making the
rename or the write fail with monkeypatch.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import pytest

from headwater.broker import (
    MetadataStore,
    TopicMetadata,
    normalize_topic_config,
    validate_topic_name,
)
from headwater.broker.metadata import METADATA_FILE
from headwater.config import LogConfig
from headwater.errors import (
    ConfigError,
    InvalidConfigurationError,
    InvalidPartitionsError,
    InvalidReplicationFactorError,
    InvalidTopicError,
    KafkaStorageError,
    TopicAlreadyExistsError,
    UnknownTopicOrPartitionError,
)
from headwater.log.manager import LogManager, encode_topic_id, read_partition_metadata


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def store(data_dir: Path):
    s = MetadataStore.open(data_dir)
    yield s
    s.close()


def reopen(s: MetadataStore) -> MetadataStore:
    s.close()
    return MetadataStore.open(s.data_dir)


# ----------------------------------------------------------------------------- names


@pytest.mark.parametrize(
    "name",
    [
        "a",
        "orders",
        "my.topic",
        "my_topic",
        "my-topic",
        "A-Z.0_9",
        "x" * 249,
        "__consumer_offsets_like",
    ],
)
def test_valid_topic_names(name: str) -> None:
    assert validate_topic_name(name) == name


@pytest.mark.parametrize(
    "name",
    ["", ".", "..", "x" * 250, "with space", "slash/name", "ümlaut", "tab\t", "star*", 42, None],
)
def test_invalid_topic_names(store: MetadataStore, name: object) -> None:
    with pytest.raises(InvalidTopicError) as info:
        store.create_topic(name)  # type: ignore[arg-type]
    assert info.value.code == 17
    assert store.list_topics() == {}


def test_dot_underscore_collision_is_refused(store: MetadataStore) -> None:
    store.create_topic("a.b")
    with pytest.raises(InvalidTopicError, match="collides"):
        store.create_topic("a_b")


def test_internal_topic_needs_the_internal_flag(store: MetadataStore) -> None:
    with pytest.raises(InvalidTopicError):
        store.create_topic("__consumer_offsets", 50)
    t = store.create_topic(
        "__consumer_offsets", 50, config={"cleanup.policy": "compact"}, internal=True
    )
    assert t.internal
    assert "__consumer_offsets" not in store.list_topics(include_internal=False)
    with pytest.raises(InvalidTopicError):
        store.delete_topic("__consumer_offsets")


# ----------------------------------------------------------------------------- CRUD


def test_create_describe_list_delete(store: MetadataStore) -> None:
    t = store.create_topic("orders", 3, config={"retention.ms": "3600000"})
    assert isinstance(t, TopicMetadata)
    assert (t.name, t.partitions, t.replication_factor) == ("orders", 3, 1)
    assert t.config == {"retention.ms": 3600000}
    assert t.topic_id.version == 4
    assert len(t.topic_id_str) == 22
    assert store.describe_topic("orders") == t
    assert store.topic_by_id(t.topic_id) == t
    assert "orders" in store and store.get("missing") is None
    store.create_topic("audit")
    assert list(store.list_topics()) == ["audit", "orders"]
    assert store.delete_topic("orders") == t
    assert list(store.list_topics()) == ["audit"]


def test_duplicate_topic(store: MetadataStore) -> None:
    store.create_topic("t")
    with pytest.raises(TopicAlreadyExistsError) as info:
        store.create_topic("t", 5)
    assert info.value.code == 36
    assert store.describe_topic("t").partitions == 1


def test_unknown_topic(store: MetadataStore) -> None:
    for call in (
        lambda: store.describe_topic("x"),
        lambda: store.delete_topic("x"),
        lambda: store.create_partitions("x", 4),
        lambda: store.alter_topic_config("x", {"retention.ms": 1}),
        lambda: store.effective_config("x"),
    ):
        with pytest.raises(UnknownTopicOrPartitionError) as info:
            call()
        assert info.value.code == 3


@pytest.mark.parametrize("partitions", [0, -2, 2**31, "3", 1.5, True])
def test_bad_partition_counts(store: MetadataStore, partitions: object) -> None:
    with pytest.raises(InvalidPartitionsError) as info:
        store.create_topic("t", partitions)  # type: ignore[arg-type]
    assert info.value.code == 37


def test_default_partitions_and_replication(data_dir: Path) -> None:
    with MetadataStore.open(data_dir, default_partitions=6) as s:
        t = s.create_topic("t", -1, -1)
        assert (t.partitions, t.replication_factor) == (6, 1)


@pytest.mark.parametrize("rf", [0, 2, 3, -5])
def test_bad_replication_factor(store: MetadataStore, rf: int) -> None:
    with pytest.raises(InvalidReplicationFactorError) as info:
        store.create_topic("t", 1, rf)
    assert info.value.code == 38


def test_create_partitions_only_increases(store: MetadataStore) -> None:
    t = store.create_topic("t", 3)
    with pytest.raises(InvalidPartitionsError) as info:
        store.create_partitions("t", 2)
    assert info.value.code == 37 and "only be added" in str(info.value)
    with pytest.raises(InvalidPartitionsError):
        store.create_partitions("t", 3)
    grown = store.create_partitions("t", 8)
    assert grown.partitions == 8 and grown.topic_id == t.topic_id
    s2 = reopen(store)
    try:
        assert s2.describe_topic("t").partitions == 8
    finally:
        s2.close()


def test_validate_only_changes_nothing(store: MetadataStore) -> None:
    t = store.create_topic("t", 2, validate_only=True)
    assert t.partitions == 2 and "t" not in store
    assert not os.path.exists(store.path)
    store.create_topic("t", 2)
    assert store.create_partitions("t", 5, validate_only=True).partitions == 5
    assert store.describe_topic("t").partitions == 2


# ----------------------------------------------------------------------------- configs


def test_config_normalisation() -> None:
    assert normalize_topic_config(
        {"segment_bytes": "4096", "cleanup.policy": "delete, compact"}
    ) == {
        "cleanup.policy": "compact,delete",
        "segment.bytes": 4096,
    }
    for policy in ("delete", "compact", "compact,delete"):
        assert normalize_topic_config({"cleanup.policy": policy}) == {"cleanup.policy": policy}


@pytest.mark.parametrize(
    "config",
    [
        {"no.such.config": "1"},
        {"cleanup.policy": "forever"},
        {"cleanup.policy": "delete,delete"},
        {"cleanup.policy": ""},
        {"retention.ms": "soon"},
        {"segment.bytes": 1},
        {"flush.policy": "sometimes"},
        {"message.timestamp.type": "WallClock"},
        {"retention.ms": None},
        {"segment.bytes": 1, "segment_bytes": 2},
    ],
)
def test_bad_configs(store: MetadataStore, config: dict) -> None:
    with pytest.raises(InvalidConfigurationError) as info:
        store.create_topic("t", config=config)
    assert info.value.code == 40
    assert isinstance(info.value, ConfigError)
    assert "t" not in store


def test_alter_topic_config(store: MetadataStore) -> None:
    t = store.create_topic("t", config={"retention.ms": 1000, "segment.bytes": 1 << 20})
    t = store.alter_topic_config("t", {"retention.bytes": "5000"}, delete_configs=["segment.bytes"])
    assert t.config == {"retention.ms": 1000, "retention.bytes": 5000}
    t = store.alter_topic_config("t", {"cleanup.policy": "compact"}, replace_all=True)
    assert t.config == {"cleanup.policy": "compact"}
    with pytest.raises(InvalidConfigurationError):
        store.alter_topic_config("t", {"retention.ms": -7})
    with pytest.raises(InvalidConfigurationError):
        store.alter_topic_config("t", delete_configs=["bogus"])
    assert store.describe_topic("t").config == {"cleanup.policy": "compact"}
    s2 = reopen(store)
    try:
        assert s2.describe_topic("t").config == {"cleanup.policy": "compact"}
    finally:
        s2.close()


def test_effective_config_and_topic_configs(store: MetadataStore) -> None:
    store.create_topic("t", config={"retention.ms": 5})
    store.create_topic("plain")
    default = LogConfig(flush_policy="none")
    eff = store.effective_config("t", default)
    assert eff["retention.ms"] == 5 and eff["flush.policy"] == "none"
    assert LogConfig.from_mapping(eff).retention_ms == 5
    assert store.topic_configs() == {"t": {"retention.ms": 5}}


def test_topic_metadata_is_immutable(store: MetadataStore) -> None:
    t = store.create_topic("t", config={"retention.ms": 5})
    with pytest.raises(dataclasses.FrozenInstanceError):
        t.partitions = 9  # type: ignore[misc]
    with pytest.raises(TypeError):
        t.config["retention.ms"] = 6  # type: ignore[index]


# ----------------------------------------------------------------------------- persistence


def test_persistence_across_reopen_keeps_ids(store: MetadataStore) -> None:
    a = store.create_topic("a", 4, config={"cleanup.policy": "compact"})
    b = store.create_topic("b")
    s2 = reopen(store)
    try:
        assert s2.list_topics() == {"a": a, "b": b}
        assert s2.describe_topic("a").topic_id == a.topic_id
    finally:
        s2.close()


def test_recreated_topic_gets_a_new_id(store: MetadataStore) -> None:
    first = store.create_topic("t")
    store.delete_topic("t")
    second = store.create_topic("t")
    assert second.topic_id != first.topic_id


def test_file_format(store: MetadataStore, data_dir: Path) -> None:
    t = store.create_topic("orders", 2, config={"retention.ms": 10})
    doc = json.loads((data_dir / METADATA_FILE).read_text())
    assert doc == {
        "version": 1,
        "topics": [
            {
                "name": "orders",
                "topic_id": encode_topic_id(t.topic_id),
                "partitions": 2,
                "replication_factor": 1,
                "internal": False,
                "config": {"retention.ms": 10},
            }
        ],
    }


def test_stray_temp_file_from_a_crash_leaves_the_old_state(
    store: MetadataStore, data_dir: Path
) -> None:
    """A crash between writing the temp file and the rename: the old file is the truth."""
    old = store.create_topic("kept", 2)
    new_state = json.loads((data_dir / METADATA_FILE).read_text())
    new_state["topics"].append(dict(new_state["topics"][0], name="lost", partitions=9))
    tmp = data_dir / (METADATA_FILE + ".tmp")
    tmp.write_text(json.dumps(new_state)[:-7])  # torn, as a crash mid-write may leave it
    s2 = reopen(store)
    try:
        assert s2.list_topics() == {"kept": old}
        assert s2.removed_temp_file and not tmp.exists()
        s2.create_topic("next")  # and the store writes normally afterwards
    finally:
        s2.close()


def test_failed_rename_keeps_old_state(store: MetadataStore, monkeypatch) -> None:
    store.create_topic("kept")

    def boom(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(KafkaStorageError):
        store.create_topic("lost")
    with pytest.raises(KafkaStorageError):
        store.delete_topic("kept")
    monkeypatch.undo()
    assert list(store.list_topics()) == ["kept"]
    s2 = reopen(store)
    try:
        assert list(s2.list_topics()) == ["kept"]
    finally:
        s2.close()


def test_failed_write_keeps_old_state(store: MetadataStore, monkeypatch) -> None:
    store.create_topic("kept", 3)

    def boom(fd: int, data: object) -> int:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(os, "write", boom)
    with pytest.raises(KafkaStorageError):
        store.create_partitions("kept", 6)
    monkeypatch.undo()
    assert store.describe_topic("kept").partitions == 3
    s2 = reopen(store)
    try:
        assert s2.describe_topic("kept").partitions == 3
    finally:
        s2.close()


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"{not json",
        b'{"version": 99, "topics": []}',
        b'{"version": 1, "topics": [{"name": "bad name", "topic_id": "AAAAAAAAAAAAAAAAAAAAAA", "partitions": 1}]}',
        b'{"version": 1, "topics": [{"name": "t", "topic_id": "xyz", "partitions": 1}]}',
        b'{"version": 1, "topics": [{"name": "t", "topic_id": "AAAAAAAAAAAAAAAAAAAAAA", "partitions": 0}]}',
    ],
)
def test_corrupt_file_is_an_error_not_an_empty_cluster(data_dir: Path, content: bytes) -> None:
    data_dir.mkdir(parents=True)
    (data_dir / METADATA_FILE).write_bytes(content)
    with pytest.raises(KafkaStorageError, match="unreadable"):
        MetadataStore.open(data_dir)
    # the failed open released the lock: a second try fails the same way, not as "locked"
    with pytest.raises(KafkaStorageError):
        MetadataStore.open(data_dir)


def test_closed_store_refuses_changes(store: MetadataStore) -> None:
    store.close()
    store.close()
    with pytest.raises(RuntimeError):
        store.create_topic("t")


# ----------------------------------------------------------------------------- with LogManager


def test_store_and_log_manager_together(data_dir: Path) -> None:
    """The flow a Broker runs: create in metadata, then logs; delete in metadata, then logs;
    after a crash between the two, remove_unknown cleans up."""
    store = MetadataStore.open(data_dir)
    manager = LogManager(data_dir, topic_configs=store.topic_configs())
    try:
        t = store.create_topic("orders", 2, config={"retention.ms": 1000})
        manager.set_topic_config("orders", t.config)
        for p in range(t.partitions):
            manager.create_log("orders", p, t.topic_id).append([b"x"])
        assert read_partition_metadata(str(data_dir / "orders-1")) == t.topic_id
        assert manager.get_log("orders", 0).config.retention_ms == 1000
        store.delete_topic("orders")  # crash here: the dirs stay behind
    finally:
        manager.close_all()
        store.close()
    store = MetadataStore.open(data_dir)
    manager = LogManager(data_dir, topic_configs=store.topic_configs())
    try:
        assert manager.remove_unknown(store.partition_layout()) == [("orders", 0), ("orders", 1)]
        assert manager.partitions_on_disk() == []
        assert sorted(os.listdir(data_dir)) == [".lock", METADATA_FILE]
    finally:
        manager.close_all()
        store.close()
