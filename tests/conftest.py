"""Settings for the whole test run."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile

# Routers started by tests keep their default usage ledger (under $XDG_DATA_HOME) in a throwaway
# directory, never in the user's real ~/.local/share/modelyard.
os.environ["XDG_DATA_HOME"] = _DATA = tempfile.mkdtemp(prefix="modelyard-test-data-")
atexit.register(shutil.rmtree, _DATA, ignore_errors=True)
