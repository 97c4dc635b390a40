"""The shared ledger: PostgreSQL through asyncpg, for several routers writing to one place."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from router.accounting.ledger.audit_records import AUDIT_COLUMNS, AuditRecord
from router.accounting.ledger.records import COLUMNS, TenantSpend, UsageRecord, UsageRow
from router.accounting.ledger.store import UsageStore

_SCHEMA = """
CREATE TABLE IF NOT EXISTS modelyard_usage (
    id BIGSERIAL PRIMARY KEY,
    ts TIMESTAMPTZ NOT NULL,
    router_id TEXT NOT NULL,
    request_id TEXT NOT NULL,
    tenant TEXT NOT NULL,
    kind TEXT NOT NULL,
    backend TEXT NOT NULL,
    model TEXT NOT NULL,
    prompt_tokens INTEGER NOT NULL,
    completion_tokens INTEGER NOT NULL,
    audio_seconds DOUBLE PRECISION NOT NULL,
    cost_usd DOUBLE PRECISION NOT NULL,
    ttft_ms DOUBLE PRECISION,
    latency_ms DOUBLE PRECISION NOT NULL,
    status TEXT NOT NULL,
    error_class TEXT NOT NULL,
    cache_hit BOOLEAN NOT NULL
);
-- Columns added since the first schema (a table made before them gets them here).
ALTER TABLE modelyard_usage ADD COLUMN IF NOT EXISTS queue_wait_ms DOUBLE PRECISION NOT NULL DEFAULT 0;
ALTER TABLE modelyard_usage ADD COLUMN IF NOT EXISTS spill_reason TEXT NOT NULL DEFAULT '';
CREATE INDEX IF NOT EXISTS modelyard_usage_ts ON modelyard_usage (ts);
CREATE INDEX IF NOT EXISTS modelyard_usage_tenant_ts ON modelyard_usage (tenant, ts);
CREATE TABLE IF NOT EXISTS modelyard_audit (
    id BIGSERIAL PRIMARY KEY,
    ts TIMESTAMPTZ NOT NULL,
    router_id TEXT NOT NULL,
    tenant TEXT NOT NULL,
    method TEXT NOT NULL,
    arguments TEXT NOT NULL,
    outcome TEXT NOT NULL,
    message TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS modelyard_audit_ts ON modelyard_audit (ts);
"""
_INSERT_AUDIT = (
    f"INSERT INTO modelyard_audit ({', '.join(AUDIT_COLUMNS)}) "
    f"VALUES ({', '.join(f'${i}' for i in range(1, len(AUDIT_COLUMNS) + 1))})"
)
_AUDIT = f"""
SELECT {", ".join(AUDIT_COLUMNS)} FROM modelyard_audit
WHERE ts >= $1 AND ($2::text IS NULL OR tenant = $2) ORDER BY ts DESC, id DESC LIMIT $3
"""
_INSERT = (
    f"INSERT INTO modelyard_usage ({', '.join(COLUMNS)}) "
    f"VALUES ({', '.join(f'${i}' for i in range(1, len(COLUMNS) + 1))})"
)
_USAGE = """
SELECT backend, model, count(*) AS calls, count(*) FILTER (WHERE status = 'OK') AS ok,
       sum(prompt_tokens) AS prompt_tokens, sum(completion_tokens) AS completion_tokens,
       sum(audio_seconds) AS audio_seconds, sum(cost_usd) AS cost_usd,
       count(*) FILTER (WHERE cache_hit) AS cache_hits,
       percentile_disc(0.50) WITHIN GROUP (ORDER BY latency_ms) FILTER (WHERE status = 'OK') AS p50,
       percentile_disc(0.95) WITHIN GROUP (ORDER BY latency_ms) FILTER (WHERE status = 'OK') AS p95,
       percentile_disc(0.99) WITHIN GROUP (ORDER BY latency_ms) FILTER (WHERE status = 'OK') AS p99,
       percentile_disc(0.50) WITHIN GROUP (ORDER BY ttft_ms) FILTER (WHERE status = 'OK') AS ttft50
FROM modelyard_usage WHERE ts >= $1 AND ($2::text IS NULL OR tenant = $2)
GROUP BY backend, model ORDER BY calls DESC, backend, model
"""


class PostgresStore(UsageStore):
    def __init__(self, url: str, pool_size: int = 4) -> None:
        self._url = url
        self._pool_size = pool_size
        self._pool: asyncpg.Pool | None = None

    def describe(self) -> str:
        parts = urlsplit(self._url)
        host = parts.hostname or ""
        netloc = f"{parts.username}@{host}" if parts.username else host
        if parts.port:
            netloc += f":{parts.port}"
        return "PostgreSQL " + urlunsplit((parts.scheme, netloc, parts.path, "", ""))

    async def open(self) -> None:
        self._pool = await asyncpg.create_pool(self._url, min_size=1, max_size=self._pool_size)
        # Several routers may start at once; the advisory lock keeps their CREATEs from racing.
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(7310111)")
            await conn.execute(_SCHEMA)

    def _get_pool(self) -> asyncpg.Pool:
        if self._pool is None:
            raise RuntimeError("PostgresStore used before open()")
        return self._pool

    async def write(self, records: Sequence[UsageRecord]) -> None:
        rows = [(_timestamp(r.ts), *r.values()[1:]) for r in records]
        async with self._get_pool().acquire() as conn, conn.transaction():
            await conn.executemany(_INSERT, rows)

    async def write_audit(self, records: Sequence[AuditRecord]) -> None:
        rows = [(_timestamp(r.ts), *r.values()[1:]) for r in records]
        async with self._get_pool().acquire() as conn, conn.transaction():
            await conn.executemany(_INSERT_AUDIT, rows)

    async def audit(self, since: float, tenant: str | None, limit: int) -> list[AuditRecord]:
        rows = await self._get_pool().fetch(_AUDIT, _timestamp(since), tenant, limit)
        return [AuditRecord(r["ts"].timestamp(), *(r[name] for name in AUDIT_COLUMNS[1:])) for r in rows]

    async def spend_since(self, since: float) -> list[TenantSpend]:
        query = """
            SELECT tenant, to_char(ts AT TIME ZONE 'UTC', 'YYYY-MM-DD') AS day,
                   sum(prompt_tokens + completion_tokens) AS tokens, sum(cost_usd) AS cost
            FROM modelyard_usage WHERE ts >= $1 AND NOT cache_hit GROUP BY 1, 2
        """
        rows = await self._get_pool().fetch(query, _timestamp(since))
        return [TenantSpend(r["tenant"], r["day"], int(r["tokens"]), float(r["cost"])) for r in rows]

    async def usage(self, since: float, tenant: str | None) -> list[UsageRow]:
        rows = await self._get_pool().fetch(_USAGE, _timestamp(since), tenant)
        return [_row(r) for r in rows]

    async def close(self) -> None:
        if self._pool is not None:
            pool, self._pool = self._pool, None
            await pool.close()


def _timestamp(unix: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(unix, tz=dt.UTC)


def _row(r: Any) -> UsageRow:
    return UsageRow(
        backend=r["backend"],
        model=r["model"],
        calls=int(r["calls"]),
        ok=int(r["ok"]),
        prompt_tokens=int(r["prompt_tokens"]),
        completion_tokens=int(r["completion_tokens"]),
        audio_seconds=float(r["audio_seconds"]),
        cost_usd=float(r["cost_usd"]),
        cache_hits=int(r["cache_hits"]),
        latency_p50_ms=float(r["p50"] or 0.0),
        latency_p95_ms=float(r["p95"] or 0.0),
        latency_p99_ms=float(r["p99"] or 0.0),
        ttft_p50_ms=float(r["ttft50"] or 0.0),
    )
