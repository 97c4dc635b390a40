"""The one stdout line a worker prints when it serves, and its parser, for whatever starts workers and
waits for them (the tests; a supervisor script)."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass

READY_MARKER = "modelyard-worker ready"
_PATTERN = re.compile(rf"^{re.escape(READY_MARKER)} address=(\S+) worker_id=(\S+) models=(\S*)\s*$")


@dataclass(frozen=True)
class ReadyLine:
    address: str  # where the Worker service can be dialled (the advertised address)
    worker_id: str
    models: tuple[str, ...]


def format_ready_line(address: str, worker_id: str, models: Sequence[str]) -> str:
    return f"{READY_MARKER} address={address} worker_id={worker_id} models={','.join(models)}"


def parse_ready_line(line: str) -> ReadyLine | None:
    """The ReadyLine in `line` (as printed, or the "msg" of a JSON line with --log-format json), or None when it
    is some other output."""
    line = line.strip()
    if line.startswith("{"):
        try:
            line = str(json.loads(line).get("msg", ""))
        except (ValueError, AttributeError):
            return None
    match = _PATTERN.match(line)
    if match is None:
        return None
    models = tuple(model for model in match.group(3).split(",") if model)
    return ReadyLine(address=match.group(1), worker_id=match.group(2), models=models)
