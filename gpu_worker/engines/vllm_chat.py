"""Chat on vLLM's in-process AsyncLLM: the model's own chat template (with the tools offered), tokens streamed
as they are produced; tool calls and structured output as gpu_worker.engines.vllm_tools describes."""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncGenerator
from typing import Any

from vllm import SamplingParams
from vllm.exceptions import VLLMClientError
from vllm.inputs import TokensPrompt
from vllm.logprobs import Logprob
from vllm.outputs import CompletionOutput
from vllm.sampling_params import RequestOutputKind
from vllm.v1.engine.async_llm import AsyncLLM

from core.errors import InvalidArgument
from core.prefix_keys import DEFAULT_BLOCK_BYTES
from gpu_worker.engines.base import (
    ChatEngine,
    ChatEvent,
    ChatFinished,
    ChatInput,
    EngineLoad,
    ReasoningText,
    TokenLogprob,
)
from gpu_worker.engines.vllm_kv_events import KvEventListener
from gpu_worker.engines.vllm_reasoning import ReasoningSplit, check_reasoning_parser
from gpu_worker.engines.vllm_setup import batch_size, max_model_len, shutdown_async_llm, start_async_llm
from gpu_worker.engines.vllm_stats import VllmStats
from gpu_worker.engines.vllm_tools import (
    ToolOutput,
    known_tool_parsers,
    make_tool_parser,
    structured_outputs,
    template_tools,
)
from gpu_worker.prefix_cache import PrefixCacheTracker, PromptPrefix

logger = logging.getLogger(__name__)


