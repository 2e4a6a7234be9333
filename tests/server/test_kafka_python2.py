"""kafka-python 2.0.2 against the wire server: producer, group consumer with commits, admin.

Goal: the classic kafka-python 2.0.2 (ApiVersions v0, then a broker release *inferred* from
the advertised ranges, then hard-coded request versions: Metadata v1, Produce v7, Fetch v4,
JoinGroup v2, OffsetCommit v2, OffsetFetch v1, FindCoordinator v0; kafka-spec h.2 item 4)
works unchanged. Method: the main environment has kafka-python 3.x, so 2.0.2 lives in its own
directory (`.ci/run` installs it there and exports HEADWATER_KAFKA_PYTHON2) and runs in a
subprocess with that directory first on PYTHONPATH. The script prints one JSON document; the
test checks it and the broker's own state (log contents, committed offsets, topic list).

Without HEADWATER_KAFKA_PYTHON2 these tests skip locally but fail when `CI` or
`HEADWATER_REQUIRE_ORACLES` (exported by `.ci/run`) is set.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from typing import Any

import pytest

from headwater.client.message import TopicPartition

KP2_DIR = os.environ.get("HEADWATER_KAFKA_PYTHON2", "")
if not KP2_DIR or not os.path.isdir(os.path.join(KP2_DIR, "kafka")):
    if os.environ.get("CI") or os.environ.get("HEADWATER_REQUIRE_ORACLES"):
        raise RuntimeError(
            "HEADWATER_KAFKA_PYTHON2 must name a directory holding kafka-python 2.0.2 "
            "(.ci/run: pip install --target DIR kafka-python==2.0.2)"
        )
    pytest.skip(
        "set HEADWATER_KAFKA_PYTHON2 to a `pip install --target` dir of kafka-python==2.0.2",
        allow_module_level=True,
    )

TIMEOUT_S = 60

SCRIPT = textwrap.dedent(
    """
    import json, sys, time
    import kafka
    from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
    from kafka.admin import NewTopic

    assert kafka.__version__ == "2.0.2", kafka.__version__
    bootstrap, topic, doomed, group, n = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
    out = {}

    admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10000)
    out["admin_version"] = list(admin.config["api_version"])
    resp = admin.create_topics([NewTopic(topic, 3, 1), NewTopic(doomed, 2, 1)], timeout_ms=10000)
    out["create_errors"] = [[name, code] for name, code, *_ in resp.topic_errors]
    out["topics_after_create"] = sorted(admin.list_topics())

    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", compression_type="zstd",
                             linger_ms=5, retries=3)
    out["producer_version"] = list(producer.config["api_version"])
    futures = [
        producer.send(topic, key=b"k%d" % (i % 5), value=b"v%d" % i,
                      headers=[("h", b"%d" % i)], timestamp_ms=1_700_000_000_000 + i)
        for i in range(n)
    ]
    producer.flush(timeout=20)
    out["produced"] = [[f.get(timeout=10).partition, f.get(timeout=10).offset] for f in futures]
    producer.close(timeout=10)

    consumer = KafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=group,
                             auto_offset_reset="earliest", enable_auto_commit=False,
                             session_timeout_ms=10000, heartbeat_interval_ms=1000)
    records = []
    deadline = time.monotonic() + 30
    while len(records) < n and time.monotonic() < deadline:
        for recs in consumer.poll(timeout_ms=500).values():
            records.extend(recs)
    consumer.commit()
    out["consumed"] = [[r.partition, r.offset, r.key.decode(), r.value.decode(),
                        [[k, v.decode()] for k, v in r.headers], r.timestamp] for r in records]
    out["committed"] = {str(p): consumer.committed(TopicPartition(topic, p)) for p in range(3)}
    consumer.close()

    out["groups"] = sorted(g for g, _ in admin.list_consumer_groups())
    offsets = admin.list_consumer_group_offsets(group)
    out["group_offsets"] = {str(tp.partition): om.offset for tp, om in offsets.items()}
    resp = admin.delete_topics([doomed], timeout_ms=10000)
    out["delete_errors"] = [[name, code] for name, code in resp.topic_error_codes]
    out["topics_after_delete"] = sorted(admin.list_topics())
    admin.close()
    print(json.dumps(out))
    """
)


def run_kafka_python2(tmp_path: Any, *args: str) -> dict[str, Any]:
    script = tmp_path / "kp2_script.py"
    script.write_text(SCRIPT)
    env = dict(os.environ, PYTHONPATH=KP2_DIR)
    proc = subprocess.run(
        [sys.executable, str(script), *args], capture_output=True, text=True, env=env, timeout=TIMEOUT_S
    )
    assert proc.returncode == 0, f"kafka-python 2.0.2 script failed ({proc.returncode}):\n{proc.stderr[-4000:]}"
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_kafka_python2_produce_group_consume_admin(broker: Any, bootstrap: str, tmp_path: Any) -> None:
    topic, doomed, group, n = "kp2-topic", "kp2-doomed", "kp2-group", 300
    out = run_kafka_python2(tmp_path, bootstrap, topic, doomed, group, str(n))

    # The release it inferred lets it use Produce v7 and zstd (needs >= 2.1, kafka-spec h.2).
    assert tuple(out["producer_version"]) >= (2, 1, 0)
    assert out["admin_version"] == out["producer_version"]

    # Admin: both topics created (error code 0), listed, one deleted, gone from the listing.
    assert sorted(out["create_errors"]) == [[doomed, 0], [topic, 0]]
    assert {topic, doomed} <= set(out["topics_after_create"])
    assert out["delete_errors"] == [[doomed, 0]]
    assert topic in out["topics_after_delete"] and doomed not in out["topics_after_delete"]
    assert doomed not in broker.list_topics()
    assert broker.describe_topic(topic).partitions == 3

    # Producer: every record acknowledged at a distinct (partition, offset), offsets dense.
    produced = out["produced"]
    assert len({tuple(x) for x in produced}) == n
    ends = {p: broker.get_log(topic, p).high_watermark for p in range(3)}
    assert sum(ends.values()) == n
    for p in range(3):
        assert sorted(o for q, o in produced if q == p) == list(range(ends[p]))

    # Consumer: each record exactly once, in partition order, key/value/headers/timestamp intact.
    consumed = out["consumed"]
    assert len(consumed) == n
    by_value = {c[3]: c for c in consumed}
    assert len(by_value) == n
    for i, (part, offset) in enumerate(produced):
        c = by_value[f"v{i}"]
        assert c[:3] == [part, offset, f"k{i % 5}"]
        assert c[4] == [["h", str(i)]]
        assert c[5] == 1_700_000_000_000 + i
    for p in range(3):
        offsets = [c[1] for c in consumed if c[0] == p]
        assert offsets == list(range(ends[p]))

    # Commits: what the client read back, what the admin lists, what the broker stores.
    assert out["committed"] == {str(p): ends[p] for p in range(3)}
    assert group in out["groups"]
    assert out["group_offsets"] == {str(p): ends[p] for p in range(3)}
    c = broker.consumer({"group.id": group})
    try:
        committed = c.committed([TopicPartition(topic, p) for p in range(3)], timeout=10)
    finally:
        c.close()
    assert {tp.partition: tp.offset for tp in committed} == ends
