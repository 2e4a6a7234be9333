"""Log compaction for `cleanup.policy=compact` partitions (kafka-spec.md b.3; Kafka's LogCleaner).

    result = clean(log, now_ms)                 # one pass over one PartitionLog
    LogManager.run_cleaner(now_ms)              # every compacted log past its dirty ratio

What a pass keeps (of the non-active segments; the active segment is never touched):

- the last record of every key, in offset order. The key -> last offset map is built over every
  non-active segment below the first "uncleanable" one (a segment holding a record younger than
  `min.compaction.lag.ms`); records from the cleaned part hold each key at most once, so mapping
  them again costs time but changes nothing. Records without a key are dropped (appends of
  null keys to a compacted log are refused: PartitionLog raises InvalidRecordError).
- tombstones (null value, last for their key) until `delete.retention.ms` after the pass that
  first kept them. As Kafka (KIP-534): a batch rebuilt with a tombstone in it gets attribute bit
  6 (0x40, "delete horizon set") and baseTimestamp = that pass's now + delete.retention.ms;
  record timestamp deltas are rebased on it, so every record keeps its timestamp. A later pass
  at or after the horizon drops the tombstones of that batch.
- transactions (Kafka's cleaner, kafka-spec.md b.3): only segments wholly below the last stable
  offset are cleaned, so every transaction in them has ended. The data batches of aborted
  transactions (found in the `.txnindex` entries: producer id and [first offset, marker]) are
  removed (kept as an empty batch when the producer-state rule below needs the header).
  Batches of committed transactions are still copied verbatim and kept out of the key map
  (Kafka compacts them like other records; here they neither go nor shadow older values, which
  never loses a committed value). Control batches (COMMIT/ABORT markers) are copied verbatim and never
  removed: Kafka drops a marker once its transaction has no data left and delete.retention.ms
  has passed; keeping it costs one small batch per transaction and keeps the producer state and
  the `.txnindex` rebuildable from the log. The `.txnindex` entries of the replaced segments
  are carried into the cleaned one unchanged.
- producer fields: a rebuilt batch keeps producer id, epoch, base sequence, partition leader
  epoch, timestamp type and, as Kafka's overrideLastOffset, its base offset and last offset
  delta: the batch still spans its original offsets, so the producer's last sequence maps to
  the same offset. A batch whose records are all removed is dropped, except (kept as an empty
  batch, records_count 0, header fields as before) when it is the last data batch of a producer
  still in the producer state (Kafka's rule: the last sequence must survive a rebuild of the
  producer state from the log), or the last batch of the segments being replaced (see swap).

Offsets are never renumbered: every kept record keeps its offset (its batch's base offset plus
its original offset delta), so the log has gaps and readers step over them (a read at a removed
offset returns the batch that spanned it, or the next one). Segments of a log that was ever
cleaned are scanned without the "no gaps" rule (segment.CLEANER_CHECKPOINT_FILE).

Grouping and the swap (Kafka's protocol, kafka-spec.md b.1 suffixes): consecutive non-active
segments whose sizes sum to at most segment.bytes are rewritten into one segment named after
the first one's base:

1. write `<base>.log.cleaned`, `.index.cleaned`, `.timeindex.cleaned`, fsync each;
2. rename the index files, then the log, to `.swap`; fsync the directory. The rename of
   `<base>.log.swap` is the commit point;
3. delete the old segments' files; rename the `.swap` files into place; fsync the directory.

The loader (loader.py) finishes a committed swap on open (deletes the old `.log` files whose base
lies in [base, swap's next offset), renames the `.swap` files) and removes `.cleaned` files and
index `.swap` files without a `.log.swap` (an uncommitted pass: the old segments are intact).
For that range to name exactly the old segments, the last batch of the group is always kept
(empty if need be), so the cleaned segment ends where the old ones did. A group holding a
segment that a reader still pins (live zero-copy views) is skipped until the next pass.

Dirty ratio: `cleaner-offset` (checkpoint.py layout) holds the first offset no pass has cleaned
yet; `cleaner-horizon` the earliest delete horizon of a kept tombstone. LogManager.run_cleaner
cleans a log when dirty bytes / non-active bytes >= min.cleanable.dirty.ratio, or when a
tombstone horizon has passed. clean() itself always runs a pass.

Locking: a pass holds the log's lock from start to end, so appends to that partition wait while
it runs (Kafka cleans concurrently with appends; compacted topics here are expected to be small).
"""

