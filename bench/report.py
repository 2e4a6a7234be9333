#!/usr/bin/env python3
"""Run every performance figure of issue 2 once, each with its baseline in the same run.

    python bench/report.py                 # default sizes, about 2-3 minutes
    HEADWATER_BENCH_FULL=1 python bench/report.py   # larger sizes
    python bench/report.py --only crc,encode        # a subset (ids below)

Prints one line per figure (value, baseline, ratio, bar) and writes bench/results.json
(or --json PATH) with every repetition, the machine, versions and git commit.

Figures (ids): crc, encode, append, durable, read, reopen, kill, rss. The machine is shared
and noisy, so each figure alternates headwater and its baseline repetition by repetition and
reports the best repetition (the least disturbed one); the median is in the JSON.
"""

from __future__ import annotations

import os

# numpy's OpenBLAS starts spinning threads on import; on a 2-vCPU machine they steal the core
# being measured (seen in perf as blas_thread_server). Nothing here uses BLAS.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse
import gc
import json
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "benchmarks"))

import _workloads as W  # noqa: E402

MiB, GiB = W.MiB, W.GiB

FULL = W.full()
SIZES: dict[str, Any] = {
    "reps": 7 if FULL else 5,
    "append_bytes": 1 * GiB if FULL else 200 * MiB,  # per repetition, list and numpy each
    "append_batch": 10_000,  # records per append
    "sqlite_records": 2_000_000 if FULL else 400_000,
    "durable_batches": 256 if FULL else 48,  # 1 MiB appends with fsync
    "read_records": 5_000_000 if FULL else 1_000_000,
    "read_bytes_max": 1 * MiB,
    "big_log_bytes": 8 * GiB if FULL else 2 * GiB,  # clean reopen + RSS
    "rss_first_sample": 256 * MiB,
    "kill_bytes": 1 * GiB if FULL else 256 * MiB,
    "kill_trials": 3 if FULL else 2,
}

FIGURES: list[dict[str, Any]] = []


# ---------------------------------------------------------------- helpers


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    gc.collect()
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def alternate(reps: int, *fns: Callable[[], Any]) -> list[list[tuple[float, Any]]]:
    """Run fns round-robin `reps` times; per fn a list of (seconds, result)."""
    runs: list[list[tuple[float, Any]]] = [[] for _ in fns]
    for _ in range(reps):
        for i, fn in enumerate(fns):
            runs[i].append(timed(fn))
    return runs


def rate(work: float, runs: list[tuple[float, Any]]) -> tuple[float, float]:
    """(best, median) of work/second."""
    rates = [work / dt for dt, _ in runs]
    return max(rates), statistics.median(rates)


def fmt(value: float, unit: str) -> str:
    if unit == "rec/s":
        return f"{value / 1e6:.2f} M rec/s"
    if unit == "GB/s":
        return f"{value / 1e9:.2f} GB/s"
    if unit == "MB/s":
        return f"{value / 1e6:.0f} MB/s"
    if unit == "ms":
        return f"{value:.1f} ms"
    if unit == "MB":
        return f"{value / 1e6:.0f} MB"
    return f"{value:.3g} {unit}"


def figure(
    fid: str,
    name: str,
    value: float,
    unit: str,
    *,
    baseline: str | None = None,
    baseline_value: float | None = None,
    bar: str | None = None,
    passed: bool | None = None,
    median: float | None = None,
    baseline_median: float | None = None,
    lower_is_better: bool = False,
    note: str = "",
    **extra: Any,
) -> None:
    ratio = None
    if baseline_value:
        ratio = (baseline_value / value) if lower_is_better else (value / baseline_value)
    fig = {
        "id": fid, "name": name, "value": value, "unit": unit, "median": median,
        "baseline": baseline, "baseline_value": baseline_value, "baseline_median": baseline_median,
        "ratio": ratio, "bar": bar, "passed": passed, "note": note, **extra,
    }
    FIGURES.append(fig)
    line = f"{name:<44} {fmt(value, unit):>16}"
    if baseline is not None and baseline_value is not None:
        line += f"  | {baseline}: {fmt(baseline_value, unit)}"
        line += f"  | ratio {ratio:.2f}x"
    if bar:
        verdict = "" if passed is None else ("  PASS" if passed else "  MISS")
        line += f"  | bar {bar}{verdict}"
    if note:
        line += f"  ({note})"
    print(line, flush=True)


