"""Topic metadata of one data directory: names, ids, partition counts, per-topic configs.

The store is one JSON file, `<data_dir>/__cluster_metadata.json`:

    {
     "version": 1,
     "topics": [
      {"name": "orders", "topic_id": "<base64url uuid, 22 chars>", "partitions": 3,
       "replication_factor": 1, "internal": false, "config": {"retention.ms": 3600000}}
     ]
    }

`config` holds only the topic's overrides, under Kafka's (dotted) names with typed values;
everything else comes from the broker's default LogConfig.

Durability: every change builds the new state, writes it to `__cluster_metadata.json.tmp`,
fsyncs, renames it over the file and fsyncs the directory; only then does the in-memory
state change (validate, then apply). A crash before the rename leaves the old file (the stray
temp file is removed on open); after it, the new one. A file that does not parse is an error
(KafkaStorageError), never silently an empty cluster.

Ownership: `MetadataStore.open()` takes an exclusive flock on `<data_dir>/.lock` (see
DataDirLock) for the store's lifetime, so a second process, or a second store in this one,
gets DataDirLockedError, which tells the user to share the directory through server mode.
Open the store before the LogManager so the lock covers the log directories too.

Topic ids are uuid4s drawn once at creation and persisted, so they are stable across
reopens; a topic deleted and created again gets a new id (that is how Kafka tells the two
incarnations apart, and how LogManager.remove_unknown spots leftover directories).

Thread-safety: every public method holds the store's lock; TopicMetadata values are frozen.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import threading
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any

from headwater.config import LogConfig
from headwater.errors import (
    ConfigError,
    DataDirLockedError,
    InvalidConfigurationError,
    InvalidPartitionsError,
    InvalidReplicationFactorError,
    InvalidTopicError,
    KafkaStorageError,
    TopicAlreadyExistsError,
    UnknownTopicOrPartitionError,
)
from headwater.log.checkpoint import fsync_dir
from headwater.log.manager import decode_topic_id, encode_topic_id, new_topic_id, write_file_atomic

METADATA_FILE = "__cluster_metadata.json"
LOCK_FILE = ".lock"
FORMAT_VERSION = 1

MAX_TOPIC_NAME_LENGTH = 249
_TOPIC_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")
# Topics the coordinators own; users may not create them by hand (Kafka refuses too).
INTERNAL_TOPICS = frozenset({"__consumer_offsets", "__transaction_state", "__share_group_state"})
CLEANUP_POLICIES = ("delete", "compact", "compact,delete")
MAX_PARTITIONS = 2**31 - 1  # the wire's int32


# ---------------------------------------------------------------------------- validation


def validate_topic_name(name: Any) -> str:
    """Check a topic name against Kafka's rules (kafka-spec.md b.1); return it.

    Raises:
        InvalidTopicError: empty, `.` or `..`, longer than 249, or a character outside
            [a-zA-Z0-9._-].
    """
    if not isinstance(name, str):
        raise InvalidTopicError(f"topic name must be a str, not {type(name).__name__}")
    if not name:
        raise InvalidTopicError("topic name is empty")
    if name in (".", ".."):
        raise InvalidTopicError(f"topic name cannot be {name!r}")
    if len(name) > MAX_TOPIC_NAME_LENGTH:
        raise InvalidTopicError(
            f"topic name is {len(name)} characters; the maximum is {MAX_TOPIC_NAME_LENGTH}"
        )
    bad = sorted(set(name) - _TOPIC_CHARS)
    if bad:
        raise InvalidTopicError(
            f"topic name {name!r} has characters {''.join(bad)!r}; "
            "only ASCII letters, digits, '.', '_' and '-' are allowed"
        )
    return name


def _collision_key(name: str) -> str:
    # Metric names replace '.' with '_', so Kafka refuses names that collide that way.
    return name.replace(".", "_")


def normalize_topic_config(config: Mapping[str, Any] | None) -> dict[str, Any]:
    """Validate topic config overrides; return them under Kafka names with typed values.

    Names may be dotted (Kafka) or use underscores. Values may be strings, as on the wire.

    Raises:
        InvalidConfigurationError: an unknown name, a None value or a bad value.
    """
    if not config:
        return {}
    dotted: dict[str, Any] = {}
    for name, value in config.items():
        if not isinstance(name, str):
            raise InvalidConfigurationError(f"config name must be a str, not {name!r}")
        if value is None:
            raise InvalidConfigurationError(f"config {name!r} has no value")
        key = name.replace("_", ".")
        if key in dotted:
            raise InvalidConfigurationError(f"config {key!r} given twice")
        dotted[key] = value
    policy = dotted.get("cleanup.policy")
    if policy is not None:
        dotted["cleanup.policy"] = _normalize_cleanup_policy(policy)
    try:
        cfg = LogConfig.from_mapping(dotted)
    except ConfigError as exc:
        raise InvalidConfigurationError(str(exc)) from exc
    return {key: getattr(cfg, key.replace(".", "_")) for key in sorted(dotted)}


def _normalize_cleanup_policy(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        parts = [str(v).strip() for v in value]
    elif isinstance(value, str):
        parts = [p.strip() for p in value.split(",")]
    else:
        raise InvalidConfigurationError(f"cleanup.policy must be a string, not {value!r}")
    canonical = ",".join(sorted(set(parts)))
    if canonical not in CLEANUP_POLICIES or len(parts) != len(set(parts)):
        raise InvalidConfigurationError(
            f"cleanup.policy {value!r} is not one of {', '.join(CLEANUP_POLICIES)}"
        )
    return canonical


# ---------------------------------------------------------------------------- values


@dataclass(frozen=True)
class TopicMetadata:
    """One topic as the store records it. `config` holds only the overrides."""

    name: str
    topic_id: uuid.UUID
    partitions: int
    replication_factor: int = 1
    config: Mapping[str, Any] = field(default_factory=dict, hash=False)
    internal: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "config", MappingProxyType(dict(self.config)))

    @property
    def topic_id_str(self) -> str:
        """The id as Kafka prints it (base64url, 22 characters)."""
        return encode_topic_id(self.topic_id)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "topic_id": self.topic_id_str,
            "partitions": self.partitions,
            "replication_factor": self.replication_factor,
            "internal": self.internal,
            "config": dict(self.config),
        }

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> TopicMetadata:
        partitions = obj["partitions"]
        if not isinstance(partitions, int) or partitions < 1:
            raise ValueError(f"bad partition count {partitions!r}")
        return cls(
            name=validate_topic_name(obj["name"]),
            topic_id=decode_topic_id(obj["topic_id"]),
            partitions=partitions,
            replication_factor=int(obj.get("replication_factor", 1)),
            config=normalize_topic_config(obj.get("config") or {}),
            internal=bool(obj.get("internal", False)),
        )


# ---------------------------------------------------------------------------- the lock


class DataDirLock:
    """An exclusive flock on `<data_dir>/.lock`, held until release().

    flock locks belong to the open file, so a second open in the same process conflicts too,
    and the kernel drops the lock when the process dies (kill -9 included): no stale locks.
    The file holds the owner's pid, for the error message only.
    """

    def __init__(self, data_dir: str, fd: int) -> None:
        self.data_dir = data_dir
        self.path = os.path.join(data_dir, LOCK_FILE)
        self._fd: int | None = fd

    @classmethod
    def acquire(cls, data_dir: str | os.PathLike[str]) -> DataDirLock:
        """Lock `data_dir` (created if missing) without waiting.

        Raises:
            DataDirLockedError: someone else holds it.
        """
        path = os.path.abspath(os.fspath(data_dir))
        os.makedirs(path, exist_ok=True)
        lock_path = os.path.join(path, LOCK_FILE)
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            owner = _read_owner(fd)
            os.close(fd)
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise
            if owner == os.getpid():
                who = "this process already has it open (another Broker or MetadataStore)"
            elif owner is not None:
                who = f"process {owner} has it open"
            else:
                who = "another process has it open"
            raise DataDirLockedError(
                f"data directory {path} is locked: {who}. A data directory has exactly one "
                "owning process. To share it, run the broker in server mode "
                f"(`headwater serve` on {path}, or Broker.serve()) and connect the other "
                "processes with a Kafka client."
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        return cls(path, fd)

    @property
    def held(self) -> bool:
        return self._fd is not None

    def release(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            try:
                fcntl.flock(fd, fcntl.LOCK_UN)
            finally:
                os.close(fd)

    def __enter__(self) -> DataDirLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def _read_owner(fd: int) -> int | None:
    try:
        return int(os.pread(fd, 32, 0).decode().strip())
    except (OSError, ValueError, UnicodeDecodeError):
        return None


# ---------------------------------------------------------------------------- the store


class MetadataStore:
    """Topics of one data directory. Create with MetadataStore.open().

    Args (of open):
        data_dir: the data directory (created if missing).
        lock: take the data directory lock (default True); pass a DataDirLock to hand over
            one already held, or False when the caller guarantees exclusive access.
        default_partitions: the count for `partitions=-1` (Kafka's num.partitions, 1).
    """

    def __init__(
        self, data_dir: str, lock: DataDirLock | None, default_partitions: int = 1
    ) -> None:
        self.data_dir = data_dir
        self.path = os.path.join(data_dir, METADATA_FILE)
        self.default_partitions = default_partitions
        self._lock_file = lock
        self._mutex = threading.RLock()
        self._topics: dict[str, TopicMetadata] = {}
        self._closed = False
        self.removed_temp_file = False

    @classmethod
    def open(
        cls,
        data_dir: str | os.PathLike[str],
        *,
        lock: bool | DataDirLock = True,
        default_partitions: int = 1,
    ) -> MetadataStore:
        """Lock the data directory, then load its metadata (an absent file = no topics).

        Raises:
            DataDirLockedError: another owner holds the directory.
            KafkaStorageError: the metadata file exists but does not parse.
        """
        path = os.path.abspath(os.fspath(data_dir))
        if isinstance(lock, DataDirLock):
            held: DataDirLock | None = lock
        elif lock:
            held = DataDirLock.acquire(path)
        else:
            os.makedirs(path, exist_ok=True)
            held = None
        try:
            self = cls(path, held, default_partitions)
            self._load()
        except BaseException:
            if held is not None and held is not lock:
                held.release()
            raise
        return self

    def _load(self) -> None:
        tmp = self.path + ".tmp"
        if os.path.exists(tmp):
            # A write that crashed before its rename: the old file is the truth.
            os.unlink(tmp)
            fsync_dir(self.data_dir)
            self.removed_temp_file = True
        self._topics = self._read()

    def _read(self) -> dict[str, TopicMetadata]:
        try:
            with open(self.path, "rb") as f:
                raw = f.read()
        except FileNotFoundError:
            return {}
        try:
            doc = json.loads(raw)
            if not isinstance(doc, dict) or doc.get("version") != FORMAT_VERSION:
                raise ValueError(f"expected version {FORMAT_VERSION}")
            topics = {}
            for obj in doc["topics"]:
                topic = TopicMetadata.from_json(obj)
                if topic.name in topics:
                    raise ValueError(f"topic {topic.name!r} listed twice")
                topics[topic.name] = topic
        except (ValueError, KeyError, TypeError, ConfigError, InvalidTopicError) as exc:
            raise KafkaStorageError(
                f"topic metadata {self.path} is unreadable ({exc}); refusing to start with an "
                "empty cluster. Restore the file from a backup or move it away."
            ) from exc
        return topics

    def _commit_locked(self, topics: dict[str, TopicMetadata]) -> None:
        """Persist `topics`, then make it the in-memory state."""
        doc = {
            "version": FORMAT_VERSION,
            "topics": [topics[name].to_json() for name in sorted(topics)],
        }
        data = json.dumps(doc, indent=1, sort_keys=True).encode() + b"\n"
        try:
            write_file_atomic(self.path, data)
        except OSError as exc:
            # The rename may or may not have happened; what a reopen would see is the truth.
            try:
                self._topics = self._read()
            except KafkaStorageError:
                pass
            raise KafkaStorageError(f"writing topic metadata {self.path} failed: {exc}") from exc
        self._topics = topics

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("MetadataStore is closed")

    # ------------------------------------------------------------------ reads

    def get(self, name: str) -> TopicMetadata | None:
        with self._mutex:
            return self._topics.get(name)

    def describe_topic(self, name: str) -> TopicMetadata:
        """Raises UnknownTopicOrPartitionError for an unknown topic."""
        with self._mutex:
            topic = self._topics.get(name)
        if topic is None:
            raise UnknownTopicOrPartitionError(f"unknown topic {name!r}")
        return topic

    def __contains__(self, name: object) -> bool:
        with self._mutex:
            return name in self._topics

    def list_topics(self, include_internal: bool = True) -> dict[str, TopicMetadata]:
        """{name: TopicMetadata}, sorted by name."""
        with self._mutex:
            return {
                name: t
                for name, t in sorted(self._topics.items())
                if include_internal or not t.internal
            }

    def topic_by_id(self, topic_id: uuid.UUID) -> TopicMetadata | None:
        with self._mutex:
            for topic in self._topics.values():
                if topic.topic_id == topic_id:
                    return topic
        return None

    def effective_config(self, name: str, default: LogConfig | None = None) -> dict[str, Any]:
        """Every log config of `name` under Kafka names: `default` with the overrides applied."""
        topic = self.describe_topic(name)
        return {**(default or LogConfig()).kafka_names(), **topic.config}

    def topic_configs(self) -> dict[str, dict[str, Any]]:
        """{topic: overrides} for topics with overrides (LogManager's topic_configs)."""
        with self._mutex:
            return {name: dict(t.config) for name, t in self._topics.items() if t.config}

    def partition_layout(self) -> dict[str, tuple[uuid.UUID, int]]:
        """{topic: (topic id, partition count)} (LogManager.remove_unknown's input)."""
        with self._mutex:
            return {name: (t.topic_id, t.partitions) for name, t in self._topics.items()}

    # ------------------------------------------------------------------ changes

    def create_topic(
        self,
        name: str,
        partitions: int = 1,
        replication_factor: int = 1,
        config: Mapping[str, Any] | None = None,
        *,
        internal: bool = False,
        validate_only: bool = False,
    ) -> TopicMetadata:
        """Create a topic with a fresh topic id.

        Args:
            partitions: the count, or -1 for default_partitions.
            replication_factor: 1, or -1 for the default (1): this is a single node.
            config: overrides, Kafka names (see normalize_topic_config).
            internal: the coordinators' own topics (__consumer_offsets, ...) need this.
            validate_only: check everything, change nothing (CreateTopics validateOnly).

        Raises:
            InvalidTopicError (17), TopicAlreadyExistsError (36), InvalidPartitionsError (37),
            InvalidReplicationFactorError (38), InvalidConfigurationError (40),
            KafkaStorageError: the write failed; nothing changed.
        """
        validate_topic_name(name)
        if name in INTERNAL_TOPICS and not internal:
            raise InvalidTopicError(f"creation of internal topic {name} is prohibited")
        count = _partition_count(partitions, self.default_partitions)
        replicas = _replication_factor(replication_factor)
        overrides = normalize_topic_config(config)
        with self._mutex:
            self._check_open()
            if name in self._topics:
                raise TopicAlreadyExistsError(f"topic {name!r} already exists")
            key = _collision_key(name)
            clash = sorted(t for t in self._topics if _collision_key(t) == key)
            if clash:
                raise InvalidTopicError(
                    f"topic {name!r} collides with existing topic {clash[0]!r} "
                    "('.' and '_' are the same in metric names)"
                )
            taken = {t.topic_id for t in self._topics.values()}
            topic_id = new_topic_id()
            while topic_id in taken:  # 2^-122 per pair; cheap to rule out anyway
                topic_id = new_topic_id()
            topic = TopicMetadata(name, topic_id, count, replicas, overrides, internal)
            if not validate_only:
                self._commit_locked({**self._topics, name: topic})
            return topic

    def delete_topic(self, name: str, *, internal: bool = False) -> TopicMetadata:
        """Remove a topic from the metadata; the caller then deletes its logs.

        Raises:
            UnknownTopicOrPartitionError (3); InvalidTopicError for an internal topic unless
            `internal`; KafkaStorageError.
        """
        with self._mutex:
            self._check_open()
            topic = self.describe_topic(name)
            if topic.internal and not internal:
                raise InvalidTopicError(f"internal topic {name} cannot be deleted")
            topics = dict(self._topics)
            del topics[name]
            self._commit_locked(topics)
            return topic

    def create_partitions(
        self, name: str, total: int, *, validate_only: bool = False
    ) -> TopicMetadata:
        """Increase the partition count of `name` to `total` (CreatePartitions).

        Raises:
            UnknownTopicOrPartitionError (3); InvalidPartitionsError (37) when `total` is not
            larger than the current count; KafkaStorageError.
        """
        if not isinstance(total, int) or isinstance(total, bool):
            raise InvalidPartitionsError(f"partition count must be an int, not {total!r}")
        with self._mutex:
            self._check_open()
            topic = self.describe_topic(name)
            if total == topic.partitions:
                raise InvalidPartitionsError(f"topic {name!r} already has {total} partitions")
            if total < topic.partitions:
                raise InvalidPartitionsError(
                    f"topic {name!r} currently has {topic.partitions} partitions, which is higher "
                    f"than the requested {total}; partitions can only be added"
                )
            if total > MAX_PARTITIONS:
                raise InvalidPartitionsError(f"{total} partitions is more than {MAX_PARTITIONS}")
            updated = replace(topic, partitions=total)
            if not validate_only:
                self._commit_locked({**self._topics, name: updated})
            return updated

    def alter_topic_config(
        self,
        name: str,
        set_configs: Mapping[str, Any] | None = None,
        delete_configs: Iterable[str] = (),
        *,
        replace_all: bool = False,
        validate_only: bool = False,
    ) -> TopicMetadata:
        """Change a topic's overrides (IncrementalAlterConfigs; AlterConfigs with replace_all).

        Args:
            set_configs: overrides to set.
            delete_configs: names whose override goes (back to the default).
            replace_all: the new overrides are exactly `set_configs` (legacy AlterConfigs).

        Raises:
            UnknownTopicOrPartitionError (3), InvalidConfigurationError (40), KafkaStorageError.
        """
        new_values = normalize_topic_config(set_configs)
        with self._mutex:
            self._check_open()
            topic = self.describe_topic(name)
            merged = {} if replace_all else dict(topic.config)
            for key in delete_configs:
                dotted = key.replace("_", ".")
                if dotted not in LogConfig().kafka_names():
                    raise InvalidConfigurationError(f"unknown topic config {key!r}")
                merged.pop(dotted, None)
            merged.update(new_values)
            updated = replace(topic, config=normalize_topic_config(merged))
            if not validate_only and updated != topic:
                self._commit_locked({**self._topics, name: updated})
            return updated

    # ------------------------------------------------------------------ close

    def close(self) -> None:
        """Release the data directory lock. The state is already on disk."""
        with self._mutex:
            if self._closed:
                return
            self._closed = True
            if self._lock_file is not None:
                self._lock_file.release()

    def __enter__(self) -> MetadataStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"MetadataStore({self.data_dir!r}, topics={len(self._topics)})"


def _partition_count(partitions: Any, default: int) -> int:
    if not isinstance(partitions, int) or isinstance(partitions, bool):
        raise InvalidPartitionsError(f"partition count must be an int, not {partitions!r}")
    if partitions == -1:
        return default
    if partitions < 1:
        raise InvalidPartitionsError(
            f"number of partitions must be larger than 0, or -1 for the default; got {partitions}"
        )
    if partitions > MAX_PARTITIONS:
        raise InvalidPartitionsError(f"{partitions} partitions is more than {MAX_PARTITIONS}")
    return partitions


def _replication_factor(replication_factor: Any) -> int:
    if not isinstance(replication_factor, int) or isinstance(replication_factor, bool):
        raise InvalidReplicationFactorError(
            f"replication factor must be an int, not {replication_factor!r}"
        )
    if replication_factor == -1:
        return 1
    if replication_factor < 1:
        raise InvalidReplicationFactorError(
            "replication factor must be larger than 0, or -1 for the default"
        )
    if replication_factor > 1:
        raise InvalidReplicationFactorError(
            f"replication factor: {replication_factor} larger than available brokers: 1"
        )
    return 1


__all__ = [
    "CLEANUP_POLICIES",
    "DataDirLock",
    "INTERNAL_TOPICS",
    "LOCK_FILE",
    "METADATA_FILE",
    "MetadataStore",
    "TopicMetadata",
    "normalize_topic_config",
    "validate_topic_name",
]
