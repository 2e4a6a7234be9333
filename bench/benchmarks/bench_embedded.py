"""The embedded broker (issue 3): produce() per record, produce_batch, consume_batch and
consume() per Message, 100 B values into 8 partitions, flush.policy=interval. History across
commits; bench/report_embedded.py measures the same with baselines and bars.
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

RECORDS = 400_000 if W.full() else 100_000


class _Broker:
    timeout = 120
    number = 1
    repeat = 5

    def setup(self, *args: object) -> None:
        import headwater

        self.hw = headwater
        self.dir = tempfile.mkdtemp(prefix="hw-asv-", dir=W.tmp_root())
        self.broker = headwater.Broker(os.path.join(self.dir, "b"), {"flush.policy": "interval"})
        self.broker.create_topic("t", partitions=8)

    def teardown(self, *args: object) -> None:
        self.broker.close()
        shutil.rmtree(self.dir, ignore_errors=True)


class Produce(_Broker):
    """produce() from a Python loop (linger.ms=100), and produce_batch of 9,000-record lists,
    idempotence on and off."""

    params = (["produce", "produce_batch"], [True, False])
    param_names = ["api", "idempotence"]

    def setup(self, api: str, idempotence: bool) -> None:
        super().setup()
        self.value = W.values(1)[0]
        self.batch = W.values(9_000)
        self.producer = self.broker.producer({"linger.ms": 100, "enable.idempotence": idempotence})

    def teardown(self, api: str, idempotence: bool) -> None:
        self.producer.close()
        super().teardown()

    def time_produce(self, api: str, idempotence: bool) -> int:
        p = self.producer
        if api == "produce":
            f = p.produce
            v = self.value
            for _ in range(RECORDS):
                f("t", v)
            sent = RECORDS
        else:
            sent = 0
            i = 0
            while sent < RECORDS:
                sent += p.produce_batch("t", self.batch, partition=i % 8)
                i += 1
        p.flush()
        return sent


class Consume(_Broker):
    """Read RECORDS records back: consume_batch (columns) and consume() per Message."""

    params = (["consume_batch", "consume"],)
    param_names = ["api"]

    def setup(self, api: str) -> None:
        super().setup()
        p = self.broker.producer({"linger.ms": 100})
        per = RECORDS // 8
        for i in range(8):
            p.produce_batch("t", W.values(per), partition=i)
        p.flush()
        p.close()
        self.total = per * 8

    def time_consume(self, api: str) -> int:
        hw = self.hw
        c = self.broker.consumer({"group.id": None, "enable.auto.commit": False})
        c.assign([hw.TopicPartition("t", i, hw.OFFSET_BEGINNING) for i in range(8)])
        got = 0
        while got < self.total:
            if api == "consume_batch":
                for cb in c.consume_batch():
                    got += len(cb)
                    cb.release()
            else:
                got += len(c.consume(10_000, 1.0))
        c.close()
        return got
