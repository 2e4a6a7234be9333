"""Segment-level storage: append MB/s (list, numpy), read/scan MB/s, recovery time per GiB.

Sizes are per-sample and small enough for asv's repeat loop; HEADWATER_BENCH_FULL=1 scales
them up. bench/report.py measures the same things at partition size with baselines.
"""

from __future__ import annotations

try:
    from . import _asv_path  # noqa: F401
except ImportError:
    import _asv_path  # noqa: F401

import os
import shutil
import tempfile

import _workloads as W

PER_APPEND = 10_000
APPENDS = 100 if W.full() else 20


class Append:
    """Append APPENDS batches of PER_APPEND 100 B values, flush.policy none or batch."""

    params = (["list", "numpy"], ["none", "batch"])
    param_names = ["values", "flush_policy"]
    timeout = 120
    number = 1
    repeat = 5

    def setup(self, kind: str, policy: str) -> None:
        self.batch = W.values(PER_APPEND) if kind == "list" else W.fixed_array(PER_APPEND)
        self.config = dict(W.LOG_CONFIG, **{"flush.policy": policy})
        self.appends = APPENDS if policy == "none" else 8
        self.dir = tempfile.mkdtemp(prefix="hw-asv-", dir=W.tmp_root())
        from headwater.log import PartitionLog

        self.log = PartitionLog.open(os.path.join(self.dir, "p"), **self.config)

    def teardown(self, kind: str, policy: str) -> None:
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def time_append(self, kind: str, policy: str) -> int:
        for _ in range(self.appends):
            self.log.append(self.batch, timestamp=W.TIMESTAMP)
        return self.log.log_end_offset


class Read:
    """Read a filled log in 1 MiB fetches: zero-copy views, and iterating every Record."""

    timeout = 120

    def setup_cache(self) -> str:
        from headwater.log import PartitionLog

        d = tempfile.mkdtemp(prefix="hw-asv-read-", dir=W.tmp_root())
        log = PartitionLog.open(d, **W.LOG_CONFIG)
        arr = W.fixed_array(PER_APPEND)
        for _ in range(APPENDS):
            log.append(arr, timestamp=W.TIMESTAMP)
        log.close()
        return d

    def setup(self, d: str) -> None:
        from headwater.log import PartitionLog

        self.log = PartitionLog.open(d, **W.LOG_CONFIG)
        self.end = self.log.log_end_offset

    def teardown(self, d: str) -> None:
        self.log.close()

    def _walk(self, verify: bool) -> int:
        off = nbytes = 0
        while off < self.end:
            res = self.log.read(off, 1 << 20, verify_crc=verify)
            nbytes += res.nbytes
            for header, _ in res.batches():
                off = header.last_offset + 1
            res.release()
        return nbytes

    def time_zero_copy_crc(self, d: str) -> int:
        return self._walk(True)

    def time_zero_copy_nocrc(self, d: str) -> int:
        return self._walk(False)

    def time_iterate_records(self, d: str) -> int:
        off = n = 0
        while off < self.end:
            with self.log.read(off, 1 << 20) as res:
                for rec in res:
                    n += 1
                off = rec.offset + 1
        return n

    def time_scan(self, d: str) -> int:
        # The recovery scan over every segment (CRC-checked walk), no index writes.
        total = 0
        for seg in self.log.segments:
            total += seg.log.scan(0, seg.size, True).valid_bytes
        return total


class Recovery:
    """Reopen after an unclean stop (no clean-shutdown marker) of a 64 MiB active segment;
    time per GiB = time * 16. A copy of the crashed directory is recovered each sample."""

    timeout = 180
    number = 1
    repeat = 3

    def setup_cache(self) -> str:
        from headwater.log import PartitionLog

        d = tempfile.mkdtemp(prefix="hw-asv-crash-", dir=W.tmp_root())
        src = os.path.join(d, "crashed")
        log = PartitionLog.open(src, **W.LOG_CONFIG)
        arr = W.fixed_array(PER_APPEND)
        while log.size_bytes < 64 * W.MiB:
            log.append(arr, timestamp=W.TIMESTAMP)
        log.flush()
        # Simulate the crash: drop the mappings without a clean close, then remove the marker
        # a clean close would have left (close() writes it last).
        log.close()
        os.unlink(os.path.join(src, ".clean-shutdown"))
        return d

    def setup(self, d: str) -> None:
        self.path = os.path.join(d, "trial")
        shutil.rmtree(self.path, ignore_errors=True)
        shutil.copytree(os.path.join(d, "crashed"), self.path)

    def teardown(self, d: str) -> None:
        shutil.rmtree(self.path, ignore_errors=True)

    def time_recover_64mib(self, d: str) -> int:
        from headwater.log import PartitionLog

        log = PartitionLog.open(self.path, **W.LOG_CONFIG)
        n = log.recovery.bytes_scanned
        log.close()
        return n

    def track_recovery_scan_mb_s(self, d: str) -> float:
        from headwater.log import PartitionLog

        log = PartitionLog.open(self.path, **W.LOG_CONFIG)
        rate = log.recovery.scan_rate_mb_s
        log.close()
        return rate

    track_recovery_scan_mb_s.unit = "MB/s"
