"""Settings for the whole test run."""

from __future__ import annotations

import atexit
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
