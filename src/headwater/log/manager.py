"""LogManager: the partition directories of one data directory, and the jobs that span them.

Layout (kafka-spec.md b.1):

    <data_dir>/
        <topic>-<partition>/                one PartitionLog each (orders-0, orders-1, ...)
            partition.metadata              "version: 0\\ntopic_id: <base64url uuid>\\n"
            00000000000000000000.log ...    see docs/storage.md
        <topic>-<partition>.<uuid hex>-delete/   a deletion in progress

Deletion renames the directory to `<topic>-<partition>.<32 hex>-delete` (one atomic rename,
made durable by an fsync of data_dir), then removes it. A crash in between leaves the
`-delete` directory, which the next start removes: a half-deleted partition is never
mistaken for a live one.

`partition.metadata` is written to a temp file, fsync'd and renamed (then the partition
directory is fsync'd), so it is either the old or the new content after a crash.

Scheduling: no threads here. The owner (a Broker) calls `run_retention(now_ms)`,
`run_cleaner(now_ms)` (compaction, log/cleaner.py) and `maybe_flush_all(now_ms)` on its own
timer; each skips logs that are offline and reports them.
Both take wall-clock ms (time.time() * 1000), not a monotonic clock: retention compares
against record timestamps, and PartitionLog stamps its last flush with wall-clock time.

Config: one default LogConfig plus per-topic overrides (Kafka names). Changing a topic's
overrides swaps the `config` of its open logs; settings that shape new files
(segment.bytes, segment.index.bytes) apply from the next roll.

Thread-safety: the manager's lock guards its table of logs; each PartitionLog has its own.
"""

from __future__ import annotations

import base64
import logging
import os
import re
import shutil
import threading
import uuid
from collections.abc import Iterator, Mapping
from typing import Any

from headwater.config import LogConfig
from headwater.errors import (
    ConfigError,
    HeadwaterError,
    InconsistentTopicIdError,
    InvalidConfigurationError,
    UnknownTopicOrPartitionError,
)
from headwater.log.checkpoint import fsync_dir
from headwater.log.cleaner import CleanResult, clean, is_compacted, needs_cleaning
from headwater.log.partition_log import PartitionLog

log = logging.getLogger("headwater.log.manager")

PARTITION_METADATA_FILE = "partition.metadata"
DELETE_DIR_SUFFIX = "-delete"

_PARTITION_DIR = re.compile(r"^(?P<topic>[a-zA-Z0-9._-]+)-(?P<partition>0|[1-9][0-9]{0,9})$")
_DELETE_DIR = re.compile(r"^.+\.[0-9a-f]{32}-delete$")


# ---------------------------------------------------------------------------- topic ids


def encode_topic_id(topic_id: uuid.UUID) -> str:
    """Kafka's Uuid.toString(): the 16 bytes as base64url without padding (22 characters)."""
    return base64.urlsafe_b64encode(topic_id.bytes).rstrip(b"=").decode("ascii")


def decode_topic_id(text: str) -> uuid.UUID:
    """Inverse of encode_topic_id. Raises ValueError for anything but 22 base64url chars."""
    if len(text) != 22 or not re.fullmatch(r"[A-Za-z0-9_-]{22}", text):
        raise ValueError(f"not a base64url topic id: {text!r}")
    return uuid.UUID(bytes=base64.urlsafe_b64decode(text + "=="))


def new_topic_id() -> uuid.UUID:
    """A random (v4) topic id, re-drawn as Kafka's Uuid.randomUuid does when its string form
    starts with '-' (it would read as a command-line flag) or it is one of the reserved ids
    (0 = ZERO_UUID, 1 = METADATA_TOPIC_ID)."""
    while True:
        candidate = uuid.uuid4()
        if candidate.int > 1 and not encode_topic_id(candidate).startswith("-"):
            return candidate


# ---------------------------------------------------------------------------- small files


