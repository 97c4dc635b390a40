"""A test double of the Router service: canned answers, recorded calls, failures on demand.

The model name picks the behaviour: "error:CODE" aborts with that status before any answer,
"error-after:CODE" aborts after the first delta, "slow" sends one delta and then waits for a
cancellation. Everything else gets DELTAS then a Usage. It runs on its own thread and event loop,
so blocking client calls in a test do not starve it.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from typing import Any

import grpc
from google.protobuf.duration_pb2 import Duration
from google.protobuf.timestamp_pb2 import Timestamp
from modelyard.v1 import accounting_pb2, accounting_pb2_grpc, backend_pb2, router_pb2, router_pb2_grpc
from modelyard.v1 import inference_pb2 as pb

Context = grpc.aio.ServicerContext[Any, Any]

DELTAS = ("Hello", ", ", "world")


def error_message(code: grpc.StatusCode) -> str:
    return f"the double was asked for {code.name}"


class RouterDouble(router_pb2_grpc.RouterServiceServicer):  # type: ignore[misc]
    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.metadata: list[dict[str, str]] = []
        self.chat_requests: list[pb.ChatRequest] = []
        self.embed_requests: list[pb.EmbedRequest] = []
        self.transcribe_configs: list[pb.TranscribeConfig] = []
        self.audio_chunks: list[int] = []  # sizes of the last call's chunks, in order
        self.first_delta_sent = threading.Event()
        self.cancelled = threading.Event()

    def _record(self, context: Context) -> None:
        self.metadata.append({k: str(v) for k, v in context.invocation_metadata() or ()})

    async def Chat(self, request: pb.ChatRequest, context: Context) -> AsyncIterator[pb.ChatResponse]:
        self._record(context)
        self.chat_requests.append(request)
        await _fail_if_asked(request.model, "error:", context)
        try:
            for i, text in enumerate(DELTAS):
                yield pb.ChatResponse(delta=pb.ChatDelta(text=text))
                self.first_delta_sent.set()
                if i == 0:
                    await _fail_if_asked(request.model, "error-after:", context)
                    if request.model == "slow":
                        await asyncio.sleep(30)
        except asyncio.CancelledError:
            self.cancelled.set()
            raise
        yield pb.ChatResponse(
            usage=pb.Usage(
                request_id=request.request_id or "generated-id",
                backend="double",
                model=request.model,
                prompt_tokens=len(request.messages),
                completion_tokens=len(DELTAS),
                ttft=Duration(nanos=1_500_000),
                latency=Duration(nanos=3_000_000),
                cost_usd=0.000125,
                finish_reason=pb.FINISH_REASON_STOP,
            )
        )

    async def Embed(self, request: pb.EmbedRequest, context: Context) -> pb.EmbedResponse:
        self._record(context)
        self.embed_requests.append(request)
        await _fail_if_asked(request.model, "error:", context)
        vectors = [pb.Embedding(values=[float(len(text)), float(i)]) for i, text in enumerate(request.inputs)]
        return pb.EmbedResponse(
            embeddings=vectors,
            usage=pb.Usage(model=request.model, backend="double", prompt_tokens=len(vectors)),
        )

    async def Transcribe(
        self, request_iterator: AsyncIterator[pb.TranscribeRequest], context: Context
    ) -> AsyncIterator[pb.TranscribeResponse]:
        self._record(context)
        first = await anext(request_iterator)
        if not first.HasField("config"):
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "the first message must be the config")
        config = first.config
        self.transcribe_configs.append(config)
        await _fail_if_asked(config.model, "error:", context)
        chunks = [len(message.audio) async for message in request_iterator]
        self.audio_chunks = chunks
        n, total = len(chunks), sum(chunks)
        duration = total / 32000  # 16 kHz, 16-bit mono
        yield pb.TranscribeResponse(
            info=pb.TranscriptionInfo(
                language=config.language or "en", language_probability=0.5, duration_seconds=duration
            )
        )
        for i in range(n):
            words = (
                [pb.Word(start=i, end=i + 0.5, word=" chunk", probability=0.75)]
                if config.word_timestamps
                else []
            )
            yield pb.TranscribeResponse(
                segment=pb.Segment(id=i, start=i, end=i + 1, text=f" chunk {i + 1} of {n}", words=words)
            )
        yield pb.TranscribeResponse(
            usage=pb.Usage(
                model=config.model,
                backend="double",
                audio_seconds=duration,
                finish_reason=pb.FINISH_REASON_STOP,
            )
        )

    async def ListModels(
        self, request: router_pb2.ListModelsRequest, context: Context
    ) -> router_pb2.ListModelsResponse:
        self._record(context)
        return router_pb2.ListModelsResponse(
            models=[
                router_pb2.ModelInfo(
                    id="qwen-small", capabilities=[pb.CAPABILITY_CHAT], backends=["gpu-a", "gpu-b"]
                ),
                router_pb2.ModelInfo(
                    id="whisper-tiny.en", capabilities=[pb.CAPABILITY_TRANSCRIBE], backends=["gpu-a"]
                ),
            ]
        )

    async def GetStatus(
        self, request: router_pb2.GetStatusRequest, context: Context
    ) -> router_pb2.GetStatusResponse:
        self._record(context)
        chat = backend_pb2.ServedModel(id="qwen-small", capabilities=[pb.CAPABILITY_CHAT], engine="vllm")
        return router_pb2.GetStatusResponse(
            router_id="double-router",
            version="9.9.9",
            uptime=Duration(seconds=3725),
            backends=[
                router_pb2.BackendStatus(
                    id="gpu-a",
                    kind=router_pb2.BACKEND_KIND_WORKER,
                    address="10.0.0.5:50061",
                    models=[chat],
                    healthy=True,
                    load=backend_pb2.LoadReport(running=2, waiting=1, kv_cache_usage=0.25),
                    max_concurrency=8,
                    in_flight=3,
                    enabled=True,
                    priority=100,
                    circuit=router_pb2.CIRCUIT_STATE_CLOSED,
                    success_rate=0.98,
                    requests=40,
                    last_score=8.5,
                    score_components={"success_rate": 0.98, "load": 0.75},
                ),
                router_pb2.BackendStatus(
                    id="openai",
                    kind=router_pb2.BACKEND_KIND_OPENAI,
                    address="https://api.openai.com/v1",
                    models=[backend_pb2.ServedModel(id="gpt-4o-mini", capabilities=[pb.CAPABILITY_CHAT])],
                    healthy=True,
                    draining=True,
                    enabled=False,
                    priority=10,
                    circuit=router_pb2.CIRCUIT_STATE_OPEN,
                    success_rate=0.2,
                    requests=5,
                    failures=4,
                    last_error="429 rate limited",
                ),
            ],
            strategy=pb.STRATEGY_COMPOSITE,
            weights={"success_rate": 3.0, "load": 2.0},
        )


class AccountingDouble(accounting_pb2_grpc.AccountingServiceServicer):  # type: ignore[misc]
    """Two fixed rows over the window asked for; tenant "error:CODE" aborts with that status."""

    def __init__(self, router: RouterDouble) -> None:
        self._router = router

    async def GetUsage(
        self, request: accounting_pb2.GetUsageRequest, context: Context
    ) -> accounting_pb2.GetUsageResponse:
        self._router._record(context)
        await _fail_if_asked(request.tenant, "error:", context)
        rows = [
            accounting_pb2.UsageRow(
                backend="gpu-a",
                model="qwen-small",
                calls=40,
                success_rate=0.975,
                prompt_tokens=1200,
                completion_tokens=3400,
                cost_usd=0.0,
                latency_p50_ms=120,
                latency_p95_ms=450,
                latency_p99_ms=900,
                cache_hits=2,
            ),
            accounting_pb2.UsageRow(
                backend="openai", model="gpt-4o-mini", calls=2, success_rate=1.0, cost_usd=0.0125
            ),
        ]
        return accounting_pb2.GetUsageResponse(
            rows=rows, days=request.days or 1, tenant=request.tenant, since=Timestamp(seconds=1)
        )


async def _fail_if_asked(model: str, prefix: str, context: Context) -> None:
    if model.startswith(prefix):
        code = grpc.StatusCode[model.removeprefix(prefix)]
        await context.abort(code, error_message(code))


class DoubleServer:
    """The double on a grpc.aio server bound to 127.0.0.1:0, on a loop in a thread of its own."""

    def __init__(self) -> None:
        self.servicer = RouterDouble()
        self.address = ""
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="router-double", daemon=True)
        self._server: grpc.aio.Server | None = None

    def start(self) -> None:
        self._thread.start()
        port = asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        self.address = f"127.0.0.1:{port}"

    async def _start(self) -> int:
        self._server = grpc.aio.server()
        router_pb2_grpc.add_RouterServiceServicer_to_server(self.servicer, self._server)
        accounting_pb2_grpc.add_AccountingServiceServicer_to_server(
            AccountingDouble(self.servicer), self._server
        )
        port = self._server.add_insecure_port("127.0.0.1:0")
        await self._server.start()
        return port

    def stop(self) -> None:
        if self._server is not None:
            asyncio.run_coroutine_threadsafe(self._server.stop(0), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()
