"""Checks every backend that can be checked, concurrently, on an interval; callers read the cached result.

A backend never checked counts as healthy: the first request is as good a probe as any. Workers have
no check here: their open lease and load reports are their health.

Request outcomes outrank probes: a backend that answered a request within the last two check intervals stays
healthy whatever its probe says (a probe is one GET /models; an answered request is the real thing), and a
backend whose requests fail is taken out by its circuit breaker, not here.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from router.backends.base import Backend
from router.routing.backend_registry import BackendRegistry
from router.routing.stats import StatsBook

log = logging.getLogger(__name__)

CHECK_TIMEOUT_S = 5.0


class HealthChecker:
    def __init__(
        self, registry: BackendRegistry, interval_s: float = 30.0, stats: StatsBook | None = None
    ) -> None:
        self._registry = registry
        self.interval_s = interval_s
        self._stats = stats or StatsBook()
        self._healthy: dict[str, bool] = {}
        # Backends whose last probe failed (a set of ids the scheduler reads per candidate): any other is
        # healthy without asking.
        self.failing: set[str] = set()
        self._reasons: dict[str, str] = {}  # why a backend is unhealthy, for status's last_error
        self._task: asyncio.Task[None] | None = None

    def is_healthy(self, backend_id: str) -> bool:
        return self.probe_healthy(backend_id) or self._answered_lately(backend_id)

    def probe_healthy(self, backend_id: str) -> bool:
        return self._healthy.get(backend_id, True)

    def _answered_lately(self, backend_id: str) -> bool:
        if backend_id not in self._stats:
            return False
        answered = self._stats[backend_id].last_success_at
        return answered is not None and time.monotonic() - answered <= 2 * self.interval_s

    def reason(self, backend_id: str) -> str:
        """Why the last check found it unhealthy; "" while healthy or unchecked."""
        return self._reasons.get(backend_id, "")

    async def check_all(self) -> dict[str, bool]:
        """Check every backend at once; returns the results of those that have a check."""
        backends = list(self._registry)
        outcomes = await asyncio.gather(*(self._check(b) for b in backends))
        checked = {}
        for backend, (healthy, reason) in zip(backends, outcomes, strict=True):
            if healthy is None:
                continue
            checked[backend.id] = healthy
            if self.probe_healthy(backend.id) != healthy or self.reason(backend.id) != reason:
                log.warning(
                    "backend %s: probe now %s", backend.id, "passes" if healthy else f"fails: {reason}"
                )
            self._healthy[backend.id] = healthy
            if healthy:
                self.failing.discard(backend.id)
            else:
                self.failing.add(backend.id)
            self._reasons[backend.id] = reason
        return checked

    @staticmethod
    async def _check(backend: Backend) -> tuple[bool | None, str]:
        """(healthy, why not); a backend that cannot work as configured is not even called."""
        if problem := backend.configuration_problem():
            return False, problem
        try:
            healthy = await asyncio.wait_for(backend.health_check(), CHECK_TIMEOUT_S)
        except TimeoutError:
            return False, f"health check: no answer within {CHECK_TIMEOUT_S:.0f} s"
        except Exception as error:
            return False, f"health check: {type(error).__name__}"
        return healthy, "" if healthy is not False else "health check failed (listing models)"

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _loop(self) -> None:
        while True:
            await self.check_all()
            await asyncio.sleep(self.interval_s)
