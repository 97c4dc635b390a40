"""Chooses where a request runs: resolve targets, filter, score, pick; the rest are the failover order.

targets   the (backend, model) pairs the requested model names: a model id, a route alias,
          a task's route, or "auto" (every enabled backend's first model for the capability)
filter    enabled, named provider, circuit closed, healthy, capacity left, within max cost
score     each scorer in [0, 1], weighted by the strategy, summed
pick      best first
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from modelyard.v1 import inference_pb2 as pb

from core.errors import CapacityExhausted, InvalidArgument, ModelNotFound, NoBackendAvailable
from router.backends.base import Backend
from router.routing.scoring.base import Candidate
from router.routing.scoring.strategies import rank, strategy_name
from router.routing.state import RoutingState

AUTO = "auto"
_CAPABILITY_NAMES = {
    pb.CAPABILITY_CHAT: "chat",
    pb.CAPABILITY_EMBED: "embeddings",
    pb.CAPABILITY_TRANSCRIBE: "transcription",
}
Target = tuple[Backend, str, int]  # backend, model it runs, priority (lower preferred)


# A hint, not a limit: slots free up as answers finish, typically within a second or so.
CAPACITY_RETRY_AFTER_S = 1.0
_NO_IMAGES = "does not accept images"


class Scheduler:
    def __init__(self, state: RoutingState) -> None:
        self._state = state

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
        named = strategy_name(hints.strategy) or strategy
        strategy = self._state.strategies.check(named) if named else None
        targets = self.targets(model, capability, hints)
        if not targets:
            raise self._not_served(model, capability)
        candidates: list[Candidate] = []
        reasons: dict[str, list[str]] = {}
        for backend, backend_model, priority in targets:
            cost = estimate_cost(backend_model)
            reason = self._excluded(backend, backend_model, hints, cost, needs_vision)
            if reason:
                reasons.setdefault(reason, []).append(backend.id)
                continue
            stats = self._state.stats[backend.id]
            candidates.append(Candidate(backend, backend_model, stats, cost, priority))
        if not candidates:
            raise self._none_left(model, reasons)
        weights = self._state.strategies.weights(strategy)
        if prefix_keys is not None and weights.get("prefix"):
            self._state.prefixes.annotate(candidates, prefix_keys)
        ranked = rank(candidates, weights)
        if order is not None:
            ranked = order(ranked)
        self._state.prefixes.record(ranked[0])
        for candidate in ranked:
            candidate.stats.last_score = candidate.score
            candidate.stats.score_components = dict(candidate.components)
        return ranked

    def check_hints(self, hints: pb.RoutingHints) -> None:
        """INVALID_ARGUMENT for hints no backend could ever satisfy, naming the field (callers may check early,
        before budgets: a wrong request should hear that first)."""
        if hints.HasField("max_cost_usd") and not hints.max_cost_usd >= 0:  # `not >=` catches NaN too
            raise InvalidArgument(
                f"routing.max_cost_usd: {hints.max_cost_usd:g} is negative; give a limit of 0 or more (USD)"
            )
        if hints.provider:
            registry = self._state.registry
            known = {b.id for b in registry} | {b.kind for b in registry}
            known |= {p.name for p in self._state.config.providers}
            if hints.provider not in known:
                listing = ", ".join(sorted(known)) or "none registered yet"
                raise InvalidArgument(
                    f"routing.provider: {hints.provider!r} is not a backend or backend kind here; "
                    f"providers: {listing}"
                )

    def targets(self, model: str, capability: pb.Capability, hints: pb.RoutingHints) -> list[Target]:
        """Every (backend, model, priority) the requested model names, before any filter."""
        config = self._state.config
        if model == AUTO and hints.task and hints.task in config.tasks:
            model = config.tasks[hints.task]
        if model in config.routes:
            return self._route_targets(config.routes[model], capability)
        registry = self._state.registry
        if model == AUTO:
            targets = []
            for backend in registry:
                first = next((m.id for m in backend.models if capability in m.capabilities), None)
                if first is not None:
                    targets.append((backend, first, self._state.settings[backend].priority))
            return targets
        return [(b, model, self._state.settings[b].priority) for b in registry.serving(model, capability)]

    def _route_targets(self, entries: list[str], capability: pb.Capability) -> list[Target]:
        """Route order is the priority: the first entry is preferred."""
        registry = self._state.registry
        targets: list[Target] = []
        for position, entry in enumerate(entries):
            backend_id, _, model = entry.partition("/")
            backend = registry.get(backend_id)
            if model and backend is not None and backend.serves(model, capability):
                targets.append((backend, model, position))
            elif not model and backend is not None:
                first = next((m.id for m in backend.models if capability in m.capabilities), None)
                if first is not None:
                    targets.append((backend, first, position))
            elif not model:
                targets.extend((b, entry, position) for b in registry.serving(entry, capability))
        return targets

    def _excluded(
        self, backend: Backend, model: str, hints: pb.RoutingHints, cost: float, needs_vision: bool
    ) -> str:
        """Why this target cannot take the request now; empty if it can."""
        if hints.provider and hints.provider not in (backend.id, backend.kind):
            return "not the requested provider"
        if not self._state.settings[backend].enabled:
            return "disabled"
        if backend.draining:
            return "draining"
        if not self._state.health.is_healthy(backend.id):
            return "unhealthy"
        if not self._state.circuits[backend.id].allows():
            return "circuit open"
        if needs_vision and not any(m.id == model and m.vision for m in backend.models):
            return _NO_IMAGES
        if hints.HasField("max_cost_usd") and cost > hints.max_cost_usd:
            return f"estimated cost above max_cost_usd {hints.max_cost_usd:g}"
        if not backend.available:
            return "at capacity"
        return ""

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
