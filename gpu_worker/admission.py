"""The worker's front gate: at most max_concurrency requests run, max_queue more wait, the rest are refused."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from core.errors import CapacityExhausted, NoBackendAvailable

DEFAULT_MAX_CONCURRENCY = 16  # for engines without a batch size of their own (speech-to-text)


class Admission:
    def __init__(self, max_concurrency: int, max_queue: int) -> None:
        if max_concurrency < 1 or max_queue < 0:
            raise ValueError("max_concurrency must be at least 1 and max_queue at least 0")
        self.max_concurrency = max_concurrency
        self.max_queue = max_queue
        self._slots = asyncio.Semaphore(max_concurrency)
        self._running = 0
        self._waiting = 0
        self._closed = False
        self._idle = asyncio.Event()
        self._idle.set()

    @property
    def running(self) -> int:
        return self._running

    @property
    def waiting(self) -> int:
        return self._waiting

    @property
    def closed(self) -> bool:
        return self._closed

    def check(self) -> None:
        """Raise now if a new request would be refused; lets a handler fail fast before reading a large upload."""
        if self._closed:
            # UNAVAILABLE: the router retries on another backend.
            raise NoBackendAvailable("worker is draining and takes no new requests")
        if self._running + self._waiting >= self.max_concurrency + self.max_queue:
            raise CapacityExhausted(
                f"worker is at capacity: {self._running} running, {self._waiting} waiting "
                f"(max_concurrency {self.max_concurrency}, max_queue {self.max_queue})"
            )

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Hold one of the max_concurrency slots for the body; waits in the queue first if they are all taken."""
        self.check()
        self._waiting += 1
        self._idle.clear()
        try:
            await self._slots.acquire()
        except BaseException:
            self._waiting -= 1
            self._mark_idle_if_empty()
            raise
        self._waiting -= 1
        self._running += 1
        try:
            yield
        finally:
            self._running -= 1
            self._slots.release()
            self._mark_idle_if_empty()

    def close(self) -> None:
        """Refuse every new request from now on; the ones already admitted carry on."""
        self._closed = True

    async def wait_idle(self, timeout: float) -> bool:
        """Wait until nothing is running or waiting; False when the timeout came first."""
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
        except TimeoutError:
            return False
        return True

    def _mark_idle_if_empty(self) -> None:
        if self._running == 0 and self._waiting == 0:
            self._idle.set()
