"""read_committed vs read_uncommitted consumption on a topic where 10% of transactions aborted
(issue 5 performance bar: read_committed costs at most 10%).

8 partitions; per partition 2 transactional producers interleave batches of 250 records of
100 B; each transaction is 1,000 records (4 batches) ended by a COMMIT or (every 10th) ABORT
marker. Figures: the time to consume the whole topic with consume_batch() (columns) and with
consume() per Message, at each isolation level, best of 5 (interleaved runs).

    python bench/txn_consume.py        # TXNS=200 transactions per partition (1.6 M offsets)
"""
import os, sys, tempfile, time, shutil
import headwater
from headwater import record
P = 8
TXNS = int(os.environ.get("TXNS", "200"))  # per partition -> 200k records per partition
VALUE = b"x" * 100
TS = 1_700_000_000_000
tmp = tempfile.mkdtemp(prefix="hw-btx-", dir="/tmp")
try:
    with headwater.Broker(os.path.join(tmp, "d"), {"flush.policy": "none"}) as b:
        b.create_topic("t", partitions=P)
        for part in range(P):
            plog = b.get_log("t", part)
            seq = {}
            for t in range(TXNS):
                pid = 1000 + part * 2 + (t % 2)
                for _ in range(4):
                    s = seq.get(pid, 0)
                    raw = record.build_batch([VALUE] * 250, timestamp=TS, producer_id=pid, producer_epoch=0,
                                             base_sequence=s, attributes=0x10)
                    seq[pid] = s + 250
                    plog.append_batch(raw)
                plog.write_txn_marker(pid, 0, t % 10 != 9, 0, TS)
        total = sum(b.get_log("t", i).log_end_offset for i in range(P))
        def run_cols(iso):
            c = b.consumer({"group.id": None, "enable.auto.commit": False, "isolation.level": iso})
            c.assign([headwater.TopicPartition("t", i, headwater.OFFSET_BEGINNING) for i in range(P)])
            got = 0; t = time.perf_counter()
            while True:
                bs = c.consume_batch()
                if not bs and all(c.position([headwater.TopicPartition("t", i)])[0].offset >= b.get_log("t", i).log_end_offset for i in range(P)):
                    break
                for cb in bs:
                    got += len(cb); cb.release()
            dt = time.perf_counter() - t; c.close(); return dt, got
        def run_msgs(iso):
            c = b.consumer({"group.id": None, "enable.auto.commit": False, "isolation.level": iso})
            c.assign([headwater.TopicPartition("t", i, headwater.OFFSET_BEGINNING) for i in range(P)])
            got = 0; t = time.perf_counter()
            while True:
                ms = c.consume(10000, 0.01)
                got += len(ms)
                if not ms:
                    break
            dt = time.perf_counter() - t; c.close(); return dt, got
        for name, fn in (("consume_batch (columns)", run_cols), ("consume() per Message", run_msgs)):
            res = {"read_uncommitted": [], "read_committed": []}
            for _ in range(5):
                for iso in res:
                    res[iso].append(fn(iso))
            ru = min(res["read_uncommitted"]); rc = min(res["read_committed"])
            print(f"{name}: log {total:,} offsets; read_uncommitted {ru[1]:,} recs in {ru[0]*1000:.1f} ms "
                  f"({total/ru[0]/1e6:.2f} M offsets/s); read_committed {rc[1]:,} recs in {rc[0]*1000:.1f} ms "
                  f"({total/rc[0]/1e6:.2f} M offsets/s); read_committed time / read_uncommitted time = {rc[0]/ru[0]:.3f} "
                  f"(bar <= 1.10: {'PASS' if rc[0] / ru[0] <= 1.10 else 'MISS'})", flush=True)
finally:
    shutil.rmtree(tmp, ignore_errors=True)
