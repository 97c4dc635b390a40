"""Everything the router knows about its backends, in one place for the scheduler, failover and admin."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from router.accounting.pricing import PriceTable
from router.backends.base import Backend
from router.config.settings import RouterConfig
from router.routing.backend_registry import BackendRegistry
from router.routing.backend_switches import SettingsBook
from router.routing.circuit import CircuitBook
from router.routing.health_checker import HealthChecker
from router.routing.pool_events import PoolEvents
from router.routing.prefix_routing import PrefixRouting
from router.routing.scoring.strategies import Strategies
from router.routing.stats import StatsBook


@dataclass
class RoutingState:
    config: RouterConfig
    registry: BackendRegistry = field(default_factory=BackendRegistry)
    settings: SettingsBook = field(default_factory=SettingsBook)
    stats: StatsBook = field(default_factory=StatsBook)
    circuits: CircuitBook = field(init=False)
    health: HealthChecker = field(init=False)
    strategies: Strategies = field(init=False)
    prices: PriceTable = field(init=False)
    prefixes: PrefixRouting = field(init=False)
    events: PoolEvents = field(default_factory=PoolEvents)
    # Called with a worker's id when it leaves, by what keeps per-backend state elsewhere (placement).
    forgetters: list[Callable[[str], None]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.circuits = CircuitBook(self.config.circuit_failure_threshold, self.config.circuit_cooldown_s)
        self.health = HealthChecker(self.registry, self.config.health_interval_s, self.stats)
        self.strategies = Strategies(self.config.strategy, self.config.weights)
        self.prices = PriceTable().with_overrides(self.config.prices)
        self.prefixes = PrefixRouting(self.config.prefix)
        self.registry.watch(self.out_of_rotation)

    def out_of_rotation(self, backend: Backend, now: float | None = None) -> str:
        """Why no request may be sent to this backend now, whatever its score; empty if it is in rotation.
        The candidate index keeps backends apart by this; the scheduler checks it on every candidate too
        (`now`: its clock read once per request)."""
        if not self.settings[backend].enabled:
            return "disabled"
        if backend.draining:
            return "draining"
        if backend.reports_overdue(time.monotonic() if now is None else now):
            return "load reports stopped"
        return ""

    def forget(self, backend_id: str) -> None:
        """A worker left: drop its stats and circuit, and its switches unless an operator set them."""
        self.stats.forget(backend_id)
        self.circuits.forget(backend_id)
        self.settings.forget_defaults(backend_id)
        for forget in self.forgetters:
            forget(backend_id)
