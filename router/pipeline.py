"""One request pipeline for Chat, Embed and Transcribe, whatever door the request came in by.

    authenticate -> validate -> estimate tokens once -> admit (rate limits) -> reserve budget -> plan
    -> relay with failover -> settle

A transport (the gRPC servicer, later an HTTP door) hands over the request and a `Call` (the caller's
credentials and deadline) and maps the StatusError it may get to its own status codes; nothing here sees
a transport. The ticket (router.accounting.ticket) settles the request as its `with` block ends: ledger,
spend, metrics, cache, with the StatusError that ended it, if any, as the outcome.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from modelyard.v1 import inference_pb2 as pb

from core import logs, tracing, wire
from core.errors import InvalidArgument, ModelNotFound, NoBackendAvailable
from core.validation import validate_chat, validate_embed, validate_transcribe_config
from router.accounting.accountant import Accounting
from router.accounting.auth import Caller
from router.accounting.estimates import NO_ESTIMATE, TokenEstimate, estimate_chat, estimate_embed
from router.accounting.ticket import Metadata, Ticket
from router.routing.failover import Attempt, MidStreamFailure, UpstreamFailed, stream_with_failover
from router.routing.migration import Answer, relay_chat, settle_parts
from router.routing.placement import Hold, Placement
from router.routing.request_facts import for_model, has_images
from router.routing.scheduler import Scheduler
from router.routing.scoring.base import Candidate
from router.routing.state import RoutingState
from router.routing.warm_start import WarmStart
from router.security.failure_text import for_tenant
from router.security.image_fetch import inline_image_urls
from router.upload_gate import UploadGate, UploadMeter

T = TypeVar("T", pb.ChatResponse, pb.EmbedResponse, pb.TranscribeResponse)
# The whole upload of a transcription: its config and the audio, read by the transport, which hands each
# chunk's size to the meter before keeping it.
Upload = tuple[pb.TranscribeConfig, Sequence[bytes]]
ReadUpload = Callable[[UploadMeter], Awaitable[Upload]]


@dataclass(frozen=True)
class Call:
    """What the transport knows about the caller: credentials and how long the caller will wait."""

    metadata: Metadata = ()
    deadline: float | None = None  # a time.monotonic() value; None: no deadline


class RequestPipeline:
    def __init__(self, state: RoutingState, scheduler: Scheduler, accounting: Accounting) -> None:
        self._state = state
        self._scheduler = scheduler
        self._accounting = accounting
        self._input = state.config.input
        limits = state.config.limits
        self.uploads = UploadGate(
            limits.max_uploads,
            limits.upload_buffer_bytes,
            self._input,
            per_tenant=limits.max_uploads_per_tenant,
            idle_timeout_s=limits.upload_idle_timeout_s,
            min_bytes_per_s=limits.upload_min_bytes_per_s,
        )
        self.warm_start = WarmStart(state.registry, state.config.startup_wait_s)
        # The admission queue and local-first placement (router.routing.placement): one Hold per request.
        self.placement = Placement(state, scheduler, accounting.metrics.registry)

    def caller(self, call: Call) -> Caller:
        """Who is calling (raises Unauthenticated): for answers that depend on it, such as a redacted status."""
        return self._accounting.auth.authenticate(call.metadata)

    async def chat(self, request: pb.ChatRequest, call: Call) -> AsyncIterator[pb.ChatResponse]:
        with (
            tracing.request_span("modelyard.router/Chat", call.metadata) as trace,
            self._accounting.ticket("chat", call.metadata, request) as ticket,
            self.placement.hold() as hold,
        ):
            with tracing.stage(trace, "admission"):
                ticket.authenticate()
                logs.bind(tenant=ticket.tenant)
                validate_chat(request, self._input)  # caps first: bounded work for what follows
                self._state.prefixes.isolate(request, ticket.tenant)
                _assign_request_id(request)
                _describe(trace, request.request_id, ticket.tenant, request.model)
                estimate = estimate_chat(request)
                sampling = request.sampling
                if self._input.default_max_tokens and not sampling.HasField("max_tokens"):
                    sampling.max_tokens = self._input.default_max_tokens
                await ticket.admit(estimate)
                await inline_image_urls(request, self._input)  # no backend fetches a URL itself
                cached = await ticket.cached_answer()
            if cached is not None:
                for response in cached:
                    yield response
                return
            await hold.admit(ticket, request, pb.CAPABILITY_CHAT, call.deadline)
            candidates = await self._plan(
                trace,
                ticket,
                request,
                pb.CAPABILITY_CHAT,
                estimate,
                needs_vision=has_images(request),
                prefix_keys=lambda: self._state.prefixes.keys(request),
                deadline=call.deadline,
                hold=hold,
            )
            answer = Answer(request, self._state.config.migration)
            async for response in self._relay(
                trace, ticket, candidates, answer.open, request.request_id, call.deadline, answer
            ):
                hold.annotate(response)
                yield response

    async def embed(self, request: pb.EmbedRequest, call: Call) -> pb.EmbedResponse:
        with (
            tracing.request_span("modelyard.router/Embed", call.metadata) as trace,
            self._accounting.ticket("embed", call.metadata, request) as ticket,
            self.placement.hold() as hold,
        ):
            with tracing.stage(trace, "admission"):
                ticket.authenticate()
                logs.bind(tenant=ticket.tenant)
                validate_embed(request, self._input)
                _assign_request_id(request)
                _describe(trace, request.request_id, ticket.tenant, request.model)
                estimate = estimate_embed(request)
                await ticket.admit(estimate)
            await hold.admit(ticket, request, pb.CAPABILITY_EMBED, call.deadline)
            candidates = await self._plan(
                trace, ticket, request, pb.CAPABILITY_EMBED, estimate, deadline=call.deadline, hold=hold
            )
            answer: pb.EmbedResponse | None = None
            # To the end of the one-item stream, so failover records the attempt as a success.
            async for response in self._relay(
                trace,
                ticket,
                candidates,
                lambda c, timeout: _single(c.backend.embed(for_model(request, c.model), timeout)),
                request.request_id,
                call.deadline,
            ):
                hold.annotate(response)
                answer = response
        if answer is None:
            raise AssertionError("unreachable: failover yields or raises")
        return answer

    async def transcribe(self, upload: ReadUpload, call: Call) -> AsyncIterator[pb.TranscribeResponse]:
        """`upload` reads the config and the whole audio, once the caller is known, admitted under its
        limits, and holds an upload slot: no byte is buffered before."""
        with (
            tracing.request_span("modelyard.router/Transcribe", call.metadata) as trace,
            self._accounting.ticket("transcribe", call.metadata, pb.TranscribeConfig()) as ticket,
            self.placement.hold() as hold,
        ):
            with tracing.stage(trace, "admission"):
                ticket.authenticate()
                logs.bind(tenant=ticket.tenant)
                await ticket.admit(NO_ESTIMATE)
            with self.uploads.slot(ticket.tenant) as meter:  # held to the end: the audio stays for a retry
                config, audio = await upload(meter)
                ticket.request = config
                validate_transcribe_config(config, self._input)
                if not any(audio):
                    raise InvalidArgument("audio: no audio bytes were sent")
                _assign_request_id(config)
                _describe(trace, config.request_id, ticket.tenant, config.model)
                await hold.admit(ticket, config, pb.CAPABILITY_TRANSCRIBE, call.deadline)
                candidates = await self._plan(
                    trace,
                    ticket,
                    config,
                    pb.CAPABILITY_TRANSCRIBE,
                    NO_ESTIMATE,
                    deadline=call.deadline,
                    hold=hold,
                )
                async for response in self._relay(
                    trace,
                    ticket,
                    candidates,
                    lambda c, timeout: c.backend.transcribe(for_model(config, c.model), audio, timeout),
                    config.request_id,
                    call.deadline,
                ):
                    hold.annotate(response)
                    yield response

    async def _plan(
        self,
        trace: tracing.Span,
        ticket: Ticket,
        request: pb.ChatRequest | pb.EmbedRequest | pb.TranscribeConfig,
        capability: pb.Capability,
        estimate: TokenEstimate,
        needs_vision: bool = False,
        prefix_keys: Callable[[], Sequence[int]] | None = None,
        deadline: float | None = None,
        hold: Hold | None = None,
    ) -> list[Candidate]:
        """Tokens reserved against the budget, candidates best first (cheaper ones once the budget runs low),
        then the first one's estimated cost reserved too. Just after start, a plan that finds no backend
        waits for workers to register (router.routing.warm_start).

        Nothing here suspends unless it must: without a budget for the tenant the budget steps are skipped
        (their coroutines return at once, but building and awaiting them costs), and the scheduler is
        called directly, the warm start's wait only after it found no backend. A suspension would let
        the loop run other callbacks (gRPC events, load reports) inside the request's scheduling."""
        self._scheduler.check_hints(request.routing)  # a wrong request hears so before any budget answer
        with tracing.stage(trace, "scheduling") as span:
            preferred: str | None = None
            if ticket.budgeted:
                preferred = await ticket.preferred_strategy()
                await ticket.reserve_budget(estimate)
            prices = self._state.prices

            def plan() -> list[Candidate]:
                return self._scheduler.plan(
                    request.model,
                    capability,
                    request.routing,
                    estimate_cost=lambda model: estimate.cost(prices, model),
                    needs_vision=needs_vision,
                    prefix_keys=prefix_keys,
                    strategy=preferred,
                    order=hold.order if hold is not None else None,
                )

            try:
                candidates = plan()
            except (NoBackendAvailable, ModelNotFound) as error:
                candidates = await self.warm_start.retry(plan, deadline, error)
            if ticket.holds_budget:
                await ticket.reserve_cost(candidates[0].estimated_cost_usd)
            if tracing.enabled():
                span.set("modelyard.candidates", ",".join(c.backend.id for c in candidates))
            return candidates

    async def _relay(
        self,
        trace: tracing.Span,
        ticket: Ticket,
        candidates: Sequence[Candidate],
        open_stream: Callable[[Candidate, float | None], AsyncIterator[T]],
        request_id: str,
        deadline: float | None,
        answer: Answer | None = None,
    ) -> AsyncIterator[T]:
        """The first candidate's answer that arrives, its usage completed by the router, seen by the ticket.
        A chat `answer` may migrate mid-stream (router.routing.migration)."""
        attempt = Attempt()

        attempts = 0

        def attempt_on(candidate: Candidate, timeout: float | None) -> AsyncIterator[T]:
            nonlocal attempts
            attempts += 1
            logs.bind(backend=candidate.backend.id, model=candidate.model)
            ticket.upstream(candidate, attempt)  # the relay adds up its waits on backends in `attempt`
            if not tracing.enabled():
                return open_stream(candidate, timeout)
            return _traced_attempt(trace, candidate, attempts, lambda: open_stream(candidate, timeout))

        if answer is None:
            stream = stream_with_failover(candidates, attempt_on, self._state, deadline, attempt)
        else:
            migrations = self._accounting.metrics.migrations
            stream = relay_chat(  # type: ignore[assignment]  # T is pb.ChatResponse with an answer
                answer,
                candidates,
                attempt_on,  # type: ignore[arg-type]
                self._state,
                deadline,
                attempt,
                lambda reason: self._accounting.metrics.child(migrations, reason).inc(),
            )
        try:
            async for response in stream:
                if response.HasField("usage"):
                    self._settle_usage(response.usage, request_id, attempt)
                    if answer is not None and answer.parts:
                        settle_parts(response.usage, answer, self._state.prices)
                ticket.observe(response)
                yield response
        except (UpstreamFailed, MidStreamFailure) as e:
            if ticket.caller is not None and ticket.caller.admin:
                raise
            raise for_tenant(e) from e  # backends' own words (addresses, key errors) are for admins

    def _settle_usage(self, usage: pb.Usage, request_id: str, attempt: Attempt) -> None:
        """The router's view wins for who served, what it cost and how long it took, retries included.
        Backends report what was used; only the router prices it."""
        usage.request_id = request_id
        if attempt.chosen is not None:
            usage.backend = attempt.chosen.backend.id
            usage.model = usage.model or attempt.chosen.model
        usage.cost_usd = self._state.prices.cost(
            attempt.chosen.model if attempt.chosen else usage.model,
            usage.prompt_tokens,
            usage.completion_tokens,
            usage.audio_seconds,
        )
        if attempt.ttft_ms is not None:
            usage.ttft.CopyFrom(wire.duration_ms(attempt.ttft_ms))
        usage.latency.CopyFrom(wire.duration_ms((time.perf_counter() - attempt.started_at) * 1000))


