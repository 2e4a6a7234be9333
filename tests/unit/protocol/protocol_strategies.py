"""Hypothesis strategies that build valid body dicts from the generated message tables.

Each strategy covers exactly the fields a given version carries (inline and tagged), with small
sizes so that one example encodes in microseconds. Shared by the round-trip, oracle and fuzz tests.
"""

from __future__ import annotations

from hypothesis import strategies as st

from headwater.protocol.schema import Field, in_range

_INTS = {
    "int8": (-(1 << 7), (1 << 7) - 1),
    "int16": (-(1 << 15), (1 << 15) - 1),
    "int32": (-(1 << 31), (1 << 31) - 1),
    "int64": (-(1 << 63), (1 << 63) - 1),
    "uint16": (0, (1 << 16) - 1),
    "uint32": (0, (1 << 32) - 1),
}


def _element(ftype: str, fields: tuple[Field, ...], version: int) -> st.SearchStrategy:
    if ftype == "struct":
        return struct_strategy(fields, version)
    if ftype in _INTS:
        lo, hi = _INTS[ftype]
        return st.integers(lo, hi)
    if ftype == "bool":
        return st.booleans()
    if ftype == "float64":
        return st.floats(allow_nan=False)
    if ftype == "uuid":
        return st.binary(min_size=16, max_size=16)
    if ftype == "string":
        return st.text(max_size=8)
    if ftype in ("bytes", "records"):
        return st.binary(max_size=24)
    raise AssertionError(ftype)


def field_strategy(f: Field, version: int) -> st.SearchStrategy:
    if f.type.startswith("[]"):
        s = st.lists(_element(f.type[2:], f.fields, version), max_size=3)
    else:
        s = _element(f.type, f.fields, version)
    if in_range(f.nullable, version):
        s = st.none() | s
    return s


def struct_strategy(fields: tuple[Field, ...], version: int) -> st.SearchStrategy:
    return st.fixed_dictionaries(
        {f.name: field_strategy(f, version) for f in fields if in_range(f.versions, version)}
    )


def body_strategy(api_info, version: int, response: bool) -> st.SearchStrategy:
    msg = api_info.response if response else api_info.request
    return struct_strategy(msg.fields, version)


def api_versions(api_keys) -> list[tuple[int, int]]:
    return [
        (key, v)
        for key, info in sorted(api_keys.items())
        for v in range(info.min_version, info.max_version + 1)
    ]


def assert_subset(expected, actual, path: str = "body") -> None:
    """Every field we generated comes back equal; extra decoded fields are schema defaults."""
    if isinstance(expected, dict):
        assert isinstance(actual, dict), path
        for k, v in expected.items():
            assert k in actual, f"{path}.{k} missing"
            assert_subset(v, actual[k], f"{path}.{k}")
    elif isinstance(expected, list):
        assert isinstance(actual, list) and len(actual) == len(expected), path
        for i, (e, a) in enumerate(zip(expected, actual, strict=True)):
            assert_subset(e, a, f"{path}[{i}]")
    elif isinstance(expected, (bytes, bytearray)):
        assert bytes(actual) == bytes(expected), path
    else:
        assert actual == expected, f"{path}: {actual!r} != {expected!r}"
