"""The shape of the generated message tables (protocol/messages/*.py).

Each Kafka message is a `Message` holding a tuple of `Field`s, in wire order. Version ranges are
inclusive `(lo, hi)` pairs; an open range ("3+" in Kafka's schemas) has `hi == MAX`. The tables
are data only: `codec.py` turns one (message, version) pair into a reader and a writer the first
time it is used.

Field types:
    "bool", "int8", "int16", "int32", "int64", "uint16", "uint32", "float64", "uuid",
    "string", "bytes", "records"   primitives (kafka-spec g.3)
    "struct"                       one nested struct, `fields` holds its fields
    "[]T"                          array of primitive T, or "[]struct" with `fields`
"""

from __future__ import annotations

from typing import Any, NamedTuple

MAX = 0x7FFF
Versions = tuple[int, int]


class Field(NamedTuple):
    """One field of a message or nested struct (Kafka's field spec, trimmed to what the wire needs).

    Attributes:
        name: snake_case of Kafka's field name; the key in decoded dicts.
        type: see the module docstring.
        versions: versions in which the field exists.
        nullable: versions in which it may be null, or None.
        tag: tag number when it is a tagged field in `tagged` versions.
        tagged: versions in which it travels in the tag section, or None.
        default: value when absent from the version (or from the tag section).
        ignorable: Kafka's flag: may be dropped when writing a version that lacks it.
        fields: nested fields of a struct or struct array.
    """

    name: str
    type: str
    versions: Versions
    nullable: Versions | None = None
    tag: int | None = None
    tagged: Versions | None = None
    default: Any = None
    ignorable: bool = False
    fields: tuple[Field, ...] = ()


class Message(NamedTuple):
    """A request or response body of one API."""

    name: str
    api_key: int
    valid: Versions
    flexible: Versions | None
    fields: tuple[Field, ...]


def in_range(r: Versions | None, version: int) -> bool:
    return r is not None and r[0] <= version <= r[1]
