"""Try candidates in order until one answers; never repeat what already reached the caller.

Before the first item of a stream, a retryable failure moves on to the next candidate after an
exponential backoff with full jitter, within the caller's deadline. An attempt that has sent nothing
is abandoned once it has used its share of the time left (so a stalled backend cannot eat the whole
deadline) or the configured first-chunk timeout. With `watch_stalls` (chat), a backend with a stall timeout
that sends nothing for that long, before its first item or between two, has failed too (`Stalled`). After the
first item, a failure ends this stream: `MidStreamFailure` says how much was sent and why it broke, and
router.routing.migration may continue the answer elsewhere. Every outcome feeds the backend's stats and circuit.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

import grpc

from core.errors import StatusError
from router.backends.base import BackendError
from router.config.settings import RetryPolicy
from router.routing.scoring.base import Candidate
from router.routing.scoring.latency import load_factor
from router.routing.state import RoutingState

log = logging.getLogger(__name__)
T = TypeVar("T")
_RNG = random.Random()
_TIMER_SLACK_S = 0.005  # asyncio timers may fire this early; a deadline that close has passed for the caller


class UpstreamFailed(StatusError):
    """Every candidate failed before answering; the status is the last upstream one."""

    reason = "UPSTREAM_FAILED"

    def __init__(
        self,
        message: str,
        code: grpc.StatusCode,
        retry_after_s: float | None = None,
        reason: str | None = None,
    ) -> None:
        super().__init__(message, retry_after_s=retry_after_s, reason=reason)
        self.code = code


class MidStreamFailure(StatusError):
    """The answer broke after it started; the caller learns how many messages it got (ErrorInfo metadata
    `messages_sent`), so it can tell a partial answer from none and keep or drop what it has."""

    code = grpc.StatusCode.UNAVAILABLE
    reason = "STREAM_BROKEN"

    def __init__(self, message: str, items_sent: int, cause: BackendError | None = None) -> None:
        super().__init__(message, metadata={"messages_sent": str(items_sent)})
        self.items_sent = items_sent
        self.cause = cause  # the backend's failure that broke the stream


class EndedEarly(BackendError):
    """A stream that ended before its last item (a chat stream's usage): the answer was cut short."""

    def __init__(self, backend_id: str) -> None:
        super().__init__(f"{backend_id}: the stream ended before its usage message", retryable=True)


class Stalled(BackendError):
    """A stream sent nothing for its backend's stall timeout."""

    def __init__(self, backend_id: str, seconds: float) -> None:
        super().__init__(f"{backend_id}: sent nothing for {seconds:g} s (stalled)", retryable=True)


@dataclass
class Attempt:
    """What happened on one request: which candidate answered, after which failures."""

    chosen: Candidate | None = None
    started_at: float = field(default_factory=time.perf_counter)
    first_item_at: float | None = None
    failures: list[str] = field(default_factory=list)

    @property
    def ttft_ms(self) -> float | None:
        return None if self.first_item_at is None else (self.first_item_at - self.started_at) * 1000


def backoff_delay(policy: RetryPolicy, retry: int) -> float:
    """Full jitter: uniform in [0, min(max, base * 2**retry)]."""
    return _RNG.uniform(0.0, min(policy.backoff_max_s, policy.backoff_base_s * (2**retry)))


async def stream_with_failover(
    candidates: Sequence[Candidate],
    open_stream: Callable[[Candidate, float | None], AsyncIterator[T]],
    state: RoutingState,
    deadline: float | None,
    attempt: Attempt,
    *,
    whole: bool = False,
    watch_stalls: bool = False,
    complete: Callable[[T], bool] | None = None,
) -> AsyncIterator[T]:
    """Yield the items of the first candidate that answers. `deadline` is a time.monotonic() value. `whole`:
    the caller asked for a whole answer (ChatRequest.whole_answer); a backend that fetches it whole
    (Backend.fetches_whole) sends its first item at its end. `complete`, when given, says whether a stream's
    last item ends it properly (else `EndedEarly`)."""
    policy = state.config.retry
    tried = candidates[: policy.max_attempts]
    last: BackendError | None = None
    for index, candidate in enumerate(tried):
        if index:
            delay = backoff_delay(policy, index - 1)
            if deadline is not None and time.monotonic() + delay >= deadline:
                break
            await asyncio.sleep(delay)
        remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
        first_timeout: float | None = state.config.first_chunk_timeout_s
        if whole and candidate.backend.fetches_whole:
            # No first chunk comes before the end: an attempt has what time is left, as a stream has for its
            # end, and the backend's own timeout bounds the answer as it bounds a stream's.
            first_timeout = remaining
        elif remaining is not None:
            first_timeout = min(state.config.first_chunk_timeout_s, remaining / (len(tried) - index))
        try:
            fetched_whole = whole and candidate.backend.fetches_whole  # silent until its end, by design
            stall = candidate.backend.stall_timeout_s if watch_stalls and not fetched_whole else 0.0
            async for item in _attempt(
                candidate, open_stream(candidate, remaining), first_timeout, stall, complete, state, attempt
            ):
                yield item
            return
        except BackendError as e:
            attempt.failures.append(e.message)
            log.warning("attempt %d on %s failed: %s", index + 1, candidate.backend.id, e.message)
            if not e.retryable:
                raise UpstreamFailed(e.message, e.status, e.retry_after_s, e.reason) from e
            last = e
    if last is None:
        raise UpstreamFailed("the deadline left no time to try a backend", grpc.StatusCode.DEADLINE_EXCEEDED)
    if deadline is not None and time.monotonic() >= deadline - _TIMER_SLACK_S:
        # The caller's own deadline is what ran out (the last attempt used the time left): say so, as
        # gRPC would have, rather than blame the backends with their last status.
        raise UpstreamFailed(
            f"the deadline passed after {len(attempt.failures)} attempts: " + "; ".join(attempt.failures),
            grpc.StatusCode.DEADLINE_EXCEEDED,
        )
    raise UpstreamFailed(
        f"all {len(attempt.failures)} attempts failed: " + "; ".join(attempt.failures),
        last.status,
        last.retry_after_s,
    )


async def _attempt(
    candidate: Candidate,
    stream: AsyncIterator[T],
    first_timeout: float | None,
    stall_s: float,
    complete: Callable[[T], bool] | None,
    state: RoutingState,
    attempt: Attempt,
) -> AsyncIterator[T]:
    backend = candidate.backend
    stats = state.stats[backend.id]
    circuit = state.circuits[backend.id]
    circuit.on_attempt()
    backend.in_flight += 1
    started = time.perf_counter()
    waiting = object()
    stats.awaiting_first(waiting, started)
    sent = 0
    finished = False
    try:
        stalls_first = stall_s > 0 and (first_timeout is None or stall_s < first_timeout)
        try:
            # asyncio.timeout rather than wait_for: no extra Task on every request's hot path.
            async with asyncio.timeout(stall_s if stalls_first else first_timeout):
                first = await anext(stream)
        except TimeoutError:
            if stalls_first:
                raise Stalled(backend.id, stall_s) from None
            raise BackendError(
                f"{backend.id}: nothing after {first_timeout:.2f} s; trying the next backend", retryable=True
            ) from None
        except StopAsyncIteration:
            raise BackendError(f"{backend.id}: ended without answering", retryable=True) from None
        attempt.chosen = candidate
        first_at = time.perf_counter()
        stats.first_done(waiting)
        if attempt.first_item_at is None:  # a migrated answer's first item came from an earlier backend
            attempt.first_item_at = first_at
        # The latency scorer learns the TTFT now: waiting for the answer's end lags by a whole answer, and
        # meanwhile a backend that slowed down kept its traffic. A continuation counts its own time to its
        # first item, not the answer's.
        since = attempt.started_at if attempt.first_item_at == first_at else started
        stats.record_ttft((first_at - since) * 1000, load_factor(candidate.utilisation))
        if attempt.failures:  # the scheduler recorded the prefix on its first choice, not on this one
            state.prefixes.record(candidate)
        sent = 1
        yield first
        item = first
        if not stall_s:
            async for item in stream:
                sent += 1
                yield item
        while stall_s:  # only the wait on the backend is timed: a slow reader is no stalled backend
            try:
                async with asyncio.timeout(stall_s):
                    item = await anext(stream)
            except StopAsyncIteration:
                break
            except TimeoutError:
                raise Stalled(backend.id, stall_s) from None
            sent += 1
            yield item
        if complete is not None and not complete(item):
            raise EndedEarly(backend.id)
        finished = True
        stats.record_success(None, (time.perf_counter() - started) * 1000)  # its TTFT is in already
        circuit.record_success()
    except BackendError as e:
        if e.status is grpc.StatusCode.RESOURCE_EXHAUSTED:  # at its limit (429): admission waits a while
            stats.rate_limited_at = time.monotonic()
        if e.retryable or sent:  # the caller's own mistakes say nothing about the backend
            waited_ms = None if sent else (time.perf_counter() - started) * 1000
            stats.record_failure(e.message, waited_ms, load_factor(candidate.utilisation))
            circuit.record_failure(e.retry_after_s)
        else:
            circuit.record_abandoned()
        if sent:
            raise MidStreamFailure(f"{e.message} (after {sent} messages were sent)", sent, e) from e
        raise
    finally:
        backend.in_flight -= 1
        stats.first_done(waiting)
        if not finished:
            circuit.record_abandoned()
            with contextlib.suppress(Exception):
                await stream.aclose()  # type: ignore[attr-defined]
