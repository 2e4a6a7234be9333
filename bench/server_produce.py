"""Wire throughput: confluent-kafka Producer/Consumer against `headwater serve` vs librdkafka's
in-process mock cluster (issue 4, "Performance").

    python bench/server_produce.py [--records 2000000] [--repeat 2] [--only mock,interval,batch]

What runs, per repetition (alternating, each in a fresh data directory):

- mock:     the Producer with `test.mock.num.brokers=1`: librdkafka's built-in broker keeps the
            log in memory inside the client process; the ceiling of this Python loop.
- interval: `python -m headwater serve --config flush.policy=interval` as a SUBPROCESS (its own
            interpreter and GIL, as in production); the same Producer; then a Consumer (assign,
            no group) reads every record back.
- batch:    the same with `flush.policy=batch` (fdatasync before each Produce is answered).

Producer settings (the issue's): 100-byte values, no key, `linger.ms=5`, `acks=all`,
`enable.idempotence=True`; everything else is librdkafka's default (batch.size 1 MB, so each
Produce carries ~9,000 records). The timed span is the first produce() call to the end of
flush(). The consumer's span runs from assign() to the last record (startup included); it
runs twice, with librdkafka's defaults and with fetch.queue.backoff.ms=10 (see CONSUMERS).
librdkafka's mock cluster keeps only the last ~5 MB of each partition, so its consumer reads
that tail (the record count is printed): a small sample, and the mock answers each fetch with
little data, so it is a weak baseline for reads.
Server CPU seconds (utime+stime from /proc) and the client process's CPU seconds during each
span tell whether the server or the client is the limit (client CPU close to the span's wall
time: the client's loop is the limit; both well below it: waiting or descheduled); run `py-spy dump --pid` / `py-spy record --pid` on the server for detail.

Caveats: the VM has 2 vCPUs and the client's Python loop needs one of them; the server and
librdkafka's threads share the other. Best repetition reported, all in the JSON line printed
last.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from typing import Any

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka import version as ck_version

TOPIC = "bench"
VALUE = b"x" * 100
PRODUCER_CONF = {"linger.ms": 5, "acks": "all", "enable.idempotence": True}
PARTITIONS = 4  # what librdkafka's mock cluster gives an auto-created topic; headwater matches it


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process, from /proc (Linux)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Server:
    """`python -m headwater serve` in a subprocess on an ephemeral port."""

    def __init__(self, policy: str) -> None:
        self.dir = tempfile.mkdtemp(prefix="hw-bench-serve-", dir=os.environ.get("HEADWATER_BENCH_TMP"))
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "headwater", "serve", "--data-dir", self.dir, "--listen", "127.0.0.1:0",
             "--config", f"flush.policy={policy}", "--config", f"num.partitions={PARTITIONS}"],
            stdout=subprocess.PIPE, text=True,
        )
        assert self.proc.stdout is not None
        deadline = time.monotonic() + 30
        line = ""
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            m = re.match(r"headwater listening on (\S+):(\d+)", line)
            if m:
                self.bootstrap = f"{m.group(1)}:{m.group(2)}"
                return
            if not line and self.proc.poll() is not None:
                break
        self.close()
        raise RuntimeError(f"server did not start: {line!r}")

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
        shutil.rmtree(self.dir, ignore_errors=True)


class _MockAddress(logging.Handler):
    """Catches the address librdkafka's mock cluster listens on (it logs it at startup)."""

    def __init__(self) -> None:
        super().__init__()
        self.bootstrap: str | None = None

    def emit(self, rec: logging.LogRecord) -> None:
        m = re.search(r"Mock cluster enabled.* replaced with (\S+)", rec.getMessage())
        if m:
            self.bootstrap = m.group(1)


