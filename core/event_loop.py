"""Run a server's main coroutine on uvloop where it is installed, else on asyncio's own loop.

grpc.aio supports uvloop. In the router's relay bench (2 shared cores, back to back) uvloop relayed about 1.5x the
chunks/s of asyncio's loop at concurrency 32 and 1.3-2x the requests/s at 64. MODELYARD_EVENT_LOOP=asyncio keeps
asyncio's loop (to rule the loop out when debugging).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def run(main: Coroutine[Any, Any, T]) -> T:
    if os.environ.get("MODELYARD_EVENT_LOOP", "uvloop") != "asyncio":
        try:
            import uvloop
        except ImportError:
            pass
        else:
            return uvloop.run(main)
    return asyncio.run(main)
