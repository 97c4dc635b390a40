"""One abstract class per engine kind, and the typed values that cross the engine boundary.

Engines know nothing of gRPC or protobuf: the servicer converts messages to these dataclasses and back, so an
engine can be exercised, replaced or handed in by a test without a server. Engines raise `router.errors`
exceptions (`InvalidArgument` for input the model cannot take); anything else is a fault of the engine.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from gpu_worker.prefix_cache import CacheEventSource

# ---------------------------------------------------------------- shared


@dataclass(frozen=True)
class EngineLoad:
    """What an engine holds right now; the worker sums these into its LoadReport."""

    running: int = 0  # requests being computed
    waiting: int = 0  # requests accepted by the engine but not yet scheduled
    kv_cache_usage: float = 0.0  # 0..1
    tokens_per_second: float = 0.0  # generated tokens, recent average
    queued_audio_seconds: float = 0.0  # audio accepted and not yet transcribed
    aborted_total: int = 0  # requests stopped because the caller went away


class Engine(ABC):
    """What every engine has: a served model id, an engine name for the registry, load and shutdown."""

    model_id: str
    engine_name: str
    max_context_tokens: int = 0  # 0 when the notion does not apply (speech)
    # Requests the engine batches at once (vLLM's max_num_seqs); 0 when it has no such notion.
    batch_size: int = 0

    @abstractmethod
    def load(self) -> EngineLoad:
        """A cheap, non-blocking snapshot; called about once a second per router."""

    @abstractmethod
    async def close(self) -> None:
        """Free the engine's resources. Requests still running may fail."""


# ---------------------------------------------------------------- chat


@dataclass(frozen=True)
class ToolCallMade:
    """A complete call an assistant turn made earlier in the conversation."""

    id: str
    name: str
    arguments: dict[str, Any]


@dataclass(frozen=True)
class ChatMessage:
    role: str  # "system" | "user" | "assistant" | "tool"
    text: str
    tool_calls: tuple[ToolCallMade, ...] = ()  # assistant
    tool_call_id: str = ""  # tool: the call this answers


@dataclass(frozen=True)
class ToolSpec:
    name: str
    description: str
    parameters: dict[str, Any]  # JSON Schema of the arguments object


@dataclass(frozen=True)
class ChatSampling:
    """None means: the model's default."""

    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    stop: tuple[str, ...] = ()
    seed: int | None = None
    presence_penalty: float | None = None
    frequency_penalty: float | None = None


@dataclass(frozen=True)
class ChatInput:
    request_id: str
    messages: tuple[ChatMessage, ...]
    sampling: ChatSampling = field(default_factory=ChatSampling)
    tools: tuple[ToolSpec, ...] = ()  # offered to the model; empty under tool choice "none"
    tool_choice: str = "auto"  # "auto" | "required" (tools is then never empty)
    forced_tool: str | None = None  # the one function the model must call
    parallel_tool_calls: bool = True
    json_schema: dict[str, Any] | None = None  # the answer must match this schema
    json_object: bool = False  # the answer must be a JSON object
    logprobs: int | None = None  # None: off; N: each token's logprob and its N likeliest alternatives
    # The router's prefix keys for these messages (core.prefix_keys) and the byte length they were cut
    # from: an engine that reports its prefix cache maps its blocks onto them.
    prefix_keys: tuple[int, ...] = ()
    rendered_bytes: int = 0
    # Continue the final (assistant) message instead of answering it: another backend began this answer and
    # the router moved it here mid-stream. Only what follows the message is generated, and max_tokens
    # counts the whole answer, the continued part included.
    continue_final: bool = False
    # Requests with different salts share no cached prefix in the engine (vLLM's cache_salt); "" = none.
    cache_salt: str = ""


@dataclass(frozen=True)
class TokenLogprob:
    token: str
    logprob: float
    top: tuple[tuple[str, float], ...] = ()  # (token, logprob), likeliest first


@dataclass(frozen=True)
class TextDelta:
    text: str
    logprobs: tuple[TokenLogprob, ...] = ()


@dataclass(frozen=True)
class ToolCallFragment:
    """Part of a tool call: the first fragment of a call has its id and name, later ones argument text."""

    index: int
    id: str = ""
    name: str = ""
    arguments: str = ""


@dataclass(frozen=True)
class ReasoningText:
    text: str


@dataclass(frozen=True)
class ChatFinished:
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str  # "stop" | "length" | "tool_calls" | "abort"


ChatEvent = TextDelta | ToolCallFragment | ReasoningText | ChatFinished


class ChatEngine(Engine):
    """Generates a chat answer.

    Contract of `chat`: an async generator that yields `TextDelta`s (and `ToolCallFragment`s, `ReasoningText`)
    as tokens are produced (never buffering the whole answer), then exactly one `ChatFinished`, then ends.
    If the consumer stops early (`aclose()`, or the consuming task is cancelled), the engine request is aborted before the generator finishes closing, so no
    compute is spent on an answer nobody reads, and it is counted in `load().aborted_total`.
    Raises `InvalidArgument` before yielding anything when the prompt does not fit the model.
    """

    # Set by engines that report their prefix cache (vLLM's KV events): the worker sends it to routers.
    cache_events: CacheEventSource | None = None

    @abstractmethod
    def chat(self, request: ChatInput) -> AsyncGenerator[ChatEvent, None]: ...


# ---------------------------------------------------------------- embeddings


@dataclass(frozen=True)
class EmbedResult:
    vectors: list[list[float]]  # one per input, same order
    prompt_tokens: int


class EmbedEngine(Engine):
    """Turns texts into vectors.

    Contract of `embed`: returns one vector per input, in input order, all of `dimensions` floats. Cancelling the
    awaiting task aborts every engine request it started. Raises `InvalidArgument` naming `inputs[i]` for an
    input the model cannot take.
    """

    dimensions: int

    @abstractmethod
    async def embed(self, request_id: str, inputs: Sequence[str]) -> EmbedResult: ...


# ---------------------------------------------------------------- speech


AudioSamples = npt.NDArray[np.float32]  # mono, 16 kHz, in [-1, 1]


@dataclass(frozen=True)
class TranscribeOptions:
    language: str | None = None  # ISO 639-1; None = detect
    word_timestamps: bool = False
    prompt: str | None = None


@dataclass(frozen=True)
class TranscriptInfo:
    language: str
    language_probability: float
    duration_seconds: float


@dataclass(frozen=True)
class TranscriptWord:
    start: float
    end: float
    word: str
    probability: float


@dataclass(frozen=True)
class TranscriptSegment:
    id: int
    start: float
    end: float
    text: str
    words: tuple[TranscriptWord, ...]
    avg_logprob: float
    no_speech_prob: float


TranscriptionEvent = TranscriptInfo | TranscriptSegment


class TranscribeEngine(Engine):
    """Transcribes decoded audio.

    Contract of `transcribe`: an async generator that yields one `TranscriptInfo` first, then each
    `TranscriptSegment` as soon as it is decoded, then ends. Decoding runs off the event loop. If the consumer
    stops early, decoding stops at the next segment boundary and the request counts in `load().aborted_total`.
    """

    @abstractmethod
    def transcribe(
        self, audio: AudioSamples, options: TranscribeOptions
    ) -> AsyncGenerator[TranscriptionEvent, None]: ...
