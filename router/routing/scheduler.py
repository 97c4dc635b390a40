"""Chooses where a request runs: resolve targets, filter, score, pick; the rest are the failover order.

targets   the (backend, model) pairs the requested model names: a model id, a route alias,
          a task's route, or "auto" (every enabled backend's first model for the capability), read from
          the candidate index (router.routing.candidate_index), never by walking every backend
filter    in rotation (enabled, not draining, reporting load), named provider, accepts images, within max
          cost, healthy, circuit closed, capacity left
score     each scorer in [0, 1], weighted by the strategy, summed
pick      best first

A request with up to `pool.exact_max` targets scores them all and gets the whole ranking. Above that it scores
a bounded set, so its cost does not grow with the pool: the workers holding the longest prefix of its
conversation, the previous request's ranking, `pool.sample` random workers in rotation (the power of K choices
with memory) and every cloud provider; it gets as many as failover will try. When every candidate is unhealthy
or behind an open circuit, they are tried anyway, best first (panic routing), rather than refused untried.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from modelyard.v1 import inference_pb2 as pb

from core.errors import CapacityExhausted, InvalidArgument, ModelNotFound, NoBackendAvailable
from router.backends.base import Backend
from router.routing.candidate_index import Bucket, Slot
from router.routing.scoring.base import Candidate
from router.routing.scoring.strategies import rank, strategy_name
from router.routing.state import RoutingState

log = logging.getLogger(__name__)
AUTO = "auto"
_CAPABILITY_NAMES = {
    pb.CAPABILITY_CHAT: "chat",
    pb.CAPABILITY_EMBED: "embeddings",
    pb.CAPABILITY_TRANSCRIBE: "transcription",
}
Target = tuple[Backend, str, int]  # backend, model it runs, priority (lower preferred)


PANIC_LOG_INTERVAL_S = 60.0
# Excluded for these alone, a candidate may still be tried in panic: the others are hard limits.
_PANIC_REASONS = frozenset({"unhealthy", "circuit open"})


@dataclass(frozen=True)
class _Group:
    """Targets with one route position: a bucket of the index (a model id) or a few named pairs."""

    slots: Bucket | list[Slot]
    position: int | None  # the route position; None: each backend's configured priority

    def __len__(self) -> int:
        return len(self.slots)


# A hint, not a limit: slots free up as answers finish, typically within a second or so.
CAPACITY_RETRY_AFTER_S = 1.0
_NO_IMAGES = "does not accept images"


class Scheduler:
    def __init__(self, state: RoutingState, rng: random.Random | None = None) -> None:
        self._state = state
        self._rng = rng or random.Random()
        self._panic_logged: dict[str, float] = {}  # model -> when panic routing for it was last logged

    def plan(
        self,
        model: str,
        capability: pb.Capability,
        hints: pb.RoutingHints,
        estimate_cost: Callable[[str], float] = lambda _model: 0.0,
        needs_vision: bool = False,
        prefix_keys: Callable[[], Sequence[int]] | None = None,
        strategy: str | None = None,
        order: Callable[[list[Candidate]], list[Candidate]] | None = None,
    ) -> list[Candidate]:
        """Candidates best first. Raises NOT_FOUND, UNAVAILABLE or RESOURCE_EXHAUSTED saying why none.

        `prefix_keys` gives the request's conversation prefix keys (chat only), computed only when the
        strategy weighs the prefix scorer and a candidate keeps a prefix cache. `strategy` ranks them when
        the request names none (hints.strategy wins); else the default does. `order`, when given, puts
        the ranking in its final order (router.routing.placement: local first, against a TTFT target).
        """
        self.check_hints(hints)
        # Unknown strategy names are refused before an unknown model, as before; a cached weight set.
        weights = self._state.strategies.weight_set(strategy_name(hints.strategy) or strategy)
        groups = self._groups(model, capability, hints)
        size = sum(map(len, groups))
        if not size:
            raise self._not_served(model, capability)
        keys = _Once(prefix_keys) if prefix_keys is not None and weights.prefix else None
        filter_ = _Filter(self, hints, estimate_cost, needs_vision)
        pool = self._state.config.pool
        bounded = size > pool.exact_max
        candidates = self._sample(groups, filter_, keys) if bounded else []
        if not candidates:
            filter_.consider_all((slot, group.position) for group in groups for slot in group.slots)
            candidates = filter_.passed
            if not candidates and filter_.panic and pool.panic_routing:
                candidates = filter_.panic
                self._panicked(model)
            if not candidates:
                raise self._none_left(model, filter_.reasons)
            if bounded and len(candidates) > pool.sample:
                candidates = self._rng.sample(candidates, pool.sample)
        if keys is not None:
            self._state.prefixes.annotate(candidates, keys)
        ranked = rank(candidates, weights)
        if order is not None:
            ranked = order(ranked)
        if bounded:
            del ranked[self._state.config.retry.max_attempts :]  # all that failover will try
            self._remember(groups, ranked)
        self._state.prefixes.record(ranked[0])
        for candidate in ranked:
            candidate.stats.scored(candidate.score, candidate.score_terms, candidate.score_values)
        return ranked

    def _panicked(self, model: str) -> None:
        """Counted every time; logged once a minute per model (every request would log it otherwise)."""
        self._state.events.panic_routed += 1
        now = time.monotonic()
        if now - self._panic_logged.get(model, -PANIC_LOG_INTERVAL_S) >= PANIC_LOG_INTERVAL_S:
            if len(self._panic_logged) > 1024:  # models named by requests: keep it bounded
                self._panic_logged.clear()
            self._panic_logged[model] = now
            log.warning(
                "every candidate for %r is unhealthy or behind an open circuit: trying them anyway "
                "(panic routing; counted in modelyard_panic_routed_requests_total)",
                model,
            )

    def _sample(self, groups: list[_Group], filter_: _Filter, keys: _Once | None) -> list[Candidate]:
        """The bounded set of a large pool: per bucket, every fixed backend (cloud APIs), the workers
        holding the longest prefix of the request, the previous request's ranking (Bucket.recent) and
        `pool.sample` random workers in rotation that pass the filter. Empty when none passes: the caller
        then walks them all, to say why or to panic."""
        k = self._state.config.pool.sample
        consider = filter_.consider
        for group in groups:
            slots, position = group.slots, group.position
            if not isinstance(slots, Bucket):
                for slot in slots:
                    consider(slot, position)
                continue
            for slot in slots.fixed.values():
                consider(slot, position)
            if not slots.ready:
                continue
            if keys is not None and keys():
                for slot in self._holders(slots, keys(), k):
                    consider(slot, position)
            for slot in slots.recent():  # the last request's best: a lucky draw is not forgotten
                consider(slot, position)
            accepted = 0
            for slot in slots.draw(2 * k, k, self._rng):  # twice K: room for some that are full or failing
                if consider(slot, position):
                    accepted += 1
                    if accepted == k:
                        break
        return filter_.passed

    def _remember(self, groups: list[_Group], ranked: list[Candidate]) -> None:
        for group in groups:
            if isinstance(group.slots, Bucket):
                group.slots.remember(c.backend for c in ranked)

    def _holders(self, bucket: Bucket, keys: Sequence[int], limit: int) -> list[Slot]:
        """Ready slots of the bucket whose worker holds the longest prefix of `keys` for its model."""
        found: list[Slot] = []
        for worker, model in self._state.prefixes.index.holders(keys, limit):
            slot = bucket.members.get(worker)
            if slot is not None and slot[1] == model and bucket.is_ready(worker):
                found.append(slot)
        return found

    def _priority(self, backend: Backend, position: int | None) -> int:
        return self._state.settings[backend].priority if position is None else position

    def targets(self, model: str, capability: pb.Capability, hints: pb.RoutingHints) -> list[Target]:
        """Every (backend, model, priority) the requested model names, before any filter."""
        return [
            (backend, name, self._priority(backend, group.position))
            for group in self._groups(model, capability, hints)
            for backend, name in group.slots
        ]

    def _groups(self, model: str, capability: pb.Capability, hints: pb.RoutingHints) -> list[_Group]:
        config = self._state.config
        if model == AUTO and hints.task and hints.task in config.tasks:
            model = config.tasks[hints.task]
        if model in config.routes:
            return self._route_groups(config.routes[model], capability)
        bucket = self._state.registry.index.bucket(None if model == AUTO else model, capability)
        if bucket is None:
            return []
        slot = bucket.members.get(hints.provider) if hints.provider else None
        if slot is not None:  # pinned to one backend by its id: that one alone, whatever the pool
            return [_Group([slot], None)]
        return [_Group(bucket, None)]

    def _route_groups(self, entries: list[str], capability: pb.Capability) -> list[_Group]:
        """Route order is the priority: the first entry is preferred."""
        registry = self._state.registry
        groups: list[_Group] = []
        for position, entry in enumerate(entries):
            backend_id, _, model = entry.partition("/")
            backend = registry.get(backend_id)
            if model and backend is not None and backend.serves(model, capability):
                groups.append(_Group([(backend, model)], position))
            elif not model and backend is not None:
                first = next((m.id for m in backend.models if capability in m.capabilities), None)
                if first is not None:
                    groups.append(_Group([(backend, first)], position))
            elif not model and (bucket := registry.index.bucket(entry, capability)) is not None:
                groups.append(_Group(bucket, position))
        return groups

    def excluded(
        self,
        backend: Backend,
        model: str,
        hints: pb.RoutingHints,
        cost: float,
        needs_vision: bool,
        now: float | None = None,
    ) -> str:
        """Why this target cannot take the request now; empty if it can. Hard limits first: a candidate
        excluded only as unhealthy or behind an open circuit may still be tried in panic."""
        if hints.provider and hints.provider not in (backend.id, backend.kind):
            return "not the requested provider"
        state = self._state
        if reason := state.out_of_rotation(backend, now):
            if state.registry.index.out_of_rotation(backend.id) != reason:
                state.registry.refresh(backend)  # found here first (reports stopped): out of the sample
            return reason
        if needs_vision and not any(m.id == model and m.vision for m in backend.models):
            return _NO_IMAGES
        if cost > hints.max_cost_usd and hints.HasField("max_cost_usd"):
            return f"estimated cost above max_cost_usd {hints.max_cost_usd:g}"
        if not state.health.is_healthy(backend.id):
            return "unhealthy"
        if backend.id in state.circuits and not state.circuits[backend.id].allows():
            return "circuit open"  # (a backend that never failed has no breaker yet: closed)
        if not backend.available:
            return "at capacity"
        return ""

    def check_hints(self, hints: pb.RoutingHints) -> None:
        """INVALID_ARGUMENT for hints no backend could ever satisfy, naming the field (callers may check early,
        before budgets: a wrong request should hear that first)."""
        if hints.HasField("max_cost_usd") and not hints.max_cost_usd >= 0:  # `not >=` catches NaN too
            raise InvalidArgument(
                f"routing.max_cost_usd: {hints.max_cost_usd:g} is negative; give a limit of 0 or more (USD)"
            )
        if hints.provider:
            registry = self._state.registry
            providers = self._state.config.providers
            if registry.knows(hints.provider) or any(p.name == hints.provider for p in providers):
                return  # per request: no walk over the pool
            known = {b.id for b in registry} | {b.kind for b in registry} | {p.name for p in providers}
            listing = ", ".join(sorted(known)) or "none registered yet"
            raise InvalidArgument(
                f"routing.provider: {hints.provider!r} is not a backend or backend kind here; "
                f"providers: {listing}"
            )

    def _none_left(self, model: str, reasons: dict[str, list[str]]) -> Exception:
        detail = "; ".join(f"{reason}: {', '.join(ids)}" for reason, ids in reasons.items())
        message = f"no backend can take a request for {model!r} now ({detail})"
        if set(reasons) == {_NO_IMAGES}:  # waiting will not teach a text-only model to read images
            return InvalidArgument(
                f"messages: {model!r} has no backend that accepts images ({', '.join(reasons[_NO_IMAGES])}); "
                "send text only, or name a model that takes images",
                reason="CAPABILITY_NOT_SERVED",
            )
        if any(r.startswith("estimated cost") for r in reasons):
            return CapacityExhausted(message, reason="COST_LIMIT")  # waiting will not lower the price
        if set(reasons) <= {"at capacity"}:
            return CapacityExhausted(message, retry_after_s=CAPACITY_RETRY_AFTER_S)
        if set(reasons) <= {"circuit open"}:
            # Every candidate is cooling down: the first one to reopen sets when a retry can succeed.
            reopen = min(self._state.circuits[b].retry_after_s() for b in reasons["circuit open"])
            return NoBackendAvailable(message, reason="CIRCUITS_OPEN", retry_after_s=reopen)
        return NoBackendAvailable(message)

    def _not_served(self, model: str, capability: pb.Capability) -> Exception:
        kind = _CAPABILITY_NAMES.get(capability, "this capability")
        known = self._state.registry.models()
        if not len(self._state.registry):
            return NoBackendAvailable(f"no backend is registered yet to serve {model!r}")
        served = sorted(m for m, caps in known.items() if capability in caps)
        if model in known and capability not in known[model]:
            # The model exists, so NOT_FOUND would mislead; waiting will not help, so neither would UNAVAILABLE.
            has = ", ".join(_CAPABILITY_NAMES.get(c, str(c)) for c in known[model])
            return InvalidArgument(
                f"model: {model!r} does not do {kind} (it does {has}); models for {kind}: "
                f"{', '.join(served) or 'none served now'}",
                reason="CAPABILITY_NOT_SERVED",
            )
        if model in known or model in self._state.config.routes:
            return NoBackendAvailable(f"no backend serves {model!r} for {kind} now")
        routes = sorted(self._state.config.routes)
        # `auto` stands for whatever serves the capability: nothing, when nothing does.
        listing = ", ".join([*served, *routes, AUTO] if served else routes) or f"nothing serves {kind} now"
        return ModelNotFound(f"model {model!r} is not served for {kind}; served: {listing}")


class _Once:
    """The request's prefix keys, computed on first use only."""

    def __init__(self, compute: Callable[[], Sequence[int]]) -> None:
        self._compute = compute
        self._keys: Sequence[int] | None = None

    def __call__(self) -> Sequence[int]:
        if self._keys is None:
            self._keys = self._compute()
        return self._keys


