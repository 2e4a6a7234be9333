"""PartitionLog: one Kafka partition stored as segment files in one directory.

Files in the directory (kafka-spec.md b.1): segments named by base offset (see segment.py),
plus three small files of our own:

    recovery-point      "0\n<offset>\n<crc32c hex>\n": every offset below it was fsync'd
    log-start-offset    same layout: the first offset still readable
    .clean-shutdown     present only after a clean close(); removed (and the removal made
                        durable) before the first write after open

Durability (DESIGN.md section 5): `flush.policy=batch` msyncs and fdatasyncs before append()
returns; `interval` does so every `flush.ms` / `flush.messages`; `none` only on roll and close.
Every policy survives kill -9 of the process (the page cache belongs to the kernel).

After a crash (no clean-shutdown marker) recovery scans the segments from the one holding
the recovery point (loader.py). Damage in the unsynced tail is truncated; damage inside the
synced region is reported as CorruptRange and left in place, never "repaired" by dropping the
valid batches after it (RELIABILITY.md section 1.5).

An fsync/msync error takes the log offline: every later call raises LogOfflineError until the
log is reopened, which runs recovery. A retried fsync that succeeds proves nothing.

Thread-safety: every public method takes the log's lock; ReadResult views stay valid after
the lock is released (they pin the segment mapping).
"""

from __future__ import annotations

import bisect
import errno
import logging
import os
import struct
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from headwater import record
from headwater._native._native import (
    FLUSH_BATCH,
    FLUSH_INTERVAL,
    FLUSH_OTHER,
    HW_ERR_IO,
    RECORD_BOUND,
    FastRLock,
    PartitionLogCore,
    RecordIterator,
    decode_columns,
    payload_size,
)
from headwater.config import LogConfig
from headwater.errors import (
    CorruptRecordError,
    InvalidRecordError,
    InvalidTimestampError,
    KafkaStorageError,
    LogOfflineError,
    MessageTooLargeError,
    OffsetOutOfRangeError,
    SegmentFullError,
)
from headwater.log import checkpoint
from headwater.log.cleaner import is_compacted, require_batch_keys, require_keys
from headwater.log.loader import RecoveryResult, load_segments
from headwater.log.producer_state import (
    CONTROL_ABORT,
    CONTROL_COMMIT,
    CompletedTxn,
    ProducerStateManager,
    parse_end_txn_marker,
)
from headwater.log.segment import LogSegment
from headwater.log.txn_index import AbortedTxn

log = logging.getLogger("headwater.log")

CLEAN_SHUTDOWN_FILE = ".clean-shutdown"
RECOVERY_POINT_FILE = "recovery-point"
LOG_START_OFFSET_FILE = "log-start-offset"

# RECORD_BOUND (a record's size bound beyond key and value) is _native's: append_one's C
# path reserves it too.
# Fetch IsolationLevel values (kafka-spec.md d.4).
READ_UNCOMMITTED = 0
READ_COMMITTED = 1

# ListOffsets' special timestamps (kafka-spec.md b.5): list_offset().
LATEST_TIMESTAMP = -1
EARLIEST_TIMESTAMP = -2
MAX_TIMESTAMP = -3


def _decompress_section(header: Any, view: memoryview) -> Any:
    return record.records_section(view, header)


def _now_ms() -> int:
    return int(time.time() * 1000)


class ReadResult:
    """Whole batches read from one segment, as one zero-copy view of the mapping.

    Iterating yields Record objects with offset >= the requested offset, skipping control
    batches; `batches()` yields (BatchHeader, memoryview) for every batch, control ones too.
    Use it as a context manager (or call release()) to drop the view promptly: a segment cannot
    be truncated, deleted or unmapped while views of it are alive.

    `last_stable_offset` is the partition's LSO at the read (Fetch v4+ returns it at either
    isolation level). `aborted_transactions` is None for a read_uncommitted read (Fetch must
    answer null, kafka-spec.md d.4) and, for read_committed, the (producer id, first offset) of
    every aborted transaction overlapping the offsets read: iterating, records() and columns()
    do NOT filter them (the wire returns whole batches); consumers skip them as Kafka's do.
    """

    __slots__ = ("view", "start_offset", "high_watermark", "log_start_offset", "last_stable_offset", "aborted_transactions", "next_offset")

    def __init__(
        self,
        view: memoryview | None,
        start_offset: int,
        high_watermark: int,
        log_start_offset: int,
        last_stable_offset: int = -1,
        aborted_transactions: list[tuple[int, int]] | None = None,
        next_offset: int = -1,
    ) -> None:
        self.view = view
        self.start_offset = start_offset
        self.high_watermark = high_watermark
        self.log_start_offset = log_start_offset
        self.last_stable_offset = last_stable_offset
        self.aborted_transactions = aborted_transactions
        # Where a reader continues: the first offset after the batches returned (at a
        # segment's end, its next offset); -1 when not known (no data).
        self.next_offset = next_offset

    @property
    def nbytes(self) -> int:
        return 0 if self.view is None else self.view.nbytes

    def __len__(self) -> int:
        return self.nbytes

    def batches(self) -> Iterator[tuple[Any, memoryview]]:
        if self.view is None:
            return iter(())
        return record.iter_batches(self.view)

    def __iter__(self) -> Iterator[Any]:
        if self.view is None:
            return iter(())
        # One C loop over batches and records; compressed batches call back once per batch.
        return RecordIterator(self.view, self.start_offset, _decompress_section)

    def records(self) -> list[Any]:
        return list(self)

    def columns(self) -> Any:
        """Decode every record from the start offset into a RecordColumns: offsets, timestamps
        and key/value positions as int64 arrays over one buffer (zero-copy when no batch is
        compressed). The fast way to read many records: no Python object per record."""
        if self.view is None:
            return decode_columns(b"", self.start_offset)
        return decode_columns(self.view, self.start_offset, _decompress_section)

    def tobytes(self) -> bytes:
        return b"" if self.view is None else self.view.tobytes()

    def release(self) -> None:
        if self.view is not None:
            self.view.release()
            self.view = None

    def __enter__(self) -> ReadResult:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


class AppendResult:
    """What append_batch_ex() did, shaped like Kafka's Produce partition response.

    base_offset/last_offset: the batch's offsets; for a duplicate (a retry of one of the
    producer's last 5 batches, kafka-spec.md c.3) the offsets of the original, and nothing was
    written. log_append_time: the broker time stamped on a LogAppendTime topic, else -1.
    completed_txn: set when a COMMIT/ABORT marker ended a non-empty transaction.
    """

    __slots__ = ("base_offset", "last_offset", "duplicate", "log_append_time", "log_start_offset", "completed_txn")

    def __init__(
        self,
        base_offset: int,
        last_offset: int,
        duplicate: bool,
        log_append_time: int,
        log_start_offset: int,
        completed_txn: CompletedTxn | None = None,
    ) -> None:
        self.base_offset = base_offset
        self.last_offset = last_offset
        self.duplicate = duplicate
        self.log_append_time = log_append_time
        self.log_start_offset = log_start_offset
        self.completed_txn = completed_txn

    def __repr__(self) -> str:
        return (
            f"AppendResult(base_offset={self.base_offset}, last_offset={self.last_offset}, "
            f"duplicate={self.duplicate}, log_append_time={self.log_append_time}, "
            f"log_start_offset={self.log_start_offset}, completed_txn={self.completed_txn})"
        )


# compression.type -> codec id (None: "producer", keep the batch's own).
_TOPIC_CODECS = {"uncompressed": 0, "gzip": 1, "snappy": 2, "lz4": 3, "zstd": 4}


