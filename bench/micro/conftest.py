"""pytest-benchmark smoke suite: the report's cases at small sizes (CI runs it, < 60 s).

Sizes are small unless HEADWATER_BENCH_FULL=1 [TigerBeetle bench.zig]. Inputs come from
bench/benchmarks/_workloads.py, the same seeded generators asv and bench/report.py use.

    pytest bench/micro -q                      # smoke (CI)
    pytest bench/micro --benchmark-group-by=group --benchmark-columns=min,median,ops
"""

from __future__ import annotations

import os
import sys

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "benchmarks"))

import _workloads  # noqa: E402
import pytest  # noqa: E402

SMALL = {"records": 1_000, "appends": 20, "read_records": 100_000, "crc_bytes": [64, 4096, 1 << 20]}
LARGE = {"records": 10_000, "appends": 100, "read_records": 1_000_000, "crc_bytes": [64, 4096, 1 << 20]}


@pytest.fixture(scope="session")
def size() -> dict:
    return LARGE if _workloads.full() else SMALL


@pytest.fixture(scope="session")
def workloads():  # noqa: ANN201
    return _workloads


@pytest.fixture()
def scratch():  # noqa: ANN201
    with _workloads.scratch_dir("hw-micro-") as d:
        yield d
