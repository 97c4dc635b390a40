"""Table-driven tests of the local-first order (router.routing.spill) and the TTFT model it reads."""

from __future__ import annotations

import time

import pytest
from modelyard.v1 import inference_pb2 as pb

from core.errors import NoBackendAvailable
from router.backends.base import Backend, ModelSpec
from router.backends.factory import create_backend
from router.backends.worker import WorkerBackend
from router.config.settings import ProviderConfig
from router.routing.load_view import ahead
from router.routing.scoring.base import Candidate
from router.routing.slot_clock import Progress, Running, start_in
from router.routing.spill import Policy, order
from router.routing.stats import BackendStats
from router.routing.ttft_model import Observed, TtftModel

MODEL = ModelSpec("m", frozenset({pb.CAPABILITY_CHAT}))


def worker(name: str, in_flight: int = 0) -> WorkerBackend:
    backend = WorkerBackend(id=name, kind="worker", models=[MODEL], max_concurrency=4, max_queue=16)
    backend.in_flight = in_flight
    return backend


def cloud(name: str) -> Backend:
    return create_backend(
        ProviderConfig(name=name, kind="openai_compatible", base_url="http://127.0.0.1:9/v1")
    )


def candidates(*specs: tuple[Backend, float]) -> list[Candidate]:
    return [Candidate(b, "m", BackendStats(), cost, 0) for b, cost in specs]


PREDICTED = {"idle": 30.0, "queued": 200.0, "busy": 900.0, "cheap": 250.0, "dear": 200.0, "slow": 700.0}


def predict(c: Candidate) -> float | None:
    return PREDICTED.get(c.backend.id)


@pytest.mark.parametrize(
    ("specs", "policy", "first", "spilled"),
    [
        # Workers cost nothing: an idle one that meets the target goes first, however fast the clouds are.
        ([("dear", 0.02), ("idle", 0.0)], Policy(ttft_slo_ms=300), "idle", False),
        # Two workers meet it: the one that can start it now, whatever the scheduler's ranking (a wait
        # behind a queue varies most).
        ([("queued", 0.0), ("idle", 0.0)], Policy(ttft_slo_ms=300), "idle", False),
        # A saturated worker misses it: the cheapest cloud that meets it, not the fastest.
        ([("busy", 0.0), ("dear", 0.02), ("cheap", 0.01)], Policy(ttft_slo_ms=300), "cheap", True),
        # None meets it: the best prediction.
        ([("busy", 0.0), ("slow", 0.01)], Policy(ttft_slo_ms=100), "slow", True),
        # local_only: the busy worker rather than any cloud.
        ([("dear", 0.02), ("busy", 0.0)], Policy(ttft_slo_ms=300, local_only=True), "busy", False),
        # No target and no preference: the scheduler's ranking stands.
        ([("dear", 0.02), ("idle", 0.0)], Policy(), "dear", False),
        # prefer local: an idle worker before a cloud ranked above it.
        ([("dear", 0.02), ("idle", 0.0)], Policy(prefer_local=True), "idle", False),
        # prefer local, but the worker has requests queued ahead: the ranking stands.
        ([("dear", 0.02), ("busy", 0.0)], Policy(prefer_local=True), "dear", False),
    ],
)
def test_order(specs: list[tuple[str, float]], policy: Policy, first: str, spilled: bool) -> None:
    backends = {
        "idle": worker("idle"),
        "queued": worker("queued", in_flight=4),
        "busy": worker("busy", in_flight=6),
    }
    ranked = candidates(*((backends.get(name) or cloud(name), cost) for name, cost in specs))
    ordered, reason = order(ranked, policy, predict, ahead)
    assert ordered[0].backend.id == first
    assert sorted(c.backend.id for c in ordered) == sorted(
        name for name, _ in specs if not policy.local_only or name in backends
    )
    assert bool(reason) == spilled
    if spilled and policy.ttft_slo_ms is not None:
        assert reason == f"predicted local TTFT 900 ms > target {policy.ttft_slo_ms:.0f} ms"


def test_local_only_with_no_worker_is_refused_naming_the_rule() -> None:
    with pytest.raises(NoBackendAvailable) as raised:
        order(candidates((cloud("dear"), 0.02)), Policy(local_only=True), predict, ahead)
    assert raised.value.reason == "LOCAL_ONLY"
    assert "local_only" in raised.value.message


def test_the_model_fits_prefill_and_decode_and_follows_a_slowdown() -> None:
    model = TtftModel()
    backend = worker("w")
    assert model.predict(backend) is None  # not measured yet
    # 20 ms to the first token, then 19 more tokens 10 ms apart; answers use half their cap.
    for _ in range(10):
        model.observe("w", Observed(20.0, 210.0, tokens=20, max_tokens=40))
    assert model.base_ms("w") == pytest.approx(20.0)
    assert model.predict(backend) == pytest.approx(20.0)  # a slot is free
    for _ in range(10):
        model.observe("w", Observed(200.0, 2100.0, tokens=20, max_tokens=40))
    slowed = model.predict(backend)
    assert slowed is not None
    assert slowed > 190.0


def running(now: float, *, started_ago_ms: float | None, sent_ago_ms: float = 0.0, cap: int = 40) -> Running:
    r = Running("w", now - max(sent_ago_ms, started_ago_ms or 0.0) / 1000, cap)
    if started_ago_ms is not None:
        r.first_at = now - started_ago_ms / 1000
    return r


def fitted() -> tuple[TtftModel, WorkerBackend]:
    model = TtftModel()
    for _ in range(10):  # a request with a cap of 40 holds a slot 20 + 19 * 10 = 210 ms
        model.observe("w", Observed(20.0, 210.0, tokens=20, max_tokens=40))
    return model, worker("w")