def section(title: str) -> None:
    print(f"\n== {title}", flush=True)


# ---------------------------------------------------------------- 1. crc32c


def bench_crc(reps: int) -> None:
    import headwater
    from headwater.record import _impl

    section(f"1. crc32c (headwater impl: {_impl.crc32c_impl()})")
    reps = max(3 * reps, 15)  # each repetition is ~10 ms: cheap, and short runs are noise-prone
    try:
        import crc32c as pypi
    except ImportError:
        pypi = None
    for size, label in ((64, "64 B"), (4096, "4 KiB"), (MiB, "1 MiB")):
        data = W.blob(size)
        loops = max(1, (256 * MiB) // size) if size >= 4096 else 2_000_000
        hw = headwater.crc32c

        def run_hw(data: bytes = data, loops: int = loops, f: Any = hw) -> int:
            c = 0
            for _ in range(loops):
                c = f(data)
            return c

        fns: list[Callable[[], Any]] = [run_hw]
        if pypi is not None:

            def run_pypi(data: bytes = data, loops: int = loops, f: Any = pypi.crc32c) -> int:
                c = 0
                for _ in range(loops):
                    c = f(data)
                return c

            fns.append(run_pypi)
        runs = alternate(reps, *fns)
        ref = runs[0][0][1]
        if pypi is not None:
            assert runs[1][0][1] == ref, "headwater.crc32c and PyPI crc32c disagree"
        work = size * loops
        best, med = rate(work, runs[0])
        kw: dict[str, Any] = {}
        if pypi is not None:
            b_best, b_med = rate(work, runs[1])
            kw = {"baseline": "PyPI crc32c", "baseline_value": b_best, "baseline_median": b_med}
        bar = ">= 0.9x PyPI crc32c" if size == MiB else None
        passed = (best / kw["baseline_value"] >= 0.9) if (bar and kw) else None
        ns_call = 1e9 * size / best
        figure("crc", f"crc32c {label}", best, "GB/s", median=med, bar=bar, passed=passed,
               note=f"{ns_call:.0f} ns/call", checksum=ref, **kw)


# ---------------------------------------------------------------- 2. batch encode


def bench_encode(reps: int) -> None:
    from headwater.record import build_batch

    section("2. batch encode, 1000 x 100 B values, no keys/headers, same records for all")
    n = 1000
    vals = W.values(n)
    ts = W.TIMESTAMP
    ref = build_batch(vals, timestamp=ts)
    loops_hw = 2000

    def run_hw() -> int:
        c = 0
        for _ in range(loops_hw):
            c += len(build_batch(vals, timestamp=ts))
        return c

    def run_kp() -> int:
        c = 0
        for _ in range(5):
            c += len(W.kafka_python_build(vals, ts))
        return c

    def run_aio() -> int:
        c = 0
        for _ in range(200):
            c += len(W.aiokafka_build(vals, ts))
        return c

    # Same records, same bytes (everything the CRC covers; only partitionLeaderEpoch differs).
    for other in (W.kafka_python_build(vals, ts),) + ((W.aiokafka_build(vals, ts),) if W.aiokafka_builder_class() else ()):
        assert other[21:] == ref[21:], "baseline built a different batch"
    fns = [run_hw, run_kp] + ([run_aio] if W.aiokafka_builder_class() else [])
    runs = alternate(reps, *fns)
    hw_best, hw_med = rate(n * loops_hw, runs[0])
    kp_best, kp_med = rate(n * 5, runs[1])
    figure("encode", "build_batch vs kafka-python", hw_best, "rec/s", median=hw_med,
           baseline="kafka-python DefaultRecordBatchBuilder", baseline_value=kp_best, baseline_median=kp_med,
           bar=">= 30x", passed=hw_best / kp_best >= 30, batch_bytes=len(ref), checksum=W.checksum(ref))
    if len(runs) > 2:
        a_best, a_med = rate(n * 200, runs[2])
        figure("encode", "build_batch vs aiokafka (Cython)", hw_best, "rec/s", median=hw_med,
               baseline="aiokafka _crecords DefaultRecordBatchBuilder", baseline_value=a_best,
               baseline_median=a_med, bar=">= 3x", passed=hw_best / a_best >= 3)


# ---------------------------------------------------------------- 3. append, flush.policy=none


def _fill(path: str, batch: Any, appends: int, config: dict[str, Any]) -> tuple[int, int, float]:
    """Open, append `batch` `appends` times, close. Returns (log end, bytes, seconds of the
    appends alone: open and the close's msync+fdatasync of everything are not timed)."""
    from headwater.log import PartitionLog

    log = PartitionLog.open(path, **config)
    try:
        gc.collect()
        t0 = time.perf_counter()
        for _ in range(appends):
            log.append(batch, timestamp=W.TIMESTAMP)
        dt = time.perf_counter() - t0
        return log.log_end_offset, log.size_bytes, dt
    finally:
        log.close()


def bench_append(reps: int) -> None:
    section("3. append 100 B values, flush.policy=none, 10,000 records/append, segment.bytes 256 MiB")
    per = SIZES["append_batch"]
    vals = W.values(per)
    arr = W.fixed_array(per)
    appends = max(1, SIZES["append_bytes"] // (per * W.VALUE_SIZE))
    records = appends * per
    sq_batches = max(1, SIZES["sqlite_records"] // per)
    log_bytes: list[int] = []

    def one(batch: Any) -> Callable[[], Any]:
        def run() -> Any:
            with W.scratch_dir() as d:
                end, size, dt = _fill(d, batch, appends, W.LOG_CONFIG)
                assert end == records
                log_bytes.append(size)
                return dt
        return run

    def run_sqlite() -> int:
        with W.scratch_dir() as d:
            return W.sqlite_wal_insert(os.path.join(d, "log.db"), [vals] * sq_batches)

    runs = alternate(min(reps, 3), one(vals), one(arr), run_sqlite)
    # Only the append loop counts (returned by run), not open/close/rmtree around it.
    runs[0] = [(dt, dt) for _, dt in runs[0]]
    runs[1] = [(dt, dt) for _, dt in runs[1]]
    l_best, l_med = rate(records, runs[0])
    n_best, n_med = rate(records, runs[1])
    s_best, s_med = rate(sq_batches * per, runs[2])
    figure("append", "append(list) flush=none", l_best, "rec/s", median=l_med,
           baseline="sqlite3 WAL executemany", baseline_value=s_best, baseline_median=s_med,
           bar=">= 10 M rec/s", passed=l_best >= 10e6, records=records)
    figure("append", "append(numpy S100) flush=none", n_best, "rec/s", median=n_med,
           baseline="sqlite3 WAL executemany", baseline_value=s_best, baseline_median=s_med,
           bar=">= 20 M rec/s", passed=n_best >= 20e6, records=records)

    # The kernel's side: the same number of bytes written into fresh page-cache pages.
    nbytes = log_bytes[0]
    bytes_per_record = nbytes / records
    chunk = W.blob(MiB)
    count = max(1, nbytes // MiB)

    def raw(kind: str) -> Callable[[], int]:
        def run() -> int:
            with W.scratch_dir() as d:
                p = os.path.join(d, "raw")
                return W.raw_write(p, chunk, count) if kind == "write" else W.raw_mmap_write(p, chunk, count)
        return run

    runs = alternate(min(reps, 3), raw("write"), raw("mmap"))
    for label, r in (("os.write", runs[0]), ("mmap memcpy", runs[1])):
        best, med = rate(count * MiB, r)
        figure("append", f"page-cache write, fresh file, {label}", best, "GB/s", median=med,
               note=f"ceiling {best / bytes_per_record / 1e6:.1f} M rec/s at {bytes_per_record:.1f} B/record on disk")
    l_bw = l_best * bytes_per_record
    n_bw = n_best * bytes_per_record
    figure("append", "append(numpy) as write bandwidth", n_bw, "GB/s",
           note=f"list: {l_bw / 1e9:.2f} GB/s")


# ---------------------------------------------------------------- 4. flush.policy=batch


def bench_durable(reps: int) -> None:
    from headwater.log import PartitionLog
    from headwater.record import build_batch

    per = 9_500
    vals = W.values(per)
    batch_bytes = len(build_batch(vals, timestamp=W.TIMESTAMP))
    count = SIZES["durable_batches"]
    section(f"4. flush.policy=batch, {count} appends of {per} x 100 B (one {batch_bytes} B batch each)")
    cfg = dict(W.LOG_CONFIG, **{"flush.policy": "batch"})
    chunk = W.blob(batch_bytes)

    # Only the append loops are timed, on both sides: opening a log (directory fsyncs, index
    # allocation) and closing it (checkpoints) are not part of an append's cost, just as the
    # baseline does not time its open() and close().
    def run_log() -> tuple[float, int]:
        with W.scratch_dir() as d:
            log = PartitionLog.open(d, **cfg)
            try:
                t = time.perf_counter()
                for _ in range(count):
                    log.append(vals, timestamp=W.TIMESTAMP)
                return time.perf_counter() - t, log.log_end_offset
            finally:
                log.close()

    def run_raw() -> tuple[float, int]:
        with W.scratch_dir() as d:
            fd = os.open(os.path.join(d, "raw"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            try:
                t = time.perf_counter()
                for _ in range(count):
                    os.write(fd, chunk)
                    os.fdatasync(fd)
                return time.perf_counter() - t, len(chunk) * count
            finally:
                os.close(fd)

    runs: list[list[tuple[float, Any]]] = [[], []]
    for _ in range(max(reps, 5)):
        for i, fn in enumerate((run_log, run_raw)):
            runs[i].append(fn())
    work = count * batch_bytes
    best, med = rate(work, runs[0])
    b_best, b_med = rate(work, runs[1])
    figure("durable", "append, flush=batch, ~1 MiB batches", best, "MB/s", median=med,
           baseline="os.write 1 MiB + fdatasync", baseline_value=b_best, baseline_median=b_med,
           bar=">= 0.7x", passed=best / b_best >= 0.7,
           note=f"{count * per / (work / best) / 1e6:.2f} M rec/s, {1e3 * work / best / count:.1f} ms/append")


# ---------------------------------------------------------------- 5. read


def bench_read(reps: int) -> None:
    from headwater import record
    from headwater.log import PartitionLog

    n = SIZES["read_records"]
    per = SIZES["append_batch"]
    max_bytes = SIZES["read_bytes_max"]
    section(f"5. read {n} x 100 B records, read(offset, max_bytes={max_bytes})")
    with W.scratch_dir() as d:
        _fill(d, W.fixed_array(per), n // per, W.LOG_CONFIG)
        log = PartitionLog.open(d, **W.LOG_CONFIG)
        end = log.log_end_offset
        total_bytes = log.size_bytes

        def iterate() -> tuple[int, int]:
            off = 0
            count = 0
            last = None
            while off < end:
                with log.read(off, max_bytes) as res:
                    for rec in res:
                        count += 1
                        last = rec
                    off = last.offset + 1
            assert count == end
            return count, W.checksum(last.offset, last.value)

        def columns() -> int:
            # The columnar reader: offsets/timestamps/key-value positions as int64 arrays, no
            # Python object per record (ReadResult.columns()).
            off = 0
            count = 0
            while off < end:
                with log.read(off, max_bytes) as res:
                    cols = res.columns()
                    count += len(cols)
                    off = cols.offsets[-1] + 1
                    del cols
            assert count == end
            return count

        def decode_lists() -> int:
            # The same decode without the per-record generator: one list of Records per batch.
            off = 0
            count = 0
            while off < end:
                with log.read(off, max_bytes) as res:
                    for header, view in res.batches():
                        count += len(record.batch_records(view, header))
                        off = header.last_offset + 1
                    view = None
            assert count == end
            return count

        def zero_copy(verify: bool) -> Callable[[], int]:
            def run() -> int:
                off = 0
                nbytes = 0
                while off < end:
                    res = log.read(off, max_bytes, verify_crc=verify)
                    mv = res.view
                    nbytes += mv.nbytes
                    # Next offset: the last batch's header (what a fetch loop needs anyway).
                    off = _next_offset(mv)
                    res.release()
                assert nbytes == total_bytes
                return nbytes
            return run

        src = bytearray(W.blob(max_bytes))
        copies = max(1, total_bytes // max_bytes)

        def memcpy() -> int:
            c = 0
            for _ in range(copies):
                c += len(bytes(src))
            return c

        def bare_loop(items: list[bytes] = [b""] * n) -> int:  # noqa: B006
            c = 0
            for _ in items:
                c += 1
            return c

        def iterate_nogc() -> tuple[int, int]:
            # Diagnostic: the same loop with the cyclic GC off (Record objects are GC-tracked,
            # so allocating millions of them triggers collections that traverse them all).
            gc.disable()
            try:
                return iterate()
            finally:
                gc.enable()

        runs = alternate(min(reps, 3), iterate, decode_lists, bare_loop, iterate_nogc, columns)
        c_best, c_med = rate(n, runs[4])
        figure("read", "read + columns() (columnar iteration)", c_best, "rec/s", median=c_med,
               bar=">= 20 M rec/s", passed=c_best >= 20e6)
        i_best, i_med = rate(n, runs[0])
        d_best, d_med = rate(n, runs[1])
        b_best, b_med = rate(n, runs[2])
        g_best, g_med = rate(n, runs[3])
        figure("read", "read + iterate Records", i_best, "rec/s", median=i_med,
               baseline="bare Python for-loop over a list", baseline_value=b_best, baseline_median=b_med,
               checksum=runs[0][0][1][1])
        figure("read", "read + batch_records() lists (no generator)", d_best, "rec/s", median=d_med,
               baseline="bare Python for-loop over a list", baseline_value=b_best, baseline_median=b_med)
        figure("read", "read + iterate Records, gc.disable() (diagnostic)", g_best, "rec/s", median=g_med,
               baseline="read + iterate, gc on", baseline_value=i_best, baseline_median=i_med)
        runs = alternate(reps, zero_copy(True), zero_copy(False), memcpy)
        m_best, m_med = rate(copies * max_bytes, runs[2])
        for label, r in (("zero-copy read, verify_crc=True (default)", runs[0]), ("zero-copy read, verify_crc=False", runs[1])):
            best, med = rate(total_bytes, r)
            figure("read", label, best, "GB/s", median=med, baseline="memcpy (bytes(bytearray) 1 MiB)",
                   baseline_value=m_best, baseline_median=m_med, bar="memory-bound (~1x memcpy)",
                   note=f"{1e6 * max_bytes / best:.0f} us per {max_bytes >> 20} MiB read")
        log.close()


def _next_offset(mv: memoryview) -> int:
    from headwater.record import iter_batches

    last = None
    for header, _ in iter_batches(mv):
        last = header
    return last.last_offset + 1


# ---------------------------------------------------------------- 6 + 7. big log: RSS, clean reopen


def _status_kb(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return -1


def child_fill(path: str, total: int, segment_bytes: int, mode: str) -> None:
    """Child process: append numpy batches of 100 B values until `total` bytes.
    mode 'rss': print RSS samples as JSON and close cleanly. mode 'kill': print 'ready' and
    wait to be killed (no close, no flush)."""
    from headwater.log import PartitionLog

    arr = W.fixed_array(SIZES["append_batch"])
    cfg = dict(W.LOG_CONFIG, **{"segment.bytes": segment_bytes})
    samples = []

    def sample(label: str) -> None:
        samples.append({
            "at": label, "log_bytes": log.size_bytes, "rss": W.rss_bytes(),
            "rss_anon": _status_kb("RssAnon") * 1024, "rss_file": _status_kb("RssFile") * 1024,
            "rss_shmem": _status_kb("RssShmem") * 1024,
        })

    log = PartitionLog.open(path, **cfg)
    sample("open")
    first = SIZES["rss_first_sample"]
    t0 = time.perf_counter()
    while log.size_bytes < total:
        log.append(arr, timestamp=W.TIMESTAMP)
        if not samples[1:] and log.size_bytes >= first and mode == "rss":
            sample(f"{first >> 20} MiB")
    fill_s = time.perf_counter() - t0
    if mode == "kill":
        print(json.dumps({"ready": True, "records": log.log_end_offset, "bytes": log.size_bytes, "fill_s": fill_s}), flush=True)
        time.sleep(3600)
        return
    sample(f"{log.size_bytes >> 20} MiB")
    log.close()
    print(json.dumps({"samples": samples, "records": log.log_end_offset, "fill_s": fill_s,
                      "segments": sum(n.endswith(".log") for n in os.listdir(path))}), flush=True)


def _spawn(path: str, total: int, segment_bytes: int, mode: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, os.path.abspath(__file__), "--child", mode, path, str(total), str(segment_bytes)],
        stdout=subprocess.PIPE, text=True,
    )


def bench_big(reps: int) -> None:
    from headwater.log import PartitionLog

    total = SIZES["big_log_bytes"]
    section(f"6/7. a {total >> 20} MiB partition (segment.bytes 256 MiB), filled by a child with numpy appends")
    with W.scratch_dir() as d:
        proc = _spawn(d, total, 256 * MiB, "rss")
        out, _ = proc.communicate()
        assert proc.returncode == 0, proc.returncode
        info = json.loads(out.strip().splitlines()[-1])
        s = info["samples"]
        fill_rate = info["records"] / info["fill_s"]
        figure("rss", f"RSS after {s[1]['at']} appended", s[1]["rss"], "MB",
               note=f"anon {s[1]['rss_anon'] >> 20} MiB, file {s[1]['rss_file'] >> 20} MiB, shmem {s[1]['rss_shmem'] >> 20} MiB; at open {s[0]['rss'] >> 20} MiB")
        grew = s[2]["rss"] - s[1]["rss"]
        figure("rss", f"RSS after {s[2]['at']} appended", s[2]["rss"], "MB",
               baseline=f"RSS after {s[1]['at']}", baseline_value=s[1]["rss"], lower_is_better=True,
               bar="flat (grows < 64 MiB)", passed=grew < 64 * MiB,
               note=f"anon {s[2]['rss_anon'] >> 20} MiB, file {s[2]['rss_file'] >> 20} MiB, shmem {s[2]['rss_shmem'] >> 20} MiB; fill {fill_rate / 1e6:.2f} M rec/s",
               samples=s)

        times = []
        summary = ""
        for _ in range(reps):
            gc.collect()
            t0 = time.perf_counter()
            log = PartitionLog.open(d, **W.LOG_CONFIG)
            times.append(1e3 * (time.perf_counter() - t0))
            summary = log.recovery.summary()
            assert log.log_end_offset == info["records"]
            log.close()
        figure("reopen", f"reopen after clean close, {total >> 30} GiB, {info['segments']} segments",
               min(times), "ms", median=statistics.median(times), bar="< 50 ms", passed=min(times) < 50,
               note=summary, times_ms=times)


def bench_kill(reps: int) -> None:
    from headwater.log import PartitionLog

    total = SIZES["kill_bytes"]
    section(f"6. reopen after SIGKILL: a child fills one {total >> 20} MiB active segment (flush=none), kill -9")
    with W.scratch_dir() as d:
        crashed = os.path.join(d, "crashed")
        os.mkdir(crashed)
        proc = _spawn(crashed, total, 2 * total, "kill")
        line = proc.stdout.readline()
        info = json.loads(line)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        assert proc.returncode == -signal.SIGKILL
        rates, walls = [], []
        result = None
        for trial in range(SIZES["kill_trials"]):
            # Every trial recovers an identical copy of the crashed directory.
            p = os.path.join(d, f"trial{trial}")
            shutil.copytree(crashed, p)
            gc.collect()
            t0 = time.perf_counter()
            log = PartitionLog.open(p, **dict(W.LOG_CONFIG, **{"segment.bytes": 2 * total}))
            walls.append(time.perf_counter() - t0)
            result = log.recovery
            assert log.log_end_offset == info["records"], (log.log_end_offset, info["records"])
            rates.append(result.bytes_scanned / result.duration_s)
            log.close()
            shutil.rmtree(p)
        assert result is not None and not result.clean_shutdown
        best = max(rates)
        wall_rate = result.bytes_scanned / min(walls)
        figure("kill", "recovery scan after SIGKILL (bytes_scanned/duration)", best, "MB/s",
               median=statistics.median(rates), bar=">= 1000 MB/s", passed=best >= 1e9,
               note=f"{result.bytes_scanned >> 20} MiB scanned; open() wall {1e3 * min(walls):.0f} ms = {wall_rate / 1e6:.0f} MB/s",
               open_wall_s=walls, summary=result.summary())


# ---------------------------------------------------------------- main


def environment() -> dict[str, Any]:
    from importlib import metadata

    import headwater
    from headwater.record import IMPLEMENTATION, _impl

    versions = {}
    for dist in ("headwater", "numpy", "crc32c", "kafka-python", "aiokafka"):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = None
    import sqlite3

    versions["sqlite"] = sqlite3.sqlite_version
    try:
        commit = subprocess.run(["git", "-C", HERE, "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
        dirty = bool(subprocess.run(["git", "-C", HERE, "status", "--porcelain", "--", "../src", "../csrc"],
                                    capture_output=True, text=True).stdout.strip())
    except OSError:
        commit, dirty = "", False
    cpu = ""
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), "")
    except OSError:
        pass
    return {
        "python": sys.version.split()[0], "platform": platform.platform(), "cpu": cpu,
        "cpus": os.cpu_count(), "commit": commit, "src_dirty": dirty, "versions": versions,
        "headwater_codec": IMPLEMENTATION, "crc32c_impl": _impl.crc32c_impl(),
        "full": FULL, "sizes": SIZES, "tmp": W.tmp_root(), "headwater_file": headwater.__file__,
    }


STEPS: dict[str, Callable[[int], None]] = {
    "crc": bench_crc,
    "encode": bench_encode,
    "append": bench_append,
    "durable": bench_durable,
    "read": bench_read,
    "kill": bench_kill,
    "big": bench_big,  # reopen (clean) + rss
}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", default="", help="comma-separated subset of: " + ",".join(STEPS))
    ap.add_argument("--json", default=os.path.join(HERE, "results.json"))
    ap.add_argument("--reps", type=int, default=SIZES["reps"])
    ap.add_argument("--child", nargs=4, metavar=("MODE", "PATH", "BYTES", "SEGMENT_BYTES"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        mode, path, nbytes, seg = args.child
        child_fill(path, int(nbytes), int(seg), mode)
        return 0
    env = environment()
    print(f"headwater bench report  commit {env['commit']}{' (src dirty)' if env['src_dirty'] else ''}  "
          f"python {env['python']}  {env['cpus']} CPUs  {env['cpu']}")
    print("versions: " + ", ".join(f"{k} {v}" for k, v in env["versions"].items()))
    print(f"sizes: {'FULL' if FULL else 'default'} (HEADWATER_BENCH_FULL=1 for larger); best of {args.reps} "
          f"repetitions, headwater and baseline alternating; temp dir {env['tmp']}")
    only = [s for s in args.only.split(",") if s]
    t0 = time.perf_counter()
    for name, step in STEPS.items():
        if only and name not in only and not (name == "big" and ({"reopen", "rss"} & set(only))):
            continue
        step(args.reps)
    elapsed = time.perf_counter() - t0
    print(f"\ntotal {elapsed:.0f} s; results in {args.json}")
    with open(args.json, "w") as f:
        json.dump({"environment": env, "elapsed_s": elapsed, "figures": FIGURES}, f, indent=1, default=str)
        f.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