def _assign_request_id(request: pb.ChatRequest | pb.EmbedRequest | pb.TranscribeConfig) -> None:
    if not request.request_id:
        request.request_id = uuid.uuid4().hex
    # From here on, every log line of this request names it (and its tenant, once authenticated).
    logs.bind(request_id=request.request_id, model=request.model)


def _describe(trace: tracing.Span, request_id: str, tenant: str, model: str) -> None:
    trace.set("modelyard.request_id", request_id)
    trace.set("modelyard.tenant", tenant)
    trace.set("modelyard.model", model)


async def _traced_attempt(
    trace: tracing.Span, candidate: Candidate, number: int, open_stream: Callable[[], AsyncIterator[T]]
) -> AsyncIterator[T]:
    """One attempt's stream inside an "attempt" span, with a "first_token" span until its first response; the
    upstream call carries the attempt's traceparent."""
    attributes = {"modelyard.backend": candidate.backend.id, "modelyard.model": candidate.model}
    with tracing.stage(trace, "attempt", **attributes, **{"modelyard.attempt": number}) as span:
        first_token = span.child("first_token")
        tracing.call_with(span)
        stream = open_stream()
        try:
            async for response in stream:
                first_token.end()
                yield response
        finally:
            first_token.end()
            # Close the upstream now (its call is cancelled), not when the garbage collector gets to it.
            close = getattr(stream, "aclose", None)
            if close is not None:
                await close()


async def _single(response: Awaitable[pb.EmbedResponse]) -> AsyncIterator[pb.EmbedResponse]:
    yield await response
