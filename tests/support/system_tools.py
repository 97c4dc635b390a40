"""The system packages some tests need (what `make system-deps` installs), checked in one place.

A test that needs one calls `require(...)`: without it the test is skipped with a reason that names the
package, except under CI (`CI` set), where .ci/run has installed everything and a missing tool is a failure.
The session also names whatever is missing in its header and again in its summary (tests/conftest.py), so a
run that skipped tests never does so quietly.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.servers import postgres_bin

NODE_MODULES = Path(__file__).resolve().parents[1] / "node" / "node_modules"


@dataclass(frozen=True)
class SystemTool:
    name: str  # the command (or thing) looked for
    source: str  # what installs it: a Debian package, or a make target
    needed_by: str

    def present(self) -> bool:
        if self.name == "initdb":
            return postgres_bin() is not None
        if self.name == "tests/node/node_modules":
            return (NODE_MODULES / "@grpc" / "grpc-js").is_dir()
        return shutil.which(self.name) is not None


TOOLS = {
    tool.name: tool
    for tool in (
        SystemTool("espeak-ng", "package espeak-ng", "speech for the transcription tests"),
        SystemTool("sox", "package sox", "speech for the transcription tests"),
        SystemTool("redis-server", "package redis-server", "the fleet-wide limit and shared cache tests"),
        SystemTool("initdb", "package postgresql", "the PostgreSQL ledger tests"),
        SystemTool("kubectl", "package kubernetes-client", "rendering the Kustomize overlays"),
        SystemTool("node", "package nodejs", "the Node client test"),
        SystemTool("tests/node/node_modules", "`make install` (npm ci)", "the Node client test"),
    )
}

HOW = "`make system-deps` installs the system packages (Debian/Ubuntu), `make install` the npm ones"


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


def missing() -> list[SystemTool]:
    return [tool for tool in TOOLS.values() if not tool.present()]


def describe(tools: list[SystemTool]) -> str:
    return "; ".join(f"{tool.name} ({tool.source}: {tool.needed_by})" for tool in tools)


def require(*names: str) -> None:
    """Skip the calling test (fail it under CI) unless every named tool is present."""
    absent = [TOOLS[name] for name in names if not TOOLS[name].present()]
    if not absent:
        return
    message = f"missing: {describe(absent)}; {HOW}"
    if in_ci():
        pytest.fail(message, pytrace=False)
    pytest.skip(message)
