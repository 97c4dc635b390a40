"""Colour for the command line's output: on for a terminal, off for pipes, files, TERM=dumb and NO_COLOR."""

from __future__ import annotations

import os
from typing import TextIO

_CODES = {"red": "31", "green": "32", "yellow": "33", "dim": "2", "bold": "1"}


def colour_enabled(stream: TextIO) -> bool:
    # https://no-color.org: any non-empty NO_COLOR turns colour off.
    if os.environ.get("NO_COLOR") or os.environ.get("TERM") == "dumb":
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def paint(text: str, colour: str, enabled: bool = True) -> str:
    if not enabled or not text or colour not in _CODES:
        return text
    return f"\x1b[{_CODES[colour]}m{text}\x1b[0m"
