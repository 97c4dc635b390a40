"""Mid-stream migration and stall detection over real gRPC: a broken chat answer continues on another
backend that can continue a message (our workers, Anthropic), never on an OpenAI-compatible API."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable

import grpc
import pytest
from modelyard.v1 import admin_pb2, admin_pb2_grpc, router_pb2_grpc
from modelyard.v1 import inference_pb2 as pb

from router.config.migration import MigrationConfig
from router.config.settings import ProviderConfig, RetryPolicy, RouterConfig
from router.server import RouterServer
from tests.router.test_routing import chat_request, collect
from tests.support.echo_worker import EchoWorker, Faults
from tests.support.fake_anthropic import FakeAnthropic
from tests.support.fake_openai import FakeOpenAI
from tests.support.pool import Pool, running_pool
from tests.support.rich_errors import details

WORDS = " ".join(f"n{i}" for i in range(12))
ECHO = "".join(f"n{i} " for i in range(12))
GENEROUS_S = 30.0  # bounds a broken build only; nothing here is timed


Start = Callable[..., Awaitable[Pool]]


@pytest.fixture
async def start_router() -> AsyncIterator[Start]:
    async with contextlib.AsyncExitStack() as stack:

        async def start(
            *, providers: tuple[ProviderConfig, ...] = (), max_attempts: int = 2, **workers_faults: Faults
        ) -> Pool:
            config = RouterConfig(
                listen="127.0.0.1:0",
                router_id="migration",
                report_interval_ms=100,
                retry=RetryPolicy(max_attempts=3, backoff_base_s=0.01, backoff_max_s=0.05),
                worker_stall_timeout_s=0.5,
                migration=MigrationConfig(max_attempts=max_attempts),
                providers=list(providers),
                health_interval_s=3600,
            )
            workers = [EchoWorker(worker_id, faults=faults) for worker_id, faults in workers_faults.items()]
            return await stack.enter_async_context(running_pool(config, *workers))

        yield start


async def in_order(router: RouterServer, *backends: str) -> None:
    """Make the fallback strategy try `backends` in this order."""
    async with grpc.aio.insecure_channel(router.address) as channel:
        admin = admin_pb2_grpc.AdminServiceStub(channel)
        for priority, backend in enumerate(backends, start=1):
            await admin.UpdateBackend(admin_pb2.UpdateBackendRequest(backend=backend, priority=priority))


async def chat(router: RouterServer, request: pb.ChatRequest) -> tuple[str, pb.Usage]:
    request.routing.strategy = pb.STRATEGY_FALLBACK
    async with grpc.aio.insecure_channel(router.address) as channel:
        stub = router_pb2_grpc.RouterServiceStub(channel)
        return await asyncio.wait_for(collect(stub.Chat(request)), GENEROUS_S)


async def broken_chat(router: RouterServer, request: pb.ChatRequest) -> tuple[str, grpc.aio.AioRpcError]:
    """The text received before the stream broke, and the error it broke with."""
    request.routing.strategy = pb.STRATEGY_FALLBACK
    text = ""
    async with grpc.aio.insecure_channel(router.address) as channel:
        stub = router_pb2_grpc.RouterServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as error:
            async with asyncio.timeout(GENEROUS_S):
                async for response in stub.Chat(request):
                    text += response.delta.text
    return text, error.value


def migrations(router: RouterServer, reason: str) -> float:
    value = router.accounting.metrics.registry.get_sample_value(
        "modelyard_stream_migrations_total", {"reason": reason}
    )
    return value or 0.0


async def test_a_stream_broken_mid_answer_continues_on_the_next_worker(start_router: Start) -> None:
    pool = await start_router(a=Faults(fail_after=3), b=Faults())
    router = pool.router
    await in_order(router, "a", "b")
    text, usage = await chat(router, chat_request(WORDS))
    assert text == ECHO  # every word once, in order
    assert [(p.backend, p.migrated_because, p.estimated) for p in usage.parts] == [
        ("a", "unavailable", True),
        ("b", "", False),
    ]
    assert usage.backend == "b"
    assert usage.parts[1].completion_tokens == 12 - 3  # b generated only what followed
    assert usage.completion_tokens == sum(p.completion_tokens for p in usage.parts)
    assert usage.prompt_tokens == sum(p.prompt_tokens for p in usage.parts)
    assert migrations(router, "unavailable") == 1


async def test_the_continuation_carries_the_text_so_far_as_a_final_assistant_message(
    start_router: Start,
) -> None:
    pool = await start_router(a=Faults(fail_after=2), b=Faults())
    router = pool.router
    await in_order(router, "a", "b")
    request = chat_request(WORDS)
    request.sampling.temperature = 0.0
    request.sampling.seed = 7
    await chat(router, request)
    continued = pool.workers["b"].continued
    assert len(continued) == 1
    final = continued[0].messages[-1]
    assert final.role == pb.ROLE_ASSISTANT
    assert final.content[0].text == "n0 n1 "
    assert continued[0].sampling.seed == 7  # same sampling and seed


async def test_a_stream_that_ends_without_its_usage_migrates(start_router: Start) -> None:
    pool = await start_router(a=Faults(end_after=4), b=Faults())
    router = pool.router
    await in_order(router, "a", "b")
    text, usage = await chat(router, chat_request(WORDS))
    assert text == ECHO
    assert [p.migrated_because for p in usage.parts] == ["no_usage", ""]


async def test_a_stall_after_the_first_delta_migrates(start_router: Start) -> None:
    hold = asyncio.Event()  # never set: a holds its stream after the first delta
    pool = await start_router(a=Faults(hold=hold), b=Faults())
    router = pool.router
    await in_order(router, "a", "b")
    text, usage = await chat(router, chat_request(WORDS))
    assert text == ECHO
    assert [p.migrated_because for p in usage.parts] == ["stall", ""]
    assert migrations(router, "stall") == 1


async def test_a_stall_before_the_first_delta_fails_over(start_router: Start) -> None:
    # No deadline on the call: only the stall timeout can move it on (the first-chunk timeout is 60 s).
    pool = await start_router(a=Faults(stall=True), b=Faults())
    router = pool.router
    await in_order(router, "a", "b")
    text, usage = await chat(router, chat_request(WORDS))
    assert text == ECHO
    assert usage.backend == "b"
    assert not usage.parts  # nothing had been sent: an ordinary failover, not a migration
    assert router.state.stats["a"].failures == 1


async def test_max_attempts_bounds_the_moves(start_router: Start) -> None:
    pool = await start_router(a=Faults(fail_after=2), b=Faults(fail_after=2), c=Faults(fail_after=2))
    router = pool.router
    await in_order(router, "a", "b", "c")
    text, error = await broken_chat(router, chat_request(WORDS))
    assert text == "n0 n1 n2 n3 n4 n5 "  # two moves, two words each time, none repeated
    assert error.code() == grpc.StatusCode.UNAVAILABLE
    broken = details(error)
    assert broken.info.reason == "STREAM_BROKEN"
    assert broken.info.metadata["messages_sent"] == "6"
    assert migrations(router, "unavailable") == 2


async def test_with_migration_off_a_broken_stream_ends(start_router: Start) -> None:
    pool = await start_router(max_attempts=0, a=Faults(fail_after=2), b=Faults())
    router = pool.router
    await in_order(router, "a", "b")
    text, error = await broken_chat(router, chat_request(WORDS))
    assert text == "n0 n1 "
    assert details(error).info.reason == "STREAM_BROKEN"


async def test_structured_output_is_never_migrated(start_router: Start) -> None:
    pool = await start_router(a=Faults(fail_after=2), b=Faults())
    router = pool.router
    await in_order(router, "a", "b")
    request = chat_request(WORDS)
    request.response_format.type = pb.RESPONSE_FORMAT_TYPE_JSON_OBJECT
    text, error = await broken_chat(router, request)
    assert text == "n0 n1 "
    assert details(error).info.reason == "STREAM_BROKEN"
    assert not pool.workers["b"].continued


async def test_an_openai_compatible_upstream_is_never_a_migration_target(start_router: Start) -> None:
    async with FakeOpenAI(models=("echo",)) as openai:
        provider = ProviderConfig(
            name="compat",
            kind="openai_compatible",
            base_url=openai.base_url,
            api_key=openai.api_key,
            chat_models=["echo"],
        )
        pool = await start_router(providers=(provider,), a=Faults(fail_after=2))
        router = pool.router
        await in_order(router, "a", "compat")
        text, error = await broken_chat(router, chat_request(WORDS))
        assert text == "n0 n1 "
        assert details(error).info.reason == "STREAM_BROKEN"
        assert not [r for r in openai.requests if r.path.endswith("/chat/completions")]


async def test_anthropic_continues_the_answer_as_a_prefill(start_router: Start) -> None:
    async with FakeAnthropic(models=("echo",), reply=" n2 n3") as claude:
        provider = ProviderConfig(
            name="claude",
            kind="anthropic",
            base_url=claude.base_url,
            api_key=claude.api_key,
            chat_models=["echo"],
        )
        pool = await start_router(providers=(provider,), a=Faults(fail_after=2))
        router = pool.router
        await in_order(router, "a", "claude")
        text, usage = await chat(router, chat_request("n0 n1 n2 n3"))
        (sent,) = [r for r in claude.requests if r.path.endswith("/messages")]
        # The API refuses trailing whitespace in a prefill; the model writes it again and it is not repeated.
        assert sent.json["messages"][-1] == {"role": "assistant", "content": "n0 n1"}
        assert text == "n0 n1 n2 n3"
        assert [p.backend for p in usage.parts] == ["a", "claude"]
