"""A minimal reference log with the PartitionLog surface the crash tests use.

It exists to test the crash harness itself: crash_child.py runs it instead of headwater's
PartitionLog when HEADWATER_CRASH_LOG=ref_log:RefLog, and test_power_loss.py checks that the
harness passes it with flush.policy=batch and catches it losing acked records with
``none``. One file of frames [u32 length][u32 crc32][u64 offset][i32 key length][key][value],
appended with write() and fdatasync'd per append under ``batch``; recovery keeps the longest
valid prefix.
"""

from __future__ import annotations

import contextlib
import os
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass

_HEAD = struct.Struct(">IIQi")


@dataclass
class Rec:
    offset: int
    key: bytes | None
    value: bytes


class RefLog:
    def __init__(self, path: str, policy: str) -> None:
        self.policy = policy
        new_dir = not os.path.isdir(path)
        os.makedirs(path, exist_ok=True)
        if new_dir:
            _fsync_dir(os.path.dirname(os.path.abspath(path)))
        name = os.path.join(path, "log.dat")
        existed = os.path.exists(name)
        self.fd = os.open(name, os.O_RDWR | os.O_CREAT, 0o644)
        if not existed:
            os.fsync(self.fd)
            _fsync_dir(path)
        data = os.pread(self.fd, os.fstat(self.fd).st_size, 0)
        self.records: list[Rec] = []
        pos = 0
        while pos + _HEAD.size <= len(data):
            n, crc, off, klen = _HEAD.unpack_from(data, pos)
            body = data[pos + 8 : pos + 4 + n]
            if n < _HEAD.size - 4 or len(body) != n - 4 or zlib.crc32(body) != crc:
                break
            if off != len(self.records):
                break
            rest = body[_HEAD.size - 8 :]
            key = None if klen < 0 else rest[:klen]
            self.records.append(Rec(off, key, rest[max(klen, 0) :]))
            pos += 4 + n
        self.recovery = {"valid_bytes": pos, "truncated": len(data) - pos}
        if pos != len(data):
            os.ftruncate(self.fd, pos)
            os.fsync(self.fd)
        self.size = pos

    @classmethod
    def open(cls, path: str, **cfg: object) -> RefLog:
        return cls(path, str(cfg.get("flush.policy", "batch")))

    @property
    def log_start_offset(self) -> int:
        return 0

    @property
    def log_end_offset(self) -> int:
        return len(self.records)

    def append(self, values: list[bytes], keys: list[bytes | None]) -> int:
        first = len(self.records)
        frames = []
        for i, (k, v) in enumerate(zip(keys, values, strict=True)):
            body = struct.pack(">Qi", first + i, -1 if k is None else len(k)) + (k or b"") + v
            frames.append(struct.pack(">II", len(body) + 4, zlib.crc32(body)) + body)
        blob = b"".join(frames)
        os.pwrite(self.fd, blob, self.size)
        if self.policy == "batch":
            os.fdatasync(self.fd)
        self.size += len(blob)
        self.records += [
            Rec(first + i, k, v) for i, (k, v) in enumerate(zip(keys, values, strict=True))
        ]
        return first

    @contextlib.contextmanager
    def read(self, offset: int, max_bytes: int = 1 << 20) -> Iterator[list[Rec]]:
        yield self.records[offset : offset + 1000]

    def flush(self) -> None:
        os.fdatasync(self.fd)

    def close(self) -> None:
        os.close(self.fd)


def _fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
