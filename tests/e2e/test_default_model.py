"""The default chat model end to end: converted from the packaged GGUF, served by vLLM, asked through the CLI."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from modelyard_client.cli import main as cli

from gpu_worker.model_cache import CACHE_ENV
from router.server import RouterServer
from tests.worker.process import running_worker

pytestmark = pytest.mark.engines


async def test_a_fresh_worker_converts_smollm2_and_answers_sensibly(
    router: RouterServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # An empty model cache, as on a fresh machine: the worker converts the GGUF before it starts vLLM.
    env = {CACHE_ENV: str(tmp_path)}
    worker_args = ("--no-whisper", "--worker-id", "smol")
    async with running_worker(router.address, *worker_args, env=env, ready_timeout=600) as worker:
        assert worker.models == ("smollm2-135m-instruct",)
        assert "converting it from" in worker.log()
        # No sampling flags: the converted model's own defaults (greedy) answer.
        code = await asyncio.to_thread(
            cli, ["chat", "What is the capital of France?", "--router", router.address, "--json"]
        )
        lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert code == 0
    answer = "".join(line.get("delta", "") for line in lines)
    assert "Paris" in answer
    assert lines[-1]["usage"]["model"] == "smollm2-135m-instruct"
    defaults = generation_defaults(tmp_path)
    assert (defaults["temperature"], defaults["max_new_tokens"]) == (0.0, 512)


def generation_defaults(model_cache: Path) -> dict[str, object]:
    (converted,) = model_cache.iterdir()
    loaded: dict[str, object] = json.loads((converted / "generation_config.json").read_text())
    return loaded