class VllmChatEngine(ChatEngine):
    engine_name = "vllm"

    def __init__(
        self,
        engine: AsyncLLM,
        model_id: str,
        stats: VllmStats,
        tool_parser: str | None = None,
        kv_events: KvEventListener | None = None,
        reasoning_parser: str | None = None,
    ) -> None:
        self._engine = engine
        self._tool_parser = tool_parser  # vLLM's parser for the model's own tool-call syntax (e.g. "hermes")
        self._reasoning_parser = reasoning_parser  # vLLM's parser for its thinking (e.g. "deepseek_r1")
        self._stats = stats
        self._kv_events = kv_events
        self.cache_events = kv_events
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
        tool_parser: str | None = None,
        reasoning_parser: str | None = None,
    ) -> VllmChatEngine:
        if tool_parser is not None and tool_parser not in known_tool_parsers():
            raise ValueError(f"tool parser {tool_parser!r}: not one of {', '.join(known_tool_parsers())}")
        if reasoning_parser is not None:
            check_reasoning_parser(reasoning_parser)
        stats = VllmStats()
        kv_events = KvEventListener(model_id, PrefixCacheTracker(DEFAULT_BLOCK_BYTES))
        engine = start_async_llm(
            model,
            model_id,
            runner="generate",
            max_num_seqs=max_num_seqs,
            kv_cache_gib=kv_cache_gib,
            stats=stats,
            gpu_memory_utilization=gpu_memory_utilization,
            tensor_parallel_size=tensor_parallel_size,
            kv_events=kv_events.engine_config(),
        )
        return cls(engine, model_id, stats, tool_parser, kv_events, reasoning_parser)

    async def chat(self, request: ChatInput) -> AsyncGenerator[ChatEvent, None]:
        prompt_ids = self._render_prompt(request)
        parser, parser_request = None, None
        if self._tool_parser is not None and request.tools:
            parser, parser_request = make_tool_parser(
                self._tool_parser, self._engine.get_tokenizer(), request
            )
        params = self._sampling_params(request, len(prompt_ids))
        if parser_request is not None:
            # Some parsers need the model's special tokens (e.g. <tool_call>) left in the text.
            params.skip_special_tokens = parser_request.skip_special_tokens
        prompt = TokensPrompt(prompt_token_ids=prompt_ids)
        if request.cache_salt:
            prompt["cache_salt"] = request.cache_salt  # no shared prefix blocks with other salts
        (engine_input,) = await self._engine.renderer.render_cmpl_async([prompt])
        # Unique per call: the caller's id may repeat (retries, several routers), and abort() goes by this id.
        engine_request_id = f"{request.request_id or 'chat'}-{uuid.uuid4().hex[:12]}"
        output_events = ToolOutput(request, parser, parser_request)
        reasoning = (
            ReasoningSplit(self._reasoning_parser, self._engine.get_tokenizer(), prompt_ids)
            if self._reasoning_parser is not None
            else None
        )
        if self._kv_events is not None:
            # vLLM tags the blocks this request stores with its session id: the tracker maps them to our keys.
            self._kv_events.ensure_started()
            prefix = PromptPrefix(request.prefix_keys, request.rendered_bytes, len(prompt_ids))
            self._kv_events.tracker.begin(engine_request_id, prefix)
        completion_tokens = 0
        finish_reason = ""
        finished = False
        try:
            async for output in self._engine.generate(
                engine_input, params, engine_request_id, session_id=engine_request_id
            ):
                completion = output.outputs[0]
                completion_tokens += len(completion.token_ids)
                logprobs = (
                    self._logprobs(completion, request.logprobs) if request.logprobs is not None else ()
                )
                text, token_ids = completion.text, completion.token_ids
                if reasoning is not None:
                    thought, text = reasoning.feed(text, token_ids)
                    if thought:
                        yield ReasoningText(thought)
                    token_ids = token_ids if text else []
                for event in output_events.feed(text, token_ids, logprobs):
                    yield event
                if output.finished:
                    finished = True
                    finish_reason = completion.finish_reason or "stop"
        except VLLMClientError as error:
            # vLLM refused the request itself (a schema its structured outputs cannot compile, a bad parameter):
            # the caller's to fix, with vLLM's own words, not an engine failure.
            raise InvalidArgument(
                f"{self.model_id} refused the request: {error}", field=getattr(error, "parameter", None) or ""
            ) from None
        finally:
            if not finished:
                # The consumer left (cancelled or closed us): free the sequence and its KV blocks now.
                self._aborted += 1
                await self._engine.abort(engine_request_id)
                logger.info("aborted chat request %s", engine_request_id)
        for event in output_events.finish():
            yield event
        if output_events.called and finish_reason == "stop":
            finish_reason = "tool_calls"
        yield ChatFinished(len(prompt_ids), completion_tokens, finish_reason)

    def _logprobs(self, completion: CompletionOutput, top_n: int) -> tuple[TokenLogprob, ...]:
        """The chosen token's logprob and the likeliest alternatives, per token of this delta."""
        tokenizer = self._engine.get_tokenizer()
        result = []
        for token_id, position in zip(completion.token_ids, completion.logprobs or (), strict=False):
            if position is None:
                continue

            def text(tid: int, lp: Logprob) -> str:
                return lp.decoded_token if lp.decoded_token is not None else str(tokenizer.decode([tid]))

            # vLLM adds the chosen token to the top N when it is not among them; its rank tells.
            ranked = sorted(
                ((tid, lp) for tid, lp in position.items() if lp.rank is not None and lp.rank <= top_n),
                key=lambda item: item[1].rank or 0,
            )
            chosen = position.get(token_id)
            top = tuple((text(tid, lp), float(lp.logprob)) for tid, lp in ranked)
            result.append(
                TokenLogprob(
                    token=text(token_id, chosen) if chosen is not None else str(tokenizer.decode([token_id])),
                    logprob=float(chosen.logprob) if chosen is not None else 0.0,
                    top=top,
                )
            )
        return tuple(result)

    def _render_prompt(self, request: ChatInput) -> list[int]:
        tokenizer = self._engine.get_tokenizer()
        conversation: list[Any] = []  # OpenAI-shaped message dicts, as chat templates take them
        for message in request.messages:
            entry: dict[str, Any] = {"role": message.role, "content": message.text}
            if message.tool_calls:
                # Templates take arguments as a mapping (they serialize it in the model's own syntax).
                entry["tool_calls"] = [
                    {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
                    for c in message.tool_calls
                ]
            if message.tool_call_id:
                entry["tool_call_id"] = message.tool_call_id
            conversation.append(entry)
        text = tokenizer.apply_chat_template(
            conversation,
            tools=template_tools(request),
            tokenize=False,
            add_generation_prompt=not request.continue_final,
            continue_final_message=request.continue_final,
        )
        assert isinstance(text, str)  # tokenize=False
        if request.continue_final:
            text = _with_trailing_space(text, request.messages[-1].text)
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
        limit = sampling.max_tokens
        if limit is not None and request.continue_final:
            # max_tokens bounds the whole answer: the part another backend generated counts against it.
            continued = len(
                self._engine.get_tokenizer().encode(request.messages[-1].text, add_special_tokens=False)
            )
            limit = max(1, limit - continued)
        fields["max_tokens"] = min(limit, room) if limit is not None else room
        if sampling.temperature is not None:
            fields["temperature"] = sampling.temperature
        if sampling.top_p is not None:
            fields["top_p"] = sampling.top_p
        if sampling.stop:
            fields["stop"] = list(sampling.stop)
        if sampling.seed is not None:
            fields["seed"] = sampling.seed
        if sampling.presence_penalty is not None:
            fields["presence_penalty"] = sampling.presence_penalty
        if sampling.frequency_penalty is not None:
            fields["frequency_penalty"] = sampling.frequency_penalty
        if request.logprobs is not None:
            fields["logprobs"] = request.logprobs
        constraint = structured_outputs(request)
        if constraint is not None:
            fields["structured_outputs"] = constraint
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
        if self._kv_events is not None:
            await self._kv_events.close()


def _with_trailing_space(rendered: str, final: str) -> str:
    """The rendered prompt ending in the final message exactly. Templates that trim message content drop
    its trailing whitespace (a newline the model already generated); the model would write it again and
    the client would see it twice, so it goes back on."""
    tail = final[len(final.rstrip()) :]
    if tail and not rendered.endswith(final) and rendered.endswith(final.rstrip()):
        return rendered + tail
    return rendered
