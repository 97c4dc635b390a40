"""The registration writer's clock: a quiet tick, a tick asked for, and an ask that comes while it is busy."""

from __future__ import annotations

import asyncio

from gpu_worker.report_clock import ReportClock


async def test_a_quiet_tick_comes_by_itself_and_was_not_asked_for() -> None:
    assert await asyncio.wait_for(ReportClock().wait(0.01), 30) is False


async def test_asking_wakes_a_waiting_writer_long_before_its_interval() -> None:
    clock = ReportClock()
    waiting = asyncio.create_task(clock.wait(3600))
    await asyncio.sleep(0)  # the writer is waiting
    assert not waiting.done()
    clock.ring_now()
    assert await asyncio.wait_for(waiting, 30) is True


async def test_an_ask_while_the_writer_is_busy_is_kept_for_its_next_wait_once() -> None:
    clock = ReportClock()
    clock.ring_now()
    assert await asyncio.wait_for(clock.wait(3600), 30) is True
    assert await asyncio.wait_for(clock.wait(0.01), 30) is False  # the ask was used up


async def test_a_cancelled_wait_leaves_the_clock_usable() -> None:
    clock = ReportClock()
    waiting = asyncio.create_task(clock.wait(3600))
    await asyncio.sleep(0)
    waiting.cancel()
    await asyncio.gather(waiting, return_exceptions=True)
    clock.ring_now()
    assert await asyncio.wait_for(clock.wait(3600), 30) is True
