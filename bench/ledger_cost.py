"""What a usage record costs the router to write, by how many go in one transaction: the real SqliteStore (WAL,
synchronous=NORMAL, as the router opens it) on a file in a temporary directory.

    python -m bench --only ledger

CPU time of this process (the writes run in a worker thread of it, as in the router) per record, for the same
number of records written in batches of 1, 10, 100 and 500 (the writer's flush size). The README's ledger
figures (146 vs 5 µs per record) come from here.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from bench.report import Report, Table
from router.accounting.ledger.records import UsageRecord
from router.accounting.ledger.sqlite_store import SqliteStore

BATCHES = (1, 10, 100, 500)


@dataclass(frozen=True)
class Settings:
    records: int = 5_000  # per batch size
    rounds: int = 3  # the median is reported


def _record(i: int) -> UsageRecord:
    return UsageRecord(
        ts=time.time(),
        tenant="bench",
        kind="chat",
        backend="w1",
        model="echo",
        status="OK",
        request_id=f"r{i}",
        router_id="bench",
        prompt_tokens=12,
        completion_tokens=34,
        cost_usd=0.0001,
        ttft_ms=12.5,
        latency_ms=80.0,
    )


async def _cpu_per_record(path: Path, batch: int, records: int) -> float:
    store = SqliteStore(str(path))
    await store.open()
    try:
        rows = [_record(i) for i in range(records)]
        started = time.process_time()
        for start in range(0, records, batch):
            await store.write(rows[start : start + batch])
        return (time.process_time() - started) / records * 1e6
    finally:
        await store.close()


async def _measure(settings: Settings) -> dict[int, list[float]]:
    figures: dict[int, list[float]] = {batch: [] for batch in BATCHES}
    with tempfile.TemporaryDirectory(prefix="modelyard-ledger-bench-") as directory:
        for round_ in range(settings.rounds):
            for batch in BATCHES:
                path = Path(directory) / f"usage-{batch}-{round_}.sqlite3"
                figures[batch].append(await _cpu_per_record(path, batch, settings.records))
    return figures


def run(report: Report, settings: Settings) -> None:
    figures = asyncio.run(_measure(settings))
    table = Table(
        "Usage ledger: router CPU per record by transaction size (SQLite, WAL)",
        ["records per transaction", "µs of CPU per record (median)", "rounds"],
    )
    for batch in BATCHES:
        values = sorted(figures[batch])
        table.rows.append(
            [str(batch), f"{values[len(values) // 2]:.1f}", ", ".join(f"{v:.1f}" for v in values)]
        )
    table.notes.append(
        f"{settings.records:,} records per size and round; the writer commits one transaction per "
        "ledger_flush_s, or per 500 records waiting."
    )
    report.tables.append(table)
