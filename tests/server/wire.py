"""A minimal raw Kafka client for server tests: frames over a blocking socket, our codec."""

from __future__ import annotations

import socket
import struct
from typing import Any

from headwater.protocol import decode_response, encode_request


class RawClient:
    """Send requests and read responses on one connection, with a timeout on every read."""

    def __init__(self, bootstrap: str, timeout: float = 10.0) -> None:
        host, port = bootstrap.rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.correlation_id = 0

    def send(self, api_key: int, version: int, body: dict, client_id: str | None = "raw") -> int:
        self.correlation_id += 1
        self.sock.sendall(encode_request(api_key, version, self.correlation_id, body, client_id=client_id, framed=True))
        return self.correlation_id

    def send_raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    def read_frame(self) -> bytes:
        size = struct.unpack(">i", self._read_exact(4))[0]
        return self._read_exact(size)

    def recv(self, api_key: int, version: int) -> tuple[int, dict]:
        return decode_response(api_key, version, self.read_frame())

    def call(self, api_key: int, version: int, body: dict) -> dict:
        corr = self.send(api_key, version, body)
        got, resp = self.recv(api_key, version)
        assert got == corr, f"correlation id {got} != {corr}"
        return resp

    def is_closed(self, timeout: float = 5.0) -> bool:
        """True when the server closed the connection (EOF or reset) within `timeout`."""
        self.sock.settimeout(timeout)
        try:
            return self.sock.recv(1) == b""
        except ConnectionResetError:
            return True
        except TimeoutError:
            return False

    def _read_exact(self, n: int) -> bytes:
        chunks = bytearray()
        while len(chunks) < n:
            chunk = self.sock.recv(n - len(chunks))
            if not chunk:
                raise ConnectionError("connection closed by the server")
            chunks += chunk
        return bytes(chunks)

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> RawClient:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def frame(payload: bytes) -> bytes:
    return struct.pack(">i", len(payload)) + payload
