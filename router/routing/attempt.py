"""One request's tries on backends: what happened (`Attempt`), and the bookkeeping of one try (`Run`).

A run counts against its backend while it lasts (in flight, the circuit's probe, the wait for a first item the
latency scorer sees), records its outcome in the backend's stats and circuit, and times its waits on the
backend (router.routing.wait_watch). It waits for the first item itself; router.routing.failover reads the
rest in its own loop, since every level of async generator between the backend and the client costs
microseconds per item.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

import grpc

from core.errors import StatusError
from router.backends.base import BackendError
from router.routing.scoring.base import Candidate
from router.routing.scoring.latency import load_factor
from router.routing.state import RoutingState
from router.routing.wait_watch import WaitWatch

T = TypeVar("T")


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
    upstream_s: float = 0.0  # time spent waiting on backends, every try's: the rest is the router's own

    @property
    def ttft_ms(self) -> float | None:
        return None if self.first_item_at is None else (self.first_item_at - self.started_at) * 1000


class Run(Generic[T]):
    """One try of `candidate`: open it, wait for its `first` item, then (the relay reading the rest) record
    how it ended with `finish` or `broke`; `close` it whatever happened. `stall_s`: the longest wait on the
    backend allowed between two items, None for no limit."""

    def __init__(
        self,
        candidate: Candidate,
        stream: AsyncIterator[T],
        state: RoutingState,
        attempt: Attempt,
        stall_s: float | None,
    ) -> None:
        backend = candidate.backend
        self.candidate = candidate
        self.stream = stream
        self.stall_s = stall_s
        self.watch = WaitWatch(attempt)  # one timer for the whole stream, not one per item
        self._state = state
        self._attempt = attempt
        self._stats = state.stats[backend.id]
        self._circuit = state.circuits[backend.id]
        self._finished = False
        self._circuit.on_attempt()
        backend.in_flight += 1
        self._started = time.perf_counter()
        self._waiting = object()
        self._stats.awaiting_first(self._waiting, self._started)

    async def first(self, timeout: float | None) -> T:
        """The first item, within `timeout` (None: no limit) or the stall timeout if shorter. A BackendError
        when none comes, recorded against the backend when it says something about it."""
        backend = self.candidate.backend
        stall = self.stall_s
        stalls_first = stall is not None and (timeout is None or stall < timeout)
        watch = self.watch
        watch.begin(stall if stalls_first else timeout)
        try:
            try:
                first = await anext(self.stream)
            except asyncio.CancelledError:
                if not watch.expired():
                    raise
                if stalls_first:
                    raise Stalled(backend.id, stall or 0.0) from None
                raise BackendError(
                    f"{backend.id}: nothing after {timeout or 0.0:.2f} s; trying the next backend",
                    retryable=True,
                ) from None
            except StopAsyncIteration:
                raise BackendError(f"{backend.id}: ended without answering", retryable=True) from None
            finally:
                watch.end()
        except BackendError as e:
            if e.status is grpc.StatusCode.RESOURCE_EXHAUSTED:  # at its limit (429): admission waits a while
                self._stats.rate_limited_at = time.monotonic()
            if e.retryable:  # the caller's own mistakes say nothing about the backend
                waited_ms = (time.perf_counter() - self._started) * 1000
                self._stats.record_failure(e.message, waited_ms, load_factor(self.candidate.utilisation))
                self._circuit.record_failure(e.retry_after_s)
            else:
                self._circuit.record_abandoned()
            raise
        self._first_came()
        return first

    def _first_came(self) -> None:
        attempt, candidate = self._attempt, self.candidate
        attempt.chosen = candidate
        first_at = time.perf_counter()
        self._stats.first_done(self._waiting)
        if attempt.first_item_at is None:  # a migrated answer's first item came from an earlier backend
            attempt.first_item_at = first_at
        # The latency scorer learns the TTFT now: waiting for the answer's end lags by a whole answer, and
        # meanwhile a backend that slowed down kept its traffic. A continuation counts its own time to its
        # first item, not the answer's.
        since = attempt.started_at if attempt.first_item_at == first_at else self._started
        self._stats.record_ttft((first_at - since) * 1000, load_factor(candidate.utilisation))
        if attempt.failures:  # the scheduler recorded the prefix on its first choice, not on this one
            self._state.prefixes.record(candidate)

    def finish(self, last: T, complete: Callable[[T], bool] | None) -> None:
        """The stream ended after `last`: a success, unless `complete` says it was cut short (EndedEarly)."""
        if complete is not None and not complete(last):
            raise EndedEarly(self.candidate.backend.id)
        self._finished = True
        self._stats.record_success(
            None, (time.perf_counter() - self._started) * 1000
        )  # its TTFT is in already
        self._circuit.record_success()

    def broke(self, error: BackendError, sent: int) -> MidStreamFailure:
        """The stream failed after `sent` items: recorded against the backend, and what the caller hears."""
        self._stats.record_failure(error.message, None, load_factor(self.candidate.utilisation))
        self._circuit.record_failure(error.retry_after_s)
        return MidStreamFailure(f"{error.message} (after {sent} messages were sent)", sent, error)

    async def close(self) -> None:
        self.watch.close()
        self.candidate.backend.in_flight -= 1
        self._stats.first_done(self._waiting)
        if not self._finished:
            self._circuit.record_abandoned()
            with contextlib.suppress(Exception):
                await self.stream.aclose()  # type: ignore[attr-defined]
