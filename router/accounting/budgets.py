"""Per-tenant daily and monthly limits on tokens and cost: each request reserves its estimate, then settles.

A request is admitted only if what is spent, plus what requests still running have reserved, plus its own
estimate stays within every limit; it reserves that estimate atomically (router.accounting.counters), and
at its end the reservation is corrected to what it really used. So parallel requests cannot all pass one
check: a limit is overrun by at most what one request uses beyond its estimate. Days and months are UTC;
cache hits cost nothing. Counters live in the router's memory, or in Redis shared by the whole fleet
(config limits.store), seeded from the usage ledger when they do not exist yet.
"""

from __future__ import annotations

import datetime as dt
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import Any

from core.errors import BudgetExceeded
from router.accounting.counters.store import Counter, CounterStore
from router.accounting.ledger.records import TenantSpend
from router.config.accounting import DEFAULT_TENANT_BUDGET, Budget

_DAY_TTL_S = 2 * 86_400.0
_MONTH_TTL_S = 32 * 86_400.0
NANO_USD = 1_000_000_000  # cost counters are whole nano-dollars: atomic integer adds in every store


def utc_day(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, tz=dt.UTC).strftime("%Y-%m-%d")


def _seconds_to_reset(period: str, ts: float) -> float:
    now = dt.datetime.fromtimestamp(ts, tz=dt.UTC)
    day = now.replace(hour=0, minute=0, second=0, microsecond=0)
    if period == "daily":
        reset = day + dt.timedelta(days=1)
    else:
        first = day.replace(day=1)
        reset = (
            first.replace(year=first.year + 1, month=1)
            if first.month == 12
            else first.replace(month=first.month + 1)
        )
    return (reset - now).total_seconds()


def month_start(ts: float) -> float:
    """Unix seconds at 00:00 UTC on the first of ts's month: how far back to seed from."""
    day = dt.datetime.fromtimestamp(ts, tz=dt.UTC)
    return day.replace(day=1, hour=0, minute=0, second=0, microsecond=0).timestamp()


@dataclass(frozen=True)
class Reservation:
    """What one request holds until it ends: the counters it added its estimate to."""

    counters: tuple[Counter, ...]  # daily tokens, monthly tokens, daily nano-USD, monthly nano-USD


def _keys(tenant: str, day: str) -> tuple[str, str, str, str]:
    month = day[:7]
    base = f"budget:{{{tenant}}}"  # {tenant}: one Redis cluster slot per tenant
    return (f"{base}:tokens:{day}", f"{base}:tokens:{month}", f"{base}:nusd:{day}", f"{base}:nusd:{month}")


class Budgets:
    def __init__(
        self,
        limits: dict[str, Budget],
        counters: CounterStore,
        low_fraction: float = 0.8,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._limits = limits
        self._counters = counters
        self._low_fraction = low_fraction
        self._clock = clock

    @property
    def enabled(self) -> bool:
        return bool(self._limits)

    def limits_for(self, tenant: str) -> Budget | None:
        """The tenant's limits, else everyone's ("*"); None without any (asked once per request)."""
        if not self._limits:
            return None
        return self._limits.get(tenant) or self._limits.get(DEFAULT_TENANT_BUDGET)

    async def seed(self, spends: Iterable[TenantSpend]) -> None:
        """This month's spend from the ledger, for counters that do not exist yet."""
        month = utc_day(self._clock())[:7]
        totals: dict[tuple[str, float], int] = defaultdict(int)
        for spend in spends:
            if spend.day[:7] != month:
                continue
            day_tokens, month_tokens, day_cost, month_cost = _keys(spend.tenant, spend.day)
            totals[(day_tokens, _DAY_TTL_S)] += spend.tokens
            totals[(month_tokens, _MONTH_TTL_S)] += spend.tokens
            totals[(day_cost, _DAY_TTL_S)] += round(spend.cost_usd * NANO_USD)
            totals[(month_cost, _MONTH_TTL_S)] += round(spend.cost_usd * NANO_USD)
        for (key, ttl), value in totals.items():
            await self._counters.seed(key, value, ttl)

    async def reserve(self, tenant: str, tokens: int) -> Reservation | None:
        """Reserve this request's estimated tokens, or raise BudgetExceeded naming the limit it would pass."""
        limits = self.limits_for(tenant)
        if limits is None:
            return None
        day_tokens, month_tokens, day_cost, month_cost = _keys(tenant, utc_day(self._clock()))
        counters = (
            Counter(day_tokens, tokens, limits.daily_tokens, _DAY_TTL_S),
            Counter(month_tokens, tokens, limits.monthly_tokens, _MONTH_TTL_S),
            Counter(day_cost, 0, _nano(limits.daily_cost_usd), _DAY_TTL_S),
            Counter(month_cost, 0, _nano(limits.monthly_cost_usd), _MONTH_TTL_S),
        )
        result = await self._counters.try_add(counters[:2])
        if result.failed is not None:
            period = ("daily", "monthly")[result.failed]
            raise BudgetExceeded(
                f"tenant {tenant}: {period} token limit {counters[result.failed].limit} reached "
                f"(used {result.values[result.failed]}, this request needs about {tokens})",
                **self._lifts(period),
            )
        return Reservation(counters)

    async def reserve_cost(self, tenant: str, reservation: Reservation, cost_usd: float) -> Reservation:
        """Add the estimated cost, once the backend (and so the price) is known; BudgetExceeded if it would
        pass a cost limit (the tokens stay reserved until the request's end settles them)."""
        nano = round(cost_usd * NANO_USD)
        day_cost, month_cost = reservation.counters[2:]
        if not nano or (day_cost.limit is None and month_cost.limit is None):
            return reservation
        costs = (replace(day_cost, amount=nano), replace(month_cost, amount=nano))
        result = await self._counters.try_add(costs)
        if result.failed is not None:
            period = ("daily", "monthly")[result.failed]
            limit = (costs[result.failed].limit or 0) / NANO_USD
            raise BudgetExceeded(
                f"tenant {tenant}: {period} cost limit ${limit:g} reached "
                f"(used ${result.values[result.failed] / NANO_USD:.6f}, this request about ${cost_usd:.6f})",
                **self._lifts(period),
            )
        return Reservation((*reservation.counters[:2], *costs))

    def _lifts(self, period: str) -> dict[str, Any]:
        """RetryInfo: the limit lifts when its period starts over (00:00 UTC, or the 1st of the month)."""
        return {"retry_after_s": _seconds_to_reset(period, self._clock()), "metadata": {"period": period}}

    def settle(self, reservation: Reservation, tokens: int, cost_usd: float) -> None:
        """Replace the estimate with what the request used (nothing, for a cache hit or a failure)."""
        nano = round(cost_usd * NANO_USD)
        actual = (tokens, tokens, nano, nano)
        self._counters.adjust(
            [
                Counter(c.key, used - c.amount, None, c.ttl_s)
                for c, used in zip(reservation.counters, actual, strict=True)
            ]
        )

    async def running_low(self, tenant: str) -> bool:
        """More than low_fraction of any limit is spent or reserved: time to prefer cheaper backends."""
        limits = self.limits_for(tenant)
        if limits is None:
            return False
        values = await self._counters.read(_keys(tenant, utc_day(self._clock())))
        caps = (
            limits.daily_tokens,
            limits.monthly_tokens,
            _nano(limits.daily_cost_usd),
            _nano(limits.monthly_cost_usd),
        )
        return any(
            cap is not None and used > self._low_fraction * cap
            for used, cap in zip(values, caps, strict=True)
        )


def _nano(usd: float | None) -> int | None:
    return None if usd is None else round(usd * NANO_USD)
