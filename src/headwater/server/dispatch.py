"""One request frame in, one response (a gather list of buffers) out.

Rules (kafka-spec g.1, g.4):
- ApiVersions at a version above ours: answered in the v0 format with UNSUPPORTED_VERSION and
  our ApiVersions range, so every client can retry with a version we speak.
- Any other unknown API key or version outside the advertised range, or a body that does not
  parse: no response can be built that the client could match, so the connection is closed
  (`CloseConnection`), as Kafka does. Other connections are unaffected.
- A handler returning None (Produce acks=0) sends nothing.
"""

from __future__ import annotations

import inspect
import logging
from typing import Any

from headwater.protocol import (
    API_KEYS,
    ProtocolDecodeError,
    UnsupportedVersionError,
    decode_request,
    decode_request_header,
    encode_response_parts,
)
from headwater.protocol import primitives as p
from headwater.server.context import RequestContext
from headwater.server.errors import UNSUPPORTED_VERSION
from headwater.server.handlers import HANDLERS

log = logging.getLogger("headwater.server")

API_VERSIONS = 18


class CloseConnection(Exception):
    """The request cannot be answered; close this client's connection."""


def advertised_versions() -> list[tuple[int, int, int]]:
    """(api_key, min, max) of every API we handle: the ApiVersions answer."""
    return [(k, API_KEYS[k].min_version, API_KEYS[k].max_version) for k in sorted(HANDLERS)]


def _api_versions_fallback(correlation_id: int) -> list[Any]:
    """The v0-format UNSUPPORTED_VERSION answer to an ApiVersions version we do not speak."""
    info = API_KEYS[API_VERSIONS]
    out = bytearray(b"\0\0\0\0")
    p.write_int32(out, correlation_id)
    p.write_int16(out, UNSUPPORTED_VERSION)
    p.write_int32(out, 1)
    p.write_int16(out, API_VERSIONS)
    p.write_int16(out, info.min_version)
    p.write_int16(out, info.max_version)
    out[0:4] = (len(out) - 4).to_bytes(4, "big")
    return [bytes(out)]


async def dispatch(server: Any, connection: Any, frame: bytes) -> tuple[list[Any] | None, RequestContext | None]:
    """Serve one request frame (the bytes after the size field).

    Returns (buffers to write or None, the request context whose `run_after()` the caller runs
    once the buffers are handed to the transport).

    Raises:
        CloseConnection: the frame cannot be answered.
    """
    try:
        header = decode_request_header(frame)
    except ProtocolDecodeError as exc:
        raise CloseConnection(f"bad request header: {exc}") from None
    api_key, version = header.api_key, header.api_version
    handler = HANDLERS.get(api_key)
    info = API_KEYS.get(api_key)
    if handler is None or info is None:
        raise CloseConnection(f"unknown api key {api_key}")
    if not info.min_version <= version <= info.max_version:
        if api_key == API_VERSIONS and version > info.max_version:
            return _api_versions_fallback(header.correlation_id), None
        raise CloseConnection(f"unsupported version {version} of {info.name}")
    try:
        request = decode_request(api_key, version, frame, header.body_offset)
    except (ProtocolDecodeError, UnsupportedVersionError) as exc:
        raise CloseConnection(f"malformed {info.name} v{version}: {exc}") from None
    ctx = RequestContext(server, connection, api_key, version, header.correlation_id, header.client_id)
    try:
        body = handler(ctx, request)
        if inspect.isawaitable(body):
            body = await body
    except BaseException:
        ctx.run_after()
        raise
    if body is None:
        return None, ctx
    try:
        return encode_response_parts(api_key, version, header.correlation_id, body), ctx
    except BaseException:
        ctx.run_after()
        raise
