"""When a registration stream's writer looks at its load again: every report interval, or at once when asked.

One timer and one future per tick, and nothing raised: `asyncio.timeout` around an event's wait cancels the
task and turns the cancellation into TimeoutError on every quiet tick, twice the CPU (about 14 against 6 µs a
tick here). A worker ticks once a second; a bench process hosting a thousand workers ticks a thousand times.
"""

from __future__ import annotations

import asyncio


def _ring(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


class ReportClock:
    def __init__(self) -> None:
        self._asked = False
        self._waiter: asyncio.Future[None] | None = None

    def ring_now(self) -> None:
        """Wake the writer now, or, if it is busy, as soon as it waits again."""
        self._asked = True
        if self._waiter is not None:
            _ring(self._waiter)

    async def wait(self, interval_s: float) -> bool:
        """Wait for the next tick; True when it came early because someone asked (ring_now)."""
        if not self._asked:
            loop = asyncio.get_running_loop()
            waiter = self._waiter = loop.create_future()
            timer = loop.call_later(interval_s, _ring, waiter)
            try:
                await waiter
            finally:
                timer.cancel()
                self._waiter = None
        asked, self._asked = self._asked, False
        return asked