class _Filter:
    """Applies the scheduler's filter to targets, once each: those that pass become candidates; the rest
    are remembered by reason (for the refusal's message) and, where only health or a circuit stood in the
    way, as panic candidates. Prices are looked up once per model.

    A target that passes every check (almost all of them) is judged by one expression over what the
    request and the state hold, read once per request; only one that fails some check, or may (a failed
    probe, a circuit that has opened), goes through `Scheduler.excluded`, which names the first reason in
    its order. It runs for every target scored, so the books are read through their dicts' own `get`."""

    def __init__(
        self,
        scheduler: Scheduler,
        hints: pb.RoutingHints,
        estimate_cost: Callable[[str], float],
        needs_vision: bool,
    ) -> None:
        state = scheduler._state
        self._scheduler = scheduler
        self._stats = state.stats
        self._find_stats = state.stats.find
        self._settings = state.settings
        self._find_settings = state.settings.find
        self._failing = state.health.failing
        self._find_breaker = state.circuits.find
        self._hints = hints
        # Checks that pass for every target of a request without such hints: decided once, not per target.
        self._special = bool(hints.provider) or needs_vision
        self._max_cost = hints.max_cost_usd if hints.HasField("max_cost_usd") else None
        self._estimate_cost = estimate_cost
        self._needs_vision = needs_vision
        self._costs: dict[str, float] = {}
        self._now = time.monotonic()  # one clock read per request, not per candidate
        self._seen: set[int] = set()  # slots considered, by identity: a random draw may repeat one
        self.passed: list[Candidate] = []
        self.panic: list[Candidate] = []
        self.reasons: dict[str, list[str]] = {}

    def consider(self, slot: Slot, position: int | None) -> bool:
        """Whether the target became a candidate. `position`: its route position, which is its priority;
        None: its backend's configured priority."""
        seen, key = self._seen, id(slot)
        if key in seen:
            return False
        seen.add(key)
        backend, model = slot
        backend_id = backend.id
        settings = self._find_settings(backend_id) or self._settings[backend]
        priority = settings.priority if position is None else position
        cost = self._costs.get(model)
        if cost is None:
            cost = self._costs[model] = self._estimate_cost(model)
        max_cost = self._max_cost
        breaker = self._find_breaker(backend_id)
        if (
            self._special
            or not settings.enabled
            or backend.draining
            or backend.reports_overdue(self._now)
            or (max_cost is not None and cost > max_cost)
            or backend_id in self._failing  # its probe failed: healthy only if it answered lately
            or (breaker is not None and breaker.tripped)  # open or half-open: `allows` decides
            or backend.in_flight >= backend.capacity  # not `available` (draining is checked above)
        ):
            return self._judge(backend, model, cost, priority)
        stats = self._find_stats(backend_id) or self._stats[backend_id]
        self.passed.append(Candidate(backend, model, stats, cost, priority))
        return True

    def _judge(self, backend: Backend, model: str, cost: float, priority: int) -> bool:
        """The full filter, for a target that may fail it: why not, or a candidate after all."""
        reason = self._scheduler.excluded(backend, model, self._hints, cost, self._needs_vision, self._now)
        if reason and not (reason in _PANIC_REASONS and backend.available):
            self.reasons.setdefault(reason, []).append(backend.id)
            return False
        candidate = Candidate(backend, model, self._stats[backend.id], cost, priority)
        if reason:
            self.reasons.setdefault(reason, []).append(backend.id)
            self.panic.append(candidate)
            return False
        self.passed.append(candidate)
        return True

    def consider_all(self, targets: Iterable[tuple[Slot, int | None]]) -> None:
        for slot, position in targets:
            self.consider(slot, position)
