"""Errors of the wire codec layer.

`ProtocolDecodeError` is the only exception a decoder raises on bad input (truncated, oversized,
null where not nullable, invalid UTF-8, unknown API or version). The server maps it to "close this
connection" (or INVALID_REQUEST / UNSUPPORTED_VERSION where Kafka answers instead); it never
escapes as IndexError, struct.error or MemoryError.

`ProtocolEncodeError` means the broker tried to write a value the wire format cannot carry (an
int out of range, a null in a non-nullable field): a programming error on our side.
"""

from __future__ import annotations

from headwater.errors import HeadwaterError


class ProtocolDecodeError(HeadwaterError, ValueError):
    """Bytes from the wire do not form a valid message of the expected API/version."""


class UnsupportedVersionError(ProtocolDecodeError):
    """The API key is unknown or the version is outside the range we support.

    Kafka answers UNSUPPORTED_VERSION (35) for ApiVersions and closes the connection otherwise
    (kafka-spec g.1, g.4).
    """

    def __init__(self, api_key: int, api_version: int) -> None:
        super().__init__(f"unsupported api key {api_key} version {api_version}")
        self.api_key = api_key
        self.api_version = api_version


class ProtocolEncodeError(HeadwaterError, ValueError):
    """A value cannot be encoded in the requested API version's wire format."""
