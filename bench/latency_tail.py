"""Where the asyncio face's p99 comes from (issue 3's latency bar): two diagnostics that
bench/latency.py's totals cannot show.

    python bench/latency_tail.py [--rate 10000] [--records 20000] [--rounds 2]

1. append: PartitionLog.append_one timed per call at the target rate, no consumer, split by
   whether the write entered a 4 KiB page of the file that no earlier write touched (the
   kernel allocates a page-cache page and the file system maps a block for it). One ~20-byte
   value makes a ~90-byte batch, so ~2% of appends enter a fresh page.
2. end to end: bench/latency.py's asyncio face (AIOProducer.send, AIOConsumer.getone, one
   uvloop loop), each record tagged with whether its append entered a fresh page; reported:
   what share of the slowest 1% are such records. Run once with the broker's timer thread at
   its default tick (timer.interval.ms=5) and once ticking every second, alternating: each
   tick wakes a second thread that must take the GIL from the event loop, so the difference is
   the timer's share of the tail.

Only a diagnostic: the latency bar itself is bench/latency.py's figure.
"""

from __future__ import annotations

import asyncio
import shutil
import sys
import tempfile
import time
from typing import Any

from latency import parse_args  # bench/latency.py (run from bench/ or as a script there)

import headwater

try:
    import uvloop
except ImportError:  # pragma: no cover - optional
    uvloop = None

PAGE = 4096


def _fresh_page(before: int, after: int) -> bool:
    """True if bytes [before, after) reach into a page that [0, before) did not touch."""
    return before == 0 or (after - 1) // PAGE != (before - 1) // PAGE


def _q(sorted_lat: list[float], p: float) -> float:
    return sorted_lat[min(len(sorted_lat) - 1, int(len(sorted_lat) * p))] * 1e6


def _split(res: list[tuple[float, bool]]) -> str:
    every = sorted(x for x, _ in res)
    fresh = sorted(x for x, c in res if c)
    other = sorted(x for x, c in res if not c)
    threshold = _q(every, 0.99) / 1e6
    slow = [c for x, c in res if x >= threshold]
    return (
        f"all p50 {_q(every, 0.5):6.1f} p99 {_q(every, 0.99):6.1f} us | fresh-page n={len(fresh)} "
        f"p50 {_q(fresh, 0.5):6.1f} us | other p50 {_q(other, 0.5):6.1f} p99 {_q(other, 0.99):6.1f} us | "
        f"slowest 1%: {sum(slow)} of {len(slow)} fresh-page"
    )


def append_only(rate: int, total: int) -> list[tuple[float, bool]]:
    d = tempfile.mkdtemp(prefix="hw-bench-tail-", dir="/tmp")
    try:
        with headwater.Broker(d, {"flush.policy": "interval"}) as b:
            b.create_topic("lat", partitions=1)
            log = b.get_log("lat", 0)
            pc = time.perf_counter
            res: list[tuple[float, bool]] = []
            nxt = pc()
            for _ in range(total):
                while pc() < nxt:  # spin: one thread, nothing else wants the GIL
                    pass
                value = repr(pc()).encode()
                before = log.size_bytes
                t0 = pc()
                log.append_one(value)
                t1 = pc()
                res.append((t1 - t0, _fresh_page(before, log.size_bytes)))
                nxt += 1.0 / rate
        return res
    finally:
        shutil.rmtree(d, ignore_errors=True)


async def _end_to_end(rate: int, total: int, config: dict[str, Any]) -> list[tuple[float, bool]]:
    d = tempfile.mkdtemp(prefix="hw-bench-tail-", dir="/tmp")
    try:
        with headwater.Broker(d, {"flush.policy": "interval", **config}) as b:
            b.create_topic("lat", partitions=1)
            log = b.get_log("lat", 0)
            producer = headwater.AIOProducer(b, linger_ms=0)
            consumer = headwater.AIOConsumer(broker=b, auto_offset_reset="latest")
            await producer.start()
            await consumer.start()
            consumer.assign([headwater.TopicPartition("lat", 0)])
            got: list[tuple[float, int]] = []
            fresh: dict[int, bool] = {}

            async def reader() -> None:
                while len(got) < total:
                    r = await consumer.getone()
                    got.append((time.perf_counter() - float(r.value), r.offset))

            task = asyncio.ensure_future(reader())
            await asyncio.sleep(0.05)
            nxt = time.perf_counter()
            for _ in range(total):
                wait = nxt - time.perf_counter()
                await asyncio.sleep(wait if wait > 0 else 0)
                before = log.size_bytes
                offset = log.log_end_offset
                await producer.send("lat", repr(time.perf_counter()).encode(), partition=0)
                fresh[offset] = _fresh_page(before, log.size_bytes)
                nxt += 1.0 / rate
            try:
                await asyncio.wait_for(task, 60)
            finally:
                await producer.stop()
                await consumer.stop()
        return [(x, fresh.get(off, False)) for x, off in got]
    finally:
        shutil.rmtree(d, ignore_errors=True)


def end_to_end(rate: int, total: int, config: dict[str, Any]) -> list[tuple[float, bool]]:
    loop = uvloop.new_event_loop() if uvloop is not None else asyncio.new_event_loop()
    try:
        return loop.run_until_complete(_end_to_end(rate, total, config))
    finally:
        loop.close()


def main() -> int:
    args = parse_args(__doc__ or "")
    print(f"{args.rate} records/s, {args.records} records per run, {args.rounds} rounds")
    for r in range(args.rounds):
        print(f"round {r + 1}")
        print("  append_one            ", _split(append_only(args.rate, args.records)))
        print("  e2e, timer 5 ms       ", _split(end_to_end(args.rate, args.records, {})))
        print(
            "  e2e, timer 1000 ms    ",
            _split(end_to_end(args.rate, args.records, {"timer.interval.ms": 1000})),
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
