"""Try candidates in order until one answers; never repeat what already reached the caller.

Before the first item of a stream, a retryable failure moves on to the next candidate after an
exponential backoff with full jitter, within the caller's deadline. An attempt that has sent nothing
is abandoned once it has used its share of the time left (so a stalled backend cannot eat the whole
deadline) or the configured first-chunk timeout. With `watch_stalls` (chat), a backend with a stall timeout
that sends nothing for that long, before its first item or between two, has failed too (`Stalled`). After the
first item, a failure ends this stream: `MidStreamFailure` says how much was sent and why it broke, unless
the caller's `Moves` (router.routing.migration) continue the answer elsewhere, in another round of failover.
Every outcome feeds the backend's stats and circuit (router.routing.attempt).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import AsyncIterator, Callable, Sequence
from typing import NoReturn, Protocol, TypeVar

import grpc

from core.errors import StatusError
from router.backends.base import BackendError
from router.config.settings import RetryPolicy
from router.routing.attempt import Attempt, EndedEarly, MidStreamFailure, Run, Stalled
from router.routing.scoring.base import Candidate
from router.routing.state import RoutingState

__all__ = [
    "Attempt",
    "EndedEarly",
    "MidStreamFailure",
    "Moves",
    "Stalled",
    "UpstreamFailed",
    "backoff_delay",
    "stream_with_failover",
]
log = logging.getLogger(__name__)
T = TypeVar("T")
T_contra = TypeVar("T_contra", contravariant=True)
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


def backoff_delay(policy: RetryPolicy, retry: int) -> float:
    """Full jitter: uniform in [0, min(max, base * 2**retry)]."""
    return _RNG.uniform(0.0, min(policy.backoff_max_s, policy.backoff_base_s * (2**retry)))


class Moves(Protocol[T_contra]):
    """What lets an answer go on elsewhere after it broke mid-stream (router.routing.migration)."""

    def see(self, item: T_contra) -> None:
        """Each item, as it goes to the caller."""

    def move(self, failure: MidStreamFailure, broken: Candidate) -> Sequence[Candidate]:
        """The candidates to continue the answer on, in order; raises when it stays broken."""
        ...

    def unanswered(self, failure: UpstreamFailed) -> StatusError:
        """What the caller hears when no candidate answered: `failure` itself unless the answer had moved."""
        ...


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
    moves: Moves[T] | None = None,
) -> AsyncIterator[T]:
    """Yield the items of the first candidate that answers. `deadline` is a time.monotonic() value. `whole`:
    the caller asked for a whole answer (ChatRequest.whole_answer); a backend that fetches it whole
    (Backend.fetches_whole) sends its first item at its end. `complete`, when given, says whether a stream's
    last item ends it properly (else `EndedEarly`). `moves`, when given, sees each item and may continue a
    stream that broke on other candidates, in another round of failover; without it a break ends the stream.

    Every try's items pass through this one generator (each level of async generator between the backend and
    the client costs µs an item): a try's bookkeeping is its `Run`, its waits are timed by the run's watch."""
    policy = state.config.retry
    see = moves.see if moves is not None else None
    tried = candidates
    while True:  # a round of failover: the first, then one for each move after a break
        tries = tried[: policy.max_attempts]
        last: BackendError | None = None
        broke: MidStreamFailure | None = None
        for index, candidate in enumerate(tries):
            if index:
                delay = backoff_delay(policy, index - 1)
                if deadline is not None and time.monotonic() + delay >= deadline:
                    break
                await asyncio.sleep(delay)
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            fetched_whole = whole and candidate.backend.fetches_whole  # silent until its end, by design
            stall = candidate.backend.stall_timeout_s if watch_stalls and not fetched_whole else 0.0
            run = Run(candidate, open_stream(candidate, remaining), state, attempt, stall or None)
            try:
                item = await run.first(_first_timeout(state, fetched_whole, remaining, len(tries) - index))
            except BackendError as e:
                await run.close()
                attempt.failures.append(e.message)
                log.warning("attempt %d on %s failed: %s", index + 1, candidate.backend.id, e.message)
                if not e.retryable:
                    _raise_unanswered(
                        moves, UpstreamFailed(e.message, e.status, e.retry_after_s, e.reason), e
                    )
                last = e
                continue
            stream, watch, limit, sent = run.stream, run.watch, run.stall_s, 1
            try:
                while True:
                    if see is not None:
                        see(item)
                    yield item
                    watch.begin(limit)  # only the wait on the backend is timed: a slow reader is no stall
                    try:
                        item = await anext(stream)
                    except StopAsyncIteration:
                        break
                    except asyncio.CancelledError:
                        if watch.expired():
                            raise Stalled(candidate.backend.id, stall) from None
                        raise
                    finally:
                        watch.end()
                    sent += 1
                run.finish(item, complete)
                return
            except BackendError as e:
                broke = run.broke(e, sent)
            finally:
                await run.close()
            break  # after its first item, a stream that broke is not tried again from the start elsewhere
        if broke is None:
            _raise_unanswered(moves, _exhausted(last, deadline, attempt), last)
        if moves is None:
            raise broke from broke.cause
        tried = moves.move(broke, candidate)


def _first_timeout(
    state: RoutingState, fetched_whole: bool, remaining: float | None, left: int
) -> float | None:
    """How long a try may wait for its first item, `left` tries (this one included) sharing the time left."""
    if fetched_whole:
        # No first chunk comes before the end: a try has what time is left, as a stream has for its end, and
        # the backend's own timeout bounds the answer as it bounds a stream's.
        return remaining
    first_timeout = state.config.first_chunk_timeout_s
    return first_timeout if remaining is None else min(first_timeout, remaining / left)


def _exhausted(last: BackendError | None, deadline: float | None, attempt: Attempt) -> UpstreamFailed:
    """Why no candidate answered, once every try failed or the deadline left no time for another."""
    if last is None:
        return UpstreamFailed("the deadline left no time to try a backend", grpc.StatusCode.DEADLINE_EXCEEDED)
    if deadline is not None and time.monotonic() >= deadline - _TIMER_SLACK_S:
        # The caller's own deadline is what ran out (the last attempt used the time left): say so, as
        # gRPC would have, rather than blame the backends with their last status.
        return UpstreamFailed(
            f"the deadline passed after {len(attempt.failures)} attempts: " + "; ".join(attempt.failures),
            grpc.StatusCode.DEADLINE_EXCEEDED,
        )
    return UpstreamFailed(
        f"all {len(attempt.failures)} attempts failed: " + "; ".join(attempt.failures),
        last.status,
        last.retry_after_s,
    )


def _raise_unanswered(
    moves: Moves[T] | None, failed: UpstreamFailed, cause: BaseException | None
) -> NoReturn:
    said = moves.unanswered(failed) if moves is not None else failed
    if said is not failed:
        raise said from failed
    raise failed from cause
