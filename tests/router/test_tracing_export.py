"""Tracing switched on the way users switch it on (OTEL_* variables read by tracing.setup()), exporting over OTLP
to a local collector double, gRPC or HTTP: the spans of a chat through the router arrive there, under the
service name setup() was given, in the caller's trace."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import grpc
import pytest
from aiohttp import web
from modelyard.v1 import router_pb2_grpc
from opentelemetry import trace
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.sdk.trace import TracerProvider

from core import tracing
from router.server import RouterServer
from tests.router.conftest import WorkerFactory
from tests.router.test_routing import chat_request, collect
from tests.router.test_tracing import TRACE_ID, TRACEPARENT
from tests.support.polling import wait_until

Request = trace_service_pb2.ExportTraceServiceRequest


class Collector(trace_service_pb2_grpc.TraceServiceServicer):
    """What an OpenTelemetry collector receives, over OTLP/gRPC and OTLP/HTTP (protobuf)."""

    def __init__(self) -> None:
        self.received: list[Request] = []

    async def Export(self, request: Request, context: object) -> trace_service_pb2.ExportTraceServiceResponse:
        self.received.append(request)
        return trace_service_pb2.ExportTraceServiceResponse()

    async def http_export(self, request: web.Request) -> web.Response:
        self.received.append(Request.FromString(await request.read()))
        return web.Response(
            body=trace_service_pb2.ExportTraceServiceResponse().SerializeToString(),
            content_type="application/x-protobuf",
        )

    def spans(self) -> list[tuple[str, str, str]]:
        """(service.name, span name, trace id) of every span received."""
        found = []
        for request in self.received:
            for resource_spans in request.resource_spans:
                attributes = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
                for scope in resource_spans.scope_spans:
                    for span in scope.spans:
                        found.append((attributes.get("service.name", ""), span.name, span.trace_id.hex()))
        return found


@pytest.fixture
async def collector(request: pytest.FixtureRequest) -> AsyncIterator[tuple[Collector, str, str]]:
    """A collector double for the OTLP protocol in request.param: (it, its endpoint URL, the protocol)."""
    collector = Collector()
    if request.param == "grpc":
        server = grpc.aio.server()
        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(collector, server)  # type: ignore[no-untyped-call]
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        yield collector, f"http://127.0.0.1:{port}", "grpc"
        await server.stop(0)
        return
    app = web.Application()
    app.add_routes([web.post("/v1/traces", collector.http_export)])
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    listening = site._server
    assert isinstance(listening, asyncio.Server)
    yield collector, f"http://127.0.0.1:{listening.sockets[0].getsockname()[1]}", "http/protobuf"
    await runner.cleanup()


@pytest.fixture
def installed(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[TracerProvider]]:
    """The providers setup() installs, caught instead of set process-wide (OpenTelemetry sets its global
    provider once per process; each test gets its own here), shut down and tracing turned off afterwards."""
    providers: list[TracerProvider] = []
    monkeypatch.setattr(trace, "set_tracer_provider", providers.append)
    yield providers
    tracing.use(None)
    for provider in providers:
        provider.shutdown()


@pytest.mark.parametrize("collector", ["grpc", "http/protobuf"], indirect=True)
async def test_setup_exports_the_routers_spans_over_otlp(
    collector: tuple[Collector, str, str],
    monkeypatch: pytest.MonkeyPatch,
    installed: list[TracerProvider],
    router: RouterServer,
    echo_workers: WorkerFactory,
) -> None:
    received, endpoint, protocol = collector
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", protocol)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_INSECURE", "true")
    assert tracing.setup("modelyard-router")
    assert tracing.enabled()
    await echo_workers("w1")
    async with grpc.aio.insecure_channel(router.address) as channel:
        text, _ = await collect(
            router_pb2_grpc.RouterServiceStub(channel).Chat(chat_request("a b"), metadata=(TRACEPARENT,))
        )
    assert text == "a b "
    # The batch processor exports from its own thread, with a blocking client: flush off the event loop,
    # which serves the collector double.
    (provider,) = installed
    assert await asyncio.to_thread(provider.force_flush)
    await wait_until(lambda: any(name == "modelyard.router/Chat" for _, name, _ in received.spans()))
    spans = received.spans()
    assert {service for service, _, _ in spans} == {"modelyard-router"}
    assert {"modelyard.router/Chat", "admission", "scheduling", "attempt"} <= {name for _, name, _ in spans}
    assert {trace_id for _, _, trace_id in spans} == {TRACE_ID}
