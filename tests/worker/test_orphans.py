"""A SIGKILLed worker leaves none of its processes behind (vLLM's engine core above all, which holds GPU memory)."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from tests.support.polling import wait_until
from tests.worker.process import start_worker
from tests.worker.registry_double import running_registry

pytestmark = pytest.mark.engines

_GONE_WITHIN_S = 5.0


@pytest.mark.parametrize("start_method", ["fork", "spawn"])
async def test_sigkilled_worker_leaves_no_process_behind(start_method: str) -> None:
    async with running_registry() as router:
        # vLLM forks its engine core by default and spawns it once CUDA is initialised: both must be covered.
        worker = await start_worker(
            router.address,
            "--no-whisper",
            "--chat-model",
            "tiny-random-llama",
            env={"VLLM_WORKER_MULTIPROC_METHOD": start_method},
        )
        family = _descendants(worker.pid)
        names = {_name(pid) for pid, _ in family}
        assert any("EngineCore" in name for name in names), f"no engine core among {names}"

        worker.process.send_signal(signal.SIGKILL)
        await worker.process.wait()
        try:
            await wait_until(
                lambda: not any(_alive(*p) for p in family),
                timeout=_GONE_WITHIN_S,
                message=f"some of {sorted(names)} still running {_GONE_WITHIN_S} s after SIGKILL",
            )
        finally:  # a broken build must not leak engines into the rest of the run either
            for pid, start in family:
                if _alive(pid, start):
                    os.kill(pid, signal.SIGKILL)
            await worker.stop()  # collects its stdout reader


def _descendants(root: int) -> set[tuple[int, int]]:
    """(pid, start time) of every process below `root`, from the kernel's per-thread children lists."""
    found: set[tuple[int, int]] = set()
    stack = [root]
    while stack:
        pid = stack.pop()
        for task in Path(f"/proc/{pid}/task").glob("*"):
            try:
                children = (task / "children").read_text().split()
            except OSError:
                continue
            for child in map(int, children):
                start = _start_time(child)
                if start is not None:
                    found.add((child, start))
                    stack.append(child)
    return found


def _fields(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text[text.rindex(")") + 2 :].split()


def _start_time(pid: int) -> int | None:
    fields = _fields(pid)
    return int(fields[19]) if fields else None


def _alive(pid: int, start: int) -> bool:
    """Running, and the same process (not a reused pid); a zombie waiting to be reaped counts as gone."""
    fields = _fields(pid)
    return fields is not None and fields[0] != "Z" and int(fields[19]) == start


def _name(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_text().replace("\0", " ").strip()[:80]
    except OSError:
        return f"pid {pid}"
