"""A test double of a GPU worker: speaks the real Worker and WorkerRegistry protocols, engine-free.

It echoes the last user message back word by word, which lets router tests (and benchmarks) check
relaying, failover and accounting without starting an engine; ContinueChat continues an echo from the
words already sent, as an engine continues a final message. Faults are switched on per instance.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import grpc
from modelyard.v1 import backend_pb2
from modelyard.v1 import inference_pb2 as pb
from modelyard.worker.v1 import worker_pb2, worker_pb2_grpc

from core.errors import StatusError
from core.grpc_status import abort
from core.worker_token import token_metadata

Context = grpc.aio.ServicerContext[Any, Any]


class _EngineFailed(StatusError):
    """gpu_worker.servicer.EngineFailed's status (not imported: that module loads the engine interfaces)."""

    code = grpc.StatusCode.INTERNAL
    reason = "ENGINE_FAILED"


@dataclass
class Faults:
    fail_before_first: grpc.StatusCode | None = None  # abort before any chunk
    fail_after: int | None = None  # abort after this many chunks
    end_after: int | None = None  # end the stream cleanly after this many chunks, with no usage message
    delay_s: float = 0.0  # before each chunk
    stall: bool = False  # never answer
    hold: asyncio.Event | None = None  # after the first chunk, wait until this is set


