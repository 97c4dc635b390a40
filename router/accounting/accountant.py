"""The router's accounting: API keys, budgets, the response cache, the usage ledger and metrics, together.

Built from the config with the server, started and stopped with it. Requests reach it through
`ticket()` (see router.ticket); everything else here runs at start, at stop, or in the background.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING

from core.listen_errors import ListenError, reason
from core.network import is_loopback
from router.accounting.audit import AuditTrail
from router.accounting.audit_metrics import AuditCollector
from router.accounting.auth import Authenticator, load_keys
from router.accounting.budgets import Budgets, month_start
from router.accounting.cache.store import open_cache
from router.accounting.counters.store import open_counters
from router.accounting.ledger.records import UsageRecord
from router.accounting.ledger.store import open_store
from router.accounting.ledger.writer import LedgerWriter
from router.accounting.metrics import MetricsServer, RouterMetrics
from router.accounting.tenant_limits import TenantLimiter
from router.accounting.ticket import Metadata, Request, Ticket
from router.config.accounting import default_usage_db
from router.routing.state import RoutingState

if TYPE_CHECKING:
    from router.config.settings import RouterConfig

log = logging.getLogger(__name__)
LEDGER_OFF = "off"


class Accounting:
    def __init__(self, config: RouterConfig, state: RoutingState) -> None:
        self.router_id = config.router_id
        # Open callers are admins only when nobody but this machine can call (a loopback listener).
        self.auth = Authenticator(
            load_keys(config.keys, config.keys_file), open_admin=is_loopback(config.listen)
        )
        # Limits and budgets count in Redis when the fleet shares one, so they hold for all routers together.
        self.counters = open_counters(config.limits.store or config.cache.redis_url)
        self.budgets = Budgets(config.budgets, self.counters, config.budget_low_fraction)
        self.limiter = TenantLimiter(config.limits, self.counters)
        self.cache = open_cache(config.cache)
        target = config.usage_db or default_usage_db()
        # The default file is per user, not per router: every router on the machine that keeps it writes there.
        self._ledger_note = (
            " (the default: every router of this user that keeps it shares it)" if not config.usage_db else ""
        )
        self.writer = (
            None
            if target == LEDGER_OFF
            else LedgerWriter(
                open_store(target), max_queue=config.ledger_queue_size, flush_s=config.ledger_flush_s
            )
        )
        self.audit = AuditTrail(
            config.router_id,
            self.writer.store if self.writer else None,
            refused_per_minute=config.audit_refused_per_minute,
        )
        self.metrics = RouterMetrics()
        self.metrics.watch(state, self.writer)
        self.metrics.registry.register(AuditCollector(self.audit))
        self._metrics_listen = config.metrics_listen
        self.metrics_server = MetricsServer(self.metrics.registry)
        self._pending: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        if self.auth.open:
            log.warning("%s", self.auth.describe())
        else:
            log.info("%s", self.auth.describe())
        if self.writer is not None:
            store = self.writer.store
            await store.open()
            if self.budgets.enabled:
                await self.budgets.seed(await store.spend_since(month_start(time.time())))
            self.writer.start()
            log.info("usage ledger: %s%s", store.describe(), self._ledger_note)
        else:
            log.warning("usage ledger: off; requests are not recorded")
        if self.cache is not None:
            log.info("response cache: %s", self.cache.describe())
        log.info("limits and budgets counted in %s", self.counters.describe())
        if self._metrics_listen:
            try:
                port = self.metrics_server.start(self._metrics_listen)
            except OSError as e:
                raise ListenError("metrics_listen", self._metrics_listen, reason(e)) from e
            log.info("metrics on http://%s:%d/metrics", self._metrics_listen.rpartition(":")[0], port)

    async def stop(self) -> None:
        """After the gRPC server has stopped: store the last cache entries and write every queued record."""
        if self._pending:
            await asyncio.gather(*self._pending, return_exceptions=True)
        await self.audit.close()  # records the refused Admin calls folded so far
        if self.writer is not None:
            await self.writer.stop()
            await self.writer.store.close()
        if self.cache is not None:
            await self.cache.close()
        await self.counters.close()
        await self.metrics_server.stop()

    def ticket(self, kind: str, metadata: Metadata, request: Request) -> Ticket:
        return Ticket(self, kind, metadata, request)

    def record(self, record: UsageRecord, overhead_s: float) -> None:
        """A request ended: ledger and metrics (its ticket settles its spend). Never blocks."""
        if self.writer is not None:
            self.writer.submit(record)
        # The request line: one per request, whatever its outcome (its fields built only when it is written).
        if log.isEnabledFor(logging.INFO):
            self._log_request(record)
        backend = record.backend or "none"
        # Without a backend the model is whatever the caller typed: keep it out of the label values.
        model = record.model if record.backend else "none"
        self.metrics.child(self.metrics.requests, record.kind, backend, model, record.status).inc()
        if record.status != "OK":
            return
        m = self.metrics.served(record.kind, backend, record.model)
        m.prompt_tokens.inc(record.prompt_tokens)
        m.completion_tokens.inc(record.completion_tokens)
        m.cost.inc(record.cost_usd)
        self.metrics.child(self.metrics.tenant_cost, record.tenant).inc(record.cost_usd)
        if record.ttft_ms is not None:
            m.ttft.observe(record.ttft_ms / 1000)
        m.latency.observe(record.latency_ms / 1000)
        m.overhead.observe(max(0.0, overhead_s))

    @staticmethod
    def _log_request(record: UsageRecord) -> None:
        log.info(
            "%s %s %s/%s in %.0f ms",
            record.kind,
            record.status,
            record.backend or "-",
            record.model or "-",
            record.latency_ms,
            extra={
                "request_id": record.request_id,
                "tenant": record.tenant,
                "backend": record.backend,
                "model": record.model,
                "kind": record.kind,
                "status": record.status,
                "latency_ms": round(record.latency_ms, 1),
                "prompt_tokens": record.prompt_tokens,
                "completion_tokens": record.completion_tokens,
                "cost_usd": record.cost_usd,
                "cache_hit": record.cache_hit,
            },
        )

    def cache_later(self, key: str, value: bytes) -> None:
        """Store a finished answer without holding up the request's end."""
        if self.cache is None:
            return
        task = asyncio.create_task(self.cache.put(key, value))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)
