"""Children of a process using gpu_worker.process_lifetime die with it on SIGKILL, without any engine."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from gpu_worker.process_lifetime import descendants
from tests.support.processes import running

# A stand-in worker with an exec'd helper, which only the guardian can reach (started first, so that the
# guardian's first look, which start_guardian waits for, includes it), and a forked child, which the fork
# hook arms; then it waits to be killed.
_PARENT = """
import os, subprocess, sys, time
from gpu_worker.process_lifetime import forked_children_die_with_this_process, start_guardian
subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
start_guardian()
forked_children_die_with_this_process()
if os.fork() == 0:
    time.sleep(600)
    os._exit(0)
print("ready", flush=True)
time.sleep(600)
"""

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux's /proc and prctl")


def test_forked_and_execd_children_die_with_a_sigkilled_parent() -> None:
    with subprocess.Popen([sys.executable, "-c", _PARENT], stdout=subprocess.PIPE, text=True) as parent:
        try:
            assert parent.stdout is not None
            assert parent.stdout.readline().strip() == "ready"
            family = descendants(parent.pid)
            assert len(family) == 3  # guardian, forked child, exec'd helper
        finally:
            parent.kill()
    deadline = time.monotonic() + 5.0
    while (alive := {pid for pid, _ in family if running(pid)}) and time.monotonic() < deadline:
        time.sleep(0.05)
    for pid in alive:
        os.kill(pid, signal.SIGKILL)
    assert not alive