def self_cpu_seconds() -> float:
    """This (client) process's user+system CPU seconds, all threads: librdkafka's, and for the
    mock its in-process broker too."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def produce(conf: dict[str, Any], n: int, keep: list[Any] | None = None) -> float:
    """Seconds to produce n records and flush them. With `keep`, the producer is appended to it
    (a mock cluster lives as long as its producer).

    No per-record delivery callback: calling Python once per record costs the client ~20% of
    its rate (measured against the mock), for both sides alike. Client-level errors are
    collected by error_cb; that every record arrived is checked by reading them back
    (run_server compares the stored count with n)."""
    failures: list[Any] = []
    producer = Producer({**PRODUCER_CONF, **conf, "error_cb": failures.append})
    if keep is not None:
        keep.append(producer)
    # Warm-up: connection, metadata, InitProducerId and topic creation are not the rate.
    producer.produce(TOPIC, VALUE)
    if producer.flush(30) != 0:
        raise RuntimeError("warm-up record not delivered")
    send, poll = producer.produce, producer.poll
    cpu0 = self_cpu_seconds()
    t0 = time.perf_counter()
    for i in range(n - 1):
        try:
            send(TOPIC, VALUE)
        except BufferError:  # queue.buffering.max.messages in flight: wait for the broker
            while True:
                poll(0.005)
                try:
                    send(TOPIC, VALUE)
                    break
                except BufferError:
                    continue
        if not i & 0x3FFF:
            poll(0)
    left = producer.flush(120)
    elapsed = time.perf_counter() - t0
    CLIENT_CPU.append(self_cpu_seconds() - cpu0)
    if left or failures:
        raise RuntimeError(f"{left} undelivered, {len(failures)} failed: {failures[:3]}")
    return elapsed


CLIENT_CPU: list[float] = []  # client CPU seconds of each produce() span, in call order


# Consumer variants: librdkafka's defaults, and the same with fetch.queue.backoff.ms=10. With
# the default (1000 ms) librdkafka stops fetching for a second whenever its local queue holds
# more than queued.min.messages (100,000) records, counted over all partitions of the consumer
# queue; a fast broker fills it in a few fetches, the application drains it in ~0.3 s and then
# waits out the rest of the second. The variant shows what the broker can deliver.
CONSUMERS = {"default": {}, "backoff10": {"fetch.queue.backoff.ms": 10}}


def consume(bootstrap: str, conf: dict[str, Any] | None = None) -> tuple[int, float]:
    """(records, seconds) to read every partition of TOPIC from its low watermark to its high
    one with an assigned Consumer (no group)."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "bench-reader", "enable.auto.commit": False,
                         **(conf or {})})
    try:
        meta = consumer.list_topics(TOPIC, timeout=10)
        starts = []
        n = 0
        for p in meta.topics[TOPIC].partitions:
            low, high = consumer.get_watermark_offsets(TopicPartition(TOPIC, p), timeout=10)
            starts.append(TopicPartition(TOPIC, p, low))
            n += high - low
        t0 = time.perf_counter()
        consumer.assign(starts)
        got = 0
        deadline = time.monotonic() + 120
        while got < n and time.monotonic() < deadline:
            msgs = consumer.consume(num_messages=10_000, timeout=1.0)
            for m in msgs:
                if m.error() is not None:
                    raise RuntimeError(m.error())
            got += len(msgs)
        elapsed = time.perf_counter() - t0
    finally:
        consumer.close()
    if got < n:
        raise RuntimeError(f"read {got} of {n}")
    return n, elapsed


def run_mock(n: int) -> dict[str, float]:
    """Produce into the mock cluster, then read it back over its (loopback TCP) listener."""
    catcher = _MockAddress()
    logger = logging.getLogger("bench.mock")
    logger.addHandler(catcher)
    logger.setLevel(logging.INFO)
    keep: list[Any] = []
    try:
        produce_s = produce({"test.mock.num.brokers": 1, "logger": logger}, n, keep)
        produce_client_cpu_s = CLIENT_CPU[-1]
        if catcher.bootstrap is None:
            raise RuntimeError("mock cluster address not logged")
        out = {"produce_s": produce_s, "produce_client_cpu_s": produce_client_cpu_s}
        for name, conf in CONSUMERS.items():
            read, consume_s = consume(catcher.bootstrap, conf)
            out[f"consume_{name}_s"] = consume_s
            out[f"consumed_{name}"] = read
    finally:
        logger.removeHandler(catcher)
        keep.clear()
    return out


