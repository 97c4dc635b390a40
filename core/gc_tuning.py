"""Garbage collection for a server whose heap is large and mostly long-lived.

A router with a thousand workers holds some 170,000 tracked objects (their leases' streams, tasks and
channels, and everything start-up imported); a full collection walks them all: about 100 ms of CPU with the
event loop stopped, every few thousand requests at the default thresholds. Requests themselves leave little
for the collector (what they make is mostly freed by reference counting), so full collections are made
rarer and smaller:

- what start-up made (modules, configuration, the servers) is frozen: never walked again;
- a full collection waits for FULL_AFTER_GEN1 collections of the middle generation instead of 10 (Python's
  own rule, that a quarter of the old generation be new since the last one, still holds).
"""

from __future__ import annotations

import gc

FULL_AFTER_GEN1 = 100


def settle_after_start() -> None:
    """Call once, when the server has started (before it serves): later objects are collected as usual."""
    gc.collect()
    gc.freeze()
    young, middle, _ = gc.get_threshold()
    gc.set_threshold(young, middle, FULL_AFTER_GEN1)
