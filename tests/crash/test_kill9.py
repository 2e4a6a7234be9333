"""Process crash: SIGKILL a PartitionLog writer at random moments (RELIABILITY.md section 3 a).

Goal: with flush.policy=batch, every offset whose append returned survives a kill -9 intact;
recovery leaves a contiguous prefix of offsets; the next writer continues at log_end, above
every acked offset (no offset is ever handed out twice).

Method: one writer child per trial (crash_child.py), 50 trials per partition directory. The
child opens the log (recovery runs), dumps what it recovered, then appends batches of 1-12
self-describing records, printing "ACK first count seq" after each append returns. The parent
SIGKILLs it at a uniformly random moment, 0-120 ms after "OPEN", or (15% of trials) 0-4 ms
after "OPENING", i.e. inside recovery. The next trial's open is the check; a last child only
verifies the whole log. Small segments (128 KiB) and indexes make rolls and index appends
frequent. flush.policy=none gets the same strict check: the log promises that every policy
survives a process crash. The seed is printed; set HEADWATER_CRASH_SEED to replay the kill
schedule (timings still vary).
"""

from __future__ import annotations

import os
import random

import pytest
from crash_harness import partitioned_trials


def seed() -> int:
    return int(os.environ.get("HEADWATER_CRASH_SEED") or random.SystemRandom().getrandbits(32))


def run_kill9(tmp_path, figures, zygote, trials: int, policy: str = "batch") -> None:  # type: ignore[no-untyped-def]
    s = seed()
    st = partitioned_trials(
        lambda i: str(tmp_path / f"orders-{i}"),
        trials,
        random.Random(s),
        per_partition=50,
        policy=policy,
        strict=True,
        zygote=zygote,
    )
    figures(
        "kill9",
        policy=policy,
        trials=f"{st.trials}/{trials}",
        acked=st.acked,
        acked_lost=st.acked_lost,
        killed_in_recovery=st.killed_in_recovery,
        unacked_recovered=st.unacked_recovered,
        opens_refused=st.opens_refused,
        log_end=st.log_end,
        seed=s,
    )
    assert not st.problems, f"seed {s}:\n" + "\n".join(st.problems[:10])
    assert st.acked_lost == 0
    assert st.trials == trials and st.acked > trials  # the writers did get work acked


def test_kill9_batch(tmp_path, figures, zygote):  # type: ignore[no-untyped-def]
    run_kill9(tmp_path, figures, zygote, 50)


def test_kill9_none(tmp_path, figures, zygote):  # type: ignore[no-untyped-def]
    """partition_log.py: "Every policy survives kill -9 of the process" (the page cache
    belongs to the kernel), so even flush.policy=none must keep every acked record here."""
    run_kill9(tmp_path, figures, zygote, 30, policy="none")


@pytest.mark.slow
def test_kill9_batch_deep(tmp_path, figures, zygote):  # type: ignore[no-untyped-def]
    run_kill9(tmp_path, figures, zygote, 500)
