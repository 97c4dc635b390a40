"""`modelyard chat --tools/--tool-choice/--response-format/--logprobs` through a real router to OpenAI- and
Anthropic-format upstreams (local wire-format servers driven by the real SDKs)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from modelyard_client.cli import main as cli

from router.server import RouterServer
from tests.support.chat_events import WEATHER_SCHEMA
from tests.support.clouds import clouds_in_environment, start_configured_router
from tests.support.fake_anthropic import FakeAnthropic
from tests.support.fake_openai import FakeOpenAI

ARGUMENTS = '{"city": "Paris", "unit": "celsius"}'


@pytest.fixture
async def clouds(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[tuple[FakeOpenAI, FakeAnthropic]]:
    fakes = FakeOpenAI(tool_arguments=ARGUMENTS), FakeAnthropic(tool_input=ARGUMENTS)
    async with clouds_in_environment(monkeypatch, *fakes) as started:
        yield started


@pytest.fixture
async def router(clouds: tuple[FakeOpenAI, FakeAnthropic]) -> AsyncIterator[RouterServer]:
    server = await start_configured_router()
    yield server
    await server.stop(0)


@pytest.fixture
def tools_file(tmp_path: Path) -> Path:
    path = tmp_path / "tools.json"
    tool = {"name": "get_weather", "description": "Current weather", "parameters": WEATHER_SCHEMA}
    path.write_text(json.dumps([{"type": "function", "function": tool}]))
    return path


async def chat(capsys: pytest.CaptureFixture[str], router: RouterServer, *argv: str) -> tuple[int, str, str]:
    code = await asyncio.to_thread(cli, ["chat", *argv, "--router", router.address])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def json_lines(out: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.splitlines()]


@pytest.mark.parametrize("model", ["gpt-4o-mini", "claude-haiku-4-5"])
async def test_a_streamed_tool_call_prints_once_whole(
    router: RouterServer, tools_file: Path, model: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = await chat(
        capsys, router, "weather in Paris?", "--model", model, "--tools", str(tools_file), "--json"
    )
    assert code == 0
    lines = json_lines(out)
    calls = [line["tool_call"] for line in lines if "tool_call" in line]
    assert len(calls) == 1
    assert calls[0]["name"] == "get_weather"
    assert calls[0]["id"]
    assert calls[0]["arguments"] == ARGUMENTS  # JSON text, assembled from the fragments
    assert lines[-1]["usage"]["finish_reason"] == "tool_calls"


async def test_tool_calls_read_as_calls_without_json(
    router: RouterServer, tools_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = await chat(
        capsys, router, "weather?", "--model", "claude-haiku-4-5", "--tools", str(tools_file),
        "--tool-choice", "get_weather",
    )  # fmt: skip
    assert code == 0
    assert out == '-> get_weather({"city": "Paris", "unit": "celsius"})  [toolu_0_get_weather]\n'
    assert "finish: tool_calls" in err


async def test_tool_choice_and_response_format_reach_the_upstream(
    router: RouterServer,
    clouds: tuple[FakeOpenAI, FakeAnthropic],
    tools_file: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    openai, _ = clouds
    await chat(
        capsys, router, "hi", "--model", "gpt-4o-mini", "--tools", str(tools_file), "--tool-choice", "none"
    )
    assert openai.requests[-1].json["tool_choice"] == "none"
    schema = tmp_path / "weather.schema.json"
    schema.write_text(json.dumps(WEATHER_SCHEMA))
    code, _, _ = await chat(capsys, router, "hi", "--model", "gpt-4o-mini", "--response-format", str(schema))
    assert code == 0
    sent = openai.requests[-1].json["response_format"]
    assert (sent["type"], sent["json_schema"]["schema"], sent["json_schema"]["strict"]) == (
        "json_schema",
        WEATHER_SCHEMA,
        True,
    )
    await chat(capsys, router, "hi", "--model", "gpt-4o-mini", "--response-format", "json")
    assert openai.requests[-1].json["response_format"] == {"type": "json_object"}


async def test_logprobs_and_reasoning_lines(
    router: RouterServer, clouds: tuple[FakeOpenAI, FakeAnthropic], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = await chat(capsys, router, "hi", "--model", "gpt-4o-mini", "--logprobs", "2", "--json")
    assert code == 0
    deltas = [line for line in json_lines(out) if "delta" in line]
    assert deltas[0]["logprobs"][0]["token"] == "Hello "
    assert len(deltas[0]["logprobs"][0]["top"]) == 2
    code, out, _ = await chat(
        capsys, router, "hi", "--model", "claude-haiku-4-5", "--reasoning-effort", "low", "--json"
    )
    assert code == 0
    lines = json_lines(out)
    reasoning = "".join(line["reasoning"] for line in lines if "reasoning" in line)
    assert reasoning == clouds[1].thinking
    assert lines.index(next(line for line in lines if "delta" in line)) > 0


async def test_bad_files_are_usage_errors(
    router: RouterServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = tmp_path / "tools.json"
    broken.write_text("{not json")
    code, _, err = await chat(capsys, router, "hi", "--tools", str(broken))
    assert code == 2
    assert "--tools" in err
    assert "not valid JSON" in err
    code, _, err = await chat(capsys, router, "hi", "--response-format", str(tmp_path / "missing.json"))
    assert code == 2
    assert "--response-format" in err
