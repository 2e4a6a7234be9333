"""Simulated power loss under a PartitionLog writer (RELIABILITY.md section 3 a').

Goal: with flush.policy=batch an acknowledged append survives a power cut: acked ⊆
recovered, every recovered record intact, offsets a contiguous prefix, no offset reused.
With flush.policy=interval only acks of about the last flush.ms may be lost. With
flush.policy=none the same cut must lose acknowledged-but-unsynced records in some trials;
that proves the fault is live (and recovery must still return an intact prefix).

Method: the partition lives on tools/lazyfs.py, a FUSE file system that keeps everything not
fsync'd / msync'd (and every directory entry whose directory was not fsync'd) in an undo log.
Each trial runs a writer child (crash_child.py), SIGKILLs it at a random moment, then cuts the
power: lazyfs rolls the backing tree back to its durable state, optionally keeping a random
share of the unsynced pages (keep = 0, 0.3 or 0.7: torn, partially written-back tails), and
the mount is remounted so no kernel cache survives. The next writer's open is the check.
Partitions are provisioned with a clean open + close first; how a brand-new log makes its
first files durable is tested separately (test_new_partition_directory_is_durable,
test_first_segment_is_durable).
"""

from __future__ import annotations

import os
import random
from collections import Counter

import pytest
from crash_harness import (
    SMALL_LOG,
    Ledger,
    child_cmd,
    crash_trials,
    fsync_dir,
    partitioned_trials,
    requires_fuse,
    run_child,
)

pytestmark = [requires_fuse, pytest.mark.root]


def seed() -> int:
    return int(os.environ.get("HEADWATER_CRASH_SEED") or random.SystemRandom().getrandbits(32))


def power_cutter(mount, rng: random.Random, totals: Counter):  # type: ignore[no-untyped-def]
    def cut(trial: int) -> None:
        rep = mount.crash(keep=rng.choice([0.0, 0.0, 0.3, 0.7]), seed=rng.getrandbits(32))
        totals["pages_dropped"] += rep["pages_dropped"]
        totals["pages_kept"] += rep["pages_kept"]
        totals["entries_lost"] += len(rep["entries_lost"])
        totals["cuts_that_dropped"] += bool(rep["pages_dropped"] or rep["entries_lost"])

    return cut


def durable_dir(mount, name: str) -> str:  # type: ignore[no-untyped-def]
    path = mount.path(name)
    os.mkdir(path)
    fsync_dir(mount.mountpoint)
    return path


def provision(part: str) -> None:
    """Create the log with a clean open + close, so the steady-state trials do not depend on
    how a brand-new log makes its first files durable (that is pinned by the tests below)."""
    run = run_child(child_cmd("verify", part))
    assert run.returncode == 0, run.describe()


def test_power_loss_batch_keeps_every_ack(lazy_mount, figures, zygote):  # type: ignore[no-untyped-def]
    s, trials = seed(), 100
    rng, totals = random.Random(s), Counter()

    def partition(i: int) -> str:
        part = durable_dir(lazy_mount, f"orders-{i}")
        provision(part)
        return part

    st = partitioned_trials(
        partition,
        trials,
        rng,
        after_kill=power_cutter(lazy_mount, rng, totals),
        max_run=0.1,
        zygote=zygote,
    )
    figures(
        "power-loss",
        policy="batch",
        trials=f"{st.trials}/{trials}",
        acked=st.acked,
        acked_lost=st.acked_lost,
        unsynced_pages_dropped=totals["pages_dropped"],
        unsynced_pages_kept=totals["pages_kept"],
        entries_dropped=totals["entries_lost"],
        cuts_that_dropped=totals["cuts_that_dropped"],
        opens_refused=st.opens_refused,
        killed_in_recovery=st.killed_in_recovery,
        log_end=st.log_end,
        seed=s,
    )
    assert not st.problems, f"seed {s}:\n" + "\n".join(st.problems[:10])
    assert st.acked_lost == 0
    assert st.trials == trials and st.acked > trials
    assert totals["cuts_that_dropped"] > 0, "no power cut dropped anything: the fault is dead"


