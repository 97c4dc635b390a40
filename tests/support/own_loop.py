"""Runs a coroutine on a fresh loop of a given kind, leaving the thread's current event loop as it was.

`asyncio.run` (and `uvloop.run` where it falls back to it) ends by setting the thread's current loop to None;
a later synchronous test that builds a grpc.aio server then finds no current loop. `asyncio.Runner` with a
`loop_factory` never sets or clears it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def run_on(loop_factory: Callable[[], asyncio.AbstractEventLoop], coro: Coroutine[Any, Any, T]) -> T:
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        return runner.run(coro)
