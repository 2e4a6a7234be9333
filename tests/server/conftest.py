"""Fixtures for wire-server tests: a Broker in tmp_path, served on an ephemeral port."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from headwater.client.broker import Broker

FAST_GROUPS = {"group.initial.rebalance.delay.ms": 0}


@pytest.fixture
def broker(tmp_path: Any) -> Iterator[Broker]:
    with Broker(str(tmp_path / "data"), FAST_GROUPS) as b:
        yield b


@pytest.fixture
def server(broker: Broker) -> Iterator[Any]:
    srv = broker.serve(host="127.0.0.1", port=0)
    try:
        yield srv
    finally:
        srv.close()


@pytest.fixture
def bootstrap(server: Any) -> str:
    return str(server.bootstrap_servers)
