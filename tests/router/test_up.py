"""`modelyard up` with the real router in this process and the echo worker double as its child process."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
from pathlib import Path
from typing import Any

import pytest
from modelyard_client import AsyncClient

from router import up as _up
from router.server import RouterServer
from router.up import UsageError
from tests.support.polling import wait_until
from tests.support.processes import running

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _hermetic_router(monkeypatch: pytest.MonkeyPatch) -> None:
    # The router `up` starts reads the environment: no ledger in the home directory, no cloud providers.
    monkeypatch.setenv("MODELYARD_USAGE_DB", "off")
    for name in (
        "MODELYARD_CONFIG",
        "OPENAI_API_KEY",
        "ANTHROPIC_API_KEY",
        "DEEPSEEK_API_KEY",
        "GEMINI_API_KEY",
    ):
        monkeypatch.delenv(name, raising=False)


def args(**overrides: object) -> argparse.Namespace:
    values: dict[str, object] = {
        "config": None,
        "listen": "127.0.0.1:0",
        "chat_model": None,
        "whisper_model": None,
        "embed_model": None,
        "no_embed": False,
        "grace_seconds": None,
        "stream_interval_ms": None,
        "verbose": False,
        "worker_listen": "127.0.0.1:0",
        "http_listen": None,
        "ready_timeout": 30.0,
    }
    values.update(overrides)
    return argparse.Namespace(**values)


def test_the_worker_command_passes_the_models_on() -> None:
    command = _up.worker_command(
        "127.0.0.1:5", args(chat_model="Qwen/Qwen2.5-0.5B", whisper_model="tiny.en", embed_model="minilm")
    )
    assert command == [
        sys.executable,
        "-m",
        "gpu_worker",
        "--router",
        "127.0.0.1:5",
        "--listen",
        "127.0.0.1:0",
        "--chat-model",
        "Qwen/Qwen2.5-0.5B",
        "--whisper-model",
        "tiny.en",
        "--embed-model",
        "minilm",
    ]


def test_up_serves_the_packaged_embedding_model_unless_told_not_to(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_up, "packaged_embed_model", lambda: "minilm")
    assert _up.worker_command("127.0.0.1:5", args())[-2:] == ["--embed-model", "minilm"]
    assert "--embed-model" not in _up.worker_command("127.0.0.1:5", args(no_embed=True))
    monkeypatch.setattr(_up, "packaged_embed_model", lambda: None)  # an install without the package
    assert "--embed-model" not in _up.worker_command("127.0.0.1:5", args())


def test_the_try_lines_name_modelyard_by_a_path_that_works(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    venv_bin = tmp_path / "bin"
    venv_bin.mkdir()
    (venv_bin / "modelyard").write_text("")
    monkeypatch.setattr(sys, "executable", str(venv_bin / "python"))
    monkeypatch.setenv("PATH", "/nonexistent")
    assert _up.modelyard_command() == str(venv_bin / "modelyard")  # not activated: the full path
    (venv_bin / "modelyard").chmod(0o755)
    monkeypatch.setenv("PATH", str(venv_bin))
    assert _up.modelyard_command() == "modelyard"  # on PATH (an activated venv): the name


async def test_up_serves_until_stopped_then_stops_the_worker(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def echo_worker(router: str, _args: argparse.Namespace) -> list[str]:
        return [sys.executable, "-m", "tests.client.echo_worker_process", "--router", router]

    monkeypatch.setattr(_up, "worker_command", echo_worker)
    # This checkout's code and stubs, ahead of any installed copy.
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(str(REPO / d) for d in ("", "proto", "clients")))
    stop = asyncio.Event()
    serving = asyncio.create_task(_up.serve(args(http_listen="127.0.0.1:0"), stop))
    printed: list[str] = []

    def says_ready() -> bool:
        printed.append(capsys.readouterr().out)
        assert not serving.done(), capsys.readouterr().err
        return "HTTP API on" in "".join(printed)

    await wait_until(says_ready, timeout=30.0)
    out = "".join(printed)
    ready = out.splitlines()
    assert ready[0].startswith("modelyard ready: router on 127.0.0.1:")
    assert ready[0].endswith("worker echo-worker serving echo")
    address = ready[0].split()[4].rstrip(",")
    assert f'modelyard chat "Say hello in five words" --router {address} --model echo' in out
    assert "OpenAI-compatible HTTP API on http://127.0.0.1:" in out

    async with AsyncClient(address) as client:
        assert (await client.chat_text("one two", model="echo")).text == "one two "
    stop.set()
    assert await asyncio.wait_for(serving, 30) == 0
    assert "stopping: worker first, then the router" in capsys.readouterr().err


async def test_a_bad_router_config_is_a_usage_error(tmp_path: Path) -> None:
    config = tmp_path / "router.yaml"
    config.write_text("no_such_setting: 1\n")
    with pytest.raises(UsageError, match="no_such_setting"):
        await _up.serve(args(config=str(config)), asyncio.Event())


async def test_up_fails_when_the_worker_dies_before_registering(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    engine_noise = (
        "import sys; print('(EngineCore pid=1) INFO 12-03 12:41:27 [core.py:1] config dump', file=sys.stderr); "
        "print('2026-12-03 12:40:44,786 INFO gpu_worker.engines.vllm_setup: starting vLLM', file=sys.stderr); "
        "raise SystemExit(3)"
    )
    monkeypatch.setattr(_up, "worker_command", lambda _router, _args: [sys.executable, "-c", engine_noise])
    assert await asyncio.wait_for(_up.serve(args(), asyncio.Event()), 30) == 1
    err = capsys.readouterr().err.splitlines()
    assert "error: the worker exited with status 3 before registering" in err
    # Quiet while it ran (only Modelyard's own line), then what was held back, for the reason it failed.
    shown = err.index("2026-12-03 12:40:44,786 INFO gpu_worker.engines.vllm_setup: starting vLLM")
    assert err[shown + 1 :].count("  (EngineCore pid=1) INFO 12-03 12:41:27 [core.py:1] config dump") == 1


async def test_a_drained_worker_leaves_up_serving(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`admin drain` makes the local worker finish its calls and exit 0: the router and HTTP door stay up."""
    pids: list[int] = []

    def echo_worker(router: str, _args: argparse.Namespace) -> list[str]:
        return [sys.executable, "-m", "tests.client.echo_worker_process", "--router", router]

    monkeypatch.setattr(_up, "worker_command", echo_worker)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(str(REPO / d) for d in ("", "proto", "clients")))
    started = asyncio.create_subprocess_exec

    async def remember_pid(*command: Any, **kwargs: Any) -> asyncio.subprocess.Process:
        process = await started(*command, **kwargs)
        pids.append(process.pid)
        return process

    monkeypatch.setattr(asyncio, "create_subprocess_exec", remember_pid)
    stop = asyncio.Event()
    serving = asyncio.create_task(_up.serve(args(), stop))
    printed: list[str] = []

    def says_ready() -> bool:
        printed.append(capsys.readouterr().out)
        assert not serving.done()
        return "modelyard ready" in "".join(printed)

    await wait_until(says_ready, timeout=30.0)
    address = "".join(printed).split()[4].rstrip(",")
    os.kill(pids[0], signal.SIGTERM)  # a drained worker exits 0, as this one does on SIGTERM
    err: list[str] = []

    def says_drained() -> bool:
        err.append(capsys.readouterr().err)
        return "the worker drained and exited; the router keeps serving" in "".join(err)

    await wait_until(says_drained, timeout=30.0)
    assert not serving.done()
    async with AsyncClient(address) as client:
        status = await client.status()  # the router still answers
        assert all(b.kind != "worker" for b in status.backends)
    stop.set()
    assert await asyncio.wait_for(serving, 30) == 0


