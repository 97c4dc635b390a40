"""Ends a worker's lease when nothing has come on its stream for a lease's length.

Hearing from the worker costs one clock read: the timer is armed once and, when it fires, re-armed for what is
left of the lease, so it fires about once a lease per worker. (asyncio.timeout around each read re-arms a timer
per message: with a thousand workers reporting every second that was a tenth of the router's time.)
"""

from __future__ import annotations

import asyncio


class LeaseTimer:
    def __init__(self, lease_s: float) -> None:
        self._lease_s = lease_s
        self._loop = asyncio.get_running_loop()
        self._task = asyncio.current_task()
        self.heard_at = self._loop.time()
        self.expired = False  # the task was cancelled because the lease ran out, not by anyone else
        self._handle = self._loop.call_at(self.heard_at + lease_s, self._check)

    def heard(self) -> None:
        self.heard_at = self._loop.time()

    def stop(self) -> None:
        self._handle.cancel()

    def _check(self) -> None:
        left = self.heard_at + self._lease_s - self._loop.time()
        if left > 0:
            self._handle = self._loop.call_later(left, self._check)
        elif self._task is not None:
            self.expired = True
            self._task.cancel()
