"""Try candidates in order until one answers; never repeat what already reached the caller.

Before the first item of a stream, a retryable failure moves on to the next candidate after an
exponential backoff with full jitter, within the caller's deadline. After the first item, a failure
ends the stream: `MidStreamFailure` says how much was sent.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

import grpc

from router.backends.base import Backend, BackendError
from router.config import RetryPolicy
from router.errors import RouterError

log = logging.getLogger(__name__)
T = TypeVar("T")


class UpstreamFailed(RouterError):
    """Every candidate failed before answering; the status is the most telling upstream one."""

    def __init__(self, message: str, code: grpc.StatusCode) -> None:
        super().__init__(message)
        self.code = code


class MidStreamFailure(RouterError):
    code = grpc.StatusCode.UNAVAILABLE

    def __init__(self, message: str, items_sent: int) -> None:
        super().__init__(message)
        self.items_sent = items_sent


@dataclass
class Attempt:
    """What happened on one request: which backend answered, after which failures."""

    backend: Backend | None = None
    started_at: float = field(default_factory=time.perf_counter)
    first_item_at: float | None = None
    failures: list[str] = field(default_factory=list)


_RNG = random.Random()


def backoff_delay(policy: RetryPolicy, retry: int) -> float:
    """Full jitter: uniform in [0, min(max, base * 2**retry)]."""
    return _RNG.uniform(0.0, min(policy.backoff_max_s, policy.backoff_base_s * (2**retry)))


async def stream_with_failover(
    candidates: Sequence[Backend],
    open_stream: Callable[[Backend, float | None], AsyncIterator[T]],
    policy: RetryPolicy,
    deadline: float | None,
    attempt: Attempt,
) -> AsyncIterator[T]:
    """Yield the items of the first candidate that answers. `deadline` is a time.monotonic() value."""
    last: BackendError | None = None
    for index, backend in enumerate(candidates[: policy.max_attempts]):
        if index:
            delay = backoff_delay(policy, index - 1)
            if deadline is not None and time.monotonic() + delay >= deadline:
                break
            await asyncio.sleep(delay)
        timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
        sent = 0
        backend.in_flight += 1
        try:
            async for item in open_stream(backend, timeout):
                if not sent:
                    attempt.backend = backend
                    attempt.first_item_at = time.perf_counter()
                sent += 1
                yield item
            return
        except BackendError as e:
            if sent:
                raise MidStreamFailure(f"{e.message} (after {sent} messages were sent)", sent) from e
            attempt.failures.append(e.message)
            log.warning("attempt %d on %s failed: %s", index + 1, backend.id, e.message)
            if not e.retryable:
                raise UpstreamFailed(e.message, e.status) from e
            last = e
        finally:
            backend.in_flight -= 1
    if last is None:
        raise UpstreamFailed(
            "the deadline left no time to try any backend", grpc.StatusCode.DEADLINE_EXCEEDED
        )
    raise UpstreamFailed(
        f"all {len(attempt.failures)} attempts failed: " + "; ".join(attempt.failures), last.status
    )
