"""Budgets: a request reserves its estimate, the one that would pass a limit is refused naming it, a
reservation settles to what was used; spend rolls over by UTC day and month."""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest

from core.errors import BudgetExceeded
from router.accounting.budgets import Budgets, month_start
from router.accounting.counters.memory import MemoryCounters
from router.accounting.ledger.records import TenantSpend
from router.config.accounting import Budget

NOON = dt.datetime(2025, 3, 14, 12, tzinfo=dt.UTC).timestamp()


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def budgets_of(limits: dict[str, Budget], clock: Clock, low_fraction: float = 0.8) -> Budgets:
    return Budgets(limits, MemoryCounters(), low_fraction, clock=clock)


async def spend(budgets: Budgets, tenant: str, tokens: int, cost_usd: float = 0.0) -> None:
    reservation = await budgets.reserve(tenant, tokens)
    assert reservation is not None
    reservation = await budgets.reserve_cost(tenant, reservation, cost_usd)
    budgets.settle(reservation, tokens, cost_usd)


async def test_the_request_that_would_exceed_the_daily_tokens_is_refused() -> None:
    budgets = budgets_of({"acme": Budget(daily_tokens=100)}, Clock(NOON))
    await spend(budgets, "acme", 90)
    await spend(budgets, "acme", 10)  # exactly at the limit is allowed
    with pytest.raises(BudgetExceeded) as error:
        await budgets.reserve("acme", 1)
    assert (
        error.value.message
        == "tenant acme: daily token limit 100 reached (used 100, this request needs about 1)"
    )


async def test_parallel_reservations_cannot_all_pass_one_check() -> None:
    """The finding: 20 parallel requests of a 50-token budget were all admitted (360 tokens)."""
    budgets = budgets_of({"acme": Budget(daily_tokens=50)}, Clock(NOON))
    results = await asyncio.gather(*(budgets.reserve("acme", 13) for _ in range(20)), return_exceptions=True)
    admitted = [r for r in results if not isinstance(r, BaseException)]
    assert len(admitted) == 3  # 39 reserved; a fourth would make 52
    assert all(isinstance(r, BudgetExceeded) for r in results if isinstance(r, BaseException))


async def test_a_reservation_settles_to_what_was_used() -> None:
    budgets = budgets_of({"acme": Budget(daily_tokens=100)}, Clock(NOON))
    held = await budgets.reserve("acme", 80)
    assert held is not None
    with pytest.raises(BudgetExceeded, match=r"used 80, this request needs about 30"):
        await budgets.reserve("acme", 30)
    budgets.settle(held, 20, 0.0)  # a short answer: 60 tokens come back
    await spend(budgets, "acme", 30)


async def test_cost_limits_and_the_default_tenant_budget() -> None:
    budgets = budgets_of({"*": Budget(monthly_cost_usd=1.0)}, Clock(NOON))
    await spend(budgets, "beta", 10, 0.75)
    await spend(budgets, "beta", 0, 0.25)
    held = await budgets.reserve("beta", 0)
    assert held is not None
    with pytest.raises(
        BudgetExceeded, match=r"tenant beta: monthly cost limit \$1 reached \(used \$1\.000000"
    ):
        await budgets.reserve_cost("beta", held, 0.01)
    await spend(budgets, "gamma", 0, 0.9)  # spend is per tenant
    assert await budgets.reserve("nobody-limited", 10**9) is not None  # "*" applies to everyone


async def test_days_roll_over_and_months_accumulate() -> None:
    clock = Clock(NOON)
    budgets = budgets_of({"acme": Budget(daily_tokens=100, monthly_tokens=150)}, clock)
    await spend(budgets, "acme", 100)
    with pytest.raises(BudgetExceeded, match="daily"):
        await budgets.reserve("acme", 1)
    clock.now = NOON + 86_400
    await spend(budgets, "acme", 50)
    with pytest.raises(BudgetExceeded, match="monthly token limit 150"):
        await budgets.reserve("acme", 1)
    clock.now = dt.datetime(2025, 4, 1, 0, 0, 1, tzinfo=dt.UTC).timestamp()
    await spend(budgets, "acme", 100)  # a new month


async def test_seeded_spend_counts_and_low_budget_is_noticed() -> None:
    budgets = budgets_of({"acme": Budget(daily_tokens=100)}, Clock(NOON), low_fraction=0.8)
    assert not await budgets.running_low("acme")
    await budgets.seed(
        [TenantSpend("acme", "2025-03-14", 81, 0.0), TenantSpend("acme", "2025-03-13", 99, 0.0)]
    )
    assert await budgets.running_low("acme")
    with pytest.raises(BudgetExceeded, match="used 81"):
        await budgets.reserve("acme", 20)
    assert not await budgets.running_low("nobody")


def test_month_start_is_utc_midnight_on_the_first() -> None:
    assert month_start(NOON) == dt.datetime(2025, 3, 1, tzinfo=dt.UTC).timestamp()