@dataclass
class EchoWorker(worker_pb2_grpc.WorkerServiceServicer):  # type: ignore[misc]
    worker_id: str
    models: tuple[str, ...] = ("echo",)
    max_concurrency: int = 4
    capabilities: tuple[pb.Capability, ...] = (pb.CAPABILITY_CHAT, pb.CAPABILITY_EMBED)  # of every model
    faults: Faults = field(default_factory=Faults)
    running: int = 0
    served: int = 0
    cancelled: int = 0
    last_chat: pb.ChatRequest | None = None  # the last chat request as the router sent it
    continued: list[pb.ChatRequest] = field(default_factory=list)  # ContinueChat requests, as sent
    port: int = 0
    prefix_block_bytes: int = 0  # set to report prefix-cache events (send_cache_events)
    token: str = ""  # the shared worker token sent with Register
    draining: bool = False  # said in every load report
    report_load: bool = True  # False: the lease stays open (other messages) but load reports stop
    _server: grpc.aio.Server | None = None
    _registration: asyncio.Task[None] | None = None
    _outbox: asyncio.Queue[worker_pb2.RegisterRequest] = field(default_factory=asyncio.Queue)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def start(self) -> None:
        self._server = grpc.aio.server()
        worker_pb2_grpc.add_WorkerServiceServicer_to_server(self, self._server)
        self.port = self._server.add_insecure_port("127.0.0.1:0")
        await self._server.start()

    def hello(self) -> worker_pb2.WorkerHello:
        return worker_pb2.WorkerHello(
            worker_id=self.worker_id,
            address=self.address,
            models=[
                backend_pb2.ServedModel(id=m, capabilities=list(self.capabilities), engine="echo")
                for m in self.models
            ],
            max_concurrency=self.max_concurrency,
            max_queue=0,
            prefix_block_bytes=self.prefix_block_bytes,
        )

    def send_cache_events(self, model: str, *events: worker_pb2.CacheEvent) -> None:
        """Send prefix-cache events on the open lease, between load reports, as a vLLM worker does."""
        self._outbox.put_nowait(
            worker_pb2.RegisterRequest(cache=worker_pb2.CacheEvents(model=model, events=events))
        )

    async def register(self, router_address: str) -> None:
        """Open the lease and keep reporting load until `unregister`."""
        acked = asyncio.Event()
        self._registration = asyncio.create_task(self._lease(router_address, acked))
        await asyncio.wait_for(acked.wait(), 10)

    async def _lease(self, router_address: str, acked: asyncio.Event) -> None:
        async with grpc.aio.insecure_channel(router_address) as channel:
            stub = worker_pb2_grpc.WorkerRegistryServiceStub(channel)
            call = stub.Register(metadata=token_metadata(self.token))
            await call.write(worker_pb2.RegisterRequest(hello=self.hello()))
            reply = await call.read()
            assert reply.HasField("ack")
            acked.set()
            while True:
                if self.report_load:
                    load = backend_pb2.LoadReport(running=self.running, draining=self.draining)
                    await call.write(worker_pb2.RegisterRequest(load=load))
                await self._send_outbox(call, reply.ack.report_interval_ms / 1000)

    async def _send_outbox(self, call: Any, seconds: float) -> None:
        """Until the next report is due, send queued messages (one writer on the stream at a time)."""
        loop = asyncio.get_running_loop()
        due = loop.time() + seconds
        while (left := due - loop.time()) > 0:
            try:
                message = await asyncio.wait_for(self._outbox.get(), left)
            except TimeoutError:
                return
            await call.write(message)

    async def unregister(self) -> None:
        if self._registration is not None:
            self._registration.cancel()
            # A lease may have ended on its own already: a router that stopped first finishes the stream, and
            # the next write raises. That is the end of a lease, not a failure of the test.
            with contextlib.suppress(asyncio.CancelledError, asyncio.InvalidStateError, grpc.aio.AioRpcError):
                await self._registration

    async def stop(self) -> None:
        await self.unregister()
        if self._server is not None:
            await self._server.stop(0)

    async def _fail(self, context: Context, code: grpc.StatusCode) -> None:
        message = f"{self.worker_id} injected failure"
        if code == grpc.StatusCode.INTERNAL:  # as gpu_worker's engine_failures() reports an engine's failure
            await abort(context, _EngineFailed(message))
        await context.abort(code, message)

    async def Chat(self, request: pb.ChatRequest, context: Context) -> AsyncIterator[pb.ChatResponse]:
        self.last_chat = request
        async for response in self._echo(request, context, request.messages[-1].content[0].text.split(), 0):
            yield response

    async def ContinueChat(
        self, request: worker_pb2.ContinueChatRequest, context: Context
    ) -> AsyncIterator[pb.ChatResponse]:
        """Continue the echo from the final (assistant) message: the words it holds are not sent again."""
        chat = request.request
        self.continued.append(chat)
        words = chat.messages[-2].content[0].text.split()
        prefix = chat.messages[-1].content[0].text
        done = len(prefix.split())
        if chat.messages[-1].role != pb.ROLE_ASSISTANT or prefix != "".join(w + " " for w in words[:done]):
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"{prefix!r} is not the start of the echo")
        async for response in self._echo(chat, context, words, done):
            yield response

    async def _echo(
        self, request: pb.ChatRequest, context: Context, words: list[str], start: int
    ) -> AsyncIterator[pb.ChatResponse]:
        """`words` from `start` on, one delta each; the faults count this stream's deltas."""
        if self.faults.fail_before_first is not None:
            await self._fail(context, self.faults.fail_before_first)
        self.running += 1
        try:
            if self.faults.stall:
                await asyncio.sleep(3600)
            for i, word in enumerate(words[start:]):
                if self.faults.end_after is not None and i == self.faults.end_after:
                    return
                if self.faults.fail_after is not None and i == self.faults.fail_after:
                    await context.abort(grpc.StatusCode.UNAVAILABLE, f"{self.worker_id} died mid-stream")
                if self.faults.delay_s:
                    await asyncio.sleep(self.faults.delay_s)
                if i == 1 and self.faults.hold is not None:
                    await self.faults.hold.wait()
                yield pb.ChatResponse(delta=pb.ChatDelta(text=word + " "))
            self.served += 1
            yield pb.ChatResponse(
                usage=pb.Usage(
                    model=request.model,
                    prompt_tokens=len(words) + start,
                    completion_tokens=len(words) - start,
                    finish_reason=pb.FINISH_REASON_STOP,
                )
            )
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        finally:
            self.running -= 1

    async def Embed(self, request: pb.EmbedRequest, context: Context) -> pb.EmbedResponse:
        if self.faults.fail_before_first is not None:
            await self._fail(context, self.faults.fail_before_first)
        vectors = [pb.Embedding(values=[float(len(text)), 1.0]) for text in request.inputs]
        return pb.EmbedResponse(
            embeddings=vectors, usage=pb.Usage(model=request.model, prompt_tokens=len(vectors))
        )
