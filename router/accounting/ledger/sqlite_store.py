"""The embedded ledger: one SQLite file, written from a worker thread so the event loop never blocks."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from router.accounting.ledger.audit_records import AUDIT_COLUMNS, AuditRecord
from router.accounting.ledger.records import COLUMNS, TenantSpend, UsageRecord, UsageRow, percentile
from router.accounting.ledger.store import UsageStore

_SCHEMA = """
CREATE TABLE IF NOT EXISTS usage (
    id INTEGER PRIMARY KEY,
    ts REAL NOT NULL,               -- unix seconds
    router_id TEXT NOT NULL,
    request_id TEXT NOT NULL,
    tenant TEXT NOT NULL,
    kind TEXT NOT NULL,
    backend TEXT NOT NULL,
    model TEXT NOT NULL,
    prompt_tokens INTEGER NOT NULL,
    completion_tokens INTEGER NOT NULL,
    audio_seconds REAL NOT NULL,
    cost_usd REAL NOT NULL,
    ttft_ms REAL,                   -- NULL when nothing was sent
    latency_ms REAL NOT NULL,
    status TEXT NOT NULL,           -- gRPC code name
    error_class TEXT NOT NULL,
    cache_hit INTEGER NOT NULL,
    queue_wait_ms REAL NOT NULL DEFAULT 0,
    spill_reason TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS usage_ts ON usage (ts);
CREATE INDEX IF NOT EXISTS usage_tenant_ts ON usage (tenant, ts);
CREATE TABLE IF NOT EXISTS audit (
    id INTEGER PRIMARY KEY,
    ts REAL NOT NULL,
    router_id TEXT NOT NULL,
    tenant TEXT NOT NULL,
    method TEXT NOT NULL,
    arguments TEXT NOT NULL,
    outcome TEXT NOT NULL,          -- gRPC code name
    message TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_ts ON audit (ts);
"""
_INSERT_AUDIT = (
    f"INSERT INTO audit ({', '.join(AUDIT_COLUMNS)}) VALUES ({', '.join('?' for _ in AUDIT_COLUMNS)})"
)
# Columns added since the first schema, added to a file written before them.
_ADDED = {"queue_wait_ms": "REAL NOT NULL DEFAULT 0", "spill_reason": "TEXT NOT NULL DEFAULT ''"}
_INSERT = f"INSERT INTO usage ({', '.join(COLUMNS)}) VALUES ({', '.join('?' for _ in COLUMNS)})"


class SqliteStore(UsageStore):
    def __init__(self, path: str) -> None:
        self.path = Path(path).expanduser()
        self._db: sqlite3.Connection | None = None
        # One connection, used by one thread at a time: the lock orders the to_thread calls.
        self._lock = asyncio.Lock()

    def describe(self) -> str:
        return f"SQLite {self.path}"

    async def open(self) -> None:
        def connect() -> sqlite3.Connection:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            db.execute("PRAGMA journal_mode=WAL")  # readers (the usage CLI, sqlite3) never block the writer
            db.execute("PRAGMA synchronous=NORMAL")
            db.executescript(_SCHEMA)
            present = {row[1] for row in db.execute("PRAGMA table_info(usage)")}
            for name, declaration in _ADDED.items():
                if name not in present:
                    db.execute(f"ALTER TABLE usage ADD COLUMN {name} {declaration}")
            return db

        self._db = await asyncio.to_thread(connect)

    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            raise RuntimeError("SqliteStore used before open()")
        return self._db

    async def write(self, records: Sequence[UsageRecord]) -> None:
        db = self._conn()

        def insert() -> None:
            with db:  # one transaction; isolation_level=None needs an explicit BEGIN
                db.execute("BEGIN")
                db.executemany(_INSERT, [r.values() for r in records])

        async with self._lock:
            await asyncio.to_thread(insert)

    async def write_audit(self, records: Sequence[AuditRecord]) -> None:
        db = self._conn()

        def insert() -> None:
            with db:
                db.execute("BEGIN")
                db.executemany(_INSERT_AUDIT, [r.values() for r in records])

        async with self._lock:
            await asyncio.to_thread(insert)

    async def audit(self, since: float, tenant: str | None, limit: int) -> list[AuditRecord]:
        query = f"SELECT {', '.join(AUDIT_COLUMNS)} FROM audit WHERE ts >= ?"
        params: tuple[object, ...] = (since,)
        if tenant is not None:
            query += " AND tenant = ?"
            params += (tenant,)
        rows = await self._fetch(query + " ORDER BY ts DESC, id DESC LIMIT ?", (*params, limit))
        return [AuditRecord(*row) for row in rows]

    async def spend_since(self, since: float) -> list[TenantSpend]:
        query = """
            SELECT tenant, strftime('%Y-%m-%d', ts, 'unixepoch'),
                   SUM(prompt_tokens + completion_tokens), SUM(cost_usd)
            FROM usage WHERE ts >= ? AND cache_hit = 0 GROUP BY 1, 2
        """
        rows = await self._fetch(query, (since,))
        return [TenantSpend(t, d, int(tokens), float(cost)) for t, d, tokens, cost in rows]

    async def usage(self, since: float, tenant: str | None) -> list[UsageRow]:
        query = (
            "SELECT backend, model, status, prompt_tokens, completion_tokens, audio_seconds, cost_usd,"
            " cache_hit, latency_ms, ttft_ms FROM usage WHERE ts >= ?"
        )
        params: tuple[object, ...] = (since,)
        if tenant is not None:
            query += " AND tenant = ?"
            params = (since, tenant)
        return _aggregate(await self._fetch(query, params))

    async def _fetch(self, query: str, params: tuple[object, ...]) -> list[tuple[Any, ...]]:
        db = self._conn()
        async with self._lock:
            return await asyncio.to_thread(lambda: db.execute(query, params).fetchall())

    async def close(self) -> None:
        if self._db is not None:
            db, self._db = self._db, None
            async with self._lock:
                await asyncio.to_thread(db.close)


def _aggregate(records: Sequence[tuple[Any, ...]]) -> list[UsageRow]:
    rows: dict[tuple[str, str], UsageRow] = {}
    latencies: dict[tuple[str, str], list[float]] = {}
    ttfts: dict[tuple[str, str], list[float]] = {}
    for backend, model, status, prompt, completion, audio, cost, cache_hit, latency, ttft in records:
        key = (str(backend), str(model))
        row = rows.get(key) or rows.setdefault(key, UsageRow(*key))
        row.calls += 1
        row.prompt_tokens += int(prompt)
        row.completion_tokens += int(completion)
        row.audio_seconds += float(audio)
        row.cost_usd += float(cost)
        row.cache_hits += int(bool(cache_hit))
        if status == "OK":
            row.ok += 1
            latencies.setdefault(key, []).append(float(latency))
            if ttft is not None:
                ttfts.setdefault(key, []).append(float(ttft))
    for key, row in rows.items():
        values = latencies.get(key, [])
        row.latency_p50_ms = percentile(values, 50)
        row.latency_p95_ms = percentile(values, 95)
        row.latency_p99_ms = percentile(values, 99)
        row.ttft_p50_ms = percentile(ttfts.get(key, []), 50)
    return sorted(rows.values(), key=lambda r: (-r.calls, r.backend, r.model))
