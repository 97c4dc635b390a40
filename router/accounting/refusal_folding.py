"""Tenants' refused Admin calls, recorded at most `per_minute` times per tenant a minute; the rest folded into one
record with their count.

Any keyed tenant may call Admin and be refused, as often as it likes: a record (and a log line) per call let one
misbehaving key grow the audit ledger without bound. Within a minute from a tenant's first refusal, its first
`per_minute` refusals are recorded as they come; the others are only counted, and when the minute ends (or the
router stops) one more record stands for them: the last of them, its message saying how many it folds in and of
which methods. Every refusal is still counted, per tenant, for the metrics (router.accounting.audit_metrics).
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import time
from collections.abc import Callable

from router.accounting.ledger.audit_records import AuditRecord

WINDOW_S = 60.0
DEFAULT_PER_MINUTE = 10


@dataclasses.dataclass
class _Window:
    start: float
    recorded: int = 0
    methods: collections.Counter[str] = dataclasses.field(default_factory=collections.Counter)
    last: AuditRecord | None = None  # the last folded call
    timer: asyncio.TimerHandle | None = None

    @property
    def folded(self) -> int:
        return self.methods.total()


class RefusalFolding:
    def __init__(
        self,
        per_minute: int,
        emit: Callable[[AuditRecord], None],
        clock: Callable[[], float] = time.monotonic,
        window_s: float = WINDOW_S,
    ) -> None:
        if per_minute < 1:
            raise ValueError("per_minute: at least 1, so that every refusing minute leaves a record")
        self._per_minute = per_minute
        self._emit = emit  # records a folded minute's summary
        self._clock = clock
        self._window_s = window_s
        self._windows: dict[str, _Window] = {}  # bounded by the configured keys' tenants
        self.refused: collections.Counter[str] = collections.Counter()  # every refusal since start, by tenant
        self.folded = 0  # refusals not recorded one by one, since start

    def admit(self, entry: AuditRecord) -> bool:
        """Count a refused call; True if it is to be recorded now, False if folded into its minute's summary."""
        tenant = entry.tenant
        self.refused[tenant] += 1
        now = self._clock()
        window = self._windows.get(tenant)
        if window is not None and now - window.start >= self._window_s:
            self._close(tenant)  # its timer is late (a busy loop), or a clock of the tests' own
            window = None
        if window is None:
            window = self._windows[tenant] = _Window(now)
        if window.recorded < self._per_minute:
            window.recorded += 1
            return True
        if window.last is None:  # the first folded call: its summary is due when the minute ends
            delay = max(0.0, window.start + self._window_s - now)
            window.timer = asyncio.get_running_loop().call_later(delay, self._close, tenant)
        window.methods[entry.method] += 1
        window.last = entry
        self.folded += 1
        return False

    def close(self) -> None:
        """Record every open minute's folded calls now (the router is stopping)."""
        for tenant in list(self._windows):
            self._close(tenant)

    def _close(self, tenant: str) -> None:
        window = self._windows.pop(tenant, None)
        if window is None or window.last is None:
            return
        if window.timer is not None:
            window.timer.cancel()
        last = window.last
        by_method = ", ".join(f"{method} {count}" for method, count in sorted(window.methods.items()))
        folds = (
            f"folded: {window.folded} refused calls from this tenant within a minute of its first, past the "
            f"{self._per_minute} recorded one by one; this record is the last of them (by method: {by_method})"
        )
        message = f"{last.message} ({folds})" if last.message else folds
        self._emit(dataclasses.replace(last, message=message))
