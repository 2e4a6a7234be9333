"""Zig-zag varlong encode/decode: native vs pure, values of 1, 3, 5 and 10 encoded bytes."""

from __future__ import annotations

try:
    from . import _asv_path  # noqa: F401
except ImportError:
    import _asv_path  # noqa: F401

import random

import _workloads as W

VALUES = {1: 3, 3: 300_000, 5: 2**31 - 1, 10: -(2**63)}


class Varint:
    params = ([1, 3, 5, 10], ["native", "pure"])
    param_names = ["encoded_bytes", "impl"]

    def setup(self, width: int, impl: str) -> None:
        if impl == "native":
            from headwater._native import _native as m
        else:
            from headwater import _pure as m
        self.m = m
        rng = random.Random(W.SEED)
        base = VALUES[width]
        self.values = [base if width in (5, 10) else base + rng.randrange(2) for _ in range(1000)]
        self.encoded = [m.encode_varint(v) for v in self.values]
        assert all(len(e) == width for e in self.encoded)

    def time_encode_1000(self, width: int, impl: str) -> int:
        enc = self.m.encode_varint
        return sum(len(enc(v)) for v in self.values)

    def time_decode_1000(self, width: int, impl: str) -> int:
        dec = self.m.decode_varint
        return sum(dec(e)[0] & 1 for e in self.encoded)
