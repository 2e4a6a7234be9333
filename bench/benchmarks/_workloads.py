"""Seeded inputs and baseline implementations shared by every bench suite.

asv (bench/benchmarks/bench_*.py), pytest-benchmark (bench/micro/) and bench/report.py all
build their inputs here, so a figure in one suite means the same work as in the others
(STYLE.md section 9: seeded inputs and parameters, not copy-pasted variants).

Nothing here is timed; it only makes data and wraps the baselines (PyPI crc32c, kafka-python's
and aiokafka's DefaultRecordBatchBuilder, stdlib sqlite3 in WAL mode, raw os.write/mmap).
"""

from __future__ import annotations

import mmap
import os
import random
import shutil
import sqlite3
import tempfile
import zlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

SEED = 0x4857  # "HW"
TIMESTAMP = 1_700_000_000_000  # fixed CreateTime (ms) so batches are byte-identical run to run
VALUE_SIZE = 100
MiB = 1 << 20
GiB = 1 << 30

# Partition-log config used by every append benchmark: big segments so a run measures append,
# not roll; max.message.bytes raised so a 10,000 x 100 B batch (~1.1 MB) is one append.
LOG_CONFIG = {
    "segment.bytes": 256 * MiB,
    "flush.policy": "none",
    "max.message.bytes": 16 * MiB,
}


def full() -> bool:
    """True when HEADWATER_BENCH_FULL=1 asks for the large sizes."""
    return os.environ.get("HEADWATER_BENCH_FULL") == "1"


def blob(size: int, seed: int = SEED) -> bytes:
    return random.Random(seed).randbytes(size)


def values(count: int, size: int = VALUE_SIZE, seed: int = SEED) -> list[bytes]:
    """`count` distinct seeded values of `size` bytes (slices of one random blob)."""
    data = blob(count * size, seed)
    return [data[i * size : (i + 1) * size] for i in range(count)]


def fixed_array(count: int, size: int = VALUE_SIZE, seed: int = SEED):  # noqa: ANN201
    """The same bytes as values(count, size, seed) as a numpy array of dtype S<size>."""
    import numpy as np

    return np.frombuffer(blob(count * size, seed), dtype=f"S{size}").copy()


def checksum(*parts: object) -> int:
    """A cheap order-sensitive checksum for results the benchmark must not optimise away."""
    c = 0
    for p in parts:
        if isinstance(p, (bytes, bytearray, memoryview)):
            c = zlib.crc32(p, c)
        else:
            c = zlib.crc32(repr(p).encode(), c)
    return c


def tmp_root() -> str:
    """Where benchmark logs go: HEADWATER_BENCH_TMP, else /tmp (a real disk here, not tmpfs)."""
    return os.environ.get("HEADWATER_BENCH_TMP", tempfile.gettempdir())


@contextmanager
def scratch_dir(prefix: str = "hw-bench-") -> Iterator[str]:
    d = tempfile.mkdtemp(prefix=prefix, dir=tmp_root())
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


def rss_bytes() -> int:
    """Resident set size of this process (psutil if installed, else /proc/self/status)."""
    try:
        import psutil

        return int(psutil.Process().memory_info().rss)
    except ImportError:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    return -1


# ---------------------------------------------------------------- batch-builder baselines


def kafka_python_build(vals: Sequence[bytes], timestamp: int = TIMESTAMP) -> bytes:
    """kafka-python's pure-Python DefaultRecordBatchBuilder on the same records."""
    from kafka.record.default_records import DefaultRecordBatchBuilder

    b = DefaultRecordBatchBuilder(
        magic=2, compression_type=0, is_transactional=0, producer_id=-1, producer_epoch=-1,
        base_sequence=-1, batch_size=1 << 30,
    )
    for i, v in enumerate(vals):
        b.append(i, timestamp=timestamp, key=None, value=v, headers=[])
    return bytes(b.build())


def aiokafka_builder_class():  # noqa: ANN201
    """aiokafka's Cython DefaultRecordBatchBuilder (aiokafka.record._crecords), or None."""
    try:
        from aiokafka.record._crecords.default_records import DefaultRecordBatchBuilder
    except ImportError:
        return None
    return DefaultRecordBatchBuilder


def aiokafka_build(vals: Sequence[bytes], timestamp: int = TIMESTAMP) -> bytes:
    builder = aiokafka_builder_class()
    if builder is None:
        raise ImportError("aiokafka's Cython record builder is not available")
    b = builder(2, 0, 0, -1, -1, -1, 1 << 30)
    for i, v in enumerate(vals):
        b.append(i, timestamp, None, v, [])
    return bytes(b.build())


# ---------------------------------------------------------------- storage baselines


def sqlite_wal_insert(path: str, batches: Sequence[Sequence[bytes]]) -> int:
    """The same records through stdlib sqlite3 executemany into a WAL table, one transaction
    per batch (the append equivalent). Returns the rows written."""
    db = sqlite3.connect(path, isolation_level=None)
    try:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute("CREATE TABLE IF NOT EXISTS log (offset INTEGER PRIMARY KEY, ts INTEGER, value BLOB)")
        offset = 0
        for batch in batches:
            rows = [(offset + i, TIMESTAMP, v) for i, v in enumerate(batch)]
            db.execute("BEGIN")
            db.executemany("INSERT INTO log VALUES (?, ?, ?)", rows)
            db.execute("COMMIT")
            offset += len(rows)
        return offset
    finally:
        db.close()


def raw_write(path: str, chunk: bytes, count: int, *, sync: bool = False) -> int:
    """os.write `chunk` `count` times into a fresh file (fdatasync after each when `sync`)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        for _ in range(count):
            os.write(fd, chunk)
            if sync:
                os.fdatasync(fd)
    finally:
        os.close(fd)
    return len(chunk) * count


def raw_mmap_write(path: str, chunk: bytes, count: int) -> int:
    """memcpy `chunk` `count` times into a fresh file mapped MAP_SHARED (ftruncate'd, so every
    page is a fresh page-cache page: the same kind of page a new segment writes into)."""
    size = len(chunk) * count
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        os.ftruncate(fd, size)
        with mmap.mmap(fd, size) as m:
            n = len(chunk)
            for i in range(count):
                m[i * n : (i + 1) * n] = chunk
    finally:
        os.close(fd)
    return size
