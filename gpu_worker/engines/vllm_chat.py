"""Chat on vLLM's in-process AsyncLLM: the model's own chat template, tokens streamed as they are produced."""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncGenerator
from typing import Any

from vllm import SamplingParams
from vllm.inputs import TokensPrompt
from vllm.renderers.chat_utils import ChatCompletionMessageParam, CustomChatCompletionMessageParam
from vllm.sampling_params import RequestOutputKind
from vllm.v1.engine.async_llm import AsyncLLM

from core.errors import InvalidArgument
from gpu_worker.engines.base import ChatEngine, ChatEvent, ChatFinished, ChatInput, EngineLoad, TextDelta
from gpu_worker.engines.vllm_setup import batch_size, max_model_len, shutdown_async_llm, start_async_llm
from gpu_worker.engines.vllm_stats import VllmStats

logger = logging.getLogger(__name__)


class VllmChatEngine(ChatEngine):
    engine_name = "vllm"

    def __init__(self, engine: AsyncLLM, model_id: str, stats: VllmStats) -> None:
        self._engine = engine
        self._stats = stats
        self.model_id = model_id
        self.max_context_tokens = max_model_len(engine)
        self.batch_size = batch_size(engine)
        # The model's generation_config.json defaults (temperature, top_p...), as vLLM's OpenAI server uses them.
        self._default_sampling: dict[str, Any] = dict(engine.model_config.get_diff_sampling_param())
        self._aborted = 0

    @classmethod
    def start(
        cls,
        model: str,
        model_id: str,
        *,
        max_num_seqs: int | None = None,
        kv_cache_gib: float | None = None,
        gpu_memory_utilization: float | None = None,
        tensor_parallel_size: int = 1,
    ) -> VllmChatEngine:
        stats = VllmStats()
        engine = start_async_llm(
            model,
            model_id,
            runner="generate",
            max_num_seqs=max_num_seqs,
            kv_cache_gib=kv_cache_gib,
            stats=stats,
            gpu_memory_utilization=gpu_memory_utilization,
            tensor_parallel_size=tensor_parallel_size,
        )
        return cls(engine, model_id, stats)

    async def chat(self, request: ChatInput) -> AsyncGenerator[ChatEvent, None]:
        prompt_ids = self._render_prompt(request)
        params = self._sampling_params(request, len(prompt_ids))
        (engine_input,) = await self._engine.renderer.render_cmpl_async(
            [TokensPrompt(prompt_token_ids=prompt_ids)]
        )
        # Unique per call: the caller's id may repeat (retries, several routers), and abort() goes by this id.
        engine_request_id = f"{request.request_id or 'chat'}-{uuid.uuid4().hex[:12]}"
        completion_tokens = 0
        finish_reason = ""
        finished = False
        try:
            async for output in self._engine.generate(engine_input, params, engine_request_id):
                completion = output.outputs[0]
                completion_tokens += len(completion.token_ids)
                if completion.text:
                    yield TextDelta(completion.text)
                if output.finished:
                    finished = True
                    finish_reason = completion.finish_reason or "stop"
        finally:
            if not finished:
                # The consumer left (cancelled or closed us): free the sequence and its KV blocks now.
                self._aborted += 1
                await self._engine.abort(engine_request_id)
                logger.info("aborted chat request %s", engine_request_id)
        yield ChatFinished(len(prompt_ids), completion_tokens, finish_reason)

    def _render_prompt(self, request: ChatInput) -> list[int]:
        tokenizer = self._engine.get_tokenizer()
        conversation: list[ChatCompletionMessageParam] = [
            CustomChatCompletionMessageParam(role=message.role, content=message.text)
            for message in request.messages
        ]
        text = tokenizer.apply_chat_template(conversation, tokenize=False, add_generation_prompt=True)
        assert isinstance(text, str)  # tokenize=False
        # The template already placed any special tokens the model wants.
        prompt_ids: list[int] = list(tokenizer.encode(text, add_special_tokens=False))
        if len(prompt_ids) >= self.max_context_tokens:
            raise InvalidArgument(
                f"messages: the prompt is {len(prompt_ids)} tokens; {self.model_id} has room for "
                f"{self.max_context_tokens} tokens in all, prompt and answer together"
            )
        return prompt_ids

    def _sampling_params(self, request: ChatInput, prompt_tokens: int) -> SamplingParams:
        sampling = request.sampling
        room = self.max_context_tokens - prompt_tokens
        fields: dict[str, Any] = dict(self._default_sampling)
        # Unset max_tokens means "until the model stops", bounded by the context window like OpenAI's API.
        fields["max_tokens"] = min(sampling.max_tokens, room) if sampling.max_tokens is not None else room
        if sampling.temperature is not None:
            fields["temperature"] = sampling.temperature
        if sampling.top_p is not None:
            fields["top_p"] = sampling.top_p
        if sampling.stop:
            fields["stop"] = list(sampling.stop)
        if sampling.seed is not None:
            fields["seed"] = sampling.seed
        return SamplingParams(n=1, output_kind=RequestOutputKind.DELTA, **fields)

    def load(self) -> EngineLoad:
        unfinished = int(self._engine.get_num_unfinished_requests())
        # Scheduler figures arrive only while the engine steps; with nothing unfinished they may be stale.
        waiting = min(self._stats.scheduler_waiting, unfinished)
        return EngineLoad(
            running=unfinished - waiting,
            waiting=waiting,
            kv_cache_usage=self._stats.kv_cache_usage if unfinished else 0.0,
            tokens_per_second=self._stats.tokens_per_second(),
            aborted_total=self._aborted,
        )

    async def close(self) -> None:
        shutdown_async_llm(self._engine)
