"""The usage ledger on a real SQLite file and a real PostgreSQL server, and its background writer."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import pytest

from router.accounting.ledger.audit_records import AuditRecord
from router.accounting.ledger.records import UsageRecord, percentile
from router.accounting.ledger.sqlite_store import SqliteStore
from router.accounting.ledger.store import UsageStore, open_store
from router.accounting.ledger.writer import LedgerWriter
from tests.support.polling import wait_until


def record(i: int = 0, **fields: object) -> UsageRecord:
    values: dict[str, object] = {
        "ts": time.time(),
        "tenant": "acme",
        "kind": "chat",
        "backend": "w1",
        "model": "echo",
        "status": "OK",
        "request_id": f"r{i}",
        "prompt_tokens": 3,
        "completion_tokens": 2,
        "cost_usd": 0.5,
        "ttft_ms": 5.0,
        "latency_ms": float(i + 1),
    }
    values.update(fields)
    return UsageRecord(**values)  # type: ignore[arg-type]


@pytest.fixture(params=["sqlite", "postgres"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[UsageStore]:
    if request.param == "sqlite":
        target = str(tmp_path / "usage.sqlite3")
    else:
        url: str = request.getfixturevalue("postgres_url")
        target = url
    opened = open_store(target)
    await opened.open()
    if request.param == "postgres":  # one server for the session: start each test from an empty table
        pool = opened._get_pool()  # type: ignore[attr-defined]
        await pool.execute("TRUNCATE modelyard_usage, modelyard_audit")
    yield opened
    await opened.close()


async def test_admin_calls_are_stored_beside_the_usage(store: UsageStore) -> None:
    now = time.time()
    calls = [
        AuditRecord(now - 100_000, "r1", "ops", "SetStrategy", '{"strategy": "X"}', "OK"),
        AuditRecord(now - 2, "r1", "ops", "UpdateBackend", '{"backend": "openai"}', "OK"),
        AuditRecord(now - 1, "r2", "acme", "DrainWorker", '{"worker_id": "w1"}', "PERMISSION_DENIED", "no"),
    ]
    await store.write_audit(calls)
    recent = await store.audit(now - 3600, None, 10)
    assert [(r.method, r.tenant, r.outcome) for r in recent] == [
        ("DrainWorker", "acme", "PERMISSION_DENIED"),
        ("UpdateBackend", "ops", "OK"),
    ]
    assert recent[0].message == "no"
    assert recent[0].ts == pytest.approx(now - 1, abs=0.01)
    assert [r.method for r in await store.audit(0, "ops", 10)] == ["UpdateBackend", "SetStrategy"]
    assert len(await store.audit(0, None, 1)) == 1


async def test_usage_per_backend_and_model_with_percentiles(store: UsageStore) -> None:
    records = [record(i) for i in range(100)]
    records += [
        record(100, status="UNAVAILABLE", backend="w1", latency_ms=9999.0, error_class="UpstreamFailed")
    ]
    records += [record(101, backend="w2", model="other", cache_hit=True, cost_usd=0.0, ttft_ms=None)]
    records += [record(102, tenant="beta", backend="w2", model="other")]
    await store.write(records)
    rows = await store.usage(time.time() - 60, None)
    assert [(r.backend, r.model, r.calls) for r in rows] == [("w1", "echo", 101), ("w2", "other", 2)]
    w1 = rows[0]
    assert w1.ok == 100
    assert w1.success_rate == pytest.approx(100 / 101)
    assert (w1.prompt_tokens, w1.completion_tokens) == (303, 202)
    assert w1.cost_usd == pytest.approx(50.5)
    # Latencies 1..100 ms over the successful calls; the failure's 9999 ms is left out.
    assert (w1.latency_p50_ms, w1.latency_p95_ms, w1.latency_p99_ms) == (50.0, 95.0, 99.0)
    assert w1.ttft_p50_ms == 5.0
    assert rows[1].cache_hits == 1
    beta = await store.usage(time.time() - 60, "beta")
    assert [(r.backend, r.calls) for r in beta] == [("w2", 1)]
    assert await store.usage(time.time() + 60, None) == []


async def test_spend_by_tenant_and_day_leaves_out_cache_hits(store: UsageStore) -> None:
    day = 1_741_953_600.0  # 2025-03-14 12:00 UTC
    await store.write(
        [
            record(0, ts=day),
            record(1, ts=day + 3600),
            record(2, ts=day + 86_400),
            record(3, ts=day, cache_hit=True),
            record(4, ts=day, tenant="beta"),
        ]
    )
    spend = sorted((s.tenant, s.day, s.tokens, s.cost_usd) for s in await store.spend_since(day - 1))
    assert spend == [
        ("acme", "2025-03-14", 10, 1.0),
        ("acme", "2025-03-15", 5, 0.5),
        ("beta", "2025-03-14", 5, 0.5),
    ]


def test_percentile_is_nearest_rank() -> None:
    assert percentile([], 50) == 0.0
    assert percentile([3.0, 1.0, 2.0], 50) == 2.0
    assert percentile([1.0, 2.0], 99) == 2.0


async def test_writer_writes_in_the_background_and_everything_on_stop(tmp_path: Path) -> None:
    path = tmp_path / "usage.sqlite3"
    store = SqliteStore(str(path))
    await store.open()
    writer = LedgerWriter(store)
    writer.start()
    for i in range(1000):
        writer.submit(record(i))
    await writer.stop()
    await store.close()
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT count(*) FROM usage").fetchone() == (1000,)
    assert (writer.written, writer.dropped) == (1000, 0)


class FlakyStore(SqliteStore):
    """A real SQLite store whose first writes fail, as a database that is briefly down would."""

    def __init__(self, path: str, failures: int) -> None:
        super().__init__(path)
        self.failures = failures

    async def write(self, records: Sequence[UsageRecord]) -> None:
        if self.failures:
            self.failures -= 1
            raise OSError("database is down")
        await super().write(records)


async def test_a_full_queue_drops_the_oldest_and_counts_them(tmp_path: Path) -> None:
    store = FlakyStore(str(tmp_path / "usage.sqlite3"), failures=2)
    await store.open()
    writer = LedgerWriter(store, max_queue=10, retry_s=0.05)
    writer.start()
    writer.submit(record(0))
    await wait_until(lambda: writer.write_errors >= 1)  # the writer holds record 0 and fails on it
    for i in range(1, 16):
        writer.submit(record(i))
    assert writer.dropped == 5
    assert writer.queued == 10
    await writer.stop()
    assert writer.write_errors == 2
    rows = await store.usage(0, None)
    await store.close()
    assert rows[0].calls == 11  # record 0, retried, and the 10 newest


class CountingStore(SqliteStore):
    """A real SQLite store that remembers the size of each batch (one transaction each)."""

    def __init__(self, path: str) -> None:
        super().__init__(path)
        self.batches: list[int] = []

    async def write(self, records: Sequence[UsageRecord]) -> None:
        await super().write(records)
        self.batches.append(len(records))


async def test_records_that_arrive_within_the_interval_share_one_transaction(tmp_path: Path) -> None:
    store = CountingStore(str(tmp_path / "usage.sqlite3"))
    await store.open()
    writer = LedgerWriter(store, flush_s=0.3)
    writer.start()
    for i in range(5):  # as five requests finishing one after another would
        writer.submit(record(i))
        await asyncio.sleep(0)
    await wait_until(lambda: writer.written == 5)
    assert store.batches == [5]
    await writer.stop()
    await store.close()


async def test_flush_writes_at_once_without_waiting_the_interval(tmp_path: Path) -> None:
    store = CountingStore(str(tmp_path / "usage.sqlite3"))
    await store.open()
    writer = LedgerWriter(store, flush_s=3600.0)  # a flush that waited the interval would time out below
    writer.start()
    writer.submit(record(0))
    assert await writer.flush(timeout=10.0)
    writer.submit(record(1))
    assert await writer.flush(timeout=10.0)
    assert store.batches == [1, 1]
    await writer.stop()
    await store.close()


async def test_a_full_batch_is_written_without_waiting_the_interval(tmp_path: Path) -> None:
    store = CountingStore(str(tmp_path / "usage.sqlite3"))
    await store.open()
    writer = LedgerWriter(store, batch_size=10, flush_s=3600.0)
    writer.start()
    for i in range(25):
        writer.submit(record(i))
    await wait_until(lambda: writer.written >= 20)
    assert store.batches[:2] == [10, 10]
    await writer.stop()
    await store.close()


async def test_a_file_from_before_the_admission_columns_gets_them_and_keeps_its_rows(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    with sqlite3.connect(path) as db:  # the first schema's usage table, with one row
        columns = ", ".join(f"{name} TEXT" for name in UsageRecord.__dataclass_fields__ if name not in _NEW)
        db.execute(f"CREATE TABLE usage (id INTEGER PRIMARY KEY, {columns})")
        db.execute("INSERT INTO usage (request_id) VALUES ('old')")
    store = SqliteStore(str(path))
    await store.open()
    await store.write([record(1, queue_wait_ms=12.5, spill_reason="predicted local TTFT 420 ms > 210 ms")])
    await store.close()
    with sqlite3.connect(path) as db:
        rows = db.execute("SELECT request_id, queue_wait_ms, spill_reason FROM usage ORDER BY id").fetchall()
    assert rows == [("old", 0, ""), ("r1", 12.5, "predicted local TTFT 420 ms > 210 ms")]


_NEW = ("queue_wait_ms", "spill_reason")
