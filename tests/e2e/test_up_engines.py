"""The real `modelyard up`, as a user runs it: the `modelyard` command with its default models (SmolLM2 chat on
vLLM, Whisper tiny.en), its ready message, a chat and a transcription through it, and Ctrl-C stopping the
worker, then the router, exit 0. No part of it is swapped for a double."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
from pathlib import Path

import pytest
from modelyard_client import AsyncClient, Segment, Usage

from tests.support.polling import wait_until
from tests.worker.speech import SENTENCE, make_speech_wav

pytestmark = pytest.mark.engines
REPO = Path(__file__).resolve().parents[2]
READY_TIMEOUT_S = (
    900.0  # the first run converts SmolLM2 from its packaged GGUF; vLLM starts in 20-60 s on CPU
)


def children(pid: int) -> set[int]:
    """Every descendant of `pid` (Linux /proc)."""
    found: set[int] = set()
    todo = [pid]
    while todo:
        parent = todo.pop()
        for task in Path(f"/proc/{parent}/task").glob("*"):
            try:
                kids = {int(k) for k in (task / "children").read_text().split()}
            except OSError:
                continue
            todo.extend(kids - found)
            found |= kids
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


async def test_modelyard_up_serves_chat_and_speech_then_stops_cleanly(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY") and k != "MODELYARD_CONFIG"}
    env["MODELYARD_USAGE_DB"] = "off"
    env["PYTHONPATH"] = os.pathsep.join(str(REPO / d) for d in ("", "proto", "clients"))
    out, log = tmp_path / "up.out", tmp_path / "up.log"
    # Files, not pipes: the worker inherits them, and a pipe it held open would hide `up` exiting early.
    with out.open("wb") as stdout, log.open("wb") as stderr:
        up = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "modelyard_client", "up", "--listen", "127.0.0.1:0",
            stdout=stdout, stderr=stderr, env=env,
        )  # fmt: skip
    try:

        def ready() -> bool:
            assert up.returncode is None, (
                f"modelyard up exited with {up.returncode}:\n{log.read_text()[-3000:]}"
            )
            return "Ctrl-C stops the worker" in out.read_text()

        await wait_until(ready, timeout=READY_TIMEOUT_S)
        lines = out.read_text().splitlines()  # the worker's own ready line may come first: it shares stdout
        ready_line = next(line for line in lines if line.startswith("modelyard ready: router on 127.0.0.1:"))
        address = ready_line.split()[4].rstrip(",")
        chat_model = next(h for h in lines if "modelyard chat" in h).split("--model ")[1].split()[0]
        whisper_model = next(h for h in lines if "modelyard transcribe" in h).split("--model ")[1].split()[0]
        assert "smollm2" in chat_model.lower()
        assert whisper_model == "whisper-tiny.en"
        family = children(up.pid)
        assert family  # the worker and its engines

        async with AsyncClient(address) as client:
            answer = await client.chat_text("Say hello in five words", model=chat_model, max_tokens=16)
            assert answer.text.strip()
            assert answer.usage is not None
            assert answer.usage.completion_tokens > 0
            assert answer.usage.model == chat_model
            text, usage = "", None
            async for event in client.transcribe(make_speech_wav(tmp_path), model=whisper_model):
                if isinstance(event, Segment):
                    text += event.text
                elif isinstance(event, Usage):
                    usage = event
        heard = {w.strip(".,!?").lower() for w in text.split()}
        assert len(heard & set(SENTENCE.split())) >= 5, text
        assert usage is not None
        assert usage.backend == answer.usage.backend

        up.send_signal(signal.SIGINT)  # Ctrl-C
        assert await asyncio.wait_for(up.wait(), 180) == 0, log.read_text()[-3000:]
        assert "stopping: worker first, then the router" in log.read_text()
        # The worker and its engines go with it (the worker's guardian may take a moment to end the last ones).
        await wait_until(lambda: not [pid for pid in family if alive(pid)], timeout=60)
    finally:
        if up.returncode is None:
            up.kill()
            await up.wait()
        # A worker whose `up` was killed outlives it (it keeps trying to reach its router): end it here.
        worker = re.search(r"waiting for the worker \(pid (\d+)\)", log.read_text())
        if worker and alive(int(worker.group(1))):
            os.kill(int(worker.group(1)), signal.SIGKILL)  # its guardian ends the engines
