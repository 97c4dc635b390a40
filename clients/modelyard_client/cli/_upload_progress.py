"""A progress bar on stderr while `modelyard transcribe` uploads a file, on a terminal only.

The router reads a whole upload before a worker starts decoding it, so on a slow link a long recording would
otherwise sit silent for the whole upload. The bar counts the bytes the client has handed to gRPC, and goes
away at the end of the file, before the segments print. Pipes, stdin and NO_COLOR-free logs get no bar.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, cast

from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TaskID, TextColumn, TransferSpeedColumn


class _CountingReader:
    """Passes reads through to `source`, telling `progress` how far it got; stops the bar at the end."""

    def __init__(self, source: IO[bytes], progress: Progress, task: TaskID) -> None:
        self._source = source
        self._progress = progress
        self._task = task

    def read(self, size: int = -1) -> bytes:
        data = self._source.read(size)
        if data:
            self._progress.advance(self._task, len(data))
        else:
            self._progress.stop()
        return data


def _file_size(audio: IO[bytes]) -> int:
    try:
        info = os.fstat(audio.fileno())
    except (OSError, ValueError, AttributeError):
        return 0
    return info.st_size if stat.S_ISREG(info.st_mode) else 0


@contextmanager
def upload_progress(audio: IO[bytes], console: Console | None) -> Iterator[IO[bytes]]:
    """`audio`, read through a progress bar on `console` when there is one and the size is known."""
    size = _file_size(audio) if console is not None else 0
    if console is None or not size:
        yield audio
        return
    progress = Progress(
        TextColumn("uploading"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        console=console,
        transient=True,
    )
    task = progress.add_task("upload", total=size)
    progress.start()
    try:
        yield cast(IO[bytes], _CountingReader(audio, progress, task))
    finally:
        progress.stop()


def terminal_console() -> Console | None:
    """stderr, when it is a terminal."""
    console = Console(stderr=True)
    return console if console.is_terminal else None
