"""PartitionLog append / read / reopen against sqlite3 WAL and raw writes, small sizes."""

from __future__ import annotations

import os

import pytest

from headwater.log import PartitionLog


@pytest.mark.parametrize("kind", ["list", "numpy", "sqlite-wal"])
def test_append_none(benchmark, workloads, size, kind, tmp_path):
    n, appends = size["records"], size["appends"]
    if kind == "numpy":
        pytest.importorskip("numpy")
        batch = workloads.fixed_array(n)
    else:
        batch = workloads.values(n)
    benchmark.group = f"append {appends} x {n} x 100 B, flush=none"
    benchmark.extra_info["records"] = n * appends
    counter = iter(range(1 << 30))

    def setup():
        return (str(tmp_path / f"r{next(counter)}"),), {}

    def run_log(path):
        log = PartitionLog.open(path, **workloads.LOG_CONFIG)
        for _ in range(appends):
            log.append(batch, timestamp=workloads.TIMESTAMP)
        end = log.log_end_offset
        log.close()
        return end

    def run_sqlite(path):
        os.makedirs(path)
        return workloads.sqlite_wal_insert(os.path.join(path, "log.db"), [batch] * appends)

    fn = run_sqlite if kind == "sqlite-wal" else run_log
    assert benchmark.pedantic(fn, setup=setup, rounds=3) == n * appends


@pytest.mark.parametrize("kind", ["log-batch", "write-fdatasync"])
def test_append_durable(benchmark, workloads, kind, tmp_path):
    vals = workloads.values(9_500)
    count = 4
    from headwater.record import build_batch

    chunk = workloads.blob(len(build_batch(vals, timestamp=workloads.TIMESTAMP)))
    counter = iter(range(1 << 30))
    benchmark.group = f"durable {count} x ~1 MiB"

    def setup():
        return (str(tmp_path / f"r{next(counter)}"),), {}

    def run_log(path):
        log = PartitionLog.open(path, **dict(workloads.LOG_CONFIG, **{"flush.policy": "batch"}))
        for _ in range(count):
            log.append(vals, timestamp=workloads.TIMESTAMP)
        end = log.log_end_offset
        log.close()
        return end * 0 + count

    def run_raw(path):
        os.makedirs(path)
        return workloads.raw_write(os.path.join(path, "raw"), chunk, count, sync=True) // len(chunk)

    fn = run_log if kind == "log-batch" else run_raw
    assert benchmark.pedantic(fn, setup=setup, rounds=3) == count


@pytest.fixture(scope="module")
def filled_log(tmp_path_factory):
    pytest.importorskip("numpy")
    import _workloads as w

    n = (w.full() and 1_000_000) or 100_000
    path = str(tmp_path_factory.mktemp("read"))
    log = PartitionLog.open(path, **w.LOG_CONFIG)
    arr = w.fixed_array(10_000)
    for _ in range(n // 10_000):
        log.append(arr, timestamp=w.TIMESTAMP)
    yield log
    log.close()


def test_read_iterate(benchmark, filled_log):
    log = filled_log
    end = log.log_end_offset
    benchmark.group = "read"
    benchmark.extra_info["records"] = end

    def run():
        off = count = 0
        rec = None
        while off < end:
            with log.read(off, 1 << 20) as res:
                for rec in res:
                    count += 1
                off = rec.offset + 1
        return count, rec.value

    count, last = benchmark.pedantic(run, rounds=3)
    assert count == end and len(last) == 100


@pytest.mark.parametrize("verify_crc", [True, False], ids=["crc", "nocrc"])
def test_read_zero_copy(benchmark, filled_log, verify_crc):
    log = filled_log
    end = log.log_end_offset
    total = log.size_bytes
    benchmark.group = "read zero-copy"

    def run():
        off = nbytes = 0
        while off < end:
            res = log.read(off, 1 << 20, verify_crc=verify_crc)
            nbytes += res.nbytes
            last = None
            for last, _ in res.batches():
                pass
            off = last.last_offset + 1
            res.release()
        return nbytes

    assert benchmark.pedantic(run, rounds=5) == total


def test_memcpy_baseline(benchmark, filled_log):
    src = bytearray(1 << 20)
    copies = filled_log.size_bytes >> 20
    benchmark.group = "read zero-copy"
    assert benchmark.pedantic(lambda: sum(len(bytes(src)) for _ in range(copies)), rounds=5) == copies << 20


def test_reopen_clean(benchmark, workloads, tmp_path):
    pytest.importorskip("numpy")
    path = str(tmp_path / "p")
    log = PartitionLog.open(path, **dict(workloads.LOG_CONFIG, **{"segment.bytes": 4 << 20}))
    arr = workloads.fixed_array(10_000)
    for _ in range(20):
        log.append(arr, timestamp=workloads.TIMESTAMP)
    end = log.log_end_offset
    log.close()
    benchmark.group = "reopen"

    def run():
        lg = PartitionLog.open(path, **workloads.LOG_CONFIG)
        e = lg.log_end_offset
        clean = lg.recovery.clean_shutdown
        lg.close()
        return e, clean

    assert benchmark.pedantic(run, rounds=5) == (end, True)
