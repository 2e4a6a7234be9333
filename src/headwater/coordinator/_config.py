"""Integer broker settings of the coordinators, from Kafka's dotted names."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields
from typing import Any

from headwater.errors import ConfigError


def int_settings(cls: Any, config: Mapping[str, Any] | None, kwargs: Mapping[str, Any], what: str, minimum: int) -> dict[str, int]:
    """`{field: int}` for a config dataclass of int fields, from Kafka names (dots) and/or
    keyword names (underscores).

    Raises:
        ConfigError: unknown name, non-integer, or a value below `minimum`.
    """
    known = {f.name for f in fields(cls)}
    values: dict[str, int] = {}
    for name, value in {**(config or {}), **kwargs}.items():
        attr = name.replace(".", "_")
        if attr not in known:
            raise ConfigError(f"unknown {what} config {name!r}")
        try:
            number = int(value)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"{name} must be an integer, got {value!r}") from exc
        if number < minimum:
            raise ConfigError(f"{name} must be >= {minimum}, got {number}")
        values[attr] = number
    return values
