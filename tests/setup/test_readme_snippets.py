"""The README's snippets, run as written against `modelyard up` started with its defaults (no config file).

`up` runs in this process as `make run` would, its worker a double that registers the default models
(tests/setup/up_worker.py), with the HTTP door on. Each ```python block of the README runs in its own
interpreter, only the addresses changed to the ports this test got; the `Using it` commands run through the
`modelyard` CLI with $MODELYARD_ROUTER.
"""

from __future__ import annotations

import asyncio
import os
import re
import shlex
import sys
import wave
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from router import up as _up
from tests.support.polling import wait_until

REPO = Path(__file__).resolve().parents[2]
README = (REPO / "README.md").read_text(encoding="utf-8")
PYTHONPATH = os.pathsep.join(str(REPO / d) for d in ("", "proto", "clients"))


def blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README, flags=re.DOTALL)


@dataclass
class Up:
    grpc: str
    http: str


@pytest.fixture
async def up(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> AsyncIterator[Up]:
    monkeypatch.setenv("MODELYARD_USAGE_DB", "off")
    for name in (
        "MODELYARD_CONFIG",
        "OPENAI_API_KEY",
        "ANTHROPIC_API_KEY",
        "DEEPSEEK_API_KEY",
        "GEMINI_API_KEY",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PYTHONPATH", PYTHONPATH)
    monkeypatch.setattr(
        _up,
        "worker_command",
        lambda router, _args: [sys.executable, "-m", "tests.setup.up_worker", "--router", router],
    )
    args = _up.build_parser().parse_args(["--listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0"])
    stop = asyncio.Event()
    serving = asyncio.create_task(_up.serve(args, stop))
    printed: list[str] = []

    def ready() -> bool:
        printed.append(capsys.readouterr().out)
        assert not serving.done(), capsys.readouterr().err
        return "HTTP API on" in "".join(printed)

    await wait_until(ready, timeout=60.0)
    out = "".join(printed)
    grpc_address = re.search(r"router on (\S+),", out)
    http_base = re.search(r"HTTP API on (\S+)", out)
    assert grpc_address, out
    assert http_base, out
    yield Up(grpc=grpc_address.group(1), http=http_base.group(1).rstrip("/").removesuffix("/v1"))
    stop.set()
    assert await asyncio.wait_for(serving, 60) == 0


@pytest.fixture
def speech(tmp_path: Path) -> Path:
    """speech.wav in the directory the snippets run in (the worker double hears the fox in any audio)."""
    with wave.open(str(tmp_path / "speech.wav"), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(16000)
        out.writeframes(b"\0\0" * 16000)
    return tmp_path


async def run(command: list[str], cwd: Path, **env: str) -> str:
    process = await asyncio.create_subprocess_exec(
        *command,
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": PYTHONPATH, **env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode == 0, f"{shlex.join(command)} exited {process.returncode}:\n{err.decode()}"
    return out.decode()


def test_the_readme_has_the_snippets_this_test_runs() -> None:
    assert len(blocks("python")) == 2
    assert "from modelyard_client import" in blocks("python")[0]
    assert "from openai import OpenAI" in blocks("python")[1]


async def test_the_python_client_snippet(up: Up, speech: Path) -> None:
    code = blocks("python")[0].replace('"127.0.0.1:50051"', f'"{up.grpc}"')
    lines = (await run([sys.executable, "-c", code], speech)).splitlines()
    assert lines == [
        "hello ",
        "[local-worker/smollm2-135m-instruct: 1 tokens]",
        "hello ",
        'get_weather {"city": "Paris", "unit": "celsius"}',
        "2 384",
        "[0.0-1.0 s] the quick brown fox",
    ]


async def test_the_openai_sdk_snippet(up: Up, speech: Path) -> None:
    code = blocks("python")[1].replace("http://127.0.0.1:8080", up.http)
    lines = (await run([sys.executable, "-c", code], speech)).splitlines()
    assert lines == ["hello ", "[smollm2-135m-instruct: 1+1 tokens]"]


async def test_the_using_it_commands(up: Up, speech: Path) -> None:
    using_it = README.split("## Using it", 1)[1]
    commands = [
        shlex.split(line.split("  #", 1)[0])
        for line in re.findall(r"```sh\n(.*?)```", using_it, flags=re.DOTALL)[0].splitlines()
        if line.startswith("modelyard ")
    ]
    assert [command[1] for command in commands] == ["chat", "transcribe", "status"]
    outputs = [
        await run([sys.executable, "-m", "modelyard_client", *command[1:]], speech, MODELYARD_ROUTER=up.grpc)
        for command in commands
    ]
    assert outputs[0].strip() == "What is the capital of France?"  # the echo worker says it back
    assert "the quick brown fox" in outputs[1]
    assert "local-worker" in outputs[2]


def inline_commands(prefix: str) -> list[list[str]]:
    """The README's `modelyard ...` commands written inline (in backticks, possibly across a line break) that
    start with `prefix`, in the order written, without placeholders (FILE, ID, [...])."""
    found = [" ".join(text.split()) for text in re.findall(r"`(modelyard\s[^`]+)`", README)]
    return [
        shlex.split(command)
        for command in dict.fromkeys(found)
        if command.startswith(prefix) and not re.search(r"[A-Z]{2,}|\[", command)
    ]


async def test_the_admin_strategy_commands(up: Up, speech: Path) -> None:
    commands = inline_commands("modelyard admin strategy")
    assert [command[3:] for command in commands] == [["cost_optimized"], ["--weight", "cost=3"], []]
    set_strategy, set_weight, show = [
        await run([sys.executable, "-m", "modelyard_client", *command[1:]], speech, MODELYARD_ROUTER=up.grpc)
        for command in commands
    ]
    assert set_strategy.startswith("strategy cost_optimized")
    assert "cost=3" in set_weight
    assert show == set_weight  # the read shows what the last change left


async def test_the_hash_key_command_prints_a_key_entry(speech: Path) -> None:
    (command,) = inline_commands("modelyard router hash-key")
    out = await run([sys.executable, "-m", "modelyard_client", *command[1:]], speech)
    assert re.search(
        r'^- \{tenant: acme, key_sha256: "sha256\$[0-9a-f]+\$[0-9a-f]{64}"\}$', out, re.MULTILINE
    )
