"""What a worker sends on its Register stream: its load when it changed, a heartbeat while it stays the same,
and a full report every interval to a router that knows no heartbeats."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from modelyard.v1 import backend_pb2
from modelyard.worker.v1 import worker_pb2

from gpu_worker.load_reports import ReportPolicy
from gpu_worker.registration import RegistrationStream
from tests.support.polling import wait_until
from tests.worker.registry_double import RegistryServer, running_registry

IDLE = backend_pb2.LoadReport(running=0, waiting=0)
GPU = backend_pb2.GpuInfo(index=0, name="H100", memory_total_bytes=80 << 30)


def kind(message: worker_pb2.RegisterRequest | None) -> str:
    return "" if message is None else message.WhichOneof("msg") or ""


def test_an_unchanged_load_is_sent_once_then_heartbeats_at_the_heartbeat_interval() -> None:
    policy = ReportPolicy(interval_s=1.0, heartbeat_s=3.0)
    sent = [kind(policy.next(IDLE, now=float(tick), force=tick == 0)) for tick in range(10)]
    assert sent == ["load", "", "", "heartbeat", "", "", "heartbeat", "", "", "heartbeat"]


def test_a_change_the_router_routes_by_is_sent_at_the_next_interval() -> None:
    policy = ReportPolicy(interval_s=1.0, heartbeat_s=30.0)
    assert kind(policy.next(IDLE, 0.0, force=True)) == "load"
    for field, value in (("running", 2), ("waiting", 1), ("draining", True), ("kv_cache_usage", 0.5)):
        load = backend_pb2.LoadReport()
        setattr(load, field, value)
        message = policy.next(load, 1.0)
        assert kind(message) == "load", field
        assert message is not None
        assert getattr(message.load, field) == value
        assert policy.next(load, 2.0) is None  # then quiet again
        assert kind(policy.next(IDLE, 3.0)) == "load"


def test_shown_only_figures_ride_along_at_the_heartbeat_interval() -> None:
    """GPU figures and the token rate move all the time on a real GPU: they must not cost a report a second."""
    policy = ReportPolicy(interval_s=1.0, heartbeat_s=3.0)
    policy.next(IDLE, 0.0, force=True)
    sent = []
    for tick in range(1, 7):
        gpu = backend_pb2.GpuInfo(index=0, memory_used_bytes=tick << 20, utilization=tick / 100)
        load = backend_pb2.LoadReport(tokens_per_second=float(tick), gpus=[GPU, gpu])
        sent.append(kind(policy.next(load, float(tick))))
    assert sent == ["", "", "load", "", "", "load"]


def test_forced_reports_and_routers_without_heartbeats_get_the_full_report() -> None:
    policy = ReportPolicy(interval_s=1.0, heartbeat_s=3.0)
    assert [kind(policy.next(IDLE, 0.0, force=True)) for _ in range(3)] == ["load"] * 3
    legacy = ReportPolicy(interval_s=1.0, heartbeat_s=0.0)
    assert [kind(legacy.next(IDLE, float(t))) for t in range(4)] == ["load"] * 4


@asynccontextmanager
async def stream(
    router: RegistryServer, load: list[backend_pb2.LoadReport]
) -> AsyncIterator[RegistrationStream]:
    """The worker's real registration stream; its load is whatever `load[0]` holds."""
    hello = worker_pb2.WorkerHello(worker_id="w1", address="127.0.0.1:9")
    registration = RegistrationStream(router.address, lambda: hello, lambda: load[0], lambda reason: None)
    registration.start()
    try:
        yield registration
    finally:
        await registration.stop()


async def test_a_worker_with_steady_load_sends_heartbeats_and_reports_a_change() -> None:
    load = [IDLE]
    # Heartbeats every 50 ms; a change must not wait for one, so the check interval is the same here and the
    # second part below uses a heartbeat interval far longer than the test.
    async with (
        running_registry(report_interval_ms=20, heartbeat_interval_ms=50) as router,
        stream(router, load),
    ):
        messages = router.registry.messages
        await wait_until(lambda: messages.count("heartbeat") >= 5, message="no heartbeats")
        assert messages[0] == "load"  # the first after the acknowledgement is the full report
        assert messages.count("load") == 1  # nothing changed since
        load[0] = backend_pb2.LoadReport(running=3)
        await wait_until(lambda: bool(router.registry.loads) and router.registry.loads[-1].running == 3)


async def test_a_load_change_is_reported_without_waiting_for_a_heartbeat() -> None:
    load = [IDLE]
    async with (
        running_registry(report_interval_ms=20, heartbeat_interval_ms=600_000) as router,
        stream(router, load),
    ):
        await wait_until(lambda: len(router.registry.loads) == 1)
        load[0] = backend_pb2.LoadReport(running=1, waiting=2)
        await wait_until(lambda: len(router.registry.loads) == 2, message="the change was not reported")
        assert (router.registry.loads[-1].running, router.registry.loads[-1].waiting) == (1, 2)
        assert "heartbeat" not in router.registry.messages


async def test_a_router_without_heartbeats_gets_a_load_report_every_interval() -> None:
    async with running_registry(report_interval_ms=20) as router, stream(router, [IDLE]):
        await wait_until(lambda: len(router.registry.loads) >= 5)
        assert set(router.registry.messages) == {"load"}
