"""A Node client (tests/node/client.js: @grpc/grpc-js + @grpc/proto-loader on proto/) against a real router:
it streams a chat, assembles a tool call and decodes a rich error's google.rpc details.

`make install` installs the npm packages (npm ci in tests/node); without them, or without Node.js, this test is
skipped naming what is missing (failed under CI).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from router.config.loader import load_config
from router.server import RouterServer
from tests.support.fake_openai import FakeOpenAI
from tests.support.system_tools import require

HERE = Path(__file__).resolve().parent
ARGUMENTS = '{"city": "Paris", "unit": "celsius"}'


@pytest.fixture
async def router(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[RouterServer]:
    async with FakeOpenAI(tool_arguments=ARGUMENTS) as openai:
        monkeypatch.setenv("OPENAI_API_KEY", openai.api_key)
        monkeypatch.setenv("OPENAI_BASE_URL", openai.base_url)
        config = load_config(env=os.environ)
        config.listen = "127.0.0.1:0"
        server = RouterServer(config)
        await server.start()
        yield server
        await server.stop(0)


def node() -> str:
    require("node", "tests/node/node_modules")
    return str(shutil.which("node"))


async def test_node_streams_a_tool_call_and_reads_a_rich_error(router: RouterServer) -> None:
    process = await asyncio.create_subprocess_exec(
        node(),
        str(HERE / "client.js"),
        router.address,
        "gpt-4o-mini",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode == 0, err.decode()
    seen = json.loads(out)

    chat = seen["chat"]
    assert chat["tool_calls"] == [{"id": "call_0_get_weather", "name": "get_weather", "arguments": ARGUMENTS}]
    assert chat["finish_reason"] == "FINISH_REASON_TOOL_CALLS"
    assert chat["backend"] == "openai"

    error = seen["error"]
    assert error["code"] == "INVALID_ARGUMENT"
    status = error["status"]
    assert status["code"] == 3
    assert status["message"] == error["message"]
    by_type = {detail["type"]: detail for detail in status["details"]}
    assert by_type["google.rpc.ErrorInfo"]["reason"] == "INVALID_ARGUMENT"
    assert by_type["google.rpc.ErrorInfo"]["domain"] == "modelyard.dev"
    violations = by_type["google.rpc.BadRequest"]["fieldViolations"]
    assert violations[0]["field"] == "tools[0].parameters"