def _recompress(view: memoryview, header: Any, codec: int) -> bytes:
    """The batch with its records section in `codec` (header fields kept, CRC rewritten)."""
    section = record.records_section(view, header)
    out = bytearray(view[: record.BATCH_HEADER_SIZE])
    out += section
    struct.pack_into(">i", out, 8, len(out) - 12)  # batchLength
    struct.pack_into(">h", out, 21, header.attributes & ~0x07)  # codec bits cleared
    struct.pack_into(">I", out, 17, record.crc32c(memoryview(out)[21:]))
    return record.compress_batch(out, codec) if codec else bytes(out)


class PartitionLog(PartitionLogCore):
    """A partition log in a directory. Create with PartitionLog.open().

    The single-record append (append_one), the tail read (read_messages) and the steps every
    append shares (_tail_segment_locked, _after_append_locked) are PartitionLogCore's (C)."""

    def __init__(self, path: str, config: LogConfig) -> None:
        self.path = path
        self.config = config
        self._lock = FastRLock()
        self._decompress = _decompress_section
        self._flush_lock = threading.Lock()  # serialises flush() (which syncs without _lock)
        # Set by LogManager: a scheduler flushes flush.policy=interval logs (maybe_flush), so
        # appends skip the time-based flush. A bare PartitionLog flushes inside append.
        self.scheduled_flush = False
        self._segments: list[LogSegment] = []
        self._bases: list[int] = []
        self._log_start_offset = 0
        self._recovery_point = 0
        self._offline: BaseException | None = None
        self._closed = False
        self._unflushed_messages = 0
        self._last_flush_ms = _now_ms()
        self.recovery: RecoveryResult = RecoveryResult()
        self.partition_leader_epoch = 0
        # What the C paths read of `config`: worked out once per LogConfig (frozen; a config
        # change installs a new one), by _configure_fast.
        self._one_config = None
        self._producers = ProducerStateManager(
            path, producer_id_expiration_ms=config.producer_id_expiration_ms
        )

    # ------------------------------------------------------------------ open / close

    @classmethod
    def open(cls, path: str | os.PathLike[str], config: Mapping[str, Any] | LogConfig | None = None, **kwargs: Any) -> PartitionLog:
        """Open (creating if needed) the log in `path`, running recovery after an unclean stop.

        Args:
            path: the partition directory.
            config: Kafka config names (``{"segment.bytes": n}``) or a LogConfig.
            **kwargs: more config, dotted names via ``**{...}`` or underscores.
        """
        if isinstance(config, LogConfig):
            cfg = config if not kwargs else LogConfig.from_mapping(config.kafka_names(), **kwargs)
        else:
            cfg = LogConfig.from_mapping(config, **kwargs)
        p = os.path.abspath(os.fspath(path))
        if not os.path.isdir(p):
            os.makedirs(p, exist_ok=True)
            # The new directory entry must survive a power cut before anything is acked in it.
            checkpoint.fsync_dir(os.path.dirname(p))
        self = cls(p, cfg)
        with self._lock:
            self._load()
        return self

    def _load(self) -> None:
        marker = os.path.join(self.path, CLEAN_SHUTDOWN_FILE)
        has_segments = any(name.endswith(".log") for name in os.listdir(self.path))
        clean = os.path.exists(marker) or not has_segments
        recovery_point = checkpoint.read(os.path.join(self.path, RECOVERY_POINT_FILE))
        log_start = checkpoint.read(os.path.join(self.path, LOG_START_OFFSET_FILE))
        if os.path.exists(marker):
            # From here on a crash must look unclean: remove the marker durably first.
            os.unlink(marker)
            checkpoint.fsync_dir(self.path)
        segments, result = load_segments(
            self.path,
            self.config,
            clean=clean,
            recovery_point=recovery_point if recovery_point is not None else 0,
        )
        self._segments = segments
        self._bases = [s.base_offset for s in segments]
        if not self._segments:
            self._segments = [self._new_segment(0)]
            self._bases = [0]
            # The first segment's directory entry must be durable before anything is acked
            # into it (rolls fsync the directory for later segments).
            checkpoint.fsync_dir(self.path)
        self.recovery = result
        first_base = self._segments[0].base_offset
        self._log_start_offset = min(max(log_start or 0, first_base), self.log_end_offset)
        self._load_producer_state_locked()
        # Everything recovery kept is flushed now, so the recovery point is the end of the log.
        if not clean:
            for seg in self._segments:
                if seg.active or seg.log.synced < seg.size:
                    seg.flush()
            try:
                checkpoint.write(os.path.join(self.path, RECOVERY_POINT_FILE), 0)
            except OSError as exc:
                # A full disk must not stop the log from opening for reads: the stale recovery
                # point only means the next open scans again.
                log.warning("cannot write the recovery point of %s: %s", self.path, exc)
        self._recovery_point = self.log_end_offset
        if result.dropped_anything() or result.corrupt_ranges:
            log.warning("recovered %s: %s", self.path, result.summary())

    def close(self) -> None:
        """Flush, seal indexes, trim files and leave the clean-shutdown marker."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            if self._offline is not None:
                # Do not claim a clean state: the next open must run recovery.
                for seg in self._segments:
                    try:
                        seg.close(trim=False)
                    except (OSError, BufferError):
                        log.exception("closing offline segment %s", seg.log_path)
                return
            try:
                for seg in self._segments:
                    if seg.active:
                        seg.seal_indexes()
                        seg.flush()
            except OSError as exc:
                # The data itself failed to sync: fatal, and the next open recovers.
                self._offline = exc
                for seg in self._segments:
                    seg.close(trim=False)
                raise LogOfflineError(f"close of {self.path} failed ({exc}); reopen runs recovery") from exc
            try:
                self._recovery_point = self.log_end_offset
                checkpoint.write(os.path.join(self.path, RECOVERY_POINT_FILE), self._recovery_point)
                checkpoint.write(os.path.join(self.path, LOG_START_OFFSET_FILE), self._log_start_offset)
                self._producers.update_map_end_offset(self.log_end_offset)
                self._producers.take_snapshot(sync_dir=False)  # the marker's dir fsync covers it
            except OSError as exc:
                # Everything appended is synced; only the bookkeeping files could not be
                # written (a full disk, typically). Close without the clean marker: the next
                # open scans, which is slower but loses nothing.
                log.warning("closing %s without a clean-shutdown marker: %s", self.path, exc)
                for seg in self._segments:
                    seg.close(trim=False)
                return
            except LogOfflineError as exc:
                if self._offline is None and isinstance(exc, OSError):
                    self._offline = exc
                for seg in self._segments:
                    seg.close(trim=False)
                if isinstance(exc, LogOfflineError):
                    raise
                raise LogOfflineError(f"close of {self.path} failed ({exc}); reopen runs recovery") from exc
            for seg in self._segments:
                seg.close(trim=True)
            with open(os.path.join(self.path, CLEAN_SHUTDOWN_FILE), "wb") as f:
                f.write(b"0\n")
                f.flush()
                os.fsync(f.fileno())
            checkpoint.fsync_dir(self.path)

    def __enter__(self) -> PartitionLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ offsets

    @property
    def log_start_offset(self) -> int:
        return self._log_start_offset

    @property
    def log_end_offset(self) -> int:
        return self._segments[-1].next_offset if self._segments else 0

    @property
    def high_watermark(self) -> int:
        """Single node: everything appended is committed (acks policy is the flush policy)."""
        return self.log_end_offset

    @property
    def recovery_point(self) -> int:
        return self._recovery_point

    @property
    def size_bytes(self) -> int:
        return sum(s.size for s in self._segments)

    @property
    def segments(self) -> list[LogSegment]:
        return list(self._segments)

    @property
    def is_offline(self) -> bool:
        return self._offline is not None

    # ------------------------------------------------------------------ append

    def append(
        self,
        values: Any,
        keys: Sequence[Any] | None = None,
        headers: Sequence[Any] | None = None,
        timestamps: Sequence[int] | None = None,
        compression: int | str | None = None,
        *,
        timestamp: int | None = None,
        producer_id: int = -1,
        producer_epoch: int = -1,
        base_sequence: int = -1,
        is_transactional: bool = False,
    ) -> int:
        """Append records as one batch; return the first offset assigned.

        With producer_id >= 0 the batch is an idempotent producer's (producer_epoch,
        base_sequence): it is validated against the partition's producer state first (c.3), and
        a retry of one of the producer's last 5 batches returns the original first offset
        without writing anything. `is_transactional` sets the batch's transactional bit (0x10):
        the producer's transaction on this partition opens (or continues) with it, until
        write_txn_marker() ends it.

        Args:
            values: a sequence of bytes-like objects (None = null value), a numpy array of
                fixed-width values (dtype ``S<n>``), or a pair ``(data, offsets)`` where value i
                is ``data[offsets[i]:offsets[i+1]]`` and offsets holds n+1 int64s.
            keys: one key per value (None = null key), or None.
            headers: per record a list of (str, bytes | None), or None.
            timestamps: per record CreateTime in ms, or None for `timestamp` (default now).
            compression: None/"none", "gzip", "snappy", "lz4", "zstd" or a codec id.

        Raises:
            MessageTooLargeError: the batch exceeds max.message.bytes; nothing written.
            KafkaStorageError: an I/O error or full disk; nothing written.
            LogOfflineError: an earlier fsync failed; reopen the log.
        """
        ts = int(time.time() * 1000) if timestamp is None else int(timestamp)
        if ts < 0:
            raise InvalidTimestampError(f"negative timestamp {ts}")
        codec = 0 if compression is None else record._compression.codec_id(compression)  # validates the name
        topic_codec = _TOPIC_CODECS.get(self.config.compression_type)
        if topic_codec is not None:
            codec = topic_codec  # the topic's compression.type wins over the producer's
        if type(values) is list:
            kind, count, payload_bytes = "list", len(values), payload_size(values)
        else:
            kind, count, payload_bytes = _classify(values)
        if count == 0:
            raise ValueError("append needs at least one record")
        if is_compacted(self.config):
            require_keys(keys, count)  # InvalidRecordError: compacted topics need keys
        if is_transactional and producer_id < 0:
            raise InvalidRecordError("a transactional batch needs a producer id")
        if kind != "list" and (keys is not None or headers is not None or timestamps is not None or codec or is_transactional):
            values = _to_list(kind, values, count)
            kind = "list"
        if timestamps is not None:
            timestamps = list(timestamps)
            if len(timestamps) != count:
                raise ValueError(f"{len(timestamps)} timestamps for {count} values")
            if any(t < 0 for t in timestamps):
                raise InvalidTimestampError("negative record timestamp")
        if keys is not None and len(keys) != count:
            raise ValueError(f"{len(keys)} keys for {count} values")
        if headers is not None and len(headers) != count:
            raise ValueError(f"{len(headers)} header lists for {count} values")
        log_append_time = self.config.message_timestamp_type == "LogAppendTime"

        if codec or headers is not None or log_append_time:
            raw = record.build_batch(
                values, keys, headers, timestamps, timestamp=ts,
                producer_id=producer_id, producer_epoch=producer_epoch, base_sequence=base_sequence,
                attributes=0x10 if is_transactional else 0,
            )
            if codec:
                raw = record.compress_batch(raw, codec)
            with self._lock:
                self._check_writable()
                if producer_id >= 0:
                    return self._append_producer_batch_locked(memoryview(raw), record.parse_batch_header(raw)).base_offset
                return self._append_raw_locked(raw, record.parse_batch_header(raw), count)

        if kind == "list" and keys is not None:
            payload_bytes += payload_size(keys)
        bound = record.BATCH_HEADER_SIZE + count * RECORD_BOUND + payload_bytes
        with self._lock:
            if self._closed or self._offline is not None:
                self._check_writable()
            info = None
            if producer_id >= 0:
                if base_sequence < 0:
                    raise InvalidRecordError("idempotent batch without a base sequence")
                info = self._producers.prepare(producer_id)
                dup = info.validate_data_batch(producer_epoch, base_sequence, count - 1, is_transactional)
                if dup is not None:
                    return int(dup.first_offset)
            seg = self._segment_for_append_locked(bound, ts if timestamps is None else max(timestamps), count)
            base = seg.next_offset  # the log end offset
            start = seg.log.size
            limit = self.config.max_message_bytes
            try:
                if kind == "list":
                    pos, size = seg.log.append_records(
                        values, keys, ts, base, self.partition_leader_epoch,
                        producer_id, producer_epoch, base_sequence, 0x10 if is_transactional else 0,
                        timestamps=timestamps, max_batch_bytes=limit,
                    )
                elif kind == "fixed":
                    pos, size = seg.log.append_fixed(
                        values, values.dtype.itemsize, count, ts, base, self.partition_leader_epoch, limit,
                        producer_id, producer_epoch, base_sequence,
                    )
                else:
                    data, offsets = values
                    pos, size = seg.log.append_offsets(
                        data, offsets, count, ts, base, self.partition_leader_epoch, limit,
                        producer_id, producer_epoch, base_sequence,
                    )
            except OSError as exc:
                # The C layer already cut any part of the write that landed.
                raise KafkaStorageError(f"append to {seg.log_path} failed: {exc}") from exc
            assert seg.log.size == start + size
            max_ts = ts if timestamps is None else max(timestamps)
            seg.after_append(pos, size, base + count - 1, max_ts)
            if info is not None:
                info.append_data_batch(producer_epoch, base_sequence, base, base + count - 1, max_ts, is_transactional)
                self._producers.update(info)
                self._producers.update_map_end_offset(self.log_end_offset)
            self._after_append_locked(seg, count, not is_transactional)
            return base

    def append_coordinator_records(self, keys: list[bytes], values: list[bytes | None], *, sync: bool = True) -> int:
        """Append a coordinator's own records (keyed, uncompressed, no producer) as one batch
        stamped now; return its base offset. The fast path of the internal topics: none of
        append()'s checks of a caller's arguments apply to records the broker encoded.
        `sync=False`: under flush.policy=batch the batch is not fsync'd now; the next fsync of
        this log carries it (records nobody is answered on).

        Raises:
            MessageTooLargeError, KafkaStorageError, LogOfflineError: as append().
        """
        raw = record.build_batch(values, keys, timestamp=int(time.time() * 1000))
        header = record.parse_batch_header(raw)
        with self._lock:
            if self._closed or self._offline is not None:
                self._check_writable()
            return self._append_raw_locked(raw, header, len(values), sync=sync)

    def append_batch(self, raw: bytes | bytearray | memoryview, *, control: bool = False) -> int:
        """Append one client-built RecordBatch v2; return its assigned base offset.

        A duplicate from a retrying idempotent producer returns the original base offset and
        writes nothing; append_batch_ex() says whether that happened. See append_batch_ex().
        """
        return self.append_batch_ex(raw, control=control).base_offset

    def append_batch_ex(self, raw: bytes | bytearray | memoryview, *, control: bool = False) -> AppendResult:
        """Append one client-built RecordBatch v2; return an AppendResult.

        The batch is validated (kafka-spec.md a.4: CRC, structure, record count against last
        offset delta, no control batch from a client, sequence set for idempotent producers,
        size against max.message.bytes), then copied with base offset and leader epoch stamped
        in place; the CRC is untouched (LogAppendTime topics rewrite max timestamp and CRC).

        Batches with a producer id go through the producer state (kafka-spec.md c.3) before the
        write, and update it after: a duplicate of one of the producer's last 5 batches is not
        written and answers with the original offsets (duplicate=True). Control batches
        (control=True, COMMIT/ABORT markers) end the producer's open transaction.

        Raises:
            InvalidProducerEpochError: stale producer epoch (47); nothing written.
            OutOfOrderSequenceError: sequence gap or new epoch not at 0 (45); nothing written.
            InvalidTxnStateError: non-transactional batch during an open transaction (48).
            TransactionCoordinatorFencedError: a marker from an older coordinator epoch (52).
            plus the errors of append().
        """
        view = memoryview(raw)
        try:
            header = record.check_batch(view)
        except CorruptRecordError:
            raise
        if header.size != view.nbytes:
            raise InvalidRecordError(
                f"expected exactly one batch: {view.nbytes} bytes given, batch is {header.size}"
            )
        if header.is_control and not control:
            raise InvalidRecordError("clients may not write control batches")
        if header.records_count <= 0 and not control:
            raise InvalidRecordError("batch has no records")
        if header.last_offset_delta != header.records_count - 1:
            raise InvalidRecordError(
                f"last_offset_delta {header.last_offset_delta} does not match {header.records_count} records"
            )
        if header.producer_id >= 0 and header.base_sequence < 0 and not header.is_control:
            raise InvalidRecordError("idempotent batch without a base sequence")
        if header.timestamp_type == 1 and not control:
            raise InvalidTimestampError("producers must send CreateTime batches")
        target = _TOPIC_CODECS.get(self.config.compression_type)
        if target is not None and target != header.compression and not header.is_control:
            # A topic with compression.type set stores every batch with that codec: the
            # records are decompressed and compressed again, as Kafka's LogValidator does.
            view = memoryview(_recompress(view, header, target))
            header = record.check_batch(view)
        if header.compression:
            # Decompress once to prove the records parse (Kafka validates them too).
            record.batch_records(view, header)
        if is_compacted(self.config):
            require_batch_keys(view, header)  # InvalidRecordError: compacted topics need keys
        with self._lock:
            self._check_writable()
            if header.producer_id < 0:
                append_time = self._append_time()
                base = self._append_raw_locked(view, header, header.records_count, append_time)
                return AppendResult(base, base + header.last_offset_delta, False, append_time, self._log_start_offset)
            return self._append_producer_batch_locked(view, header)

    def _append_time(self) -> int:
        return _now_ms() if self.config.message_timestamp_type == "LogAppendTime" else -1

    def _append_producer_batch_locked(self, view: Any, header: Any) -> AppendResult:
        """Validate against the producer state, write, then apply (STYLE.md 5). Markers the
        broker builds itself take write_txn_marker's lean path instead."""
        info = self._producers.prepare(header.producer_id)
        marker = None
        if header.is_control:
            if header.records_count > 0:
                marker = parse_end_txn_marker(view, header)
            if marker is not None:
                info.validate_end_txn_marker(header.producer_epoch, marker[1])
        else:
            dup = info.validate_data_batch(
                header.producer_epoch, header.base_sequence, header.last_offset_delta, header.is_transactional
            )
            if dup is not None:
                lat = dup.timestamp if self.config.message_timestamp_type == "LogAppendTime" else -1
                return AppendResult(dup.first_offset, dup.last_offset, True, lat, self._log_start_offset)
        append_time = self._append_time()
        # A transactional batch is made durable with its transaction (sync_transactional, or
        # the COMMIT marker's fsync), not on its own: see _after_append_locked.
        sync = header.is_control or not header.is_transactional
        base = self._append_raw_locked(view, header, header.records_count, append_time, sync)
        ts = append_time if append_time >= 0 else header.max_timestamp
        completed = None
        if marker is not None:
            completed = info.append_end_txn_marker(marker[0], marker[1], header.producer_epoch, base, ts)
        elif not header.is_control:
            info.append_data_batch(
                header.producer_epoch,
                header.base_sequence,
                base,
                base + header.last_offset_delta,
                ts,
                header.is_transactional,
            )
        self._producers.update(info)
        self._producers.update_map_end_offset(self.log_end_offset)
        if completed is not None and completed.is_aborted:
            self._index_aborted_txn_locked(completed)
        return AppendResult(
            base, base + header.last_offset_delta, False, append_time, self._log_start_offset, completed
        )

    def _index_aborted_txn_locked(self, completed: CompletedTxn) -> None:
        """Add the `.txnindex` entry of an ABORT marker just appended (and applied to the
        producer state): in the segment holding the marker, with the LSO the partition has now
        (Kafka's ProducerStateManager.lastStableOffset: the first offset of the earliest other
        open transaction, else the marker's offset + 1)."""
        seg = self._segments[-1]
        first_unstable = self._producers.first_unstable_offset
        lso = completed.last_offset + 1 if first_unstable is None else first_unstable
        entry = AbortedTxn(completed.producer_id, completed.first_offset, completed.last_offset, lso)
        try:
            seg.txn_index.append(entry)
            if self.config.flush_policy == "batch":
                seg.txn_index.flush()
        except OSError as exc:
            # The marker is in the log but read_committed readers would miss the abort: refuse
            # all work until reopened (recovery rebuilds the entry from the marker).
            self._go_offline(exc, f"writing the transaction index {seg.txn_index_path}")

    def write_txn_marker(
        self,
        producer_id: int,
        producer_epoch: int,
        commit: bool,
        coordinator_epoch: int,
        timestamp: int | None = None,
    ) -> AppendResult:
        """Append a COMMIT (commit=True) or ABORT transaction marker for `producer_id`
        (kafka-spec.md a.5, d.3 WriteTxnMarkers): one control batch, attributes 0x30, base
        sequence -1, stamped `timestamp` (default now).

        The producer's open transaction on this partition ends: the last stable offset moves
        on, and an ABORT of a non-empty transaction adds a `.txnindex` entry. A marker for a
        producer without an open transaction here is written all the same (the coordinator
        writes markers to every partition of the transaction); completed_txn is then None.

        Raises:
            InvalidProducerEpochError: `producer_epoch` is older than the producer's (47).
            TransactionCoordinatorFencedError: `coordinator_epoch` is older than the one of the
                producer's last marker (52).
            KafkaStorageError, LogOfflineError: as append().
        """
        ts = _now_ms() if timestamp is None else int(timestamp)
        ctype = CONTROL_COMMIT if commit else CONTROL_ABORT
        # Built here, so append_batch_ex's checks of a client's batch (CRC, structure, the
        # marker record's decoding) have nothing to find; the producer state is checked and
        # applied directly (one marker per transaction and partition: the commit's cost).
        with self._lock:
            if self._closed or self._offline is not None:
                self._check_writable()
            producers = self._producers
            producers.check_end_txn_marker(producer_id, producer_epoch, coordinator_epoch)
            append_time = self._append_time()
            if append_time < 0:  # CreateTime: the batch is built in the segment's buffer
                base = self._append_control_locked(ctype, producer_id, producer_epoch, coordinator_epoch, ts)
            else:
                raw = record.build_control_batch(
                    ctype, producer_id=producer_id, producer_epoch=producer_epoch,
                    coordinator_epoch=coordinator_epoch, timestamp=ts,
                )
                base = self._append_raw_locked(raw, record.parse_batch_header(raw), 1, append_time)
            completed = producers.apply_end_txn_marker(
                producer_id, ctype, coordinator_epoch, producer_epoch, base, append_time if append_time >= 0 else ts
            )
            producers.map_end_offset = base + 1
            if completed is not None and completed.is_aborted:
                self._index_aborted_txn_locked(completed)
            return AppendResult(base, base, False, append_time, self._log_start_offset, completed)

    def _append_raw_locked(self, raw: Any, header: Any, count: int, append_time: int | None = None, sync: bool = True) -> int:
        size = header.size
        if size > self.config.max_message_bytes:
            raise MessageTooLargeError(
                f"batch of {size} bytes exceeds max.message.bytes={self.config.max_message_bytes}"
            )
        if append_time is None:
            append_time = self._append_time()
        max_ts = append_time if append_time >= 0 else header.max_timestamp
        seg = self._segment_for_append_locked(size, max_ts, header.last_offset_delta + 1)
        base = self.log_end_offset
        try:
            pos, written = seg.log.append_batch(raw, base, self.partition_leader_epoch, append_time)
        except OSError as exc:
            raise KafkaStorageError(f"append to {seg.log_path} failed: {exc}") from exc
        seg.after_append(pos, written, base + header.last_offset_delta, max_ts)
        self._after_append_locked(seg, count, sync)
        return base

    def _check_writable(self) -> None:
        if self._closed:
            raise ValueError(f"log {self.path} is closed")
        if self._offline is not None:
            raise LogOfflineError(f"log {self.path} is offline after an I/O error: {self._offline}")

    def _segment_for_append_locked(self, size_bound: int, max_timestamp: int, count: int) -> LogSegment:
        seg = self._tail_segment_locked(size_bound, max_timestamp, count)
        if seg is not None:
            return seg  # the common case: no roll (PartitionLogCore)
        seg = self._segments[-1]
        cfg = self.config
        last_offset = self.log_end_offset + count - 1
        if seg.is_empty:
            if seg.log.map_len < size_bound or not seg.fits_offsets(last_offset):
                return self._roll_locked(self.log_end_offset, size_bound)
            return seg
        roll = (
            seg.size + size_bound > cfg.segment_bytes
            or seg.size + size_bound > seg.log.map_len
            or seg.index_is_full()
            or not seg.fits_offsets(last_offset)
            or (
                seg.first_batch_max_timestamp >= 0
                and max_timestamp - seg.first_batch_max_timestamp > cfg.segment_ms - cfg.segment_jitter_ms
            )
        )
        if roll:
            return self._roll_locked(self.log_end_offset, size_bound)
        return seg

    def _configure_fast(self, cfg: LogConfig) -> None:
        """Set what PartitionLogCore's C paths read of `cfg` (it calls this whenever config
        is another LogConfig than the one seen last)."""
        self._one_needs_append = bool(
            _TOPIC_CODECS.get(cfg.compression_type)
            or cfg.message_timestamp_type == "LogAppendTime"
            or is_compacted(cfg)
        )
        self._c_segment_bytes = cfg.segment_bytes
        self._c_roll_ms = cfg.segment_ms - cfg.segment_jitter_ms
        self._c_max_message_bytes = cfg.max_message_bytes
        self._c_flush_messages = cfg.flush_messages
        self._c_flush_ms = cfg.flush_ms
        self._c_flush_policy = {"interval": FLUSH_INTERVAL, "batch": FLUSH_BATCH}.get(cfg.flush_policy, FLUSH_OTHER)
        self._one_config = cfg

    def _flush_interval_locked(self, seg: LogSegment) -> None:
        """flush.policy=interval's flush after an append (_after_append_locked decides)."""
        self._flush_segment_locked(seg)
        self._last_flush_ms = _now_ms()
        self._recovery_point = self.log_end_offset
        self._write_checkpoints()

    def _flush_segment_locked(self, seg: LogSegment) -> None:
        try:
            seg.flush()
        except OSError as exc:
            self._go_offline(exc, f"fsync of {seg.log_path}")
        self._unflushed_messages = 0
        if self.config.flush_policy == "batch":
            self._recovery_point = seg.next_offset

    def _new_segment(self, base_offset: int, size_bound: int = 0) -> LogSegment:
        return LogSegment(
            self.path,
            base_offset,
            max_bytes=max(self.config.segment_bytes, size_bound),
            index_bytes=self.config.segment_index_bytes,
            index_interval_bytes=self.config.index_interval_bytes,
            create=True,
            active=True,
        )

    def _roll_locked(self, base_offset: int, size_bound: int = 0) -> LogSegment:
        """Start a new active segment at `base_offset`. The new files are created first, so a
        full disk leaves the current segment active and the log unchanged."""
        old = self._segments[-1]
        if old.is_empty:
            # Replace an empty active segment (too small a mapping, or offsets moved on).
            old.close(trim=True)
            old.delete_files()
            self._segments.pop()
            self._bases.pop()
        try:
            new = self._new_segment(base_offset, size_bound)
        except OSError as exc:
            for suffix in (".log", ".index", ".timeindex"):
                try:
                    os.unlink(os.path.join(self.path, f"{base_offset:020d}{suffix}"))
                except FileNotFoundError:
                    pass
            if old.is_empty and not self._segments:
                self._segments.append(self._new_segment(base_offset))
                self._bases.append(base_offset)
            code = errno.errorcode.get(exc.errno or 0, str(exc.errno))
            raise KafkaStorageError(f"cannot create segment {base_offset} ({code}): {exc}") from exc
        if not old.is_empty:
            try:
                old.seal()
            except OSError as exc:
                new.close(trim=False)
                new.delete_files()
                self._offline = exc
                raise LogOfflineError(f"sealing {old.log_path} failed: {exc}") from exc
        self._sync_dir()
        self._segments.append(new)
        self._bases.append(base_offset)
        # Producer state at the new base (kafka-spec.md c.4): every batch below it is sealed.
        self._producers.update_map_end_offset(base_offset)
        try:
            self._producers.take_snapshot()
        except OSError as exc:
            self._go_offline(exc, "writing the producer snapshot")
        if not old.is_empty:
            self._recovery_point = max(self._recovery_point, old.next_offset)
            self._write_checkpoints()
            # As Kafka after a recovery-point checkpoint: keep the snapshots of the last two
            # segments (enough to rebuild after a short truncation), delete older ones.
            self._producers.delete_snapshots_below(min(self._recovery_point, old.base_offset))
        return new

    def roll(self) -> None:
        """Force a new active segment at the log end offset (if the current one has data)."""
        with self._lock:
            self._check_writable()
            if not self._segments[-1].is_empty:
                self._roll_locked(self.log_end_offset)

    # ------------------------------------------------------------------ read

    def read(
        self,
        offset: int,
        max_bytes: int = 1048576,
        *,
        verify_crc: bool = True,
        isolation_level: int = READ_UNCOMMITTED,
        max_offset: int | None = None,
    ) -> ReadResult:
        """Whole batches starting with the one holding `offset`, as a zero-copy view.

        At least one batch is returned even if larger than max_bytes (KIP-74). Reading at the
        log end offset returns an empty result; outside [log_start_offset, log_end_offset]
        raises OffsetOutOfRangeError. A batch failing its CRC raises CorruptRecordError.

        Args:
            isolation_level: READ_UNCOMMITTED (0) reads up to the high watermark;
                READ_COMMITTED (1) only batches below the last stable offset, and fills
                result.aborted_transactions for the offsets returned (kafka-spec.md d.4).
            max_offset: return only batches wholly below this offset (at a batch boundary the
                bound is exact; inside a batch that batch is left out).
        """
        if isolation_level != READ_UNCOMMITTED or max_offset is not None:
            return self._read_bounded(offset, max_bytes, verify_crc, isolation_level, max_offset)
        with self._lock:
            hw = leo = self._check_readable_locked(offset)
            # The LSO (one dict test while no transaction is open: the hot path stays flat).
            lso = self.last_stable_offset if self._producers._ongoing else hw
            if offset == leo:
                return ReadResult(None, offset, hw, self._log_start_offset, lso)
            i = bisect.bisect_right(self._bases, offset) - 1
            while i < len(self._segments):
                seg = self._segments[max(i, 0)]
                start = seg.position_of(offset)
                if start < seg.size:
                    end, next_offset = _extent(seg, start, max_bytes, verify_crc, offset)
                    return ReadResult(seg.log.view(start, end - start), offset, hw, self._log_start_offset, lso, None, next_offset)
                i += 1
            return ReadResult(None, offset, hw, self._log_start_offset, lso)

    def _check_readable_locked(self, offset: int) -> int:
        """The log end offset, once the log is known open, online and holding `offset`."""
        if self._closed:
            raise ValueError(f"log {self.path} is closed")
        if self._offline is not None:
            raise LogOfflineError(f"log {self.path} is offline: {self._offline}")
        leo = self.log_end_offset
        if offset < self._log_start_offset or offset > leo:
            raise OffsetOutOfRangeError(
                f"offset {offset} outside [{self._log_start_offset}, {leo}] of {self.path}"
            )
        return leo

    def _read_bounded(
        self, offset: int, max_bytes: int, verify_crc: bool, isolation_level: int, max_offset: int | None
    ) -> ReadResult:
        """read() below a bound: the LSO for read_committed, and/or `max_offset`."""
        if isolation_level not in (READ_UNCOMMITTED, READ_COMMITTED):
            raise ValueError(f"isolation_level must be 0 (read_uncommitted) or 1 (read_committed), not {isolation_level}")
        committed = isolation_level == READ_COMMITTED
        with self._lock:
            hw = self._check_readable_locked(offset)
            fu = self._producers.first_unstable_offset
            lso = hw if fu is None else max(min(hw, fu), self._log_start_offset)
            limit = lso if committed else hw
            if max_offset is not None:
                limit = min(limit, max_offset)
            aborted: list[tuple[int, int]] | None = [] if committed else None
            if offset >= limit:
                return ReadResult(None, offset, hw, self._log_start_offset, lso, aborted)
            i = max(bisect.bisect_right(self._bases, offset) - 1, 0)
            while i < len(self._segments):
                seg = self._segments[i]
                start = seg.position_of(offset)
                stop = seg.size if limit >= seg.next_offset else seg.position_of(limit)
                if start < stop:
                    end, next_offset = _extent(seg, start, min(max_bytes, stop - start), verify_crc, offset)
                    if aborted is not None:
                        upper = limit
                        if end < seg.size:
                            try:
                                upper = min(limit, seg.log.header_at(end).base_offset)
                            except CorruptRecordError:
                                pass  # the bound stays correct, if wider than needed
                        else:
                            upper = min(limit, seg.next_offset)
                        aborted = [(e.producer_id, e.first_offset) for e in self._collect_aborted_locked(offset, upper, i)]
                    return ReadResult(seg.log.view(start, end - start), offset, hw, self._log_start_offset, lso, aborted, next_offset)
                if stop < seg.size:
                    break  # the bound lies in this segment: nothing below it from `offset` on
                i += 1
            return ReadResult(None, offset, hw, self._log_start_offset, lso, aborted)

    # ------------------------------------------------------------------ transactions

    def aborted_transactions(self, start_offset: int, upper_bound_offset: int) -> list[tuple[int, int]]:
        """(producer id, first offset) of every aborted transaction overlapping
        [start_offset, upper_bound_offset), from the `.txnindex` files, in marker order: what a
        read_committed Fetch returns as AbortedTransactions (Kafka's collectAbortedTransactions:
        the segments are walked from the one holding start_offset until an entry's stored LSO
        reaches the upper bound)."""
        with self._lock:
            i = max(bisect.bisect_right(self._bases, start_offset) - 1, 0)
            return [(e.producer_id, e.first_offset) for e in self._collect_aborted_locked(start_offset, upper_bound_offset, i)]

    def aborted_txn_entries(self, start_offset: int, upper_bound_offset: int) -> list[AbortedTxn]:
        """aborted_transactions() with every field of the index entries (last offset = the
        ABORT marker, and the LSO stored with it)."""
        with self._lock:
            i = max(bisect.bisect_right(self._bases, start_offset) - 1, 0)
            return self._collect_aborted_locked(start_offset, upper_bound_offset, i)

    def _collect_aborted_locked(self, start: int, upper: int, i: int) -> list[AbortedTxn]:
        out: list[AbortedTxn] = []
        segments = self._segments
        for j in range(i, len(segments)):
            idx = segments[j].txn_index
            if idx.entries and idx.collect(start, upper, out):
                break
        return out

    def list_offset(self, timestamp: int, read_committed: bool = False) -> tuple[int, int]:
        """ListOffsets of one partition (Kafka's Partition.fetchOffsetForTimestamp): (offset,
        timestamp) for `timestamp` -1 (latest: the high watermark, or the last stable offset
        when `read_committed`), -2 (earliest: the log start offset), -3 (the first record
        holding the largest timestamp, KIP-734), or a time in ms (the first record at or after
        it). Only offsets below the latest one are answered; (-1, -1) when nothing matches.
        The latest and earliest come with timestamp -1."""
        fetchable = self.last_stable_offset if read_committed else self.high_watermark
        if timestamp == LATEST_TIMESTAMP:
            return fetchable, -1
        if timestamp == EARLIEST_TIMESTAMP:
            return self.log_start_offset, -1
        if timestamp == MAX_TIMESTAMP:
            found = self._max_timestamp_offset()
        elif timestamp >= 0:
            found = self.offset_for_timestamp(timestamp)
        else:
            found = None  # -4/-5 (tiered storage) and other negatives: nothing matches
        if found is None or found[0] >= fetchable:
            return -1, -1
        return found

    def _max_timestamp_offset(self) -> tuple[int, int] | None:
        """(offset, timestamp) of the first record holding the log's largest timestamp."""
        start = self.log_start_offset
        best = -1
        for seg in self.segments:
            if not seg.is_empty and seg.next_offset > start and seg.max_timestamp > best:
                best = seg.max_timestamp
        if best < 0:
            return None
        return self.offset_for_timestamp(best)

    def offset_for_timestamp(self, timestamp: int) -> tuple[int, int] | None:
        """(offset, timestamp) of the first record with timestamp >= `timestamp`, or None."""
        with self._lock:
            for seg in self._segments:
                if seg.is_empty or seg.max_timestamp < timestamp or seg.next_offset <= self._log_start_offset:
                    continue
                pos = seg.timestamp_position(timestamp)
                while pos < seg.size:
                    header = seg.log.header_at(pos)
                    if header.max_timestamp >= timestamp and not header.is_control:
                        view = seg.log.view(pos, header.size)
                        try:
                            for rec in record.batch_records(view, header):
                                if rec.timestamp >= timestamp and rec.offset >= self._log_start_offset:
                                    return rec.offset, rec.timestamp
                        finally:
                            view.release()
                    pos += header.size
            return None

    # ------------------------------------------------------------------ truncation, retention

    def truncate_to(self, offset: int) -> int:
        """Remove every batch holding an offset >= `offset` (whole batches: the new log end is
        the base offset of the batch holding `offset`). Returns the new log end offset."""
        with self._lock:
            self._check_writable()
            if offset >= self.log_end_offset:
                return self.log_end_offset
            if offset < self._log_start_offset:
                raise OffsetOutOfRangeError(f"cannot truncate below log start {self._log_start_offset}")
            i = max(bisect.bisect_right(self._bases, offset) - 1, 0)
            pinned = [s.log_path for s in self._segments[i:] if s.log.exported_views]
            if pinned:
                raise BufferError(f"views of {pinned} are alive; release them before truncating")
            # Later segments go entirely.
            for seg in self._segments[i + 1 :]:
                seg.close(trim=False)
                seg.delete_files()
            del self._segments[i + 1 :]
            del self._bases[i + 1 :]
            seg = self._segments[i]
            if not seg.active:
                self._reactivate_locked(seg)
                seg = self._segments[i]
            pos = seg.position_of(offset)
            if pos < seg.size:
                new_end = seg.log.header_at(pos).base_offset
                seg.truncate_to_position(pos, new_end)
            self._recovery_point = min(self._recovery_point, self.log_end_offset)
            self._write_checkpoints()
            self._sync_dir()
            # As Kafka: back to the newest snapshot <= the new end, then replay the log.
            self._load_producer_state_locked(force=True)
            return self.log_end_offset

    def _reactivate_locked(self, seg: LogSegment) -> None:
        """Reopen a sealed segment as the active one (after truncating the ones after it)."""
        i = self._segments.index(seg)
        seg.close(trim=True)
        new = LogSegment(
            self.path,
            seg.base_offset,
            max_bytes=max(self.config.segment_bytes, seg.size),
            index_bytes=self.config.segment_index_bytes,
            index_interval_bytes=self.config.index_interval_bytes,
            active=True,
        )
        new.log.size = seg.size
        new.load_clean()
        new.txn_index = seg.txn_index  # same file; keeps its unflushed state
        self._segments[i] = new

    def delete_records_before(self, offset: int) -> int:
        """Advance the log start offset (Kafka DeleteRecords); whole segments below it go."""
        with self._lock:
            self._check_writable()
            if offset > self.log_end_offset:
                raise OffsetOutOfRangeError(f"offset {offset} beyond log end {self.log_end_offset}")
            if offset > self._log_start_offset:
                self._log_start_offset = offset
                self._delete_segments_locked(lambda seg: seg.next_offset <= offset)
                self._write_checkpoints()
            return self._log_start_offset

    def enforce_retention(self, now_ms: int | None = None) -> list[int]:
        """Delete whole segments past retention.ms / retention.bytes (oldest first).
        Returns the base offsets deleted."""
        now = _now_ms() if now_ms is None else now_ms
        cfg = self.config
        with self._lock:
            self._check_writable()
            deleted: list[int] = []
            if cfg.retention_ms >= 0:
                deleted += self._delete_segments_locked(
                    lambda seg: not seg.is_empty and now - seg.max_timestamp > cfg.retention_ms
                )
            if cfg.retention_bytes >= 0:
                total = self.size_bytes

                def too_big(seg: LogSegment) -> bool:
                    nonlocal total
                    if total - seg.size >= cfg.retention_bytes and not seg.is_empty:
                        total -= seg.size
                        return True
                    return False

                deleted += self._delete_segments_locked(too_big)
            if deleted:
                self._log_start_offset = max(self._log_start_offset, self._segments[0].base_offset)
                self._write_checkpoints()
            return deleted

    def _delete_segments_locked(self, predicate: Any) -> list[int]:
        deleted = []
        while self._segments and not (self._segments[0].active and self._segments[0].is_empty) and predicate(self._segments[0]):
            seg = self._segments[0]
            if seg.active:
                # The last segment may go too: roll a fresh empty one at the log end first.
                self._roll_locked(self.log_end_offset)
            if seg.log.exported_views:
                break  # a reader still holds it; try again on the next pass
            seg.close(trim=False)
            seg.delete_files()
            self._segments.pop(0)
            self._bases.pop(0)
            deleted.append(seg.base_offset)
        if deleted:
            self._producers.delete_snapshots_below(self._segments[0].base_offset)
            self._sync_dir()
            self._log_start_offset = max(self._log_start_offset, self._segments[0].base_offset)
        return deleted

    # ------------------------------------------------------------------ producer state

    @property
    def producer_state(self) -> ProducerStateManager:
        """The idempotent-producer state (kafka-spec.md c). Not thread-safe on its own: read it
        while no other thread appends, or under the log's lock."""
        return self._producers

    @property
    def last_stable_offset(self) -> int:
        """min(high watermark, first offset of the earliest open transaction) (kafka-spec.md b.5),
        never below the log start offset (an open transaction whose first batches were deleted
        by retention or DeleteRecords still holds the LSO at the log start)."""
        with self._lock:
            first_unstable = self._producers.first_unstable_offset
            hw = self.high_watermark
            return hw if first_unstable is None else max(min(hw, first_unstable), self._log_start_offset)

    def expire_producers(self, now_ms: int | None = None) -> list[int]:
        """Drop producers idle longer than producer.id.expiration.ms (none with an open
        transaction); returns their ids. For a scheduler (Kafka checks every 10 minutes)."""
        now = _now_ms() if now_ms is None else now_ms
        with self._lock:
            return self._producers.remove_expired_producers(now)

    def _load_producer_state_locked(self, *, force: bool = False) -> None:
        """Producer state for the log as it is: the newest valid snapshot <= the log end (bad,
        too new or too old ones are deleted), then the batches after it replayed without
        validation (kafka-spec.md b.4 step 5)."""
        leo = self.log_end_offset
        rebuild_from = self._check_txn_indexes_locked()
        start = self._producers.truncate_and_reload(
            self._log_start_offset, leo, force=force or rebuild_from is not None, max_snapshot_offset=rebuild_from
        )
        if start < leo:
            self._replay_producer_state_locked(start)
        self._producers.update_map_end_offset(leo)

    def _check_txn_indexes_locked(self) -> int | None:
        """Make every `.txnindex` fit its segment before producer state is replayed: entries
        whose marker lies past the segment's data go (a truncated tail); an index failing its
        structural check (torn, out of order) is emptied, to be rebuilt by the replay. Returns
        the lowest base offset of an emptied index: the replay must start at or below it."""
        rebuild_from = None
        for seg in self._segments:
            idx = seg.txn_index
            if idx.problem is None and not idx.entries:
                continue
            if idx.problem is None and idx.last_offset >= seg.next_offset:
                idx.truncate_to(seg.next_offset)
            if not idx.check(seg.next_offset):
                log.warning("rebuilding the transaction index %s: %s", seg.txn_index_path, idx.problem)
                idx.reset()
                if seg.base_offset not in self.recovery.rebuilt_indexes:
                    self.recovery.rebuilt_indexes.append(seg.base_offset)
                if rebuild_from is None:
                    rebuild_from = seg.base_offset
        return rebuild_from

    def _replay_producer_state_locked(self, start: int) -> None:
        """Apply every producer batch with an offset >= `start`, walking batch headers (no CRC:
        recovery checked the data); corrupt ranges kept by recovery are stepped over."""
        for seg in self._segments:
            if seg.is_empty or seg.next_offset <= start:
                continue
            pos = 0
            if seg.base_offset < start:
                try:
                    pos = seg.position_of(start)
                except CorruptRecordError:
                    pos = 0
            size = seg.size
            while pos < size:
                skip = next((r for r in seg.corrupt_ranges if r.position <= pos < r.resume_position), None)
                if skip is not None:
                    pos = skip.resume_position
                    continue
                try:
                    header = seg.log.header_at(pos)
                except CorruptRecordError as exc:
                    log.warning("producer state replay stops in %s at %d: %s", seg.log_path, pos, exc)
                    break
                if header.producer_id >= 0 and header.last_offset >= start:
                    view = seg.log.view(pos, header.size) if header.is_control else None
                    try:
                        completed = self._producers.replay_batch(header, view)
                        if completed is not None and completed.is_aborted and completed.last_offset > seg.txn_index.last_offset:
                            # A marker whose index entry is missing (an index rebuilt, or a
                            # crash between the marker's write and its entry's).
                            fu = self._producers.first_unstable_offset
                            lso = completed.last_offset + 1 if fu is None else fu
                            seg.txn_index.append(
                                AbortedTxn(completed.producer_id, completed.first_offset, completed.last_offset, lso)
                            )
                    except (CorruptRecordError, InvalidRecordError) as exc:
                        log.warning("producer state replay skips the batch at %s:%d: %s", seg.log_path, pos, exc)
                    finally:
                        if view is not None:
                            view.release()
                pos += header.size

    # ------------------------------------------------------------------ flush

    def flush(self) -> None:
        """fsync everything appended so far, whatever the flush policy.

        The fdatasyncs and checkpoint writes run without the log's lock (flushes are
        serialised by their own lock), so appends from other threads, e.g. the wire server's
        event loop, carry on meanwhile; what they append during the flush is not counted as
        flushed (the segment marks only what was written before its sync began).
        """
        with self._flush_lock:
            with self._lock:
                self._check_writable()
                segs = [seg for seg in self._segments if seg.log.synced < seg.size]
                target = self.log_end_offset
                flushed_messages = self._unflushed_messages
                self._last_flush_ms = _now_ms()
            for seg in segs:
                try:
                    seg.flush()
                except ValueError:
                    continue  # closed meanwhile (deleted by retention, or the log closed)
                except OSError as exc:
                    with self._lock:
                        self._go_offline(exc, f"fsync of {seg.log_path}")
            with self._lock:
                self._unflushed_messages = max(0, self._unflushed_messages - flushed_messages)
                if target > self._recovery_point:
                    self._recovery_point = target
                self._write_checkpoints()

    def sync_transactional(self) -> None:
        """Under flush.policy=batch, fsync what transactional appends left unsynced (the
        transaction coordinator's two-phase commit calls it for each participant before its
        PrepareCommit record). Other policies promise no fsync per append: nothing to do."""
        with self._lock:
            if self.config.flush_policy != "batch":
                return
            self._check_writable()
            seg = self._segments[-1]  # older segments were sealed, so fsync'd, on roll
            if seg.log.synced < seg.size:
                self._flush_segment_locked(seg)
                if self._offline is not None:
                    self._check_writable()

    def maybe_flush(self, now_ms: int | None = None) -> bool:
        """For schedulers: flush if the interval policy's flush.ms has passed."""
        now = _now_ms() if now_ms is None else now_ms
        with self._lock:
            if self.config.flush_policy != "interval" or self._unflushed_messages == 0:
                return False
            if now - self._last_flush_ms < self.config.flush_ms:
                return False
        self.flush()
        return True

    def _write_checkpoints(self) -> None:
        try:
            checkpoint.write(os.path.join(self.path, RECOVERY_POINT_FILE), self._recovery_point)
            checkpoint.write(os.path.join(self.path, LOG_START_OFFSET_FILE), self._log_start_offset)
        except OSError as exc:
            self._go_offline(exc, "writing checkpoints")

    def _sync_dir(self) -> None:
        try:
            checkpoint.fsync_dir(self.path)
        except OSError as exc:
            self._go_offline(exc, "fsync of the directory")

    def _go_offline(self, exc: OSError, what: str) -> None:
        """An fsync-class failure: refuse all work until reopened through recovery."""
        self._offline = exc
        log.error("%s failed for %s, taking the log offline: %s", what, self.path, exc)
        raise LogOfflineError(f"{what} failed for {self.path} ({exc}); the log is offline until reopened") from exc

    def __repr__(self) -> str:
        return (
            f"PartitionLog({self.path!r}, start={self._log_start_offset}, end={self.log_end_offset}, "
            f"segments={len(self._segments)})"
        )


