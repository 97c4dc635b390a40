"""Checks every backend that can be checked, concurrently, on an interval; callers read the cached result.

A backend never checked counts as healthy: the first request is as good a probe as any. Workers have
no check here: their open lease and load reports are their health.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from router.backends.base import Backend
from router.routing.backend_registry import BackendRegistry

log = logging.getLogger(__name__)

CHECK_TIMEOUT_S = 5.0


class HealthChecker:
    def __init__(self, registry: BackendRegistry, interval_s: float = 30.0) -> None:
        self._registry = registry
        self.interval_s = interval_s
        self._healthy: dict[str, bool] = {}
        self._reasons: dict[str, str] = {}  # why a backend is unhealthy, for status's last_error
        self._task: asyncio.Task[None] | None = None

    def is_healthy(self, backend_id: str) -> bool:
        return self._healthy.get(backend_id, True)

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
            if self.is_healthy(backend.id) != healthy or self.reason(backend.id) != reason:
                log.warning(
                    "backend %s is now %s", backend.id, "healthy" if healthy else f"unhealthy: {reason}"
                )
            self._healthy[backend.id] = healthy
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
