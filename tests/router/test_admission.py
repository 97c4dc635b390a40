"""The admission queue on a real router, with tenants and workers of our own of fixed capacity.

Each worker runs one request at a time and queues none; a "blocker" request holds that slot until the test
lets it go, so the requests sent meanwhile wait in the router's queue and the order in which the worker then
receives them is the order the queue dispatched them in.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, cast

import grpc
import pytest
from modelyard.v1 import inference_pb2 as pb
from modelyard.v1 import router_pb2, router_pb2_grpc
from modelyard_client.cli import main as cli

from core import wire
from router.accounting.auth import hash_key
from router.config.accounting import ApiKey
from router.config.admission import AdmissionConfig, TenantAdmission
from router.config.settings import ProviderConfig, RouterConfig
from router.server import RouterServer
from tests.support.echo_worker import EchoWorker, Faults
from tests.support.fake_http import Fault
from tests.support.fake_openai import FakeOpenAI
from tests.support.polling import wait_until
from tests.support.pool import Pool, running_pool
from tests.support.rich_errors import details

KEYS = {"flood": "flood-key", "quiet": "quiet-key", "heavy": "heavy-key", "etl": "etl-key"}


@dataclass
class RecordingWorker(EchoWorker):
    """An echo worker that notes which request it received, in order (the first word of the text)."""

    received: list[str] = field(default_factory=list)

    async def Chat(self, request: pb.ChatRequest, context: Any) -> AsyncIterator[pb.ChatResponse]:
        self.received.append(request.messages[-1].content[0].text.split()[0])
        async for response in super().Chat(request, context):
            yield response


def chat(text: str, **routing: Any) -> pb.ChatRequest:
    return pb.ChatRequest(
        model="echo",
        messages=[pb.Message(role=pb.ROLE_USER, content=[pb.ContentPart(text=text)])],
        routing=pb.RoutingHints(**routing),
    )


def auth(tenant: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {KEYS[tenant]}"),)


@pytest.fixture
async def pool() -> AsyncIterator[Pool]:
    keys = [
        ApiKey("flood", hash_key(KEYS["flood"])),
        ApiKey("quiet", hash_key(KEYS["quiet"]), admin=True),
        ApiKey("heavy", hash_key(KEYS["heavy"])),
        ApiKey("etl", hash_key(KEYS["etl"]), priority="batch"),
    ]
    admission = AdmissionConfig(
        enabled=True,
        max_queued_per_tenant=64,
        tenants={"heavy": TenantAdmission(weight=3.0), "quiet": TenantAdmission(max_queued=2)},
    )
    config = RouterConfig(
        listen="127.0.0.1:0", router_id="admit", report_interval_ms=100, keys=keys, admission=admission
    )
    worker = RecordingWorker("w1", max_concurrency=1, faults=Faults(hold=asyncio.Event()))
    async with running_pool(config, worker) as started:
        yield started


@pytest.fixture
def router(pool: Pool) -> RouterServer:
    return pool.router


@pytest.fixture
def worker(pool: Pool) -> RecordingWorker:
    return cast(RecordingWorker, pool.workers["w1"])


class Scene:
    """A blocker holding the worker's one slot, and requests sent while it does."""

    def __init__(
        self, router: RouterServer, stub: router_pb2_grpc.RouterServiceStub, worker: RecordingWorker
    ):
        self.router = router
        self.stub = stub
        self.worker = worker
        self.calls: list[asyncio.Task[list[pb.ChatResponse]]] = []

    @property
    def queue(self) -> Any:
        return self.router.pipeline.placement.queue

    async def block(self) -> Any:
        blocker = self.stub.Chat(chat("blocker holds the slot"), metadata=auth("flood"))
        await blocker.read()  # the one slot is taken until the worker's hold is set
        return blocker

    async def send(self, tenant: str, text: str, **routing: Any) -> None:
        """Send a request and wait until the queue holds it."""
        waiting = self.queue.waiting

        async def call() -> list[pb.ChatResponse]:
            return [r async for r in self.stub.Chat(chat(text + " x", **routing), metadata=auth(tenant))]

        self.calls.append(asyncio.create_task(call()))
        await wait_until(lambda: self.queue.waiting == waiting + 1)

    async def release(self) -> list[str]:
        """Let every request through; the order the worker received them in, blocker left out."""
        assert self.worker.faults.hold is not None
        self.worker.faults.hold.set()
        await asyncio.gather(*self.calls)
        return self.worker.received[1:]


