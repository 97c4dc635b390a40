"""Server commands (`modelyard router`, `worker`, `up`) that server packages add to the `modelyard` CLI.

The router and worker packages register a `ServerCommand` under the entry-point group below
(pyproject.toml); the client's CLI finds them there, so it never imports, or even names, a server package.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

ENTRY_POINT_GROUP = "modelyard.commands"


@dataclass(frozen=True)
class ServerCommand:
    help: str
    # "module:function"; the function takes the arguments after the command name and returns an exit status.
    # Imported only when the command runs, so `modelyard --help` and client commands stay light.
    target: str

    def run(self, argv: list[str]) -> int:
        module, _, function = self.target.partition(":")
        return int(getattr(importlib.import_module(module), function)(argv) or 0)
