"""Budgets: the request that would pass a limit is refused, naming it; spend rolls over by UTC day and month."""

from __future__ import annotations

import datetime as dt

import pytest

from core.errors import BudgetExceeded
from router.accounting.budgets import Budgets, month_start
from router.accounting.ledger.records import TenantSpend
from router.config.accounting import Budget

NOON = dt.datetime(2025, 3, 14, 12, tzinfo=dt.UTC).timestamp()


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_the_request_that_would_exceed_the_daily_tokens_is_refused() -> None:
    budgets = Budgets({"acme": Budget(daily_tokens=100)}, clock=Clock(NOON))
    budgets.record("acme", 90, 0.0, NOON)
    budgets.check("acme", 10, 0.0)  # exactly at the limit is allowed
    with pytest.raises(BudgetExceeded) as error:
        budgets.check("acme", 11, 0.0)
    assert (
        error.value.message
        == "tenant acme: daily token limit 100 reached (used 90, this request needs about 11)"
    )


def test_cost_limits_and_the_default_tenant_budget() -> None:
    budgets = Budgets({"*": Budget(monthly_cost_usd=1.0)}, clock=Clock(NOON))
    budgets.record("beta", 10, 0.75, NOON)
    budgets.check("beta", 0, 0.25)
    with pytest.raises(BudgetExceeded, match=r"tenant beta: monthly cost limit \$1 reached"):
        budgets.check("beta", 0, 0.3)
    budgets.check("gamma", 0, 0.9)  # spend is per tenant


def test_days_roll_over_and_months_accumulate() -> None:
    clock = Clock(NOON)
    budgets = Budgets({"acme": Budget(daily_tokens=100, monthly_tokens=150)}, clock=clock)
    budgets.record("acme", 100, 0.0, NOON)
    with pytest.raises(BudgetExceeded, match="daily"):
        budgets.check("acme", 1, 0.0)
    clock.now = NOON + 86_400
    budgets.check("acme", 50, 0.0)
    with pytest.raises(BudgetExceeded, match="monthly token limit 150"):
        budgets.check("acme", 51, 0.0)
    clock.now = dt.datetime(2025, 4, 1, 0, 0, 1, tzinfo=dt.UTC).timestamp()
    budgets.check("acme", 100, 0.0)  # a new month


def test_seeded_spend_counts_and_low_budget_is_noticed() -> None:
    budgets = Budgets({"acme": Budget(daily_tokens=100)}, low_fraction=0.8, clock=Clock(NOON))
    assert not budgets.running_low("acme")
    budgets.seed([TenantSpend("acme", "2025-03-14", 81, 0.0), TenantSpend("acme", "2025-03-13", 99, 0.0)])
    assert budgets.running_low("acme")
    assert budgets.used("acme")[0].tokens == 81
    assert not budgets.running_low("nobody")


def test_month_start_is_utc_midnight_on_the_first() -> None:
    assert month_start(NOON) == dt.datetime(2025, 3, 1, tzinfo=dt.UTC).timestamp()
