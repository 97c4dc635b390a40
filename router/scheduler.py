"""Chooses where a request runs: the candidates serving it, best first; the rest are the failover order."""

from __future__ import annotations

from modelyard.v1 import inference_pb2 as pb

from router.backends.base import Backend
from router.errors import CapacityExhausted, ModelNotFound, NoBackendAvailable
from router.registry import BackendRegistry

_CAPABILITY_NAMES = {
    pb.CAPABILITY_CHAT: "chat",
    pb.CAPABILITY_EMBED: "embeddings",
    pb.CAPABILITY_TRANSCRIBE: "transcription",
}


class Scheduler:
    def __init__(self, registry: BackendRegistry) -> None:
        self._registry = registry

    def candidates(self, model: str, capability: pb.Capability, hints: pb.RoutingHints) -> list[Backend]:
        serving = self._registry.serving(model, capability)
        if hints.provider:
            serving = [b for b in serving if hints.provider in (b.id, b.kind)]
        if not serving:
            raise self._not_served(model, capability, hints)
        ready = [b for b in serving if b.available]
        if not ready:
            if all(getattr(b, "draining", False) for b in serving):
                raise NoBackendAvailable(f"every backend serving {model!r} is draining")
            raise CapacityExhausted(f"every backend serving {model!r} is at capacity; retry later")
        return sorted(ready, key=_load)

    def _not_served(self, model: str, capability: pb.Capability, hints: pb.RoutingHints) -> Exception:
        kind = _CAPABILITY_NAMES.get(capability, "this capability")
        served = sorted(m for m, caps in self._registry.models().items() if capability in caps)
        if hints.provider and self._registry.serving(model, capability):
            return NoBackendAvailable(f"no backend {hints.provider!r} serves {model!r} for {kind}")
        if model in self._registry.models():
            return NoBackendAvailable(f"no backend serves {model!r} for {kind}")
        if not len(self._registry):
            return NoBackendAvailable(f"no backend is registered yet to serve {model!r}")
        listing = ", ".join(served) if served else "none"
        return ModelNotFound(f"model {model!r} is not served for {kind}; served: {listing}")


def _load(backend: Backend) -> float:
    """Fraction of declared capacity in use, counting what this router has in flight."""
    capacity = getattr(backend, "capacity", 0) or 1
    waiting = getattr(getattr(backend, "load", None), "waiting", 0)
    return (backend.in_flight + waiting) / capacity
