"""RecordBatch v2 build and decode, records/batch [1, 100, 1000] of 100 B values, against
kafka-python's and aiokafka's DefaultRecordBatchBuilder on the same records."""

from __future__ import annotations

try:
    from . import _asv_path  # noqa: F401
except ImportError:
    import _asv_path  # noqa: F401

import _workloads as W


class BuildBatch:
    params = ([1, 100, 1000], ["native", "pure", "aiokafka", "kafka-python"])
    param_names = ["records", "impl"]

    def setup(self, n: int, impl: str) -> None:
        self.values = W.values(n)
        if impl in ("native", "pure"):
            if impl == "native":
                from headwater._native import _native as m
            else:
                from headwater import _pure as m
            self.fn = lambda: m.build_batch(self.values, timestamp=W.TIMESTAMP)
        elif impl == "aiokafka":
            if W.aiokafka_builder_class() is None:
                raise NotImplementedError("aiokafka not installed")
            self.fn = lambda: W.aiokafka_build(self.values)
        else:
            try:
                import kafka  # noqa: F401
            except ImportError as exc:
                raise NotImplementedError(str(exc)) from exc
            self.fn = lambda: W.kafka_python_build(self.values)
        from headwater._native import _native

        self.expected = _native.build_batch(self.values, timestamp=W.TIMESTAMP)[21:]

    def time_build(self, n: int, impl: str) -> int:
        return len(self.fn())

    def track_same_bytes(self, n: int, impl: str) -> int:
        return int(self.fn()[21:] == self.expected)


class DecodeBatch:
    params = ([1, 100, 1000], ["native", "pure"])
    param_names = ["records", "impl"]

    def setup(self, n: int, impl: str) -> None:
        if impl == "native":
            from headwater._native import _native as m
        else:
            from headwater import _pure as m
        self.m = m
        batch = m.build_batch(W.values(n), timestamp=W.TIMESTAMP)
        self.h = m.parse_batch_header(batch)
        self.section = memoryview(batch)[m.BATCH_HEADER_SIZE :]
        self.batch = batch

    def time_check_batch(self, n: int, impl: str) -> int:
        return self.m.check_batch(self.batch).records_count

    def time_decode_records(self, n: int, impl: str) -> int:
        h = self.h
        return len(self.m.decode_records(self.section, h.records_count, h.base_offset, h.base_timestamp))