def write_file_atomic(path: str, data: bytes) -> None:
    """Replace `path` with `data`: temp file, fsync, rename, fsync of the directory."""
    tmp = path + ".tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    fsync_dir(os.path.dirname(path) or ".")


def format_partition_metadata(topic_id: uuid.UUID) -> bytes:
    return f"version: 0\ntopic_id: {encode_topic_id(topic_id)}\n".encode("ascii")


def read_partition_metadata(partition_dir: str) -> uuid.UUID | None:
    """The topic id in `partition_dir/partition.metadata`, or None if the file is absent.

    Raises:
        ValueError: the file exists but is not version 0 with a valid topic id.
    """
    path = os.path.join(partition_dir, PARTITION_METADATA_FILE)
    try:
        with open(path, "rb") as f:
            text = f.read(4096).decode("ascii")
    except FileNotFoundError:
        return None
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path}: not ASCII") from exc
    fields: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            fields[key.strip()] = value.strip()
    if fields.get("version") != "0" or "topic_id" not in fields:
        raise ValueError(f"{path}: expected 'version: 0' and 'topic_id', got {text!r}")
    return decode_topic_id(fields["topic_id"])


def partition_dir_name(topic: str, partition: int) -> str:
    return f"{topic}-{partition}"


def parse_partition_dir(name: str) -> tuple[str, int] | None:
    """(topic, partition) for a directory name `<topic>-<partition>`, else None."""
    m = _PARTITION_DIR.match(name)
    if m is None or m.group("topic") in (".", ".."):
        return None
    return m.group("topic"), int(m.group("partition"))


# ---------------------------------------------------------------------------- the manager


