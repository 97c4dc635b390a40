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
        self._task: asyncio.Task[None] | None = None

    def is_healthy(self, backend_id: str) -> bool:
        return self._healthy.get(backend_id, True)

    async def check_all(self) -> dict[str, bool]:
        """Check every backend at once; returns the results of those that have a check."""
        backends = list(self._registry)
        outcomes = await asyncio.gather(*(self._check(b) for b in backends))
        checked = {
            b.id: healthy for b, healthy in zip(backends, outcomes, strict=True) if healthy is not None
        }
        for backend_id, healthy in checked.items():
            if self.is_healthy(backend_id) != healthy:
                log.warning("backend %s is now %s", backend_id, "healthy" if healthy else "unhealthy")
            self._healthy[backend_id] = healthy
        return checked

    @staticmethod
    async def _check(backend: Backend) -> bool | None:
        try:
            return await asyncio.wait_for(backend.health_check(), CHECK_TIMEOUT_S)
        except Exception:
            return False

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
