"""Refused worker registrations, logged at most once a minute per address with how many went unlogged.

A worker refused for a full pool or a bad credential retries every second or so, forever: one line per try
buried the log (5,000 lines in three minutes from two workers). Every refusal is still counted, by reason,
in the pool's events (the metric modelyard_worker_registrations_refused).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from router.routing.pool_events import PoolEvents

log = logging.getLogger("router.services.worker_registry_service")

INTERVAL_S = 60.0
# Addresses remembered at once; past it, those not logged within the interval are forgotten.
MAX_ADDRESSES = 4096


class RefusalLog:
    def __init__(self, events: PoolEvents, clock: Callable[[], float] = time.monotonic) -> None:
        self._events = events
        self._clock = clock
        self._last: dict[str, tuple[float, int]] = {}  # address -> (when last logged, refusals since)

    def refused(self, address: str, reason: str, message: str) -> None:
        self._events.refused(reason)
        now = self._clock()
        logged, unlogged = self._last.get(address, (-INTERVAL_S, 0))
        if now - logged < INTERVAL_S:
            self._last[address] = (logged, unlogged + 1)
            return
        if len(self._last) >= MAX_ADDRESSES:
            self._last = {a: v for a, v in self._last.items() if now - v[0] < INTERVAL_S}
        self._last[address] = (now, 0)
        more = f" ({unlogged} more refused from there in the last minute, not logged)" if unlogged else ""
        log.info("refused a worker registration from %s: %s%s", address, message, more)
