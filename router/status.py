"""How a backend looks in GetStatus."""

from __future__ import annotations

import time

from modelyard.v1 import router_pb2

from router.backends.base import Backend
from router.backends.worker import WorkerBackend


def backend_status(backend: Backend) -> router_pb2.BackendStatus:
    status = router_pb2.BackendStatus(
        id=backend.id,
        kind=backend.kind,
        address=backend.address,
        models=[m.to_proto() for m in backend.models],
        healthy=backend.available,
        in_flight=backend.in_flight,
    )
    if isinstance(backend, WorkerBackend):
        status.healthy = True  # an open lease is the health signal; capacity is reported separately
        status.draining = backend.draining
        status.load.CopyFrom(backend.load)
        status.max_concurrency = backend.max_concurrency
        status.connected_seconds = time.monotonic() - backend.connected_at
    return status