def test_the_wait_is_when_the_first_running_request_ends_not_how_many_there_are() -> None:
    """Four running requests (every slot) that are nearly done free a slot sooner than four that just began:
    the count ahead is the same, the predicted wait is not."""
    model, backend = fitted()
    now = 100.0
    nearly_done = [running(now, started_ago_ms=180.0) for _ in range(4)]  # 210 - (180 + 20) = 10 ms left
    just_begun = [running(now, started_ago_ms=0.0) for _ in range(4)]  # 190 ms left
    assert model.wait_ms(backend, nearly_done, 0, now) == pytest.approx(10.0)
    assert model.wait_ms(backend, just_begun, 0, now) == pytest.approx(190.0)
    mixed = [*just_begun[:3], nearly_done[0]]
    assert model.predict(backend, mixed, 0, now) == pytest.approx(20.0 + 10.0)
    # A request already queued there takes the first slot that frees; the new one waits for the next.
    queued = running(now, started_ago_ms=None, sent_ago_ms=5.0)
    assert model.wait_ms(backend, [*mixed, queued], 0, now) == pytest.approx(190.0)
    # One admitted and on its way counts the same: a whole service (10 + 210 frees after the 190 ms ones).
    assert model.wait_ms(backend, nearly_done, 1, now) == pytest.approx(10.0)
    assert model.wait_ms(backend, nearly_done, 4, now) == pytest.approx(10.0 + 210.0)
    # With a slot free nothing waits, and the wait factor weighs only the wait.
    assert model.wait_ms(backend, nearly_done[:3], 0, now) == 0.0
    assert model.predict(backend, just_begun, 0, now, wait_factor=2.0) == pytest.approx(20.0 + 2 * 190.0)


def test_longer_answers_hold_their_slots_longer() -> None:
    """The cap of each running request sets how long it holds its slot (the share of its cap an answer
    uses, fit online): four requests that began together, one with a small cap, free a slot at its end."""
    model, backend = fitted()
    now = 50.0
    caps = [running(now, started_ago_ms=0.0, cap=cap) for cap in (400, 400, 400, 4)]
    # cap 4 -> 2 tokens -> 20 + 10 = 30 ms from its slot, 20 of them gone
    assert model.wait_ms(backend, caps, 0, now) == pytest.approx(10.0)


def test_waits_longer_than_predicted_correct_the_prediction_upwards_only() -> None:
    model, backend = fitted()
    now = 10.0
    full = [running(now, started_ago_ms=0.0) for _ in range(4)]
    assert model.wait_ms(backend, full, 0, now) == pytest.approx(190.0)
    for _ in range(20):  # each waited 240 ms where the fit says 190 (a busy machine's lag, say)
        predicted = model.wait_ms(backend, full, 0, now)
        model.observe("w", Observed(20.0 + 240.0, None, ahead=1, predicted_wait_ms=predicted))
    assert model.wait_ms(backend, full, 0, now) == pytest.approx(240.0, abs=5.0)
    # When the slot itself frees (admission's dispatch lead) is the clock alone: the lag is what it makes up.
    assert model.wait_ms(backend, full, 0, now, corrected=False) == pytest.approx(190.0)
    # Answers that did not wait let it fade: a high bias would keep requests from waiting there, and so
    # itself from being corrected.
    for _ in range(20):
        model.observe("w", Observed(20.0, 210.0, tokens=20, max_tokens=40))
    assert model.wait_ms(backend, full, 0, now) == pytest.approx(190.0, abs=1.0)
    shorter = TtftModel()
    for _ in range(10):
        shorter.observe("w", Observed(20.0, 210.0, tokens=20, max_tokens=40))
    for _ in range(20):  # shorter than predicted: the prediction stays where the fit puts it
        predicted = shorter.wait_ms(backend, full, 0, now)
        shorter.observe("w", Observed(20.0 + 100.0, None, ahead=1, predicted_wait_ms=predicted))
    assert shorter.wait_ms(backend, full, 0, now) == pytest.approx(190.0)


def test_start_in_plays_the_slots_forward() -> None:
    assert start_in(2, [], []) == 0.0
    assert start_in(2, [30.0, 10.0], []) == 10.0
    assert start_in(2, [30.0, 10.0], [100.0]) == 30.0  # the queued one took the slot at 10
    assert start_in(1, [30.0, 10.0], []) == 40.0  # more running than slots: the extra one waits too


def test_progress_forgets_a_backend_and_the_model_its_fit() -> None:
    progress = Progress()
    r = progress.placed("w", 1.0, 10)
    progress.placed("v", 1.0, 10)
    assert list(progress.on("w")) == [r]
    progress.forget("w")
    assert not progress.on("w")
    progress.ended(r)  # ending a forgotten one is harmless
    assert progress.backends() == 1
    model, _ = fitted()
    assert model.known() == 1
    model.forget("w")
    assert model.known() == 0


def test_an_idle_backend_with_an_old_fit_is_tried_again() -> None:
    """A slow spell left the fit high: once nothing has been seen there for stale_after_s, an idle backend is
    unknown again (placement sends it a request, which measures it); a busy one keeps its prediction."""
    model = TtftModel()
    for _ in range(10):
        model.observe("w", Observed(900.0, 1100.0, tokens=20, max_tokens=40))
    backend = worker("w")
    now = time.monotonic()
    assert model.predict(backend, (), 0, now, stale_after_s=2.0) == pytest.approx(900.0)
    later = now + 3.0
    assert model.predict(backend, (), 0, later, stale_after_s=2.0) is None
    assert model.predict(backend, (), 0, later) == pytest.approx(900.0)  # no staleness asked
    full = [running(later, started_ago_ms=0.0) for _ in range(4)]
    assert model.predict(backend, full, 0, later, stale_after_s=2.0) is not None
