"""Generic request/response codec driven by the generated tables. No I/O.

Frames on the wire are `int32 size` + header + body (kafka-spec g.1); the functions here work on
what follows the size field, except `encode_*(..., framed=True)` which also writes it.

Headers (kafka-spec g.2):

    request  v1: int16 api_key | int16 api_version | int32 correlation_id | int16-length client_id
    request  v2: v1 + tagged fields               (iff the body version is flexible)
    response v0: int32 correlation_id
    response v1: v0 + tagged fields               (iff flexible; never for ApiVersions, KIP-511)

Bodies are dicts keyed by the snake_case field names of Kafka's schemas; nested structs are dicts,
arrays are lists, RECORDS are zero-copy memoryview slices of the input (None when null), BYTES are
`bytes`, UUIDs 16 raw bytes. Decoding fills every field of the schema: fields absent from the
version (or from the tag section) get their schema default, so handlers can read one dict shape
for every version. Encoding takes missing keys as their default and silently drops fields the
version does not have (Kafka's `ignorable` check is not enforced).

Implementation: table-driven. The first use of an (API, version, direction) compiles the field
table into a small list of (name, reader) / (name, writer, default) closures, cached for the life
of the process; decoding then walks that list. Straight-line generated code would save the loop
overhead, but the cost per request is dominated by dict building and the record bytes are never
copied, so the tables stay the single readable source (see the benchmark numbers in the tests).

Unknown tagged fields are skipped; trailing bytes after a body are ignored (as Kafka's parser
does not look past the fields it knows).
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any, NamedTuple

from headwater.protocol import primitives as p
from headwater.protocol.errors import (
    ProtocolDecodeError,
    ProtocolEncodeError,
    UnsupportedVersionError,
)
from headwater.protocol.messages import API_KEYS
from headwater.protocol.schema import Field, Message, in_range

API_VERSIONS_KEY = 18

Reader = Callable[[Any, int], tuple[Any, int]]
Writer = Callable[[bytearray, Any], None]


class RequestHeader(NamedTuple):
    """A decoded request header; the body starts at `body_offset` in the same buffer."""

    api_key: int
    api_version: int
    correlation_id: int
    client_id: str | None
    tagged: dict[int, bytes]
    body_offset: int


# ---- compiling field tables --------------------------------------------------------------------

_FIXED = {
    "bool": (p.read_bool, p.write_bool, 1),
    "int8": (p.read_int8, p.write_int8, 1),
    "int16": (p.read_int16, p.write_int16, 2),
    "int32": (p.read_int32, p.write_int32, 4),
    "int64": (p.read_int64, p.write_int64, 8),
    "uint16": (p.read_uint16, p.write_uint16, 2),
    "uint32": (p.read_uint32, p.write_uint32, 4),
    "float64": (p.read_float64, p.write_float64, 8),
    "uuid": (p.read_uuid, p.write_uuid, 16),
}

# (type, flexible, nullable) -> (reader, writer, min size)
_VARIABLE = {
    ("string", False, False): (p.read_string, p.write_string, 2),
    ("string", False, True): (p.read_nullable_string, p.write_nullable_string, 2),
    ("string", True, False): (p.read_compact_string, p.write_compact_string, 1),
    ("string", True, True): (p.read_compact_nullable_string, p.write_compact_nullable_string, 1),
    ("bytes", False, False): (p.read_bytes, p.write_bytes, 4),
    ("bytes", False, True): (p.read_nullable_bytes, p.write_nullable_bytes, 4),
    ("bytes", True, False): (p.read_compact_bytes, p.write_compact_bytes, 1),
    ("bytes", True, True): (p.read_compact_nullable_bytes, p.write_compact_nullable_bytes, 1),
    ("records", False, False): (p.read_records, p.write_records, 4),
    ("records", False, True): (p.read_records, p.write_records, 4),
    ("records", True, False): (p.read_compact_records, p.write_compact_records, 1),
    ("records", True, True): (p.read_compact_records, p.write_compact_records, 1),
}


def _element_codec(
    ftype: str, fields: tuple[Field, ...], version: int, flexible: bool, nullable: bool
) -> tuple[Reader, Writer, int]:
    if ftype == "struct":
        return _compile_struct(fields, version, flexible)
    if ftype in _FIXED:
        return _FIXED[ftype]
    return _VARIABLE[(ftype, flexible, nullable)]


def _field_codec(f: Field, version: int, flexible: bool) -> tuple[Reader, Writer, int]:
    nullable = in_range(f.nullable, version)
    if not f.type.startswith("[]"):
        return _element_codec(f.type, f.fields, version, flexible, nullable)
    elem_type = f.type[2:]
    read_elem, write_elem, elem_min = _element_codec(elem_type, f.fields, version, flexible, False)
    elem_min = max(1, elem_min)
    if flexible:

        def read(buf: Any, pos: int) -> tuple[Any, int]:
            return p.read_compact_array(buf, pos, read_elem, elem_min, nullable)

        def write(out: bytearray, value: Any) -> None:
            p.write_compact_array(out, value, write_elem, nullable)

        return read, write, 1

    def read(buf: Any, pos: int) -> tuple[Any, int]:
        return p.read_array(buf, pos, read_elem, elem_min, nullable)

    def write(out: bytearray, value: Any) -> None:
        p.write_array(out, value, write_elem, nullable)

    return read, write, 4


def _fresh(default: Any) -> Any:
    return [] if default == [] and isinstance(default, list) else default


def _compile_struct(
    fields: tuple[Field, ...], version: int, flexible: bool
) -> tuple[Reader, Writer, int]:
    """Build (reader, writer, minimum encoded size) for a struct's fields at one version."""
    inline_r: list[tuple[str, Reader]] = []
    inline_w: list[tuple[str, Writer, Any]] = []
    absent: list[tuple[str, Any, bool]] = []  # (name, default, default is a list)
    tagged_r: dict[int, Reader] = {}
    tagged_w: list[tuple[int, str, Writer, Any]] = []
    tagged_names: list[tuple[int, str, Any, bool]] = []
    min_size = 1 if flexible else 0
    for f in fields:
        is_list = isinstance(f.default, list)
        if not in_range(f.versions, version):
            absent.append((f.name, f.default, is_list))
            continue
        if flexible and f.tag is not None and in_range(f.tagged, version):
            read, write, _ = _field_codec(f, version, True)
            tagged_r[f.tag] = read
            tagged_w.append((f.tag, f.name, write, f.default))
            tagged_names.append((f.tag, f.name, f.default, is_list))
            continue
        read, write, size = _field_codec(f, version, flexible)
        inline_r.append((f.name, read))
        inline_w.append((f.name, write, f.default))
        min_size += size
    tagged_w.sort(key=lambda t: t[0])
    read_tags = p.read_tagged_fields

    def read_struct(buf: Any, pos: int) -> tuple[dict, int]:
        d: dict[str, Any] = {}
        for name, rd in inline_r:
            d[name], pos = rd(buf, pos)
        for name, default, is_list in absent:
            d[name] = [] if is_list else default
        if flexible:
            found, pos = read_tags(buf, pos, tagged_r)
            for tag, name, default, is_list in tagged_names:
                if tag in found:
                    d[name] = found[tag]
                else:
                    d[name] = [] if is_list else default
        return d, pos

    def write_struct(out: bytearray, d: Any) -> None:
        if d is None:
            d = {}
        get = d.get
        for name, wr, default in inline_w:
            wr(out, get(name, default))
        if flexible:
            if not tagged_w:
                out.append(0)
                return
            items: dict[int, bytes] = {}
            for tag, name, wr, default in tagged_w:
                value = get(name, default)
                if value is None or value == default:
                    continue
                b = bytearray()
                wr(b, value)
                items[tag] = bytes(b)
            p.write_tagged_fields(out, items)

    return read_struct, write_struct, min_size


