"""Where and when one request runs, between planning and relaying: the admission queue and local first.

The pipeline opens a `Hold` per request (a `with` block), and
- `admit` (before planning): works out the request's policy (TTFT target, local_only, prefer local, priority
  band) and, with the admission queue on, waits until a backend of its pool has room, fairly between
  tenants; the backend it was admitted on counts it until the hold ends;
- `order` (the scheduler's last step): puts the ranked candidates in local-first order (router.routing.spill)
  and, while it is admitted, the backends with room ahead of saturated ones;
- `annotate` (each response): puts the queue wait and spill reason in the usage, and feeds the observed
  TTFT to the prediction.
Closing the hold gives its slot to the next request waiting.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import TYPE_CHECKING

from modelyard.v1 import inference_pb2 as pb
from prometheus_client import CollectorRegistry

from core import wire
from core.errors import InvalidArgument
from router.backends.base import Backend
from router.config.admission import DEFAULT_PRIORITY, PRIORITIES
from router.routing.admission import AdmissionQueue, Eligible, Observers
from router.routing.load_view import ahead
from router.routing.placement_metrics import PlacementMetrics
from router.routing.scheduler import AUTO, Scheduler
from router.routing.scoring.base import Candidate
from router.routing.slot_clock import Progress, Running
from router.routing.spill import Policy, order
from router.routing.state import RoutingState
from router.routing.ttft_model import Observed, TtftModel

if TYPE_CHECKING:
    from router.accounting.ticket import Ticket

Request = pb.ChatRequest | pb.EmbedRequest | pb.TranscribeConfig
Response = pb.ChatResponse | pb.EmbedResponse | pb.TranscribeResponse
_PRIORITY_NAMES = {
    pb.PRIORITY_INTERACTIVE: "interactive",
    pb.PRIORITY_STANDARD: "standard",
    pb.PRIORITY_BATCH: "batch",
}


class Placement:
    """One router's admission queue, TTFT model and placement metrics."""

    def __init__(self, state: RoutingState, scheduler: Scheduler, registry: CollectorRegistry | None) -> None:
        self.state = state
        self.scheduler = scheduler
        self.ttft = TtftModel()
        self.progress = Progress()  # this router's requests on each backend, and how far along
        state.forgetters.append(self.forget)
        self.metrics = PlacementMetrics(registry)
        observers = Observers(
            waited=lambda tenant, s: self.metrics.child(self.metrics.wait, tenant).observe(s),
            refused=lambda tenant, reason: self.metrics.child(self.metrics.refused, tenant, reason).inc(),
        )
        self.queue = AdmissionQueue(
            state.config.admission, self._service_s, observers, self.rate_limited, self._frees_in_ms
        )
        self.metrics.watch(self.queue, self.predict_now, state.registry)

    def hold(self) -> Hold:
        return Hold(self)

    def rate_limited(self, backend: Backend) -> bool:
        """It answered "at my limit" (HTTP 429, RESOURCE_EXHAUSTED) lately, and nothing well since."""
        stats = self.state.stats[backend.id]
        at = stats.rate_limited_at
        if at is None or (stats.last_success_at is not None and stats.last_success_at > at):
            return False
        return time.monotonic() - at < self.state.config.admission.rate_limited_s

    def _frees_in_ms(self, backend: Backend) -> float | None:
        """When a slot frees there: the slot clock alone. The wait bias learnt from TTFTs holds the
        router's own lag too (a finish relayed, the next request sent), which is what the lead makes up."""
        if self.ttft.base_ms(backend.id) is None:
            return None
        running = self.progress.on(backend.id)
        unsent = self._unsent(backend, len(running), False)
        return self.ttft.wait_ms(backend, running, unsent, time.monotonic(), corrected=False)

    def _service_s(self, backend: Backend) -> float | None:
        service = self.ttft.service_ms(backend.id)
        return None if service is None else service / 1000

    def policy(self, request: Request, tenant: str) -> Policy:
        """The request's own target, else its route's, else its model's, else its tenant's; local_only and
        prefer local when any of route, model or tenant says so."""
        config = self.state.config
        hints = request.routing
        route = request.model
        if route == AUTO and hints.task and hints.task in config.tasks:
            route = config.tasks[hints.task]
        lf = config.local_first
        found = [p for p in (lf.routes.get(route), lf.models.get(request.model), lf.tenants.get(tenant)) if p]
        if hints.HasField("ttft_slo"):
            target: float | None = wire.ms_of(hints.ttft_slo)
            if target is None or not target > 0:
                raise InvalidArgument(
                    "routing.ttft_slo: must be a positive duration", field="routing.ttft_slo"
                )
        else:
            target = next((p.ttft_slo_ms for p in found if p.ttft_slo_ms is not None), None)
        return Policy(
            ttft_slo_ms=target,
            local_only=any(p.local_only for p in found),
            prefer_local=any(p.prefer == "local" for p in found),
            headroom=lf.headroom,
        )

    def pool(self, request: Request, capability: pb.Capability, policy: Policy) -> list[Backend]:
        """The backends that could take the request now, load aside: what the scheduler's filters would
        leave of its targets before capacity."""
        state = self.state
        hints = request.routing
        seen: dict[str, Backend] = {}
        for backend, _model, _priority in self.scheduler.targets(request.model, capability, hints):
            if backend.id in seen or (policy.local_only and not backend.local):
                continue
            if hints.provider and hints.provider not in (backend.id, backend.kind):
                continue
            if not state.settings[backend].enabled or backend.draining:
                continue
            if not state.health.is_healthy(backend.id) or not state.circuits[backend.id].allows():
                continue
            seen[backend.id] = backend
        return list(seen.values())

    def predict_now(self, backend: Backend, wait_factor: float = 1.0, own: bool = False) -> float | None:
        """The predicted TTFT (ms) of a request sent there now (`wait_factor`: see TtftModel.predict;
        `own`: the request is admitted there already)."""
        running = self.progress.on(backend.id)
        unsent = self._unsent(backend, len(running), own)
        stale = self.state.config.local_first.stale_after_s
        return self.ttft.predict(backend, running, unsent, time.monotonic(), wait_factor, stale)

    def expect_now(self, backend: Backend, own: bool = False) -> tuple[int, float | None, float]:
        """What `ahead`, `predict_now` and `wait_now` say of a request sent there now, worked out together
        (once per request, for its first choice: the wait is played out once)."""
        admitted = self.queue.admitted[backend.id] - (1 if own else 0)
        if self.ttft.base_ms(backend.id) is None:  # never answered here: nothing to predict
            return ahead(backend, admitted), None, 0.0
        running = self.progress.on(backend.id)
        unsent = max(0, admitted - len(running))
        now = time.monotonic()
        wait = self.ttft.wait_ms(backend, running, unsent, now)
        stale = self.state.config.local_first.stale_after_s
        return ahead(backend, admitted), self.ttft.predict_after(backend.id, wait, now, 1.0, stale), wait

    def wait_now(self, backend: Backend, own: bool = False) -> float:
        """The predicted wait (ms) for a slot there of a request sent now."""
        running = self.progress.on(backend.id)
        unsent = self._unsent(backend, len(running), own)
        return self.ttft.wait_ms(backend, running, unsent, time.monotonic())

    def _unsent(self, backend: Backend, placed: int, own: bool) -> int:
        """Requests admitted there and not yet placed (the admission queue counts them from admission)."""
        return max(0, self.queue.admitted[backend.id] - placed - (1 if own else 0))

    def forget(self, backend_id: str) -> None:
        """A worker left: its fit and progress go (memory bounded by the pool, not by its history)."""
        self.ttft.forget(backend_id)
        self.progress.forget(backend_id)

    def against_target(
        self, policy: Policy, admitted: Backend | None = None
    ) -> Callable[[Candidate], float | None]:
        """Each candidate's prediction as weighed against the policy's target: its queue wait counted
        1 / headroom times (`admitted`: where the request holds an admission slot already)."""
        factor = 1.0 / policy.headroom
        return lambda c: self.predict_now(c.backend, factor, own=c.backend is admitted)

    def ahead(self, backend: Backend, own: bool = False) -> int:
        """Requests ahead of one sent there now, counting those admitted there and not yet sent (`own`:
        this request is one of them)."""
        return ahead(backend, self.queue.admitted[backend.id] - (1 if own else 0))

    async def close(self) -> None:
        await self.queue.close()


