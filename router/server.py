"""The router's gRPC server: Router, Admin, Accounting, WorkerRegistry, grpc.health.v1 and reflection on one port."""

from __future__ import annotations

import logging

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from modelyard.v1 import (
    accounting_pb2,
    accounting_pb2_grpc,
    admin_pb2,
    admin_pb2_grpc,
    router_pb2,
    router_pb2_grpc,
)
from modelyard.worker.v1 import worker_pb2, worker_pb2_grpc

from core.addresses import dial_address
from core.constants import GRPC_MESSAGE_OPTIONS
from router.accounting.accountant import Accounting
from router.accounting.auth import AuthInterceptor
from router.backends.factory import create_backend
from router.call_gate import CallGate
from router.config.settings import RouterConfig
from router.pipeline import RequestPipeline
from router.routing.scheduler import Scheduler
from router.routing.state import RoutingState
from router.services.accounting_service import AccountingServicer
from router.services.admin_service import AdminServicer
from router.services.http.server import HttpDoor
from router.services.router_service import RouterServicer
from router.services.worker_registry_service import WorkerRegistryServicer

log = logging.getLogger(__name__)

_ROUTER = router_pb2.DESCRIPTOR.services_by_name["RouterService"].full_name
_ADMIN = admin_pb2.DESCRIPTOR.services_by_name["AdminService"].full_name
_ACCOUNTING = accounting_pb2.DESCRIPTOR.services_by_name["AccountingService"].full_name
_SERVICES = (
    _ROUTER,
    worker_pb2.DESCRIPTOR.services_by_name["WorkerRegistryService"].full_name,
    _ADMIN,
    _ACCOUNTING,
)


class RouterServer:
    def __init__(self, config: RouterConfig | None = None) -> None:
        self.config = config or RouterConfig()
        self.state = RoutingState(self.config)
        self.registry = self.state.registry
        for provider in self.config.providers:
            self.registry.add(create_backend(provider))
        self.scheduler = Scheduler(self.state)
        self.workers = WorkerRegistryServicer(self.registry, self.config, self.state.prefixes)
        self.health = health.aio.HealthServicer()
        self.accounting = Accounting(self.config, self.state)
        # Client-facing services need an API key (Admin an admin one); workers and probes need none.
        auth = AuthInterceptor(
            self.accounting.auth, protected=(_ROUTER, _ADMIN, _ACCOUNTING), admin_only=(_ADMIN,)
        )
        # Counts client calls, so a graceful stop can wait for them; refuses new ones once stopping.
        self.gate = CallGate((_ROUTER, _ADMIN, _ACCOUNTING))
        self._server = grpc.aio.server(
            interceptors=[self.gate, auth],
            options=[
                *GRPC_MESSAGE_OPTIONS,
                # Keep idle worker leases alive through proxies, and notice dead peers.
                ("grpc.keepalive_time_ms", 20_000),
                ("grpc.http2.min_ping_interval_without_data_ms", 5_000),
                ("grpc.keepalive_permit_without_calls", 1),
            ],
        )
        # The transport-free request pipeline; the gRPC Router service is one door to it.
        self.pipeline = RequestPipeline(self.state, self.scheduler, self.accounting)
        router_pb2_grpc.add_RouterServiceServicer_to_server(
            RouterServicer(self.state, self.pipeline), self._server
        )
        accounting_pb2_grpc.add_AccountingServiceServicer_to_server(
            AccountingServicer(self.accounting.auth, self.accounting.writer), self._server
        )
        admin_pb2_grpc.add_AdminServiceServicer_to_server(
            AdminServicer(self.state, self.scheduler, self.workers), self._server
        )
        worker_pb2_grpc.add_WorkerRegistryServiceServicer_to_server(self.workers, self._server)
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self._server)
        reflection.enable_server_reflection(
            (*_SERVICES, health.SERVICE_NAME, reflection.SERVICE_NAME), self._server
        )
        # The OpenAI-compatible HTTP door: the same pipeline, keys and gate, in this process and loop.
        self.http = (
            HttpDoor(self.config, self.state, self.pipeline, self.accounting.auth, self.gate)
            if self.config.http_listen
            else None
        )
        self.port = 0

    @property
    def address(self) -> str:
        return dial_address(self.config.listen, self.port)

    @property
    def metrics_port(self) -> int:
        """The bound /metrics port (0 when metrics are off); useful with metrics_listen "127.0.0.1:0"."""
        return self.accounting.metrics_server.port

    async def start(self) -> int:
        self.port = self._server.add_insecure_port(self.config.listen)
        if self.port == 0:
            raise OSError(f"cannot listen on {self.config.listen}")
        await self.accounting.start()
        await self._server.start()
        if self.http is not None:
            await self.http.start()
        for service in ("", *_SERVICES):
            await self.health.set(service, health_pb2.HealthCheckResponse.SERVING)
        self.state.health.start()
        log.info("router %s listening on %s", self.config.router_id, self.address)
        return self.port

    async def stop(self, grace: float | None = None) -> None:
        """Stop gracefully: report NOT_SERVING, refuse new client calls, let those in flight finish for up to
        `grace` seconds (default: config.grace_seconds), cancel what is left, then flush the usage ledger."""
        grace = self.config.grace_seconds if grace is None else grace
        await self.health.enter_graceful_shutdown()
        self.gate.close()
        await self.state.health.stop()
        if not await self.gate.wait_idle(grace):
            log.warning(
                "stopping: %d calls still running after %.0f s; cancelling them", self.gate.in_flight, grace
            )
        # Worker registrations stay open until here: the workers serve the calls that were still running.
        if self.http is not None:
            await self.http.stop()
        await self._server.stop(0)
        # After the server: the last requests' records are queued by now, and all get written.
        await self.accounting.stop()
        for backend in self.registry:
            await backend.close()

    async def wait_for_termination(self) -> None:
        await self._server.wait_for_termination()
