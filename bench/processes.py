"""Every benchmark part runs in its own process: router, workers, HTTP servers and the load generator.

A child is started with `spawn` (no inherited event loop or gRPC state), says it is ready by sending a
dict on its pipe (an address, a pid), then obeys commands sent on the same pipe until "stop".
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

_CTX = multiprocessing.get_context("spawn")
READY_TIMEOUT_S = 60.0


class ChildFailed(RuntimeError):
    """A child exited or stayed silent before it said it was ready."""


@dataclass
class Child:
    name: str
    process: BaseProcess
    conn: Connection
    info: dict[str, Any]

    @property
    def pid(self) -> int:
        assert self.process.pid is not None
        return self.process.pid

    def request(self, message: Any, timeout: float) -> Any:
        """Send a command and wait for its answer."""
        self.conn.send(message)
        if not self.conn.poll(timeout):
            raise TimeoutError(f"{self.name}: no answer to {type(message).__name__} within {timeout:.0f} s")
        return self.conn.recv()

    def stop(self, timeout: float = 15.0) -> Any:
        """Ask the child to stop; returns what it sends back (None if it had to be killed)."""
        answer: Any = None
        if self.process.is_alive():
            with contextlib.suppress(OSError, EOFError, TimeoutError):
                answer = self.request("stop", timeout)
            self.process.join(timeout)
        self.kill()
        return answer

    def kill(self) -> None:
        if self.process.is_alive():
            self.process.kill()
        self.process.join(5)
        self.conn.close()


def spawn(
    name: str, target: Callable[..., None], *args: Any, ready_timeout: float = READY_TIMEOUT_S
) -> Child:
    parent, child_end = _CTX.Pipe()
    process = _CTX.Process(target=target, args=(child_end, *args), name=name, daemon=True)
    process.start()
    child_end.close()
    if not parent.poll(ready_timeout):
        process.kill()
        raise ChildFailed(f"{name}: not ready within {ready_timeout:.0f} s (exit code {process.exitcode})")
    try:
        info = parent.recv()
    except EOFError:
        process.join(5)
        raise ChildFailed(f"{name}: exited with {process.exitcode} before it was ready") from None
    if "error" in info:
        process.join(5)
        raise ChildFailed(f"{name}: {info['error']}")
    return Child(name, process, parent, info)


async def next_command(conn: Connection) -> Any:
    """The next message from the parent, awaited without blocking the child's event loop."""
    return await asyncio.get_running_loop().run_in_executor(None, conn.recv)


def cpu_seconds(pid: int) -> float:
    """CPU time a process has used so far, user and system, all its threads (utime + stime from /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float:
    """Resident memory of a process in MiB (VmRSS from /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")
