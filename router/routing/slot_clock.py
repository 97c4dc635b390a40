"""How far along this router's requests on each backend are, and when a slot frees for one sent now.

A backend runs `max_concurrency` requests at once and queues the rest in order. Counting the requests ahead
says how many must finish first, not when: four running requests that are nearly done free a slot sooner
than four that just began. The router sees each of its requests' progress (when it was sent, when its
first item came, its max_tokens), so it can tell when each running one should end (router.routing.
ttft_model gives the expected service) and play the slots forward: each queued request takes the slot
that frees first, and the new one the slot after them.
"""

from __future__ import annotations

import heapq
from collections.abc import Collection, Sequence
from dataclasses import dataclass


@dataclass(eq=False)
class Running:
    """One of this router's requests on a backend, from the moment it was placed there."""

    backend_id: str
    sent_at: float  # time.monotonic()
    max_tokens: int = 0  # its cap on output tokens (0: none)
    first_at: float | None = None  # when its first item came: it holds a slot from then, at the latest


class Progress:
    """This router's requests on each backend, in the order they were placed (a worker's queue order)."""

    def __init__(self) -> None:
        self._on: dict[str, dict[Running, None]] = {}

    def placed(self, backend_id: str, sent_at: float, max_tokens: int) -> Running:
        running = Running(backend_id, sent_at, max_tokens)
        self._on.setdefault(backend_id, {})[running] = None
        return running

    def ended(self, running: Running) -> None:
        held = self._on.get(running.backend_id)
        if held is not None:
            held.pop(running, None)
            if not held:
                del self._on[running.backend_id]

    def on(self, backend_id: str) -> Collection[Running]:
        return self._on.get(backend_id, {}).keys()

    def forget(self, backend_id: str) -> None:
        self._on.pop(backend_id, None)

    def backends(self) -> int:
        return len(self._on)


def start_in(slots: int, remaining: Sequence[float], queued: Sequence[float]) -> float:
    """Time until a slot frees for one more request: `remaining` is each running request's expected time
    left, `queued` the service time of each request queued ahead, in order (units as given)."""
    running = sorted(remaining)
    free = running[:slots] + [0.0] * max(0, slots - len(running))
    heapq.heapify(free)
    # Running beyond the slots (a backend that said it runs fewer than it does) wait like queued ones.
    for service in [*running[slots:], *queued]:
        heapq.heappush(free, heapq.heappop(free) + service)
    return free[0]