from __future__ import annotations

import functools
import logging
import os
import struct
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from headwater import record
from headwater._native._native import HW_OK, OffsetIndex, Segment, TimeIndex
from headwater.config import LogConfig
from headwater.errors import InvalidRecordError, KafkaStorageError
from headwater.log import checkpoint
from headwater.log.segment import CLEANER_CHECKPOINT_FILE, INT32_MAX, LogSegment, file_stem
from headwater.log.txn_index import AbortedTxn, write_index_file

if TYPE_CHECKING:
    from headwater.log.partition_log import PartitionLog

log = logging.getLogger("headwater.log.cleaner")

CLEANER_HORIZON_FILE = "cleaner-horizon"
DELETE_HORIZON_FLAG = 0x40  # batch attribute bit 6 (kafka-spec.md a.1, KIP-534)
_CODEC_MASK = 0x07
_HEADER = struct.Struct(">qiibIhiqqqhii")  # the 61-byte RecordBatch v2 header
_CRC_FROM = 21


def is_compacted(config: LogConfig) -> bool:
    return _is_compact_policy(config.cleanup_policy)


@functools.lru_cache(maxsize=16)
def _is_compact_policy(cleanup_policy: str) -> bool:
    """Every append asks; a topic has one of a handful of policy strings."""
    return "compact" in (p.strip() for p in cleanup_policy.split(","))


def require_keys(keys: Any, count: int) -> None:
    """Refuse records without a key (Kafka rejects them on compacted topics at append)."""
    if keys is None or (None in keys if type(keys) is list else any(k is None for k in keys)):
        raise InvalidRecordError("compacted topic (cleanup.policy=compact): every record needs a non-null key")
    if len(keys) != count:
        raise ValueError(f"{len(keys)} keys for {count} values")


def require_batch_keys(view: Any, header: Any) -> None:
    """require_keys for a client-built batch (control batches are exempt)."""
    if header.is_control:
        return
    for rec in record.batch_records(view, header):
        if rec.key is None:
            raise InvalidRecordError(
                f"compacted topic (cleanup.policy=compact): record at offset delta "
                f"{rec.offset - header.base_offset} has a null key"
            )


@dataclass
class CleanResult:
    """What one pass did. `groups`: per segment written, the bases of the segments it replaced."""

    cleaned: bool = False
    reason: str = ""
    groups: list[list[int]] = field(default_factory=list)
    skipped_pinned: list[int] = field(default_factory=list)
    first_dirty_offset: int = 0
    end_offset: int = 0  # first offset not cleanable (the active segment's base, or lag bound)
    dirty_ratio: float = 0.0
    bytes_before: int = 0
    bytes_after: int = 0
    records_read: int = 0
    records_removed: int = 0
    tombstones_removed: int = 0
    keys: int = 0
    next_delete_horizon_ms: int | None = None
    aborted_records_removed: int = 0


class _AbortedRanges:
    """Membership of a transactional batch in an aborted transaction, from `.txnindex` entries:
    the batch of producer P at base offset b is aborted iff an entry of P has
    first offset <= b <= marker offset."""

    def __init__(self, entries: list[AbortedTxn]) -> None:
        self.by_pid: dict[int, list[tuple[int, int]]] = {}
        for e in entries:
            self.by_pid.setdefault(e.producer_id, []).append((e.first_offset, e.last_offset))

    def contains(self, header: Any) -> bool:
        ranges = self.by_pid.get(header.producer_id)
        if not ranges:
            return False
        b = header.base_offset
        return any(first <= b <= last for first, last in ranges)


# ------------------------------------------------------------------ batch encoding


def _varint(n: int) -> bytes:
    return record.encode_varint(n)