def test_power_loss_none_loses_unsynced_acks(lazy_mount, figures, zygote):  # type: ignore[no-untyped-def]
    s, trials = seed(), 15
    rng, totals = random.Random(s), Counter()
    part = durable_dir(lazy_mount, "orders-0")
    st = crash_trials(
        part,
        trials,
        rng,
        policy="none",
        after_kill=power_cutter(lazy_mount, rng, totals),
        max_run=0.1,
        recovery_kills=0.0,
        zygote=zygote,
    )
    figures(
        "power-loss",
        policy="none",
        trials=f"{st.trials}/{trials}",
        acked=st.acked,
        acked_lost=st.acked_lost,
        unsynced_pages_dropped=totals["pages_dropped"],
        opens_refused=st.opens_refused,
        seed=s,
    )
    assert not st.problems, f"seed {s}:\n" + "\n".join(st.problems[:10])
    assert st.acked_lost > 0, "flush.policy=none lost nothing: the power cut is not live"


def test_power_loss_interval_bounds_the_loss_window(lazy_mount, figures, zygote):  # type: ignore[no-untyped-def]
    """flush.policy=interval may lose acks, but only those of the last flush.ms (plus one
    append and scheduling slack); everything older must survive."""
    s, trials, flush_ms, slack_ms = seed(), 15, 20, 60
    rng, totals = random.Random(s), Counter()
    part = durable_dir(lazy_mount, "orders-0")
    provision(part)
    st = crash_trials(
        part,
        trials,
        rng,
        policy="interval",
        config=[*SMALL_LOG, f"flush.ms={flush_ms}"],
        after_kill=power_cutter(lazy_mount, rng, totals),
        max_run=0.2,
        recovery_kills=0.0,
        zygote=zygote,
    )
    figures(
        "power-loss",
        policy="interval",
        flush_ms=flush_ms,
        trials=f"{st.trials}/{trials}",
        acked=st.acked,
        acked_lost=st.acked_lost,
        max_loss_window_ms=round(st.max_loss_window_ms, 1),
        seed=s,
    )
    assert not st.problems, f"seed {s}:\n" + "\n".join(st.problems[:10])
    assert st.max_loss_window_ms <= flush_ms + slack_ms, (
        f"an ack {st.max_loss_window_ms:.0f} ms older than the kill was lost (flush.ms={flush_ms})"
    )


def ack_then_power_cut(mount, part: str) -> tuple[list[str], dict]:  # type: ignore[no-untyped-def]
    """A writer appends 3 batches and waits: SIGKILL, power cut, reopen. (problems, report)"""
    run = run_child(
        child_cmd("write", part, max_appends=3, hold=1), kill_after=0.0, kill_marker="HOLDING"
    )
    assert len(run.acks()) == 3, run.describe()
    report = mount.crash()
    ledger = Ledger()
    ledger.record(run, 0)  # child_cmd writes with the default tag 0
    check = run_child(child_cmd("verify", part))
    summary = check.opened()
    if summary is None:
        return [f"reopen failed: {check.describe()}"], report
    return ledger.check_open(summary, 0), report


def test_new_partition_directory_is_durable(lazy_mount):  # type: ignore[no-untyped-def]
    """open() of a new partition fsyncs its directory into the parent before acking into it."""
    _, report = ack_then_power_cut(lazy_mount, lazy_mount.path("fresh-0"))
    assert "fresh-0/" not in report["entries_lost"]


@pytest.mark.parametrize("new_dir", [False, True], ids=["existing-dir", "new-dir"])
def test_first_segment_is_durable(lazy_mount, new_dir):  # type: ignore[no-untyped-def]
    """Acks into the first segment of a new log survive a power cut."""
    part = lazy_mount.path("orders-0") if new_dir else durable_dir(lazy_mount, "orders-0")
    problems, report = ack_then_power_cut(lazy_mount, part)
    assert not problems, f"{problems}; entries lost: {report['entries_lost']}"


@pytest.mark.parametrize("policy, loses", [("batch", False), ("none", True)])
def test_harness_self_check_with_reference_log(lazy_mount, monkeypatch, policy, loses):  # type: ignore[no-untyped-def]
    """The harness passes a log that fsyncs before acking and catches one that does not."""
    monkeypatch.setenv("HEADWATER_CRASH_LOG", "ref_log:RefLog")
    rng, totals = random.Random(1), Counter()
    part = durable_dir(lazy_mount, "ref-0")
    st = crash_trials(
        part,
        5,
        rng,
        policy=policy,
        after_kill=power_cutter(lazy_mount, rng, totals),
        recovery_kills=0.0,
    )
    assert not st.problems, "\n".join(st.problems[:10])
    assert (st.acked_lost > 0) == loses
