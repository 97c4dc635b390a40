"""Router end to end over real gRPC, with engine-free test workers registered through the real lease."""

from __future__ import annotations

import asyncio
from typing import cast

import grpc
import pytest
from modelyard.v1 import backend_pb2, router_pb2, router_pb2_grpc
from modelyard.v1 import inference_pb2 as pb
from modelyard.worker.v1 import worker_pb2, worker_pb2_grpc
from modelyard_client import AsyncClient, InvalidArgument

from core import wire
from router.server import RouterServer
from tests.router.conftest import WorkerFactory
from tests.support.echo_worker import Faults
from tests.support.polling import wait_until
from tests.support.rich_errors import details


def chat_request(text: str = "one two three", model: str = "echo") -> pb.ChatRequest:
    return pb.ChatRequest(
        model=model,
        messages=[pb.Message(role=pb.ROLE_USER, content=[pb.ContentPart(text=text)])],
    )


async def collect(call: grpc.aio.UnaryStreamCall) -> tuple[str, pb.Usage]:  # type: ignore[type-arg]
    text, usage = "", pb.Usage()
    async for response in call:
        if response.HasField("delta"):
            text += response.delta.text
        else:
            usage = response.usage
    return text, usage


async def test_chat_is_relayed_with_usage(
    stub: router_pb2_grpc.RouterServiceStub, echo_workers: WorkerFactory
) -> None:
    await echo_workers("w1")
    text, usage = await collect(stub.Chat(chat_request("hello there world")))
    assert text == "hello there world "
    assert usage.backend == "w1"
    assert usage.completion_tokens == 3
    assert usage.request_id
    assert 0 < wire.ms_of(usage.ttft) <= wire.ms_of(usage.latency)


@pytest.mark.parametrize(
    ("request_", "field"),
    [
        (pb.ChatRequest(model="echo"), "messages"),
        (
            pb.ChatRequest(model="echo", messages=[pb.Message(role=pb.ROLE_USER)]),
            "messages[0].content",
        ),
        (
            pb.ChatRequest(
                model="echo",
                messages=[pb.Message(role=cast(pb.Role, 9), content=[pb.ContentPart(text="x")])],
            ),
            "messages[0].role",
        ),
        (
            pb.ChatRequest(messages=[pb.Message(role=pb.ROLE_USER, content=[pb.ContentPart(text="x")])]),
            "model",
        ),
    ],
)
async def test_bad_chat_input_names_the_field(
    stub: router_pb2_grpc.RouterServiceStub, echo_workers: WorkerFactory, request_: pb.ChatRequest, field: str
) -> None:
    await echo_workers("w1")
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await collect(stub.Chat(request_))
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert (error.value.details() or "").startswith(field)


async def test_unknown_model_is_not_found_and_lists_served(
    stub: router_pb2_grpc.RouterServiceStub, echo_workers: WorkerFactory
) -> None:
    await echo_workers("w1")
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await collect(stub.Chat(chat_request(model="gpt-9")))
    assert error.value.code() == grpc.StatusCode.NOT_FOUND
    assert "served: echo" in (error.value.details() or "")


async def test_no_worker_is_unavailable(stub: router_pb2_grpc.RouterServiceStub) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await collect(stub.Chat(chat_request()))
    assert error.value.code() == grpc.StatusCode.UNAVAILABLE


async def test_failure_before_first_chunk_moves_to_next_worker(
    stub: router_pb2_grpc.RouterServiceStub, echo_workers: WorkerFactory
) -> None:
    broken = await echo_workers("a-broken", faults=Faults(fail_before_first=grpc.StatusCode.UNAVAILABLE))
    await echo_workers("b-good", max_concurrency=1)  # sorts after the broken one on load
    text, usage = await collect(stub.Chat(chat_request("x y")))
    assert text == "x y "
    assert usage.backend == "b-good"
    assert broken.served == 0


async def test_caller_errors_from_a_worker_are_not_retried(
    stub: router_pb2_grpc.RouterServiceStub, echo_workers: WorkerFactory
) -> None:
    await echo_workers("w1", faults=Faults(fail_before_first=grpc.StatusCode.INVALID_ARGUMENT))
    second = await echo_workers("w2")
    request = chat_request()
    request.routing.provider = "w1"  # pinned, so the order is certain
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await collect(stub.Chat(request))
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert second.served == 0


