"""The relay's waits on a backend under one timer per stream (router.routing.wait_watch), on asyncio's loop and
on uvloop (the router's): a wait past its limit ends as expired, a slow reader's time is no wait, a caller
that leaves is not taken for a stall, and the time spent waiting adds up."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass
from functools import partial
from typing import Any

import pytest

from router.routing.wait_watch import WaitWatch
from tests.support.own_loop import run_on

FOREVER_S = 20.0  # past every limit here; a watch that never fires fails the tests after it, not hangs them


@dataclass
class Tally:
    upstream_s: float = 0.0


class Expired(Exception):
    pass


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
    stream: AsyncIterator[int], limits: list[float | None], tally: Tally, read_s: float = 0.0
) -> list[int]:
    """The failover loop's shape: each wait on the stream watched with its limit; `read_s` spent per item
    outside the wait (a slow reader)."""
    watch = WaitWatch(tally)
    got: list[int] = []
    try:
        for limit in limits:
            watch.begin(limit)
            try:
                item = await anext(stream)
            except StopAsyncIteration:
                break
            except asyncio.CancelledError:
                if watch.expired():
                    raise Expired(len(got)) from None
                raise
            finally:
                watch.end()
            got.append(item)
            await asyncio.sleep(read_s)
    finally:
        watch.close()
    return got


@RUNNERS
def test_a_wait_past_its_limit_expires(run: Callable[[Coroutine[Any, Any, Any]], Any]) -> None:
    with pytest.raises(Expired) as raised:
        run(_relay(_items([0.0, 0.0, FOREVER_S]), [0.2, 0.2, 0.2], Tally()))
    assert raised.value.args == (2,)  # the two items before the stall came through


@RUNNERS
def test_a_slow_reader_is_no_stall(run: Callable[[Coroutine[Any, Any, Any]], Any]) -> None:
    got = run(_relay(_items([0.0] * 4), [0.05] * 5, Tally(), read_s=0.3))
    assert got == [0, 1, 2, 3]


@RUNNERS
def test_a_shorter_limit_after_a_longer_one_still_holds(
    run: Callable[[Coroutine[Any, Any, Any]], Any],
) -> None:
    """The first wait's timer is set for its long limit; the stall after it has the short one."""
    with pytest.raises(Expired) as raised:
        run(_relay(_items([0.0, FOREVER_S]), [FOREVER_S, 0.2], Tally()))
    assert raised.value.args == (1,)


@RUNNERS
def test_no_limit_waits_as_long_as_it_takes(run: Callable[[Coroutine[Any, Any, Any]], Any]) -> None:
    got = run(_relay(_items([0.0, 0.3, 0.0]), [0.1, None, 0.1, 0.1], Tally()))
    assert got == [0, 1, 2]


@RUNNERS
def test_a_caller_that_leaves_is_no_stall(run: Callable[[Coroutine[Any, Any, Any]], Any]) -> None:
    async def leave() -> str:
        task = asyncio.ensure_future(_relay(_items([0.0, FOREVER_S]), [5.0, 5.0], Tally()))
        await asyncio.sleep(0.2)
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            return "cancelled"
        return "finished"

    assert run(leave()) == "cancelled"


@RUNNERS
def test_the_waits_add_up_and_reading_does_not(run: Callable[[Coroutine[Any, Any, Any]], Any]) -> None:
    tally = Tally()
    run(_relay(_items([0.2, 0.2]), [None, None, None], tally, read_s=1.0))
    assert 0.4 <= tally.upstream_s < 2.0  # the 2 s spent reading are not in it
