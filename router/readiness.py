"""What the router tells probes: grpc.health.v1 statuses and HTTP /health and /ready.

- `liveness` (a service name of its own): SERVING from start to exit; the liveness probe asks for it, so a
  router that is warming up or draining is never restarted for it.
- "" and the client-facing services: NOT_SERVING until warm (a worker has registered, or startup_wait_s has
  passed: router.routing.warm_start), SERVING then, NOT_SERVING again from the moment the drain begins.
  The readiness probe asks for "".
- The worker registry: SERVING throughout, so workers can register during warm-up.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence

from grpc_health.v1 import health, health_pb2

from router.routing.backend_registry import BackendRegistry
from router.routing.warm_start import WarmStart

LIVENESS = "liveness"
_SERVING = health_pb2.HealthCheckResponse.SERVING
_NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


class Readiness:
    def __init__(
        self,
        servicer: health.aio.HealthServicer,
        warm_start: WarmStart,
        registry: BackendRegistry,
        client_services: Sequence[str],
        always_serving: Sequence[str],
    ) -> None:
        self._servicer = servicer
        self._warm_start = warm_start
        self._registry = registry
        self._client_services = ("", *client_services)
        self._always_serving = (LIVENESS, *always_serving)
        self.draining = False
        self._watch: asyncio.Task[None] | None = None

    @property
    def ready(self) -> bool:
        """Take traffic: warm and not draining."""
        return self._warm_start.warm and not self.draining

    async def start(self) -> None:
        for service in self._always_serving:
            await self._servicer.set(service, _SERVING)
        await self._set_clients(self._warm_start.warm)
        if not self._warm_start.warm:
            self._watch = asyncio.create_task(self._until_warm())

    async def drain(self) -> None:
        """Readiness off for good; liveness stays on."""
        self.draining = True
        await self.stop()
        await self._set_clients(False)

    async def stop(self) -> None:
        if self._watch is not None:
            self._watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watch

    async def _until_warm(self) -> None:
        while not self._warm_start.warm:
            await self._registry.wait_added(self._warm_start.left_s())
        if not self.draining:
            await self._set_clients(True)

    async def _set_clients(self, serving: bool) -> None:
        for service in self._client_services:
            await self._servicer.set(service, _SERVING if serving else _NOT_SERVING)
