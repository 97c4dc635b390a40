"""Engine-side load figures from vLLM's own stat-logger hook: scheduler queue sizes, KV-cache use, tokens/s.

vLLM calls `record()` on the event loop's thread each time engine-core outputs arrive, so the figures are as
fresh as the last engine step. vLLM documents the stat-logger interface as not yet stable; everything that
touches it is in this file.
"""

from __future__ import annotations

import time
from collections import deque
from typing import Any

from vllm.config import VllmConfig
from vllm.v1.metrics.loggers import StatLoggerBase

_THROUGHPUT_WINDOW_S = 5.0


class VllmStats:
    """Latest scheduler figures and a sliding window of generated tokens for one AsyncLLM."""

    def __init__(self, window_s: float = _THROUGHPUT_WINDOW_S) -> None:
        self.window_s = window_s
        self.scheduler_running = 0
        self.scheduler_waiting = 0
        self.kv_cache_usage = 0.0
        self._generated: deque[tuple[float, int]] = deque()

    def logger_factory(self, vllm_config: VllmConfig, engine_index: int = 0) -> StatLoggerBase:
        """Passed to AsyncLLM(stat_loggers=[...]); vLLM calls it once per engine core."""
        return _RecordingStatLogger(self)

    def observe(self, running: int, waiting: int, kv_cache_usage: float) -> None:
        self.scheduler_running = running
        self.scheduler_waiting = waiting
        self.kv_cache_usage = kv_cache_usage

    def add_generated(self, tokens: int, now: float | None = None) -> None:
        if tokens > 0:
            self._generated.append((now if now is not None else time.monotonic(), tokens))

    def tokens_per_second(self, now: float | None = None) -> float:
        now = now if now is not None else time.monotonic()
        horizon = now - self.window_s
        while self._generated and self._generated[0][0] < horizon:
            self._generated.popleft()
        return sum(tokens for _, tokens in self._generated) / self.window_s


class _RecordingStatLogger(StatLoggerBase):
    def __init__(self, stats: VllmStats) -> None:
        self._stats = stats

    def record(
        self,
        scheduler_stats: Any,
        iteration_stats: Any,
        mm_cache_stats: Any = None,
        engine_idx: int = 0,
    ) -> None:
        if scheduler_stats is not None:
            self._stats.observe(
                scheduler_stats.num_running_reqs,
                scheduler_stats.num_waiting_reqs,
                scheduler_stats.kv_cache_usage,
            )
        if iteration_stats is not None:
            self._stats.add_generated(iteration_stats.num_generation_tokens)

    def log_engine_initialized(self) -> None:
        """Nothing to announce; the worker logs its own readiness."""
