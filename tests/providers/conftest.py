from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from modelyard.v1 import inference_pb2 as pb

from router.backends.anthropic_backend import AnthropicBackend
from router.backends.openai_backend import OpenAIBackend
from router.config.settings import ProviderConfig
from tests.support.fake_anthropic import FakeAnthropic
from tests.support.fake_openai import FakeOpenAI

OPENAI_KEY = "sk-test-openai-SECRET-1234567890"
ANTHROPIC_KEY = "sk-ant-test-SECRET-0987654321"


@pytest.fixture
async def fake_openai() -> AsyncIterator[FakeOpenAI]:
    async with FakeOpenAI(api_key=OPENAI_KEY) as fake:
        yield fake


@pytest.fixture
async def openai_backend(fake_openai: FakeOpenAI) -> AsyncIterator[OpenAIBackend]:
    backend = OpenAIBackend(
        ProviderConfig(
            name="oa",
            kind="openai",
            api_key=OPENAI_KEY,
            base_url=fake_openai.base_url,
            chat_models=["gpt-4o-mini", "gpt-4o"],
            embed_models=["text-embedding-3-small"],
            transcribe_models=["whisper-1"],
            vision_models=["gpt-4o"],
            timeout_s=10.0,
        )
    )
    yield backend
    await backend.close()


@pytest.fixture
async def fake_anthropic() -> AsyncIterator[FakeAnthropic]:
    async with FakeAnthropic(api_key=ANTHROPIC_KEY) as fake:
        yield fake


@pytest.fixture
async def anthropic_backend(fake_anthropic: FakeAnthropic) -> AsyncIterator[AnthropicBackend]:
    backend = AnthropicBackend(
        ProviderConfig(
            name="claude",
            kind="anthropic",
            api_key=ANTHROPIC_KEY,
            base_url=fake_anthropic.base_url,
            # Current models: the SDK warns (DeprecationWarning) on retired ones.
            chat_models=["claude-haiku-4-5", "claude-sonnet-4-6"],
            vision_models=["claude-sonnet-4-6"],
            timeout_s=10.0,
            default_max_tokens=333,
        )
    )
    yield backend
    await backend.close()


def text(content: str) -> pb.ContentPart:
    return pb.ContentPart(text=content)


def chat_request(model: str, *messages: pb.Message, **sampling: object) -> pb.ChatRequest:
    if not messages:
        messages = (pb.Message(role=pb.ROLE_USER, content=[text("Say hello")]),)
    return pb.ChatRequest(
        request_id="req-1",
        model=model,
        messages=messages,
        sampling=pb.SamplingParams(**sampling),  # type: ignore[arg-type]
    )


async def collect(stream: AsyncIterator[pb.ChatResponse]) -> tuple[str, pb.Usage | None]:
    reply, usage = "", None
    async for response in stream:
        if response.HasField("delta"):
            reply += response.delta.text
        else:
            usage = response.usage
    return reply, usage
