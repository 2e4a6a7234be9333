"""The one place that maps exceptions to Kafka wire error codes (kafka-spec g.7).

Every handler reports a failed item with `error_code(exc)` (and, where the response has a
message field, `error_message(exc)`), so an exception class means the same code on every API.
"""

from __future__ import annotations

from headwater.errors import (
    ConfigError,
    KafkaApiError,
    LogOfflineError,
    StorageError,
)
from headwater.protocol.errors import ProtocolDecodeError, UnsupportedVersionError

NONE = 0
UNKNOWN_SERVER_ERROR = -1
OFFSET_OUT_OF_RANGE = 1
CORRUPT_MESSAGE = 2
UNKNOWN_TOPIC_OR_PARTITION = 3
LEADER_NOT_AVAILABLE = 5
NOT_LEADER_OR_FOLLOWER = 6
REQUEST_TIMED_OUT = 7
MESSAGE_TOO_LARGE = 10
NOT_COORDINATOR = 16
INVALID_TOPIC_EXCEPTION = 17
INVALID_REQUIRED_ACKS = 21
UNSUPPORTED_VERSION = 35
INVALID_REQUEST = 42
KAFKA_STORAGE_ERROR = 56
INVALID_CONFIG = 40
POLICY_VIOLATION = 44
OPERATION_NOT_ATTEMPTED = 55
FENCED_LEADER_EPOCH = 74
UNKNOWN_LEADER_EPOCH = 75
UNSUPPORTED_COMPRESSION_TYPE = 76
INVALID_RECORD = 87
UNKNOWN_TOPIC_ID = 100


def error_code(exc: BaseException) -> int:
    """The Kafka error code for an exception raised while serving one request item."""
    if isinstance(exc, KafkaApiError):
        return int(exc.code)
    if isinstance(exc, (LogOfflineError, StorageError, OSError)):
        return KAFKA_STORAGE_ERROR
    if isinstance(exc, UnsupportedVersionError):
        return UNSUPPORTED_VERSION
    if isinstance(exc, ConfigError):
        return INVALID_CONFIG
    if isinstance(exc, ProtocolDecodeError):
        return INVALID_REQUEST
    return UNKNOWN_SERVER_ERROR


def error_message(exc: BaseException) -> str:
    """A short message for the response's error_message field."""
    text = str(exc) or type(exc).__name__
    return text[:1000]
