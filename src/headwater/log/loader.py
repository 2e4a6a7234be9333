"""Startup: find the segments of a partition directory and recover them after a crash.

Steps (kafka-spec.md b.4, with RELIABILITY.md's rule for the synced region):

1. Leftovers of interrupted operations: an interrupted compaction swap (cleaner.py) is
   finished first: a `<base>.log.swap` is the cleaner's commit point, so every `.log` whose
   base lies in [base, the swap's next offset) is an old segment it replaces: those go, and
   the `.swap` files are renamed into place (their indexes are rebuilt to be safe). Then
   `*.tmp`, `*.deleted`, `*.cleaned` and `.swap` index files without a `.log.swap` (a cleaning
   that never committed: its old segments are intact) are removed, and so are index files
   without a `.log`.
2. After a clean close (marker present) nothing is scanned: sizes are the trimmed file sizes
   and each index gets a structural check (rebuilt if it fails or is missing).
3. Otherwise every segment from the one holding the recovery point onwards is scanned with CRC
   checks, rebuilding its indexes. At the first bad or partial batch at position p:
   - nothing valid follows (in this segment or any later one): a torn tail. Truncate at p,
     delete later segments, report the bytes and offsets dropped;
   - a valid batch follows and the damage lies in the synced region (below the recovery point,
     or anywhere under flush.policy=batch, where each acknowledged batch was fsync'd before the
     next was written): corruption. Record a CorruptRange, keep every byte, continue after it;
   - a valid batch follows in the unsynced region of an interval/none log: Kafka's rule,
     truncate at p and delete later segments (unsynced data carries no promise).
4. The result says what was scanned, truncated, deleted, rebuilt and left corrupt.
"""

from __future__ import annotations

import logging
import os
import re
import time
from dataclasses import dataclass, field

from headwater._native._native import HW_OK, Segment
from headwater.config import LogConfig
from headwater.log.checkpoint import fsync_dir
from headwater.log.segment import CorruptRange, LogSegment

log = logging.getLogger("headwater.log")

SEGMENT_RE = re.compile(r"^(\d{20})\.log$")
LEFTOVER_SUFFIXES = (".tmp", ".deleted", ".cleaned", ".swap")
SWAP_RE = re.compile(r"^(\d{20})\.log\.swap$")


@dataclass
class RecoveryResult:
    """What open() found and did. Empty after a clean close with healthy files."""

    clean_shutdown: bool = True
    segments_scanned: int = 0
    bytes_scanned: int = 0
    duration_s: float = 0.0
    truncated_bytes: int = 0
    truncated_offsets: tuple[int, int] | None = None  # (first, last) dropped, when known
    deleted_segments: list[int] = field(default_factory=list)
    rebuilt_indexes: list[int] = field(default_factory=list)
    corrupt_ranges: list[CorruptRange] = field(default_factory=list)
    removed_files: list[str] = field(default_factory=list)

    def dropped_anything(self) -> bool:
        return bool(self.truncated_bytes or self.deleted_segments)

    @property
    def scan_rate_mb_s(self) -> float:
        return self.bytes_scanned / self.duration_s / 1e6 if self.duration_s > 0 else 0.0

    def summary(self) -> str:
        parts = [
            "clean" if self.clean_shutdown else "unclean",
            f"scanned {self.segments_scanned} segments / {self.bytes_scanned} bytes in {self.duration_s * 1000:.1f} ms",
        ]
        if self.truncated_bytes:
            parts.append(f"truncated {self.truncated_bytes} bytes (offsets {self.truncated_offsets})")
        if self.deleted_segments:
            parts.append(f"deleted segments {self.deleted_segments}")
        if self.rebuilt_indexes:
            parts.append(f"rebuilt indexes of {self.rebuilt_indexes}")
        for r in self.corrupt_ranges:
            parts.append(
                f"CORRUPT segment {r.segment_base} positions {r.position}..{r.resume_position} "
                f"(offsets {r.first_offset}..{r.resume_offset - 1} unreadable, kept)"
            )
        return "; ".join(parts)


