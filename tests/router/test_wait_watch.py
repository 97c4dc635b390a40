"""The relay's waits on a backend under one timer per stream (router.routing.wait_watch), driven through the
failover loop that uses it (router.routing.failover.stream_with_failover), on asyncio's loop and on uvloop
(the router's): a wait past the stall limit ends the stream as stalled, a slow reader's time is no wait, a wait
with no limit is not cut short by an earlier one's timer, a caller that leaves is not taken for a stall, and
the time spent waiting adds up."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Coroutine
from functools import partial
from typing import Any

import pytest
from modelyard.v1 import inference_pb2 as pb

from router.backends.base import ModelSpec
from router.backends.worker import WorkerBackend
from router.config.settings import RetryPolicy, RouterConfig
from router.routing.failover import Attempt, MidStreamFailure, Stalled, stream_with_failover
from router.routing.scoring.base import Candidate
from router.routing.state import RoutingState
from router.routing.wait_watch import WaitWatch
from tests.support.own_loop import run_on
from tests.support.polling import wait_until

FOREVER_S = 20.0  # past every limit here; a watch that never fires fails the tests after it, not hangs them


Run = Callable[[Coroutine[Any, Any, Any]], Any]


def _runners() -> list[Run]:
    """asyncio's loop and uvloop, each run so that the thread's current loop is left alone (tests.support.own_loop)."""
    runners: list[Run] = [partial(run_on, asyncio.new_event_loop)]
    try:
        import uvloop
    except ImportError:
        return runners
    return [*runners, partial(run_on, uvloop.new_event_loop)]


RUNNERS = pytest.mark.parametrize("run", _runners(), ids=lambda r: r.args[0].__module__)


async def _items(gaps_s: list[float]) -> AsyncIterator[int]:
    """A backend: item i comes after gaps_s[i] seconds."""
    for index, gap in enumerate(gaps_s):
        await asyncio.sleep(gap)
        yield index


async def _relay(
    gaps_s: list[float],
    stall_s: float = 0.0,
    read_s: float = 0.0,
    first_chunk_timeout_s: float = FOREVER_S,
    attempt: Attempt | None = None,
) -> list[int]:
    """The items of a backend whose item i comes after gaps_s[i] seconds, relayed by failover with the
    backend's stall timeout `stall_s` (0: none); `read_s` spent per item by the reader (a slow one)."""
    state = RoutingState(
        RouterConfig(
            router_id="watch",
            first_chunk_timeout_s=first_chunk_timeout_s,
            retry=RetryPolicy(max_attempts=1),
        )
    )
    backend = WorkerBackend(
        id="w", kind="worker", models=[ModelSpec("m", frozenset({pb.CAPABILITY_CHAT}))], max_concurrency=4
    )
    backend.stall_timeout_s = stall_s
    candidate = Candidate(backend, "m", state.stats[backend.id], estimated_cost_usd=0.0, priority=0)
    got: list[int] = []
    async for item in stream_with_failover(
        [candidate],
        lambda _candidate, _timeout: _items(gaps_s),
        state,
        None,
        attempt or Attempt(),
        watch_stalls=True,
    ):
        got.append(item)
        await asyncio.sleep(read_s)
    return got


@RUNNERS
def test_a_wait_past_its_limit_expires(run: Run) -> None:
    with pytest.raises(MidStreamFailure) as raised:
        run(_relay([0.0, 0.0, FOREVER_S], stall_s=0.2))
    assert raised.value.items_sent == 2  # the two items before the stall came through
    assert isinstance(raised.value.cause, Stalled)


@RUNNERS
def test_a_slow_reader_is_no_stall(run: Run) -> None:
    assert run(_relay([0.0] * 4, stall_s=0.05, read_s=0.3)) == [0, 1, 2, 3]


@RUNNERS
def test_no_limit_waits_as_long_as_it_takes(run: Run) -> None:
    """The first wait's limit (the first-chunk timeout) arms the timer; it fires during a later wait that
    has none (no stall timeout) and leaves it be."""
    assert run(_relay([0.0, 0.3, 0.0], first_chunk_timeout_s=0.1)) == [0, 1, 2]


@RUNNERS
def test_a_caller_that_leaves_is_no_stall(run: Run) -> None:
    async def leave() -> str:
        attempt = Attempt()
        task = asyncio.ensure_future(_relay([0.0, FOREVER_S], stall_s=5.0, attempt=attempt))
        await wait_until(lambda: attempt.first_item_at is not None)  # now waiting on the second item
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            return "cancelled"
        return "finished"

    assert run(leave()) == "cancelled"


@RUNNERS
def test_the_waits_add_up_and_reading_does_not(run: Run) -> None:
    attempt = Attempt()
    run(_relay([0.2, 0.2], read_s=1.0, attempt=attempt))
    assert 0.4 <= attempt.upstream_s < 2.0  # the 2 s spent reading are not in it


@RUNNERS
def test_a_shorter_limit_after_a_longer_one_still_holds(run: Run) -> None:
    """WaitWatch's own contract, beyond what failover asks of it today (its first wait never has the
    longer limit): the timer armed for a long first wait is brought forward for a shorter one after it."""

    async def waits() -> bool:
        watch = WaitWatch(Attempt())
        try:
            watch.begin(FOREVER_S)
            await asyncio.sleep(0)
            watch.end()
            watch.begin(0.2)
            try:
                await asyncio.sleep(FOREVER_S)
            except asyncio.CancelledError:
                return watch.expired()
            finally:
                watch.end()
            return False
        finally:
            watch.close()

    assert run(waits())
