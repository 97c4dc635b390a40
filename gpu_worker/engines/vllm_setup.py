"""Building an in-process vLLM `AsyncLLM` with the settings that work both on CUDA hosts and on CPU."""

from __future__ import annotations

import logging
from typing import Any, Literal

from vllm.config import StructuredOutputsConfig
from vllm.config.kv_events import KVEventsConfig
from vllm.engine.arg_utils import AsyncEngineArgs
from vllm.v1.engine.async_llm import AsyncLLM
from vllm.v1.metrics.loggers import StatLoggerFactory

from gpu_worker.engines.vllm_stats import VllmStats

logger = logging.getLogger(__name__)

_GIB = 1024**3


def cuda_available() -> bool:
    import torch

    return bool(torch.cuda.is_available())


def start_async_llm(
    model: str,
    served_name: str,
    *,
    runner: Literal["generate", "pooling"],
    max_num_seqs: int | None = None,
    kv_cache_gib: float | None = None,
    stats: VllmStats | None = None,
    gpu_memory_utilization: float | None = None,
    tensor_parallel_size: int = 1,
    kv_events: KVEventsConfig | None = None,
) -> AsyncLLM:
    """Start an AsyncLLM (its engine core is a child process) and return it once it can take requests.

    None leaves a setting to vLLM: max_num_seqs then follows the device (hundreds on a data-centre GPU), and
    gpu_memory_utilization is vLLM's 0.9 of the GPU's memory (CUDA only; the CPU build sizes its KV cache from
    VLLM_CPU_KVCACHE_SPACE instead).
    """
    on_cuda = cuda_available()
    extra: dict[str, Any] = {}
    if on_cuda and kv_cache_gib is not None:
        extra["kv_cache_memory_bytes"] = int(kv_cache_gib * _GIB)
    if on_cuda and gpu_memory_utilization is not None:
        extra["gpu_memory_utilization"] = gpu_memory_utilization
    if max_num_seqs is not None:
        extra["max_num_seqs"] = max_num_seqs
    if runner == "generate":
        # Structured outputs (tool arguments, JSON answers) on xgrammar, as compact JSON: the grammar otherwise
        # allows any whitespace between tokens, and a weak model can spend its whole budget there without closing the
        # object. vLLM reads this engine-wide, not per request.
        extra["structured_outputs_config"] = StructuredOutputsConfig(
            backend="xgrammar", disable_any_whitespace=True
        )
    if kv_events is not None:  # prefix caching is on by default; this reports what it holds
        extra["kv_events_config"] = kv_events
    args = AsyncEngineArgs(
        model=model,
        served_model_name=[served_name],
        runner=runner,
        tensor_parallel_size=tensor_parallel_size,
        # CPU kernels in vLLM's CPU build are float32/bfloat16 only, and CUDA graphs do not exist there.
        dtype="auto" if on_cuda else "float32",
        enforce_eager=not on_cuda,
        # Our own stat logger below replaces the periodic log lines; it is the worker's load report instead.
        disable_log_stats=True,
        **extra,
    )
    stat_loggers: list[StatLoggerFactory] | None = [stats.logger_factory] if stats is not None else None
    logger.info("starting vLLM (%s) for %s from %s", runner, served_name, model)
    return AsyncLLM.from_engine_args(args, stat_loggers=stat_loggers)


def max_model_len(engine: AsyncLLM) -> int:
    return int(engine.model_config.max_model_len)


def batch_size(engine: AsyncLLM) -> int:
    """The max_num_seqs vLLM settled on (its own default when none was given)."""
    return int(engine.vllm_config.scheduler_config.max_num_seqs)


def shutdown_async_llm(engine: AsyncLLM) -> None:
    """Stop the engine core and free its IPC.

    vLLM 0.32 closes its ZeroMQ sockets on shutdown but leaves the context itself to the garbage collector,
    which then warns; terminating it here keeps shutdown quiet. Looked up defensively: it is vLLM's internal.
    """
    engine.shutdown()
    resources = getattr(getattr(engine, "engine_core", None), "resources", None)
    context = getattr(resources, "ctx", None)
    if context is not None and not context.closed:
        context.destroy(linger=0)
