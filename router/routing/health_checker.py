"""Checks every backend that can be checked, concurrently, on an interval; callers read the cached result.

A backend never checked counts as healthy: the first request is as good a probe as any. Workers have
no check here: their open lease and load reports are their health.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import cast

from router.routing.backend_registry import BackendRegistry

log = logging.getLogger(__name__)

CHECK_TIMEOUT_S = 5.0


class HealthChecker:
    def __init__(self, registry: BackendRegistry, interval_s: float = 30.0) -> None:
        self._registry = registry
        self.interval_s = interval_s
        self._results: dict[str, tuple[bool, float]] = {}
        self._task: asyncio.Task[None] | None = None

    def is_healthy(self, backend_id: str) -> bool:
        result = self._results.get(backend_id)
        return True if result is None else result[0]

    def checked_at(self, backend_id: str) -> float | None:
        result = self._results.get(backend_id)
        return None if result is None else result[1]

    async def check_all(self) -> dict[str, bool]:
        checks: dict[str, Callable[[], Awaitable[bool]]] = {}
        for backend in self._registry:
            check = getattr(backend, "health_check", None)
            if check is not None:
                checks[backend.id] = cast(Callable[[], Awaitable[bool]], check)
        outcomes = await asyncio.gather(*(self._check(c) for c in checks.values()))
        now = time.monotonic()
        for backend_id, healthy in zip(checks, outcomes, strict=True):
            if self.is_healthy(backend_id) != healthy:
                log.warning("backend %s is now %s", backend_id, "healthy" if healthy else "unhealthy")
            self._results[backend_id] = (healthy, now)
        return dict(zip(checks, outcomes, strict=True))

    @staticmethod
    async def _check(check: Callable[[], Awaitable[bool]]) -> bool:
        try:
            return await asyncio.wait_for(check(), CHECK_TIMEOUT_S)
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
