"""`modelyard status` against a real router: the circuit, enabled/priority, success rate and score it reports,
in the table, the wide table and the JSON (which carries every GetStatus field)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import grpc
import pytest
from modelyard.v1 import admin_pb2, admin_pb2_grpc, router_pb2, router_pb2_grpc
from modelyard_client.cli import main as cli

from router.server import RouterServer
from tests.router.conftest import WorkerFactory
from tests.router.test_routing import chat_request, collect
from tests.support.echo_worker import Faults

# GetStatus fields whose JSON name carries their unit (Durations become numbers).
_RENAMED = {
    "uptime": "uptime_seconds",
    "connected_for": "connected_seconds",
    "ttft": "ttft_ms",
    "latency": "latency_ms",
    "predicted_ttft": "predicted_ttft_ms",
    "oldest_wait": "oldest_wait_seconds",
    "mean_wait": "mean_wait_seconds",
}


async def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    assert await asyncio.to_thread(cli, list(argv)) == 0
    return capsys.readouterr().out


@pytest.fixture
async def troubled_router(
    router: RouterServer, stub: router_pb2_grpc.RouterServiceStub, echo_workers: WorkerFactory
) -> RouterServer:
    """Three workers: 'flaky' with its circuit open, 'steady' answering, 'spare' disabled at priority 7."""
    await echo_workers("flaky", faults=Faults(fail_before_first=grpc.StatusCode.UNAVAILABLE))
    await echo_workers("steady")
    await echo_workers("spare")
    async with grpc.aio.insecure_channel(router.address) as channel:
        admin = admin_pb2_grpc.AdminServiceStub(channel)
        await admin.UpdateBackend(admin_pb2.UpdateBackendRequest(backend="spare", enabled=False, priority=7))
    request = chat_request()
    request.routing.provider = "flaky"
    for _ in range(5):  # the default threshold: five failures in a row
        with pytest.raises(grpc.aio.AioRpcError):
            await collect(stub.Chat(request))
    await collect(stub.Chat(chat_request()))  # scored, then served by 'steady'
    return router


async def test_the_table_shows_the_circuit_and_what_the_scheduler_saw(
    troubled_router: RouterServer, capsys: pytest.CaptureFixture[str]
) -> None:
    out = await run_cli(capsys, "status", "--router", troubled_router.address)
    lines = out.splitlines()
    assert "strategy composite (" in lines[0]
    header = lines[1].split()
    assert header[:8] == ["BACKEND", "KIND", "STATE", "CIRCUIT", "ENABLED", "PRIO", "SUCCESS", "SCORE"]
    rows = {line.split()[0]: dict(zip(header, line.split(), strict=False)) for line in lines[2:5]}
    assert rows["flaky"]["CIRCUIT"] == "open"
    assert rows["flaky"]["SUCCESS"].endswith("%")
    assert int(rows["flaky"]["SUCCESS"].rstrip("%")) < 50
    assert rows["steady"]["CIRCUIT"] == "closed"
    assert rows["steady"]["SCORE"] != "-"  # considered for the last request
    assert (rows["spare"]["ENABLED"], rows["spare"]["PRIO"]) == ("no", "7")
    # The open circuit's reason, below the table; no colour when the output is not a terminal.
    assert any(line.startswith("flaky: last error:") and "injected failure" in line for line in lines)
    assert "\x1b[" not in out

    wide = await run_cli(capsys, "status", "--wide", "--router", troubled_router.address)
    assert wide.splitlines()[1].split() == [
        "BACKEND",
        "KIND",
        "ADDRESS",
        "STATE",
        "CIRCUIT",
        "ENABLED",
        "PRIO",
        "SUCCESS",
        "REQUESTS",
        "FAILURES",
        "TTFT",
        "LATENCY",
        "SCORE",
        "RUNNING",
        "WAITING",
        "KV-CACHE",
        "IN-FLIGHT",
        "MODELS",
    ]
    assert any(line.startswith("steady: score ") and "success_rate" in line for line in wide.splitlines())


async def test_json_carries_every_get_status_field(
    troubled_router: RouterServer, capsys: pytest.CaptureFixture[str]
) -> None:
    doc = json.loads(await run_cli(capsys, "status", "--json", "--router", troubled_router.address))
    assert doc["strategy"] == "composite"
    assert doc["weights"]["success_rate"] > 0
    backends = {b["id"]: b for b in doc["backends"]}
    assert backends["flaky"]["circuit"] == "open"
    assert backends["flaky"]["failures"] == 5
    assert "injected failure" in backends["flaky"]["last_error"]
    assert (backends["spare"]["enabled"], backends["spare"]["priority"]) == (False, 7)
    assert set(backends["steady"]["score_components"]) >= {"success_rate", "latency", "load"}
    assert backends["steady"]["last_score"] > 0
    assert backends["steady"]["ttft_ms"] > 0
    missing_fields(router_pb2.GetStatusResponse.DESCRIPTOR, doc)
    for backend in doc["backends"]:
        missing_fields(router_pb2.BackendStatus.DESCRIPTOR, backend)


def missing_fields(descriptor: Any, doc: dict[str, Any]) -> None:  # a protobuf Descriptor
    """Every field of the message (and of its nested messages present in `doc`) has a key in `doc`."""
    for field in descriptor.fields:
        key = _RENAMED.get(field.name, field.name)
        assert key in doc, f"{descriptor.name}.{field.name} is missing from the JSON"
        nested = doc[key]
        if field.message_type is not None and not field.message_type.GetOptions().map_entry:
            values = nested if isinstance(nested, list) else [nested]
            for value in values:
                if isinstance(value, dict) and field.message_type.full_name.startswith("modelyard."):
                    missing_fields(field.message_type, value)
