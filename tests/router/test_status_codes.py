"""Every status code the README's table lists, provoked on a real router with real gRPC, one row per cause.

Each row starts what it needs (echo workers, a router with keys), makes the call that goes wrong, and checks the
code and the words the caller needs (the field at fault, what is served instead).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from modelyard.v1 import admin_pb2, admin_pb2_grpc, router_pb2_grpc
from modelyard.v1 import inference_pb2 as pb
from modelyard.worker.v1 import worker_pb2, worker_pb2_grpc

from router.accounting.auth import hash_key
from router.config.accounting import ApiKey
from router.config.settings import RouterConfig
from router.server import RouterServer
from tests.router.conftest import WorkerFactory
from tests.support.echo_worker import EchoWorker, Faults

README = Path(__file__).resolve().parents[2] / "README.md"
TENANT_KEY, ADMIN_KEY = "k-tenant", "k-admin"


@dataclass
class Setting:
    router: RouterServer
    stub: router_pb2_grpc.RouterServiceStub
    workers: WorkerFactory


Outcome = tuple[grpc.StatusCode, str, str]  # the code, message and ErrorInfo reason the caller got
Provoke = Callable[[Setting], Awaitable[Outcome]]


def chat(text: str = "a b", model: str = "echo") -> pb.ChatRequest:
    return pb.ChatRequest(
        model=model, messages=[pb.Message(role=pb.ROLE_USER, content=[pb.ContentPart(text=text)])]
    )


def reason_of(error: grpc.RpcError) -> str:
    """ErrorInfo.reason, or "" when the status carries no google.rpc details (gRPC's own, e.g. CANCELLED)."""
    status = rpc_status.from_call(error)  # type: ignore[arg-type]
    for detail in status.details if status is not None else ():
        info = error_details_pb2.ErrorInfo()
        if detail.Unpack(info):
            return str(info.reason)
    return ""


def outcome(error: grpc.aio.AioRpcError) -> Outcome:
    return error.code(), error.details() or "", reason_of(error)


async def refused(call: grpc.aio.UnaryStreamCall) -> Outcome:  # type: ignore[type-arg]
    with pytest.raises(grpc.aio.AioRpcError) as error:
        async for _ in call:
            pass
    return outcome(error.value)


async def refused_unary(call: Awaitable[object]) -> Outcome:
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await call
    return outcome(error.value)


async def empty_messages(s: Setting) -> Outcome:
    await s.workers("w1")
    return await refused(s.stub.Chat(pb.ChatRequest(model="echo")))


async def unknown_provider(s: Setting) -> Outcome:
    await s.workers("w1")
    request = chat()
    request.routing.provider = "opnai"
    return await refused(s.stub.Chat(request))


async def negative_cost_limit(s: Setting) -> Outcome:
    await s.workers("w1")
    request = chat()
    request.routing.max_cost_usd = -1
    return await refused(s.stub.Chat(request))


async def embed_with_a_chat_only_model(s: Setting) -> Outcome:
    await s.workers("w-chat", models=("talker",), capabilities=(pb.CAPABILITY_CHAT,))
    await s.workers("w-embed", models=("vectors",), capabilities=(pb.CAPABILITY_EMBED,))
    return await refused_unary(s.stub.Embed(pb.EmbedRequest(model="talker", inputs=["x"])))


async def worker_id_taken(s: Setting) -> Outcome:
    await s.workers("w1")
    impostor = EchoWorker("w1").hello()
    impostor.address = "127.0.0.1:1"  # the live w1 is elsewhere
    async with grpc.aio.insecure_channel(s.router.address) as channel:
        call = worker_pb2_grpc.WorkerRegistryServiceStub(channel).Register()
        await call.write(worker_pb2.RegisterRequest(hello=impostor))
        with pytest.raises(grpc.aio.AioRpcError) as error:
            await call.read()
        return outcome(error.value)


async def unknown_model(s: Setting) -> Outcome:
    await s.workers("w1")
    return await refused(s.stub.Chat(chat(model="gpt-9")))


async def no_key(s: Setting) -> Outcome:
    return await refused(s.stub.Chat(chat()))


async def tenant_key_on_admin(s: Setting) -> Outcome:
    async with grpc.aio.insecure_channel(s.router.address) as channel:
        admin = admin_pb2_grpc.AdminServiceStub(channel)
        metadata = (("authorization", f"Bearer {TENANT_KEY}"),)
        return await refused_unary(
            admin.SetStrategy(admin_pb2.SetStrategyRequest(strategy=pb.STRATEGY_LATENCY), metadata=metadata)
        )


async def every_slot_taken(s: Setting) -> Outcome:
    hold = asyncio.Event()
    await s.workers("w1", max_concurrency=1, faults=Faults(hold=hold))
    first = s.stub.Chat(chat())
    await first.read()  # holds the only slot
    try:
        return await refused(s.stub.Chat(chat()))
    finally:
        hold.set()
        first.cancel()


async def no_backend_yet(s: Setting) -> Outcome:
    return await refused(s.stub.Chat(chat()))


async def stalled_backend(s: Setting) -> Outcome:
    await s.workers("w1", faults=Faults(stall=True))
    return await refused(s.stub.Chat(chat(), timeout=0.5))


async def caller_cancels(s: Setting) -> Outcome:
    hold = asyncio.Event()
    await s.workers("w1", faults=Faults(hold=hold))
    call = s.stub.Chat(chat())
    await call.read()
    call.cancel()
    hold.set()
    return await call.code(), await call.details(), ""


async def engine_failure(s: Setting) -> Outcome:
    await s.workers("w1", faults=Faults(fail_before_first=grpc.StatusCode.INTERNAL))
    return await refused(s.stub.Chat(chat()))


async def over_max_cost(s: Setting) -> Outcome:
    await s.workers("w1", models=("gpt-4o",))  # a model with a list price: the estimate is above zero
    request = chat(model="gpt-4o")
    request.routing.max_cost_usd = 1e-12
    return await refused(s.stub.Chat(request))


async def router_stopping(s: Setting) -> Outcome:
    # Once the router refuses new calls (its gate closed, whenever a stop closes it), it says why.
    await s.workers("w1")
    s.router.gate.close()
    return await refused(s.stub.Chat(chat()))


# (id, provoke, code, words the message must hold, whether the router needs keys)
ROWS: list[tuple[str, Provoke, grpc.StatusCode, tuple[str, ...], bool]] = [
    ("empty-messages", empty_messages, grpc.StatusCode.INVALID_ARGUMENT, ("messages",), False),
    (
        "unknown-provider",
        unknown_provider,
        grpc.StatusCode.INVALID_ARGUMENT,
        ("routing.provider", "'opnai'", "w1", "worker"),
        False,
    ),
    (
        "negative-max-cost",
        negative_cost_limit,
        grpc.StatusCode.INVALID_ARGUMENT,
        ("routing.max_cost_usd",),
        False,
    ),
    (
        "capability-missing",
        embed_with_a_chat_only_model,
        grpc.StatusCode.INVALID_ARGUMENT,
        ("'talker'", "embeddings", "vectors"),
        False,
    ),
    ("unknown-model", unknown_model, grpc.StatusCode.NOT_FOUND, ("gpt-9", "echo"), False),
    ("worker-id-taken", worker_id_taken, grpc.StatusCode.ALREADY_EXISTS, (), False),
    ("no-key", no_key, grpc.StatusCode.UNAUTHENTICATED, (), True),
    ("tenant-key-on-admin", tenant_key_on_admin, grpc.StatusCode.PERMISSION_DENIED, ("admin",), True),
    ("at-capacity", every_slot_taken, grpc.StatusCode.RESOURCE_EXHAUSTED, ("capacity",), False),
    ("no-backend", no_backend_yet, grpc.StatusCode.UNAVAILABLE, ("no backend",), False),
    ("stalled", stalled_backend, grpc.StatusCode.DEADLINE_EXCEEDED, (), False),
    ("cancelled", caller_cancels, grpc.StatusCode.CANCELLED, (), False),
    ("engine-failed", engine_failure, grpc.StatusCode.INTERNAL, (), False),
    (
        "over-max-cost",
        over_max_cost,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        ("max_cost_usd", "w1", "'gpt-4o'"),
        False,
    ),
    ("router-stopping", router_stopping, grpc.StatusCode.UNAVAILABLE, ("stopping",), False),
]

# The ErrorInfo reason each row must carry (the README table's third column); rows not named here carry none
# worth pinning (gRPC's own CANCELLED, and DEADLINE_EXCEEDED, which the caller's own timer may end first).
REASONS = {
    "empty-messages": "INVALID_ARGUMENT",
    "unknown-provider": "INVALID_ARGUMENT",
    "negative-max-cost": "INVALID_ARGUMENT",
    "capability-missing": "CAPABILITY_NOT_SERVED",
    "unknown-model": "MODEL_NOT_FOUND",
    "worker-id-taken": "ALREADY_EXISTS",
    "no-key": "UNAUTHENTICATED",
    "tenant-key-on-admin": "PERMISSION_DENIED",
    "at-capacity": "CAPACITY_EXHAUSTED",
    "no-backend": "NO_BACKEND_AVAILABLE",
    "engine-failed": "ENGINE_FAILED",
    "over-max-cost": "COST_LIMIT",
    "router-stopping": "ROUTER_STOPPING",
}
# Reasons the README lists that other tests provoke (they need a ledger, Redis, a cloud double or a real
# engine): the file that asserts each one.
REASONS_ELSEWHERE = {
    "NOT_FOUND": "tests/router/test_drain_through_router.py",
    "BUDGET_EXCEEDED": "tests/accounting/test_usage_and_budgets.py",
    "RATE_LIMITED": "tests/accounting/test_tenant_limits.py",
    "UPSTREAM_FAILED": "tests/router/test_rich_errors.py",
    "CIRCUITS_OPEN": "tests/router/test_rich_errors.py",
    "STREAM_BROKEN": "tests/router/test_rich_errors.py",
    "ENGINE_FAILED": "tests/worker/test_engine_failure.py",
}


@pytest.fixture
async def keyed_router() -> AsyncIterator[RouterServer]:
    keys = [ApiKey("acme", hash_key(TENANT_KEY)), ApiKey("ops", hash_key(ADMIN_KEY), admin=True)]
    server = RouterServer(
        RouterConfig(
            listen="127.0.0.1:0", router_id="keyed", report_interval_ms=100, keys=keys, startup_wait_s=0
        )
    )
    await server.start()
    yield server
    await server.stop(0)


@pytest.mark.parametrize(
    ("provoke", "code", "words", "keyed"), [row[1:] for row in ROWS], ids=[r[0] for r in ROWS]
)
async def test_each_cause_gets_its_code(
    provoke: Provoke,
    code: grpc.StatusCode,
    words: tuple[str, ...],
    keyed: bool,
    router: RouterServer,
    keyed_router: RouterServer,
    echo_workers: WorkerFactory,
) -> None:
    target = keyed_router if keyed else router
    async with grpc.aio.insecure_channel(target.address) as channel:
        got, message, reason = await provoke(
            Setting(target, router_pb2_grpc.RouterServiceStub(channel), echo_workers)
        )
    assert got == code, message
    for word in words:
        assert word in message, message
    row = next(r[0] for r in ROWS if r[1] is provoke)
    assert reason == REASONS.get(row, reason), message


def test_the_table_covers_every_code_the_readme_lists() -> None:
    table = README.read_text(encoding="utf-8").split("| code | meaning |", 1)[1].split("\n\n", 1)[0]
    listed = {
        code
        for line in table.splitlines()[2:]
        for code in re.findall(r"\b[A-Z][A-Z_]{3,}\b", line.split("|")[1])
    }
    assert listed == {row[2].name for row in ROWS}


def test_every_reason_the_readme_lists_is_asserted() -> None:
    table = README.read_text(encoding="utf-8").split("| code | meaning |", 1)[1].split("\n\n", 1)[0]
    listed = {
        reason
        for line in table.splitlines()[2:]
        for reason in re.findall(r"\b[A-Z][A-Z_]{3,}\b", line.split("|")[3])
    }
    here = set(REASONS.values())
    assert listed - here <= set(REASONS_ELSEWHERE), sorted(listed - here - set(REASONS_ELSEWHERE))
    root = README.parent
    for reason, path in REASONS_ELSEWHERE.items():
        assert f'"{reason}"' in (root / path).read_text(encoding="utf-8"), f"{path} does not assert {reason}"