def _complete_swaps(path: str, result: RecoveryResult) -> None:
    """Finish compaction swaps that committed (a `<base>.log.swap` exists) before a stop.

    The cleaner (cleaner.py) writes `.cleaned` files, renames the indexes then the log to
    `.swap` (the log's rename is the commit point), deletes the old segments and renames the
    `.swap` files into place. A cleaned segment always ends with the last batch of the old
    segments it replaces (kept as an empty batch if need be), so the old segments are exactly
    the `.log` files whose base lies in [base, the swap's next offset).
    """
    names = sorted(os.listdir(path))
    swaps = [int(m.group(1)) for n in names if (m := SWAP_RE.match(n))]
    if not swaps:
        return
    logs = sorted(int(m.group(1)) for n in names if (m := SEGMENT_RE.match(n)))
    for base in swaps:
        stem = os.path.join(path, f"{base:020d}")
        seg = Segment(stem + ".log.swap", 0, False)
        try:
            r = seg.scan(0, -1, True, -1)
        finally:
            seg.close(trim=False)
        end = r.next_offset if r.batches else base + 1
        for old in logs:
            if base <= old < end:
                old_stem = os.path.join(path, f"{old:020d}")
                suffixes = (".log",) if old == base else (".log", ".index", ".timeindex", ".txnindex")
                for suffix in suffixes:
                    try:
                        os.unlink(old_stem + suffix)
                        result.removed_files.append(f"{old:020d}{suffix}")
                    except FileNotFoundError:
                        pass
        for suffix in (".index", ".timeindex", ".txnindex"):
            if os.path.exists(stem + suffix + ".swap"):
                os.replace(stem + suffix + ".swap", stem + suffix)
        os.replace(stem + ".log.swap", stem + ".log")
        result.rebuilt_indexes.append(base)  # force a rebuild: cheap, and never stale
        log.warning("completed the interrupted compaction swap of segment %d in %s", base, path)
    fsync_dir(path)


def _remove_leftovers(path: str, result: RecoveryResult) -> list[int]:
    _complete_swaps(path, result)
    bases = []
    names = os.listdir(path)
    logs = {m.group(1) for n in names if (m := SEGMENT_RE.match(n))}
    for name in names:
        full = os.path.join(path, name)
        if name.endswith(LEFTOVER_SUFFIXES):
            os.unlink(full)
            result.removed_files.append(name)
        elif name.endswith((".index", ".timeindex", ".txnindex")) and name.split(".")[0] not in logs:
            os.unlink(full)
            result.removed_files.append(name)
        elif m := SEGMENT_RE.match(name):
            bases.append(int(m.group(1)))
    return sorted(bases)


def _open_segment(path: str, base: int, config: LogConfig, active: bool) -> tuple[LogSegment, bool]:
    stem = os.path.join(path, f"{base:020d}")
    indexes_present = os.path.exists(stem + ".index") and os.path.exists(stem + ".timeindex")
    seg = LogSegment(
        path,
        base,
        max_bytes=max(config.segment_bytes, os.path.getsize(stem + ".log")),
        index_bytes=config.segment_index_bytes,
        index_interval_bytes=config.index_interval_bytes,
        active=active,
    )
    return seg, indexes_present


def load_segments(path: str, config: LogConfig, *, clean: bool, recovery_point: int) -> tuple[list[LogSegment], RecoveryResult]:
    """Open every segment in `path`, recovering those that need it. The last is active."""
    t0 = time.perf_counter()
    result = RecoveryResult(clean_shutdown=clean)
    bases = _remove_leftovers(path, result)
    segments: list[LogSegment] = []
    try:
        for i, base in enumerate(bases):
            seg, indexes_present = _open_segment(path, base, config, active=(i == len(bases) - 1))
            segments.append(seg)
            if not indexes_present:
                result.rebuilt_indexes.append(base)
        if clean:
            # Nothing to scan, unless a segment's tail proves otherwise.
            _recover(segments, config, 2**63 - 1, result)
        else:
            _recover(segments, config, recovery_point, result)
    except BaseException:
        for seg in segments:
            seg.close(trim=False)
        raise
    result.duration_s = time.perf_counter() - t0
    return segments, result


