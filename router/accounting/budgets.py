"""Per-tenant daily and monthly limits on tokens and cost, checked before a request is routed.

Spend is kept in memory per router: seeded from the ledger at start, then added to as each request
ends. Days and months are UTC. A request is refused when what was spent plus its own estimate would pass
a limit, so the request that would exceed it is the one refused. Cache hits cost nothing and count for
nothing. With several routers sharing a PostgreSQL ledger, each sees the others' spend only as of its
own start: limits are then enforced per router plus what was stored at start.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from core.errors import BudgetExceeded
from router.accounting.ledger.records import TenantSpend
from router.config.accounting import DEFAULT_TENANT_BUDGET, Budget


@dataclass
class _Spend:
    tokens: int = 0
    cost_usd: float = 0.0


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


class Budgets:
    def __init__(
        self,
        limits: dict[str, Budget],
        low_fraction: float = 0.8,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._limits = limits
        self._low_fraction = low_fraction
        self._clock = clock
        self._spend: dict[str, dict[str, _Spend]] = {}  # tenant -> UTC day -> spend

    @property
    def enabled(self) -> bool:
        return bool(self._limits)

    def limits_for(self, tenant: str) -> Budget | None:
        return self._limits.get(tenant) or self._limits.get(DEFAULT_TENANT_BUDGET)

    def seed(self, spends: Iterable[TenantSpend]) -> None:
        for spend in spends:
            day = self._spend.setdefault(spend.tenant, {}).setdefault(spend.day, _Spend())
            day.tokens += spend.tokens
            day.cost_usd += spend.cost_usd

    def record(self, tenant: str, tokens: int, cost_usd: float, ts: float | None = None) -> None:
        days = self._spend.setdefault(tenant, {})
        today = utc_day(self._clock() if ts is None else ts)
        if today not in days:  # a new day: forget the months that no longer count
            for day in [d for d in days if d[:7] != today[:7]]:
                del days[day]
        spend = days.setdefault(today, _Spend())
        spend.tokens += tokens
        spend.cost_usd += cost_usd

    def used(self, tenant: str) -> tuple[_Spend, _Spend]:
        """(today, this month) for the tenant."""
        today = utc_day(self._clock())
        days = self._spend.get(tenant, {})
        month = _Spend()
        for day, spend in days.items():
            if day[:7] == today[:7]:
                month.tokens += spend.tokens
                month.cost_usd += spend.cost_usd
        return days.get(today, _Spend()), month

    def check(self, tenant: str, tokens: int, cost_usd: float) -> None:
        """Raise BudgetExceeded, naming the limit, if this request's estimate would pass one."""
        limits = self.limits_for(tenant)
        if limits is None:
            return
        daily, monthly = self.used(tenant)
        for period, spent, token_limit, cost_limit in (
            ("daily", daily, limits.daily_tokens, limits.daily_cost_usd),
            ("monthly", monthly, limits.monthly_tokens, limits.monthly_cost_usd),
        ):
            # RetryInfo: the limit lifts when its period starts over (00:00 UTC, or the 1st of the month).
            wait, facts = _seconds_to_reset(period, self._clock()), {"period": period}
            if token_limit is not None and spent.tokens + tokens > token_limit:
                raise BudgetExceeded(
                    f"tenant {tenant}: {period} token limit {token_limit} reached "
                    f"(used {spent.tokens}, this request needs about {tokens})",
                    retry_after_s=wait,
                    metadata=facts,
                )
            if cost_limit is not None and spent.cost_usd + cost_usd > cost_limit:
                raise BudgetExceeded(
                    f"tenant {tenant}: {period} cost limit ${cost_limit:g} reached "
                    f"(used ${spent.cost_usd:.6f}, this request about ${cost_usd:.6f})",
                    retry_after_s=wait,
                    metadata=facts,
                )

    def running_low(self, tenant: str) -> bool:
        """More than low_fraction of any limit is used: time to prefer cheaper backends."""
        limits = self.limits_for(tenant)
        if limits is None:
            return False
        daily, monthly = self.used(tenant)
        pairs = (
            (daily.tokens, limits.daily_tokens),
            (monthly.tokens, limits.monthly_tokens),
            (daily.cost_usd, limits.daily_cost_usd),
            (monthly.cost_usd, limits.monthly_cost_usd),
        )
        return any(limit is not None and used > self._low_fraction * limit for used, limit in pairs)