_cache: dict[tuple[int, int, bool], tuple[Reader, Writer]] = {}


def _codec(api_key: int, version: int, response: bool) -> tuple[Reader, Writer]:
    key = (api_key, version, response)
    codec = _cache.get(key)
    if codec is None:
        info = API_KEYS.get(api_key)
        if info is None or not info.min_version <= version <= info.max_version:
            raise UnsupportedVersionError(api_key, version)
        msg = info.response if response else info.request
        read, write, _ = _compile_struct(msg.fields, version, is_flexible(msg, version))
        codec = _cache[key] = (read, write)
    return codec


def is_flexible(msg: Message, version: int) -> bool:
    """Flexible iff within flexibleVersions; an open range also covers future versions."""
    return in_range(msg.flexible, version)


def supported_versions(api_key: int) -> tuple[int, int] | None:
    info = API_KEYS.get(api_key)
    return None if info is None else (info.min_version, info.max_version)


def _view(buf: Any) -> memoryview:
    return buf if isinstance(buf, memoryview) else memoryview(buf)


def _decode(api_key: int, version: int, buf: Any, offset: int, response: bool) -> dict:
    read, _ = _codec(api_key, version, response)
    try:
        body, _ = read(_view(buf), offset)
    except (ProtocolDecodeError, RecursionError):
        raise
    except (struct.error, IndexError, ValueError, TypeError) as exc:  # pragma: no cover
        raise ProtocolDecodeError(f"malformed {api_key} v{version}: {exc}") from exc
    return body


