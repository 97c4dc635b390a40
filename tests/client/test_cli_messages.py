"""What the command line says when it is used wrong, and how it shows what a non-admin may not see."""

from __future__ import annotations

import asyncio

import pytest
from modelyard_client.cli import main as cli

from router.accounting.auth import hash_key
from router.config.accounting import ApiKey
from tests.security.helpers import config, running_router
from tests.support.echo_worker import EchoWorker
from tests.support.polling import wait_until


def test_an_unknown_flag_is_refused_by_its_own_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(["models", "--bogus"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: modelyard models")
    assert err.splitlines()[-1] == "modelyard models: error: unrecognized arguments: --bogus"
    assert cli(["admin", "strategy", "--bogus"]) == 2
    assert capsys.readouterr().err.splitlines()[-1] == (
        "modelyard admin strategy: error: unrecognized arguments: --bogus"
    )


def test_an_unknown_response_format_says_what_is_accepted(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(["chat", "hi", "--response-format", "xml"]) == 2
    assert capsys.readouterr().err == (
        "error: --response-format xml: expected json, text or a JSON Schema file (no file 'xml' here)\n"
    )


async def test_a_redacted_status_shows_dashes_for_what_it_leaves_out(
    capsys: pytest.CaptureFixture[str],
) -> None:
    keys = [ApiKey("acme", hash_key("k-acme")), ApiKey("ops", hash_key("k-ops"), admin=True)]
    async with running_router(config(keys=keys)) as router:
        worker = EchoWorker("gpu-a")
        await worker.start()
        await worker.register(router.address)
        try:
            await wait_until(lambda: router.registry.get("gpu-a") is not None)
            rows = {}
            for key in ("k-acme", "k-ops"):
                assert (
                    await asyncio.to_thread(cli, ["status", "--router", router.address, "--api-key", key])
                    == 0
                )
                lines = capsys.readouterr().out.splitlines()
                header, row = lines[1].split(), lines[2].split()
                rows[key] = dict(zip(header, row, strict=True))
        finally:
            await worker.stop()
    tenant, admin = rows["k-acme"], rows["k-ops"]
    assert (tenant["PRIO"], tenant["IN-FLIGHT"], tenant["SCORE"]) == ("-", "-", "-")
    assert (tenant["STATE"], tenant["MODELS"]) == ("healthy", "echo")
    assert admin["PRIO"] == "100"
    assert admin["IN-FLIGHT"] == "0/4"
