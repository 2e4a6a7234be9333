"""CRC-32C: sizes [64 B, 4 KiB, 1 MiB] x impl [native, pure, PyPI crc32c]."""

from __future__ import annotations

try:
    from . import _asv_path  # noqa: F401
except ImportError:
    import _asv_path  # noqa: F401

import _workloads as W


def _impl(name: str):  # noqa: ANN202
    if name == "native":
        from headwater._native import _native

        return _native.crc32c
    if name == "pure":
        from headwater import _pure

        return _pure.crc32c
    import crc32c

    return crc32c.crc32c


class CRC32C:
    params = ([64, 4096, 1 << 20], ["native", "pure", "pypi"])
    param_names = ["bytes", "impl"]

    def setup(self, nbytes: int, impl: str) -> None:
        if impl == "pure" and nbytes > 4096:
            raise NotImplementedError("pure crc32c on 1 MiB takes seconds; skipped")
        try:
            self.fn = _impl(impl)
        except ImportError as exc:
            raise NotImplementedError(str(exc)) from exc
        self.data = W.blob(nbytes)
        from headwater._native import _native

        self.expected = _native.crc32c(self.data)

    def time_crc32c(self, nbytes: int, impl: str) -> int:
        return self.fn(self.data)

    def track_checksum_ok(self, nbytes: int, impl: str) -> int:
        return int(self.fn(self.data) == self.expected)
