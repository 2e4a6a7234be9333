"""Fixtures for the embedded-client tests: a fast Broker factory and bounded polling helpers.

Every broker lives in a pytest tmp_path, with `group.initial.rebalance.delay.ms=0` and
`group.min.session.timeout.ms=100` so group tests run in fractions of a second; every helper
loop has a deadline, so a bug shows up as a failed assertion, never a hung suite.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from client_helpers import FAST_BROKER

from headwater.client import Broker


@pytest.fixture
def make_broker(tmp_path: Path) -> Iterator[Callable[..., Broker]]:
    """make_broker(**config) -> an open Broker on tmp_path/"data" (closed at teardown).

    Call it again after closing the first one to reopen the same directory.
    """
    opened: list[Broker] = []

    def make(config: dict[str, Any] | None = None, data_dir: Path | None = None) -> Broker:
        b = Broker(data_dir or tmp_path / "data", {**FAST_BROKER, **(config or {})})
        opened.append(b)
        return b

    yield make
    for b in opened:
        b.close()


@pytest.fixture
def broker(make_broker: Callable[..., Broker]) -> Broker:
    return make_broker()
