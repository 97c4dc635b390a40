"""The worker `modelyard up` starts dies with `up`, even when `up` itself is SIGKILLed (Linux).

On Ctrl-C or SIGTERM `up` stops its worker first, in order (router.up). A SIGKILL runs none of that: the worker,
its engines, their GPU memory and its port would stay, orphaned, and the next `modelyard up` could not start. So
`up` starts its worker through this module: `python -m router.up_children UP_PID COMMAND...` asks the kernel for
SIGKILL when `up` goes (gpu_worker.process_lifetime.die_with_parent: at once if `up` went already), then execs
COMMAND, which keeps that request (exec clears it only for set-user-ID programs). The worker's own guardian and
fork hook then take its engines with it. The router runs inside `up`, so it goes with `up` anyway.

Why not subprocess's preexec_fn: it runs Python between fork and exec, in a process with gRPC's threads, which
Python documents as unsafe (a lock another thread held at the fork is never released in the child).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

from gpu_worker.process_lifetime import die_with_parent

_LINUX = sys.platform.startswith("linux")


def dying_with_this_process(command: Sequence[str]) -> list[str]:
    """`command`, started so that it is killed when this process dies; unchanged where unsupported.

    The kernel signals when the *thread* that started the child exits: start it from the main thread (`up`'s
    event loop runs there).
    """
    if not _LINUX:
        return list(command)
    return [sys.executable, "-m", __name__, str(os.getpid()), *command]


def main(argv: Sequence[str]) -> None:
    parent, *command = argv
    die_with_parent(int(parent))  # False where prctl is missing: the command still runs, unguarded
    os.execvp(command[0], command)


if __name__ == "__main__":
    main(sys.argv[1:])
