"""pytest plugin: "a Kafka" for any project's tests, without Docker or a JVM.

Installed with the package (entry point `pytest11`), so after `pip install headwater`:

    def test_orders(kafka_bootstrap):
        producer = confluent_kafka.Producer({"bootstrap.servers": kafka_bootstrap})
        ...

Fixtures:
- `kafka_server` (session scope): a headwater broker in a temporary directory served on an
  ephemeral 127.0.0.1 port (a `headwater.server.KafkaServer`; `.broker` is the embedded Broker).
- `kafka_bootstrap` (session scope): its bootstrap address, "127.0.0.1:PORT".

Topics are auto-created on first use, as with Kafka's default `auto.create.topics.enable`.
Group rebalances start at once (`group.initial.rebalance.delay.ms=0`) to keep tests fast.
Settings: `--headwater-config KEY=VALUE` (repeatable) adds broker settings.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from typing import Any

import pytest

TEST_DEFAULTS = {"group.initial.rebalance.delay.ms": 0}


def pytest_addoption(parser: Any) -> None:
    group = parser.getgroup("headwater")
    group.addoption(
        "--headwater-config",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="broker setting for the kafka_server fixture (repeatable)",
    )


def _config(pytestconfig: Any) -> dict[str, Any]:
    config: dict[str, Any] = dict(TEST_DEFAULTS)
    for item in pytestconfig.getoption("headwater_config") or []:
        key, sep, value = item.partition("=")
        if not sep:
            raise pytest.UsageError(f"--headwater-config expects KEY=VALUE, got {item!r}")
        config[key.strip()] = value.strip()
    return config


@pytest.fixture(scope="session")
def kafka_server(pytestconfig: Any) -> Iterator[Any]:
    """A headwater Kafka server on an ephemeral port, for the whole test session."""
    from headwater.client.broker import Broker

    data_dir = tempfile.mkdtemp(prefix="headwater-pytest-")
    broker = Broker(data_dir, _config(pytestconfig))
    try:
        server = broker.serve(host="127.0.0.1", port=0)
        yield server
    finally:
        broker.close()
        shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def kafka_bootstrap(kafka_server: Any) -> str:
    """The bootstrap address ("127.0.0.1:PORT") of the session's headwater server."""
    return str(kafka_server.bootstrap_servers)
