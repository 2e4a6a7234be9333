"""Fixtures for the log-layer unit tests: a partition directory and an opener that closes
every log it opened (views first), so a failing test cannot leak mappings into the next."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from headwater.log import PartitionLog


@pytest.fixture
def pdir(tmp_path: Path) -> str:
    """A fresh partition directory path (created by PartitionLog.open)."""
    return os.path.join(tmp_path, "topic-0")


@pytest.fixture
def open_log(pdir: str) -> Iterator:
    """open_log(**config) -> PartitionLog in `pdir`; closed at teardown if still open."""
    opened: list[PartitionLog] = []

    def opener(path: str | None = None, **config: object) -> PartitionLog:
        log = PartitionLog.open(path or pdir, **config)
        opened.append(log)
        return log

    yield opener
    for log in opened:
        try:
            log.close()
        except Exception:  # noqa: BLE001 - a test may have broken it on purpose
            pass
