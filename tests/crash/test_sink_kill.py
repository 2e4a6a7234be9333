"""Process crash: SIGKILL an ExactlyOnceSink applying a stream to SQLite, restart, repeat.

Goal: ExactlyOnceSink's promise (client/sink.py) under kill -9 at any instant: the final
database equals applying every record exactly once, however often the applier died: inside a
transaction, between transactions, during startup (imports, broker recovery, group join).

Method: the parent produces N records over 3 partitions of an embedded broker, each adding
`amount` to its key's total. About 8% carry a `headwater.dedup.key` header and are produced a
second time at a later offset (an upstream retry); they must count once. The others carry no
key, so only the stored offsets protect them (the seen-store would otherwise hide an offsets
bug). The parent closes the broker (its data directory admits one process at a time), then
runs this file as a child, one at a time: the child opens the broker, a consumer and a sink
over one SQLite file (WAL, synchronous=FULL) and applies batches of a random size (1-64), two
effects per record (UPDATE totals += amount; INSERT a row). The parent SIGKILLs it 0-120 ms
after it reports READY (assigned and positioned: a full run takes ~0.2 s), or, in 15% of the
starts, 0-400 ms after starting it. After 8 kills in a round a child may finish; a round ends
when a child reports DONE (stored offsets at the log end). Rounds alternate a subscribed
consumer (a static group member, so a restart need not wait for the dead one's session to
expire) and an assigned one; a third round runs if time allows (bounded total, ~15 s).

Check: per key, the total equals the sum of the distinct records' amounts and the row count
their number; every record id appears once; the stored offsets are the log ends. A mutant
that stores offsets in a second transaction fails this test. The seed is printed;
HEADWATER_CRASH_SEED replays the kill schedule (timings still vary).
"""

from __future__ import annotations

import json
import os
import random
import select
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

TOPIC = "events"
PARTITIONS = 3
KEYS = 7
BROKER_CONFIG = {"group.initial.rebalance.delay.ms": 0, "group.min.session.timeout.ms": 100}


def seed() -> int:
    return int(os.environ.get("HEADWATER_CRASH_SEED") or random.SystemRandom().getrandbits(32))


def produce_stream(data_dir: Path, n: int, rng: random.Random) -> dict[str, tuple[int, int]]:
    """N distinct records (plus re-sent duplicates); returns key -> (total, count) expected."""
    from headwater.client import Broker

    expected: dict[str, list[int]] = {}
    with Broker(str(data_dir), BROKER_CONFIG) as broker:
        broker.create_topic(TOPIC, PARTITIONS)
        producer = broker.producer()
        resend: list[tuple[bytes, Any, int, str]] = []
        for uid in range(n):
            key = f"k{rng.randrange(KEYS)}"
            amount = rng.randrange(1, 1000)
            value = json.dumps({"uid": uid, "key": key, "amount": amount}).encode()
            partition = rng.randrange(PARTITIONS)
            # Only records that will be re-sent carry a dedup key: the others rely on the
            # stored offsets alone (the seen-store would otherwise hide an offsets bug).
            headers = None
            if rng.random() < 0.08:
                headers = [("headwater.dedup.key", f"uid-{uid}".encode())]
                resend.append((value, headers, partition, key))
            producer.produce(TOPIC, value=value, key=key.encode(), partition=partition, headers=headers)
            total, count = expected.get(key, [0, 0])
            expected[key] = [total + amount, count + 1]
            if resend and rng.random() < 0.1:  # the retry lands a little later in the stream
                v, h, p, k = resend.pop(0)
                producer.produce(TOPIC, value=v, key=k.encode(), partition=p, headers=h)
        for v, h, p, k in resend:
            producer.produce(TOPIC, value=v, key=k.encode(), partition=p, headers=h)
        producer.flush(10)
        producer.close()
    return {k: (t, c) for k, (t, c) in expected.items()}


def run_child(data_dir: Path, db: Path, mode: str, child_seed: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, __file__, str(data_dir), str(db), mode, str(child_seed)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )


def stored_progress(db: Path) -> int:
    """Sum of the stored offsets (0 when the sink has not committed yet)."""
    if not db.exists():
        return 0
    conn = sqlite3.connect(str(db), timeout=10)
    try:
        row = conn.execute("SELECT COALESCE(SUM(committed_offset), 0) FROM headwater_consumer_offsets").fetchone()
        return int(row[0])
    except sqlite3.OperationalError:  # the table is not there yet: killed before creating it
        return 0
    finally:
        conn.close()


def wait_ready(child: subprocess.Popen[bytes], timeout: float) -> bool:
    """Wait for the child's READY line (its sink is about to poll); False if it exited."""
    assert child.stdout is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([child.stdout], [], [], 0.05)
        if ready:
            line = child.stdout.readline()
            return line.startswith((b"READY", b"DONE"))
    raise AssertionError(f"child not ready within {timeout}s")


