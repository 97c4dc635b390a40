"""Prefix-aware routing, simulated: the real Scheduler and scorers over simulated vLLM-like workers.

Time is simulated (an event queue, no sleeping, no processes), so the figures are deterministic for a
seed and undisturbed by whatever else runs on the machine. The router's side is the real code: a
RoutingState, the Scheduler, every scorer, the prefix index on the simulated clock, WorkerBackend
objects whose in-flight counts and load reports the simulation keeps, and the TTFT/latency EWMAs fed as
failover feeds them. Each simulated worker has:
- `slots` sequences running at once and a queue behind them (the router stops at slots + queue);
- its own LRU prefix cache of 16-token blocks (chained hashes of the conversation, as vLLM's automatic
  prefix caching keeps blocks), filled with the prompt at prefill and with the answer at the end;
- one prefill pipeline: prompts are prefilled one after another, each taking a fixed cost plus a cost per
  uncached token, so a cache hit saves time for this request and for those queued behind it;
- decode at a fixed time per output token, in parallel across its running sequences.
"""

from __future__ import annotations

import heapq
import itertools
import random
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field

from modelyard.v1 import backend_pb2
from modelyard.v1 import inference_pb2 as pb

from bench.prefix_workload import BYTES_PER_TOKEN, Session, WorkloadSettings, sessions, think_time
from bench.report import Report, Table, Target, ms, percentile
from core.errors import StatusError
from core.prefix_keys import block_keys, render
from router.backends.base import ModelSpec
from router.backends.worker import WorkerBackend
from router.config.settings import RouterConfig
from router.routing.prefix_routing import PrefixRouting
from router.routing.scheduler import Scheduler
from router.routing.state import RoutingState

ROUND_ROBIN, COMPOSITE, COMPOSITE_PREFIX = "round_robin", "composite (no prefix)", "composite + prefix"
STRATEGIES = (ROUND_ROBIN, COMPOSITE, COMPOSITE_PREFIX)
ENGINE_BLOCK_TOKENS = 16
MODEL = "sim-model"


@dataclass(frozen=True)
class WorkerModel:
    workers: int = 4
    slots: int = 16
    queue: int = 32
    cache_tokens: int = 40_000  # KV cache per worker
    prefill_base_s: float = 0.010
    prefill_per_token_s: float = 0.0002  # 5,000 prompt tokens/s
    decode_per_token_s: float = 0.015


@dataclass
class Job:
    session: Session
    turn: int
    request: pb.ChatRequest
    sent_s: float
    prompt_tokens: int = 0
    cached_tokens: int = 0
    first_token_s: float = 0.0
    pinned: int = 0


@dataclass
class SimWorker:
    backend: WorkerBackend
    model: WorkerModel
    cache: OrderedDict[int, None] = field(default_factory=OrderedDict)
    running: int = 0
    waiting: deque[Job] = field(default_factory=deque)
    prefill_free_s: float = 0.0
    served: int = 0
    pinned_tokens: int = 0  # prompt and answer tokens of the running sequences

    def report(self) -> None:
        """What the worker's load report would say (sent instantly here, every second in real life): KV-cache
        use counts the blocks its running sequences pin, prompt and answer, as vLLM reports it."""
        self.backend.load = backend_pb2.LoadReport(
            running=self.running,
            waiting=len(self.waiting),
            kv_cache_usage=min(1.0, self.pinned_tokens / self.model.cache_tokens),
        )

    def cached_prefix(self, keys: list[int]) -> int:
        hits = 0
        for key in keys:
            if key not in self.cache:
                break
            self.cache.move_to_end(key)
            hits += 1
        return hits

    def store(self, keys: list[int]) -> None:
        for key in keys:
            self.cache[key] = None
            self.cache.move_to_end(key)
        while len(self.cache) > self.model.cache_tokens // ENGINE_BLOCK_TOKENS:
            self.cache.popitem(last=False)


@dataclass
class Outcome:
    ttft_s: list[float] = field(default_factory=list)
    prompt_tokens: int = 0
    cached_tokens: int = 0
    refused: int = 0
    served: dict[str, int] = field(default_factory=dict)
    busy_token_s: dict[str, float] = field(default_factory=dict)  # prefill seconds per worker

    @property
    def hit_rate(self) -> float:
        return self.cached_tokens / self.prompt_tokens if self.prompt_tokens else 0.0

    @property
    def balance(self) -> float:
        counts = list(self.served.values())
        return max(counts) / max(1, min(counts)) if counts else float("nan")