def run_server(policy: str, n: int) -> dict[str, float]:
    server = Server(policy)
    try:
        cpu0 = cpu_seconds(server.proc.pid)
        produce_s = produce({"bootstrap.servers": server.bootstrap}, n)
        out = {"produce_s": produce_s, "produce_server_cpu_s": cpu_seconds(server.proc.pid) - cpu0,
               "produce_client_cpu_s": CLIENT_CPU[-1]}
        for name, conf in CONSUMERS.items():
            cpu1 = cpu_seconds(server.proc.pid)
            read, consume_s = consume(server.bootstrap, conf)
            if read != n:
                raise RuntimeError(f"{read} records stored, {n} produced")
            out[f"consume_{name}_s"] = consume_s
            out[f"consumed_{name}"] = read
            out[f"consume_{name}_server_cpu_s"] = cpu_seconds(server.proc.pid) - cpu1
    finally:
        server.close()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--records", type=int, default=2_000_000)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--only", default="mock,interval,batch")
    args = ap.parse_args()
    n = args.records
    which = [w.strip() for w in args.only.split(",") if w.strip()]
    runs: dict[str, list[dict[str, float]]] = {w: [] for w in which}
    for _ in range(args.repeat):
        for w in which:
            runs[w].append(run_mock(n) if w == "mock" else run_server(w, n))

    def best(w: str, key: str) -> dict[str, float]:
        return min(runs[w], key=lambda r: r[key])

    mock_rate = n / best("mock", "produce_s")["produce_s"] if "mock" in runs else None
    print(f"confluent-kafka {ck_version()[0]}, {n:,} x 100 B records, linger.ms=5, acks=all, idempotence, "
          f"best of {args.repeat}")
    print(f"{'scenario':<44} {'seconds':>8} {'records/s':>12} {'vs mock':>8} {'server CPU s':>13} {'client CPU s':>13}")
    rows = []
    for w in which:
        r = best(w, "produce_s")
        rate = n / r["produce_s"]
        ratio = f"{rate / mock_rate:.2f}x" if mock_rate else "-"
        label = "produce, librdkafka mock cluster" if w == "mock" else f"produce, headwater flush.policy={w}"
        cpu = f"{r['produce_server_cpu_s']:.2f}" if "produce_server_cpu_s" in r else "-"
        print(f"{label:<44} {r['produce_s']:>8.2f} {rate:>12,.0f} {ratio:>8} {cpu:>13} {r['produce_client_cpu_s']:>13.2f}")
        rows.append({"scenario": w, "op": "produce", "records_per_s": rate})
    for name in CONSUMERS:
        def read_rate(r: dict[str, float], name: str = name) -> float:
            return r[f"consumed_{name}"] / r[f"consume_{name}_s"]

        mock_read = max(map(read_rate, runs["mock"])) if "mock" in runs else None
        for w in which:
            r = max(runs[w], key=read_rate)
            rate = read_rate(r)
            ratio = f"{rate / mock_read:.2f}x" if mock_read else "-"
            where = "librdkafka mock cluster" if w == "mock" else f"headwater ({w} run)"
            cpu_key = f"consume_{name}_server_cpu_s"
            cpu = f"{r[cpu_key]:.2f}" if cpu_key in r else "-"
            label = f"consume {name}, {where}"
            print(f"{label:<44} {r[f'consume_{name}_s']:>8.2f} {rate:>12,.0f} {ratio:>8} {cpu:>13}"
                  f"  ({int(r[f'consumed_{name}']):,} records)")
            rows.append({"scenario": w, "op": f"consume_{name}", "records_per_s": rate})
    print(json.dumps({"records": n, "runs": runs, "best": rows}))


if __name__ == "__main__":
    main()
