"""KafkaServer: the Kafka wire protocol over one Broker, on an asyncio event loop.

    server = KafkaServer(broker, "127.0.0.1", 9092)
    await server.start()          # listening; server.port is the real port (0 = ephemeral)
    await server.serve_forever()  # until stop()
    await server.stop()           # answer in-flight requests, close connections

or, from synchronous code (what `Broker.serve()` uses), on a loop in its own thread:

    server = KafkaServer(broker, port=0).start_in_thread()
    server.bootstrap_servers      # "127.0.0.1:PORT"
    server.close()

The server does not own the broker: closing the server leaves the broker open (the `headwater
serve` command closes both). Identity (kafka-spec h.4): one node, id `node.id` (broker config,
default 1), which is controller, leader of every partition with leader epoch 0 and coordinator
of every group; clients are told the advertised host/port, not the bind address.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
from typing import Any

from headwater.server.connection import KafkaConnection

log = logging.getLogger("headwater.server")

LEADER_EPOCH = 0


def parse_hostport(text: str, default_port: int = 9092) -> tuple[str, int]:
    """'HOST:PORT', '[v6]:PORT', 'PLAINTEXT://HOST:PORT' or 'HOST' -> (host, port)."""
    if "://" in text:
        text = text.split("://", 1)[1]
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port = rest.lstrip(":")
    elif text.count(":") == 1:
        host, port = text.split(":")
    else:
        host, port = text, ""
    try:
        return host or "0.0.0.0", int(port) if port else default_port
    except ValueError:
        raise ValueError(f"bad HOST:PORT {text!r}") from None


class _AppendWaiters:
    """Wakes long-polling fetches: the broker calls set() on the loop after every append."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._future: asyncio.Future[None] = loop.create_future()

    def set(self) -> None:
        fut = self._future
        if not fut.done():
            fut.set_result(None)
        self._future = self._loop.create_future()

    def current(self) -> asyncio.Future[None]:
        return self._future