def test_the_stream_interval_reaches_the_worker_when_set() -> None:
    command = _up.worker_command("127.0.0.1:5", args(stream_interval_ms=20.0))
    assert command[command.index("--stream-interval-ms") + 1] == "20"
    assert "--stream-interval-ms" not in _up.worker_command("127.0.0.1:5", args())  # the worker's default: 0
    parsed = _up.build_parser().parse_args(["--stream-interval-ms", "12.5"])
    assert parsed.stream_interval_ms == 12.5
    assert _up.build_parser().parse_args([]).stream_interval_ms is None


@pytest.mark.parametrize("bad", ["-1", "soon", "nan"])
def test_a_bad_stream_interval_is_a_usage_error(bad: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        _up.build_parser().parse_args(["--stream-interval-ms", bad])
    assert exited.value.code == 2
    assert "--stream-interval-ms" in capsys.readouterr().err


def test_grace_seconds_reach_the_worker() -> None:
    command = _up.worker_command("127.0.0.1:5", args(grace_seconds=7.0))
    assert command[command.index("--grace-seconds") + 1] == "7"


async def test_up_stops_its_router_with_the_grace_it_was_given(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    graces: list[float | None] = []
    stop_router = RouterServer.stop

    async def record(self: RouterServer, grace: float | None = None) -> None:
        graces.append(grace)
        await stop_router(self, grace)

    monkeypatch.setattr(RouterServer, "stop", record)
    monkeypatch.setattr(
        _up, "worker_command", lambda _router, _args: [sys.executable, "-c", "raise SystemExit(3)"]
    )
    assert await asyncio.wait_for(_up.serve(args(grace_seconds=7.0), asyncio.Event()), 30) == 1
    assert graces == [7.0]


# `modelyard up` in a process of its own, with the echo worker double as its worker.
_UP_WITH_ECHO_WORKER = """
import sys
from router import up
up.worker_command = lambda router, _args: [sys.executable, "-m", "tests.client.echo_worker_process", "--router", router]
sys.exit(up.main(["--listen", "127.0.0.1:0", "--no-embed"]))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the parent-death signal is Linux's")
async def test_the_worker_dies_with_a_sigkilled_up(monkeypatch: pytest.MonkeyPatch) -> None:
    """A SIGKILLed `up` runs no stop of its own: its worker must not stay behind, holding the GPU and port."""
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(str(REPO / d) for d in ("", "proto", "clients")))
    up = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        _UP_WITH_ECHO_WORKER,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    assert up.stdout is not None
    worker = 0
    try:
        seen: list[str] = []
        while not any(line.startswith("modelyard ready") for line in seen):
            line = (await asyncio.wait_for(up.stdout.readline(), 60)).decode()
            assert line, "".join(seen)  # `up` ended before it was ready
            seen.append(line)
            if line.startswith("waiting for the worker (pid "):
                worker = int(line.split("(pid ")[1].split(")")[0])
        assert worker, "".join(seen)
        assert running(worker)
        up.kill()
        await up.wait()
        await wait_until(lambda: not running(worker), timeout=30.0, message=f"worker {worker} outlived up")
    finally:
        if up.returncode is None:
            up.kill()
            await up.wait()
        if worker and running(worker):
            os.kill(worker, signal.SIGKILL)  # the failed case: leave no orphan behind
