"""Chat through a real Worker server on the real vLLM CPU engine with the tiny random Llama."""

from __future__ import annotations

import asyncio
from typing import cast

import grpc
import pytest
from modelyard.v1 import inference_pb2 as pb

from core import wire
from gpu_worker.engine_set import EngineSet
from gpu_worker.engines.vllm_chat import VllmChatEngine
from tests.support.polling import wait_until
from tests.worker.servers import read_rest, serving

pytestmark = pytest.mark.engines


def _request(text: str = "Say something.", **sampling: float | int) -> pb.ChatRequest:
    return pb.ChatRequest(
        request_id="req-1",
        model="tiny-random-llama",
        messages=[
            pb.Message(role=pb.ROLE_SYSTEM, content=[pb.ContentPart(text="You are terse.")]),
            pb.Message(role=pb.ROLE_USER, content=[pb.ContentPart(text=text)]),
        ],
        sampling=pb.SamplingParams(**sampling),  # type: ignore[arg-type]
    )


async def test_streams_tokens_then_usage(chat_engine: VllmChatEngine) -> None:
    async with serving(EngineSet(chat=[chat_engine])) as stub:
        responses = await read_rest(stub.Chat(_request(max_tokens=12, temperature=0.8, seed=7)))
    deltas = [r.delta.text for r in responses if r.WhichOneof("event") == "delta"]
    assert len(deltas) >= 2, "tokens should arrive as several deltas, not one block"
    assert responses[-1].WhichOneof("event") == "usage"
    assert all(r.WhichOneof("event") == "delta" for r in responses[:-1])
    usage = responses[-1].usage
    assert usage.request_id == "req-1"
    assert usage.backend == "test-worker"
    assert usage.model == "tiny-random-llama"
    assert usage.completion_tokens == 12
    assert usage.finish_reason == pb.FINISH_REASON_LENGTH
    assert usage.prompt_tokens > 5
    assert 0 < wire.ms_of(usage.ttft) <= wire.ms_of(usage.latency)


async def test_same_seed_same_answer(chat_engine: VllmChatEngine) -> None:
    async with serving(EngineSet(chat=[chat_engine])) as stub:
        answers = []
        for _ in range(2):
            responses = await read_rest(stub.Chat(_request(max_tokens=8, temperature=1.0, seed=123)))
            answers.append("".join(r.delta.text for r in responses[:-1]))
    assert answers[0] == answers[1]
    assert answers[0]


async def test_a_cache_salt_reaches_the_engine_and_answers_alike(chat_engine: VllmChatEngine) -> None:
    """Tenant isolation (prefix.isolate_tenants): a salted request runs, with no cached prefix shared with
    another salt, and its greedy answer is the unsalted one's."""
    async with serving(EngineSet(chat=[chat_engine])) as stub:
        answers = []
        for salt in ("", "tenant-a", "tenant-b"):
            request = _request(max_tokens=8, temperature=0.0)
            request.cache_salt = salt
            responses = await read_rest(stub.Chat(request))
            answers.append("".join(r.delta.text for r in responses[:-1]))
    assert answers[0]
    assert answers[0] == answers[1] == answers[2]


async def test_cancel_mid_stream_aborts_the_engine_request(chat_engine: VllmChatEngine) -> None:
    aborted_before = chat_engine.load().aborted_total
    async with serving(EngineSet(chat=[chat_engine])) as stub:
        call = stub.Chat(_request(max_tokens=1500, temperature=1.0))
        for _ in range(3):
            response = await call.read()
            assert response.WhichOneof("event") == "delta"
        load = chat_engine.load()
        assert load.running + load.waiting == 1
        call.cancel()
        await wait_until(
            lambda: chat_engine.load().running == 0 and chat_engine.load().waiting == 0,
            message="the engine kept the request after the client cancelled",
        )
        await wait_until(lambda: chat_engine.load().aborted_total == aborted_before + 1)
    assert chat_engine.load().kv_cache_usage == 0.0


async def test_load_reports_throughput_while_generating(chat_engine: VllmChatEngine) -> None:
    async with serving(EngineSet(chat=[chat_engine])) as stub:
        await read_rest(stub.Chat(_request(max_tokens=20)))
    assert chat_engine.load().tokens_per_second > 0


async def test_concurrent_chats_all_finish(chat_engine: VllmChatEngine) -> None:
    async with serving(EngineSet(chat=[chat_engine])) as stub:
        results = await asyncio.gather(*(read_rest(stub.Chat(_request(max_tokens=6))) for _ in range(4)))
    assert [r[-1].usage.completion_tokens for r in results] == [6, 6, 6, 6]


@pytest.mark.parametrize(
    ("request_", "code", "field"),
    [
        (pb.ChatRequest(model="tiny-random-llama"), grpc.StatusCode.INVALID_ARGUMENT, "messages"),
        (
            pb.ChatRequest(
                model="tiny-random-llama",
                messages=[pb.Message(role=cast(pb.Role, 9), content=[pb.ContentPart(text="x")])],
            ),
            grpc.StatusCode.INVALID_ARGUMENT,
            "messages[0].role",
        ),
        (
            pb.ChatRequest(
                model="tiny-random-llama",
                messages=[pb.Message(role=pb.ROLE_USER, content=[pb.ContentPart(text="x")])],
                sampling=pb.SamplingParams(temperature=3.0),
            ),
            grpc.StatusCode.INVALID_ARGUMENT,
            "sampling.temperature",
        ),
        (
            pb.ChatRequest(
                model="tiny-random-llama",
                messages=[
                    pb.Message(
                        role=pb.ROLE_USER,
                        content=[pb.ContentPart(image=pb.Image(url="https://example.com/cat.png"))],
                    )
                ],
            ),
            grpc.StatusCode.INVALID_ARGUMENT,
            "messages[0].content[0].image",
        ),
        (
            pb.ChatRequest(
                model="gpt-9", messages=[pb.Message(role=pb.ROLE_USER, content=[pb.ContentPart(text="x")])]
            ),
            grpc.StatusCode.NOT_FOUND,
            "tiny-random-llama",
        ),
        (
            pb.ChatRequest(
                model="tiny-random-llama",
                messages=[pb.Message(role=pb.ROLE_USER, content=[pb.ContentPart(text="word " * 3000)])],
            ),
            grpc.StatusCode.INVALID_ARGUMENT,
            "messages: the prompt is",
        ),
    ],
)
async def test_bad_requests_get_the_right_status(
    chat_engine: VllmChatEngine, request_: pb.ChatRequest, code: grpc.StatusCode, field: str
) -> None:
    async with serving(EngineSet(chat=[chat_engine])) as stub:
        with pytest.raises(grpc.aio.AioRpcError) as error:
            await read_rest(stub.Chat(request_))
    assert error.value.code() == code
    assert field in (error.value.details() or "")