async def test_failure_mid_stream_ends_with_unavailable_and_no_repeat(
    stub: router_pb2_grpc.RouterServiceStub, echo_workers: WorkerFactory
) -> None:
    await echo_workers("w1", faults=Faults(fail_after=2))
    other = await echo_workers("w2", max_concurrency=1)
    request = chat_request("a b c d")
    request.routing.provider = "w1"
    call = stub.Chat(request)
    received: list[str] = []
    with pytest.raises(grpc.aio.AioRpcError) as error:
        async for response in call:
            received.append(response.delta.text)
    assert error.value.code() == grpc.StatusCode.UNAVAILABLE
    assert received == ["a ", "b "]
    broken = details(error.value)
    assert broken.info.reason == "STREAM_BROKEN"
    assert broken.info.metadata["messages_sent"] == "2"
    assert other.served == 0


async def test_client_cancel_cancels_the_worker_call(
    stub: router_pb2_grpc.RouterServiceStub, echo_workers: WorkerFactory
) -> None:
    worker = await echo_workers("w1", faults=Faults(delay_s=0.05))
    call = stub.Chat(chat_request(" ".join(["w"] * 200)))
    await call.read()
    call.cancel()
    await wait_until(lambda: worker.running == 0 and worker.cancelled == 1)


async def test_status_lists_workers_and_lease_end_removes_them(
    router: RouterServer, stub: router_pb2_grpc.RouterServiceStub, echo_workers: WorkerFactory
) -> None:
    worker = await echo_workers("w1")
    status = await stub.GetStatus(router_pb2.GetStatusRequest())
    assert [b.id for b in status.backends] == ["w1"]
    assert status.backends[0].models[0].id == "echo"
    assert status.backends[0].address == worker.address
    models = await stub.ListModels(router_pb2.ListModelsRequest())
    assert [m.id for m in models.models] == ["echo"]
    await worker.unregister()
    await wait_until(lambda: len(router.registry) == 0)


async def test_silent_worker_loses_its_lease(router: RouterServer) -> None:
    async with grpc.aio.insecure_channel(router.address) as channel:
        call = worker_pb2_grpc.WorkerRegistryServiceStub(channel).Register()
        hello = worker_pb2.WorkerHello(
            worker_id="quiet",
            address="127.0.0.1:9",
            models=[backend_pb2.ServedModel(id="m", capabilities=[pb.CAPABILITY_CHAT])],
            max_concurrency=1,
        )
        await call.write(worker_pb2.RegisterRequest(hello=hello))
        assert (await call.read()).HasField("ack")
        assert router.registry.get("quiet") is not None
        # Three missed 100 ms reports end the lease (the worker never closed its stream).
        await wait_until(lambda: router.registry.get("quiet") is None)
        call.cancel()


@pytest.mark.parametrize(
    ("hello", "field"),
    [
        (worker_pb2.WorkerHello(address="127.0.0.1:1", max_concurrency=1), "hello.worker_id"),
        (worker_pb2.WorkerHello(worker_id="w", address="nowhere", max_concurrency=1), "hello.address"),
        (worker_pb2.WorkerHello(worker_id="w", address="127.0.0.1:1", max_concurrency=1), "hello.models"),
    ],
)
async def test_malformed_hello_is_refused(
    router: RouterServer, hello: worker_pb2.WorkerHello, field: str
) -> None:
    async with grpc.aio.insecure_channel(router.address) as channel:
        call = worker_pb2_grpc.WorkerRegistryServiceStub(channel).Register()
        await call.write(worker_pb2.RegisterRequest(hello=hello))
        with pytest.raises(grpc.aio.AioRpcError) as error:
            await call.read()
        assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert (error.value.details() or "").startswith(field)
    assert len(router.registry) == 0


async def test_embed_is_routed(stub: router_pb2_grpc.RouterServiceStub, echo_workers: WorkerFactory) -> None:
    await echo_workers("w1")
    response = await stub.Embed(pb.EmbedRequest(model="echo", inputs=["ab", "abcd"]))
    assert [list(e.values) for e in response.embeddings] == [[2.0, 1.0], [4.0, 1.0]]
    assert response.usage.backend == "w1"


async def test_concurrent_chats_spread_over_workers(
    stub: router_pb2_grpc.RouterServiceStub, echo_workers: WorkerFactory
) -> None:
    first = await echo_workers("w1", faults=Faults(delay_s=0.02))
    second = await echo_workers("w2", faults=Faults(delay_s=0.02))
    await asyncio.gather(*(collect(stub.Chat(chat_request("a b c"))) for _ in range(8)))
    assert first.served > 0
    assert second.served > 0


async def test_bad_transcribe_config_is_reported_after_a_large_upload(router: RouterServer) -> None:
    async with AsyncClient(router.address, api_key="") as client:
        with pytest.raises(InvalidArgument, match=r"config\.language"):
            async for _ in client.transcribe(bytes(3 << 20), language="english!"):
                pass
