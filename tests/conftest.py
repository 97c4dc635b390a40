"""Settings for the whole test run."""

from __future__ import annotations

import asyncio
import atexit
import inspect
import os
import shutil
import tempfile
from typing import Any

import pytest

from tests.support import system_tools

# Routers started by tests keep their default usage ledger (under $XDG_DATA_HOME) in a throwaway
# directory, never in the user's real ~/.local/share/modelyard.
os.environ["XDG_DATA_HOME"] = _DATA = tempfile.mkdtemp(prefix="modelyard-test-data-")
atexit.register(shutil.rmtree, _DATA, ignore_errors=True)


def pytest_report_header(config: pytest.Config) -> str:
    absent = system_tools.missing()
    if not absent:
        return "system packages: all present"
    return f"system packages missing (the tests that need them are skipped): {system_tools.describe(absent)}"


def pytest_sessionstart(session: pytest.Session) -> None:
    """Under CI a missing system package stops the run at once, naming it, instead of failing test by test."""
    absent = system_tools.missing()
    if absent and system_tools.in_ci():
        pytest.exit(f"missing: {system_tools.describe(absent)}; {system_tools.HOW}", returncode=3)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    absent = system_tools.missing()
    if absent:
        terminalreporter.write_sep("=", "system packages missing", yellow=True)
        terminalreporter.write_line(f"{system_tools.describe(absent)}")
        terminalreporter.write_line(f"the tests that need them were skipped; {system_tools.HOW}")


_SYNC_LOOP: list[
    asyncio.AbstractEventLoop
] = []  # held for the whole run: a dropped loop warns when collected


def _current_loop_cleared() -> bool:
    """True where asyncio.get_event_loop() would raise: the loop was set, then set to None (as asyncio.run does at
    its end). Read from the policy's state rather than by calling get_event_loop(), which would otherwise create
    a loop of its own that is dropped, unclosed, as soon as pytest-asyncio sets its loop."""
    local = getattr(asyncio.get_event_loop_policy(), "_local", None)
    return (
        local is not None and getattr(local, "_set_called", False) and getattr(local, "_loop", None) is None
    )


@pytest.fixture(autouse=True)
def _a_current_event_loop(request: pytest.FixtureRequest) -> None:
    """A synchronous test that builds a grpc.aio server (RouterServer) needs a current event loop in the main
    thread, as a fresh process has. A test earlier in the run that ends with `asyncio.run` leaves none: in the
    full run that failed such tests by order alone. One spare loop, kept for the run, is set then."""
    if inspect.iscoroutinefunction(getattr(request, "function", None)) or not _current_loop_cleared():
        return
    if not _SYNC_LOOP:
        _SYNC_LOOP.append(asyncio.new_event_loop())
        atexit.register(_SYNC_LOOP[0].close)
    asyncio.set_event_loop(_SYNC_LOOP[0])
