"""Usage records leave the request path through a bounded queue; one background task writes them in batches.

A request only appends to the queue. The writer commits at most one batch per `flush_s` (or sooner, once
`batch_size` records wait): one transaction costs about as much as 30 single-row ones on SQLite, so writing
each record as it came cost the router more CPU than relaying the request (measured: 146 µs per record in
batches of one, 5 µs in batches of 100+). The interval also bounds what a SIGKILL can lose: the records
of the last `flush_s`, plus the batch being written. When the store is slow or down and the queue fills,
the oldest record is dropped (new ones describe the present better); every drop is counted, exposed as a
metric and logged, never silent. `flush()` and `stop()` write whatever is queued at once, so a clean
shutdown loses nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from router.accounting.ledger.records import UsageRecord
from router.accounting.ledger.store import UsageStore

log = logging.getLogger(__name__)
_LOG_EVERY_S = 10.0  # at most one drop warning per interval, with the count since the last one


class LedgerWriter:
    def __init__(
        self,
        store: UsageStore,
        max_queue: int = 10_000,
        batch_size: int = 500,
        retry_s: float = 1.0,
        flush_s: float = 0.5,
    ) -> None:
        self.store = store
        self._queue: asyncio.Queue[UsageRecord] = asyncio.Queue(max_queue)
        self._batch_size = batch_size
        self._retry_s = retry_s
        self._flush_s = flush_s
        # Set when a flush() starts or a whole batch is queued: the writer stops gathering and writes now.
        self._wake = asyncio.Event()
        self._flushes = 0  # flush() calls waiting
        self._task: asyncio.Task[None] | None = None
        self.written = 0
        self.dropped = 0
        self.write_errors = 0
        self._in_hand = 0  # records taken from the queue and not yet written
        self._unlogged_drops = 0
        self._last_drop_log = 0.0

    @property
    def queued(self) -> int:
        return self._queue.qsize()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="ledger-writer")

    def submit(self, record: UsageRecord) -> None:
        """Queue a record; never blocks the request. A full queue drops its oldest record, counted."""
        if self._queue.full():
            with contextlib.suppress(asyncio.QueueEmpty):
                self._queue.get_nowait()
                self._queue.task_done()
                self._drop(1)
        self._queue.put_nowait(record)
        if self._queue.qsize() + 1 >= self._batch_size:  # with the one the writer holds, a whole batch
            self._wake.set()

    async def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every record queued so far is written; False if that took longer than `timeout`."""
        self._flushes += 1
        self._wake.set()
        try:
            await asyncio.wait_for(self._queue.join(), timeout)
        except TimeoutError:
            return False
        finally:
            self._flushes -= 1
        return True

    async def stop(self, timeout: float = 10.0) -> None:
        """Write what is queued (within `timeout`), then end the background task."""
        if self._task is None:
            return
        if not await self.flush(timeout):
            lost = self.queued + self._in_hand
            log.error("usage ledger: %d record(s) not written at shutdown (%s)", lost, self.store.describe())
            self._drop(lost)
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None

    async def _run(self) -> None:
        while True:
            batch = [await self._queue.get()]
            await self._gather()
            while len(batch) < self._batch_size and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            self._in_hand = len(batch)
            await self._write(batch)
            self._in_hand = 0
            for _ in batch:
                self._queue.task_done()

    async def _gather(self) -> None:
        """Let records gather for up to `flush_s` after the first one: one transaction for all of them.
        Ends early when a batch is full or someone flushes."""
        ends = time.monotonic() + self._flush_s
        while not self._flushes and self._queue.qsize() + 1 < self._batch_size:
            left = ends - time.monotonic()
            if left <= 0:
                return
            self._wake.clear()  # whatever set it before has been looked at just now
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(left):
                    await self._wake.wait()

    async def _write(self, batch: list[UsageRecord]) -> None:
        """Retry until written: the queue bounds what waits meanwhile, and drops from it are counted."""
        while True:
            try:
                await self.store.write(batch)
            except Exception as e:  # any store failure: keep the batch and try again
                self.write_errors += 1
                log.warning("usage ledger: writing %d record(s) failed: %s; retrying", len(batch), e)
                await asyncio.sleep(self._retry_s)
            else:
                self.written += len(batch)
                return

    def _drop(self, count: int) -> None:
        self.dropped += count
        self._unlogged_drops += count
        now = time.monotonic()
        if now - self._last_drop_log >= _LOG_EVERY_S:
            log.warning(
                "usage ledger: queue full, dropped %d oldest record(s) (%d in all)",
                self._unlogged_drops,
                self.dropped,
            )
            self._unlogged_drops = 0
            self._last_drop_log = now
