"""The router's commands for the `modelyard` CLI (entry-point group modelyard.commands, see core.commands)."""

from __future__ import annotations

from core.commands import ServerCommand

ROUTER = ServerCommand(
    help="run the router, or `router hash-key` to hash an API key (see --help)", target="router.main:main"
)
UP = ServerCommand(
    help="run a router and one local worker (for a laptop or a single GPU host)", target="router.up:main"
)
