"""Every backend the router can send requests to, looked up by model and capability through its candidate
index (router.routing.candidate_index), which it keeps up to date as backends are added and removed."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterator

from modelyard.v1 import inference_pb2 as pb

from router.backends.base import Backend
from router.routing.candidate_index import CandidateIndex

log = logging.getLogger(__name__)


class BackendRegistry:
    def __init__(self) -> None:
        self._backends: dict[str, Backend] = {}
        self.index = CandidateIndex()
        self.workers = 0  # interchangeable backends registered (workers): the pool's size, kept as they come
        self._kinds: dict[str, int] = {}  # backend kind -> how many are registered: a provider hint's check
        self._added = asyncio.Event()  # set, and replaced, on every add: wakes whoever waits for a backend

    def add(self, backend: Backend) -> Backend | None:
        """Add or replace a backend; returns the one it replaced, if any."""
        previous = self._backends.get(backend.id)
        if previous is not None:
            self._counted(previous, -1)
        self._backends[backend.id] = backend
        self._counted(backend, 1)
        self.index.add(backend)
        self._added.set()
        self._added = asyncio.Event()
        return previous

    async def wait_added(self, timeout: float) -> None:
        """Return when a backend is added or after `timeout` seconds, whichever is first."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._added.wait(), max(timeout, 0.0))

    def remove(self, backend: Backend) -> bool:
        """Remove this exact backend object (a newer one under the same id stays)."""
        if self._backends.get(backend.id) is backend:
            del self._backends[backend.id]
            self._counted(backend, -1)
            self.index.remove(backend.id)
            return True
        return False

    def _counted(self, backend: Backend, change: int) -> None:
        self.workers += change * backend.interchangeable
        left = self._kinds.get(backend.kind, 0) + change
        if left:
            self._kinds[backend.kind] = left
        else:
            self._kinds.pop(backend.kind, None)

    def knows(self, name: str) -> bool:
        """Whether `name` is a registered backend's id or kind, in O(1) whatever the pool."""
        return name in self._backends or name in self._kinds

    def refresh(self, backend: Backend) -> None:
        """Its operator switches, drain or load reports may have changed: move it in or out of rotation."""
        self.index.refresh(backend)

    def watch(self, rotation: Callable[[Backend], str]) -> None:
        """Judge rotation (disabled, draining, reports stopped) with `rotation` from now on."""
        self.index.watch(rotation, iter(self))

    def get(self, backend_id: str) -> Backend | None:
        return self._backends.get(backend_id)

    def __iter__(self) -> Iterator[Backend]:
        return iter(list(self._backends.values()))

    def __len__(self) -> int:
        return len(self._backends)

    def serving(self, model: str, capability: pb.Capability) -> list[Backend]:
        bucket = self.index.bucket(model, capability)
        return [backend for backend, _ in bucket] if bucket is not None else []

    def models(self) -> dict[str, dict[pb.Capability, list[str]]]:
        """model id -> capability -> backend ids."""
        out: dict[str, dict[pb.Capability, list[str]]] = {}
        for backend in self._backends.values():
            for spec in backend.models:
                for capability in spec.capabilities:
                    out.setdefault(spec.id, {}).setdefault(capability, []).append(backend.id)
        return out
