"""Log compaction of cleanup.policy=compact partitions (headwater.log.cleaner; kafka-spec.md b.1,
b.3; issue 3 part 6).

Goal: prove what a compacted partition promises: after a pass only the last record of each key
is left in the non-active segments, at its original offset; tombstones stay until
delete.retention.ms after the pass that first kept them (Kafka's delete horizon: batch attribute
bit 6 + baseTimestamp) and then go; the active segment is never touched; readers step over the
gaps; idempotent producers' batch fields survive (empty batches kept for a producer's last
sequence); null keys are refused at append; a pass interrupted at any step of the swap leaves a
log that reopens with either every old record or exactly the cleaned result (never a mix, never
a duplicate); a cleaned log reopens cleanly and after a crash (recovery accepts gaps); the
LogManager schedules passes by min.cleanable.dirty.ratio and tombstone horizons.

Method: logs in fresh tmp directories with tiny segment.bytes so a few appends make several
segments; explicit timestamps and now_ms values (nothing sleeps). Expected contents come from a
model kept in the test (key -> last offset and value). Rebuilt batches are decoded a second way
with kafka-python's DefaultRecordBatch (shares no code with headwater), and the batch encoder is
compared byte for byte with headwater.record.build_batch. Crashes are real: a child process runs
the pass and calls os._exit at a named step of the swap.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap

import pytest
from kafka.record.default_records import DefaultRecordBatch

from headwater import record
from headwater.config import LogConfig
from headwater.errors import ConfigError, InvalidRecordError
from headwater.log import PartitionLog
from headwater.log.cleaner import (
    DELETE_HORIZON_FLAG,
    clean,
    dirty_ratio,
    encode_batch,
    needs_cleaning,
)
from headwater.log.manager import LogManager

TS = 1_700_000_000_000
DAY = 86_400_000
COMPACT = {"cleanup.policy": "compact", "segment.bytes": 600, "index.interval.bytes": 64}


def all_records(log: PartitionLog) -> list[tuple[int, bytes | None, bytes | None]]:
    """Every record from log start to end, walking batches as a consumer does (next fetch at
    the last batch's last offset + 1, so empty batches and gaps are stepped over)."""
    out = []
    offset = log.log_start_offset
    while offset < log.log_end_offset:
        with log.read(offset, 1 << 20) as result:
            assert result.nbytes > 0
            out += [(r.offset, r.key, r.value) for r in result]
            last = offset
            for header, view in result.batches():
                last = header.last_offset
                view.release()
        offset = last + 1
    return out


def all_headers(log: PartitionLog) -> list:
    out = []
    for seg in log.segments:
        pos = 0
        while pos < seg.size:
            h = seg.log.header_at(pos)
            out.append(h)
            pos += h.size
    return out


def fill(log: PartitionLog, n: int, keys: int, *, ts: int = TS, per_batch: int = 3) -> list:
    """Append n records (keys k0..k{keys-1} round robin) in batches; return the model: every
    (offset, key, value) appended, in order."""
    model = []
    i = 0
    while i < n:
        k = min(per_batch, n - i)
        ks = [b"k%d" % ((i + j) % keys) for j in range(k)]
        vs = [b"v%d" % (i + j) for j in range(k)]
        base = log.append(vs, keys=ks, timestamps=[ts + i + j for j in range(k)])
        model += [(base + j, ks[j], vs[j]) for j in range(k)]
        i += k
    return model


def expected(log: PartitionLog, model: list, active_records: list) -> list:
    """What a pass must leave: of the records below the active segment the last per key (the
    map covers only non-active segments), then the active segment's records as they were."""
    active_base = log.segments[-1].base_offset
    last = {k: (off, v) for off, k, v in model if off < active_base}
    kept = sorted((off, k, v) for k, (off, v) in last.items())
    return kept + active_records


def active_records(log: PartitionLog) -> list:
    base = log.segments[-1].base_offset
    return [r for r in all_records(log) if r[0] >= base]


# ---------------------------------------------------------------- the batch encoder


def test_encode_batch_matches_build_batch_and_kafka_python() -> None:
    values = [b"a", None, b"ccc"]
    keys = [b"k1", b"k2", None]
    headers = [[("h", b"x")], [], [("n", None)]]
    tss = [TS, TS + 5, TS + 2]
    ref = record.build_batch(values, keys, headers, tss, base_offset=40, producer_id=9, producer_epoch=2,
                             base_sequence=17, partition_leader_epoch=3)
    mine = encode_batch(
        base_offset=40, last_offset_delta=2, partition_leader_epoch=3, attributes=0, base_timestamp=TS,
        max_timestamp=TS + 5, producer_id=9, producer_epoch=2, base_sequence=17,
        records=[(i, tss[i] - TS, keys[i], values[i], headers[i]) for i in range(3)],
    )
    assert mine == ref
    # Explicit offset deltas with gaps, a negative timestamp delta, decoded by kafka-python.
    raw = encode_batch(
        base_offset=100, last_offset_delta=9, partition_leader_epoch=0, attributes=DELETE_HORIZON_FLAG,
        base_timestamp=TS + DAY, max_timestamp=TS + 7, producer_id=-1, producer_epoch=-1, base_sequence=-1,
        records=[(3, 3 - DAY, b"x", b"1", []), (9, 7 - DAY, b"y", None, [])],
    )
    batch = DefaultRecordBatch(bytearray(raw))
    assert batch.validate_crc()
    assert [(r.offset, r.timestamp, r.key, r.value) for r in batch] == [(103, TS + 3, b"x", b"1"), (109, TS + 7, b"y", None)]
    h = record.check_batch(raw)
    assert (h.records_count, h.last_offset, h.attributes) == (2, 109, DELETE_HORIZON_FLAG)


# ---------------------------------------------------------------- what a pass keeps


def test_last_value_per_key_kept_at_original_offsets(open_log) -> None:
    log = open_log(**COMPACT)
    model = fill(log, 120, 7)
    assert len(log.segments) > 4
    before_active = active_records(log)
    want = expected(log, model, before_active)
    res = clean(log, TS + 10_000)
    assert res.cleaned and res.records_removed > 0
    got = all_records(log)
    assert got == want
    # Offsets really are the originals: each kept record sits at the offset it was given.
    appended = {off: (k, v) for off, k, v in model}
    for off, key, value in got:
        assert appended[off] == (key, value)
    # A second pass merges the shrunken segments and changes no record.
    n_segments = len(log.segments)
    clean(log, TS + 20_000)
    assert all_records(log) == want
    assert len(log.segments) < n_segments


def test_active_segment_untouched(open_log) -> None:
    log = open_log(**COMPACT)
    fill(log, 60, 3)
    active = log.segments[-1]
    with open(active.log_path, "rb") as f:
        before = f.read(active.size)
    clean(log, TS + 10_000)
    assert log.segments[-1] is active
    with open(active.log_path, "rb") as f:
        assert f.read(active.size) == before


def test_tombstones_kept_until_delete_retention_then_removed(open_log) -> None:
    log = open_log(**{**COMPACT, "delete.retention.ms": DAY})
    log.append([b"a1", b"b1"], keys=[b"a", b"b"], timestamp=TS)
    log.append([None], keys=[b"a"], timestamp=TS + 1)  # tombstone for a, offset 2
    log.append([b"c1"], keys=[b"c"], timestamp=TS + 2)
    log.roll()
    log.append([b"z"], keys=[b"z"], timestamp=TS + 3)
    now = TS + 1000
    res = clean(log, now)
    assert res.next_delete_horizon_ms == now + DAY
    assert all_records(log) == [(1, b"b", b"b1"), (2, b"a", None), (3, b"c", b"c1"), (4, b"z", b"z")]
    # The tombstone's batch carries the delete horizon; record timestamps are unchanged.
    h = next(h for h in all_headers(log) if h.base_offset == 2)
    assert h.attributes & DELETE_HORIZON_FLAG and h.base_timestamp == now + DAY
    with log.read(2) as r:
        assert next(iter(r)).timestamp == TS + 1
    # A pass before the horizon keeps it (the horizon does not move), one at it removes it.
    clean(log, now + DAY - 1)
    assert (2, b"a", None) in all_records(log)
    assert needs_cleaning(log, now + DAY) and not needs_cleaning(log, now + DAY - 1)
    res = clean(log, now + DAY)
    assert res.tombstones_removed == 1
    assert all_records(log) == [(1, b"b", b"b1"), (3, b"c", b"c1"), (4, b"z", b"z")]
    assert res.next_delete_horizon_ms is None


def test_reads_step_over_gaps(open_log) -> None:
    log = open_log(**COMPACT)
    model = fill(log, 90, 4)
    want = expected(log, model, active_records(log))
    clean(log, TS + 10_000)
    kept_offsets = [r[0] for r in want]
    for offset in range(log.log_end_offset):
        with log.read(offset, 1 << 20) as r:
            first = next(iter(r), None)
            nxt = next(o for o in kept_offsets if o >= offset)
            if first is None:
                # Only an empty batch (kept to close a cleaned segment) spans it: next fetch.
                headers = [h for h, v in r.batches()]
                assert headers and all(h.records_count == 0 for h in headers)
            else:
                assert first.offset == nxt
    # Timestamp lookup lands on kept records.
    off, ts = log.offset_for_timestamp(TS)
    assert off == kept_offsets[0] and ts == TS + off


def test_records_without_keys_rejected_on_compacted_logs(open_log, tmp_path) -> None:
    log = open_log(**COMPACT)
    with pytest.raises(InvalidRecordError):
        log.append([b"v"])
    with pytest.raises(InvalidRecordError):
        log.append([b"v", b"w"], keys=[b"k", None])
    with pytest.raises(InvalidRecordError):
        log.append_batch(record.build_batch([b"v", b"w"], [b"k", None], timestamp=TS))
    with pytest.raises(InvalidRecordError):
        log.append_batch(record.compress_batch(record.build_batch([b"v"], None, timestamp=TS), "gzip"))
    assert log.log_end_offset == 0
    assert log.append_batch(record.build_batch([b"v"], [b"k"], timestamp=TS)) == 0
    other = open_log(str(tmp_path / "plain-0"))
    assert other.append([b"v"]) == 0


def test_compressed_batches_stay_compressed(open_log) -> None:
    log = open_log(**COMPACT)
    for i in range(6):
        raw = record.build_batch([b"x%d" % i, b"y%d" % i], [b"x", b"y%d" % (i % 2)], timestamp=TS + i)
        log.append_batch(record.compress_batch(raw, "gzip"))
    log.roll()
    log.append([b"end"], keys=[b"e"], timestamp=TS + 9)
    clean(log, TS + 100)
    assert all_records(log) == [(9, b"y0", b"y4"), (10, b"x", b"x5"), (11, b"y1", b"y5"), (12, b"e", b"end")]
    assert {h.compression for h in all_headers(log)[:-1] if h.records_count} == {record.CODEC_GZIP}


# ---------------------------------------------------------------- producers and transactions


def test_idempotent_batches_keep_producer_fields(open_log) -> None:
    log = open_log(**COMPACT)
    pid, epoch = 77, 3
    for seq in range(0, 12, 3):
        raw = record.build_batch([b"p%d" % (seq + j) for j in range(3)], [b"a", b"b", b"c"], timestamp=TS + seq,
                                 producer_id=pid, producer_epoch=epoch, base_sequence=seq)
        log.append_batch(raw)
    # Newer values for every key from a plain producer: the idempotent records all go.
    log.append([b"A", b"B", b"C"], keys=[b"a", b"b", b"c"], timestamp=TS + 20)
    log.roll()
    log.append([b"z"], keys=[b"z"], timestamp=TS + 21)
    before = {h.base_offset: h for h in all_headers(log)}
    clean(log, TS + 100)
    assert all_records(log) == [(12, b"a", b"A"), (13, b"b", b"B"), (14, b"c", b"C"), (15, b"z", b"z")]
    pid_batches = [h for h in all_headers(log) if h.producer_id == pid]
    # Only the producer's last batch survives, empty, with its offsets and sequence intact.
    assert len(pid_batches) == 1
    h = pid_batches[0]
    old = before[9]
    assert (h.base_offset, h.last_offset_delta, h.records_count) == (9, 2, 0)
    assert (h.producer_epoch, h.base_sequence) == (old.producer_epoch, old.base_sequence) == (epoch, 9)
    # The producer state rebuilt from the log alone still knows the last sequence.
    log.close()
    for name in os.listdir(log.path):
        if name.endswith(".snapshot") or name == ".clean-shutdown":
            os.unlink(os.path.join(log.path, name))
    log2 = PartitionLog.open(log.path, **COMPACT)
    try:
        entry = log2.producer_state.last_entry(pid)
        assert entry is not None and entry.last_seq == 11 and entry.producer_epoch == epoch
        # A retry of the last batch is still a duplicate.
        raw = record.build_batch([b"p9", b"p10", b"p11"], [b"a", b"b", b"c"], timestamp=TS + 9,
                                 producer_id=pid, producer_epoch=epoch, base_sequence=9)
        assert log2.append_batch_ex(raw).duplicate
    finally:
        log2.close()


def test_kept_idempotent_records_keep_fields(open_log) -> None:
    log = open_log(**COMPACT)
    raw = record.build_batch([b"1", b"2", b"3"], [b"a", b"b", b"a"], timestamp=TS, producer_id=5,
                             producer_epoch=0, base_sequence=0)
    log.append_batch(raw)
    log.roll()
    log.append([b"z"], keys=[b"z"], timestamp=TS + 1)
    clean(log, TS + 100)
    h = all_headers(log)[0]
    assert (h.base_offset, h.last_offset_delta, h.records_count) == (0, 2, 2)
    assert (h.producer_id, h.producer_epoch, h.base_sequence) == (5, 0, 0)
    assert all_records(log) == [(1, b"b", b"2"), (2, b"a", b"3"), (3, b"z", b"z")]


def test_transactional_and_control_batches_kept(open_log) -> None:
    log = open_log(**COMPACT)
    log.append([b"old"], keys=[b"t"], timestamp=TS)
    txn = record.build_batch([b"t1", b"t2"], [b"t", b"t"], timestamp=TS + 1, producer_id=8, producer_epoch=0,
                             base_sequence=0, attributes=0x10)
    log.append_batch(txn)
    marker = record.build_control_batch(1, producer_id=8, producer_epoch=0, coordinator_epoch=0, timestamp=TS + 2)
    log.append_batch(marker, control=True)
    log.roll()
    log.append([b"z"], keys=[b"z"], timestamp=TS + 3)
    clean(log, TS + 100)
    # A committed transaction's records are compacted like any others: its last value of "t"
    # shadows the older ones, and the marker stays.
    assert all_records(log) == [(2, b"t", b"t2"), (4, b"z", b"z")]
    assert any(h.is_control and h.base_offset == 3 for h in all_headers(log))


# ---------------------------------------------------------------- reopen and recovery


def test_cleaned_log_reopens_clean_and_unclean(open_log, pdir) -> None:
    log = open_log(**COMPACT)
    model = fill(log, 100, 5)
    want = expected(log, model, active_records(log))
    clean(log, TS + 10_000)
    assert all_records(log) == want
    log.close()
    log = open_log(**COMPACT)
    assert all_records(log) == want and log.recovery.clean_shutdown
    log.append([b"more"], keys=[b"k0"], timestamp=TS + 500)
    want.append((log.log_end_offset - 1, b"k0", b"more"))
    log.close()
    # A crash: no marker, no checkpoints, so every segment is scanned with CRC checks.
    for name in (".clean-shutdown", "recovery-point"):
        os.unlink(os.path.join(pdir, name))
    log = open_log(**COMPACT)
    r = log.recovery
    assert not r.clean_shutdown and r.segments_scanned == len(log.segments)
    assert not r.dropped_anything() and not r.corrupt_ranges
    assert all(not s.contiguous for s in log.segments)
    assert all_records(log) == want


def test_gaps_accepted_after_policy_changes_to_delete(open_log, pdir) -> None:
    log = open_log(**COMPACT)
    model = fill(log, 60, 3)
    want = expected(log, model, active_records(log))
    clean(log, TS + 10_000)
    log.close()
    os.unlink(os.path.join(pdir, ".clean-shutdown"))
    os.unlink(os.path.join(pdir, "recovery-point"))
    log = open_log(**{**COMPACT, "cleanup.policy": "delete", "retention.ms": -1})
    assert not log.recovery.dropped_anything() and not log.recovery.corrupt_ranges
    assert all_records(log) == want


CHILD = textwrap.dedent(
    """
    import os, sys
    from headwater.log import PartitionLog, cleaner
    path, stage, now = sys.argv[1], sys.argv[2], int(sys.argv[3])
    log = PartitionLog.open(path, **{config!r})
    def hook(name):
        if name == stage:
            os._exit(0)
    cleaner._stage = hook
    cleaner.clean(log, now)
    os._exit(3)
    """
)


@pytest.mark.parametrize(
    "stage, committed",
    [
        ("renamed.index.swap", False),
        ("renamed.timeindex.swap", False),
        ("committed", True),
        ("deleted 0", True),
        ("renamed.index", True),
        ("renamed.log", True),
    ],
)
def test_crash_during_swap(open_log, tmp_path, stage, committed) -> None:
    src = str(tmp_path / "src-0")
    log = open_log(src, **COMPACT)
    model = fill(log, 40, 3)
    old = all_records(log)
    want = expected(log, model, active_records(log))
    log.close()
    # The result of an uninterrupted pass, from a copy.
    ref_dir = str(tmp_path / "ref-0")
    shutil.copytree(src, ref_dir)
    ref = open_log(ref_dir, **COMPACT)
    clean(ref, TS + 10_000)
    assert all_records(ref) == want
    # The same pass killed at `stage` (first group: its swap names segment 0).
    env = dict(os.environ)
    child = subprocess.run([sys.executable, "-c", CHILD.format(config=COMPACT), src, stage, str(TS + 10_000)],
                           env=env, capture_output=True, timeout=60)
    assert child.returncode == 0, child.stderr.decode()
    names = os.listdir(src)
    assert any(n.endswith((".swap", ".cleaned")) for n in names) or stage == "renamed.log"
    log = open_log(src, **COMPACT)
    got = all_records(log)
    if committed:
        # The first group's swap finished; later groups were never touched.
        first_group_end = ref.segments[1].base_offset
        assert [r for r in got if r[0] < first_group_end] == [r for r in want if r[0] < first_group_end]
        assert [r for r in got if r[0] >= first_group_end] == [r for r in old if r[0] >= first_group_end]
    else:
        assert got == old
    assert not any(n.endswith((".swap", ".cleaned", ".deleted")) for n in os.listdir(src))
    # And a full pass from there reaches the same result as the uninterrupted one.
    clean(log, TS + 10_000)
    assert all_records(log) == want


def test_leftover_files_of_an_uncommitted_pass_removed(open_log, pdir) -> None:
    log = open_log(**COMPACT)
    model = fill(log, 40, 3)
    old = all_records(log)
    log.close()
    stem = os.path.join(pdir, "00000000000000000000")
    shutil.copy(stem + ".log", stem + ".log.cleaned")
    shutil.copy(stem + ".index", stem + ".index.swap")
    with open(stem + ".timeindex.cleaned", "wb") as f:
        f.write(b"junk")
    log = open_log(**COMPACT)
    assert all_records(log) == old
    assert not any(n.endswith((".swap", ".cleaned")) for n in os.listdir(pdir))
    assert model


# ---------------------------------------------------------------- scheduling and config


def test_pinned_segments_skipped_until_released(open_log) -> None:
    log = open_log(**COMPACT)
    model = fill(log, 60, 3)
    want = expected(log, model, active_records(log))
    first = log.segments[0].base_offset
    result = log.read(first)
    res = clean(log, TS + 10_000)
    assert first in res.skipped_pinned and all(first not in g for g in res.groups)
    result.release()
    clean(log, TS + 10_000)
    assert all_records(log) == want


def test_manager_runs_cleaner_by_dirty_ratio(tmp_path) -> None:
    with LogManager(str(tmp_path), topic_configs={"c": COMPACT, "d": {"segment.bytes": 600}}) as mgr:
        log = mgr.create_log("c", 0)
        plain = mgr.create_log("d", 0)
        model = fill(log, 80, 4)
        fill(plain, 80, 4)
        want = expected(log, model, active_records(log))
        assert dirty_ratio(log, TS)[0] == 1.0
        done = mgr.run_cleaner(TS + 10_000)
        assert list(done) == [("c", 0)]
        assert all_records(log) == want
        assert dirty_ratio(log, TS)[0] == 0.0 and mgr.run_cleaner(TS + 10_000) == {}
        # A little new dirty data (below the 0.5 ratio) waits; a lower ratio cleans it.
        log.append([b"n"], keys=[b"k0"], timestamp=TS + 100)
        log.roll()
        log.append([b"n2"], keys=[b"k9"], timestamp=TS + 101)
        ratio = dirty_ratio(log, TS + 10_000)[0]
        assert 0 < ratio < 0.5
        assert mgr.run_cleaner(TS + 10_000) == {}
        mgr.set_topic_config("c", {**COMPACT, "min.cleanable.dirty.ratio": ratio / 2})
        assert list(mgr.run_cleaner(TS + 10_000)) == [("c", 0)]
        assert [r for r in all_records(log) if r[1] == b"k0"] == [(log.log_end_offset - 2, b"k0", b"n")]


def test_min_compaction_lag_keeps_recent_segments_dirty(open_log) -> None:
    log = open_log(**{**COMPACT, "min.compaction.lag.ms": 1000})
    fill(log, 60, 3)
    before = all_records(log)
    res = clean(log, TS + 500)  # every record is younger than the lag
    assert not res.cleaned and all_records(log) == before
    assert clean(log, TS + 10_000).cleaned


def test_float_config() -> None:
    assert LogConfig.from_mapping({"min.cleanable.dirty.ratio": "0.25"}).min_cleanable_dirty_ratio == 0.25
    assert LogConfig.from_mapping(min_cleanable_dirty_ratio=1).min_cleanable_dirty_ratio == 1.0
    for bad in ("x", 1.5, -0.1):
        with pytest.raises(ConfigError):
            LogConfig.from_mapping({"min.cleanable.dirty.ratio": bad})


def test_delete_policy_logs_not_cleaned(open_log) -> None:
    log = open_log(**{"segment.bytes": 600})
    fill(log, 40, 2)
    before = all_records(log)
    assert clean(log, TS + 10_000).reason == "not compacted"
    assert all_records(log) == before