def run_round(tmp: Path, mode: str, n: int, rng: random.Random, max_kills: int = 8, max_children: int = 40) -> dict[str, Any]:
    data_dir, db = tmp / "data", tmp / "sink.db"
    expected = produce_stream(data_dir, n, rng)
    kills = partial_kills = startup_kills = 0
    end_total: int | None = None
    for _ in range(max_children):
        child = run_child(data_dir, db, mode, rng.getrandbits(32))
        if kills >= max_kills:
            delay = 60.0  # bounded time: this one may finish
        elif rng.random() < 0.15:
            delay = rng.uniform(0.0, 0.4)  # anywhere in startup: imports, recovery, the first join
        else:
            wait_ready(child, 30)
            # While applying: a child that starts from scratch applies the whole stream in
            # ~0.13-0.17 s here, and each restart has less left, so a longer window lets the
            # round end after one or two kills (the assertions below need two a round).
            delay = rng.uniform(0.0, 0.07)
        try:
            out, err = child.communicate(timeout=delay)
        except subprocess.TimeoutExpired:
            child.send_signal(signal.SIGKILL)
            child.communicate(timeout=30)
            kills += 1
            progress = stored_progress(db)
            if progress == 0:
                startup_kills += 1
            elif end_total is None or progress < end_total:
                partial_kills += 1
            continue
        assert child.returncode == 0, f"child failed ({child.returncode}):\n{err.decode()[-3000:]}"
        if b"DONE" in out:
            end_total = int(out.split(b"DONE")[1].split()[0])
            break
    else:
        raise AssertionError(f"{mode}: no child finished in {max_children} starts")
    conn = sqlite3.connect(str(db))
    try:
        totals = {k: (t, c) for k, t, c in conn.execute("SELECT key, total, n FROM totals")}
        rows = {k: (t, c) for k, t, c in conn.execute("SELECT key, SUM(amount), COUNT(*) FROM applied GROUP BY key")}
        uids = conn.execute("SELECT COUNT(*), COUNT(DISTINCT uid) FROM applied").fetchone()
        offsets = sum(o for (o,) in conn.execute("SELECT committed_offset FROM headwater_consumer_offsets"))
    finally:
        conn.close()
    assert totals == expected, f"{mode}: totals {totals} != expected {expected}"
    assert rows == expected, f"{mode}: rows {rows} != expected {expected}"
    assert uids == (n, n), f"{mode}: {uids[0]} rows for {uids[1]} distinct record ids, of {n}"
    assert offsets == end_total
    return {"kills": kills, "partial_kills": partial_kills}


def test_sink_sigkill_exactly_once(tmp_path: Path, figures: Any) -> None:
    s = seed()
    rng = random.Random(s)
    started = time.monotonic()
    kills = partial = 0
    rounds = 0
    for i, mode in enumerate(["subscribe", "assign", "subscribe"]):
        if i >= 2 and time.monotonic() - started > 8:
            break  # bounded time: two rounds already cover both modes
        got = run_round(tmp_path / f"round-{i}", mode, 1500, rng)
        kills += got["kills"]
        partial += got["partial_kills"]
        rounds += 1
    figures("sink_kill9", rounds=rounds, kills=kills, mid_stream_kills=partial, seconds=round(time.monotonic() - started, 1), seed=s)
    assert kills >= 2 * rounds, f"seed {s}: only {kills} kills; the schedule never hit the applier"
    assert partial >= 2, f"seed {s}: only {partial} kills with part of the stream applied"


# ---------------------------------------------------------------------------- the child


def child_main(data_dir: str, db: str, mode: str, child_seed: int) -> None:
    """Apply the stream to `db` until the stored offsets reach the log end, then print DONE."""
    from headwater.client import Broker, TopicPartition
    from headwater.client.sink import ExactlyOnceSink, SQLiteStore

    rng = random.Random(child_seed)
    store = SQLiteStore(db)
    store.connection.execute("CREATE TABLE IF NOT EXISTS totals (key TEXT PRIMARY KEY, total INTEGER NOT NULL, n INTEGER NOT NULL)")
    store.connection.execute("CREATE TABLE IF NOT EXISTS applied (uid INTEGER NOT NULL, key TEXT NOT NULL, amount INTEGER NOT NULL, kafka_offset INTEGER NOT NULL)")

    def apply(conn: sqlite3.Connection, messages: list[Any]) -> None:
        for m in messages:
            rec = json.loads(m.value())
            conn.execute(
                "INSERT INTO totals (key, total, n) VALUES (?, ?, 1) "
                "ON CONFLICT (key) DO UPDATE SET total = total + excluded.total, n = n + 1",
                (rec["key"], rec["amount"]),
            )
            conn.execute("INSERT INTO applied VALUES (?, ?, ?, ?)", (rec["uid"], rec["key"], rec["amount"], m.offset()))

    with Broker(data_dir, BROKER_CONFIG) as broker:
        ends = {(TOPIC, p): broker.get_log(TOPIC, p).log_end_offset for p in range(PARTITIONS)}
        consumer = broker.consumer({
            "group.id": "sink-crash", "enable.auto.commit": False, "auto.offset.reset": "latest",
            # Static membership: a restarted applier takes its dead predecessor's place at
            # once, instead of waiting session.timeout.ms for it to expire.
            "group.instance.id": "applier-1", "session.timeout.ms": 1000, "heartbeat.interval.ms": 50,
        })
        kwargs: dict[str, Any] = {"topics": [TOPIC]} if mode == "subscribe" else {"partitions": [TopicPartition(TOPIC, p) for p in range(PARTITIONS)]}
        sink = ExactlyOnceSink(consumer, store, apply, batch_size=rng.randint(1, 64), dedup_header="headwater.dedup.key", **kwargs)
        ready = False
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            sink.poll(0.05)
            if not ready and sink.owned():
                print("READY", flush=True)  # assigned and positioned: applying starts now
                ready = True
            stored = store.load_offsets(sink.group_id, ends)
            if stored == ends:
                print(f"DONE {sum(ends.values())}", flush=True)
                break
        consumer.close()
    store.close()


if __name__ == "__main__":
    child_main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]))
