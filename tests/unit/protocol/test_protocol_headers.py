"""Request/response headers and the version rules of kafka-spec g.2/g.4.

Goal: header v1 vs v2 chosen by the body version's flexibility, clientId always an int16 string,
ApiVersions responses always with header v0, unknown APIs/versions rejected with
UnsupportedVersionError (a ProtocolDecodeError), the API_KEYS table matching h.4.
Method: hand-built frames with exact expected bytes, plus the codec's own encoders.
"""

from __future__ import annotations

import pytest

from headwater.protocol import (
    API_KEYS,
    ProtocolDecodeError,
    UnsupportedVersionError,
    decode_request,
    decode_request_header,
    encode_request,
    encode_response,
    supported_versions,
)


def test_header_v1_for_non_flexible_versions() -> None:
    frame = encode_request(18, 0, 7, {}, client_id="me")
    assert frame == b"\x00\x12\x00\x00\x00\x00\x00\x07\x00\x02me"
    h = decode_request_header(frame)
    assert h.body_offset == len(frame) and h.tagged == {}


def test_header_v2_keeps_int16_client_id_and_reads_tags() -> None:
    # ApiVersions v3: header v2 = v1 + tagged fields, client id stays int16-length.
    frame = (
        b"\x00\x12\x00\x03\x00\x00\x00\x09\x00\x03abc"
        + b"\x01\x05\x02hi"  # one unknown header tag (5) kept raw
        + b"\x05kcat\x061.7.1\x00"  # client_software_name/version, no tags
    )
    h = decode_request_header(frame)
    assert (h.api_key, h.api_version, h.correlation_id, h.client_id) == (18, 3, 9, "abc")
    assert h.tagged == {5: b"hi"}
    body = decode_request(18, 3, frame, h.body_offset)
    assert body["client_software_name"] == "kcat"
    assert body["client_software_version"] == "1.7.1"


def test_null_client_id() -> None:
    frame = encode_request(3, 1, 1, {"topics": None}, client_id=None)
    assert decode_request_header(frame).client_id is None


def test_future_api_versions_version_still_parses_header_v2() -> None:
    # A client probing ApiVersions v5 sends a flexible header; we must read it to answer
    # UNSUPPORTED_VERSION in v0 format (g.4), while the body is rejected.
    frame = b"\x00\x12\x00\x05\x00\x00\x00\x01\xff\xff\x00" + b"\x01\x01\x00"
    h = decode_request_header(frame)
    assert (h.api_version, h.body_offset) == (5, 11)
    with pytest.raises(UnsupportedVersionError) as exc:
        decode_request(18, 5, frame, h.body_offset)
    assert (exc.value.api_key, exc.value.api_version) == (18, 5)
    assert isinstance(exc.value, ProtocolDecodeError)


def test_unknown_api_key_header_then_unsupported() -> None:
    frame = b"\x03\xe7\x00\x00\x00\x00\x00\x01\x00\x00"
    h = decode_request_header(frame)
    assert h.api_key == 999
    with pytest.raises(UnsupportedVersionError):
        decode_request(h.api_key, h.api_version, frame, h.body_offset)


def test_advertised_gap_below_min_is_unsupported() -> None:
    with pytest.raises(UnsupportedVersionError):
        decode_request(1, 3, b"", 0)  # Fetch advertises 4-12


def test_api_versions_response_header_is_always_v0() -> None:
    body = {"error_code": 0, "api_keys": [{"api_key": 18, "min_version": 0, "max_version": 4}]}
    v3 = encode_response(18, 3, 42, body)
    # corr id, then directly the body: error_code int16, compact array of 1, entry + its tags,
    # throttle_time_ms, body tags. No header tag byte after the correlation id.
    assert v3 == b"\x00\x00\x00\x2a" + b"\x00\x00" + b"\x02\x00\x12\x00\x00\x00\x04\x00" + (
        b"\x00\x00\x00\x00\x00"
    )
    # Other flexible responses do carry the header tag section.
    assert encode_response(12, 4, 42, {"error_code": 0})[:5] == b"\x00\x00\x00\x2a\x00"


def test_framed_encoding_has_size_prefix() -> None:
    frame = encode_request(12, 0, 5, {"group_id": "g", "generation_id": 1, "member_id": "m"},
                           framed=True)  # fmt: skip
    assert int.from_bytes(frame[:4], "big") == len(frame) - 4


def test_api_keys_match_kafka_spec_h4() -> None:
    h4 = {0: (0, 9), 1: (4, 12), 2: (1, 7), 3: (0, 12), 8: (2, 8), 9: (1, 8), 10: (0, 3),
          11: (0, 7), 12: (0, 4), 13: (0, 4), 14: (0, 5), 15: (0, 5), 16: (0, 4), 18: (0, 4),
          19: (2, 5), 20: (1, 4), 22: (0, 4), 23: (2, 4), 24: (0, 3), 25: (0, 3), 26: (0, 3),
          28: (0, 3), 32: (1, 4), 60: (0, 1)}  # fmt: skip
    for key, rng in h4.items():
        assert supported_versions(key) == rng, API_KEYS[key].name
    assert supported_versions(17) is None  # SASL is not advertised (g.5)


def test_records_decode_as_views_into_the_frame() -> None:
    batch = b"\x00" * 61
    body = {"acks": -1, "timeout_ms": 100, "topic_data": [
        {"name": "t", "partition_data": [{"index": 0, "records": batch}]}]}  # fmt: skip
    frame = memoryview(encode_request(0, 9, 1, body))
    h = decode_request_header(frame)
    got = decode_request(0, 9, frame, h.body_offset)
    rec = got["topic_data"][0]["partition_data"][0]["records"]
    assert isinstance(rec, memoryview) and rec.obj is frame.obj and bytes(rec) == batch
