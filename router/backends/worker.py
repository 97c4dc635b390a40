"""A registered GPU worker, reached over gRPC on its own Worker service."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import grpc
from modelyard.v1 import backend_pb2
from modelyard.v1 import inference_pb2 as pb
from modelyard.worker.v1 import worker_pb2, worker_pb2_grpc

from core import rich_status, tracing
from router.backends.base import Backend, BackendError, ModelSpec
from router.security.usage_bounds import bound_chat_usage, bound_embed_usage, bound_transcribe_usage
from router.security.worker_dial import WorkerDialer

# Statuses after which another worker may be tried: the request never reached an engine, or the
# worker is going away. Anything else (bad input, a real answer) goes back to the caller as is.
_RETRYABLE = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED})
# A worker's reasons the caller hears as they are (the README's codes table): the engine failed on a request it
# had accepted. Others become the router's own (UPSTREAM_FAILED and the like).
_PASSED_ON = frozenset({"ENGINE_FAILED"})
_AUDIO_CHUNK = 1 << 20
# What WorkerBackend.utilisation is worked out from: setting any of them works it out again.
_UTILISATION_INPUTS = frozenset({"load", "in_flight", "max_concurrency", "max_queue"})


@dataclass
class WorkerBackend(Backend):
    worker_address: str = ""
    max_concurrency: int = 1
    max_queue: int = 0
    gpus: Sequence[backend_pb2.GpuInfo] = ()
    load: backend_pb2.LoadReport = field(default_factory=backend_pb2.LoadReport)
    in_flight_at_report: int = field(default=0, init=False)  # this router's requests there as `load` came
    draining: bool = False
    connected_at: float = field(default_factory=time.monotonic)
    peer_host: str = ""  # the machine the registration came from: only it may take this id over
    # When its next load report is overdue (time.monotonic()); set by its lease on each report. None: no
    # lease watches it (a backend built directly, as simulations do).
    reports_due: float | None = None
    dialer: WorkerDialer = field(default_factory=WorkerDialer, repr=False)
    _channel: grpc.aio.Channel | None = field(default=None, init=False, repr=False)
    _stub: Any = field(default=None, init=False, repr=False)
    _stamp: object = field(default=None, init=False, repr=False)
    _retired: list[grpc.aio.Channel] = field(default_factory=list, init=False, repr=False)

    @classmethod
    def from_hello(
        cls,
        hello: worker_pb2.WorkerHello,
        dialer: WorkerDialer | None = None,
        peer_host: str = "",
        stall_timeout_s: float = 0.0,
    ) -> WorkerBackend:
        models = [
            ModelSpec(m.id, frozenset(m.capabilities), m.engine, m.max_context_tokens) for m in hello.models
        ]
        return cls(
            id=hello.worker_id,
            kind="worker",
            models=models,
            worker_address=hello.address,
            max_concurrency=max(1, hello.max_concurrency),
            max_queue=hello.max_queue,
            gpus=list(hello.gpus),
            peer_host=peer_host,
            dialer=dialer or WorkerDialer(),
            stall_timeout_s=stall_timeout_s,
        )

    @property
    def address(self) -> str:
        return self.worker_address

    @property
    def capacity(self) -> int:
        """Requests this worker declared it can hold: running plus its bounded queue."""
        return self.max_concurrency + self.max_queue

    def __post_init__(self) -> None:
        self._keep_utilisation()

    def __setattr__(self, name: str, value: Any) -> None:
        object.__setattr__(self, name, value)
        # A new load report, a request sent or ended, or a changed capacity: the score input follows.
        # (Not while __init__ sets the fields one by one: __post_init__ works it out once they all are.)
        if name in _UTILISATION_INPUTS and "_utilisation" in self.__dict__:
            self._keep_utilisation()

    def utilisation(self) -> float:
        """Its queue against declared capacity, or its KV-cache use, whichever is fuller. Kept as its
        inputs change (a load report a second, two changes of `in_flight` a request) rather than worked out
        for every candidate of every request."""
        return self._utilisation

    def _keep_utilisation(self) -> None:
        # The worker's report lags by up to one interval; our own in-flight count is current.
        load = self.load
        reported = load.running + load.waiting
        busy = reported if reported > self.in_flight else self.in_flight
        queue = busy / self.capacity
        kv = load.kv_cache_usage
        queue = queue if queue < 1.0 else 1.0
        kv = kv if kv < 1.0 else 1.0
        self._utilisation = kv if kv > queue else queue

    def load_report(self) -> backend_pb2.LoadReport:
        return self.load

    def connected_seconds(self) -> float:
        return time.monotonic() - self.connected_at

    @property
    def keeps_prefix_cache(self) -> bool:
        return True

    @property
    def interchangeable(self) -> bool:
        return True

    def reports_overdue(self, now: float) -> bool:
        return self.reports_due is not None and now > self.reports_due

    @property
    def local(self) -> bool:
        return True

    def others_in_flight(self) -> int:
        return max(0, self.load.running + self.load.waiting - self.in_flight_at_report)

    def _worker_stub(self) -> Any:
        stamp = self.dialer.stamp()
        if self._stub is None or stamp != self._stamp:
            # New certificate files: new connections use them; calls on the old channel finish first.
            if self._channel is not None:
                self._retired.append(self._channel)
            self._channel = self.dialer.channel(self.worker_address)
            self._stub = worker_pb2_grpc.WorkerServiceStub(self._channel)
            self._stamp = stamp
        return self._stub

    def _metadata(self) -> tuple[tuple[str, str], ...]:
        """The worker credential, and the attempt's traceparent when tracing is on."""
        return (*self.dialer.metadata, *tracing.outgoing_metadata())

    def _context_tokens(self, model: str) -> int:
        return next((m.max_context_tokens for m in self.models if m.id == model), 0)

    def chat(self, request: pb.ChatRequest, timeout: float | None) -> AsyncIterator[pb.ChatResponse]:
        return self._chat(request, timeout, continued=False)

    def continues(self, request: pb.ChatRequest) -> bool:
        return True  # the engine continues the final message itself (continue_final_message)

    def continue_chat(self, request: pb.ChatRequest, timeout: float | None) -> AsyncIterator[pb.ChatResponse]:
        return self._chat(request, timeout, continued=True)

    async def _chat(
        self, request: pb.ChatRequest, timeout: float | None, continued: bool
    ) -> AsyncIterator[pb.ChatResponse]:
        stub, metadata = self._worker_stub(), self._metadata()
        if continued:
            call = stub.ContinueChat(
                worker_pb2.ContinueChatRequest(request=request), timeout=timeout, metadata=metadata
            )
        else:
            call = stub.Chat(request, timeout=timeout, metadata=metadata)
        try:
            async for response in call:
                if response.HasField("usage"):
                    bound_chat_usage(response.usage, request, self._context_tokens(request.model))
                yield response
        except grpc.aio.AioRpcError as e:
            raise _backend_error(self.id, e) from e
        finally:
            call.cancel()  # no-op when finished; aborts the engine request when the client left early

    async def embed(self, request: pb.EmbedRequest, timeout: float | None) -> pb.EmbedResponse:
        try:
            response: pb.EmbedResponse = await self._worker_stub().Embed(
                request, timeout=timeout, metadata=self._metadata()
            )
        except grpc.aio.AioRpcError as e:
            raise _backend_error(self.id, e) from e
        bound_embed_usage(response.usage, request)
        return response

    async def transcribe(
        self, config: pb.TranscribeConfig, audio: Sequence[bytes], timeout: float | None
    ) -> AsyncIterator[pb.TranscribeResponse]:
        call = self._worker_stub().Transcribe(
            _transcribe_requests(config, audio), timeout=timeout, metadata=self._metadata()
        )
        try:
            async for response in call:
                if response.HasField("usage"):
                    bound_transcribe_usage(response.usage, audio)
                yield response
        except grpc.aio.AioRpcError as e:
            raise _backend_error(self.id, e) from e
        finally:
            call.cancel()

    async def close(self) -> None:
        for channel in self._retired:
            await channel.close()
        self._retired.clear()
        if self._channel is not None:
            await self._channel.close()
            self._channel = None
            self._stub = None


async def _transcribe_requests(
    config: pb.TranscribeConfig, audio: Sequence[bytes]
) -> AsyncIterator[pb.TranscribeRequest]:
    yield pb.TranscribeRequest(config=config)
    for chunk in audio:
        for start in range(0, len(chunk), _AUDIO_CHUNK):
            yield pb.TranscribeRequest(audio=chunk[start : start + _AUDIO_CHUNK])


def _backend_error(backend_id: str, error: grpc.aio.AioRpcError) -> BackendError:
    code = error.code()
    reason = rich_status.reason_of(error.trailing_metadata())
    return BackendError(
        # The code travels as `status`; naming it here too would repeat it in what the caller reads.
        f"worker {backend_id}: {error.details()}",
        retryable=code in _RETRYABLE,
        status=code,
        reason=reason if reason in _PASSED_ON else None,
    )
