"""WorkerService.ContinueChat on a real Worker server: the engine is told to continue the final message, and a
request without a final assistant message to continue is refused naming it."""

from __future__ import annotations

from collections.abc import AsyncGenerator

import grpc
import pytest
from modelyard.v1 import inference_pb2 as pb
from modelyard.worker.v1 import worker_pb2

from gpu_worker.engine_set import EngineSet
from gpu_worker.engines.base import ChatEvent, ChatFinished, ChatInput, TextDelta
from tests.worker.gated_engine import GatedChatEngine
from tests.worker.servers import read_rest, serving


class RecordingEngine(GatedChatEngine):
    """Answers at once, keeping the inputs it was given."""

    def __init__(self) -> None:
        super().__init__("echo")
        self.inputs: list[ChatInput] = []

    async def chat(self, request: ChatInput) -> AsyncGenerator[ChatEvent, None]:
        self.inputs.append(request)
        yield TextDelta(" world")
        yield ChatFinished(prompt_tokens=5, completion_tokens=1, finish_reason="stop")


def conversation(*messages: tuple[pb.Role, str]) -> pb.ChatRequest:
    return pb.ChatRequest(
        model="echo",
        messages=[pb.Message(role=role, content=[pb.ContentPart(text=text)]) for role, text in messages],
        sampling=pb.SamplingParams(temperature=0.0, seed=3),
    )


async def test_the_engine_continues_the_final_message() -> None:
    engine = RecordingEngine()
    request = conversation((pb.ROLE_USER, "Say hello world."), (pb.ROLE_ASSISTANT, "hello"))
    async with serving(EngineSet(chat=[engine])) as stub:
        responses = await read_rest(stub.ContinueChat(worker_pb2.ContinueChatRequest(request=request)))
    assert [r.delta.text for r in responses[:-1]] == [" world"]
    assert responses[-1].usage.completion_tokens == 1
    (given,) = engine.inputs
    assert given.continue_final
    assert given.messages[-1].text == "hello"
    assert given.sampling.seed == 3


async def test_plain_chat_does_not_continue() -> None:
    engine = RecordingEngine()
    async with serving(EngineSet(chat=[engine])) as stub:
        await read_rest(stub.Chat(conversation((pb.ROLE_USER, "Hi."))))
    assert not engine.inputs[0].continue_final


async def test_a_continuation_needs_a_final_assistant_message() -> None:
    async with serving(EngineSet(chat=[RecordingEngine()])) as stub:
        request = conversation((pb.ROLE_USER, "Hi."))
        with pytest.raises(grpc.aio.AioRpcError) as error:
            await read_rest(stub.ContinueChat(worker_pb2.ContinueChatRequest(request=request)))
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "messages[0]" in (error.value.details() or "")
