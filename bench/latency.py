"""Produce-to-consume latency at a fixed rate (issue 3), each face next to a bare handoff of the
same shape measured in the same run.

    python bench/latency.py [--rate 10000] [--records 20000]

One record at a time, linger.ms=0; each value carries the perf_counter() read just before the
producer was called, so a latency is everything from the produce call to the consumer holding
the record: the producer's append, the wakeup, the consumer's read and decode.

- threads: a consumer thread blocked in Consumer.poll(); the producer thread paces itself with
  time.sleep (a bare spin would hold the GIL for the 5 ms switch interval). Baseline: the same
  two threads handing a timestamp over a threading.Condition and a deque: the floor any
  in-process, two-thread design pays on this machine (the OS wakes a sleeping thread, which then
  takes the GIL).
- asyncio: AIOProducer.send() and AIOConsumer.getone() as two tasks on one event loop (uvloop
  when installed, as the wire server uses it). Baseline: the same two tasks handing a timestamp
  over a future.
Each face runs twice, alternating with its baseline; the run with the lower p99 is reported
for both (the machine is shared). A stall census before and after (stall_census) says how
often the host stopped a running thread for 20/50/100+ us meanwhile: on this shared VM such
stalls, not the broker's work, make most of both faces' p99.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import os
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Coroutine
from typing import Any

import headwater

try:
    import uvloop
except ImportError:  # pragma: no cover - optional
    uvloop = None


def percentiles(lat: list[float]) -> dict[str, float]:
    lat = sorted(lat)
    n = len(lat)
    return {
        "p50_us": lat[n // 2] * 1e6,
        "p99_us": lat[min(n - 1, int(n * 0.99))] * 1e6,
        "p999_us": lat[min(n - 1, int(n * 0.999))] * 1e6,
        "records": float(n),
    }


def stall_census(seconds: float = 1.0) -> dict[str, float]:
    """How often this machine stops a running thread: one thread reads perf_counter() in a
    tight loop for `seconds` (a read every ~50 ns) and counts the gaps between reads of at
    least 20, 50 and 100 us (per second), and the share of the time spent in such gaps. No
    lock, no other thread: what it sees is the host (scheduler, interrupts, another guest's
    vCPU on ours), which stretches any record in flight by as much. At 10,000 records/s a
    record in flight for W us meets a gap of 50+ us with a chance of about
    W * 1e-6 * (gaps of 50+ us per second)."""
    pc = time.perf_counter
    gaps = [0, 0, 0]
    stalled = 0.0
    end = pc() + seconds
    last = pc()
    while True:
        t = pc()
        d = t - last
        if d >= 20e-6:
            gaps[0] += 1
            stalled += d
            if d >= 50e-6:
                gaps[1] += 1
                if d >= 100e-6:
                    gaps[2] += 1
        last = t
        if t > end:
            break
    return {
        "gaps_20us_per_s": gaps[0] / seconds,
        "gaps_50us_per_s": gaps[1] / seconds,
        "gaps_100us_per_s": gaps[2] / seconds,
        "stalled_share": stalled / seconds,
    }


def idle_policy() -> str:
    """How this machine's idle vCPUs wait (Linux cpuidle): the driver, and under the haltpoll
    driver of a KVM guest its guest_halt_poll_ns. With 0 an idle vCPU halts at once (an exit
    to the host), and a thread woken on it, or the work right after a block, runs slower for
    some microseconds: on the development VMs (haltpoll, 0) raising it to 200,000 took the
    threaded face's p50 from ~45 to ~35 us and the bare handoff's from ~27 to ~20
    (bench/README.md, "Ratios on a shared VM"). Printed with every latency figure."""

    def read(path: str) -> str | None:
        try:
            with open(path, encoding="ascii") as f:
                return f.read().strip()
        except OSError:
            return None

    driver = read("/sys/devices/system/cpu/cpuidle/current_driver") or "unknown"
    poll_ns = read("/sys/module/haltpoll/parameters/guest_halt_poll_ns")
    return f"cpuidle driver {driver}" + ("" if poll_ns is None else f", guest_halt_poll_ns={poll_ns}")


def census_line(c: dict[str, float]) -> str:
    return (
        f"machine stalls of a running thread: {c['gaps_20us_per_s']:.0f}/s >= 20 us, "
        f"{c['gaps_50us_per_s']:.0f}/s >= 50 us, {c['gaps_100us_per_s']:.0f}/s >= 100 us "
        f"({c['stalled_share'] * 100:.1f}% of the time)"
    )


def _pace(interval: float, total: int, send: Callable[[], None]) -> None:
    nxt = time.perf_counter()
    for _ in range(total):
        while (wait := nxt - time.perf_counter()) > 0:
            time.sleep(wait if wait > 2e-4 else 0)
        send()
        nxt += interval


def threads_headwater(tmp: str, rate: int, total: int) -> list[float]:
    d = os.path.join(tmp, "lat-threads")
    shutil.rmtree(d, ignore_errors=True)
    with headwater.Broker(d, {"flush.policy": "interval"}) as b:
        b.create_topic("lat", partitions=1)
        c = b.consumer({"group.id": None})
        c.assign([headwater.TopicPartition("lat", 0, headwater.OFFSET_END)])
        p = b.producer({"linger.ms": 0})
        lat: list[float] = []

        def reader() -> None:
            deadline = time.monotonic() + 60
            while len(lat) < total and time.monotonic() < deadline:
                m = c.poll(1.0)
                if m is not None:
                    lat.append(time.perf_counter() - float(m.value()))

        th = threading.Thread(target=reader, daemon=True)
        th.start()
        time.sleep(0.05)
        _pace(1.0 / rate, total, lambda: p.produce("lat", repr(time.perf_counter()).encode(), partition=0))
        th.join(60)
        p.close()
        c.close()
    return lat


def threads_bare(rate: int, total: int) -> list[float]:
    cond = threading.Condition()
    q: collections.deque[float] = collections.deque()
    lat: list[float] = []

    def reader() -> None:
        deadline = time.monotonic() + 60
        while len(lat) < total and time.monotonic() < deadline:
            with cond:
                while not q:
                    if not cond.wait(1.0):
                        break
                if not q:
                    continue
                v = q.popleft()
            lat.append(time.perf_counter() - v)

    th = threading.Thread(target=reader, daemon=True)
    th.start()
    time.sleep(0.05)

    def send() -> None:
        with cond:
            q.append(time.perf_counter())
            cond.notify()

    _pace(1.0 / rate, total, send)
    th.join(60)
    return lat


async def _apace(interval: float, total: int, send: Callable[[], Coroutine[Any, Any, Any]]) -> None:
    nxt = time.perf_counter()
    for _ in range(total):
        wait = nxt - time.perf_counter()
        await asyncio.sleep(wait if wait > 0 else 0)
        await send()
        nxt += interval


async def _asyncio_headwater(tmp: str, rate: int, total: int) -> list[float]:
    d = os.path.join(tmp, "lat-asyncio")
    shutil.rmtree(d, ignore_errors=True)
    with headwater.Broker(d, {"flush.policy": "interval"}) as b:
        b.create_topic("lat", partitions=1)
        producer = headwater.AIOProducer(b, linger_ms=0)
        consumer = headwater.AIOConsumer(broker=b, auto_offset_reset="latest")
        await producer.start()
        await consumer.start()
        consumer.assign([headwater.TopicPartition("lat", 0)])
        lat: list[float] = []

        async def reader() -> None:
            while len(lat) < total:
                r = await consumer.getone()
                lat.append(time.perf_counter() - float(r.value))

        task = asyncio.ensure_future(reader())
        await asyncio.sleep(0.05)
        await _apace(1.0 / rate, total, lambda: producer.send("lat", repr(time.perf_counter()).encode(), partition=0))
        try:
            await asyncio.wait_for(task, 60)
        finally:
            await producer.stop()
            await consumer.stop()
    return lat


async def _asyncio_bare(rate: int, total: int) -> list[float]:
    loop = asyncio.get_running_loop()
    q: collections.deque[float] = collections.deque()
    waiting: list[asyncio.Future[None] | None] = [None]
    lat: list[float] = []

    async def reader() -> None:
        while len(lat) < total:
            while not q:
                fut = waiting[0] = loop.create_future()
                await fut
            lat.append(time.perf_counter() - q.popleft())

    task = asyncio.ensure_future(reader())
    await asyncio.sleep(0.05)

    async def send() -> None:
        q.append(time.perf_counter())
        fut = waiting[0]
        if fut is not None and not fut.done():
            fut.set_result(None)

    await _apace(1.0 / rate, total, send)
    await asyncio.wait_for(task, 60)
    return lat


def _run(coro: Coroutine[Any, Any, list[float]]) -> list[float]:
    loop = uvloop.new_event_loop() if uvloop is not None else asyncio.new_event_loop()
    try:
        return loop.run_until_complete(coro)
    finally:
        loop.close()


def measure(tmp: str, rate: int = 10_000, total: int = 20_000, rounds: int = 2) -> dict[str, dict[str, float]]:
    """p50/p99/p99.9 (microseconds) of each face and its baseline; per face the round with the
    lower p99 (alternating face and baseline round by round)."""
    faces: dict[str, tuple[Callable[[], list[float]], Callable[[], list[float]]]] = {
        "threads": (lambda: threads_headwater(tmp, rate, total), lambda: threads_bare(rate, total)),
        "asyncio": (lambda: _run(_asyncio_headwater(tmp, rate, total)), lambda: _run(_asyncio_bare(rate, total))),
    }
    out: dict[str, dict[str, float]] = {}
    for face, (ours, bare) in faces.items():
        best_ours: dict[str, float] | None = None
        best_bare: dict[str, float] | None = None
        for _ in range(rounds):
            a = percentiles(ours())
            z = percentiles(bare())
            if best_ours is None or a["p99_us"] < best_ours["p99_us"]:
                best_ours = a
            if best_bare is None or z["p99_us"] < best_bare["p99_us"]:
                best_bare = z
        assert best_ours is not None and best_bare is not None
        out[face] = best_ours
        out[face + " bare handoff"] = best_bare
    return out


def parse_args(doc: str) -> argparse.Namespace:
    """--rate, --records, --rounds: the options of this script and latency_tail.py."""
    ap = argparse.ArgumentParser(description=doc.split("\n")[0])
    ap.add_argument("--rate", type=int, default=10_000)
    ap.add_argument("--records", type=int, default=20_000)
    ap.add_argument("--rounds", type=int, default=2)
    return ap.parse_args()


def main() -> int:
    args = parse_args(__doc__ or "")
    tmp = tempfile.mkdtemp(prefix="hw-bench-lat-", dir="/tmp")
    try:
        before = stall_census()
        res = measure(tmp, args.rate, args.records, args.rounds)
        after = stall_census()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    loop_name = "uvloop" if uvloop is not None else "asyncio"
    print(f"latency at {args.rate} records/s, {args.records} records, best p99 of {args.rounds} rounds ({loop_name} for the asyncio face)")
    for name, r in res.items():
        print(f"{name:<24} p50 {r['p50_us']:8.1f} us   p99 {r['p99_us']:8.1f} us   p99.9 {r['p999_us']:8.1f} us")
    print("before: " + census_line(before))
    print("after:  " + census_line(after))
    print("idle vCPUs: " + idle_policy())
    return 0


if __name__ == "__main__":
    sys.exit(main())