class Hold:
    def __init__(self, placement: Placement) -> None:
        self._p = placement
        self.policy = Policy()
        self.admitted: Backend | None = None
        self.waited_s = 0.0
        self.spill_reason = ""
        self._first: Candidate | None = None
        self._ahead = 0
        self._predicted: float | None = None
        self._predicted_wait: float | None = None
        self._max_tokens = 0
        self._running: Running | None = None  # its progress on the first choice (slot_clock)

    def __enter__(self) -> Hold:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._end_running()
        if self.admitted is not None:
            admitted, self.admitted = self.admitted, None
            self._p.queue.release(admitted.id)

    def _end_running(self) -> None:
        if self._running is not None:
            self._p.progress.ended(self._running)
            self._running = None

    async def admit(
        self, ticket: Ticket, request: Request, capability: pb.Capability, deadline: float | None
    ) -> None:
        """Work out the request's policy; with the admission queue on, wait for room (or refuse)."""
        p = self._p
        self.policy = p.policy(request, ticket.tenant)
        if isinstance(request, pb.ChatRequest) and request.sampling.HasField("max_tokens"):
            self._max_tokens = request.sampling.max_tokens
        priority = _priority(request.routing, ticket.caller.priority if ticket.caller else DEFAULT_PRIORITY)
        if not p.state.config.admission.enabled:
            return
        pool = p.pool(request, capability, self.policy)
        if not pool:
            return  # planning says why nothing can serve it
        soonest = min((p.ttft.base_ms(b.id) or 0.0 for b in pool), default=0.0) / 1000
        eligible = self._eligible(ticket.tenant, priority, pool)
        self.admitted, self.waited_s = await p.queue.enter(
            ticket.tenant, priority, pool, eligible, deadline, soonest
        )

    def _eligible(self, tenant: str, priority: str, pool: Sequence[Backend]) -> Eligible:
        """With a TTFT target and a worker in the pool, a cloud takes a request only when predicted to meet
        the target, or to answer sooner than a worker would after the fair queue: otherwise the queue for a
        worker is the better wait."""
        target = self.policy.ttft_slo_ms
        locals_ = [b for b in pool if b.local]
        if target is None or not locals_:
            return lambda _backend: True
        p = self._p
        wait_s = p.queue.estimate_wait_s(tenant, PRIORITIES.index(priority), locals_)
        bases = [base for b in locals_ if (base := p.ttft.base_ms(b.id)) is not None]
        bound = target
        if wait_s is not None and bases:
            bound = max(target, wait_s * 1000 + min(bases))

        def eligible(backend: Backend) -> bool:
            if backend.local:
                return True
            predicted = p.predict_now(backend, 1.0 / self.policy.headroom)
            return predicted is None or predicted <= bound

        return eligible

    def order(self, ranked: list[Candidate]) -> list[Candidate]:
        """The scheduler's ranking in local-first order; the backend first in it holds this request's slot."""
        p = self._p
        ordered, self.spill_reason = (
            order(ranked, self.policy, p.against_target(self.policy, self.admitted), p.ahead)
            if self.policy.active
            else (ranked, "")
        )
        if self.admitted is not None:
            queue = p.queue
            admitted = self.admitted
            roomy = [c for c in ordered if c.backend is admitted or queue.has_room(c.backend)]
            ordered = roomy + [c for c in ordered if c not in roomy]
            first = ordered[0].backend
            if first is not admitted:  # move its slot to where it will run
                queue.admitted[first.id] += 1
                self.admitted = first
                queue.release(admitted.id)
        if ordered:
            first = ordered[0].backend
            own = self.admitted is first
            self._first = ordered[0]
            self._ahead, self._predicted, self._predicted_wait = p.expect_now(first, own=own)
            self._end_running()  # planned again (warm start): only the latest choice holds progress
            self._running = p.progress.placed(first.id, time.monotonic(), self._max_tokens)
            if self.policy.active:
                where = "local" if ordered[0].backend.local else "cloud"
                p.metrics.child(p.metrics.placed, where).inc()
                if self.spill_reason:
                    p.metrics.spilled.inc()
        return ordered

    def annotate(self, response: Response) -> None:
        """Each response: the first marks the request's progress (it holds a slot now). The usage says how
        long the request was held and why it spilled; its TTFT feeds the prediction."""
        running = self._running
        if running is not None and running.first_at is None:
            running.first_at = time.monotonic()
        if not response.HasField("usage"):
            return
        self._end_running()  # the last response: its slot there is free
        usage = response.usage
        if self.waited_s:
            usage.queue_wait.CopyFrom(wire.duration_ms(self.waited_s * 1000))
        first = self._first
        if first is None or usage.backend != first.backend.id:
            return  # failed over: the observation is not of the first choice's state
        if self.spill_reason:
            usage.spill_reason = self.spill_reason
        if usage.HasField("ttft"):
            p = self._p
            ttft_ms = wire.ms_of(usage.ttft)
            latency = wire.ms_of(usage.latency) if usage.HasField("latency") else None
            seen = Observed(
                ttft_ms,
                latency,
                usage.completion_tokens,
                self._max_tokens,
                self._ahead,
                self._predicted_wait,
            )
            p.ttft.observe(first.backend.id, seen)
            if self._predicted is not None:
                error_s = abs(ttft_ms - self._predicted) / 1000
                p.metrics.child(p.metrics.prediction_error, first.backend.id).observe(error_s)


def _priority(hints: pb.RoutingHints, default: str) -> str:
    if not hints.priority:
        return default
    name = _PRIORITY_NAMES.get(hints.priority)
    if name is None:
        raise InvalidArgument(
            f"routing.priority: unknown value {hints.priority}; known: {', '.join(PRIORITIES)}",
            field="routing.priority",
        )
    return name
