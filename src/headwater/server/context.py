"""What a request handler sees: the server it runs in and the request's header.

Handler contract (every module in `server/handlers/` follows it):

    def handle_xxx(ctx: RequestContext, request: dict) -> dict | None
    async def handle_xxx(ctx: RequestContext, request: dict) -> dict | None

`request` is the decoded body (protocol/codec.py conventions: snake_case keys, every schema
field present with its default). The handler returns the response body as a dict in the same
conventions (missing keys take the schema default, fields the version lacks are dropped), or
None for "no response" (Produce with acks=0 only). Handlers run on the server's event loop
thread: they may call the Broker directly (it is thread-safe) but must not block for long;
anything that waits (long-poll Fetch, JoinGroup, a durable append) is awaited.

Zero-copy: a RECORDS field may be a memoryview into a segment mapping; the response is sent as
a gather list (no copy into the encode buffer). Register the release of such views with
`ctx.after_response(fn)`; it runs right after the bytes were handed to the transport.

Waiting for data: `await ctx.server.wait_for_append(timeout_s)` returns True when any partition
was appended to since the call started (embedded producers included), False on timeout.

Errors: per-partition / per-item failures go into that item's `error_code` via
`headwater.server.errors.error_code(exc)`, the one place that maps exceptions to Kafka codes.
An exception escaping a handler is logged and closes that one connection (Kafka does the same
when it cannot build a response).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from headwater.client.broker import Broker
    from headwater.server.app import KafkaServer


class RequestContext:
    """One request: header fields plus the server (broker, node identity, config)."""

    __slots__ = ("server", "connection", "api_key", "api_version", "correlation_id", "client_id", "_after")

    def __init__(self, server: KafkaServer, connection: Any, api_key: int, api_version: int, correlation_id: int, client_id: str | None) -> None:
        self.server = server
        self.connection = connection
        self.api_key = api_key
        self.api_version = api_version
        self.correlation_id = correlation_id
        self.client_id = client_id
        self._after: list[Any] = []

    def after_response(self, fn: Any) -> None:
        """Call `fn()` once the response has been handed to the transport (or the request was
        dropped): release segment views the response body referenced (zero-copy Fetch)."""
        self._after.append(fn)

    def run_after(self) -> None:
        after, self._after = self._after, []
        for fn in after:
            try:
                fn()
            except Exception:  # pragma: no cover - a release must not kill the connection
                pass

    @property
    def broker(self) -> Broker:
        return self.server.broker

    @property
    def version(self) -> int:
        return self.api_version

    @staticmethod
    def now_ms() -> int:
        return int(time.time() * 1000)

    def __repr__(self) -> str:
        return f"RequestContext(api_key={self.api_key}, v{self.api_version}, corr={self.correlation_id}, client={self.client_id!r})"
