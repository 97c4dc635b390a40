"""Issue 24 item 4: calls without a valid key cannot flood the audit trail or push an admin's event out."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import grpc
import pytest
from modelyard.v1 import admin_pb2, admin_pb2_grpc

from router.accounting.auth import hash_key
from router.config.accounting import ApiKey
from tests.security.helpers import config, running_router

KEYS = [ApiKey("acme", hash_key("k-acme")), ApiKey("ops", hash_key("k-ops"), admin=True)]


def _bearer(key: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {key}"),) if key else ()


async def _update(stub: admin_pb2_grpc.AdminServiceStub, key: str) -> grpc.StatusCode:
    request = admin_pb2.UpdateBackendRequest(backend="nope", enabled=False)
    try:
        await stub.UpdateBackend(request, metadata=_bearer(key), timeout=30)
    except grpc.aio.AioRpcError as e:
        return e.code()
    return grpc.StatusCode.OK


async def _events(stub: admin_pb2_grpc.AdminServiceStub, tenant: str = "") -> list[tuple[str, str, str]]:
    listed = await stub.ListAuditEvents(
        admin_pb2.ListAuditEventsRequest(limit=1000, tenant=tenant), metadata=_bearer("k-ops"), timeout=30
    )
    return [(e.tenant, e.method, e.outcome) for e in listed.events]


@pytest.mark.parametrize("ledger", [False, True])
async def test_keyless_calls_are_counted_not_recorded(
    ledger: bool, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="modelyard.audit")
    usage_db = str(tmp_path / "usage.sqlite3") if ledger else "off"
    async with (
        running_router(config(keys=KEYS, usage_db=usage_db)) as router,
        grpc.aio.insecure_channel(router.address) as channel,
    ):
        stub = admin_pb2_grpc.AdminServiceStub(channel)
        assert await _update(stub, "k-ops") == grpc.StatusCode.NOT_FOUND  # the admin's real event
        for _ in range(10):
            codes = await asyncio.gather(*(_update(stub, key) for key in ("", "wrong") * 50))
            assert set(codes) == {grpc.StatusCode.UNAUTHENTICATED}
        # A tenant's refused calls are kept, apart from the admins': they cannot push one out either.
        for _ in range(11):
            codes = await asyncio.gather(*(_update(stub, "k-acme") for _ in range(100)))
            assert set(codes) == {grpc.StatusCode.PERMISSION_DENIED}
        events = await _events(stub)
        admins = await _events(stub, "ops")
        assert router.accounting.audit.unauthenticated == 1000
    assert ("ops", "UpdateBackend", "NOT_FOUND") in admins
    assert all(tenant for tenant, _, _ in events)  # nothing recorded for keyless callers
    audit_lines = [
        r for r in caplog.records if r.name == "modelyard.audit" and "without a valid key" in r.message
    ]
    assert len(audit_lines) == 1  # one line a minute, not one a call


FOLDING_KEYS = [*KEYS, ApiKey("beta", hash_key("k-beta"))]


async def _messages(stub: admin_pb2_grpc.AdminServiceStub, tenant: str) -> list[str]:
    listed = await stub.ListAuditEvents(
        admin_pb2.ListAuditEventsRequest(limit=1000, tenant=tenant), metadata=_bearer("k-ops"), timeout=30
    )
    assert {(e.method, e.outcome) for e in listed.events} <= {("UpdateBackend", "PERMISSION_DENIED")}
    return [e.message for e in listed.events]


@pytest.mark.parametrize("ledger", [False, True])
async def test_a_tenants_refused_calls_are_recorded_a_few_a_minute_with_their_count(
    ledger: bool, tmp_path: Path
) -> None:
    usage_db = str(tmp_path / "usage.sqlite3") if ledger else "off"
    cfg = config(keys=FOLDING_KEYS, usage_db=usage_db, audit_refused_per_minute=5)
    async with running_router(cfg) as router, grpc.aio.insecure_channel(router.address) as channel:
        stub = admin_pb2_grpc.AdminServiceStub(channel)
        for _ in range(3):  # a hundred at once: within the connection's concurrent streams
            codes = await asyncio.gather(*(_update(stub, "k-acme") for _ in range(100)))
            assert set(codes) == {grpc.StatusCode.PERMISSION_DENIED}
        codes = await asyncio.gather(*(_update(stub, "k-beta") for _ in range(3)))
        assert set(codes) == {grpc.StatusCode.PERMISSION_DENIED}
        during = await _messages(stub, "acme")
        beta_during = await _messages(stub, "beta")
        # Every refusal is counted, recorded or not.
        metrics = router.accounting.metrics.registry
        for tenant, count in (("acme", 300), ("beta", 3)):
            assert (
                metrics.get_sample_value("modelyard_admin_calls_refused_total", {"tenant": tenant}) == count
            )
        assert metrics.get_sample_value("modelyard_admin_calls_folded_total") == 295
        trail = router.accounting.audit
    assert len(during) == 5  # the minute's first five, as they came
    assert not any("folded" in m for m in during)
    assert len(beta_during) == 3  # another key's refusals: unaffected by acme's flood
    # The stopping router records the rest of the minute: one record, with how many it stands for.
    if ledger:
        async with (
            running_router(config(keys=FOLDING_KEYS, usage_db=usage_db)) as again,
            grpc.aio.insecure_channel(again.address) as channel,
        ):
            stub = admin_pb2_grpc.AdminServiceStub(channel)
            after = await _messages(stub, "acme")
            beta_after = await _messages(stub, "beta")
    else:
        after = [r.message for r in await trail.list(0, "acme", 1000)]
        beta_after = [r.message for r in await trail.list(0, "beta", 1000)]
    assert len(after) == 6
    folded = [m for m in after if "folded" in m]
    assert len(folded) == 1
    assert "folded: 295 refused calls" in folded[0]
    assert "by method: UpdateBackend 295" in folded[0]
    assert len(beta_after) == 3
    assert not any("folded" in m for m in beta_after)
