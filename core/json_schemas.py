"""Whether a JSON Schema the caller sent (tool parameters, a response format) is one, checked at the door.

A schema such as `{"type": "nonsense"}` would otherwise reach the engine and come back as an engine failure,
or be passed upstream and silently ignored. Checked against the metaschema it names (`$schema`), draft
2020-12 by default; each distinct schema text is checked once (tools are resent with every turn).
"""

from __future__ import annotations

import json
from functools import lru_cache

from jsonschema.exceptions import SchemaError
from jsonschema.validators import validator_for

from core.errors import InvalidArgument

_CHECKED_SCHEMAS = 1024  # distinct schema texts remembered as valid


def check_json_schema(text: str, field: str) -> None:
    """InvalidArgument naming `field` unless `text` (already known to be a JSON object) is a valid JSON Schema."""
    problem = _problem(text)
    if problem:
        raise InvalidArgument(f"{field}: not a valid JSON Schema: {problem}")


@lru_cache(maxsize=_CHECKED_SCHEMAS)
def _problem(text: str) -> str:
    if not text:
        return ""
    schema = json.loads(text)
    try:
        validator_for(schema).check_schema(schema)
    except SchemaError as error:
        where = "/".join(str(part) for part in error.path)
        return f"{error.message} (at {where})" if where else error.message
    return ""
