"""Figures of issue 3 (embedded broker), each with its baseline measured in the same run.

    python bench/report_embedded.py            # ~1-2 min
    HEADWATER_BENCH_FULL=1 python bench/report_embedded.py

1. produce_batch of 100-byte values into an 8-partition topic, acks=all, flush.policy=interval
   and flush.policy=batch; baseline stdlib sqlite3 executemany into a WAL table.
2. produce() per record from a Python loop vs an empty loop calling a no-op method (and the
   same produce() calls with nothing sent, to split the call from the batch build and write).
3. consume_batch (columns) and poll()/consume() per Message; as a diagnostic, the C column walk
   alone (bench/walk_bench.c: its ceiling without Python or allocation).
4. idempotence on vs off (produce_batch, same records).
5. produce-to-consume latency at 10,000 records/s (one record at a time, linger.ms=0), p50/p99,
   for the asyncio face and the threaded face, each next to a bare handoff of the same shape
   (bench/latency.py).
Rates are the best of a few repetitions; the machine is shared, so ratios matter more than
absolute rates. The two ratio bars (sections 2 and 4) interleave their two sides in short
turns instead, and every timed run starts on a settled disk with its page cache recycled
(bench/README.md, "Ratios on a shared VM"). Results go to bench/results_embedded.json.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import sys
import tempfile
import time

import headwater

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import latency  # noqa: E402  (bench/latency.py)

FULL = os.environ.get("HEADWATER_BENCH_FULL") == "1"
N = 4_000_000 if FULL else 1_000_000
REPS = 3
VALUE = b"x" * 100
BATCH = 9000  # fits max.message.bytes (1 MiB) at 100 B/record
results: dict[str, object] = {}


def line(name: str, value: float, unit: str, baseline: str = "", ratio: float | None = None, bar: str = "") -> None:
    text = f"{name:<52} {value:>10.2f} {unit}"
    if baseline:
        text += f"  | {baseline}"
    if ratio is not None:
        text += f"  | ratio {ratio:.2f}x"
    if bar:
        text += f"  | {bar}"
    print(text, flush=True)
    results[name] = {"value": value, "unit": unit, "baseline": baseline, "ratio": ratio, "bar": bar}


def best(fn, reps: int = REPS) -> float:  # noqa: ANN001
    return min(fn() for _ in range(reps))


def sqlite_rate(n: int, tmp: str) -> float:
    def run() -> float:
        path = os.path.join(tmp, "bench.sqlite")
        if os.path.exists(path):
            os.unlink(path)
        db = sqlite3.connect(path)
        db.execute("pragma journal_mode=wal")
        db.execute("pragma synchronous=normal")
        db.execute("create table t (k integer primary key, v blob)")
        rows = [(None, VALUE)] * 10000
        settle()
        t = time.perf_counter()
        for _ in range(n // 10000):
            db.executemany("insert into t values (?, ?)", rows)
            db.commit()
        dt = time.perf_counter() - t
        db.close()
        for suffix in ("", "-wal", "-shm"):
            if os.path.exists(path + suffix):
                os.unlink(path + suffix)
        return dt

    return n / best(run) / 1e6


def settle() -> None:
    """Write back what earlier work left dirty, so a timed run does not share the disk with
    it (each side of a comparison starts from the same settled disk)."""
    os.sync()


def produce_batch_run(tmp: str, policy: str, idempotent: bool, values: object) -> float:
    """Seconds per N records for one fresh broker; its directory is removed afterwards, so
    the page cache it used is free again for the next run (bench/README.md)."""
    d = os.path.join(tmp, f"pb-{policy}-{idempotent}")
    shutil.rmtree(d, ignore_errors=True)
    settle()
    with headwater.Broker(d, {"flush.policy": policy, "segment.bytes": 256 << 20}) as b:
        b.create_topic("t", partitions=8)
        p = b.producer({"acks": "all", "enable.idempotence": idempotent})
        t = time.perf_counter()
        sent = 0
        i = 0
        while sent < N:
            sent += p.produce_batch("t", values, partition=i % 8)
            i += 1
        p.flush()
        dt = time.perf_counter() - t
        p.close()
    shutil.rmtree(d, ignore_errors=True)
    return dt / sent * N


def produce_batch_rate(tmp: str, policy: str, idempotent: bool, values: object, reps: int = REPS) -> float:
    return N / best(lambda: produce_batch_run(tmp, policy, idempotent, values), reps) / 1e6


def idempotence_ratio(tmp: str, values: list[bytes]) -> tuple[float, float, float]:
    """Idempotence on vs off, interleaved call by call: two brokers, one producer each, the
    same produce_batch calls alternating between them (which goes first alternates too), each
    call timed on its own. Load that comes and goes over a run then lands on both sides alike,
    which whole-run repetitions (~0.1 s each) could not promise. Returns (on M/s, off M/s,
    ratio), the median ratio of three such runs."""
    runs = []
    for _ in range(REPS):
        dirs = [os.path.join(tmp, f"idem-{side}") for side in ("on", "off")]
        for d in dirs:
            shutil.rmtree(d, ignore_errors=True)
        settle()
        with headwater.Broker(dirs[0], {"flush.policy": "interval", "segment.bytes": 256 << 20}) as b_on, \
                headwater.Broker(dirs[1], {"flush.policy": "interval", "segment.bytes": 256 << 20}) as b_off:
            producers = []
            for b, idem in ((b_on, True), (b_off, False)):
                b.create_topic("t", partitions=8)
                producers.append(b.producer({"acks": "all", "enable.idempotence": idem}))
            spent = [0.0, 0.0]
            sent = [0, 0]
            pc = time.perf_counter
            i = 0
            while min(sent) < N:
                for side in ((0, 1) if i % 2 == 0 else (1, 0)):
                    t = pc()
                    sent[side] += producers[side].produce_batch("t", values, partition=i % 8)
                    spent[side] += pc() - t
                i += 1
            for side in (0, 1):
                t = pc()
                producers[side].flush()
                spent[side] += pc() - t
                producers[side].close()
        for d in dirs:
            shutil.rmtree(d, ignore_errors=True)
        on, off = sent[0] / spent[0] / 1e6, sent[1] / spent[1] / 1e6
        runs.append((on / off, on, off))
    runs.sort()
    ratio, on, off = runs[len(runs) // 2]
    return on, off, ratio


def main() -> int:
    tmp = tempfile.mkdtemp(prefix="hw-bench-", dir="/tmp")
    print(f"headwater embedded bench  python {sys.version.split()[0]}  {os.cpu_count()} CPUs  N={N:,}")
    try:
        import numpy as np

        arr = np.array([VALUE] * BATCH, dtype="S100")
    except ImportError:
        arr = None
    values = [VALUE] * BATCH

    print("== 1. produce_batch, 8 partitions, 100 B values, acks=all")
    base = sqlite_rate(N // 2, tmp)
    for policy, bar in (("interval", 8.0), ("batch", 3.0)):
        r = produce_batch_rate(tmp, policy, True, values)
        line(f"produce_batch list, flush.policy={policy}", r, "M rec/s", f"sqlite WAL executemany {base:.2f} M rec/s", r / base, f"bar >= {bar} M rec/s {'PASS' if r >= bar else 'MISS'}")
        if arr is not None:
            r = produce_batch_rate(tmp, policy, True, arr)
            line(f"produce_batch numpy S100, flush.policy={policy}", r, "M rec/s", f"sqlite {base:.2f}", r / base, f"bar >= {bar} M rec/s {'PASS' if r >= bar else 'MISS'}")

    print("== 4. idempotence cost (produce_batch list, interval; the two sides interleaved call by call)")
    on, off, ratio = idempotence_ratio(tmp, values)
    line("idempotence on / off", ratio, "x", f"on {on:.2f} M/s, off {off:.2f} M/s", None, f"bar >= 0.90 {'PASS' if ratio >= 0.9 else 'MISS'}")

    print("== 2. produce() per record vs an empty loop calling a no-op method (interleaved in chunks)")
    d = os.path.join(tmp, "produce")
    settle()
    with headwater.Broker(d, {"flush.policy": "interval"}) as b:
        b.create_topic("t", partitions=8)
        p = b.producer({"linger.ms": 100, "enable.idempotence": True})

        class Noop:
            def produce(self, topic: str, value: bytes) -> None:
                pass

        noop = Noop()
        chunk = 20_000
        rounds = max(1, N // 2 // chunk)

        def empty() -> float:
            f = noop.produce
            t = time.perf_counter()
            for _ in range(chunk):
                f("t", VALUE)
            return time.perf_counter() - t

        def real() -> float:
            f = p.produce
            t = time.perf_counter()
            for _ in range(chunk):
                f("t", VALUE)
            return time.perf_counter() - t

        # The same calls with nothing sent (linger and batch limits out of reach), then the
        # records dropped unsent: the cost of the call itself, apart from the batch build and
        # write. Topic "t2", so section 3 reads the same data as before.
        b.create_topic("t2", partitions=8)
        q = b.producer({"linger.ms": 3_600_000, "batch.num.messages": 1 << 30, "batch.size": 1 << 40})

        def unsent() -> float:
            f = q.produce
            t = time.perf_counter()
            for _ in range(chunk):
                f("t2", VALUE)
            dt = time.perf_counter() - t
            with q._lock:
                q._purge_locked()
            return dt

        # The machine's speed swings up to 2x within seconds (other tenants), and the bar is a
        # ratio: the three loops take turns in chunks of 20,000 calls (~2-5 ms each), their
        # order alternating, and each side's chunks are summed. The batches real() fills are
        # sent inside its chunks; its final flush() counts too.
        e = r = u = 0.0
        for i in range(rounds):
            for side in ((0, 1, 2) if i % 2 == 0 else (2, 1, 0)):
                if side == 0:
                    e += empty()
                elif side == 1:
                    r += real()
                else:
                    u += unsent()
        t = time.perf_counter()
        p.flush()
        r += time.perf_counter() - t
        n = rounds * chunk
        line("produce() per record", n / r / 1e6, "M rec/s", f"no-op method loop {n / e / 1e6:.2f} M/s", e / r, f"bars >= 2 M/s and >= 0.40x {'PASS' if n / r >= 2e6 and e / r >= 0.4 else 'MISS'}")
        line("produce() per record, nothing sent", n / u / 1e6, "M rec/s", f"no-op method loop {n / e / 1e6:.2f} M/s", e / u)
        p.close()
        q.close()

        print("== 3. consume")
        topic_n = sum(b.get_log("t", i).log_end_offset for i in range(8))

        def cols() -> float:
            c = b.consumer({"group.id": None, "enable.auto.commit": False})
            c.assign([headwater.TopicPartition("t", i, headwater.OFFSET_BEGINNING) for i in range(8)])
            got = 0
            t = time.perf_counter()
            while got < topic_n:
                batches = c.consume_batch()
                for cb in batches:
                    got += len(cb)
                    cb.release()
            dt = time.perf_counter() - t
            c.close()
            return dt

        def msgs() -> float:
            c = b.consumer({"group.id": None, "enable.auto.commit": False})
            c.assign([headwater.TopicPartition("t", i, headwater.OFFSET_BEGINNING) for i in range(8)])
            got = 0
            t = time.perf_counter()
            while got < topic_n:
                got += len(c.consume(10000, 1))
            dt = time.perf_counter() - t
            c.close()
            return dt

        r = topic_n / best(cols) / 1e6
        line("consume_batch (columns)", r, "M rec/s", "", None, f"bar >= 30 M/s {'PASS' if r >= 30 else 'MISS'}")
        # Diagnostic: the C column walk alone over an in-memory 1 MiB batch (its ceiling).
        try:
            import walk_bench

            walk = walk_bench.run()
        except Exception as exc:  # noqa: BLE001 - a diagnostic: no compiler is not a failure
            walk = f"skipped ({exc})"
        print(f"  (diagnostic) C column walk alone: {walk or 'skipped (no C compiler)'}", flush=True)
        r = topic_n / best(msgs) / 1e6
        line("consume() per Message", r, "M rec/s", "", None, f"bar >= 3 M/s {'PASS' if r >= 3 else 'MISS'}")

    print("== 5. produce-to-consume latency at 10,000 records/s (bench/latency.py)")
    # The sections above leave a few hundred MB for the kernel to write back over the next
    # ~30 s (dirty_expire); a single-record pwrite that meets that writeback waits on the file
    # system. Measure the latency on a settled disk, as latency.py run alone does.
    os.sync()
    before = latency.stall_census()
    lat = latency.measure(tmp, 10_000, 100_000 if FULL else 20_000)
    after = latency.stall_census()
    print("  before: " + latency.census_line(before))
    print("  after:  " + latency.census_line(after))
    print("  idle vCPUs: " + latency.idle_policy())
    results["machine stalls (before, after latency)"] = {"before": before, "after": after, "idle_policy": latency.idle_policy()}
    for face in ("asyncio", "threads"):
        ours, bare = lat[face], lat[face + " bare handoff"]
        line(f"latency {face} p50 (us)", ours["p50_us"], "us", f"bare handoff {bare['p50_us']:.1f} us")
        line(
            f"latency {face} p99 (us)", ours["p99_us"], "us", f"bare handoff {bare['p99_us']:.1f} us", None,
            f"bar p99 < 100 us {'PASS' if ours['p99_us'] < 100 else 'MISS'}",
        )
    # A diagnostic, not a bar: the threaded face next to its floor (the bare two-thread
    # handoff, itself over 100 us at p99 in many runs here). 2.3-4.6x in session 7's runs.
    ours, bare = lat["threads"], lat["threads bare handoff"]
    line("(diagnostic) latency threads p99 / bare handoff p99", ours["p99_us"] / bare["p99_us"], "x")
    shutil.rmtree(tmp, ignore_errors=True)
    with open(os.path.join(os.path.dirname(__file__), "results_embedded.json"), "w") as f:
        json.dump(results, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
