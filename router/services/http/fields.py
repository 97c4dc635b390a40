"""Typed reads of an OpenAI JSON body: each wrong type or value is a 400 naming the field."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from core.errors import InvalidArgument

Json = Mapping[str, Any]


def obj(value: object, field: str) -> Json:
    if not isinstance(value, dict):
        raise InvalidArgument(f"{field}: expected an object")
    return value


def opt_obj(body: Json, key: str, field: str = "") -> Json | None:
    value = body.get(key)
    return None if value is None else obj(value, field or key)


def opt_str(body: Json, key: str, field: str = "") -> str | None:
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidArgument(f"{field or key}: expected a string")
    return value


def req_str(body: Json, key: str, field: str = "") -> str:
    value = opt_str(body, key, field)
    if not value:
        raise InvalidArgument(f"{field or key}: required")
    return value


def opt_bool(body: Json, key: str, field: str = "") -> bool | None:
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, bool):
        raise InvalidArgument(f"{field or key}: expected true or false")
    return value


def opt_number(body: Json, key: str, field: str = "") -> float | None:
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidArgument(f"{field or key}: expected a number")
    return float(value)


UINT32_MAX = 2**32 - 1  # most counts travel as uint32; a larger value would fail deep in protobuf instead
INT64_MAX = 2**63 - 1


def opt_int(body: Json, key: str, field: str = "", minimum: int = 0, maximum: int = UINT32_MAX) -> int | None:
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidArgument(f"{field or key}: expected a whole number")
    if value < minimum:
        raise InvalidArgument(f"{field or key}: must be at least {minimum}")
    if value > maximum:
        raise InvalidArgument(f"{field or key}: must be at most {maximum}")
    return value


def opt_list(body: Json, key: str, field: str = "") -> list[Any] | None:
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, list):
        raise InvalidArgument(f"{field or key}: expected an array")
    return value
