"""kcat against the wire server: metadata, produce/consume with every codec, balanced consumer.

Goal: the Debian kcat (1.7.1, linking librdkafka 2.0.2, whose feature checks match exact API
versions, kafka-spec h.2) works against `headwater` unchanged. Method: run the real `kcat`
binary in a subprocess against the `server` fixture, every run bounded by a timeout, and check
its JSON output and the broker's own state (batch codecs on disk, committed offsets).

kcat is installed by `.ci/run`; without it these tests skip locally but fail when `CI` or
`HEADWATER_REQUIRE_ORACLES` (exported by `.ci/run`) is set.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from typing import Any

import pytest

from headwater.client.message import TopicPartition

KCAT = shutil.which("kcat")
if KCAT is None:
    if os.environ.get("CI") or os.environ.get("HEADWATER_REQUIRE_ORACLES"):
        raise RuntimeError("kcat is not on PATH: .ci/run installs the Debian package `kcat`")
    pytest.skip("kcat is not installed (apt-get install kcat)", allow_module_level=True)

TIMEOUT_S = 30

# RecordBatch attributes & 7 (kafka-spec a.2).
CODECS = {"none": 0, "gzip": 1, "snappy": 2, "lz4": 3, "zstd": 4}


def kcat(bootstrap: str, *args: str, stdin: str | None = None, timeout: float = TIMEOUT_S) -> str:
    """Run kcat with `args`; return its stdout, failing the test on a non-zero exit."""
    assert KCAT is not None
    cmd = [KCAT, "-b", bootstrap, "-X", "socket.timeout.ms=10000", *args]
    proc = subprocess.run(cmd, input=stdin, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{' '.join(cmd)} exited {proc.returncode}: {proc.stderr}"
    return proc.stdout


def json_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_kcat_metadata_json(broker: Any, bootstrap: str) -> None:
    broker.create_topic("kc-meta", partitions=3)
    meta = json.loads(kcat(bootstrap, "-L", "-J"))
    assert meta["controllerid"] == 1
    assert meta["brokers"] == [{"id": 1, "name": bootstrap}]
    topics = {t["topic"]: t for t in meta["topics"]}
    assert "kc-meta" in topics
    parts = sorted(topics["kc-meta"]["partitions"], key=lambda p: p["partition"])
    assert [p["partition"] for p in parts] == [0, 1, 2]
    for p in parts:
        assert p["leader"] == 1
        assert p["replicas"] == [{"id": 1}] and p["isrs"] == [{"id": 1}]
        assert "error" not in p

    # One topic by name (-t): only that topic, same answer.
    one = json.loads(kcat(bootstrap, "-L", "-J", "-t", "kc-meta"))
    assert [t["topic"] for t in one["topics"]] == ["kc-meta"]
    assert len(one["topics"][0]["partitions"]) == 3


@pytest.mark.parametrize("codec", list(CODECS))
def test_kcat_produce_consume_codec(broker: Any, bootstrap: str, codec: str) -> None:
    topic = f"kc-{codec}"
    n = 300
    lines = [f"key-{i % 7}:value-{i:04d}-{'x' * (i % 50)}" for i in range(n)]
    kcat(bootstrap, "-P", "-t", topic, "-p", "0", "-K", ":", "-z", codec,
         "-X", "linger.ms=20", stdin="\n".join(lines) + "\n")

    # The batches on disk carry the codec kcat was asked for (the broker keeps the producer's
    # compression, as Kafka does when compression.type=producer).
    log = broker.get_log(topic, 0)
    assert log.high_watermark == n
    seen_codecs = set()
    offset = 0
    while offset < n:
        with log.read(offset, 1 << 20) as result:
            for batch, view in result.batches():
                seen_codecs.add(batch.compression)
                offset = batch.last_offset + 1
                view.release()
    assert seen_codecs == {CODECS[codec]}

    out = json_lines(kcat(bootstrap, "-C", "-t", topic, "-p", "0", "-o", "beginning", "-e", "-J"))
    assert [m["offset"] for m in out] == list(range(n))
    got = [f"{m['key']}:{m['payload']}" for m in out]
    assert got == lines
    assert all(m["partition"] == 0 and m["tstype"] == "create" for m in out)


def test_kcat_consumes_embedded_records_with_null_keys(broker: Any, bootstrap: str) -> None:
    """A null key stays null on the wire (kcat's JSON `null`), distinct from an empty key."""
    broker.create_topic("kc-null", partitions=1)
    p = broker.producer()
    p.produce("kc-null", b"no-key", partition=0)
    p.produce("kc-null", b"empty-key", key=b"", partition=0)
    p.flush(10)
    out = json_lines(kcat(bootstrap, "-C", "-t", "kc-null", "-o", "beginning", "-e", "-J"))
    assert [(m["key"], m["payload"]) for m in out] == [(None, "no-key"), ("", "empty-key")]


def test_kcat_balanced_consumer_reads_everything(broker: Any, bootstrap: str) -> None:
    topic, group, n = "kc-group", "kc-grp", 400
    broker.create_topic(topic, partitions=4)
    p = broker.producer()
    for i in range(n):
        p.produce(topic, f"v{i}".encode(), key=f"k{i}".encode())
    p.flush(10)
    ends = {i: broker.get_log(topic, i).high_watermark for i in range(4)}
    assert sum(ends.values()) == n and all(ends.values()), ends

    # -G joins the group; -e exits once every assigned partition reached its end; kcat then
    # closes the consumer, which commits the offsets it consumed (enable.auto.commit).
    out = json_lines(kcat(bootstrap, "-G", group, "-X", "auto.offset.reset=earliest",
                          "-X", "session.timeout.ms=6000", "-e", "-J", topic))
    assert sorted(m["payload"] for m in out) == sorted(f"v{i}" for i in range(n))
    for part in range(4):
        offsets = [m["offset"] for m in out if m["partition"] == part]
        assert offsets == list(range(ends[part])), part

    c = broker.consumer({"group.id": group})
    try:
        committed = c.committed([TopicPartition(topic, i) for i in range(4)], timeout=10)
    finally:
        c.close()
    assert {tp.partition: tp.offset for tp in committed} == ends

    # A second run of the same group starts from the commits, not from auto.offset.reset:
    # it reads only what was produced since.
    for i in range(n, n + 20):
        p.produce(topic, f"v{i}".encode(), key=f"k{i}".encode())
    p.flush(10)
    again = json_lines(kcat(bootstrap, "-G", group, "-X", "auto.offset.reset=earliest",
                            "-e", "-J", topic))
    assert sorted(m["payload"] for m in again) == sorted(f"v{i}" for i in range(n, n + 20))
