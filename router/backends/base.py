"""The one interface every backend implements, GPU worker or cloud API.

Contract for the streaming methods: they are async generators; the first item they yield means the answer
has started (no retry after that; a chat answer may still migrate, see `continues`). A failure before any item is raised as `BackendError`, whose `retryable`
tells the router whether another candidate may try. Closing the generator early (the client went away)
must cancel the upstream call.

Routing reads a backend only through this interface (capacity, draining, utilisation, health), never by
asking which kind of backend it is.
"""

from __future__ import annotations

import abc
import asyncio
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import ClassVar

import grpc
from modelyard.v1 import backend_pb2
from modelyard.v1 import inference_pb2 as pb

DEFAULT_PRIORITY = 100  # lower is preferred


class BackendError(Exception):
    """An upstream failure. `status` is what the caller sees if no other candidate succeeds."""

    def __init__(
        self,
        message: str,
        *,
        retryable: bool,
        status: grpc.StatusCode = grpc.StatusCode.UNAVAILABLE,
        retry_after_s: float | None = None,
        reason: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.retryable = retryable
        self.status = status
        self.retry_after_s = retry_after_s
        self.reason = reason  # the caller's ErrorInfo reason, when the upstream's is worth passing on


@dataclass(frozen=True)
class ModelSpec:
    id: str
    capabilities: frozenset[pb.Capability]
    engine: str = ""
    max_context_tokens: int = 0
    vision: bool = False  # chat model that accepts images

    def to_proto(self) -> backend_pb2.ServedModel:
        return backend_pb2.ServedModel(
            id=self.id,
            capabilities=sorted(self.capabilities),
            engine=self.engine,
            max_context_tokens=self.max_context_tokens,
        )


@dataclass
class Backend(abc.ABC):
    """A place that can run requests. Subclasses add how to reach it and how much it can take."""

    id: str
    kind: str
    models: Sequence[ModelSpec]
    in_flight: int = field(default=0, init=False)  # requests this router has open on it, kept by failover
    # Where the operator's run-time switches (Admin service) start; the scheduler keeps the live values.
    enabled: bool = True
    priority: int = DEFAULT_PRIORITY
    # A chat stream that sends nothing this long has stalled (failover, or migration once it started); 0: never.
    stall_timeout_s: float = 0.0
    # True where a chat that asks for a whole answer (ChatRequest.whole_answer) is fetched whole: its first
    # item is then its end, and failover gives such an attempt no first-chunk timeout.
    fetches_whole: ClassVar[bool] = False

    def serves(self, model: str, capability: pb.Capability) -> bool:
        return any(m.id == model and capability in m.capabilities for m in self.models)

    @property
    @abc.abstractmethod
    def max_concurrency(self) -> int:
        """Requests this backend runs at once: a worker's declared limit, a cloud API's configured one."""

    @property
    def capacity(self) -> int:
        """Requests it may hold, running or queued; more is refused here before anything is sent."""
        return self.max_concurrency

    @property
    def draining(self) -> bool:
        """Going away: it finishes what it holds and takes nothing new."""
        return False

    @property
    def available(self) -> bool:
        """Whether new requests may be sent here now."""
        return not self.draining and self.in_flight < self.capacity

    def utilisation(self) -> float:
        """How busy it is, 0 (idle) to 1 (full): requests in flight against its concurrency limit."""
        return min(1.0, self.in_flight / max(1, self.max_concurrency))

    def configuration_problem(self) -> str:
        """Why it cannot work as configured (a missing API key), checked before any call; "" when none."""
        return ""

    async def health_check(self) -> bool | None:
        """Whether it answers and accepts our credentials; None when it has no check of its own (a worker:
        its open lease and load reports are its health). Never raises."""
        return None

    def load_report(self) -> backend_pb2.LoadReport | None:
        """Its own last report of its load, for status and metrics; None when it sends none."""
        return None

    def others_in_flight(self) -> int:
        """Requests its last load report holds beyond what this router had there when the report came (other
        routers'); 0 when it sends none. A report lags, so read against our count now it would show our own
        requests that just ended as still there."""
        return 0

    def connected_seconds(self) -> float | None:
        """How long it has been connected to this router; None for a backend that never connects to us."""
        return None

    @property
    def address(self) -> str:
        return ""

    @property
    def local(self) -> bool:
        """Runs on our own machines (a worker): free to use, and private data may go there. A cloud API
        is neither, so local-first placement sends there only what workers cannot serve in time."""
        return False

    @property
    def keeps_prefix_cache(self) -> bool:
        """Whether a request's prompt prefix stays cached here for the next request that shares it, so
        the prefix scorer may send it back: a worker's engine does; a cloud API is opaque to us."""
        return False

    @property
    def interchangeable(self) -> bool:
        """One of many replicas of an engine (a worker): in a large pool the scheduler scores a sample of
        them. A backend that is not (a cloud API) is scored on every request that it could serve."""
        return False

    def reports_overdue(self, now: float) -> bool:
        """Whether the load reports it should send have stopped (it leaves rotation until they resume);
        False for a backend that sends none. `now` is a time.monotonic() value."""
        return False

    @abc.abstractmethod
    def chat(self, request: pb.ChatRequest, timeout: float | None) -> AsyncIterator[pb.ChatResponse]: ...

    def continues(self, request: pb.ChatRequest) -> bool:
        """Whether `continue_chat` can continue this request's answer exactly where another backend left it
        (router.routing.migration); an API that can only answer a conversation, not extend a message, cannot."""
        return False

    def continue_chat(self, request: pb.ChatRequest, timeout: float | None) -> AsyncIterator[pb.ChatResponse]:
        """Stream what follows the request's final message, an assistant message holding the answer so far:
        the same contract as `chat`, asked only where `continues` said yes."""
        raise BackendError(f"{self.id} cannot continue an answer", retryable=True)

    @abc.abstractmethod
    async def embed(self, request: pb.EmbedRequest, timeout: float | None) -> pb.EmbedResponse: ...

    @abc.abstractmethod
    def transcribe(
        self, config: pb.TranscribeConfig, audio: Sequence[bytes], timeout: float | None
    ) -> AsyncIterator[pb.TranscribeResponse]: ...

    async def close(self) -> None:
        """Release connections."""

    async def close_when_idle(self, poll_s: float = 0.1) -> None:
        """Close once requests already here are done: a backend replaced or gone from the registry must not
        cut answers that are still arriving. A dead peer's calls fail on their own."""
        while self.in_flight:  # noqa: ASYNC110 -- a plain counter kept by failover; polling it is enough here
            await asyncio.sleep(poll_s)
        await self.close()