def _encode_into(out: bytearray, write: Writer, body: Any) -> None:
    try:
        write(out, body)
    except ProtocolEncodeError:
        raise
    except (struct.error, TypeError, AttributeError, OverflowError) as exc:
        raise ProtocolEncodeError(str(exc)) from exc


def _finish(out: bytearray, framed: bool) -> bytes:
    if framed:
        struct.pack_into(">i", out, 0, len(out) - 4)
    return bytes(out)


# ---- requests ----------------------------------------------------------------------------------


def decode_request_header(buf: Any) -> RequestHeader:
    """Decode a request header (v1, or v2 when the API version is flexible).

    Unknown API keys are read as header v1 (the server then closes the connection, g.1). The
    flexibility of an ApiVersions version above our max follows its open range ("3+"), so the
    v2 header of a future ApiVersions request still parses and can get the v0 error answer (g.4).

    Raises:
        ProtocolDecodeError: the buffer is too short or malformed.
    """
    buf = _view(buf)
    api_key, pos = p.read_int16(buf, 0)
    api_version, pos = p.read_int16(buf, pos)
    correlation_id, pos = p.read_int32(buf, pos)
    client_id, pos = p.read_nullable_string(buf, pos)
    tagged: dict[int, bytes] = {}
    info = API_KEYS.get(api_key)
    if info is not None and api_version >= 0 and is_flexible(info.request, api_version):
        tagged, pos = p.read_tagged_fields(buf, pos, keep_unknown=True)
    return RequestHeader(api_key, api_version, correlation_id, client_id, tagged, pos)


def decode_request(api_key: int, version: int, buf: Any, offset: int = 0) -> dict:
    """Decode a request body starting at `offset` (usually `header.body_offset`).

    Raises:
        UnsupportedVersionError: unknown API or version outside our advertised range.
        ProtocolDecodeError: malformed body.
    """
    return _decode(api_key, version, buf, offset, False)


def encode_request(
    api_key: int,
    version: int,
    correlation_id: int,
    body: dict,
    client_id: str | None = "headwater",
    framed: bool = False,
) -> bytes:
    """Encode header + body of a request; with `framed`, prefixed by the int32 size."""
    _, write = _codec(api_key, version, False)
    out = bytearray(b"\0\0\0\0" if framed else b"")
    p.write_int16(out, api_key)
    p.write_int16(out, version)
    p.write_int32(out, correlation_id)
    p.write_nullable_string(out, client_id)
    if is_flexible(API_KEYS[api_key].request, version):
        out.append(0)
    _encode_into(out, write, body)
    return _finish(out, framed)


# ---- responses ---------------------------------------------------------------------------------


def _response_header_flexible(api_key: int, version: int) -> bool:
    if api_key == API_VERSIONS_KEY:
        return False  # KIP-511: ApiVersionsResponse always uses header v0
    return is_flexible(API_KEYS[api_key].response, version)


def encode_response(
    api_key: int, version: int, correlation_id: int, body: dict, framed: bool = False
) -> bytes:
    """Encode header + body of a response; with `framed`, prefixed by the int32 size.

    Raises:
        UnsupportedVersionError: unknown API or version.
        ProtocolEncodeError: a value does not fit its field.
    """
    _, write = _codec(api_key, version, True)
    out = bytearray(b"\0\0\0\0" if framed else b"")
    p.write_int32(out, correlation_id)
    if _response_header_flexible(api_key, version):
        out.append(0)
    _encode_into(out, write, body)
    return _finish(out, framed)


def encode_response_parts(api_key: int, version: int, correlation_id: int, body: dict) -> list[Any]:
    """Encode a framed response (size + header + body) as a list of buffers for a gather
    write: RECORDS values of GatherBuffer.GATHER_MIN bytes or more are not copied; they appear
    as their own items (typically memoryviews of segment mappings).

    Raises:
        UnsupportedVersionError: unknown API or version.
        ProtocolEncodeError: a value does not fit its field.
    """
    _, write = _codec(api_key, version, True)
    out = p.GatherBuffer(b"\0\0\0\0")
    p.write_int32(out, correlation_id)
    if _response_header_flexible(api_key, version):
        out.append(0)
    _encode_into(out, write, body)
    struct.pack_into(">i", out, 0, out.total_size - 4)
    return out.parts()


def decode_response(api_key: int, version: int, buf: Any, offset: int = 0) -> tuple[int, dict]:
    """Decode a response (header + body, no size field); returns (correlation_id, body)."""
    _codec(api_key, version, True)
    buf = _view(buf)
    correlation_id, pos = p.read_int32(buf, offset)
    if _response_header_flexible(api_key, version):
        pos = p.skip_tagged_fields(buf, pos)
    return correlation_id, _decode(api_key, version, buf, pos, True)
