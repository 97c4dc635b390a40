"""The worker's child processes die with it, whatever kills it (SIGKILL included).

A SIGKILLed worker runs no cleanup of its own, so its vLLM engine core (and that process's children) would keep
running and keep their GPU memory, and the worker's replacement could not start. Two mechanisms, each enough for
the common case and together covering the rest:

- Parent-death signal: every child *forked* from now on (vLLM's default way to start its engine core) asks the
  kernel for SIGKILL when its parent goes (an at-fork hook calls prctl(PR_SET_PDEATHSIG)). It is inherited by
  the children's own forks, so it cascades, and it acts at once.
- Guardian: a small process forked before anything else starts, which notes the worker's descendants every
  `interval` seconds and SIGKILLs those still running once the worker is gone. It covers children the hook
  cannot reach: ones started with multiprocessing "spawn" (vLLM's choice once CUDA is initialised) and helpers
  that exec a program of their own.

Linux only; elsewhere both are no-ops.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sys
import time
from pathlib import Path

_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
_LINUX = sys.platform.startswith("linux")
_hooked = False
_forking_pid = 0

Process = tuple[int, int]  # (pid, start time in clock ticks since boot): a pid alone may be reused


def die_with_parent(expected_parent: int) -> bool:
    """Ask for SIGKILL when the parent exits; exit at once if it already has. False where unsupported."""
    if not _LINUX:
        return False
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return False
    if prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0) != 0:
        return False
    # The kernel only signals a death after the call; one before it shows as a new parent.
    if os.getppid() != expected_parent:
        os._exit(1)
    return True


def forked_children_die_with_this_process() -> None:
    """Arm every child this process forks from now on (idempotent).

    The parent-death signal follows the *thread* that forked, so call this from the main thread, which starts
    the engines and outlives them.
    """
    global _hooked
    if _hooked or not _LINUX:
        return
    _hooked = True
    os.register_at_fork(before=_remember_forking_pid, after_in_child=_arm_forked_child)


def start_guardian(interval: float = 0.5) -> int | None:
    """Fork the guardian (see the module docstring) and return its pid once it has taken its first look; None
    where unsupported.

    Call it first, before threads or engines exist: it is a plain fork of this process.
    """
    if not _LINUX:
        return None
    worker = os.getpid()
    ready_read, ready_write = os.pipe()
    pid = os.fork()
    if pid:
        os.close(ready_write)
        os.read(ready_read, 1)
        os.close(ready_read)
        return pid
    try:  # the guardian: never returns
        os.close(ready_read)
        # A Ctrl-C or SIGTERM sent to the whole process group is for the worker, which drains; the guardian
        # stays until the worker has gone, then leaves by itself.
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, signal.SIG_IGN)
        _detach_stdio()
        _guard(worker, interval, ready_write)
    finally:
        os._exit(0)


def descendants(root: int) -> set[Process]:
    """Every live process below `root`, from /proc."""
    children: dict[int, list[Process]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (stat := _stat(int(entry.name))) is not None:
            parent, start = stat
            children.setdefault(parent, []).append((int(entry.name), start))
    found: set[Process] = set()
    stack = [root]
    while stack:
        for child in children.get(stack.pop(), []):
            if child not in found:
                found.add(child)
                stack.append(child[0])
    return found


def _guard(worker: int, interval: float, ready: int) -> None:
    me = os.getpid()
    seen: set[Process] = set()
    while os.getppid() == worker:
        seen = {process for process in descendants(worker) if process[0] != me}
        if ready >= 0:
            os.write(ready, b".")
            os.close(ready)
            ready = -1
        time.sleep(interval)
    # The worker is gone: its children now have another parent, but their (pid, start time) pairs are known.
    for pid, start in seen:
        stat = _stat(pid)
        if stat is not None and stat[1] == start:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)


def _stat(pid: int) -> tuple[int, int] | None:
    """(parent pid, start time) of a live process, or None once it is gone (or a zombie)."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses; the fields after its last ')' do not.
    fields = text[text.rindex(")") + 2 :].split()
    if fields[0] == "Z":
        return None
    return int(fields[1]), int(fields[19])


def _detach_stdio() -> None:
    """The guardian must not hold the worker's stdout or stderr open: launchers read them until EOF."""
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    os.close(null)


def _remember_forking_pid() -> None:
    global _forking_pid
    _forking_pid = os.getpid()


def _arm_forked_child() -> None:
    die_with_parent(_forking_pid)
