"""Progress of a long one-time job (preparing a model) on stderr: a live bar on a terminal, log lines elsewhere.

stdout is never touched: it carries the worker's ready line, which launchers read.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Protocol

logger = logging.getLogger(__name__)


class Steps(Protocol):
    def begin(self, description: str) -> None:
        """Start the next step; the previous one counts as done."""


class _LoggedSteps:
    """For logs and pipes (no terminal): one line per step, so a log shows where a slow start spends its time."""

    def __init__(self, title: str, total: int) -> None:
        self._title, self._total, self._done = title, total, 0
        self._started = time.monotonic()

    def begin(self, description: str) -> None:
        self._done += 1
        logger.info("%s: step %d/%d, %s", self._title, self._done, self._total, description)

    def finish(self) -> None:
        logger.info("%s: done in %.0f s", self._title, time.monotonic() - self._started)


@contextmanager
def step_progress(title: str, total: int) -> Iterator[Steps]:
    """Show `total` steps of `title`; the bar completes when the block exits normally."""
    from rich.console import Console

    # Rich turns colour off by itself for NO_COLOR and TERM=dumb.
    console = Console(stderr=True)
    if not console.is_terminal:
        logged = _LoggedSteps(title, total)
        yield logged
        logged.finish()
        return
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        SpinnerColumn,
        TextColumn,
        TimeElapsedColumn,
    )

    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(bar_width=12),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    ) as progress:
        task = progress.add_task(title, total=total)

        class _BarSteps:
            done = -1

            def begin(self, description: str) -> None:
                self.done += 1
                progress.update(task, completed=self.done, description=f"{title}: {description}")

        yield _BarSteps()
        progress.update(task, completed=total, description=f"{title}: done")
