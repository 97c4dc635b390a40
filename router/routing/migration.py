"""Mid-stream migration: a chat answer that breaks after it started goes on on another backend.

When a chat stream fails after its first item (the backend left, the connection reset, the stream ended
without usage, or it stalled), the answer continues where a backend can continue a message exactly
(`Backend.continues`: our workers, Anthropic): it gets the conversation plus the text relayed so far as a
final assistant message to continue, and what it streams follows on the same client stream. Nothing is
sent twice and the client sees one answer; the usage message lists each backend's part (Usage.parts).

Only text moves. Once a tool-call or reasoning fragment went out, or when the request asks for JSON
(response_format) or forces a tool call, a continuation could not stay valid (a grammar or a tool-call
parser starts at the beginning of an answer), and the stream ends with STREAM_BROKEN as before. So does a
break when no other candidate can continue (OpenAI-compatible APIs cannot), after `migration.max_attempts`
moves, once the answer outgrew `migration.max_relayed_bytes`, or past the caller's deadline.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass

import grpc
from modelyard.v1 import inference_pb2 as pb

from core.chat_options import forced_tool
from core.errors import StatusError
from router.accounting.pricing import PriceTable, estimate_prompt_tokens, text_tokens
from router.backends.base import BackendError
from router.config.migration import MigrationConfig
from router.routing.failover import (
    Attempt,
    EndedEarly,
    MidStreamFailure,
    Stalled,
    UpstreamFailed,
    stream_with_failover,
)
from router.routing.request_facts import for_model
from router.routing.scoring.base import Candidate
from router.routing.state import RoutingState

log = logging.getLogger(__name__)
OpenStream = Callable[[Candidate, float | None], AsyncIterator[pb.ChatResponse]]
_JSON_FORMATS = (pb.RESPONSE_FORMAT_TYPE_JSON_OBJECT, pb.RESPONSE_FORMAT_TYPE_JSON_SCHEMA)


@dataclass(frozen=True)
class Part:
    """One backend's share of a migrated answer: the relayed text from `start` to `end` (characters)."""

    candidate: Candidate
    start: int
    end: int
    reason: str  # why the answer moved on (metric label and Usage.parts[].migrated_because)


class Answer:
    """One chat request's answer as the client has been sent it, kept (bounded) so another backend can
    continue it, and how each stream is opened: the request itself first, then continuations of it."""

    def __init__(self, request: pb.ChatRequest, config: MigrationConfig) -> None:
        self.request = request
        self._max_bytes = config.max_relayed_bytes
        self.max_moves = config.max_attempts
        self.parts: list[Part] = []  # the backends left behind, in order
        self.sent = 0  # messages relayed, across backends
        self._texts: list[str] = []
        self._chars = 0
        self._bytes = 0
        self.blocked = _blocked(request) if config.max_attempts else "migration is off"

    @property
    def text(self) -> str:
        return "".join(self._texts)

    def see(self, response: pb.ChatResponse) -> None:
        """Each response as it goes to the client."""
        self.sent += 1
        if self.blocked:
            return
        kind = response.WhichOneof("event")
        if kind == "delta":
            text = response.delta.text
            self._bytes += len(text) if text.isascii() else len(text.encode())  # isascii: O(1), no copy
            if self._bytes > self._max_bytes:
                self.blocked = f"the answer passed migration.max_relayed_bytes ({self._max_bytes})"
                self._texts.clear()
                return
            self._texts.append(text)
            self._chars += len(text)
        elif kind == "tool_call":
            self.blocked = "a tool call had started"
        elif kind == "reasoning":
            self.blocked = "reasoning had been sent"

    def open(self, candidate: Candidate, timeout: float | None) -> AsyncIterator[pb.ChatResponse]:
        """The request's stream on `candidate`: the request itself, or once moved, its continuation."""
        request = for_model(self.request, candidate.model)
        if not self.parts:
            return candidate.backend.chat(request, timeout)
        return _continuation(candidate, self.continuation(request), timeout)

    def continuation(self, request: pb.ChatRequest) -> pb.ChatRequest:
        """`request` with the answer so far as its final (assistant) message, to be continued."""
        moved = pb.ChatRequest()
        moved.CopyFrom(request)
        moved.messages.add(role=pb.ROLE_ASSISTANT).content.add(text=self.text)
        return moved

    def targets(self, candidates: Sequence[Candidate], broken: Candidate) -> list[Candidate]:
        """Candidates that may continue the answer: able to, and not one it broke on already."""
        left = {part.candidate.backend.id for part in self.parts} | {broken.backend.id}
        return [
            c
            for c in candidates
            if c.backend.id not in left and c.backend.continues(for_model(self.request, c.model))
        ]

    def leave(self, candidate: Candidate, reason: str) -> None:
        start = self.parts[-1].end if self.parts else 0
        self.parts.append(Part(candidate, start, self._chars, reason))


