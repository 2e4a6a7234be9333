"""One client connection: framing, strict FIFO responses, backpressure (kafka-spec g.1).

Frames are `int32 size` + request. A size below zero or above `socket.request.max.bytes`
closes the connection before any of the body is buffered, so a hostile size costs nothing.
Requests are served one at a time in arrival order by a worker task that exists only while
there is work; a long-polling Fetch therefore holds back later responses on its connection, as
in Kafka (clients use another connection for the coordinator).

Backpressure: reading pauses while `queued.max.requests` frames (or that many max-size
requests' worth of bytes) wait, and while the transport's write buffer is above its high-water
mark; a client that does not read its responses stops being read.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections import deque
from typing import Any

from headwater.server.dispatch import CloseConnection, dispatch

log = logging.getLogger("headwater.server")

# Frames of LARGE_FRAME..LARGE_FRAME_MAX bytes (a producer's batches: ~1 MB by default) are
# received into a buffer of their own (see data_received). Bigger ones grow with what arrives,
# so a size field alone never makes the server allocate much.
LARGE_FRAME = 65536
LARGE_FRAME_MAX = 4 << 20


class KafkaConnection(asyncio.Protocol):
    """asyncio protocol for one Kafka client socket."""

    def __init__(self, server: Any) -> None:
        self.server = server
        self.transport: asyncio.Transport | None = None
        self.peer: Any = None
        self._buf = bytearray()
        self._pending: bytearray | None = None  # a large frame being received
        self._pending_fill = 0
        self._queue: deque[bytearray] = deque()
        self._queued_bytes = 0
        self._worker: asyncio.Task[None] | None = None
        self._reading_paused = False
        self._writing_paused = False
        self._drained: asyncio.Event | None = None
        self.closed = False
        self._fd = -1
        self._max_request = int(server.max_request_bytes)
        self._max_queued = int(server.queued_max_requests)

    # ---- asyncio callbacks ----------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.peer = transport.get_extra_info("peername")
        sock = transport.get_extra_info("socket")
        try:
            self._fd = sock.fileno() if sock is not None else -1
        except Exception:  # pragma: no cover - a transport without a real socket
            self._fd = -1
        self.server._connection_opened(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._queue.clear()
        if self._drained is not None:
            self._drained.set()
        self.server._connection_closed(self)

    def pause_writing(self) -> None:
        self._writing_paused = True
        self._drained = asyncio.Event()
        if not self._reading_paused and self.transport is not None:
            self._reading_paused = True
            self.transport.pause_reading()

    def resume_writing(self) -> None:
        self._writing_paused = False
        if self._drained is not None:
            self._drained.set()

    def data_received(self, data: bytes) -> None:
        if self.closed:
            return
        pending = self._pending
        if pending is not None:
            # The body of a large frame goes straight into its own buffer: one copy, and the
            # buffer becomes the frame (no slicing out of a growing read buffer).
            fill = self._pending_fill
            k = min(len(pending) - fill, len(data))
            view = memoryview(data)
            pending[fill:fill + k] = view[:k]
            fill += k
            if fill < len(pending):
                self._pending_fill = fill
                return
            self._pending = None
            self._enqueue(pending)
            if k == len(data):
                self._parse()
                return
            data = view[k:]  # type: ignore[assignment]
        self._buf += data
        self._parse()

    def _enqueue(self, frame: bytearray) -> None:
        self._queue.append(frame)
        self._queued_bytes += len(frame)

    def _parse(self) -> None:
        """Move complete frames from the read buffer to the queue, up to `queued.max.requests`;
        pause reading while the queue is full (the rest stays in the buffer, which then holds
        at most one read's worth of bytes beyond a frame)."""
        buf = self._buf
        pos = 0
        n = len(buf)
        queue = self._queue
        limit = self._max_queued
        while n - pos >= 4 and len(queue) < limit:
            size = int.from_bytes(buf[pos:pos + 4], "big", signed=True)
            if size < 0 or size > self._max_request:
                log.warning("closing %s: request size %d outside [0, %d] (socket.request.max.bytes)", self.peer, size, self._max_request)
                self.abort()
                return
            if n - pos - 4 < size:
                if LARGE_FRAME <= size <= LARGE_FRAME_MAX:
                    frame = bytearray(size)
                    have = n - pos - 4
                    frame[:have] = memoryview(buf)[pos + 4:n]
                    self._pending, self._pending_fill = frame, have
                    pos = n
                break
            queue.append(buf[pos + 4:pos + 4 + size])
            self._queued_bytes += size
            pos += 4 + size
        if pos:
            del buf[:pos]
        if queue and self._worker is None:
            self._worker = asyncio.get_running_loop().create_task(self._serve())
        full = len(queue) >= limit or self._queued_bytes > 2 * self._max_request
        if full and not self._reading_paused and self.transport is not None:
            self._reading_paused = True
            self.transport.pause_reading()

    def _maybe_resume(self) -> None:
        if self._buf and len(self._queue) < self._max_queued:
            self._parse()
        if (
            self._reading_paused and not self._writing_paused and not self.closed
            and len(self._queue) < self._max_queued // 2 and self._queued_bytes <= self._max_request
        ):
            self._reading_paused = False
            if self.transport is not None:
                self.transport.resume_reading()

    # ---- serving --------------------------------------------------------------------------

    async def _serve(self) -> None:
        queue = self._queue
        try:
            while queue and not self.closed:
                frame = queue.popleft()
                self._queued_bytes -= len(frame)
                if self._reading_paused:
                    self._maybe_resume()
                try:
                    parts, ctx = await dispatch(self.server, self, frame)
                except CloseConnection as exc:
                    log.warning("closing %s: %s", self.peer, exc)
                    self.abort()
                    return
                except Exception:
                    log.exception("closing %s: request handler failed", self.peer)
                    self.abort()
                    return
                try:
                    if parts is not None and not self.closed and self.transport is not None:
                        self._write(parts)
                finally:
                    if ctx is not None:
                        ctx.run_after()
                if self._writing_paused and self._drained is not None and not self.closed:
                    await self._drained.wait()
                    if self._reading_paused:
                        self._maybe_resume()
        finally:
            self._worker = None
            if queue and not self.closed:  # raced with data_received after the loop test
                self._worker = asyncio.get_running_loop().create_task(self._serve())

    def _write(self, parts: list[Any]) -> None:
        """Send a response. A gather list (Fetch records still in the segment mappings) goes
        out with one writev() straight from the mappings when the transport has nothing
        buffered; only what the socket does not take at once is copied into the transport."""
        transport = self.transport
        assert transport is not None
        if len(parts) == 1:
            transport.write(parts[0])
            return
        if self._fd >= 0 and len(parts) <= 512 and transport.get_write_buffer_size() == 0:
            try:
                sent = os.writev(self._fd, parts)
            except (BlockingIOError, InterruptedError):
                sent = 0
            except OSError:
                sent = 0  # the transport reports the broken connection itself
            if sent:
                rest: list[Any] = []
                for part in parts:
                    size = len(part)
                    if sent >= size:
                        sent -= size
                        continue
                    rest.append(part[sent:] if sent else part)
                    sent = 0
                if rest:
                    transport.write(b"".join(rest))
                return
        transport.write(b"".join(parts))

    @property
    def busy(self) -> bool:
        return self._worker is not None

    async def finish(self, timeout: float) -> None:
        """Stop reading, let the request being served (and those queued) complete."""
        if self.transport is not None and not self._reading_paused and not self.closed:
            self._reading_paused = True
            self.transport.pause_reading()
        worker = self._worker
        if worker is not None:
            try:
                await asyncio.wait_for(asyncio.shield(worker), timeout)
            except (asyncio.TimeoutError, Exception):
                pass

    def abort(self) -> None:
        self.closed = True
        self._queue.clear()
        if self.transport is not None:
            self.transport.abort()

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()