class LogManager:
    """The PartitionLogs of one data directory.

    Opening (the constructor) creates `data_dir` if needed, removes leftover `-delete`
    directories, and opens every `<topic>-<partition>` directory found (running recovery for
    any that did not close cleanly), each with its topic's config.

    Args:
        data_dir: the data directory.
        config: the default log config (Kafka names or a LogConfig).
        topic_configs: per-topic overrides, {topic: {kafka name: value}}.
        load: open the existing partition directories now (default True).

    Raises:
        InvalidConfigurationError: a bad default or topic config.
        KafkaStorageError / LogOfflineError: a partition failed to open (from PartitionLog).
    """

    def __init__(
        self,
        data_dir: str | os.PathLike[str],
        config: Mapping[str, Any] | LogConfig | None = None,
        topic_configs: Mapping[str, Mapping[str, Any]] | None = None,
        *,
        load: bool = True,
        scheduled_flush: bool = True,
    ) -> None:
        # True: whoever owns the manager calls maybe_flush_all() on a timer, so appends to
        # flush.policy=interval logs never wait for a time-based fdatasync themselves.
        self.scheduled_flush = scheduled_flush
        self.data_dir = os.path.abspath(os.fspath(data_dir))
        self._lock = threading.RLock()
        self._logs: dict[tuple[str, int], PartitionLog] = {}
        self._topic_overrides: dict[str, dict[str, Any]] = {}
        self._topic_configs: dict[str, LogConfig] = {}
        self._closed = False
        if isinstance(config, LogConfig):
            self.default_config = config
        else:
            self.default_config = _log_config(config or {}, "default log config")
        for topic, overrides in (topic_configs or {}).items():
            self.set_topic_config(topic, overrides)
        if not os.path.isdir(self.data_dir):
            os.makedirs(self.data_dir, exist_ok=True)
            fsync_dir(os.path.dirname(self.data_dir))
        self.removed_on_start = self._remove_deleted_dirs()
        if load:
            self.load_all()

    # ------------------------------------------------------------------ config

    def set_topic_config(self, topic: str, overrides: Mapping[str, Any] | None) -> LogConfig:
        """Set (replace) the overrides of `topic`; open logs of the topic take the new config.

        Raises:
            InvalidConfigurationError: an unknown name or bad value; nothing changes.
        """
        overrides = dict(overrides or {})
        merged = {**self.default_config.kafka_names(), **overrides}
        cfg = _log_config(merged, f"config of topic {topic!r}")
        with self._lock:
            if overrides:
                self._topic_overrides[topic] = overrides
                self._topic_configs[topic] = cfg
            else:
                self._topic_overrides.pop(topic, None)
                self._topic_configs.pop(topic, None)
            for (t, _), plog in self._logs.items():
                if t == topic:
                    plog.config = (
                        cfg  # read per operation; file-shaping sizes apply at the next roll
                    )
        return cfg

    def topic_config(self, topic: str) -> LogConfig:
        """The effective config of `topic`: the default with its overrides applied."""
        with self._lock:
            return self._topic_configs.get(topic, self.default_config)

    # ------------------------------------------------------------------ paths

    def partition_dir(self, topic: str, partition: int) -> str:
        return os.path.join(self.data_dir, partition_dir_name(topic, partition))

    def partitions_on_disk(self) -> list[tuple[str, int]]:
        """(topic, partition) of every partition directory in data_dir, sorted."""
        found = []
        for name in os.listdir(self.data_dir):
            parsed = parse_partition_dir(name)
            if parsed is not None and os.path.isdir(os.path.join(self.data_dir, name)):
                found.append(parsed)
        return sorted(found)

    # ------------------------------------------------------------------ open / create

    def load_all(self) -> list[tuple[str, int]]:
        """Open every partition directory not open yet; return those opened."""
        opened = []
        for topic, partition in self.partitions_on_disk():
            with self._lock:
                self._check_open()
                if (topic, partition) in self._logs:
                    continue
                plog = self._logs[(topic, partition)] = PartitionLog.open(
                    self.partition_dir(topic, partition), self.topic_config(topic)
                )
                plog.scheduled_flush = self.scheduled_flush
            opened.append((topic, partition))
        return opened

    def get_log(self, topic: str, partition: int) -> PartitionLog:
        """The open log of `topic`-`partition`, opening its directory if it exists.

        Raises:
            UnknownTopicOrPartitionError: no such partition directory.
        """
        plog = self._logs.get((topic, partition))  # an open log: one dict read (GIL-atomic)
        if plog is not None and not self._closed:
            return plog
        with self._lock:
            self._check_open()
            plog = self._logs.get((topic, partition))
            if plog is not None:
                return plog
            path = self.partition_dir(topic, partition)
            if parse_partition_dir(os.path.basename(path)) is None or not os.path.isdir(path):
                raise UnknownTopicOrPartitionError(f"no log for {topic}-{partition}")
            plog = self._logs[(topic, partition)] = PartitionLog.open(
                path, self.topic_config(topic)
            )
            plog.scheduled_flush = self.scheduled_flush
            return plog

    def create_log(
        self, topic: str, partition: int, topic_id: uuid.UUID | None = None
    ) -> PartitionLog:
        """Open the log of `topic`-`partition`, creating its directory if needed.

        With a topic_id, `partition.metadata` records it; an existing directory that records
        another id belongs to an older topic of the same name.

        Raises:
            InconsistentTopicIdError: the directory holds another topic id.
            ValueError: a partition < 0 or a name that is not a partition directory name.
        """
        if partition < 0:
            raise ValueError(f"partition must be >= 0, got {partition}")
        if parse_partition_dir(partition_dir_name(topic, partition)) is None:
            raise ValueError(f"{topic!r} is not a valid topic name for a partition directory")
        path = self.partition_dir(topic, partition)
        with self._lock:
            self._check_open()
            if os.path.isdir(path):
                on_disk = _read_topic_id_or_none(path)
                if topic_id is not None and on_disk is not None and on_disk != topic_id:
                    raise InconsistentTopicIdError(
                        f"{path} belongs to topic id {encode_topic_id(on_disk)}, "
                        f"not {encode_topic_id(topic_id)}"
                    )
                if topic_id is not None and on_disk is None:
                    write_file_atomic(
                        os.path.join(path, PARTITION_METADATA_FILE),
                        format_partition_metadata(topic_id),
                    )
                return self.get_log(topic, partition)
            os.mkdir(path)
            if topic_id is not None:
                write_file_atomic(
                    os.path.join(path, PARTITION_METADATA_FILE), format_partition_metadata(topic_id)
                )
            fsync_dir(self.data_dir)
            plog = self._logs[(topic, partition)] = PartitionLog.open(
                path, self.topic_config(topic)
            )
            plog.scheduled_flush = self.scheduled_flush
            return plog

    def topic_id_of(self, topic: str, partition: int) -> uuid.UUID | None:
        """The topic id recorded in the partition's `partition.metadata` (None if absent)."""
        return _read_topic_id_or_none(self.partition_dir(topic, partition))

    def logs(self) -> Iterator[tuple[tuple[str, int], PartitionLog]]:
        """((topic, partition), log) of every open log, a snapshot sorted by name."""
        with self._lock:
            items = sorted(self._logs.items())
        return iter(items)

    # ------------------------------------------------------------------ delete

    def delete_log(self, topic: str, partition: int) -> bool:
        """Close and delete one partition: rename to `-delete`, fsync, remove. True if it existed."""
        path = self.partition_dir(topic, partition)
        with self._lock:
            self._check_open()
            plog = self._logs.pop((topic, partition), None)
            if plog is not None:
                try:
                    plog.close()
                except HeadwaterError as exc:  # an offline log still gets deleted
                    log.warning("closing %s before deletion: %s", path, exc)
            if not os.path.isdir(path):
                return False
            doomed = f"{path}.{uuid.uuid4().hex}{DELETE_DIR_SUFFIX}"
            os.rename(path, doomed)
            fsync_dir(self.data_dir)  # from here on a crash leaves only a -delete dir
        shutil.rmtree(doomed)
        fsync_dir(self.data_dir)
        return True

    def delete_topic(self, topic: str) -> list[int]:
        """Delete every partition of `topic` on disk; return the partitions deleted."""
        with self._lock:
            partitions = sorted(
                {p for t, p in self.partitions_on_disk() if t == topic}
                | {p for t, p in self._logs if t == topic}
            )
            deleted = [p for p in partitions if self.delete_log(topic, p)]
            self._topic_overrides.pop(topic, None)
            self._topic_configs.pop(topic, None)
        return deleted

    def remove_unknown(
        self, topics: Mapping[str, tuple[uuid.UUID | None, int]]
    ) -> list[tuple[str, int]]:
        """Delete partition directories the metadata does not know.

        Args:
            topics: {topic: (topic id or None, partition count)} from the metadata store.

        A directory goes when its topic is unknown, its partition is >= the count, or its
        `partition.metadata` names another topic id (a deleted topic of the same name whose
        removal was cut short). Returns what was deleted.
        """
        doomed = []
        for topic, partition in self.partitions_on_disk():
            known = topics.get(topic)
            if known is None or partition >= known[1]:
                doomed.append((topic, partition))
                continue
            try:
                on_disk = self.topic_id_of(topic, partition)
            except ValueError:
                on_disk = None  # unreadable metadata: keep the data, never delete on a guess
            if known[0] is not None and on_disk is not None and on_disk != known[0]:
                doomed.append((topic, partition))
        for topic, partition in doomed:
            log.warning("removing %s-%s: not in the topic metadata", topic, partition)
            self.delete_log(topic, partition)
        return doomed

    def _remove_deleted_dirs(self) -> list[str]:
        removed = []
        for name in sorted(os.listdir(self.data_dir)):
            full = os.path.join(self.data_dir, name)
            if _DELETE_DIR.match(name) and os.path.isdir(full):
                shutil.rmtree(full)
                removed.append(name)
        if removed:
            fsync_dir(self.data_dir)
            log.info(
                "removed %d partition directories left from interrupted deletions", len(removed)
            )
        return removed

    # ------------------------------------------------------------------ scheduled jobs

    def run_retention(self, now_ms: int) -> dict[tuple[str, int], list[int]]:
        """Apply retention.ms / retention.bytes to every log whose cleanup.policy has `delete`.

        Returns {(topic, partition): deleted segment base offsets} for logs that dropped
        segments. A log that fails (offline, I/O error) is logged and skipped, not fatal.
        """
        result: dict[tuple[str, int], list[int]] = {}
        for key, plog in self.logs():
            if "delete" not in plog.config.cleanup_policy.split(","):
                continue
            if plog.is_offline:
                continue
            try:
                deleted = plog.enforce_retention(now_ms)
            except HeadwaterError as exc:
                log.error("retention of %s-%s failed: %s", key[0], key[1], exc)
                continue
            if deleted:
                result[key] = deleted
        return result

    def run_cleaner(self, now_ms: int) -> dict[tuple[str, int], CleanResult]:
        """Compact every log whose cleanup.policy has `compact` and whose dirty ratio reached
        min.cleanable.dirty.ratio (or a tombstone's delete horizon passed): log/cleaner.py.

        Returns {(topic, partition): CleanResult} for logs that were cleaned. A log that fails
        is logged and skipped, not fatal (an error after a swap committed takes it offline).
        """
        result: dict[tuple[str, int], CleanResult] = {}
        for key, plog in self.logs():
            if not is_compacted(plog.config) or plog.is_offline:
                continue
            try:
                if not needs_cleaning(plog, now_ms):
                    continue
                res = clean(plog, now_ms)
            except (HeadwaterError, OSError, ValueError) as exc:
                log.error("compaction of %s-%s failed: %s", key[0], key[1], exc)
                continue
            if res.cleaned:
                result[key] = res
        return result

    def maybe_flush_all(self, now_ms: int) -> list[tuple[str, int]]:
        """Flush every `flush.policy=interval` log whose flush.ms has passed; return those."""
        flushed = []
        for key, plog in self.logs():
            if plog.is_offline:
                continue
            try:
                if plog.maybe_flush(now_ms):
                    flushed.append(key)
            except HeadwaterError as exc:
                log.error("interval flush of %s-%s failed: %s", key[0], key[1], exc)
        return flushed

    def flush_all(self) -> None:
        """fsync every open log (e.g. before a snapshot); offline logs are skipped."""
        for _, plog in self.logs():
            if not plog.is_offline:
                plog.flush()

    # ------------------------------------------------------------------ close

    def close_all(self) -> None:
        """Close every log (each leaves its clean-shutdown marker). Every log is attempted;
        the first error is raised after the rest are closed."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            logs = sorted(self._logs.items())
            self._logs.clear()
        first: BaseException | None = None
        for (topic, partition), plog in logs:
            try:
                plog.close()
            except HeadwaterError as exc:
                log.error("closing %s-%s failed: %s", topic, partition, exc)
                first = first or exc
        if first is not None:
            raise first

    close = close_all

    def __enter__(self) -> LogManager:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close_all()

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("LogManager is closed")

    def __repr__(self) -> str:
        return f"LogManager({self.data_dir!r}, open_logs={len(self._logs)})"


def _read_topic_id_or_none(path: str) -> uuid.UUID | None:
    try:
        return read_partition_metadata(path)
    except ValueError:
        log.warning("unreadable %s in %s", PARTITION_METADATA_FILE, path)
        return None


def _log_config(mapping: Mapping[str, Any], what: str) -> LogConfig:
    try:
        return LogConfig.from_mapping(mapping)
    except InvalidConfigurationError:
        raise
    except (ConfigError, TypeError) as exc:
        raise InvalidConfigurationError(f"{what}: {exc}") from exc


__all__ = [
    "LogManager",
    "PARTITION_METADATA_FILE",
    "decode_topic_id",
    "encode_topic_id",
    "format_partition_metadata",
    "new_topic_id",
    "parse_partition_dir",
    "partition_dir_name",
    "read_partition_metadata",
    "write_file_atomic",
]
