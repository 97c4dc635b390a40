"""The router's gRPC servers: Router, Admin, Accounting, WorkerRegistry, grpc.health.v1 and reflection.

All on one port by default; with registry_listen, WorkerRegistry moves to a port of its own so the
client-facing Service need not expose it. Each listener serves TLS when configured.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import grpc
from grpc_health.v1 import health, health_pb2_grpc
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
from core.decode_guard import DecodeGuard
from core.interceptors import WorkerTokenInterceptor
from core.listen_errors import ListenError, reason, why_not
from router.accounting.accountant import Accounting
from router.accounting.auth import AuthInterceptor
from router.backends.factory import create_backend
from router.call_gate import CallGate
from router.config.settings import RouterConfig
from router.drain import connection_options, stop_accepting
from router.pipeline import RequestPipeline
from router.readiness import Readiness
from router.routing.scheduler import Scheduler
from router.routing.state import RoutingState
from router.security.exposure import check_exposure
from router.security.listeners import (
    bind,
    check_tls_settings,
    credentials,
    main_listener_tls,
    registry_listener_tls,
    server_options,
)
from router.services.accounting_service import AccountingServicer
from router.services.admin_service import AdminServicer
from router.services.audit_interceptor import AuditInterceptor
from router.services.http.server import HttpDoor
from router.services.router_service import RouterServicer
from router.services.worker_registry_service import WorkerRegistryServicer

log = logging.getLogger(__name__)

_ROUTER = router_pb2.DESCRIPTOR.services_by_name["RouterService"].full_name
_ADMIN = admin_pb2.DESCRIPTOR.services_by_name["AdminService"].full_name
_ACCOUNTING = accounting_pb2.DESCRIPTOR.services_by_name["AccountingService"].full_name
_REGISTRY = worker_pb2.DESCRIPTOR.services_by_name["WorkerRegistryService"].full_name
_CLIENT_SERVICES = (_ROUTER, _ADMIN, _ACCOUNTING)


class RouterServer:
    def __init__(self, config: RouterConfig | None = None) -> None:
        self.config = config or RouterConfig()
        check_tls_settings(self.config)
        # Read the certificate files now: a missing one stops the router before it binds anything.
        self._main_credentials = credentials(main_listener_tls(self.config))
        self._registry_credentials = credentials(registry_listener_tls(self.config))
        self.state = RoutingState(self.config)
        self.registry = self.state.registry
        for provider in self.config.providers:
            self.registry.add(create_backend(provider))
        self.scheduler = Scheduler(self.state)
        self.workers = WorkerRegistryServicer(
            self.registry,
            self.config,
            self.state.prefixes,
            forget=self.state.forget,
            events=self.state.events,
        )
        self.health = health.aio.HealthServicer()
        self.accounting = Accounting(self.config, self.state)
        check_exposure(self.config, has_api_keys=not self.accounting.auth.open)
        # Client-facing services need an API key (Admin an admin one); workers need the worker token when
        # one is configured; probes need nothing.
        auth = AuthInterceptor(self.accounting.auth, protected=_CLIENT_SERVICES, admin_only=(_ADMIN,))
        worker_auth: list[grpc.aio.ServerInterceptor] = []
        if self.config.workers.token:
            worker_auth.append(WorkerTokenInterceptor(self.config.workers.token, (_REGISTRY,)))
        # Counts client calls, so a graceful stop can wait for them; refuses new ones once stopping.
        self.gate = CallGate(_CLIENT_SERVICES)
        # First, so it records what the others decide too (a refused Admin call is still an Admin call).
        audit = AuditInterceptor(self.accounting.audit, self.accounting.auth, (_ADMIN,))
        # DecodeGuard before it: it wraps what the others return, so a request that does not decode is
        # INVALID_ARGUMENT (not grpcio's UNKNOWN) and never reaches them.
        # Client connections age out (GOAWAY) within the drain window: router.drain.
        drain_options = connection_options(self.config.shutdown.connection_max_age_ms)
        self._server = grpc.aio.server(
            interceptors=[DecodeGuard(), audit, self.gate, auth, *worker_auth],
            options=[*server_options(self.config), *drain_options],
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
            AdminServicer(self.state, self.scheduler, self.workers, self.accounting.audit), self._server
        )
        self._registry_server = self._server
        if self.config.registry_listen:
            self._registry_server = grpc.aio.server(
                interceptors=[DecodeGuard(), *worker_auth], options=server_options(self.config)
            )
        worker_pb2_grpc.add_WorkerRegistryServiceServicer_to_server(self.workers, self._registry_server)
        self._servers = list(dict.fromkeys((self._server, self._registry_server)))
        self.readiness = Readiness(
            self.health, self.pipeline.warm_start, self.registry, _CLIENT_SERVICES, (_REGISTRY,)
        )
        self._give_up = asyncio.Event()
        for server in self._servers:
            services = [*_CLIENT_SERVICES] if server is self._server else []
            if server is self._registry_server:
                services.append(_REGISTRY)
            health_pb2_grpc.add_HealthServicer_to_server(self.health, server)
            reflection.enable_server_reflection(
                (*services, health.SERVICE_NAME, reflection.SERVICE_NAME), server
            )
        # The OpenAI-compatible HTTP door: the same pipeline, keys and gate, in this process and loop.
        self.http = (
            HttpDoor(self.config, self.state, self.pipeline, self.accounting.auth, self.gate, self.readiness)
            if self.config.http_listen
            else None
        )
        self.port = 0
        self.registry_port = 0

    @property
    def address(self) -> str:
        return dial_address(self.config.listen, self.port)

    @property
    def registry_address(self) -> str:
        """Where workers register: the registry's own port, else the main one."""
        if not self.config.registry_listen:
            return self.address
        return dial_address(self.config.registry_listen, self.registry_port)

    @property
    def metrics_port(self) -> int:
        """The bound /metrics port (0 when metrics are off); useful with metrics_listen "127.0.0.1:0"."""
        return self.accounting.metrics_server.port

    async def start(self) -> int:
        """Bind and serve; a port that cannot be bound raises ListenError, with nothing left running."""
        try:
            await self._bind_and_start()
        except ListenError:
            await self.accounting.stop()
            await asyncio.gather(*(server.stop(0) for server in self._servers))
            raise
        self.pipeline.warm_start.begin()
        await self.readiness.start()
        self.state.health.start()
        log.info("router %s listening on %s", self.config.router_id, self.address)
        if self._registry_server is not self._server:
            log.info("worker registry listening on %s", self.registry_address)
        return self.port

    async def drain(self, seconds: float | None = None) -> None:
        """The drain before `stop` (router.drain): NOT_SERVING, no new connections, every client connection
        told to go (GOAWAY by its age limit), and everything that still arrives served, for `seconds`
        (default: config.shutdown.drain_s) or until `give_up`."""
        seconds = self.config.shutdown.drain_s if seconds is None else seconds
        await self.readiness.drain()
        if seconds <= 0:
            return
        stop_accepting(self.port)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._give_up.wait(), seconds)

    def give_up(self) -> None:
        """Cut the drain and the grace short (a second stop signal)."""
        self._give_up.set()
        self.gate.give_up()

    async def _bind_and_start(self) -> None:
        # The HTTP and metrics ports bind later: a busy one should stop the router before anything starts.
        for setting in ("http_listen", "metrics_listen"):
            listen = getattr(self.config, setting)
            if listen and (busy := why_not(listen)) is not None:
                raise ListenError(setting, listen, busy)
        self.port = bind(self._server, self.config.listen, self._main_credentials, "listen")
        self.registry_port = self.port
        if self._registry_server is not self._server:
            self.registry_port = bind(
                self._registry_server,
                self.config.registry_listen,
                self._registry_credentials,
                "registry_listen",
            )
        await self.accounting.start()
        for server in self._servers:
            await server.start()
        if self.http is not None:
            try:
                await self.http.start()
            except OSError as e:
                raise ListenError("http_listen", self.config.http_listen, reason(e)) from e

    async def stop(self, grace: float | None = None) -> None:
        """Stop gracefully: report NOT_SERVING, refuse new client calls, let those in flight finish for up to
        `grace` seconds (default: config.grace_seconds), cancel what is left, then flush the usage ledger."""
        grace = self.config.grace_seconds if grace is None else grace
        await self.readiness.stop()
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
        await asyncio.gather(*(server.stop(0) for server in self._servers))
        # After the server: the last requests' records are queued by now, and all get written.
        await self.accounting.stop()
        for backend in self.registry:
            await backend.close()

    async def wait_for_termination(self) -> None:
        await self._server.wait_for_termination()
