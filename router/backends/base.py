"""The one interface every backend implements, GPU worker or cloud API.

Contract for the streaming methods: they are async generators; the first item they yield means the answer
has started (no retry after that). A failure before any item is raised as `BackendError`, whose `retryable`
tells the router whether another candidate may try. Closing the generator early (the client went away)
must cancel the upstream call.
"""

from __future__ import annotations

import abc
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field

import grpc
from modelyard.v1 import inference_pb2 as pb
from modelyard.v1 import worker_pb2


class BackendError(Exception):
    """An upstream failure. `status` is what the caller sees if no other candidate succeeds."""

    def __init__(
        self,
        message: str,
        *,
        retryable: bool,
        status: grpc.StatusCode = grpc.StatusCode.UNAVAILABLE,
        retry_after_s: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.retryable = retryable
        self.status = status
        self.retry_after_s = retry_after_s


@dataclass(frozen=True)
class ModelSpec:
    id: str
    capabilities: frozenset[pb.Capability]
    engine: str = ""
    max_context_tokens: int = 0
    vision: bool = False  # chat model that accepts images

    def to_proto(self) -> worker_pb2.ServedModel:
        return worker_pb2.ServedModel(
            id=self.id,
            capabilities=sorted(self.capabilities),
            engine=self.engine,
            max_context_tokens=self.max_context_tokens,
        )


@dataclass
class Backend(abc.ABC):
    """A place that can run requests. Subclasses add how to reach it."""

    id: str
    kind: str
    models: Sequence[ModelSpec]
    in_flight: int = field(default=0, init=False)

    def serves(self, model: str, capability: pb.Capability) -> bool:
        return any(m.id == model and capability in m.capabilities for m in self.models)

    @property
    def available(self) -> bool:
        """Whether new requests may be sent here now."""
        return True

    @property
    def address(self) -> str:
        return ""

    @abc.abstractmethod
    def chat(self, request: pb.ChatRequest, timeout: float | None) -> AsyncIterator[pb.ChatResponse]: ...

    @abc.abstractmethod
    async def embed(self, request: pb.EmbedRequest, timeout: float | None) -> pb.EmbedResponse: ...

    @abc.abstractmethod
    def transcribe(
        self, config: pb.TranscribeConfig, audio: Sequence[bytes], timeout: float | None
    ) -> AsyncIterator[pb.TranscribeResponse]: ...

    async def close(self) -> None:
        """Release connections."""
