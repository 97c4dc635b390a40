"""How a backend looks in GetStatus: identity, health, circuit, EWMAs and the last score's components."""

from __future__ import annotations

from modelyard.v1 import router_pb2

from core import wire
from router.backends.base import Backend
from router.routing.state import RoutingState


def backend_status(backend: Backend, state: RoutingState) -> router_pb2.BackendStatus:
    stats = state.stats[backend.id]
    settings = state.settings[backend]
    status = router_pb2.BackendStatus(
        id=backend.id,
        kind=wire.backend_kind(backend.kind),
        address=backend.address,
        models=[m.to_proto() for m in backend.models],
        healthy=state.health.is_healthy(backend.id),
        in_flight=backend.in_flight,
        enabled=settings.enabled,
        priority=settings.priority,
        circuit=wire.circuit_state(state.circuits[backend.id].state.value),
        success_rate=stats.success_rate,
        ttft=wire.duration_ms(stats.ttft_ms or 0.0),
        latency=wire.duration_ms(stats.latency_ms or 0.0),
        requests=stats.requests,
        failures=stats.failures,
        last_error=stats.last_error or state.health.reason(backend.id),
        last_score=stats.last_score,
        score_components=stats.score_components,
        max_concurrency=backend.max_concurrency,
        draining=backend.draining,
    )
    if (load := backend.load_report()) is not None:
        status.load.CopyFrom(load)
    if (connected := backend.connected_seconds()) is not None:
        status.connected_for.CopyFrom(wire.duration_s(connected))
    return status


def redacted(status: router_pb2.BackendStatus) -> router_pb2.BackendStatus:
    """What a non-admin tenant may see: which models are served and whether they are up. No addresses,
    base URLs, GPUs or errors (they map the network and can quote upstream messages)."""
    return router_pb2.BackendStatus(
        id=status.id,
        kind=status.kind,
        models=status.models,
        healthy=status.healthy,
        draining=status.draining,
        enabled=status.enabled,
        circuit=status.circuit,
    )
