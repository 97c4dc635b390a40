"""The router's garbage-collection settings after start-up, checked in a process of its own (they are global)."""

from __future__ import annotations

import subprocess
import sys

CHECK = """
import gc
from core.gc_tuning import FULL_AFTER_GEN1, settle_after_start
before = gc.get_threshold()
started = [object() for _ in range(10)]
settle_after_start()
assert gc.get_freeze_count() > 0, "start-up's objects are not frozen"
assert gc.get_threshold() == (before[0], before[1], FULL_AFTER_GEN1), gc.get_threshold()
cycle = []
cycle.append(cycle)
del cycle
assert gc.collect() >= 1, "objects made after start-up are still collected"
"""


def test_start_up_is_frozen_full_collections_are_rarer_and_later_garbage_is_still_collected() -> None:
    done = subprocess.run([sys.executable, "-c", CHECK], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
