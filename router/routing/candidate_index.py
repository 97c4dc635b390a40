"""Where a request may run, kept per (model, capability) as backends come, go and change, so the scheduler
reads one bucket instead of walking every backend on every request.

A bucket holds every (backend, model) pair that serves its key, in registration order: the exact ranking of a
small pool, error messages and CompareCost read them all. Apart from that it keeps the pairs a large pool
samples from: interchangeable backends (workers) in rotation. A backend leaves rotation while it is disabled,
draining or its load reports have stopped (`rotation`, a function of the backend, says why), and comes back
when that ends; whoever changes one of those calls `refresh`. The scheduler still checks every candidate it
scores, so a stale entry here costs a sample, never a wrong choice.

The "auto" bucket of a capability holds each backend's first model for it.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Iterator
from math import floor

from modelyard.v1 import inference_pb2 as pb

from router.backends.base import Backend

Slot = tuple[Backend, str]  # a backend and the model it would run
BucketKey = tuple[str | None, pb.Capability]  # (model, capability); model None: "auto"


def plain_rotation(backend: Backend) -> str:
    """Why a backend is out of rotation, from the backend alone (no operator switches known)."""
    if not backend.enabled:
        return "disabled"
    return "draining" if backend.draining else ""


class Bucket:
    def __init__(self) -> None:
        self.members: dict[str, Slot] = {}  # backend id -> slot, every one, in registration order
        self.fixed: dict[str, Slot] = {}  # not interchangeable (cloud APIs): always scored, few
        self._ready: list[Slot] = []  # interchangeable and in rotation: what a large pool samples
        self._position: dict[str, int] = {}
        self._recent: list[Slot] = []  # the last bounded ranking's best, scored again beside the draw

    def __len__(self) -> int:
        return len(self.members)

    def __iter__(self) -> Iterator[Slot]:
        return iter(self.members.values())

    @property
    def ready(self) -> int:
        return len(self._ready)

    def is_ready(self, backend_id: str) -> bool:
        return backend_id in self._position

    def draw(self, count: int, first: int, rng: random.Random) -> Iterator[Slot]:
        """`count` ready slots at random, drawn one at a time (the caller stops when it has enough): O(1) a
        draw, whatever the pool. With replacement, as cheap as it gets; a repeat is skipped by the caller.
        The `first` are drawn together (the caller takes at least as many; each draw is one `rng.random()`
        either way, so the sequence is the same). A pool no bigger than `count` is given whole, in a
        random order."""
        ready = self._ready
        size = len(ready)
        if count >= size:
            yield from rng.sample(ready, size)
            return
        random_ = rng.random
        first = min(first, count)
        scale = float(size)  # floor(random() * n): as int() would give, at less cost (random.choices' way)
        yield from [ready[floor(random_() * scale)] for _ in range(first)]
        for _ in range(count - first):
            if not ready:  # the caller took the last out of rotation (its reports had stopped)
                return
            yield ready[floor(random_() * len(ready))]

    def remember(self, backends: Iterable[Backend]) -> None:
        """The last bounded ranking (as many as failover tries): the next request scores them again beside
        its own draw. The power of K choices with memory: a fresh draw of K alone often holds none of the
        few best workers of a mixed pool (a pool of slow and fast ones), and then sends a request to a slow
        one; the best found so far stay in the running until their load or latency ranks them out."""
        members = self.members
        self._recent = [slot for b in backends if (slot := members.get(b.id)) is not None and slot[0] is b]

    def recent(self) -> Iterator[Slot]:
        """The remembered slots still in this bucket and in rotation (each checked: O(1))."""
        for slot in self._recent:
            backend_id = slot[0].id
            if backend_id in self._position and self.members.get(backend_id) is slot:
                yield slot

    def put(self, slot: Slot, ready: bool) -> None:
        backend = slot[0]
        self.members[backend.id] = slot  # a replacement keeps its place
        if not backend.interchangeable:
            self.fixed[backend.id] = slot
        self.set_ready(slot, ready)

    def drop(self, backend_id: str) -> None:
        self.members.pop(backend_id, None)
        self.fixed.pop(backend_id, None)
        self._unready(backend_id)

    def set_ready(self, slot: Slot, ready: bool) -> None:
        backend_id = slot[0].id
        if not ready:
            self._unready(backend_id)
        elif backend_id in self._position:
            self._ready[self._position[backend_id]] = slot
        elif slot[0].interchangeable:
            self._position[backend_id] = len(self._ready)
            self._ready.append(slot)

    def _unready(self, backend_id: str) -> None:
        """Swap with the last and pop: O(1), order does not matter to a random sample."""
        position = self._position.pop(backend_id, None)
        if position is None:
            return
        last = self._ready.pop()
        if position < len(self._ready):
            self._ready[position] = last
            self._position[last[0].id] = position


class CandidateIndex:
    def __init__(self, rotation: Callable[[Backend], str] = plain_rotation) -> None:
        self._rotation = rotation
        self._buckets: dict[BucketKey, Bucket] = {}
        self._homes: dict[str, list[tuple[BucketKey, Slot]]] = {}  # backend id -> where it is
        self._out: dict[str, str] = {}  # backend id -> why it is out of rotation

    def bucket(self, model: str | None, capability: pb.Capability) -> Bucket | None:
        """Every pair serving `model` for `capability`; model None: each backend's first for it ("auto")."""
        return self._buckets.get((model, capability))

    def out_of_rotation(self, backend_id: str) -> str:
        return self._out.get(backend_id, "")

    def reasons(self) -> dict[str, int]:
        """How many backends are out of rotation, by why (for metrics)."""
        counts: dict[str, int] = {}
        for reason in self._out.values():
            counts[reason] = counts.get(reason, 0) + 1
        return counts

    def watch(self, rotation: Callable[[Backend], str], backends: Iterator[Backend]) -> None:
        """Judge rotation with `rotation` from now on (the routing state's, which knows operator switches)."""
        self._rotation = rotation
        for backend in backends:
            self.refresh(backend)

    def add(self, backend: Backend) -> None:
        """Index a backend (a replacement under the same id first drops the old one's entries)."""
        self.remove(backend.id)
        reason = self._rotation(backend)
        if reason:
            self._out[backend.id] = reason
        homes: list[tuple[BucketKey, Slot]] = []
        firsts: set[pb.Capability] = set()
        for spec in backend.models:
            for capability in spec.capabilities:
                homes.append(((spec.id, capability), (backend, spec.id)))
                if capability not in firsts:
                    firsts.add(capability)
                    homes.append(((None, capability), (backend, spec.id)))
        for key, slot in homes:
            self._buckets.setdefault(key, Bucket()).put(slot, not reason)
        self._homes[backend.id] = homes

    def remove(self, backend_id: str) -> None:
        for key, _slot in self._homes.pop(backend_id, ()):
            bucket = self._buckets[key]
            bucket.drop(backend_id)
            if not bucket.members:
                del self._buckets[key]
        self._out.pop(backend_id, None)

    def refresh(self, backend: Backend) -> None:
        """Its switches, drain or reports may have changed: move it in or out of rotation. O(1) when
        nothing changed, which is almost every call (one per load report)."""
        homes = self._homes.get(backend.id)
        if not homes or homes[0][1][0] is not backend:
            return  # not indexed, or an older object under a reused id
        reason = self._rotation(backend)
        if reason == self._out.get(backend.id, ""):
            return
        if reason:
            self._out[backend.id] = reason
        else:
            del self._out[backend.id]
        for key, slot in homes:
            self._buckets[key].set_ready(slot, not reason)