def _engine_keys(rendered: bytes) -> list[int]:
    return block_keys(rendered, ENGINE_BLOCK_TOKENS * BYTES_PER_TOKEN)


class Simulation:
    def __init__(self, strategy: str, workload: WorkloadSettings, model: WorkerModel) -> None:
        self.strategy = strategy
        self.workload = workload
        self.model = model
        self.now = 0.0
        self._events: list[tuple[float, int, Callable[[], None]]] = []
        self._seq = itertools.count()
        self._rng = random.Random(workload.seed + 1)  # think times: the same for every strategy
        self.state = RoutingState(RouterConfig(router_id="sim"))
        self.state.prefixes = PrefixRouting(self.state.config.prefix, clock=lambda: self.now)
        if strategy == COMPOSITE:  # the default strategy, less its prefix weight
            weights = self.state.strategies.weights("composite")
            weights.pop("prefix")
            self.state.strategies.set_weights("composite", weights)
        self.scheduler = Scheduler(self.state)
        self.workers: dict[str, SimWorker] = {}
        for i in range(model.workers):
            backend = WorkerBackend(
                id=f"w{i}",
                kind="worker",
                models=[ModelSpec(MODEL, frozenset({pb.CAPABILITY_CHAT}))],
                max_concurrency=model.slots,
                max_queue=model.queue,
            )
            self.state.registry.add(backend)
            self.workers[backend.id] = SimWorker(backend, model)
        self._rotation = itertools.cycle(sorted(self.workers))
        self.outcome = Outcome(
            served={w: 0 for w in self.workers}, busy_token_s={w: 0.0 for w in self.workers}
        )

    def at(self, when: float, action: Callable[[], None]) -> None:
        heapq.heappush(self._events, (when, next(self._seq), action))

    def run(self) -> Outcome:
        for session in sessions(self.workload):
            self.at(session.start_s, lambda s=session: self.send(s, 0))  # type: ignore[misc]
        while self._events:
            self.now, _, action = heapq.heappop(self._events)
            action()
        return self.outcome

    def send(self, session: Session, turn: int) -> None:
        request = session.request(turn)
        job = Job(session, turn, request, self.now)
        worker = self.route(request)
        if worker is None:
            self.outcome.refused += 1
            return  # the session gives up, as a client given RESOURCE_EXHAUSTED might
        worker.backend.in_flight += 1
        if worker.running < self.model.slots:
            self.start(worker, job)
        else:
            worker.waiting.append(job)
        worker.report()

    def route(self, request: pb.ChatRequest) -> SimWorker | None:
        if self.strategy == ROUND_ROBIN:
            for _ in self.workers:
                worker = self.workers[next(self._rotation)]
                if worker.backend.available:
                    return worker
            return None
        try:
            ranked = self.scheduler.plan(
                MODEL,
                pb.CAPABILITY_CHAT,
                pb.RoutingHints(),
                prefix_keys=lambda: self.state.prefixes.keys(request),
            )
        except StatusError:
            return None
        return self.workers[ranked[0].backend.id]

    def start(self, worker: SimWorker, job: Job) -> None:
        rendered = render(job.request)
        keys = _engine_keys(rendered)
        job.prompt_tokens = len(rendered) // BYTES_PER_TOKEN
        job.cached_tokens = worker.cached_prefix(keys) * ENGINE_BLOCK_TOKENS
        prefill = (
            self.model.prefill_base_s
            + (job.prompt_tokens - job.cached_tokens) * self.model.prefill_per_token_s
        )
        begins = max(self.now, worker.prefill_free_s)
        worker.prefill_free_s = begins + prefill
        worker.running += 1
        job.pinned = job.prompt_tokens + len(job.session.answers[job.turn]) // BYTES_PER_TOKEN
        worker.pinned_tokens += job.pinned
        self.outcome.busy_token_s[worker.backend.id] += prefill
        self.at(worker.prefill_free_s, lambda: self.first_token(worker, job, keys))

    def first_token(self, worker: SimWorker, job: Job, keys: list[int]) -> None:
        job.first_token_s = self.now
        worker.store(keys)
        answer = job.session.answers[job.turn]
        decode = len(answer) // BYTES_PER_TOKEN * self.model.decode_per_token_s
        self.at(self.now + decode, lambda: self.complete(worker, job))

    def complete(self, worker: SimWorker, job: Job) -> None:
        answered = render(job.request) + render(_answer(job))
        worker.store(_engine_keys(answered))
        worker.running -= 1
        worker.pinned_tokens -= job.pinned
        worker.backend.in_flight -= 1
        worker.served += 1
        ttft = job.first_token_s - job.sent_s
        self.state.stats[worker.backend.id].record_success(ttft * 1000, (self.now - job.sent_s) * 1000)
        out = self.outcome
        out.ttft_s.append(ttft)
        out.prompt_tokens += job.prompt_tokens
        out.cached_tokens += job.cached_tokens
        out.served[worker.backend.id] += 1
        if worker.waiting:
            self.start(worker, worker.waiting.popleft())
        worker.report()
        if job.turn + 1 < len(job.session.user_turns):
            self.at(
                self.now + think_time(self._rng, self.workload), lambda: self.send(job.session, job.turn + 1)
            )


