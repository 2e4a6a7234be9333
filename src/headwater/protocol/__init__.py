"""Kafka wire protocol codecs: primitives, generated message tables, request/response codec.

No I/O: the server (a later layer) owns sockets and framing; this package turns bytes into dicts
and back. See codec.py for the dict conventions and primitives.py for the byte layouts.
"""

from headwater.protocol.codec import (
    RequestHeader,
    decode_request,
    decode_request_header,
    decode_response,
    encode_request,
    encode_response,
    encode_response_parts,
    supported_versions,
)
from headwater.protocol.errors import (
    ProtocolDecodeError,
    ProtocolEncodeError,
    UnsupportedVersionError,
)
from headwater.protocol.messages import API_KEYS, ApiInfo

__all__ = [
    "API_KEYS",
    "ApiInfo",
    "ProtocolDecodeError",
    "ProtocolEncodeError",
    "RequestHeader",
    "UnsupportedVersionError",
    "decode_request",
    "decode_request_header",
    "decode_response",
    "encode_request",
    "encode_response",
    "encode_response_parts",
    "supported_versions",
]
