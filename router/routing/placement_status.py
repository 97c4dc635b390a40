"""How admission and placement look in GetStatus: each tenant's queue, each backend's predicted TTFT."""

from __future__ import annotations

from collections.abc import Sequence

from modelyard.v1 import router_pb2

from core import wire
from router.accounting.auth import Caller
from router.routing.placement import Placement


def placement_status(
    placement: Placement, statuses: Sequence[router_pb2.BackendStatus], caller: Caller
) -> list[router_pb2.TenantQueue]:
    """Fill in each backend's predicted TTFT (admins only: it tells how loaded a backend is) and return the
    admission queues the caller may see: every tenant's for an admin, its own otherwise."""
    if caller.admin:
        for status in statuses:
            backend = placement.state.registry.get(status.id)
            predicted = placement.predict_now(backend) if backend is not None else None
            if predicted is not None:
                status.predicted_ttft.CopyFrom(wire.duration_ms(predicted))
    return [
        router_pb2.TenantQueue(
            tenant=q.tenant,
            queued=q.queued,
            oldest_wait=wire.duration_s(q.oldest_wait_s),
            mean_wait=wire.duration_s(q.mean_wait_s),
            dispatched=q.dispatched,
            refused=q.refused,
            weight=q.weight,
        )
        for q in placement.queue.snapshot()
        if caller.admin or q.tenant == caller.tenant
    ]
