"""Checking a config mapping against the settings dataclasses, with pydantic.

The dataclasses in router.config.settings and router.config.accounting *are* the schema: a new setting, or a
new section (a dataclass-typed field), is checked from the moment it is declared, with no change here. Each
field's type is enforced (numbers from strings such as "3" are accepted, "three" is not), unknown keys are
refused at every level, and constraints come from the annotations (pydantic's PositiveInt, ...) or from a
dataclass's __post_init__ raising ValueError.

Every problem comes back as one line naming the field, e.g.
`config file router.yaml: cache.ttl_s: expected a number, got 'five minutes'`.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Mapping
from typing import Any, TypeVar, cast

from pydantic import ConfigDict, TypeAdapter, ValidationError

T = TypeVar("T")

# Values of fields with these words in their names are never echoed back: they may be secrets.
_SECRET_WORDS = ("key", "token", "password", "secret", "url", "usage_db")
_MESSAGES = {
    "unexpected_keyword_argument": "unknown setting",
    "missing": "required",
    "int_parsing": "expected a whole number",
    "int_type": "expected a whole number",
    "int_from_float": "expected a whole number",
    "float_parsing": "expected a number",
    "float_type": "expected a number",
    "bool_parsing": "expected true or false",
    "bool_type": "expected true or false",
    "string_type": "expected a string",
    "dict_type": "expected a mapping",
    "list_type": "expected a list",
    "dataclass_type": "expected a mapping",
    "dataclass_exact_type": "expected a mapping",
}


class ConfigError(ValueError):
    """A config that cannot be used; the message is one line naming the field and the file."""


def validate(cls: type[T], raw: Any, source: str, where: str = "") -> T:
    """`raw` (from YAML) as a `cls`, or ConfigError. `source` names the file; `where` prefixes field paths."""
    try:
        return cast(T, _adapter(cls).validate_python(raw))
    except ValidationError as error:
        raise ConfigError(f"{source}: {describe(error, where)}") from None


def describe(error: ValidationError, where: str = "") -> str:
    """A ValidationError as one line: `field: problem; field: problem`."""
    return "; ".join(_describe_one(detail, where) for detail in error.errors())


def _describe_one(detail: Any, where: str) -> str:
    path = ".".join(str(part) for part in (*([where] if where else []), *detail["loc"]))
    kind = detail["type"]
    if kind == "value_error":  # a __post_init__ check: its message already says what is wrong
        message = str(detail["msg"]).removeprefix("Value error, ")
        if path and message.startswith(path):
            return message
        return f"{path}: {message}" if path else message
    message = _MESSAGES.get(kind, str(detail["msg"]))
    value = detail.get("input")
    shown = ""
    if kind not in ("missing", "unexpected_keyword_argument") and not isinstance(value, Mapping | list):
        secret = any(word in path.lower() for word in _SECRET_WORDS)
        shown = ", got (hidden)" if secret else f", got {value!r:.60}"
    return f"{path or 'config'}: {message}{shown}"


_adapters: dict[Any, TypeAdapter[Any]] = {}


def _adapter(cls: Any) -> TypeAdapter[Any]:
    if cls not in _adapters:
        _refuse_unknown_keys(cls, set())
        _adapters[cls] = TypeAdapter(cls)
    return _adapters[cls]


def _refuse_unknown_keys(hint: Any, seen: set[type]) -> None:
    """Give every dataclass reachable from `hint` pydantic's extra="forbid" (stdlib dataclasses ignore extras)."""
    if isinstance(hint, type) and dataclasses.is_dataclass(hint) and hint not in seen:
        seen.add(hint)
        hint.__pydantic_config__ = ConfigDict(extra="forbid")  # type: ignore[attr-defined]
        for field_hint in typing.get_type_hints(hint).values():
            _refuse_unknown_keys(field_hint, seen)
    for argument in typing.get_args(hint):
        _refuse_unknown_keys(argument, seen)
