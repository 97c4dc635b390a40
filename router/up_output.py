"""What `modelyard up` shows of its worker's output: Modelyard's own progress and warnings, not vLLM's.

A first start prints some sixty lines from vLLM, PyTorch and CTranslate2 (config dumps, Triton, NUMA and
tcmalloc notes, loading bars) before the worker is ready. Without `--verbose`, `up` reads the worker's stdout
and stderr and passes on only the lines Modelyard's own loggers wrote, plus anything at ERROR from any library
and the lines that follow it (a traceback). The rest is kept, the last `TAIL_LINES` of it, and shown if the
worker exits with an error, so a failed start still says why.
"""

from __future__ import annotations

import asyncio
import re
from collections import deque
from typing import TextIO

from gpu_worker.ready import READY_MARKER

TAIL_LINES = 40
OURS = ("gpu_worker", "modelyard", "router", "core")
# core.logs' text format: "2026-12-03 12:40:12,542 WARNING gpu_worker.engine_factory: ..."
_OUR_FORMAT = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ (?P<level>[A-Z]+) (?P<logger>[\w.]+): ")
# vLLM's own: "(EngineCore pid=1) ERROR 12-03 12:41:27 [core.py:133] ..." or without the process prefix.
_VLLM_FORMAT = re.compile(r"^(\([^)]*\) )?(?P<level>[A-Z]+) \d\d-\d\d \d\d:\d\d:\d\d ")
_SERIOUS = frozenset({"ERROR", "CRITICAL"})


class WorkerOutput:
    """Decides, line by line, what of the worker's output reaches the terminal."""

    def __init__(self, sink: TextIO, verbose: bool = False) -> None:
        self._sink = sink
        self._verbose = verbose
        self._hidden: deque[str] = deque(maxlen=TAIL_LINES)
        self._following = False  # the previous line was shown: its indented continuation is shown too
        self._traceback = False  # a shown record's traceback is under way

    def line(self, text: str) -> None:
        text = text.rstrip("\n")
        if self._verbose or self._wanted(text):
            print(text, file=self._sink, flush=True)
        elif text.strip():
            self._hidden.append(text)

    def _wanted(self, text: str) -> bool:
        if text.startswith(READY_MARKER):  # `up` says ready itself, once the router has the registration
            return False
        record = _OUR_FORMAT.match(text) or _VLLM_FORMAT.match(text)
        if record is not None:
            logger = record.groupdict().get("logger") or ""
            self._following = logger.split(".")[0] in OURS or record["level"] in _SERIOUS
            self._traceback = False
        elif text.startswith("gpu_worker: "):  # the worker's one-line refusals (bad flags, exposure)
            self._following, self._traceback = True, False
        elif self._following and text.startswith(("Traceback", "During handling")):
            self._traceback = True  # its last line, the exception, is not indented: follow to the next record
        elif not (self._traceback or text[:1].isspace()):
            self._following = False
        return self._following

    def show_hidden(self) -> None:
        """After the worker failed: what was held back, for the reason it failed."""
        if self._hidden:
            print("the worker's last output (--verbose shows all of it):", file=self._sink, flush=True)
            for text in self._hidden:
                print(f"  {text}", file=self._sink, flush=True)
            self._hidden.clear()


async def relay(stream: asyncio.StreamReader, output: WorkerOutput) -> None:
    """Feed one of the worker's pipes to `output` until it closes."""
    while True:
        try:
            raw = await stream.readline()
        except ValueError:  # a line over the reader's limit, dropped
            continue
        if not raw:
            return
        output.line(raw.decode(errors="replace"))