def _extent(seg: LogSegment, start: int, max_bytes: int, verify_crc: bool, offset: int) -> tuple[int, int]:
    """The end position of the whole batches a read of `seg` returns from `start` (at least
    one), and where a reader continues after them: at the segment's end its next offset (kept
    in memory), else the last returned batch's last offset + 1 (from the headers the extent
    walk checked). A first batch that cannot be read raises; nothing is returned half."""
    end, status = seg.log.extent(start, max_bytes, verify_crc)
    if status == HW_ERR_IO and end == start:
        raise KafkaStorageError(f"I/O error reading {seg.log_path} at position {start} (offset {offset})")
    if end == start:
        raise CorruptRecordError(
            f"batch at position {start} of {seg.log_path} is corrupt (status {status}); "
            f"offset {offset} cannot be read"
        )
    return end, seg.next_offset if end >= seg.size else seg.log.next_offset_after(start, end)


def _classify(values: Any) -> tuple[str, int, int]:
    """('list' | 'fixed' | 'offsets', record count, payload byte estimate)."""
    if isinstance(values, tuple) and len(values) == 2 and _is_int64_buffer(values[1]):
        data, offsets = values
        offs = memoryview(offsets).cast("B").cast("q")
        count = len(offs) - 1
        if count < 0:
            raise ValueError("offsets needs at least one entry")
        return "offsets", count, int(offs[count] - offs[0]) if count else 0
    dtype = getattr(values, "dtype", None)
    if dtype is not None and getattr(values, "ndim", 1) == 1:
        if dtype.kind != "S":
            raise TypeError(f"numpy values must have dtype S<n>, not {dtype}")
        if not values.flags["C_CONTIGUOUS"]:
            raise ValueError("numpy values must be C-contiguous")
        return "fixed", len(values), len(values) * dtype.itemsize
    if isinstance(values, (bytes, bytearray, str)):
        raise TypeError("values must be a sequence of bytes-like objects, not a single value")
    if not isinstance(values, list):
        values = list(values)
    total = payload_size(values)
    return "list", len(values), total


def _is_int64_buffer(obj: Any) -> bool:
    """True for an offsets array (numpy int64, array('q')): not for a bytes-like value."""
    if obj is None or isinstance(obj, (bytes, bytearray, str)):
        return False
    try:
        mv = memoryview(obj)
    except TypeError:
        return False
    return mv.itemsize == 8 and mv.format.lstrip("<=@") in ("q", "l")


def _to_list(kind: str, values: Any, count: int) -> list[Any]:
    if kind == "fixed":
        width = values.dtype.itemsize
        buf = memoryview(values).cast("B")
        return [bytes(buf[i * width : (i + 1) * width]) for i in range(count)]
    data, offsets = values
    offs = memoryview(offsets).cast("B").cast("q")
    mv = memoryview(data).cast("B")
    return [bytes(mv[offs[i] : offs[i + 1]]) for i in range(count)]


__all__ = ["AppendResult", "PartitionLog", "ReadResult", "RecoveryResult", "SegmentFullError"]
