"""Response messages to the public dataclasses."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from modelyard.v1 import accounting_pb2, backend_pb2, router_pb2
from modelyard.v1 import inference_pb2 as pb

from core import wire
from modelyard_client import _types
from modelyard_client._tools import ReasoningDelta, TokenLogprob, ToolCallDelta, ToolCalls

Event = TypeVar("Event")
# A stream's response to its event, or None for a kind this client does not know (a newer server): skipped.
Convert = Callable[[Any], Event | None]


def usage(u: pb.Usage) -> _types.Usage:
    return _types.Usage(
        request_id=u.request_id,
        backend=u.backend,
        model=u.model,
        prompt_tokens=u.prompt_tokens,
        completion_tokens=u.completion_tokens,
        audio_seconds=u.audio_seconds,
        cost_usd=u.cost_usd,
        ttft_ms=wire.ms_of(u.ttft),
        latency_ms=wire.ms_of(u.latency),
        finish_reason=wire.enum_name(pb.FinishReason, u.finish_reason),
        cache_hit=u.cache_hit,
        queue_wait_ms=wire.ms_of(u.queue_wait),
        spill_reason=u.spill_reason,
    )


def chat_event(response: pb.ChatResponse) -> _types.ChatEvent | None:
    """None for an event this client does not know (a newer server), so callers can skip it."""
    kind = response.WhichOneof("event")
    if kind == "delta":
        logprobs = tuple(
            TokenLogprob(lp.token, lp.logprob, tuple((t.token, t.logprob) for t in lp.top_logprobs))
            for lp in response.delta.logprobs
        )
        return _types.TextDelta(response.delta.text, logprobs)
    if kind == "tool_call":
        call = response.tool_call
        return ToolCallDelta(call.index, call.id, call.name, call.arguments)
    if kind == "reasoning":
        return ReasoningDelta(response.reasoning.text, response.reasoning.signature)
    if kind == "usage":
        return usage(response.usage)
    return None


class ResultBuilder:
    """A whole ChatResult from a chat's events: text, reasoning, assembled tool calls, usage."""

    def __init__(self) -> None:
        self._text: list[str] = []
        self._reasoning: list[str] = []
        self._calls = ToolCalls()
        self._usage: _types.Usage | None = None

    def add(self, event: _types.ChatEvent) -> None:
        if isinstance(event, _types.TextDelta):
            self._text.append(event.text)
        elif isinstance(event, ReasoningDelta):
            self._reasoning.append(event.text)
        elif isinstance(event, ToolCallDelta):
            self._calls.add(event)
        else:
            self._usage = event

    def result(self) -> _types.ChatResult:
        return _types.ChatResult(
            "".join(self._text), self._usage, tuple(self._calls.complete()), "".join(self._reasoning)
        )


def transcribe_event(response: pb.TranscribeResponse) -> _types.TranscribeEvent | None:
    kind = response.WhichOneof("event")
    if kind == "info":
        i = response.info
        return _types.TranscriptionInfo(i.language, i.language_probability, i.duration_seconds)
    if kind == "segment":
        s = response.segment
        words = tuple(_types.Word(w.start, w.end, w.word, w.probability) for w in s.words)
        return _types.Segment(s.id, s.start, s.end, s.text, words, s.avg_logprob, s.no_speech_prob)
    if kind == "usage":
        return usage(response.usage)
    return None


def embeddings(response: pb.EmbedResponse) -> _types.Embeddings:
    return _types.Embeddings(
        vectors=[list(e.values) for e in response.embeddings],
        usage=usage(response.usage) if response.HasField("usage") else None,
    )


def _capabilities(values: Sequence[int]) -> tuple[str, ...]:
    names = []
    for value in values:
        try:
            names.append(pb.Capability.Name(value).removeprefix("CAPABILITY_").lower())
        except ValueError:  # a capability newer than this client
            names.append(str(value))
    return tuple(names)


def models(response: router_pb2.ListModelsResponse) -> list[_types.ModelInfo]:
    return [_types.ModelInfo(m.id, _capabilities(m.capabilities), tuple(m.backends)) for m in response.models]


def _served(m: backend_pb2.ServedModel) -> _types.ServedModel:
    return _types.ServedModel(m.id, _capabilities(m.capabilities), m.engine, m.max_context_tokens)


def _load(load: backend_pb2.LoadReport) -> _types.Load:
    return _types.Load(
        running=load.running,
        waiting=load.waiting,
        kv_cache_usage=load.kv_cache_usage,
        tokens_per_second=load.tokens_per_second,
        queued_audio_seconds=load.queued_audio_seconds,
        draining=load.draining,
        aborted_total=load.aborted_total,
        gpus=tuple(
            _types.GpuInfo(g.index, g.name, g.memory_total_bytes, g.memory_used_bytes, g.utilization)
            for g in load.gpus
        ),
    )


def status(response: router_pb2.GetStatusResponse) -> _types.RouterStatus:
    backends = tuple(
        _types.BackendStatus(
            id=b.id,
            kind=wire.enum_name(router_pb2.BackendKind, b.kind),
            address=b.address,
            models=tuple(_served(m) for m in b.models),
            healthy=b.healthy,
            draining=b.draining,
            load=_load(b.load) if b.HasField("load") else None,
            max_concurrency=b.max_concurrency,
            in_flight=b.in_flight,
            connected_seconds=wire.ms_of(b.connected_for) / 1000,
            enabled=b.enabled,
            priority=b.priority,
            circuit=wire.enum_name(router_pb2.CircuitState, b.circuit),
            success_rate=b.success_rate,
            ttft_ms=wire.ms_of(b.ttft),
            latency_ms=wire.ms_of(b.latency),
            requests=b.requests,
            failures=b.failures,
            last_error=b.last_error,
            last_score=b.last_score,
            score_components=dict(sorted(b.score_components.items())),
            predicted_ttft_ms=wire.ms_of(b.predicted_ttft),
        )
        for b in response.backends
    )
    queues = tuple(
        _types.TenantQueue(
            tenant=q.tenant,
            queued=q.queued,
            oldest_wait_seconds=wire.ms_of(q.oldest_wait) / 1000,
            mean_wait_seconds=wire.ms_of(q.mean_wait) / 1000,
            dispatched=q.dispatched,
            refused=q.refused,
            weight=q.weight,
        )
        for q in response.queues
    )
    return _types.RouterStatus(
        router_id=response.router_id,
        version=response.version,
        uptime_seconds=wire.ms_of(response.uptime) / 1000,
        backends=backends,
        strategy=wire.enum_name(pb.Strategy, response.strategy),
        weights=dict(sorted(response.weights.items())),
        redacted=response.redacted,
        queues=queues,
    )


def usage_report(response: accounting_pb2.GetUsageResponse) -> _types.UsageReport:
    rows = tuple(
        _types.UsageRow(
            backend=r.backend,
            model=r.model,
            calls=r.calls,
            success_rate=r.success_rate,
            prompt_tokens=r.prompt_tokens,
            completion_tokens=r.completion_tokens,
            audio_seconds=r.audio_seconds,
            cost_usd=r.cost_usd,
            latency_p50_ms=r.latency_p50_ms,
            latency_p95_ms=r.latency_p95_ms,
            latency_p99_ms=r.latency_p99_ms,
            ttft_p50_ms=r.ttft_p50_ms,
            cache_hits=r.cache_hits,
        )
        for r in response.rows
    )
    return _types.UsageReport(
        days=response.days, tenant=response.tenant, since_unix=wire.unix_s(response.since), rows=rows
    )
