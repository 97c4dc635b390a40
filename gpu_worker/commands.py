"""The worker's command for the `modelyard` CLI (entry-point group modelyard.commands, see core.commands)."""

from __future__ import annotations

from core.commands import ServerCommand

WORKER = ServerCommand(help="run a GPU worker (see: modelyard worker --help)", target="gpu_worker.main:main")