def _answer(job: Job) -> pb.ChatRequest:
    """The answer as the next turn's prompt will carry it, for rendering after the prompt."""
    message = pb.Message(role=pb.ROLE_ASSISTANT, content=[pb.ContentPart(text=job.session.answers[job.turn])])
    return pb.ChatRequest(messages=[message])


def run_all(workload: WorkloadSettings, model: WorkerModel) -> dict[str, Outcome]:
    return {strategy: Simulation(strategy, workload, model).run() for strategy in STRATEGIES}


def describe(workload: WorkloadSettings, model: WorkerModel) -> list[str]:
    w, m = workload, model
    return [
        f"{w.seconds:.0f} s of sessions starting at {w.session_rate:g}/s (Poisson), {w.turns[0]}-{w.turns[1]} turns "
        f"each, {w.system_prompts} shared system prompts of {w.system_tokens[0]}-{w.system_tokens[1]} tokens, "
        f"user turns {w.user_tokens[0]}-{w.user_tokens[1]} tokens, answers {w.answer_tokens[0]}-"
        f"{w.answer_tokens[1]} tokens, think time {w.think_s:g} s (exponential); seed {w.seed}.",
        f"{m.workers} simulated workers: {m.slots} running + {m.queue} queued, an LRU prefix cache of "
        f"{m.cache_tokens:,} tokens in {ENGINE_BLOCK_TOKENS}-token blocks, prefill "
        f"{m.prefill_base_s * 1000:g} ms + {m.prefill_per_token_s * 1e6:g} µs per uncached token (one prompt at a "
        f"time), decode {m.decode_per_token_s * 1000:g} ms per token.",
        "Simulated time: the real Scheduler, scorers and prefix index run on a simulated clock, so the figures "
        "are the same on every run and on any machine.",
        "round_robin rotates over the workers with room; composite (no prefix) is composite with the prefix "
        "weight removed; composite + prefix is the default composite strategy.",
    ]


def run(report: Report, workload: WorkloadSettings, model: WorkerModel) -> dict[str, Outcome]:
    outcomes = run_all(workload, model)
    table = Table(
        "Prefix-aware routing (simulation)",
        [
            "strategy",
            "requests",
            "TTFT p50 ms",
            "TTFT p99 ms",
            "prompt tokens from cache",
            "requests per worker",
            "max/min worker load",
            "refused",
        ],
    )
    for name, o in outcomes.items():
        table.rows.append(
            [
                name,
                str(len(o.ttft_s)),
                ms(percentile(o.ttft_s, 0.5) * 1000, 1),
                ms(percentile(o.ttft_s, 0.99) * 1000, 1),
                f"{o.hit_rate:.0%}",
                " / ".join(str(n) for n in o.served.values()),
                f"{o.balance:.2f}",
                str(o.refused),
            ]
        )
    table.notes += [
        *describe(workload, model),
        "max/min worker load: requests served by the busiest worker over those served by the idlest.",
    ]
    report.tables.append(table)
    plain, prefix = outcomes[COMPOSITE], outcomes[COMPOSITE_PREFIX]
    p50, base = percentile(prefix.ttft_s, 0.5), percentile(plain.ttft_s, 0.5)
    report.targets.append(
        Target(
            "Prefix routing: TTFT p50 vs composite without it (simulation)",
            "≤ 0.5x",
            f"{p50 * 1000:.1f} ms vs {base * 1000:.1f} ms ({p50 / base:.2f}x)",
            p50 <= 0.5 * base,
        )
    )
    report.targets.append(
        Target(
            "Prefix routing: max/min worker load (simulation)",
            "≤ 1.5",
            f"{prefix.balance:.2f} ({' / '.join(str(n) for n in prefix.served.values())} requests)",
            prefix.balance <= 1.5,
        )
    )
    return outcomes
