"""Offset-index lookup: targets in the warm section (the newest entries, what fetches from the
log end touch) vs the cold section (oldest entries), index of [1k, 100k] entries."""

from __future__ import annotations

try:
    from . import _asv_path  # noqa: F401
except ImportError:
    import _asv_path  # noqa: F401

import os
import random
import shutil
import tempfile

import _workloads as W


class OffsetIndexLookup:
    params = ([1_000, 100_000], ["warm", "cold"])
    param_names = ["entries", "section"]

    def setup(self, entries: int, section: str) -> None:
        from headwater._native._native import OffsetIndex

        self.dir = tempfile.mkdtemp(prefix="hw-asv-idx-", dir=W.tmp_root())
        self.index = OffsetIndex(os.path.join(self.dir, "0.index"), 0, entries * 8)
        for i in range(entries):
            self.index.append(i * 100 + 99, i * 4096)
        rng = random.Random(W.SEED)
        hi = entries * 100
        span = min(hi, 1024 * 100)  # Kafka's warm section: the last 8 KiB = 1024 entries
        lo = hi - span if section == "warm" else 0
        self.targets = [rng.randrange(lo, lo + span) for _ in range(1000)]

    def teardown(self, entries: int, section: str) -> None:
        self.index.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def time_lookup_1000(self, entries: int, section: str) -> int:
        lookup = self.index.lookup
        return sum(lookup(t)[1] for t in self.targets)