def encode_batch(
    *,
    base_offset: int,
    last_offset_delta: int,
    partition_leader_epoch: int,
    attributes: int,
    base_timestamp: int,
    max_timestamp: int,
    producer_id: int,
    producer_epoch: int,
    base_sequence: int,
    records: list[tuple[int, int, bytes | None, bytes | None, list[tuple[str, bytes | None]]]],
) -> bytes:
    """One uncompressed RecordBatch v2 with explicit per-record offset deltas.

    `records`: (offset_delta, timestamp_delta, key, value, headers). Varints are Kafka's
    zig-zag varints (headwater.record.encode_varint); the CRC-32C covers attributes onwards.
    """
    parts: list[bytes] = []
    for offset_delta, ts_delta, key, value, headers in records:
        body = bytearray(b"\x00")
        body += _varint(ts_delta)
        body += _varint(offset_delta)
        if key is None:
            body += _varint(-1)
        else:
            body += _varint(len(key))
            body += key
        if value is None:
            body += _varint(-1)
        else:
            body += _varint(len(value))
            body += value
        hdrs = headers or []
        body += _varint(len(hdrs))
        for hk, hv in hdrs:
            kb = hk.encode("utf-8")
            body += _varint(len(kb))
            body += kb
            if hv is None:
                body += _varint(-1)
            else:
                body += _varint(len(hv))
                body += hv
        parts.append(_varint(len(body)))
        parts.append(bytes(body))
    payload = b"".join(parts)
    out = bytearray(_HEADER.size + len(payload))
    _HEADER.pack_into(
        out,
        0,
        base_offset,
        len(out) - 12,
        partition_leader_epoch,
        2,
        0,
        attributes,
        last_offset_delta,
        base_timestamp,
        max_timestamp,
        producer_id,
        producer_epoch,
        base_sequence,
        len(records),
    )
    out[_HEADER.size :] = payload
    struct.pack_into(">I", out, 17, record.crc32c(memoryview(out)[_CRC_FROM:]))
    return bytes(out)


def _empty_batch(h: Any) -> bytes:
    return encode_batch(
        base_offset=h.base_offset,
        last_offset_delta=h.last_offset_delta,
        partition_leader_epoch=h.partition_leader_epoch,
        attributes=h.attributes & ~(_CODEC_MASK | DELETE_HORIZON_FLAG),
        base_timestamp=h.max_timestamp,
        max_timestamp=h.max_timestamp,
        producer_id=h.producer_id,
        producer_epoch=h.producer_epoch,
        base_sequence=h.base_sequence,
        records=[],
    )


def _rebuild(h: Any, kept: list[Any], horizon: int | None) -> bytes:
    log_append = h.timestamp_type == 1
    if horizon is not None:
        base_ts = horizon
    else:
        base_ts = kept[0].timestamp
    max_ts = h.max_timestamp if log_append else max(r.timestamp for r in kept)
    attrs = h.attributes & ~(_CODEC_MASK | DELETE_HORIZON_FLAG)
    if horizon is not None:
        attrs |= DELETE_HORIZON_FLAG
    raw = encode_batch(
        base_offset=h.base_offset,
        last_offset_delta=h.last_offset_delta,
        partition_leader_epoch=h.partition_leader_epoch,
        attributes=attrs,
        base_timestamp=base_ts,
        max_timestamp=max_ts,
        producer_id=h.producer_id,
        producer_epoch=h.producer_epoch,
        base_sequence=h.base_sequence,
        records=[
            (r.offset - h.base_offset, r.timestamp - base_ts, r.key, r.value, list(r.headers or ()))
            for r in kept
        ],
    )
    if h.compression:
        raw = record.compress_batch(raw, h.compression)
    return raw


# ------------------------------------------------------------------ walking segments


def _batches(seg: LogSegment):  # noqa: ANN202
    """(position, header) of every batch of a sealed segment."""
    pos, size = 0, seg.size
    while pos < size:
        h = seg.log.header_at(pos)
        yield pos, h
        pos += h.size


def _records(seg: LogSegment, pos: int, h: Any) -> list[Any]:
    view = seg.log.view(pos, h.size)
    try:
        return record.batch_records(view, h)
    finally:
        view.release()


def _read_state(path: str, name: str) -> int | None:
    return checkpoint.read(os.path.join(path, name))


def _write_state(path: str, name: str, value: int | None) -> None:
    full = os.path.join(path, name)
    if value is None:
        try:
            os.unlink(full)
        except FileNotFoundError:
            return
        checkpoint.fsync_dir(path)
    else:
        checkpoint.write(full, value)


def _cleanable(plog: PartitionLog, now_ms: int) -> list[LogSegment]:
    """Non-active segments below the first one holding a record younger than the lag, below
    any segment with a corrupt range (its records cannot all be read), and wholly below the
    last stable offset (an open transaction's outcome is unknown: Kafka's first unstable
    offset bound)."""
    lag = plog.config.min_compaction_lag_ms
    lso = plog.last_stable_offset
    out = []
    for seg in plog._segments[:-1]:
        if seg.corrupt_ranges or (lag > 0 and seg.max_timestamp > now_ms - lag) or seg.next_offset > lso:
            break
        out.append(seg)
    return out