class KafkaServer:
    """Serve `broker` over the Kafka protocol (see the module docstring).

    Args:
        broker: an open headwater Broker.
        host, port: where to listen (port 0 = an ephemeral port).
        advertised_host, advertised_port: what Metadata/FindCoordinator tell clients; default
            the listen address (a wildcard host advertises this machine's name).
    """

    def __init__(
        self,
        broker: Any,
        host: str = "127.0.0.1",
        port: int = 9092,
        *,
        advertised_host: str | None = None,
        advertised_port: int | None = None,
    ) -> None:
        self.broker = broker
        self.host = host
        self.port = port
        self._advertised_host = advertised_host
        self._advertised_port = advertised_port
        cfg = broker.config
        self.node_id = int(cfg["node.id"])
        self.max_request_bytes = int(cfg["socket.request.max.bytes"])
        self.queued_max_requests = max(2, int(cfg["queued.max.requests"]))
        self.leader_epoch = LEADER_EPOCH
        self.connections: set[KafkaConnection] = set()
        self.loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.base_events.Server | None = None
        self._waiters: _AppendWaiters | None = None
        self._stopping = False
        self._stopped: asyncio.Event | None = None
        self._thread: threading.Thread | None = None

    # ---- identity ------------------------------------------------------------------------

    @property
    def cluster_id(self) -> str:
        return self.broker.cluster_id

    @property
    def advertised_host(self) -> str:
        if self._advertised_host:
            return self._advertised_host
        if self.host in ("", "0.0.0.0", "::"):
            return socket.getfqdn()
        return self.host

    @property
    def advertised_port(self) -> int:
        return self._advertised_port or self.port

    @property
    def bootstrap_servers(self) -> str:
        host = self.advertised_host
        return f"[{host}]:{self.advertised_port}" if ":" in host else f"{host}:{self.advertised_port}"

    # ---- asyncio lifecycle ---------------------------------------------------------------

    async def start(self) -> KafkaServer:
        loop = asyncio.get_running_loop()
        self.loop = loop
        self._stopped = asyncio.Event()
        self._waiters = _AppendWaiters(loop)
        self._server = await loop.create_server(
            lambda: KafkaConnection(self), self.host, self.port, reuse_address=True, backlog=512
        )
        sock = self._server.sockets[0]
        self.port = sock.getsockname()[1]
        self.broker._add_async_waiter(loop, self._waiters)
        log.info("headwater listening on %s:%d (advertised %s)", self.host, self.port, self.bootstrap_servers)
        return self

    async def serve_forever(self) -> None:
        assert self._stopped is not None, "start() first"
        await self._stopped.wait()

    async def stop(self, timeout: float = 10.0) -> None:
        """Stop accepting, answer the requests in flight (long polls return early), close."""
        if self._stopping:
            if self._stopped is not None:
                await self._stopped.wait()
            return
        self._stopping = True
        if self._server is not None:
            self._server.close()
        if self._waiters is not None:
            self._waiters.set()  # wake long-polling fetches: they answer with what they have
        conns = list(self.connections)
        if conns:
            await asyncio.gather(*(c.finish(timeout) for c in conns), return_exceptions=True)
        for c in list(self.connections):
            c.close()
        if self._server is not None:
            try:
                await asyncio.wait_for(self._server.wait_closed(), 2.0)
            except (asyncio.TimeoutError, Exception):
                pass
        if self.loop is not None and self._waiters is not None:
            self.broker._remove_async_waiter(self.loop, self._waiters)
        assert self._stopped is not None
        self._stopped.set()

    @property
    def stopping(self) -> bool:
        return self._stopping

    async def wait_for_append(self, timeout: float) -> bool:
        """Wait until some partition is appended to (True) or `timeout` seconds pass (False).
        Returns False at once when the server is stopping."""
        if self._stopping or timeout <= 0 or self._waiters is None:
            return False
        fut = self._waiters.current()
        done, _ = await asyncio.wait((fut,), timeout=timeout)
        return bool(done) and not self._stopping

    def _connection_opened(self, conn: KafkaConnection) -> None:
        if self._stopping:
            conn.abort()
            return
        self.connections.add(conn)

    def _connection_closed(self, conn: KafkaConnection) -> None:
        self.connections.discard(conn)

    # ---- a loop in a background thread ---------------------------------------------------

    def start_in_thread(self, timeout: float = 10.0) -> KafkaServer:
        """Run the server on a new event loop in a daemon thread; return once listening."""
        started = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            loop = _new_event_loop()
            asyncio.set_event_loop(loop)

            async def main() -> None:
                try:
                    await self.start()
                except BaseException as exc:
                    failure.append(exc)
                    started.set()
                    return
                started.set()
                await self.serve_forever()

            try:
                loop.run_until_complete(main())
            finally:
                loop.run_until_complete(loop.shutdown_asyncgens())
                loop.close()

        self._thread = threading.Thread(target=run, name="headwater-server", daemon=True)
        self._thread.start()
        if not started.wait(timeout):
            raise TimeoutError("headwater server did not start")
        if failure:
            raise failure[0]
        return self

    def close(self, timeout: float = 10.0) -> None:
        """Stop a server started with start_in_thread() (idempotent)."""
        thread, loop = self._thread, self.loop
        if thread is None or loop is None or not thread.is_alive():
            return
        fut = asyncio.run_coroutine_threadsafe(self.stop(timeout), loop)
        try:
            fut.result(timeout + 5)
        except Exception:  # pragma: no cover - already stopping
            pass
        thread.join(timeout + 5)

    def __enter__(self) -> KafkaServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"KafkaServer({self.host}:{self.port}, node {self.node_id}, {len(self.connections)} connections)"


def _new_event_loop() -> asyncio.AbstractEventLoop:
    """uvloop when installed (faster sockets and callbacks), else the stdlib loop."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


new_event_loop = _new_event_loop
