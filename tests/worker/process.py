"""Start a real worker as a subprocess (`python -m gpu_worker`), wait for its ready line, stop it with SIGTERM.

Reusable by end-to-end tests:

    async with running_worker("127.0.0.1:50051", "--no-chat") as worker:
        channel = grpc.aio.insecure_channel(worker.address)
        ...
    assert worker.returncode == 0
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import tempfile
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

from gpu_worker.ready import ReadyLine, parse_ready_line

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_READY_TIMEOUT_S = 240.0  # vLLM's engine core takes 20-60 s to start on a shared CPU
DEFAULT_STOP_TIMEOUT_S = 60.0


class WorkerStartError(RuntimeError):
    """The worker exited or stayed silent before printing its ready line; the message ends with its log."""


@dataclass
class WorkerProcess:
    process: asyncio.subprocess.Process
    address: str  # the Worker service address from the ready line
    worker_id: str
    models: tuple[str, ...]
    log_path: Path  # the worker's stderr (logging)
    stdout_lines: list[str] = field(default_factory=list)
    _stdout_task: asyncio.Task[None] | None = None

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def returncode(self) -> int | None:
        return self.process.returncode

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    async def stop(self, timeout: float = DEFAULT_STOP_TIMEOUT_S) -> int:
        """SIGTERM (the worker drains, then exits); SIGKILL if it is still there after `timeout`. Returns the exit
        code, which is 0 for a clean drain."""
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.process.wait(), timeout)
            except TimeoutError:
                self.process.kill()
                await self.process.wait()
        if self._stdout_task is not None:
            await asyncio.gather(self._stdout_task, return_exceptions=True)
        assert self.process.returncode is not None
        return self.process.returncode


async def start_worker(
    routers: str | Sequence[str],
    *args: str,
    ready_timeout: float = DEFAULT_READY_TIMEOUT_S,
    env: Mapping[str, str] | None = None,
    log_path: Path | None = None,
) -> WorkerProcess:
    """Start `python -m gpu_worker --router R... --listen 127.0.0.1:0 *args` and return once it is ready.

    `routers`: one address or several (each passed as its own --router). `args`: further worker flags, e.g.
    "--no-chat", "--worker-id", "w1". `env`: extra environment variables. `log_path`: where the worker's stderr
    goes (a temporary file by default). Raises WorkerStartError if it exits or is not ready in time.
    """
    router_list = [routers] if isinstance(routers, str) else list(routers)
    command = [sys.executable, "-m", "gpu_worker", "--listen", "127.0.0.1:0"]
    for router in router_list:
        command += ["--router", router]
    command += list(args)
    if log_path is None:
        handle, name = tempfile.mkstemp(prefix="modelyard-worker-", suffix=".log")
        os.close(handle)
        log_path = Path(name)
    child_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    # A file, not a pipe, for stderr: a chatty engine must never block on a pipe nobody reads.
    log_fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        process = await asyncio.create_subprocess_exec(
            *command,
            cwd=REPO_ROOT,
            env=child_env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=log_fd,
        )
    finally:
        os.close(log_fd)
    assert process.stdout is not None
    stdout_lines: list[str] = []
    try:
        ready = await asyncio.wait_for(_read_until_ready(process.stdout, stdout_lines), ready_timeout)
    except (TimeoutError, EOFError) as error:
        if process.returncode is None:
            process.kill()
        await process.wait()
        why = "timed out" if isinstance(error, TimeoutError) else f"exited with {process.returncode}"
        tail = log_path.read_text(encoding="utf-8", errors="replace")[-4000:]
        raise WorkerStartError(f"worker {why} before it was ready; its log ends:\n{tail}") from None
    worker = WorkerProcess(process, ready.address, ready.worker_id, ready.models, log_path, stdout_lines)
    # Keep reading stdout so the worker never blocks on a full pipe.
    worker._stdout_task = asyncio.create_task(_collect(process.stdout, stdout_lines))
    return worker


@asynccontextmanager
async def running_worker(
    routers: str | Sequence[str],
    *args: str,
    ready_timeout: float = DEFAULT_READY_TIMEOUT_S,
    env: Mapping[str, str] | None = None,
    log_path: Path | None = None,
) -> AsyncIterator[WorkerProcess]:
    """`start_worker` as an async context manager; stops the worker with SIGTERM on exit."""
    worker = await start_worker(routers, *args, ready_timeout=ready_timeout, env=env, log_path=log_path)
    try:
        yield worker
    finally:
        with contextlib.suppress(ProcessLookupError):
            await worker.stop()


async def _read_until_ready(stream: asyncio.StreamReader, lines: list[str]) -> ReadyLine:
    while True:
        raw = await stream.readline()
        if not raw:
            raise EOFError
        line = raw.decode(errors="replace").rstrip("\n")
        lines.append(line)
        ready = parse_ready_line(line)
        if ready is not None:
            return ready


async def _collect(stream: asyncio.StreamReader, lines: list[str]) -> None:
    while raw := await stream.readline():
        lines.append(raw.decode(errors="replace").rstrip("\n"))
