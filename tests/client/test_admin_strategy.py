"""`modelyard admin strategy` against a real router: --weight changes only the named weights, --reset restores
the built-ins, and with no arguments it reads (not a change: not audited, any key may ask)."""

from __future__ import annotations

import asyncio

import pytest
from modelyard_client import AdminClient
from modelyard_client.cli import main as cli

from router.accounting.auth import hash_key
from router.config.accounting import ApiKey
from router.routing.scoring.strategies import DEFAULT_STRATEGIES
from tests.security.helpers import config, running_router

KEYS = [ApiKey("acme", hash_key("k-acme")), ApiKey("ops", hash_key("k-ops"), admin=True)]
COMPOSITE = DEFAULT_STRATEGIES["composite"]


def shown(weights: dict[str, float]) -> str:
    return "strategy composite: " + ", ".join(f"{k}={v:g}" for k, v in sorted(weights.items()))


async def strategy(capsys: pytest.CaptureFixture[str], address: str, *args: str, key: str = "k-ops") -> str:
    code = await asyncio.to_thread(cli, ["admin", "strategy", "--router", address, "--api-key", key, *args])
    out, err = capsys.readouterr()
    assert code == 0, err
    return out.strip()


async def test_weights_change_only_what_is_named(capsys: pytest.CaptureFixture[str]) -> None:
    async with running_router(config(keys=KEYS)) as router:
        assert await strategy(capsys, router.address, "--weight", "cost=3") == shown({**COMPOSITE, "cost": 3})
        # One weight set to 0 is fine while the others stay positive.
        assert await strategy(capsys, router.address, "--weight", "prefix=0") == shown(
            {**COMPOSITE, "cost": 3, "prefix": 0}
        )
        assert await strategy(capsys, router.address, "--reset", "--weight", "load=5") == shown(
            {**COMPOSITE, "load": 5}
        )
        assert await strategy(capsys, router.address, "--reset") == shown(COMPOSITE)


async def test_no_arguments_is_a_read(capsys: pytest.CaptureFixture[str]) -> None:
    async with running_router(config(keys=KEYS)) as router:
        # A tenant without an admin key may read it; a change would be PERMISSION_DENIED.
        assert await strategy(capsys, router.address, key="k-acme") == shown(COMPOSITE)
        code = await asyncio.to_thread(
            cli,
            ["admin", "strategy", "--router", router.address, "--api-key", "k-acme", "--weight", "cost=2"],
        )
        assert code == 1
        assert "PERMISSION_DENIED" in capsys.readouterr().err
        with AdminClient(router.address, api_key="k-ops", timeout=10) as ops:
            events = await asyncio.to_thread(ops.audit_events, days=1)
    assert [(e.method, e.tenant, e.outcome) for e in events] == [("SetStrategy", "acme", "PERMISSION_DENIED")]
