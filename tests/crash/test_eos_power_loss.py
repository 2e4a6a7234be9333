"""Transactions across a power cut, flush.policy=batch (issue 5).

Goal: what commit_transaction() answered survives a power cut whole, and no transaction is
ever visible in part. A transaction costs one fsync per partition plus, with several
partitions, the PrepareCommit's: its data is fsync'd at the commit (a one-partition commit by
its COMMIT marker's fsync, several partitions before the PrepareCommit record), and the
Ongoing and Complete records ride on later fsyncs. This test checks that ordering on a file
system that really forgets what was not fsync'd.

Method: the data directory lives on tools/lazyfs.py (see test_power_loss.py). A child opens
an embedded Broker there and runs transactions over one or two partitions of topic "t", some
aborted, printing COMMITTED/ABORTED after each call returned. The parent SIGKILLs it at a
random moment, cuts the power (lazyfs drops what was not fsync'd, keeping a random share of
the unsynced pages), then opens the broker itself and a producer with the same transactional.id,
as a restarted application would: the open transactions end (the hanging ones as the broker
opens, the one the coordinator knows when the new instance fences the old), and a
read_committed read must show every committed transaction whole, no aborted one, and nothing in
part.

HEADWATER_CRASH_SEED replays the schedule (timings still vary).
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from collections import Counter
from typing import Any

import pytest
from crash_harness import child_env, fsync_dir, requires_fuse

pytestmark = [requires_fuse, pytest.mark.root]

TRIALS = 6

CHILD = textwrap.dedent(
    """
    import random, sys
    from headwater.client import Broker
    data, tag, seed = sys.argv[1], sys.argv[2], int(sys.argv[3])
    rng = random.Random(seed)
    b = Broker(data, {"flush.policy": "batch", "segment.bytes": 65536})
    # A long timeout: on a loaded machine no transaction of the child may be aborted by it
    # (that would fence the child); the parent's next instance ends what the kill left open.
    p = b.producer({"transactional.id": "tx", "linger.ms": 1000, "transaction.timeout.ms": 60000})
    p.init_transactions()
    print("READY", flush=True)
    i = 0
    while True:
        name = f"{tag}-{i}"
        plan = [(part, rng.randint(1, 4)) for part in rng.choice([[0], [1], [0, 1], [0, 1]])]
        n = sum(k for _, k in plan)
        p.begin_transaction()
        for part, k in plan:
            for j in range(k):  # each record says how many its transaction has
                p.produce("t", f"{name}:{n}:".encode() + b"x" * rng.randint(0, 300), partition=part)
        if rng.random() < 0.2:
            p.flush()
            p.abort_transaction()
            print("ABORTED", name, n, flush=True)
        else:
            p.commit_transaction()
            print("COMMITTED", name, n, flush=True)
        i += 1
    """
)


def seed() -> int:
    s = int(os.environ.get("HEADWATER_CRASH_SEED", random.randrange(1 << 32)))
    print(f"HEADWATER_CRASH_SEED={s}")
    return s


def run_and_kill(data: str, tag: str, child_seed: int, kill_after: float) -> list[str]:
    """Start the child, SIGKILL it `kill_after` s after READY; its stdout lines."""
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, data, tag, str(child_seed)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=child_env(), cwd="/",
    )
    assert proc.stdout is not None
    first = proc.stdout.readline().decode()
    assert first.startswith("READY"), (first, proc.stderr.read().decode()[-3000:] if proc.stderr else "")
    time.sleep(kill_after)
    proc.send_signal(signal.SIGKILL)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL, err.decode()[-3000:]
    text = out.decode()
    lines = text.splitlines()
    if lines and not text.endswith("\n"):
        lines.pop()  # the kill cut this line short: its transaction's outcome was never said
    return lines


def check(data: str, outcomes: dict[str, tuple[str, int]]) -> Counter:
    """Open the broker after the cut; every open transaction must end; then the invariants."""
    from headwater.client import Broker, TopicPartition

    stats: Counter = Counter()
    with Broker(data, {"flush.policy": "batch"}) as b:
        p = b.producer({"transactional.id": "tx"})
        p.init_transactions(30)  # fences the killed instance: its open transaction is aborted
        p.close()
        deadline = time.monotonic() + 20
        for part in (0, 1):
            plog = b.get_log("t", part)
            while plog.last_stable_offset < plog.log_end_offset:
                assert time.monotonic() < deadline, f"partition {part}: LSO stuck at {plog.last_stable_offset}"
                time.sleep(0.05)
        c = b.consumer({"group.id": None, "isolation.level": "read_committed", "enable.partition.eof": False})
        c.assign([TopicPartition("t", p, 0) for p in (0, 1)])
        seen: Counter = Counter()
        sizes: dict[str, int] = {}
        while True:
            got = c.consume(10000, 0)
            if not got:
                break
            for m in got:
                assert m.error() is None, m.error()
                name, n, _ = m.value().decode().split(":", 2)
                seen[name] += 1
                sizes[name] = int(n)
        c.close()
    for name, count in seen.items():
        # Whole, whatever its outcome (a commit the kill cut short may be visible or not).
        assert count == sizes[name], f"transaction {name}: {count} of {sizes[name]} records visible"
        outcome = outcomes.get(name, ("unknown", -1))[0]
        assert outcome != "ABORTED", f"aborted transaction {name} is visible"
        stats["visible_unknown" if outcome == "unknown" else "visible_committed"] += 1
    missing = [name for name, (o, _) in outcomes.items() if o == "COMMITTED" and name not in seen]
    assert not missing, f"committed transactions lost by the power cut: {missing[:5]}"
    return stats


def test_committed_transactions_survive_a_power_cut_whole(lazy_mount, figures):  # type: ignore[no-untyped-def]
    rng = random.Random(seed())
    data = lazy_mount.path("data")
    os.mkdir(data)
    fsync_dir(lazy_mount.mountpoint)
    from headwater.client import Broker

    with Broker(data) as b:
        b.create_topic("t", 2)
    outcomes: dict[str, tuple[str, int]] = {}
    totals: Counter = Counter()
    for trial in range(TRIALS):
        lines = run_and_kill(data, f"r{trial}", rng.getrandbits(32), rng.uniform(0.05, 0.6))
        for line in lines:
            fields = line.split()
            assert len(fields) == 3 and fields[0] in ("ABORTED", "COMMITTED"), f"unexpected child output {line!r} in {lines[-5:]}"
            kind, name, n = fields
            outcomes[name] = (kind, int(n))
        rep: dict[str, Any] = lazy_mount.crash(keep=rng.choice([0.0, 0.0, 0.3, 0.7]), seed=rng.getrandbits(32))
        totals["cuts_that_dropped"] += bool(rep["pages_dropped"] or rep["entries_lost"])
        totals.update(check(data, outcomes))
    committed = sum(o == "COMMITTED" for o, _ in outcomes.values())
    figures(
        "eos_power_loss", trials=TRIALS, transactions=len(outcomes), committed=committed,
        visible_unknown=totals["visible_unknown"], cuts_that_dropped=totals["cuts_that_dropped"],
    )
    assert committed > 0, "no transaction committed"
    assert totals["cuts_that_dropped"] > 0, "no power cut dropped anything: the fault is dead"