def dirty_ratio(plog: PartitionLog, now_ms: int) -> tuple[float, int, int]:
    """(dirty bytes / cleanable bytes, dirty bytes, cleanable bytes) of a compacted log."""
    with plog._lock:
        segs = _cleanable(plog, now_ms)
        first_dirty = _read_state(plog.path, CLEANER_CHECKPOINT_FILE) or 0
        total = sum(s.size for s in segs)
        dirty = sum(s.size for s in segs if s.base_offset >= first_dirty)
        return (dirty / total if total else 0.0), dirty, total


def needs_cleaning(plog: PartitionLog, now_ms: int) -> bool:
    """True when the dirty ratio reaches min.cleanable.dirty.ratio or a tombstone horizon
    recorded by an earlier pass has passed."""
    if not is_compacted(plog.config) or plog.is_offline:
        return False
    ratio, dirty, _ = dirty_ratio(plog, now_ms)
    if dirty > 0 and ratio >= plog.config.min_cleanable_dirty_ratio:
        return True
    horizon = _read_state(plog.path, CLEANER_HORIZON_FILE)
    return horizon is not None and now_ms >= horizon


# ------------------------------------------------------------------ the pass


def clean(plog: PartitionLog, now_ms: int) -> CleanResult:
    """Run one compaction pass over `plog` (see the module docstring). Logs whose
    cleanup.policy lacks `compact` are left alone (reason "not compacted").

    Raises:
        KafkaStorageError: an I/O error before a swap committed (the log is unchanged).
        LogOfflineError: an I/O error after a swap committed (reopen finishes the swap).
    """
    result = CleanResult()
    if not is_compacted(plog.config):
        result.reason = "not compacted"
        return result
    with plog._lock:
        plog._check_writable()
        cfg = plog.config
        segs = _cleanable(plog, now_ms)
        first_dirty = _read_state(plog.path, CLEANER_CHECKPOINT_FILE)
        result.first_dirty_offset = first_dirty or 0
        result.end_offset = plog._segments[len(segs)].base_offset
        total = sum(s.size for s in segs)
        dirty = sum(s.size for s in segs if s.base_offset >= result.first_dirty_offset)
        result.dirty_ratio = dirty / total if total else 0.0
        if not segs:
            result.reason = "nothing to clean"
            return result
        if first_dirty is None:
            # Before the first swap: from now on the log's offsets may have gaps.
            _write_state(plog.path, CLEANER_CHECKPOINT_FILE, 0)
            for seg in plog._segments:
                seg.contiguous = False

        # 1. key -> offset of its last record (control batches and aborted transactions stay out).
        aborted = _AbortedRanges(plog.aborted_txn_entries(segs[0].base_offset, segs[-1].next_offset))
        last: dict[bytes, int] = {}
        for seg in segs:
            for pos, h in _batches(seg):
                if h.is_control or h.records_count <= 0 or (h.is_transactional and aborted.contains(h)):
                    continue
                for r in _records(seg, pos, h):
                    result.records_read += 1
                    if r.key is not None:
                        last[r.key] = r.offset
        result.keys = len(last)
        producers = getattr(plog, "_producers", None)
        producer_last = {
            pid: e.last_data_offset
            for pid, e in (producers.producers.items() if producers is not None else ())
            if not e.is_empty
        }

        # 2. groups of consecutive segments, each rewritten into one.
        groups: list[list[LogSegment]] = []
        current: list[LogSegment] = []
        size = 0
        for seg in segs:
            if seg.log.exported_views:
                result.skipped_pinned.append(seg.base_offset)
                if current:
                    groups.append(current)
                current, size = [], 0
                continue
            fits = (
                current
                and size + seg.size <= cfg.segment_bytes
                and seg.next_offset - 1 - current[0].base_offset <= INT32_MAX
            )
            if current and not fits:
                groups.append(current)
                current, size = [], 0
            current.append(seg)
            size += seg.size
        if current:
            groups.append(current)

        horizon_pending: int | None = None
        for group in groups:
            written, changed, pending = _write_cleaned(plog, group, last, producer_last, aborted, now_ms, result)
            if pending is not None:
                horizon_pending = pending if horizon_pending is None else min(horizon_pending, pending)
            if not changed and len(group) == 1:
                _remove_cleaned(plog.path, group[0].base_offset)
                continue
            result.bytes_before += sum(s.size for s in group)
            result.bytes_after += written
            _swap(plog, group)
            result.groups.append([s.base_offset for s in group])

        _write_state(plog.path, CLEANER_CHECKPOINT_FILE, result.end_offset)
        _write_state(plog.path, CLEANER_HORIZON_FILE, horizon_pending)
        result.next_delete_horizon_ms = horizon_pending
        result.cleaned = bool(result.groups)
        result.reason = "cleaned" if result.groups else "nothing changed"
        if result.groups:
            log.info(
                "cleaned %s: %d -> %d bytes in %d segments, %d records removed (%d tombstones)",
                plog.path, result.bytes_before, result.bytes_after, len(result.groups),
                result.records_removed, result.tombstones_removed,
            )
        return result