@pytest.fixture
def scene(pool: Pool, worker: RecordingWorker) -> Scene:
    return Scene(pool.router, pool.stub, worker)


async def test_quiet_tenant_goes_ahead_of_a_flood(scene: Scene) -> None:
    await scene.block()
    for i in range(10):
        await scene.send("flood", f"flood{i}")
    await scene.send("quiet", "quiet")
    order = await scene.release()
    # Fair queuing: the quiet tenant's one request goes out at the next free slot but one at most,
    # however deep the flood's backlog (first come first served would have put it 11th).
    assert order.index("quiet") <= 1, order
    assert [o for o in order if o != "quiet"] == [f"flood{i}" for i in range(10)]


async def test_weights_share_dispatch(scene: Scene) -> None:
    await scene.block()
    for i in range(4):
        await scene.send("flood", f"flood{i}")
    for i in range(4):
        await scene.send("heavy", f"heavy{i}")
    order = await scene.release()
    # heavy has weight 3: three of its requests for each of flood's while both wait, though it came later.
    assert order[:2] == ["heavy0", "heavy1"], order
    assert order[-3:] == ["flood1", "flood2", "flood3"], order
    assert sum(o.startswith("heavy") for o in order[:4]) == 3, order


async def test_priorities_go_first(scene: Scene) -> None:
    await scene.block()
    await scene.send("etl", "batch0")  # the etl key's default band is batch
    await scene.send("flood", "standard0")
    await scene.send("etl", "interactive0", priority=pb.PRIORITY_INTERACTIVE)
    await scene.send("flood", "batch1", priority=pb.PRIORITY_BATCH)
    order = await scene.release()
    assert order == ["interactive0", "standard0", "batch0", "batch1"]


async def test_a_request_that_cannot_start_before_its_deadline_is_refused_at_once(
    scene: Scene, worker: RecordingWorker
) -> None:
    worker.faults.delay_s = 0.3  # each answer holds the slot about 0.6 s: the queue learns it
    assert worker.faults.hold is not None
    worker.faults.hold.set()
    [_ async for _ in scene.stub.Chat(chat("measure me"), metadata=auth("flood"))]
    worker.faults.hold.clear()
    await scene.block()
    for i in range(5):
        await scene.send("flood", f"flood{i}")
    call = scene.stub.Chat(chat("hurry up"), metadata=auth("quiet"), timeout=1.0)
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await call.read()
    # RESOURCE_EXHAUSTED from the router, not DEADLINE_EXCEEDED: it was not held until its deadline passed.
    assert raised.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    found = details(raised.value)
    assert found.info.reason == "ADMISSION_DEADLINE"
    assert found.retry_after_s is not None
    assert found.retry_after_s > 0
    assert scene.queue.waiting == 5
    await scene.release()
    assert "hurry" not in worker.received


async def test_a_cancelled_request_leaves_the_queue(scene: Scene, worker: RecordingWorker) -> None:
    await scene.block()
    await scene.send("flood", "kept0")
    leaving = scene.stub.Chat(chat("gone x"), metadata=auth("quiet"))
    await wait_until(lambda: scene.queue.waiting == 2)
    leaving.cancel()
    await wait_until(lambda: scene.queue.waiting == 1)
    await scene.send("flood", "kept1")
    assert await scene.release() == ["kept0", "kept1"]
    assert "gone" not in worker.received


async def test_bounds_refuse_clearly_and_usage_and_status_show_the_queue(
    scene: Scene, router: RouterServer, capsys: pytest.CaptureFixture[str]
) -> None:
    await scene.block()
    await scene.send("quiet", "quiet0")
    await scene.send("quiet", "quiet1")
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await scene.stub.Chat(chat("quiet2 x"), metadata=auth("quiet")).read()
    assert raised.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "tenant 'quiet' has 2 requests waiting" in (raised.value.details() or "")
    assert details(raised.value).info.reason == "QUEUE_FULL"

    status = await scene.stub.GetStatus(router_pb2.GetStatusRequest(), metadata=auth("quiet"))
    queues = {q.tenant: q for q in status.queues}
    assert queues["quiet"].queued == 2
    assert queues["quiet"].refused == 1
    assert wire.ms_of(queues["quiet"].oldest_wait) > 0

    # The CLI's `status` shows the same, one row per tenant.
    out = await asyncio.to_thread(cli, ["status", "--router", router.address, "--api-key", KEYS["quiet"]])
    assert out == 0
    lines = capsys.readouterr().out.splitlines()
    at = lines.index("admission queue")
    header = lines[at + 1].split()
    assert header == ["TENANT", "WEIGHT", "QUEUED", "OLDEST-WAIT", "MEAN-WAIT", "DISPATCHED", "REFUSED"]
    rows = {line.split()[0]: dict(zip(header, line.split(), strict=True)) for line in lines[at + 2 :]}
    assert (rows["quiet"]["QUEUED"], rows["quiet"]["REFUSED"]) == ("2", "1")
    assert rows["quiet"]["OLDEST-WAIT"].endswith("ms")

    await scene.release()
    usage = (await scene.calls[0])[-1].usage
    assert usage.HasField("queue_wait")
    assert wire.ms_of(usage.queue_wait) > 0
    metrics = router.accounting.metrics.registry
    assert metrics.get_sample_value("modelyard_admission_wait_seconds_count", {"tenant": "quiet"}) == 2
    refused = {"tenant": "quiet", "reason": "tenant_queue_full"}
    assert metrics.get_sample_value("modelyard_admission_refused_total", refused) == 1


