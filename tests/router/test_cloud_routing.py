"""Cloud providers as candidates of the one scheduler: the real SDKs against local wire-format servers,
configured the way users configure them (keys and base URLs in the environment), driven by the CLI."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from modelyard_client import AsyncClient
from modelyard_client.cli import main as cli

from tests.support.clouds import start_configured_router as start_router
from tests.support.fake_anthropic import FakeAnthropic
from tests.support.fake_http import Fault
from tests.support.fake_openai import FakeOpenAI


async def run_cli(*argv: str) -> int:
    return await asyncio.to_thread(cli, list(argv))


async def test_auto_survives_a_failing_openai_and_answers_from_anthropic(
    clouds: tuple[FakeOpenAI, FakeAnthropic], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    openai, anthropic = clouds
    # OpenAI is preferred (fallback strategy, priority 1) and stays healthy (its model list answers), but
    # every chat it is sent fails: the answer can only come from Anthropic after a failed attempt on OpenAI.
    config_file = tmp_path / "router.yaml"
    config_file.write_text(
        "providers: {openai: {kind: openai, priority: 1}, anthropic: {kind: anthropic, priority: 2}}\n"
    )
    openai.inject(*[Fault(status=500, path="/v1/chat/completions")] * 50)
    server = await start_router(config_file)
    try:
        code = await run_cli(
            "chat", "--model", "auto", "--strategy", "fallback", "hi", "--json", "--router", server.address
        )
    finally:
        await server.stop(0)
    assert [r.path for r in openai.requests if r.path == "/v1/chat/completions"]  # the failed attempt
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert code == 0
    usage = lines[-1]["usage"]
    assert usage["backend"] == "anthropic"
    assert usage["cost_usd"] > 0
    assert "".join(line.get("delta", "") for line in lines[:-1])
    assert anthropic.requests


async def test_admin_disables_a_provider_and_the_next_request_avoids_it(
    clouds: tuple[FakeOpenAI, FakeAnthropic], capsys: pytest.CaptureFixture[str]
) -> None:
    server = await start_router()
    try:
        address = ("--router", server.address)
        assert await run_cli("admin", "update-backend", "openai", "--priority", "1", *address) == 0
        assert await run_cli("admin", "update-backend", "anthropic", "--priority", "2", *address) == 0
        assert (
            await run_cli("chat", "--model", "auto", "--strategy", "fallback", "hi", "--json", *address) == 0
        )
        first = json.loads(capsys.readouterr().out.splitlines()[-1])["usage"]
        assert await run_cli("admin", "update-backend", "openai", "--disable", *address) == 0
        assert (
            await run_cli("chat", "--model", "auto", "--strategy", "fallback", "hi", "--json", *address) == 0
        )
        second = json.loads(capsys.readouterr().out.splitlines()[-1])["usage"]
    finally:
        await server.stop(0)
    assert (first["backend"], second["backend"]) == ("openai", "anthropic")


async def test_compare_cost_lists_cloud_candidates_cheapest_first(
    clouds: tuple[FakeOpenAI, FakeAnthropic], capsys: pytest.CaptureFixture[str]
) -> None:
    server = await start_router()
    try:
        code = await run_cli(
            "admin", "compare-cost", "hello there", "--model", "auto", "--json", "--router", server.address
        )
    finally:
        await server.stop(0)
    assert code == 0
    estimates = json.loads(capsys.readouterr().out)["estimates"]
    costs = [e["cost_usd"] for e in estimates]
    assert costs == sorted(costs)
    assert {e["backend"] for e in estimates} == {"openai", "anthropic"}


async def test_status_shows_a_cloud_backends_concurrency_limit_and_load(
    clouds: tuple[FakeOpenAI, FakeAnthropic], tmp_path: Path
) -> None:
    config_file = tmp_path / "router.yaml"
    config_file.write_text(
        "providers: {openai: {kind: openai, chat_models: [gpt-4o-mini], max_concurrency: 8}}\n"
    )
    server = await start_router(config_file)
    try:
        openai = server.registry.get("openai")
        assert openai is not None
        openai.in_flight = 4  # as failover counts four open requests
        assert openai.utilisation() == 0.5
        async with AsyncClient(server.address) as client:
            status = await client.status()
    finally:
        await server.stop(0)
    assert [(b.id, b.max_concurrency, b.in_flight) for b in status.backends] == [("openai", 8, 4)]


async def test_the_router_prices_what_a_cloud_backend_reports_with_its_own_table(
    clouds: tuple[FakeOpenAI, FakeAnthropic], tmp_path: Path
) -> None:
    config_file = tmp_path / "router.yaml"
    config_file.write_text(
        "providers: {openai: {kind: openai, chat_models: [gpt-4o-mini]}}\n"
        "prices: {gpt-4o-mini: {input_per_m: 1000000, output_per_m: 2000000}}\n"  # $1 / $2 a token
    )
    server = await start_router(config_file)
    try:
        async with AsyncClient(server.address) as client:
            usage = (await client.chat_text("hi", model="gpt-4o-mini")).usage
    finally:
        await server.stop(0)
    assert usage is not None
    assert usage.prompt_tokens > 0
    assert usage.cost_usd == pytest.approx(usage.prompt_tokens * 1.0 + usage.completion_tokens * 2.0)