def _write_cleaned(
    plog: PartitionLog,
    group: list[LogSegment],
    last: dict[bytes, int],
    producer_last: dict[int, int],
    aborted: _AbortedRanges,
    now_ms: int,
    result: CleanResult,
) -> tuple[int, bool, int | None]:
    """Write the `.cleaned` files of one group. Returns (bytes written, whether anything
    differs from the sources, earliest delete horizon of a kept tombstone)."""
    cfg = plog.config
    base = group[0].base_offset
    stem = os.path.join(plog.path, file_stem(base))
    out_batches: list[bytes | memoryview] = []
    changed = False
    pending: int | None = None
    views: list[memoryview] = []
    try:
        for gi, seg in enumerate(group):
            batches = list(_batches(seg))
            for bi, (pos, h) in enumerate(batches):
                group_last = gi == len(group) - 1 and bi == len(batches) - 1
                keep_empty = group_last or (h.producer_id >= 0 and producer_last.get(h.producer_id) == h.last_offset)
                if h.is_control or (h.records_count <= 0 and keep_empty):
                    v = seg.log.view(pos, h.size)
                    views.append(v)
                    out_batches.append(v)
                    continue
                recs = _records(seg, pos, h) if h.records_count > 0 else []
                if h.is_transactional:
                    if recs and aborted.contains(h):
                        # Every record of an aborted transaction goes.
                        result.records_removed += len(recs)
                        result.aborted_records_removed += len(recs)
                        changed = True
                        if keep_empty:
                            out_batches.append(_empty_batch(h))
                        continue
                    # committed (only segments below the LSO are cleaned): compacted like any
                    # other batch, header (producer, transactional flag) kept, as Kafka does
                horizon = h.base_timestamp if h.attributes & DELETE_HORIZON_FLAG else None
                kept = []
                has_tombstone = False
                for r in recs:
                    if r.key is None or last.get(r.key) != r.offset:
                        result.records_removed += 1
                        continue
                    if r.value is None:
                        if horizon is not None and now_ms >= horizon:
                            result.records_removed += 1
                            result.tombstones_removed += 1
                            continue
                        has_tombstone = True
                    kept.append(r)
                new_horizon = None
                if has_tombstone:
                    new_horizon = horizon if horizon is not None else now_ms + cfg.delete_retention_ms
                    pending = new_horizon if pending is None else min(pending, new_horizon)
                if recs and len(kept) == len(recs) and new_horizon == horizon:
                    v = seg.log.view(pos, h.size)
                    views.append(v)
                    out_batches.append(v)
                    continue
                changed = True
                if kept:
                    out_batches.append(_rebuild(h, kept, new_horizon))
                elif keep_empty:
                    out_batches.append(_empty_batch(h))
        if len(group) > 1:
            changed = True
        txn_entries = [e for seg in group for e in seg.txn_index.entries]
        written = _write_segment_files(stem, base, out_batches, cfg, txn_entries)
    except OSError as exc:
        _remove_cleaned(plog.path, base)
        raise KafkaStorageError(f"writing the cleaned segment {stem}.log.cleaned failed: {exc}") from exc
    finally:
        for v in views:
            v.release()
    return written, changed, pending


