"""Modelyard's Python client: `Client` (blocking) and `AsyncClient` (asyncio) for the router's gRPC API.

from modelyard_client import Client, TextDelta

with Client() as client:
    for event in client.chat("Write a haiku about routers"):
        if isinstance(event, TextDelta):
            print(event.text, end="", flush=True)
"""

from modelyard_client._admin import AdminClient
from modelyard_client._async_client import AsyncClient
from modelyard_client._channel import Tls
from modelyard_client._client import Client
from modelyard_client._errors import (
    Cancelled,
    DeadlineExceeded,
    FailedPrecondition,
    FieldViolation,
    Internal,
    InvalidArgument,
    ModelyardError,
    NotFound,
    PermissionDenied,
    ResourceExhausted,
    Unauthenticated,
    Unavailable,
    Unimplemented,
)
from modelyard_client._tools import ReasoningDelta, TokenLogprob, Tool, ToolCall, ToolCallDelta, ToolCalls
from modelyard_client._types import (
    BackendStatus,
    ChatEvent,
    ChatResult,
    Embeddings,
    GpuInfo,
    Image,
    Load,
    ModelInfo,
    RouterStatus,
    Segment,
    ServedModel,
    TenantQueue,
    TextDelta,
    TranscribeEvent,
    TranscriptionInfo,
    Usage,
    UsageReport,
    UsageRow,
    Word,
)

__all__ = [
    "AdminClient",
    "AsyncClient",
    "BackendStatus",
    "Cancelled",
    "ChatEvent",
    "ChatResult",
    "Client",
    "DeadlineExceeded",
    "Embeddings",
    "FailedPrecondition",
    "FieldViolation",
    "GpuInfo",
    "Image",
    "Internal",
    "InvalidArgument",
    "Load",
    "ModelInfo",
    "ModelyardError",
    "NotFound",
    "PermissionDenied",
    "ReasoningDelta",
    "ResourceExhausted",
    "RouterStatus",
    "Segment",
    "ServedModel",
    "TenantQueue",
    "TextDelta",
    "Tls",
    "TokenLogprob",
    "Tool",
    "ToolCall",
    "ToolCallDelta",
    "ToolCalls",
    "TranscribeEvent",
    "TranscriptionInfo",
    "Unauthenticated",
    "Unavailable",
    "Unimplemented",
    "Usage",
    "UsageReport",
    "UsageRow",
    "Word",
]