def _recover(segments: list[LogSegment], config: LogConfig, recovery_point: int, result: RecoveryResult) -> None:
    # Segments wholly below the recovery point were flushed (and trimmed) when they rolled.
    first = 0
    for i, seg in enumerate(segments):
        if seg.base_offset <= recovery_point:
            first = i
    i = 0
    while i < len(segments):
        seg = segments[i]
        if i < first or (recovery_point == 2**63 - 1):
            status = seg.load_clean(force_rebuild=seg.base_offset in result.rebuilt_indexes)
            if status == "rebuilt" and seg.base_offset not in result.rebuilt_indexes:
                result.rebuilt_indexes.append(seg.base_offset)
            if status != "scan":
                i += 1
                continue
        expect = segments[i - 1].next_offset if i > 0 else seg.base_offset
        truncate_at = _recover_segment(seg, segments[i + 1 :], config, recovery_point, expect, result)
        if truncate_at is not None:
            for later in segments[i + 1 :]:
                first_dropped = later.base_offset
                _note_dropped(result, first_dropped, None)
                later.close(trim=False)
                later.delete_files()
                result.deleted_segments.append(later.base_offset)
            del segments[i + 1 :]
            if not seg.active:
                # It becomes the last segment: reopen it appendable.
                base = seg.base_offset
                seg.close(trim=True)
                segments[i] = LogSegment(
                    seg.directory,
                    base,
                    max_bytes=config.segment_bytes,
                    index_bytes=config.segment_index_bytes,
                    index_interval_bytes=config.index_interval_bytes,
                    active=True,
                )
                segments[i].load_clean()
            break
        i += 1


def _note_dropped(result: RecoveryResult, first: int, last: int | None) -> None:
    lo, hi = result.truncated_offsets or (first, last if last is not None else first)
    lo = min(lo, first)
    if last is not None:
        hi = max(hi, last)
    result.truncated_offsets = (lo, hi)


def _recover_segment(
    seg: LogSegment,
    later: list[LogSegment],
    config: LogConfig,
    recovery_point: int,
    min_offset: int,
    result: RecoveryResult,
) -> int | None:
    """Scan one segment. Returns the truncation position if the log was cut here."""
    log = seg.log
    file_len = log.file_len
    log.size = file_len  # scan the whole file, zero tail included
    seg.reset_indexes()
    seg.corrupt_ranges = []
    seg.max_timestamp = seg.offset_of_max_timestamp = seg.first_batch_max_timestamp = -1
    seg.next_offset = seg.base_offset
    seg.bytes_since_index = 0
    if seg.base_offset not in result.rebuilt_indexes:
        result.rebuilt_indexes.append(seg.base_offset)
    result.segments_scanned += 1
    position = 0
    scan_min = max(min_offset, seg.base_offset)
    while True:
        r = seg.scan_and_index(position, file_len, scan_min)
        result.bytes_scanned += r.valid_bytes - position
        if r.status == HW_OK:
            log.size = r.valid_bytes
            if r.valid_bytes < file_len and not seg.active:
                # A sealed segment with a zero tail (killed before its roll trimmed it).
                log.truncate(r.valid_bytes)
            seg.finish_indexes()
            return None
        bad = r.valid_bytes
        end_of_data = log.last_nonzero(bad, file_len)
        resume = log.find_next_batch(bad + 1, file_len) if end_of_data > bad else -1
        later_valid = resume >= 0 or any(s.size > 0 and s.log.find_next_batch(0, s.log.file_len) >= 0 for s in later)
        first_lost = seg.next_offset if r.batches or position else max(seg.base_offset, min_offset)
        synced = first_lost < recovery_point or config.flush_policy == "batch"
        if later_valid and synced and resume >= 0:
            # Damage inside the synced region: report, keep everything, continue after it.
            resume_header = log.header_at(resume)
            seg.corrupt_ranges.append(
                CorruptRange(seg.base_offset, bad, resume, first_lost, resume_header.base_offset)
            )
            result.corrupt_ranges.append(seg.corrupt_ranges[-1])
            result.bytes_scanned += resume - bad
            position = resume
            scan_min = resume_header.base_offset
            continue
        if later_valid and synced:
            # The damage ends this segment but later segments hold acknowledged data: keep
            # them, and keep this segment's bytes for inspection (reads stop at the damage).
            seg.corrupt_ranges.append(CorruptRange(seg.base_offset, bad, end_of_data, first_lost, later[0].base_offset))
            result.corrupt_ranges.append(seg.corrupt_ranges[-1])
            log.size = bad
            seg.finish_indexes()
            return None
        # A torn tail (or unsynced damage): cut here.
        dropped = end_of_data - bad
        try:
            h = log.header_at(bad)
            last = h.last_offset if h.base_offset >= first_lost else None
        except Exception:  # the header itself is torn; the offsets are unknown
            last = None
        if dropped > 0:
            _note_dropped(result, first_lost, last)
        result.truncated_bytes += dropped
        log.size = bad
        log.truncate(bad)
        seg.finish_indexes()
        return bad