def _fsync_file(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_segment_files(
    stem: str, base: int, batches: list[Any], cfg: LogConfig, txn_entries: list[AbortedTxn] | None = None
) -> int:
    """`<stem>.log.cleaned` holding `batches`, its two indexes built by one CRC scan, and its
    `.txnindex.cleaned`: the aborted-transaction entries of the segments it replaces."""
    _remove_cleaned(os.path.dirname(stem), base)
    total = sum(len(b) if isinstance(b, bytes) else b.nbytes for b in batches)
    seg = Segment(stem + ".log.cleaned", max(total, 4096), True)
    try:
        for b in batches:
            seg.append(b)
        seg.flush()
        size = int(seg.size)
        entries = len(batches) + 2
        oi = OffsetIndex(stem + ".index.cleaned", base, entries * 8)
        ti = TimeIndex(stem + ".timeindex.cleaned", base, entries * 12)
        try:
            r = seg.scan(0, size, True, base, oi, ti, cfg.index_interval_bytes, False)
            if r.status != HW_OK or r.valid_bytes != size:
                raise OSError(f"cleaned segment failed its own scan (status {r.status} at {r.valid_bytes})")
            if r.max_timestamp >= 0 and r.max_timestamp > ti.last()[0]:
                ti.append(r.max_timestamp, r.offset_of_max_timestamp)
            oi.flush()
            ti.flush()
        finally:
            oi.close(trim=True)
            ti.close(trim=True)
    finally:
        seg.close(trim=True)
    write_index_file(stem + ".txnindex.cleaned", list(txn_entries or ()))
    for suffix in (".log.cleaned", ".index.cleaned", ".timeindex.cleaned"):
        _fsync_file(stem + suffix)
    return size


def _remove_cleaned(path: str, base: int) -> None:
    stem = os.path.join(path, file_stem(base))
    for suffix in (".log.cleaned", ".index.cleaned", ".timeindex.cleaned", ".txnindex.cleaned"):
        try:
            os.unlink(stem + suffix)
        except FileNotFoundError:
            pass


def _stage(name: str) -> None:
    """Test hook: called between the steps of a swap (crash tests replace it)."""


def _swap(plog: PartitionLog, group: list[LogSegment]) -> None:
    """Replace `group` by the cleaned segment (module docstring, steps 2-3)."""
    base = group[0].base_offset
    stem = os.path.join(plog.path, file_stem(base))
    try:
        for suffix in (".index", ".timeindex", ".txnindex", ".log"):
            os.replace(stem + suffix + ".cleaned", stem + suffix + ".swap")
            _stage(f"renamed{suffix}.swap")
        checkpoint.fsync_dir(plog.path)
    except OSError as exc:
        for suffix in (".index", ".timeindex", ".txnindex", ".log"):
            for s2 in (".cleaned", ".swap"):
                try:
                    os.unlink(stem + suffix + s2)
                except FileNotFoundError:
                    pass
        raise KafkaStorageError(f"swapping in the cleaned segment {stem}.log failed: {exc}") from exc
    _stage("committed")
    # Committed: from here a failure leaves the log to the loader (reopen finishes the swap).
    try:
        for seg in group:
            seg.close(trim=False)
            seg.delete_files()
            _stage(f"deleted {seg.base_offset}")
        for suffix in (".index", ".timeindex", ".txnindex", ".log"):
            os.replace(stem + suffix + ".swap", stem + suffix)
            _stage(f"renamed{suffix}")
        checkpoint.fsync_dir(plog.path)
        new = LogSegment(
            plog.path,
            base,
            max_bytes=0,
            index_bytes=plog.config.segment_index_bytes,
            index_interval_bytes=plog.config.index_interval_bytes,
            active=False,
        )
        new.contiguous = False
        if new.load_clean() == "scan":
            new.close(trim=False)
            raise OSError(f"cleaned segment {stem}.log does not end in a whole batch")
    except OSError as exc:
        plog._go_offline(exc, f"the compaction swap of {stem}.log")
    i = plog._segments.index(group[0])
    plog._segments[i : i + len(group)] = [new]
    plog._bases[i : i + len(group)] = [base]


__all__ = [
    "CLEANER_HORIZON_FILE",
    "CleanResult",
    "DELETE_HORIZON_FLAG",
    "clean",
    "dirty_ratio",
    "encode_batch",
    "is_compacted",
    "needs_cleaning",
    "require_batch_keys",
    "require_keys",
]
