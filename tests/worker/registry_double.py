"""A minimal WorkerRegistry (the router's side of registration) for tests that run without the real router.

It records what workers send and can send a DrainCommand; it schedules nothing.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import grpc
from modelyard.v1 import backend_pb2
from modelyard.worker.v1 import worker_pb2, worker_pb2_grpc

_Context = grpc.aio.ServicerContext[worker_pb2.RegisterRequest, worker_pb2.RegisterResponse]


class RegistryDouble(worker_pb2_grpc.WorkerRegistryServiceServicer):  # type: ignore[misc]  # generated base is untyped
    def __init__(
        self, router_id: str = "router-double", report_interval_ms: int = 100, heartbeat_interval_ms: int = 0
    ) -> None:
        self.router_id = router_id
        self.report_interval_ms = report_interval_ms
        self.heartbeat_interval_ms = heartbeat_interval_ms  # 0: as a router that predates heartbeats
        self.hellos: list[worker_pb2.WorkerHello] = []
        self.loads: list[backend_pb2.LoadReport] = []
        self.messages: list[str] = []  # what came after each hello, in order: "load", "heartbeat", "cache"
        self.open_streams: dict[str, _Context] = {}  # worker_id -> its stream
        self.closed_streams = 0

    async def Register(self, request_iterator: object, context: _Context) -> None:
        first = await context.read()
        if not isinstance(first, worker_pb2.RegisterRequest) or first.WhichOneof("msg") != "hello":
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "hello: must come first")
        hello = first.hello
        self.hellos.append(hello)
        await context.write(
            worker_pb2.RegisterResponse(
                ack=worker_pb2.RegisterAck(
                    router_id=self.router_id,
                    report_interval_ms=self.report_interval_ms,
                    heartbeat_interval_ms=self.heartbeat_interval_ms,
                )
            )
        )
        self.open_streams[hello.worker_id] = context
        try:
            while True:
                message = await context.read()
                if not isinstance(message, worker_pb2.RegisterRequest):  # EOF: the worker half-closed
                    return
                kind = message.WhichOneof("msg")
                self.messages.append(kind or "")
                if kind == "load":
                    self.loads.append(message.load)
        finally:
            self.open_streams.pop(hello.worker_id, None)
            self.closed_streams += 1

    async def drain(self, worker_id: str, reason: str = "test drain") -> None:
        await self.open_streams[worker_id].write(
            worker_pb2.RegisterResponse(drain=worker_pb2.DrainCommand(reason=reason))
        )


class RegistryServer:
    """A grpc.aio server running a RegistryDouble; can be stopped and started again on the same port."""

    def __init__(self, registry: RegistryDouble | None = None) -> None:
        self.registry = registry or RegistryDouble()
        self.port = 0
        self._server: grpc.aio.Server | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def start(self) -> int:
        self._server = grpc.aio.server()
        worker_pb2_grpc.add_WorkerRegistryServiceServicer_to_server(self.registry, self._server)
        self.port = self._server.add_insecure_port(f"127.0.0.1:{self.port}")
        await self._server.start()
        return self.port

    async def stop(self) -> None:
        if self._server is not None:
            await self._server.stop(grace=None)
            self._server = None


@asynccontextmanager
async def running_registry(
    report_interval_ms: int = 100, heartbeat_interval_ms: int = 0
) -> AsyncIterator[RegistryServer]:
    """A RegistryServer on a free 127.0.0.1 port for the duration of the block."""
    server = RegistryServer(
        RegistryDouble(report_interval_ms=report_interval_ms, heartbeat_interval_ms=heartbeat_interval_ms)
    )
    await server.start()
    try:
        yield server
    finally:
        await server.stop()
