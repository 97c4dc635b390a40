"""The admission queue: requests held in the router while every backend for them is busy, dispatched fairly.

Two policies over per-flow queues, as the Gateway API Inference Extension's flow control has them:
- which flow dispatches next: priority bands first (interactive, standard, batch; a higher band always
  goes first), then, within a band, weighted fair queuing between tenants: each request gets a virtual
  finish tag max(V, tenant's last tag) + 1 / weight, and the smallest tag goes first, so a tenant with a
  deep backlog cannot push ahead of one that sends a request now and then;
- which request within a flow: first come, first served.

A backend has room while what the router has sent there (or admitted and not yet ended) plus what its
load report shows of other routers' requests (router.routing.load_view) stays under max_concurrency +
target_queue_depth (a worker) or max_concurrency (a cloud API), and while it is not answering "at my
limit" (RESOURCE_EXHAUSTED, a cloud's HTTP 429: none for rate_limited_s after one, unless it answered since).
A 429 with Retry-After opens the backend's circuit too, which keeps it out of the pool for that long.
A full worker has room for one more, within what it declared it can queue, when a slot there is predicted
to free within dispatch_lead_ms (router.routing.slot_clock): the request is on its way as the slot frees,
instead of leaving it idle for the router's round trip (a finish relayed, the next request planned and
sent), which on a busy machine was a tenth of the workers' time. A request that finds room, with nobody waiting, passes straight through.
Otherwise it waits; slots free as requests end (`release`) and, for other routers' requests, as load
reports change (looked at every poll_interval_ms while anything waits). A request whose deadline would pass
before it could start is refused at once (RESOURCE_EXHAUSTED with RetryInfo); one whose caller goes away
leaves the queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections import Counter, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from core.errors import CapacityExhausted
from router.backends.base import Backend
from router.config.admission import PRIORITIES, AdmissionConfig
from router.routing.load_view import busy
from router.routing.stats import ewma

Eligible = Callable[[Backend], bool]
ServiceSeconds = Callable[[Backend], float | None]
Limited = Callable[[Backend], bool]
FreesIn = Callable[[Backend], float | None]  # ms until a slot frees there for a request sent now


@dataclass(eq=False)
class _Entry:
    tenant: str
    band: int
    start: float  # virtual start tag
    finish: float  # virtual finish tag
    pool: Sequence[Backend]
    eligible: Eligible
    enqueued: float
    future: asyncio.Future[Backend]


@dataclass
class TenantQueueStats:
    tenant: str
    weight: float
    queued: int = 0
    oldest_wait_s: float = 0.0
    mean_wait_s: float = 0.0
    dispatched: int = 0
    refused: int = 0


@dataclass
class _Tenant:
    last_finish: float = 0.0
    dispatched: int = 0
    refused: int = 0
    mean_wait_s: float | None = None
    waiting: int = 0


@dataclass
class Observers:
    """Where dispatches and refusals are counted (Prometheus); no-ops by default."""

    waited: Callable[[str, float], None] = lambda _tenant, _seconds: None
    refused: Callable[[str, str], None] = lambda _tenant, _reason: None


class AdmissionQueue:
    def __init__(
        self,
        config: AdmissionConfig,
        service_s: ServiceSeconds = lambda _backend: None,
        observers: Observers | None = None,
        limited: Limited = lambda _backend: False,
        frees_in_ms: FreesIn = lambda _backend: None,
    ) -> None:
        self.config = config
        self._service_s = service_s
        self._limited = limited
        self._frees_in_ms = frees_in_ms
        self.observers = observers or Observers()
        self._flows: dict[tuple[int, str], deque[_Entry]] = {}
        self._tenants: dict[str, _Tenant] = {}
        self._virtual = 0.0
        self._waiting = 0
        self.admitted: Counter[str] = Counter()  # backend id -> requests admitted there and not yet ended
        self._poller: asyncio.Task[None] | None = None

    @property
    def waiting(self) -> int:
        return self._waiting

    # -- capacity -----------------------------------------------------------------------------------

    def limit(self, backend: Backend) -> int:
        """Requests it may hold before the router holds more: never past what it declared it can take."""
        extra = self.config.target_queue_depth if backend.local else 0
        return min(backend.capacity, backend.max_concurrency + extra)

    def busy(self, backend: Backend) -> int:
        return busy(backend, self.admitted[backend.id])

    def has_room(self, backend: Backend) -> bool:
        if self._limited(backend):
            return False
        busy = self.busy(backend)
        if busy < self.limit(backend):
            return True
        lead = self.config.dispatch_lead_ms
        if not lead or not backend.local or busy >= backend.capacity:
            return False
        frees_in = self._frees_in_ms(backend)
        return frees_in is not None and frees_in <= lead

    def _room_in(self, pool: Sequence[Backend], eligible: Eligible) -> Backend | None:
        return next((b for b in pool if eligible(b) and self.has_room(b)), None)

    # -- entering and leaving -----------------------------------------------------------------------

    async def enter(
        self,
        tenant: str,
        priority: str,
        pool: Sequence[Backend],
        eligible: Eligible,
        deadline: float | None,
        soonest_start_s: float = 0.0,
    ) -> tuple[Backend, float]:
        """Wait for room on a backend of `pool` that `eligible` accepts, in fair order; returns it, counted
        as admitted there until `release`, and the seconds waited. `deadline` is a time.monotonic() value;
        `soonest_start_s`: the least time the request needs once dispatched (its predicted TTFT)."""
        if not self._waiting and (free := self._room_in(pool, eligible)) is not None:
            self.admitted[free.id] += 1
            return free, 0.0
        state = self._tenants.setdefault(tenant, _Tenant())
        self._check_bounds(tenant, state)
        band = PRIORITIES.index(priority)
        estimate = self.estimate_wait_s(tenant, band, pool)
        now = time.monotonic()
        if deadline is not None and estimate is not None and now + estimate + soonest_start_s > deadline:
            self._refuse(
                tenant,
                "deadline",
                f"the deadline would pass before it could start: about {estimate:.2f} s in the admission "
                f"queue, {max(0.0, deadline - now):.2f} s left",
                estimate,
            )
        weight = self.config.weight(tenant)
        start = max(self._virtual, state.last_finish)
        entry = _Entry(
            tenant,
            band,
            start,
            start + 1.0 / weight,
            pool,
            eligible,
            now,
            asyncio.get_running_loop().create_future(),
        )
        state.last_finish = entry.finish
        self._flows.setdefault((band, tenant), deque()).append(entry)
        self._waiting += 1
        state.waiting += 1
        self.dispatch()
        if not entry.future.done():
            self._ensure_poller()
        limit = self.config.max_wait_s if deadline is None else deadline - now - soonest_start_s
        try:
            async with asyncio.timeout(max(0.0, limit)):
                backend = await asyncio.shield(entry.future)
        except TimeoutError:
            self._leave(entry)
            self._refuse(
                tenant,
                "deadline" if deadline is not None else "max_wait",
                f"no backend had room within {max(0.0, limit):.2f} s in the admission queue",
                self.estimate_wait_s(tenant, band, pool),
            )
        except asyncio.CancelledError:
            self._leave(entry)  # the caller went away: out of the queue, or its slot back
            raise
        return backend, time.monotonic() - entry.enqueued

    def release(self, backend_id: str) -> None:
        """A request admitted on `backend_id` ended: its slot goes to whoever is next."""
        if self.admitted[backend_id] > 0:
            self.admitted[backend_id] -= 1
            if not self.admitted[backend_id]:
                del self.admitted[backend_id]
        if self._waiting:
            self.dispatch()

    def _leave(self, entry: _Entry) -> None:
        if entry.future.done() and not entry.future.cancelled():
            self.release(entry.future.result().id)  # dispatched as it left: hand the slot on
            return
        entry.future.cancel()
        flow = self._flows.get((entry.band, entry.tenant))
        if flow is not None and entry in flow:
            flow.remove(entry)
            if not flow:
                del self._flows[(entry.band, entry.tenant)]
            self._waiting -= 1
            self._tenants[entry.tenant].waiting -= 1

    def _check_bounds(self, tenant: str, state: _Tenant) -> None:
        if self._waiting >= self.config.max_queued:
            self._refuse(
                tenant,
                "queue_full",
                f"the admission queue is full ({self.config.max_queued} requests wait, all tenants)",
                None,
            )
        bound = self.config.tenant_bound(tenant)
        if state.waiting >= bound:
            self._refuse(
                tenant,
                "tenant_queue_full",
                f"tenant {tenant!r} has {bound} requests waiting already (its admission queue bound)",
                None,
            )

    def _refuse(self, tenant: str, reason: str, message: str, retry_after_s: float | None) -> None:
        self._tenants.setdefault(tenant, _Tenant()).refused += 1
        self.observers.refused(tenant, reason)
        raise CapacityExhausted(
            f"every backend for this request is busy and {message}",
            reason="QUEUE_FULL" if reason.endswith("queue_full") else "ADMISSION_DEADLINE",
            retry_after_s=max(0.1, retry_after_s or 1.0),
        )

    # -- dispatching --------------------------------------------------------------------------------

    def dispatch(self) -> None:
        """Hand every free slot to the first waiting request, in fair order, that can use it."""
        while self._waiting:
            heads = sorted((flow[0] for flow in self._flows.values()), key=lambda e: (e.band, e.finish))
            for entry in heads:
                backend = self._room_in(entry.pool, entry.eligible)
                if backend is not None:
                    self._dispatch(entry, backend)
                    break
            else:
                return

    def _dispatch(self, entry: _Entry, backend: Backend) -> None:
        flow = self._flows[(entry.band, entry.tenant)]
        flow.popleft()
        if not flow:
            del self._flows[(entry.band, entry.tenant)]
        self._waiting -= 1
        state = self._tenants[entry.tenant]
        state.waiting -= 1
        self._virtual = max(self._virtual, entry.start)
        self.admitted[backend.id] += 1
        waited = time.monotonic() - entry.enqueued
        state.dispatched += 1
        state.mean_wait_s = ewma(state.mean_wait_s, waited)
        self.observers.waited(entry.tenant, waited)
        entry.future.set_result(backend)

    def _ensure_poller(self) -> None:
        if self._poller is None or self._poller.done():
            self._poller = asyncio.get_running_loop().create_task(self._poll())

    async def _poll(self) -> None:
        """While requests wait: look again at backends whose room comes from load reports or switches."""
        interval = self.config.poll_interval_ms / 1000
        while self._waiting:
            await asyncio.sleep(interval)
            self.dispatch()

    async def close(self) -> None:
        if self._poller is not None:
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poller

    # -- estimates and status -----------------------------------------------------------------------

    def estimate_wait_s(self, tenant: str, band: int, pool: Sequence[Backend]) -> float | None:
        """About how long a request entering now waits: the requests fair queuing puts ahead of it, over the
        rate at which the pool frees slots (its slots over the time each request holds one). None while a
        backend of the pool has not been measured."""
        rate = 0.0
        for backend in pool:
            service = self._service_s(backend)
            if service is None or service <= 0:
                return None
            rate += self.limit(backend) / service
        weight = self.config.weight(tenant)
        own = len(self._flows.get((band, tenant), ()))
        ahead = 0.0
        for (other_band, other), flow in self._flows.items():
            if other_band < band:
                ahead += len(flow)
            elif other_band == band and other != tenant:
                ahead += min(len(flow), math.ceil((own + 1) * self.config.weight(other) / weight))
        return (ahead + own + 1) / rate if rate else None

    def snapshot(self) -> list[TenantQueueStats]:
        now = time.monotonic()
        oldest: dict[str, float] = {}
        for (_band, tenant), flow in self._flows.items():
            if flow:
                oldest[tenant] = max(oldest.get(tenant, 0.0), now - flow[0].enqueued)
        return [
            TenantQueueStats(
                tenant,
                self.config.weight(tenant),
                state.waiting,
                oldest.get(tenant, 0.0),
                state.mean_wait_s or 0.0,
                state.dispatched,
                state.refused,
            )
            for tenant, state in sorted(self._tenants.items())
        ]
