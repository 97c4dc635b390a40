"""A chat engine for tests of the worker's own logic (admission, drain): it holds requests until released.

Engines are passed in, so tests about queueing need not wait for a real model to be slow enough.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator

from gpu_worker.engines.base import ChatEngine, ChatEvent, ChatFinished, ChatInput, EngineLoad, TextDelta


class GatedChatEngine(ChatEngine):
    engine_name = "gated-test-engine"
    max_context_tokens = 64

    def __init__(self, model_id: str = "gated") -> None:
        self.model_id = model_id
        self.release = asyncio.Event()
        self.started = 0

    async def chat(self, request: ChatInput) -> AsyncGenerator[ChatEvent, None]:
        self.started += 1
        yield TextDelta("held")
        await self.release.wait()
        yield ChatFinished(prompt_tokens=1, completion_tokens=1, finish_reason="stop")

    def load(self) -> EngineLoad:
        return EngineLoad()

    async def close(self) -> None:
        self.release.set()
