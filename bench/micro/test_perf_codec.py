"""crc32c and batch encode against their baselines (PyPI crc32c, kafka-python, aiokafka)."""

from __future__ import annotations

import pytest

import headwater
from headwater.record import build_batch, decode_records, parse_batch_header

CRC_SIZES = [64, 4096, 1 << 20]


@pytest.mark.parametrize("nbytes", CRC_SIZES, ids=["64B", "4KiB", "1MiB"])
@pytest.mark.parametrize("impl", ["headwater", "pypi"])
def test_crc32c(benchmark, workloads, impl, nbytes):
    data = workloads.blob(nbytes)
    if impl == "pypi":
        crc32c = pytest.importorskip("crc32c")
        fn = crc32c.crc32c
    else:
        fn = headwater.crc32c
    benchmark.group = f"crc32c {nbytes} B"
    benchmark.extra_info["bytes"] = nbytes
    result = benchmark(fn, data)
    assert result == headwater.crc32c(data)


@pytest.mark.parametrize("impl", ["headwater", "aiokafka", "kafka-python"])
def test_build_batch(benchmark, workloads, size, impl):
    n = size["records"]
    vals = workloads.values(n)
    ts = workloads.TIMESTAMP
    expected = build_batch(vals, timestamp=ts)
    if impl == "headwater":
        fn = lambda: build_batch(vals, timestamp=ts)  # noqa: E731
    elif impl == "aiokafka":
        if workloads.aiokafka_builder_class() is None:
            pytest.skip("aiokafka Cython builder not installed")
        fn = lambda: workloads.aiokafka_build(vals, ts)  # noqa: E731
    else:
        pytest.importorskip("kafka")
        fn = lambda: workloads.kafka_python_build(vals, ts)  # noqa: E731
    benchmark.group = f"build_batch {n} x 100 B"
    benchmark.extra_info["records"] = n
    if impl == "kafka-python":
        out = benchmark.pedantic(fn, rounds=3, iterations=1)
    else:
        out = benchmark(fn)
    # Same records, same bytes: everything the CRC covers (partitionLeaderEpoch may differ).
    assert out[21:] == expected[21:]


def test_decode_records(benchmark, workloads, size):
    n = size["records"]
    batch = build_batch(workloads.values(n), timestamp=workloads.TIMESTAMP)
    h = parse_batch_header(batch)
    section = memoryview(batch)[61:]
    benchmark.group = f"decode {n} x 100 B"
    recs = benchmark(decode_records, section, h.records_count, h.base_offset, h.base_timestamp)
    assert len(recs) == n and recs[-1].value == workloads.values(n)[-1]
