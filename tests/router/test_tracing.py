"""OpenTelemetry: the caller's W3C traceparent is continued by the router (admission, scheduling, each attempt,
first token) and handed on to the worker, whose span is a child of the attempt, or to a cloud provider."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import grpc
import pytest
from modelyard.v1 import router_pb2_grpc
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from core import tracing
from gpu_worker.app import WorkerApp, WorkerOptions
from gpu_worker.engine_set import EngineSet
from gpu_worker.router_pool import parse_router_targets
from router.config.settings import ProviderConfig, RouterConfig
from router.server import RouterServer
from tests.router.test_routing import chat_request, collect
from tests.support.fake_openai import FakeOpenAI
from tests.support.polling import wait_until
from tests.worker.gated_engine import GatedChatEngine

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER_SPAN = "00f067aa0ba902b7"
TRACEPARENT = ("traceparent", f"00-{TRACE_ID}-{CALLER_SPAN}-01")


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing.use(provider.get_tracer("test"))
    try:
        yield exporter
    finally:
        tracing.use(None)
        provider.shutdown()


def by_name(exporter: InMemorySpanExporter) -> dict[str, ReadableSpan]:
    finished = exporter.get_finished_spans()
    named = {span.name: span for span in finished}
    assert len(named) == len(finished), [span.name for span in finished]
    return named


def span_id(span: ReadableSpan) -> int:
    assert span.context is not None
    return int(span.context.span_id)


def parent_id(span: ReadableSpan) -> int | None:
    return int(span.parent.span_id) if span.parent is not None else None


async def test_trace_runs_from_the_caller_through_the_router_to_the_worker(
    spans: InMemorySpanExporter,
) -> None:
    router = RouterServer(RouterConfig(listen="127.0.0.1:0", report_interval_ms=100, usage_db="off"))
    await router.start()
    engine = GatedChatEngine("traced")
    engine.release.set()
    options = WorkerOptions(
        worker_id="w1", routers=parse_router_targets([router.address]), listen="127.0.0.1:0"
    )
    worker = WorkerApp(options, EngineSet(chat=[engine]))
    await worker.start()
    run = asyncio.create_task(worker.run_until_drained())
    try:
        await wait_until(lambda: router.registry.get("w1") is not None)
        async with grpc.aio.insecure_channel(router.address) as channel:
            stub = router_pb2_grpc.RouterServiceStub(channel)
            text, usage = await collect(
                stub.Chat(chat_request("hi", model="traced"), metadata=(TRACEPARENT,))
            )
        assert text == "held"
    finally:
        worker.drain("test over")
        await asyncio.wait_for(run, 30)
        await router.stop(0)

    named = by_name(spans)
    root = named["modelyard.router/Chat"]
    assert {format(s.context.trace_id, "032x") for s in named.values() if s.context} == {TRACE_ID}
    assert parent_id(root) == int(CALLER_SPAN, 16)
    assert root.attributes is not None
    assert root.attributes["modelyard.request_id"] == usage.request_id
    assert root.attributes["modelyard.tenant"] == "local"
    for stage in ("admission", "scheduling", "attempt"):
        assert parent_id(named[stage]) == span_id(root), stage
    attempt = named["attempt"]
    assert attempt.attributes is not None
    assert (attempt.attributes["modelyard.backend"], attempt.attributes["modelyard.attempt"]) == ("w1", 1)
    assert parent_id(named["first_token"]) == span_id(attempt)
    # The worker continued the trace from the metadata the router sent with this attempt.
    assert parent_id(named["modelyard.worker/Chat"]) == span_id(attempt)


async def test_a_cloud_call_carries_the_attempts_traceparent(spans: InMemorySpanExporter) -> None:
    async with FakeOpenAI() as openai:
        provider = ProviderConfig(
            name="openai",
            kind="openai",
            api_key=openai.api_key,
            base_url=openai.base_url,
            chat_models=["gpt-4o-mini"],
        )
        router = RouterServer(RouterConfig(listen="127.0.0.1:0", usage_db="off", providers=[provider]))
        await router.start()
        try:
            async with grpc.aio.insecure_channel(router.address) as channel:
                stub = router_pb2_grpc.RouterServiceStub(channel)
                await collect(stub.Chat(chat_request("hi", model="gpt-4o-mini"), metadata=(TRACEPARENT,)))
        finally:
            await router.stop(0)
        (sent,) = [request for request in openai.requests if request.path.endswith("/chat/completions")]
    attempt = by_name(spans)["attempt"]
    assert sent.headers["traceparent"] == f"00-{TRACE_ID}-{span_id(attempt):016x}-01"


def test_off_without_configuration() -> None:
    assert not tracing.setup("modelyard-test", env={})
    assert not tracing.enabled()
    span = tracing.server_span("x", [TRACEPARENT])
    assert span.child("y").headers() == {}
    assert tracing.outgoing_metadata() == ()
