"""Round trips of every generated message at every supported version.

Goal: for each API in API_KEYS and each version we advertise, encode(body) decodes back to the
same values (plus schema defaults for fields the version lacks), and re-encoding the decoded dict
gives the same bytes, for requests (with header) and responses (with header).
Method: hypothesis bodies built from the same tables (protocol_strategies), max_examples=20 per
API/version/direction, so the whole module stays well under 30 s.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from protocol_strategies import api_versions, assert_subset, body_strategy

from headwater.protocol import (
    API_KEYS,
    decode_request,
    decode_request_header,
    decode_response,
    encode_request,
    encode_response,
)

PAIRS = api_versions(API_KEYS)
SETTINGS = settings(
    max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None
)


@pytest.mark.parametrize("api_key,version", PAIRS, ids=[f"{k}v{v}" for k, v in PAIRS])
def test_request_round_trip(api_key: int, version: int) -> None:
    @SETTINGS
    @given(body=body_strategy(API_KEYS[api_key], version, False), corr=st.integers(0, 2**31 - 1))
    def check(body: dict, corr: int) -> None:
        frame = encode_request(api_key, version, corr, body, client_id="cli")
        header = decode_request_header(frame)
        assert (header.api_key, header.api_version, header.correlation_id) == (
            api_key,
            version,
            corr,
        )
        assert header.client_id == "cli"
        decoded = decode_request(api_key, version, frame, header.body_offset)
        assert_subset(body, decoded)
        assert encode_request(api_key, version, corr, decoded, client_id="cli") == frame

    check()


@pytest.mark.parametrize("api_key,version", PAIRS, ids=[f"{k}v{v}" for k, v in PAIRS])
def test_response_round_trip(api_key: int, version: int) -> None:
    @SETTINGS
    @given(body=body_strategy(API_KEYS[api_key], version, True), corr=st.integers(0, 2**31 - 1))
    def check(body: dict, corr: int) -> None:
        frame = encode_response(api_key, version, corr, body, framed=True)
        assert int.from_bytes(frame[:4], "big", signed=True) == len(frame) - 4
        got_corr, decoded = decode_response(api_key, version, frame[4:])
        assert got_corr == corr
        assert_subset(body, decoded)
        assert encode_response(api_key, version, corr, decoded, framed=True) == frame

    check()


def test_every_issue_api_is_covered() -> None:
    names = {info.name for info in API_KEYS.values()}
    wanted = {
        "ApiVersions", "Metadata", "Produce", "Fetch", "ListOffsets", "CreateTopics",
        "DeleteTopics", "CreatePartitions", "DescribeConfigs", "IncrementalAlterConfigs",
        "FindCoordinator", "JoinGroup", "SyncGroup", "Heartbeat", "LeaveGroup", "OffsetCommit",
        "OffsetFetch", "DescribeGroups", "ListGroups", "DeleteGroups", "InitProducerId",
        "DeleteRecords", "DescribeCluster", "OffsetForLeaderEpoch",
    }  # fmt: skip
    assert wanted <= names
