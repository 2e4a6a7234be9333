"""Fuzzing the request decoder: hostile frames raise ProtocolDecodeError and nothing else.

Goal: whatever bytes a client sends, decode_request_header + decode_request either return or raise
ProtocolDecodeError (which includes UnsupportedVersionError); never IndexError, struct.error,
RecursionError, MemoryError or a hang.
Method: hypothesis, bounded budget (~2000 examples in total): (1) random bytes behind a valid
api key/version prefix, (2) valid request frames from our tables with byte flips, truncation,
insertion and header-field overwrites.
"""

from __future__ import annotations

import struct

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from protocol_strategies import api_versions, body_strategy

from headwater.protocol import (
    API_KEYS,
    ProtocolDecodeError,
    decode_request,
    decode_request_header,
    encode_request,
)

PAIRS = api_versions(API_KEYS)
SETTINGS = dict(
    deadline=None, database=None, suppress_health_check=list(HealthCheck)
)  # budget set per test


def _decode_all(frame: bytes) -> None:
    try:
        header = decode_request_header(frame)
        decode_request(header.api_key, header.api_version, frame, header.body_offset)
    except ProtocolDecodeError:
        pass


@settings(max_examples=800, **SETTINGS)
@given(pair=st.sampled_from(PAIRS), corr=st.integers(0, 2**31 - 1), tail=st.binary(max_size=64))
def test_random_bodies(pair: tuple[int, int], corr: int, tail: bytes) -> None:
    api_key, version = pair
    _decode_all(struct.pack(">hhi", api_key, version, corr) + tail)


@st.composite
def mutated_frames(draw) -> bytes:
    api_key, version = draw(st.sampled_from(PAIRS))
    body = draw(body_strategy(API_KEYS[api_key], version, False))
    frame = bytearray(encode_request(api_key, version, 1, body))
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["flip", "truncate", "insert", "set_int", "header"]))
        if op == "flip" and frame:
            i = draw(st.integers(0, len(frame) - 1))
            frame[i] ^= draw(st.integers(1, 255))
        elif op == "truncate":
            del frame[draw(st.integers(0, len(frame))) :]
        elif op == "insert":
            i = draw(st.integers(0, len(frame)))
            frame[i:i] = draw(st.binary(min_size=1, max_size=8))
        elif op == "set_int" and len(frame) >= 4:
            # Overwrite 4 bytes with a hostile length/count (huge, negative, -1).
            i = draw(st.integers(0, len(frame) - 4))
            v = draw(st.sampled_from([0x7FFFFFFF, -1, -2, 0x10000, 0xFFFF]))
            frame[i : i + 4] = struct.pack(">i" if v < 2**31 else ">I", v)
        elif op == "header" and len(frame) >= 4:
            frame[0:4] = struct.pack(">hh", draw(st.integers(-2, 80)), draw(st.integers(-2, 20)))
    return bytes(frame)


@settings(max_examples=1200, **SETTINGS)
@given(frame=mutated_frames())
def test_mutated_valid_frames(frame: bytes) -> None:
    _decode_all(frame)
