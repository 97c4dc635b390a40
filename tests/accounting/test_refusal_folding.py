"""A tenant's refused Admin calls: the first few a minute recorded, the rest folded into one record a minute."""

from __future__ import annotations

from router.accounting.ledger.audit_records import AuditRecord
from router.accounting.refusal_folding import RefusalFolding
from tests.support.polling import wait_until


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def refused(tenant: str, method: str = "UpdateBackend") -> AuditRecord:
    return AuditRecord(0.0, "r1", tenant, method, "{}", "PERMISSION_DENIED", "not an admin")


async def test_each_minute_records_a_few_and_then_one_with_the_count_of_the_rest() -> None:
    clock = Clock()
    emitted: list[AuditRecord] = []
    folding = RefusalFolding(3, emitted.append, clock=clock)
    admitted = [
        folding.admit(refused("acme", "DrainWorker" if i % 2 else "UpdateBackend")) for i in range(50)
    ]
    assert admitted == [True] * 3 + [False] * 47
    assert emitted == []  # the minute has not ended
    clock.now += 60.0  # the next minute's first refusal closes the last one
    assert folding.admit(refused("acme"))
    assert len(emitted) == 1
    assert emitted[0].tenant == "acme"
    assert emitted[0].method == "DrainWorker"  # the last folded call stands for them
    assert emitted[0].message.startswith("not an admin (folded: 47 refused calls")
    assert "by method: DrainWorker 24, UpdateBackend 23" in emitted[0].message
    assert folding.refused["acme"] == 51
    assert folding.folded == 47


async def test_tenants_have_minutes_of_their_own() -> None:
    emitted: list[AuditRecord] = []
    folding = RefusalFolding(2, emitted.append, clock=Clock())
    for _ in range(10):
        folding.admit(refused("acme"))
    assert [folding.admit(refused("beta")) for _ in range(2)] == [True, True]
    folding.close()
    assert [(r.tenant, "folded: 8 refused calls" in r.message) for r in emitted] == [("acme", True)]


async def test_a_minute_without_folded_calls_adds_no_record() -> None:
    clock = Clock()
    emitted: list[AuditRecord] = []
    folding = RefusalFolding(2, emitted.append, clock=clock)
    for _ in range(2):
        folding.admit(refused("acme"))
    clock.now += 60.0
    assert folding.admit(refused("acme"))
    folding.close()
    assert emitted == []


async def test_a_minute_that_ends_quietly_still_records_its_folded_calls() -> None:
    """No later refusal closes it: its timer does, when the minute (here a short window) ends."""
    emitted: list[AuditRecord] = []
    folding = RefusalFolding(1, emitted.append, window_s=1.0)
    assert [folding.admit(refused("acme")) for _ in range(4)] == [True, False, False, False]
    await wait_until(lambda: len(emitted) == 1)
    assert "folded: 3 refused calls" in emitted[0].message
    assert folding.admit(refused("acme"))  # a new minute
