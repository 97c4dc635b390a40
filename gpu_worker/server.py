"""The worker's grpc.aio server: the Worker service, standard health checking and server reflection."""

from __future__ import annotations

import logging

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1._async import HealthServicer
from grpc_reflection.v1alpha import reflection
from modelyard.worker.v1 import worker_pb2, worker_pb2_grpc

from core.constants import GRPC_MESSAGE_OPTIONS
from core.interceptors import WorkerTokenInterceptor
from core.tls import ServerTls
from gpu_worker.servicer import WorkerServicer

logger = logging.getLogger(__name__)

WORKER_SERVICE = worker_pb2.DESCRIPTOR.services_by_name["WorkerService"].full_name


class WorkerServer:
    def __init__(self, servicer: WorkerServicer, token: str = "", tls: ServerTls | None = None) -> None:
        # With a token, callers of the Worker service must send it (the router does); health stays open.
        interceptors = [WorkerTokenInterceptor(token, (WORKER_SERVICE,))] if token else []
        self._credentials = tls.credentials() if tls else None  # read now: a bad file fails before serving
        self._server = grpc.aio.server(interceptors=interceptors, options=GRPC_MESSAGE_OPTIONS)
        worker_pb2_grpc.add_WorkerServiceServicer_to_server(servicer, self._server)
        self._health = HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self._health, self._server)
        reflection.enable_server_reflection(
            (
                WORKER_SERVICE,
                health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
                reflection.SERVICE_NAME,
            ),
            self._server,
        )

    async def start(self, listen: str) -> int:
        """Bind and start serving; returns the bound port (useful with port 0)."""
        if self._credentials is None:
            port = self._server.add_insecure_port(listen)
        else:
            port = self._server.add_secure_port(listen, self._credentials)
        if port == 0:
            raise OSError(f"--listen: cannot bind {listen}")
        await self._server.start()
        await self.set_serving(True)
        return port

    async def set_serving(self, serving: bool) -> None:
        status = (
            health_pb2.HealthCheckResponse.SERVING if serving else health_pb2.HealthCheckResponse.NOT_SERVING
        )
        for service in ("", WORKER_SERVICE):
            await self._health.set(service, status)

    async def stop(self, grace: float | None) -> None:
        await self._server.stop(grace)
