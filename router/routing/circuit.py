"""Circuit breaker: stop sending to a backend that keeps failing, then let one probe through.

closed -> open after `failure_threshold` consecutive failures, or at once on a 429 with Retry-After;
open -> half_open when the cooldown (or the Retry-After) has passed; half_open lets one request
through: its success closes the circuit, its failure opens it again.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum


class CircuitState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclass
class CircuitBreaker:
    failure_threshold: int = 5
    cooldown_s: float = 30.0
    clock: Callable[[], float] = time.monotonic
    consecutive_failures: int = 0
    _open_until: float = 0.0
    _probe_in_flight: bool = False
    # Opened and not closed since: open, or half-open once the cooldown passed (read per candidate).
    tripped: bool = field(default=False, init=False)

    @property
    def state(self) -> CircuitState:
        if not self.tripped:
            return CircuitState.CLOSED
        if self.clock() < self._open_until:
            return CircuitState.OPEN
        return CircuitState.HALF_OPEN

    def allows(self) -> bool:
        """Whether a request may be sent now (half-open: only while no probe is out)."""
        state = self.state
        return state is CircuitState.CLOSED or (state is CircuitState.HALF_OPEN and not self._probe_in_flight)

    def on_attempt(self) -> None:
        if self.state is CircuitState.HALF_OPEN:
            self._probe_in_flight = True

    def record_success(self) -> None:
        self.consecutive_failures = 0
        self.tripped = False
        self._probe_in_flight = False

    def record_failure(self, retry_after_s: float | None = None) -> None:
        self.consecutive_failures += 1
        was_probe = self._probe_in_flight
        self._probe_in_flight = False
        if retry_after_s is not None:
            self._open(retry_after_s)
        elif was_probe or self.consecutive_failures >= self.failure_threshold:
            self._open(self.cooldown_s)

    def retry_after_s(self) -> float:
        """Seconds until an open circuit lets a trial request through (0 when it already would)."""
        return max(0.0, self._open_until - self.clock())

    def record_abandoned(self) -> None:
        """The caller went away: says nothing about the backend, but frees the probe slot."""
        self._probe_in_flight = False

    def _open(self, seconds: float) -> None:
        self.tripped = True
        self._open_until = max(self._open_until, self.clock() + seconds)


class CircuitBook:
    """Breakers by backend id, all with the same settings."""

    def __init__(self, failure_threshold: int = 5, cooldown_s: float = 30.0) -> None:
        self._failure_threshold = failure_threshold
        self._cooldown_s = cooldown_s
        self._breakers: dict[str, CircuitBreaker] = {}
        # The breaker of a backend id, None for one that never failed (closed): the dict's own get.
        self.find: Callable[[str], CircuitBreaker | None] = self._breakers.get

    def __getitem__(self, backend_id: str) -> CircuitBreaker:
        breaker = self._breakers.get(backend_id)
        if breaker is None:
            breaker = CircuitBreaker(self._failure_threshold, self._cooldown_s)
            self._breakers[backend_id] = breaker
        return breaker

    def forget(self, backend_id: str) -> None:
        self._breakers.pop(backend_id, None)

    def __contains__(self, backend_id: object) -> bool:
        return backend_id in self._breakers
