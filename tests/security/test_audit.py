"""Every Admin call (tenant, method, arguments, outcome) is logged and stored beside the usage ledger, and
`modelyard admin audit` lists it; refused calls included."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path

import pytest
from modelyard_client import AdminClient, InvalidArgument, NotFound, PermissionDenied
from modelyard_client.cli import main as cli

from router.accounting.auth import hash_key
from router.config.accounting import ApiKey
from tests.security.helpers import config, running_router

KEYS = [ApiKey("acme", hash_key("k-acme")), ApiKey("ops", hash_key("k-ops"), admin=True)]


async def test_admin_calls_are_audited_stored_and_listed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="modelyard.audit")
    db = str(tmp_path / "usage.sqlite3")
    async with running_router(config(keys=KEYS, usage_db=db)) as router:
        with AdminClient(router.address, api_key="k-ops", timeout=10) as ops:
            await asyncio.to_thread(ops.set_strategy, "cost_optimized")
            with pytest.raises(NotFound):
                await asyncio.to_thread(ops.update_backend, "nope", enabled=False)
        with (
            AdminClient(router.address, api_key="k-acme", timeout=10) as tenant,
            pytest.raises(PermissionDenied),
        ):
            await asyncio.to_thread(tenant.drain_worker, "w1", "because")
        code = await asyncio.to_thread(
            cli, ["admin", "audit", "--json", "--router", router.address, "--api-key", "k-ops"]
        )
    assert code == 0
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(e["method"], e.get("tenant"), e["outcome"]) for e in events] == [
        ("DrainWorker", "acme", "PERMISSION_DENIED"),
        ("UpdateBackend", "ops", "NOT_FOUND"),
        ("SetStrategy", "ops", "OK"),
    ]
    assert json.loads(events[1]["arguments"]) == {"backend": "nope", "enabled": False}
    assert "no backend 'nope'" in events[1]["message"]
    assert all(e["router_id"] == "sec" for e in events)
    logged = [r.getMessage() for r in caplog.records if r.name == "modelyard.audit"]
    assert any('tenant="acme" method=DrainWorker outcome=PERMISSION_DENIED' in line for line in logged)

    # Stored, not only remembered: a new router on the same ledger still lists them (and its own listing).
    async with running_router(config(keys=KEYS, usage_db=db)) as again:
        with AdminClient(again.address, api_key="k-ops", timeout=10) as ops:
            listed = await asyncio.to_thread(ops.audit_events, days=1, tenant="acme")
    assert [(e.method, e.outcome) for e in listed] == [("DrainWorker", "PERMISSION_DENIED")]


async def test_a_router_without_a_ledger_keeps_the_trail_in_memory(
    capsys: pytest.CaptureFixture[str],
) -> None:
    async with running_router(config()) as router:
        with AdminClient(router.address, timeout=10) as admin:
            await asyncio.to_thread(admin.set_strategy, None, {"cost": 2.0})
        assert await asyncio.to_thread(cli, ["admin", "audit", "--router", router.address]) == 0
    out = capsys.readouterr().out
    assert "SetStrategy" in out
    assert "local" in out
    assert "OK" in out


async def test_listing_checks_its_limits() -> None:
    async with running_router(config()) as router:
        with AdminClient(router.address, timeout=10) as admin, pytest.raises(InvalidArgument, match="limit"):
            await asyncio.to_thread(admin.audit_events, limit=5000)
