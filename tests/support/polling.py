"""The one way tests wait: poll a condition until it holds, then go on. Never a fixed sleep.

A test asserts behaviour, not timings: the timeout only bounds how long a broken build takes to fail.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable

DEFAULT_TIMEOUT_S = 10.0
_INTERVAL_S = 0.02


async def wait_until(
    predicate: Callable[[], bool | Awaitable[bool]], timeout: float = DEFAULT_TIMEOUT_S, message: str = ""
) -> None:
    """Poll `predicate` (plain or async) until it is true; AssertionError after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        outcome = predicate()
        if inspect.isawaitable(outcome):
            outcome = await outcome
        if outcome:
            return
        if time.monotonic() > deadline:
            raise AssertionError(message or f"condition not met within {timeout:g} s")
        await asyncio.sleep(_INTERVAL_S)


def wait_until_sync(
    predicate: Callable[[], bool], timeout: float = DEFAULT_TIMEOUT_S, message: str = ""
) -> None:
    """wait_until for code outside an event loop (a helper thread, a blocking fixture)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(message or f"condition not met within {timeout:g} s")
        time.sleep(_INTERVAL_S)
