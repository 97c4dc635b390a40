"""A budget refusal says exactly when its limit lifts: 00:00 UTC for a daily limit, the 1st for a monthly one,
computed from the budgets' clock (a controllable one here), whatever the local time zone."""

from __future__ import annotations

import datetime as dt

import pytest

from core.errors import BudgetExceeded
from router.accounting.budgets import Budgets
from router.accounting.counters.memory import MemoryCounters
from router.config.accounting import Budget


def at(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0, us: int = 0
) -> float:
    return dt.datetime(year, month, day, hour, minute, second, us, tzinfo=dt.UTC).timestamp()


async def refusal(budget: Budget, now: float, tokens: int = 10) -> BudgetExceeded:
    budgets = Budgets({"acme": budget}, MemoryCounters(clock=lambda: now), clock=lambda: now)
    with pytest.raises(BudgetExceeded) as refused:
        await budgets.reserve("acme", tokens)
    return refused.value


@pytest.mark.parametrize(
    ("now", "lifts_in_s"),
    [
        (at(2026, 12, 3, 23, 59, 30), 30.0),  # half a minute before midnight UTC
        (at(2026, 12, 3, 0, 0, 0), 86_400.0),  # at midnight: the whole next day
        (at(2026, 12, 31, 12, 0, 0), 43_200.0),  # the last day of the year: midnight is in the next one
        (at(2026, 12, 3, 13, 45, 10, 500_000), 10 * 3600 + 14 * 60 + 49.5),
    ],
)
async def test_a_daily_limit_lifts_at_the_next_midnight_utc(now: float, lifts_in_s: float) -> None:
    error = await refusal(Budget(daily_tokens=5), now)
    assert error.retry_after_s == pytest.approx(lifts_in_s, abs=1e-6)
    assert error.metadata == {"period": "daily"}


@pytest.mark.parametrize(
    ("now", "lifts_in_s"),
    [
        (at(2026, 12, 31, 23, 0, 0), 3600.0),  # December: the next month is January of the next year
        (at(2027, 2, 28, 0, 0, 0), 86_400.0),  # 2027 is not a leap year
        (at(2028, 2, 28, 0, 0, 0), 2 * 86_400.0),  # 2028 is
        (at(2026, 12, 1, 0, 0, 0), 31 * 86_400.0),
    ],
)
async def test_a_monthly_limit_lifts_on_the_first_of_the_next_month(now: float, lifts_in_s: float) -> None:
    error = await refusal(Budget(monthly_tokens=5), now)
    assert error.retry_after_s == pytest.approx(lifts_in_s, abs=1e-6)
    assert error.metadata == {"period": "monthly"}
