"""kafka-python 3.x as an independent oracle for our message codecs.

Goal: our bytes are Kafka's bytes. kafka-python 3.x ships its own codec (kafka.protocol.*
ApiMessage classes, its own copy of the schemas and its own encoder), so agreement on bytes is
evidence that neither side misreads field order, nullability, compact/tagged encodings.
Method: for every API/version both sides support, hypothesis bodies from our tables are encoded by
us; kafka-python decodes those bytes and re-encodes its object: the bytes must be equal (its
encoder agrees with ours). We then decode kafka-python's bytes and re-encode them: equal again.
Field names differ (kafka-python keeps Kafka's CamelCase in places), hence the comparison on bytes.
max_examples=5 per pair keeps the module around ten seconds.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest
from hypothesis import HealthCheck, given, settings
from protocol_strategies import api_versions, body_strategy

from headwater.protocol import API_KEYS
from headwater.protocol.codec import _codec

kp = pytest.importorskip("kafka.protocol")
ApiMessage = pytest.importorskip("kafka.protocol.api_message").ApiMessage


def _kafka_python_classes() -> dict[str, type]:
    found: dict[str, type] = {}
    for mod_info in pkgutil.walk_packages(kp.__path__, "kafka.protocol."):
        if ".old" in mod_info.name or "generate" in mod_info.name:
            continue
        try:
            mod = importlib.import_module(mod_info.name)
        except ImportError:
            continue
        for name, cls in vars(mod).items():
            if (
                inspect.isclass(cls)
                and issubclass(cls, ApiMessage)
                and cls is not ApiMessage
                and getattr(cls, "_class_version", None) is None
            ):
                found[name] = cls
    return found


KP = _kafka_python_classes()


def _pairs() -> list[tuple[int, int, bool]]:
    out = []
    for key, version in api_versions(API_KEYS):
        name = API_KEYS[key].name
        for response in (False, True):
            cls = KP.get(name + ("Response" if response else "Request"))
            if cls is not None and cls.min_version <= version <= cls.max_version:
                out.append((key, version, response))
    return out


PAIRS = _pairs()
IDS = [f"{API_KEYS[k].name}{'Response' if r else 'Request'}v{v}" for k, v, r in PAIRS]


def _encode(api_key: int, version: int, response: bool, body: dict) -> bytes:
    out = bytearray()
    _codec(api_key, version, response)[1](out, body)
    return bytes(out)


def _decode(api_key: int, version: int, response: bool, data: bytes) -> dict:
    body, pos = _codec(api_key, version, response)[0](memoryview(data), 0)
    assert pos == len(data)
    return body


def test_oracle_covers_most_pairs() -> None:
    total = sum(2 * (i.max_version - i.min_version + 1) for i in API_KEYS.values())
    assert len(PAIRS) >= 0.9 * total, (len(PAIRS), total)


@pytest.mark.parametrize("api_key,version,response", PAIRS, ids=IDS)
def test_bytes_agree_with_kafka_python(api_key: int, version: int, response: bool) -> None:
    info = API_KEYS[api_key]
    cls = KP[info.name + ("Response" if response else "Request")]

    @settings(
        max_examples=5,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
    @given(body=body_strategy(info, version, response))
    def check(body: dict) -> None:
        if api_key == 18 and response:
            # kafka-python reads any ApiVersionsResponse with an error as v0 (the g.4 fallback
            # format), so only error-free bodies can be compared at v1+.
            body["error_code"] = 0
        ours = _encode(api_key, version, response, body)
        obj = cls[version].decode(ours)
        obj._header = None  # DeleteTopicsRequest.encode reads it; decode leaves it unset
        theirs = obj.encode(version=version)
        assert theirs == ours
        assert _encode(api_key, version, response, _decode(api_key, version, response, theirs)) == (
            theirs
        )

    check()