async def test_a_cloud_answering_429_counts_as_saturated_for_a_while() -> None:
    """After "at my limit" (HTTP 429, no Retry-After: its circuit stays closed), the next request waits in
    the router's queue for admission.rate_limited_s instead of going straight back to the cloud."""
    async with FakeOpenAI(models=("echo",), reply="from the cloud") as cloud:
        provider = ProviderConfig(
            name="cloud",
            kind="openai_compatible",
            api_key=cloud.api_key,
            base_url=cloud.base_url,
            chat_models=["echo"],
        )
        config = RouterConfig(
            listen="127.0.0.1:0",
            router_id="limited",
            providers=[provider],
            admission=AdmissionConfig(enabled=True, rate_limited_s=1.0),
        )
        async with running_pool(config) as pool:
            router, stub = pool.router, pool.stub
            cloud.inject(*[Fault(status=429) for _ in range(config.retry.max_attempts)])
            with pytest.raises(grpc.aio.AioRpcError) as raised:
                [r async for r in stub.Chat(chat("first x"))]
            assert raised.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            cloud.clear_faults()
            assert router.state.circuits["cloud"].allows()
            held = asyncio.create_task(_answer(stub.Chat(chat("second x"))))
            queue = router.pipeline.placement.queue
            await wait_until(lambda: queue.waiting == 1)
            usage = (await held)[-1].usage
            assert usage.backend == "cloud"
            assert wire.ms_of(usage.queue_wait) > 0
            # It answered since: no longer saturated, the next one goes straight through.
            third = (await _answer(stub.Chat(chat("third x"))))[-1].usage
            assert not third.HasField("queue_wait")


async def _answer(call: Any) -> list[pb.ChatResponse]:
    return [r async for r in call]


@dataclass
class QueueingWorker(RecordingWorker):
    """A recording worker that declares a queue: the router may send it more than it runs at once."""

    def hello(self) -> Any:
        hello = super().hello()
        hello.max_queue = 4
        return hello


@pytest.mark.parametrize("lead_ms", [0, 60_000])
async def test_a_full_worker_whose_slot_is_about_to_free_gets_the_next_request_early(lead_ms: int) -> None:
    """dispatch_lead_ms: with a slot predicted to free within the lead, the next request goes to the worker's
    own queue now (ready as the slot frees); without, it waits in the router's queue for the slot."""
    admission = AdmissionConfig(enabled=True, dispatch_lead_ms=lead_ms)
    config = RouterConfig(listen="127.0.0.1:0", router_id="lead", report_interval_ms=500, admission=admission)
    worker = QueueingWorker("w1", max_concurrency=1, faults=Faults())
    async with running_pool(config, worker) as pool:
        router, stub = pool.router, pool.stub
        for _ in range(3):  # measured: how long an answer holds the slot there
            await _answer(stub.Chat(chat("measure x")))
        worker.faults.hold = asyncio.Event()
        blocker = stub.Chat(chat("blocker holds the slot"))
        await blocker.read()  # it runs; by the fit it should end about now, any moment
        next_one = asyncio.create_task(_answer(stub.Chat(chat("next x"))))
        backend = router.registry.get("w1")
        assert backend is not None
        queue = router.pipeline.placement.queue
        if lead_ms:
            await wait_until(lambda: backend.in_flight == 2)  # on its way to the worker's queue
            assert queue.waiting == 0
        else:
            await wait_until(lambda: queue.waiting == 1)  # held in the router
            assert backend.in_flight == 1
        worker.faults.hold.set()
        assert (await next_one)[-1].usage.backend == "w1"
        blocker.cancel()
