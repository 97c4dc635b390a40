"""The typed values the client returns: plain frozen dataclasses, no protobuf in the public API."""

from __future__ import annotations

import mimetypes
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path

from modelyard_client._tools import ReasoningDelta, TokenLogprob, ToolCall, ToolCallDelta


@dataclass(frozen=True)
class Image:
    """An image part of a chat message: either encoded bytes with their MIME type, or a URL."""

    data: bytes | None = None
    url: str | None = None
    mime_type: str = ""

    def __post_init__(self) -> None:
        if (self.data is None) == (self.url is None):
            raise ValueError("Image needs exactly one of data or url")
        if self.data is not None and not self.mime_type:
            raise ValueError("Image with data needs a mime_type, e.g. 'image/png'")

    @classmethod
    def from_file(cls, path: str | PathLike[str]) -> Image:
        mime_type, _ = mimetypes.guess_type(str(path))
        if not mime_type or not mime_type.startswith("image/"):
            raise ValueError(f"cannot tell the image type of {path!s} from its name")
        return cls(data=Path(path).read_bytes(), mime_type=mime_type)

    @classmethod
    def from_url(cls, url: str) -> Image:
        return cls(url=url)


@dataclass(frozen=True)
class Usage:
    """Accounting for one request; the last event of every stream."""

    request_id: str
    backend: str
    model: str
    prompt_tokens: int
    completion_tokens: int
    audio_seconds: float
    cost_usd: float
    ttft_ms: float
    latency_ms: float
    finish_reason: str
    cache_hit: bool
    queue_wait_ms: float = 0.0  # held in the router's admission queue
    spill_reason: str = ""  # why it went to a cloud although a local worker could serve it


@dataclass(frozen=True)
class TextDelta:
    """A piece of generated text, in order (with each token's logprobs when asked for)."""

    text: str
    logprobs: tuple[TokenLogprob, ...] = ()


ChatEvent = TextDelta | ReasoningDelta | ToolCallDelta | Usage


@dataclass(frozen=True)
class ChatResult:
    text: str
    usage: Usage | None
    tool_calls: tuple[ToolCall, ...] = ()  # assembled from the streamed fragments
    reasoning: str = ""


@dataclass(frozen=True)
class Embeddings:
    vectors: list[list[float]]  # one per input, same order
    usage: Usage | None


@dataclass(frozen=True)
class TranscriptionInfo:
    language: str
    language_probability: float
    duration_seconds: float


@dataclass(frozen=True)
class Word:
    start: float
    end: float
    word: str
    probability: float


@dataclass(frozen=True)
class Segment:
    id: int
    start: float  # seconds
    end: float
    text: str
    words: tuple[Word, ...] = ()
    avg_logprob: float = 0.0
    no_speech_prob: float = 0.0


TranscribeEvent = TranscriptionInfo | Segment | Usage


@dataclass(frozen=True)
class ModelInfo:
    id: str
    capabilities: tuple[str, ...]  # "chat", "embed", "transcribe"
    backends: tuple[str, ...]


@dataclass(frozen=True)
class ServedModel:
    id: str
    capabilities: tuple[str, ...]
    engine: str
    max_context_tokens: int


@dataclass(frozen=True)
class GpuInfo:
    index: int
    name: str
    memory_total_bytes: int
    memory_used_bytes: int
    utilization: float  # 0..1


@dataclass(frozen=True)
class Load:
    running: int
    waiting: int
    kv_cache_usage: float  # 0..1
    tokens_per_second: float
    queued_audio_seconds: float
    draining: bool
    aborted_total: int
    gpus: tuple[GpuInfo, ...] = ()


@dataclass(frozen=True)
class BackendStatus:
    id: str
    kind: str  # "worker", "openai", "anthropic", ...
    address: str
    models: tuple[ServedModel, ...]
    healthy: bool
    draining: bool
    load: Load | None  # workers only
    max_concurrency: int
    in_flight: int
    connected_seconds: float
    enabled: bool = True
    priority: int = 0  # lower is preferred
    circuit: str = ""  # "closed", "open", "half_open"
    success_rate: float = 1.0  # EWMA, 0..1
    ttft_ms: float = 0.0  # EWMA; 0 until measured
    latency_ms: float = 0.0  # EWMA; 0 until measured
    requests: int = 0
    failures: int = 0
    last_error: str = ""
    last_score: float = 0.0  # the score when the scheduler last considered it
    score_components: dict[str, float] = field(default_factory=dict)  # each scorer's value behind last_score
    predicted_ttft_ms: float = 0.0  # of a request sent now; 0 until measured (admins only)


@dataclass(frozen=True)
class TenantQueue:
    """One tenant's requests waiting in the router's admission queue."""

    tenant: str
    queued: int
    oldest_wait_seconds: float
    mean_wait_seconds: float  # EWMA of the waits of those dispatched
    dispatched: int
    refused: int
    weight: float


@dataclass(frozen=True)
class RouterStatus:
    router_id: str
    version: str
    uptime_seconds: float
    backends: tuple[BackendStatus, ...] = field(default_factory=tuple)
    strategy: str = ""  # the default strategy
    weights: dict[str, float] = field(default_factory=dict)  # its scorer weights
    redacted: bool = False  # not an admin: priorities, load, addresses, counts, scores and errors left out
    queues: tuple[TenantQueue, ...] = ()  # admission queue by tenant (a tenant sees its own)


@dataclass(frozen=True)
class UsageRow:
    """Usage of one backend and model over the report's window; latencies in milliseconds."""

    backend: str
    model: str
    calls: int
    success_rate: float  # 0..1
    prompt_tokens: int
    completion_tokens: int
    audio_seconds: float
    cost_usd: float
    latency_p50_ms: float
    latency_p95_ms: float
    latency_p99_ms: float
    ttft_p50_ms: float
    cache_hits: int


@dataclass(frozen=True)
class UsageReport:
    days: int
    tenant: str  # empty: every tenant
    since_unix: float
    rows: tuple[UsageRow, ...] = field(default_factory=tuple)
