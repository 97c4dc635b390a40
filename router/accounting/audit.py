"""The audit trail: every Admin call, who made it, with what, and how it ended.

Each call is logged at once (logger `modelyard.audit`, one line, JSON arguments so no value can forge a
line), kept in memory (the last `memory` calls, for routers without a ledger), and written beside the usage
ledger in the background, so an Admin call never waits on the database. A tenant's refused calls beyond
`refused_per_minute` a minute are folded into one record with their count (router.accounting.refusal_folding).
"""

from __future__ import annotations

import asyncio
import collections
import json
import logging
import time

from google.protobuf.json_format import MessageToDict
from google.protobuf.message import Message

from router.accounting.ledger.audit_records import AuditRecord
from router.accounting.ledger.store import UsageStore
from router.accounting.refusal_folding import DEFAULT_PER_MINUTE, RefusalFolding

log = logging.getLogger("modelyard.audit")
MAX_ARGUMENT_CHARS = 2000
MAX_LISTED = 1000
UNAUTHENTICATED_LOG_INTERVAL_S = 60.0  # how often the count of keyless refusals is logged, at most


def arguments_json(request: object) -> str:
    if not isinstance(request, Message):
        return ""
    text = json.dumps(MessageToDict(request, preserving_proto_field_name=True), sort_keys=True)
    return text if len(text) <= MAX_ARGUMENT_CHARS else text[: MAX_ARGUMENT_CHARS - 3] + "..."


class AuditTrail:
    """Admins' calls and tenants' refused ones are kept apart in memory, so no tenant's flood of refused calls
    pushes an admin's event out; a tenant's refused calls past `refused_per_minute` in a minute are folded into
    one record with their count; callers with no valid key leave no record at all, only a count (and one log
    line a minute), since anyone can make those."""

    def __init__(
        self,
        router_id: str,
        store: UsageStore | None,
        memory: int = MAX_LISTED,
        refused_per_minute: int = DEFAULT_PER_MINUTE,
    ) -> None:
        self._router_id = router_id
        self._store = store
        self._recent: collections.deque[AuditRecord] = collections.deque(maxlen=memory)
        self._refused: collections.deque[AuditRecord] = collections.deque(maxlen=memory)
        self._pending: set[asyncio.Task[None]] = set()
        self.unauthenticated = 0  # keyless or wrong-key Admin calls refused, since start
        self._unlogged = 0
        self._logged_at = float("-inf")
        self.refusals = RefusalFolding(refused_per_minute, lambda entry: self._keep(entry, admin=False))

    def count_unauthenticated(self, method: str) -> None:
        """A call with no valid key: counted, and logged at most once a minute with the count since."""
        self.unauthenticated += 1
        self._unlogged += 1
        now = time.monotonic()
        if now - self._logged_at >= UNAUTHENTICATED_LOG_INTERVAL_S:
            log.warning(
                "refused %d Admin calls without a valid key (the last: %s) in the last minute",
                self._unlogged,
                method,
            )
            self._unlogged, self._logged_at = 0, now

    def record(
        self, tenant: str, method: str, request: object, outcome: str, message: str = "", admin: bool = True
    ) -> None:
        entry = AuditRecord(
            time.time(), self._router_id, tenant, method, arguments_json(request), outcome, message
        )
        if admin:
            self._keep(entry, admin=True)
        elif self.refusals.admit(entry):
            self._keep(entry, admin=False)

    def _keep(self, entry: AuditRecord, admin: bool) -> None:
        """Log, remember and store one record."""
        log.info(
            "admin call: tenant=%s method=%s outcome=%s arguments=%s message=%s",
            json.dumps(entry.tenant),
            entry.method,
            entry.outcome,
            entry.arguments,
            json.dumps(entry.message),
        )
        (self._recent if admin else self._refused).append(entry)
        if self._store is not None:
            task = asyncio.get_running_loop().create_task(self._write(entry))
            self._pending.add(task)
            task.add_done_callback(self._pending.discard)

    async def _write(self, entry: AuditRecord) -> None:
        assert self._store is not None
        try:
            await self._store.write_audit([entry])
        except Exception as e:  # the log line above still holds the record
            log.warning("could not store an audit record (%s): %s", type(e).__name__, e)

    async def list(self, since: float, tenant: str | None, limit: int) -> list[AuditRecord]:
        """Newest first, from the ledger when there is one, else from memory."""
        limit = max(1, min(limit, MAX_LISTED))
        if self._store is not None:
            await self.flush()
            return await self._store.audit(since, tenant, limit)
        both = sorted([*self._recent, *self._refused], key=lambda r: r.ts)
        chosen = [r for r in both if r.ts >= since and (tenant is None or r.tenant == tenant)]
        return chosen[::-1][:limit]

    async def close(self) -> None:
        """The router is stopping: record the refused calls folded so far, then wait for every write."""
        self.refusals.close()
        await self.flush()

    async def flush(self) -> None:
        if self._pending:
            await asyncio.gather(*self._pending, return_exceptions=True)
