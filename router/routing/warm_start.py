"""Warm start: a router that has just started holds a request its backends cannot take yet, instead of
refusing it, while workers register (they reconnect within their backoff cap, 5 s).

Until the router is warm (a worker has registered, or `startup_wait_s` has passed since start), a plan that
finds no backend for the model waits for the next registration and plans again, never past the request's
deadline. Once warm, a plan that finds none fails at once as before: the window ends with the first worker
back, so a model whose workers come back later than another's is refused in between (UNAVAILABLE, which the
client's retry policy retries). Readiness (router.readiness) reads `warm` too.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from core.errors import ModelNotFound, NoBackendAvailable
from router.backends.worker import WorkerBackend
from router.routing.backend_registry import BackendRegistry

T = TypeVar("T")


class WarmStart:
    def __init__(self, registry: BackendRegistry, window_s: float) -> None:
        self._registry = registry
        self._window_s = window_s
        self._ends = time.monotonic() + window_s

    def begin(self) -> None:
        """The window starts now (when the router starts serving, not when it was built)."""
        self._ends = time.monotonic() + self._window_s

    @property
    def warm(self) -> bool:
        """A worker has registered, or the window has passed."""
        return time.monotonic() >= self._ends or any(isinstance(b, WorkerBackend) for b in self._registry)

    def left_s(self) -> float:
        return max(0.0, self._ends - time.monotonic())

    async def plan(self, plan: Callable[[], T], deadline: float | None) -> T:
        """`plan()`, retried on each registration while it finds no backend for the model, until the window
        or the deadline (a time.monotonic() value) ends; then its error stands."""
        try:
            return plan()
        except (NoBackendAvailable, ModelNotFound) as error:
            return await self.retry(plan, deadline, error)

    async def retry(
        self, plan: Callable[[], T], deadline: float | None, error: NoBackendAvailable | ModelNotFound
    ) -> T:
        """`plan()` has just failed with `error`: wait for a registration and plan again, as `plan` does.
        The pipeline calls `plan()` itself first, so a request that finds its backends (all but the first
        few after a start) neither awaits nor builds anything here."""
        while True:
            wait = self.left_s()
            if deadline is not None:
                wait = min(wait, deadline - time.monotonic())
            if wait <= 0 or self.warm:
                raise error
            await self._registry.wait_added(wait)
            try:
                return plan()
            except (NoBackendAvailable, ModelNotFound) as e:
                error = e