def relay_chat(
    answer: Answer,
    candidates: Sequence[Candidate],
    open_stream: OpenStream,
    state: RoutingState,
    deadline: float | None,
    attempt: Attempt,
    on_migrate: Callable[[str], None],
) -> AsyncIterator[pb.ChatResponse]:
    """Failover before the first item, as for every request; after it, migration while it may.

    `open_stream` opens an attempt through `answer.open`, so a continuation goes wherever a first
    attempt would (the pipeline's accounting and tracing wrap both alike). The moves ride inside the
    failover's own loop (`Moves`): no generator of their own between the backend and the client."""
    return stream_with_failover(
        candidates,
        open_stream,
        state,
        deadline,
        attempt,
        whole=answer.request.whole_answer,
        watch_stalls=True,
        complete=_has_usage,
        moves=_Moves(answer, candidates, deadline, on_migrate),
    )


class _Moves:
    """router.routing.failover.Moves for one chat answer."""

    def __init__(
        self,
        answer: Answer,
        candidates: Sequence[Candidate],
        deadline: float | None,
        on_migrate: Callable[[str], None],
    ) -> None:
        self.see = answer.see  # bound once: it runs for every item
        self._answer = answer
        self._candidates = candidates
        self._deadline = deadline
        self._on_migrate = on_migrate

    def move(self, failure: MidStreamFailure, broken: Candidate) -> Sequence[Candidate]:
        answer, reason = self._answer, _reason(failure.cause)
        targets = answer.targets(self._candidates, broken)
        why_not = _why_not(answer, targets, self._deadline)
        if why_not:
            log.warning("stream broke and stays broken (%s): %s", why_not, failure.message)
            raise _broken(failure, answer) from failure
        answer.leave(broken, reason)
        self._on_migrate(reason)
        log.warning(
            "answer moves on from %s (%s) after %d characters: %s",
            broken.backend.id,
            reason,
            answer.parts[-1].end,
            failure.message,
        )
        return targets

    def unanswered(self, failure: UpstreamFailed) -> StatusError:
        if not self._answer.parts:
            return failure
        # No candidate took the continuation: the answer stays as far as it got.
        log.warning("no backend continued the answer: %s", failure.message)
        return MidStreamFailure(
            f"the answer broke and no backend could continue it: {failure.message}", self._answer.sent
        )


def settle_parts(usage: pb.Usage, answer: Answer, prices: PriceTable) -> None:
    """A migrated answer's usage: each part priced at its own backend's rates, the totals their sum.

    The parts left behind reported no usage (their streams broke): their tokens are estimated from the
    conversation and the text each relayed. The last part is what its backend reported."""
    text = answer.text
    prompt = estimate_prompt_tokens(answer.request)
    parts = []
    for part in answer.parts:
        candidate = part.candidate
        before, written = text_tokens(text[: part.start]), text_tokens(text[part.start : part.end])
        parts.append(
            pb.UsagePart(
                backend=candidate.backend.id,
                model=candidate.model,
                prompt_tokens=prompt + before,
                completion_tokens=written,
                cost_usd=prices.cost(candidate.model, prompt + before, written),
                migrated_because=part.reason,
                estimated=True,
            )
        )
    parts.append(
        pb.UsagePart(
            backend=usage.backend,
            model=usage.model,
            prompt_tokens=usage.prompt_tokens,
            completion_tokens=usage.completion_tokens,
            cost_usd=usage.cost_usd,
        )
    )
    usage.parts.extend(parts)
    usage.prompt_tokens = sum(p.prompt_tokens for p in parts)
    usage.completion_tokens = sum(p.completion_tokens for p in parts)
    usage.cost_usd = sum(p.cost_usd for p in parts)


async def _continuation(
    candidate: Candidate, request: pb.ChatRequest, timeout: float | None
) -> AsyncIterator[pb.ChatResponse]:
    """A continuation's stream. Its failures before the first item may all move on to the next candidate:
    the first backend took the request, so a refusal here is this backend's limit, not the caller's."""
    try:
        async for response in candidate.backend.continue_chat(request, timeout):
            yield response
    except BackendError as e:
        if e.retryable or isinstance(e, Stalled):
            raise
        raise BackendError(e.message, retryable=True, status=e.status, retry_after_s=e.retry_after_s) from e


def _has_usage(response: pb.ChatResponse) -> bool:
    return response.HasField("usage")


def _blocked(request: pb.ChatRequest) -> str:
    """Why this request's answer may never move ("" if it may)."""
    if request.response_format.type in _JSON_FORMATS:
        return "structured output (response_format) cannot be continued"
    if forced_tool(request) is not None or request.tool_choice.mode == pb.TOOL_CHOICE_MODE_REQUIRED:
        return "a forced tool call cannot be continued"
    return ""


def _why_not(answer: Answer, targets: Sequence[Candidate], deadline: float | None) -> str:
    if answer.blocked:
        return answer.blocked
    if len(answer.parts) >= answer.max_moves:
        return f"moved migration.max_attempts ({answer.max_moves}) times already"
    if deadline is not None and time.monotonic() >= deadline:
        return "the deadline passed"
    if not targets:
        return "no other candidate can continue an answer"
    return ""


def _reason(error: BackendError | None) -> str:
    if isinstance(error, Stalled):
        return "stall"
    if isinstance(error, EndedEarly):
        return "no_usage"
    return (error.status if error is not None else grpc.StatusCode.UNKNOWN).name.lower()


def _broken(failure: MidStreamFailure, answer: Answer) -> MidStreamFailure:
    """The failure as the client should hear it: every message it got counts, across backends."""
    if failure.items_sent == answer.sent:
        return failure
    return MidStreamFailure(failure.message, answer.sent, failure.cause)
