"""A stream's waits on its backend: timed, each with a limit, under one timer per stream.

The relay waits on its backend once per item. `asyncio.timeout` around each of those waits cost several µs an
item: a timer handle scheduled and cancelled, the task and the running loop looked up (on Python 3.11 each
look-up of the running loop is a getpid system call). Here the relay loop marks where each wait begins and
ends (two clock reads) and a single timer handle, armed at the first wait with a limit, checks as it fires
whether the wait under way has passed its limit: if not, it re-arms for that wait's own end (or stays off
until the next wait begins); if so, it cancels the task, as asyncio.timeout does, and the relay turns the
cancellation into its own error. A stall timeout of seconds thus costs one timer callback every few
seconds per stream instead of one timer per item.

The time spent waiting adds up in `waited_s`: the backend's share of the request's latency, the rest being
the router's own (the accounting's overhead figure).
"""

from __future__ import annotations

import asyncio
import time
from typing import Protocol

# Timers may fire this much early (libuv rounds to milliseconds, and the loop's clock is read once an
# iteration): a wait this close to its limit has reached it.
_EARLY_S = 0.001


class WaitTally(Protocol):
    upstream_s: float  # seconds spent waiting on backends, added to as each wait ends


class WaitWatch:
    """The waits of one task on one stream. Call `begin` before each wait and `end` after it, whatever
    its outcome; on a CancelledError out of a wait, `expired` says whether the wait's limit caused it."""

    __slots__ = ("_cancelling", "_due", "_fired", "_limit", "_loop", "_since", "_tally", "_task", "_timer")

    def __init__(self, tally: WaitTally) -> None:
        self._tally = tally
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[object] | None = None
        self._cancelling = 0
        self._timer: asyncio.TimerHandle | None = None
        self._due = 0.0  # when the armed timer fires (time.perf_counter())
        self._since: float | None = None  # when the wait under way began (time.perf_counter())
        self._limit: float | None = None
        self._fired = False

    def begin(self, limit_s: float | None) -> None:
        """A wait starts, allowed `limit_s` seconds (None: no limit)."""
        now = time.perf_counter()
        self._since, self._limit = now, limit_s
        if limit_s is not None and (self._timer is None or now + limit_s < self._due):
            self._arm(now + limit_s, limit_s)

    def end(self) -> None:
        """The wait under way ended (with an item, the stream's end or an error)."""
        if self._since is not None:
            self._tally.upstream_s += time.perf_counter() - self._since
            self._since = None
        if self._fired:  # the cancellation was swallowed below: take it back, as asyncio.timeout does
            self._fired = False
            assert self._task is not None  # set when armed
            self._task.uncancel()

    def expired(self) -> bool:
        """After a CancelledError out of the wait (before `end`): True when this watch cancelled it because the
        wait passed its limit, False when someone else cancelled the task (the caller left)."""
        if not self._fired:
            return False
        self._fired = False
        assert self._task is not None  # set when armed
        return self._task.uncancel() <= self._cancelling

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _arm(self, due: float, delay: float) -> None:
        if self._loop is None:  # bound at the first limit: the task that iterates the stream
            self._loop = asyncio.get_running_loop()
            self._task = asyncio.current_task(self._loop)
            assert self._task is not None  # a stream is iterated by a task
            self._cancelling = self._task.cancelling()
        if self._timer is not None:
            self._timer.cancel()
        self._due = due
        self._timer = self._loop.call_later(max(0.0, delay), self._check)

    def _check(self) -> None:
        self._timer = None
        if self._since is None or self._limit is None:
            return  # not waiting on the backend, or without a limit: the next wait with one arms it again
        due = self._since + self._limit
        left = due - time.perf_counter()
        if left > _EARLY_S:
            self._arm(due, left)
            return
        assert self._task is not None  # set when armed
        self._fired = True
        self._task.cancel()
