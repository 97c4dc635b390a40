"""What makes two chat requests the same, and how a cached answer is stored.

Only requests that ask for the same answer every time are cached: temperature 0, or routing.cacheable.
The key covers the whole request (model, messages, sampling, tools, response format...) and a pinned provider, hashed from
protobuf's deterministic encoding; request ids and routing preferences do not change the answer and are
left out. The tenant is part of the key: one tenant never sees a hint of what another asked.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field

from modelyard.v1 import inference_pb2 as pb

from core import wire


def is_cacheable(request: pb.ChatRequest) -> bool:
    # A replay holds text only: answers with logprobs or reasoning are not kept (tool-call answers end with
    # finish_reason tool_calls, which is not cached either).
    if request.logprobs or request.HasField("reasoning"):
        return False
    sampling = request.sampling
    deterministic = sampling.HasField("temperature") and sampling.temperature == 0.0
    return deterministic or request.routing.cacheable


def chat_key(request: pb.ChatRequest, tenant: str) -> str | None:
    """The cache key, or None when the request should not be cached."""
    if not is_cacheable(request):
        return None
    # Everything but the request id and the routing preferences: a field added to ChatRequest later is in
    # the key unless it is cleared here.
    normal = pb.ChatRequest()
    normal.CopyFrom(request)
    normal.ClearField("request_id")
    normal.ClearField("whole_answer")  # how the caller reads the answer, not what it is
    normal.ClearField("routing")
    normal.routing.provider = request.routing.provider
    digest = hashlib.sha256(tenant.encode() + b"\0" + normal.SerializeToString(deterministic=True))
    return "chat:" + digest.hexdigest()


@dataclass
class CachedChat:
    """A finished answer: its text deltas in order and what produced it."""

    backend: str = ""
    model: str = ""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    finish_reason: str = ""
    deltas: list[str] = field(default_factory=list)

    def encode(self) -> bytes:
        return json.dumps(asdict(self), separators=(",", ":")).encode()

    @classmethod
    def decode(cls, data: bytes) -> CachedChat:
        return cls(**json.loads(data))

    def replay(self, request_id: str, ttft_ms: float, latency_ms: float) -> list[pb.ChatResponse]:
        """The same deltas, then a usage that says it came from the cache and cost nothing."""
        responses = [pb.ChatResponse(delta=pb.ChatDelta(text=text)) for text in self.deltas]
        usage = pb.Usage(
            request_id=request_id,
            backend=self.backend,
            model=self.model,
            prompt_tokens=self.prompt_tokens,
            completion_tokens=self.completion_tokens,
            cost_usd=0.0,
            ttft=wire.duration_ms(ttft_ms),
            latency=wire.duration_ms(latency_ms),
            finish_reason=wire.finish_reason(self.finish_reason),
            cache_hit=True,
        )
        return [*responses, pb.ChatResponse(usage=usage)]
