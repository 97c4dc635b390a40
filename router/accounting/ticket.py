"""One request's accounting: who asked, what it may spend, what it cost, where the time went.

The request pipeline opens a ticket as a request arrives and closes it (a `with` block) as it ends,
whatever the outcome; in between it asks the ticket to admit the request under the tenant's rate limits,
for a cached answer, to reserve its budget, and hands it what the backend returned. A StatusError that ends
the block is the request's recorded outcome. Closing gives back the stream slot, settles what was reserved
to what was used, and writes the ledger record, the metrics and the cache entry, none of which waits on
I/O: the ledger, the cache and shared counters are written in the background.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from types import TracebackType
from typing import TYPE_CHECKING

from modelyard.v1 import inference_pb2 as pb

from core import wire
from core.errors import StatusError
from router.accounting.auth import Caller
from router.accounting.budgets import Reservation
from router.accounting.cache.keys import CachedChat, chat_key
from router.accounting.estimates import TokenEstimate
from router.accounting.ledger.records import UsageRecord
from router.accounting.tenant_limits import Admission
from router.routing.scoring.base import Candidate
from router.routing.wait_watch import WaitTally

if TYPE_CHECKING:
    from router.accounting.accountant import Accounting

Request = pb.ChatRequest | pb.EmbedRequest | pb.TranscribeConfig
# The caller's credentials as the transport carries them, e.g. (("authorization", "Bearer <key>"),).
Metadata = Sequence[tuple[str, str | bytes]]
_CACHED_FINISH = frozenset({"stop", "length"})
_CHEAPER = "cost_optimized"


class Ticket:
    def __init__(self, accounting: Accounting, kind: str, metadata: Metadata, request: Request) -> None:
        self._acc = accounting
        self.kind = kind
        self.request = request  # read again at close: the pipeline may fill in request_id meanwhile
        self._metadata = metadata
        self.caller: Caller | None = None
        self.usage: pb.Usage | None = None
        self.error: StatusError | None = None
        self._started = time.perf_counter()
        self._waits: WaitTally | None = None
        self._cache_key: str | None = None
        self._tried: tuple[str, str] = ("", "")  # last (backend, model) tried: who a failure is charged to
        self._deltas: list[str] = []
        self._admission: Admission | None = None
        self._reservation: Reservation | None = None

    @property
    def tenant(self) -> str:
        return self.caller.tenant if self.caller else ""

    def __enter__(self) -> Ticket:
        self._acc.metrics.child(self._acc.metrics.in_flight, self.kind).inc()
        return self

    def authenticate(self) -> None:
        self.caller = self._acc.auth.authenticate(self._metadata)

    async def cached_answer(self) -> list[pb.ChatResponse] | None:
        """The replayed answer when this exact deterministic chat was answered within the TTL."""
        cache = self._acc.cache
        if cache is None or not isinstance(self.request, pb.ChatRequest):
            return None
        self._cache_key = chat_key(self.request, self.tenant)
        if self._cache_key is None:
            return None
        data = await cache.get(self._cache_key)
        self._acc.metrics.cache.labels("hit" if data is not None else "miss").inc()
        if data is None:
            return None
        cached = CachedChat.decode(data)
        ms = (time.perf_counter() - self._started) * 1000
        replay = cached.replay(self.request.request_id, ttft_ms=ms, latency_ms=ms)
        self.usage = replay[-1].usage
        self._cache_key = None  # already cached: nothing to store at close
        return replay

    async def admit(self, estimate: TokenEstimate) -> None:
        """Take a stream slot and count the request against the tenant's rate limits, or refuse it."""
        try:
            self._admission = await self._acc.limiter.admit(self.tenant, estimate.tokens)
        except StatusError:
            self._acc.metrics.refused.labels("rate").inc()
            raise

    @property
    def budgeted(self) -> bool:
        """Whether a budget applies to this tenant: O(1) and synchronous, so a router without budgets
        neither builds nor awaits the budget steps (`preferred_strategy`, `reserve_budget`)."""
        return self._acc.budgets.limits_for(self.tenant) is not None

    @property
    def holds_budget(self) -> bool:
        """Whether `reserve_budget` reserved something, so `reserve_cost` has something to add to."""
        return self._reservation is not None

    async def preferred_strategy(self) -> str | None:
        """cost_optimized once the tenant's budget runs low, else None (the request's or the default)."""
        return _CHEAPER if await self._acc.budgets.running_low(self.tenant) else None

    async def reserve_budget(self, estimate: TokenEstimate) -> None:
        """Hold the estimated tokens against the tenant's budgets until the end, or refuse a request that
        would pass one. Returns before any backend is chosen, so an over-budget tenant learns it first."""
        try:
            self._reservation = await self._acc.budgets.reserve(self.tenant, estimate.tokens)
        except StatusError:
            self._acc.metrics.refused.labels("budget").inc()
            raise

    async def reserve_cost(self, cost_usd: float) -> None:
        """Add the chosen backend's estimated cost to what is held; refuse if it would pass a cost limit."""
        if self._reservation is None:
            return
        try:
            self._reservation = await self._acc.budgets.reserve_cost(self.tenant, self._reservation, cost_usd)
        except StatusError:
            self._acc.metrics.refused.labels("budget").inc()
            raise

    def upstream(self, candidate: Candidate, waits: WaitTally) -> None:
        """An attempt on `candidate` starts: a failure is charged to it. `waits` adds up the time spent
        waiting on backends as the relay goes (router.routing.wait_watch): what is left of the latency is the
        router's own. Nothing here runs per item: the relay times its waits itself."""
        self._tried = (candidate.backend.id, candidate.model)
        self._waits = waits

    def observe(self, response: pb.ChatResponse | pb.EmbedResponse | pb.TranscribeResponse) -> None:
        """Hand over each response as it is sent: the usage (with the router's final figures) and chat text."""
        if response.HasField("usage"):
            self.usage = response.usage
        elif self._cache_key is not None and isinstance(response, pb.ChatResponse):
            self._deltas.append(response.delta.text)

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._acc.metrics.child(self._acc.metrics.in_flight, self.kind).dec()
        if isinstance(exc, StatusError):
            self.error = exc
        status = self._status(exc)
        latency_s = time.perf_counter() - self._started
        usage = self.usage or pb.Usage()
        backend = usage.backend or self._tried[0]
        model = usage.model or self._tried[1] or self.request.model
        record = UsageRecord(
            ts=time.time(),
            tenant=self.tenant,
            kind=self.kind,
            backend=backend,
            model=model,
            status=status,
            request_id=self.request.request_id,
            router_id=self._acc.router_id,
            prompt_tokens=usage.prompt_tokens,
            completion_tokens=usage.completion_tokens,
            audio_seconds=usage.audio_seconds,
            cost_usd=usage.cost_usd,
            ttft_ms=wire.ms_of(usage.ttft) or None,
            latency_ms=latency_s * 1000,
            error_class=type(self.error).__name__ if self.error else (exc_type.__name__ if exc_type else ""),
            cache_hit=usage.cache_hit,
            queue_wait_ms=wire.ms_of(usage.queue_wait),
            spill_reason=usage.spill_reason,
        )
        used = (0, 0.0) if record.cache_hit else (record.tokens, record.cost_usd)
        if self._admission is not None:
            self._admission.release(used[0])
        if self._reservation is not None:
            self._acc.budgets.settle(self._reservation, *used)
        upstream_s = self._waits.upstream_s if self._waits is not None else 0.0
        self._acc.record(record, overhead_s=latency_s - upstream_s)
        if (
            status == "OK"
            and self._cache_key is not None
            and wire.enum_name(pb.FinishReason, usage.finish_reason) in _CACHED_FINISH
        ):
            entry = CachedChat(
                backend,
                model,
                usage.prompt_tokens,
                usage.completion_tokens,
                wire.enum_name(pb.FinishReason, usage.finish_reason),
                self._deltas,
            )
            self._acc.cache_later(self._cache_key, entry.encode())

    def _status(self, exc: BaseException | None) -> str:
        if self.error is not None:
            return self.error.code.name
        if exc is None:
            return "OK" if self.usage is not None else "UNKNOWN"
        if isinstance(exc, asyncio.CancelledError | GeneratorExit):
            return "CANCELLED"
        return "INTERNAL"
