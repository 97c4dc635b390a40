"""Usage ledger and budgets end to end: real routers, echo workers, a real SQLite file and PostgreSQL."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import sqlite3
import time
from pathlib import Path

import grpc
import pytest
from modelyard.v1 import router_pb2_grpc
from modelyard_client import AsyncClient
from modelyard_client.cli import main as cli_main

from router.accounting.auth import hash_key
from router.config.accounting import ApiKey, Budget
from tests.accounting.conftest import (
    RouterFactory,
    WorkerFactory,
    chat,
    chat_request,
    get_usage,
    stop_router,
)
from tests.support.polling import wait_until
from tests.support.rich_errors import details


async def test_ten_chats_show_in_usage_and_stay_in_the_sqlite_file(
    start_router: RouterFactory, start_worker: WorkerFactory, tmp_path: Path
) -> None:
    db = tmp_path / "ledger.sqlite3"
    router = await start_router(usage_db=str(db))
    worker = await start_worker(router, "w1")
    for _ in range(10):
        _, usage = await chat(router, chat_request())
        assert usage.cost_usd > 0

    response = await get_usage(router, days=1)
    assert response.tenant == ""  # an open router reports every tenant
    [row] = response.rows
    assert (row.backend, row.model, row.calls, row.success_rate) == ("w1", "echo", 10, 1.0)
    assert (row.prompt_tokens, row.completion_tokens) == (50, 50)
    assert row.cost_usd == pytest.approx(10 * (5 * 1000 + 5 * 2000) / 1e6)
    assert 0 < row.latency_p50_ms <= row.latency_p95_ms <= row.latency_p99_ms
    assert row.ttft_p50_ms > 0

    async with AsyncClient(router.address, api_key="") as client:
        report = await client.usage(days=7)
    assert report.days == 7
    assert [(r.backend, r.calls) for r in report.rows] == [("w1", 10)]

    await stop_router(router, worker)
    with sqlite3.connect(db) as conn:
        rows = conn.execute(
            "SELECT tenant, backend, model, status, cache_hit, prompt_tokens FROM usage"
        ).fetchall()
    assert rows == [("local", "w1", "echo", "OK", 0, 5)] * 10


async def test_usage_command_prints_the_table_and_json(
    start_router: RouterFactory, start_worker: WorkerFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    router = await start_router()
    await start_worker(router, "w1")
    await chat(router, chat_request())
    # The CLI's client blocks; run it on a thread so this loop keeps serving the router.
    assert (
        await asyncio.to_thread(cli_main, ["usage", "--router", router.address, "--json", "--days", "2"]) == 0
    )
    report = json.loads(capsys.readouterr().out)
    assert report["days"] == 2
    assert report["rows"][0]["calls"] == 1
    assert await asyncio.to_thread(cli_main, ["usage", "--router", router.address]) == 0
    out = capsys.readouterr().out
    assert "BACKEND" in out
    assert "w1" in out
    assert "1 calls" in out


async def test_routers_sharing_postgresql_report_each_others_calls(
    start_router: RouterFactory, start_worker: WorkerFactory, postgres_url: str
) -> None:
    first = await start_router(usage_db=postgres_url, router_id="pg-a")
    second = await start_router(usage_db=postgres_url, router_id="pg-b")
    first_worker = await start_worker(first, "pg-w1")
    await start_worker(second, "pg-w2")
    for _ in range(3):
        await chat(first, chat_request())
    await chat(second, chat_request())
    await stop_router(first, first_worker)  # its last records are written on the way down
    rows = {row.backend: row for row in (await get_usage(second, days=1)).rows}
    assert rows["pg-w1"].calls == 3
    assert rows["pg-w2"].calls == 1
    assert rows["pg-w1"].latency_p99_ms > 0


def next_midnight_utc(ts: float) -> float:
    day = dt.datetime.fromtimestamp(ts, tz=dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return (day + dt.timedelta(days=1)).timestamp()


async def test_the_request_that_would_pass_the_daily_token_limit_is_refused(
    start_router: RouterFactory, start_worker: WorkerFactory, tmp_path: Path
) -> None:
    db = str(tmp_path / "budget.sqlite3")
    settings = {
        "usage_db": db,
        "keys": [ApiKey("acme", hash_key("k-acme"))],
        "budgets": {"acme": Budget(daily_tokens=100)},
    }
    router = await start_router(**settings)
    worker = await start_worker(router, "w1")
    spent = 0
    before = time.time()
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        for _ in range(20):
            _, usage = await chat(router, chat_request(), key="k-acme")
            spent += usage.prompt_tokens + usage.completion_tokens
    after = time.time()
    assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    message = refused.value.details() or ""
    assert message.startswith(
        f"tenant acme: daily token limit 100 reached (used {spent}, this request needs about "
    )
    estimate = int(message.rsplit(" ", 1)[1].rstrip(")"))
    assert spent <= 100 < spent + estimate  # refused exactly when this request would pass the limit
    found = details(refused.value)
    assert (found.info.reason, found.info.metadata["period"]) == ("BUDGET_EXCEEDED", "daily")
    assert found.retry_after_s is not None
    # The limit lifts at the next 00:00 UTC: RetryInfo is the time from the refusal to then (the refusal
    # came between `before` and `after`; tests/accounting/test_budget_reset.py pins it with a set clock).
    midnight = next_midnight_utc(before)
    if midnight == next_midnight_utc(after):
        assert midnight - after - 1e-3 <= found.retry_after_s <= midnight - before + 1e-3

    await stop_router(router, worker)
    with sqlite3.connect(db) as conn:
        statuses = conn.execute("SELECT status, error_class FROM usage WHERE tenant = 'acme'").fetchall()
    assert statuses[-1] == ("RESOURCE_EXHAUSTED", "BudgetExceeded")

    # A new router seeds its spend from the ledger: still over budget today.
    again = await start_router(**settings)
    await start_worker(again, "w2")
    with pytest.raises(grpc.aio.AioRpcError) as still:
        await chat(again, chat_request(), key="k-acme")
    assert still.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED


async def test_a_low_budget_prefers_the_cheaper_backend(
    start_router: RouterFactory, start_worker: WorkerFactory
) -> None:
    router = await start_router(
        strategy="fallback",  # route order: the expensive model first
        routes={"any": ["w-dear/dear", "w-cheap/cheap"]},
        prices={"dear": {"input_per_m": 100.0}, "cheap": {"input_per_m": 1.0}},
        budgets={"*": Budget(daily_tokens=100)},
        budget_low_fraction=0.5,
    )
    await start_worker(router, "w-dear", models=("dear",))
    await start_worker(router, "w-cheap", models=("cheap",))
    request = chat_request("one two three four five six seven eight nine ten")
    request.model = "any"
    first = [(await chat(router, request))[1].backend for _ in range(3)]
    # 20 tokens a call: after three, 60 of 100 are used, past half: the cheaper backend is preferred.
    assert first == ["w-dear", "w-dear", "w-dear"]
    _, usage = await chat(router, request)
    assert usage.backend == "w-cheap"


async def test_failed_calls_count_against_the_backend_that_failed(
    start_router: RouterFactory, start_worker: WorkerFactory
) -> None:
    router = await start_router()
    worker = await start_worker(router, "w1")
    worker.faults.fail_after = 1  # dies mid-stream: no failover after the first chunk
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await chat(router, chat_request())
    assert error.value.code() == grpc.StatusCode.UNAVAILABLE
    worker.faults.fail_after = None
    await chat(router, chat_request())
    [row] = (await get_usage(router, days=1)).rows
    assert (row.backend, row.calls, row.success_rate) == ("w1", 2, 0.5)


async def test_a_cancelled_call_is_recorded_as_cancelled(
    start_router: RouterFactory, start_worker: WorkerFactory, tmp_path: Path
) -> None:
    db = tmp_path / "cancel.sqlite3"
    router = await start_router(usage_db=str(db))
    worker = await start_worker(router, "w1")
    worker.faults.delay_s = 0.2
    async with grpc.aio.insecure_channel(router.address) as channel:
        call = router_pb2_grpc.RouterServiceStub(channel).Chat(chat_request())
        await call.read()  # the first word has arrived
        call.cancel()
    await wait_until(lambda: worker.cancelled == 1)
    await stop_router(router, worker)
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT backend, status FROM usage").fetchall()
    assert rows == [("w1", "CANCELLED")]
