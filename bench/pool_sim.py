"""Scheduling quality in a large pool, in simulated time: bench/simulation_pool.py's workers, load and events,
routed by the real Scheduler, scorers and statistics, with no processes and no sleeping.

The real-time run (bench/simulation_pool.py) measures the router as a user runs it, on shared cores: its
figures move with whatever else runs there, and a starved router drops leases. This one replays the same
scenario on a simulated clock, so it gives the same figures on every run and can afford larger pools:
- each worker (bench.fixtures.BenchWorker's behaviour) runs `SLOTS` requests at once and queues the rest in
  order; a request's first token comes `ttft_s` after it starts, then one token every `token_s` (times
  the worker's slow-down factor, read at each step);
- the router's side is the real code: a RoutingState with WorkerBackend objects whose in-flight counts
  and load reports (one a second, at a random phase) the simulation keeps, the Scheduler's plan, and the
  statistics fed as failover feeds them (awaiting the first item, TTFT with its load factor, success);
- at half time every "degrading" worker becomes SLOW_DOWN times slower; at 60 % every "dying" one leaves:
  its requests still waiting for a first token fail over to the next candidate (after failover's backoff),
  those already streaming count as answered (migration continues them);
- round robin rotates over the workers in rotation, as the real run's client rotates `routing.provider`.
The router's own CPU time and the network are not modelled: a TTFT here is the worker's queue and prefill.
"""

from __future__ import annotations

import heapq
import itertools
import random
import sys
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace

from modelyard.v1 import backend_pb2
from modelyard.v1 import inference_pb2 as pb

from bench.report import Report, Table, Target, ms, percentile
from bench.simulation import QUEUE, SLOTS, SLOW_DOWN, workers
from core.errors import StatusError
from router.backends.base import ModelSpec
from router.backends.worker import WorkerBackend
from router.config.settings import RouterConfig
from router.routing.failover import backoff_delay
from router.routing.scheduler import Scheduler
from router.routing.scoring.base import Candidate
from router.routing.scoring.latency import LatencyScorer, load_factor
from router.routing.scoring.strategies import SCORERS
from router.routing.state import RoutingState

ROUND_ROBIN = "round_robin"
EXACT = "composite, every worker scored"
MODEL = "bench"


@dataclass(frozen=True)
class PoolSimSettings:
    copies: int = 20  # workers of each of the five kinds
    stretch: float = 10.0  # every delay, times the five-worker run's (as bench.simulation_pool)
    rate: float = 80.0  # requests per second, Poisson
    seconds: float = 30.0
    tokens: int = 16
    seed: int = 1
    config: RouterConfig = field(default_factory=lambda: RouterConfig(router_id="pool-sim"))


@dataclass
class Job:
    index: int
    sent_s: float
    ranked: list[Candidate] = field(default_factory=list)
    tried: int = 0
    token: object = field(default_factory=object)
    factor: float = 1.0  # the latency scorer's load factor for the attempt's backend when it was sent
    first_s: float | None = None
    worker: SimWorker | None = None


@dataclass
class SimWorker:
    backend: WorkerBackend
    ttft_s: float
    token_s: float
    factor: float = 1.0
    running: int = 0
    waiting: deque[Job] = field(default_factory=deque)
    alive: bool = True
    served: int = 0


@dataclass
class PoolOutcome:
    ttft_ms: list[float] = field(default_factory=list)
    failed: int = 0
    served: dict[str, int] = field(default_factory=dict)  # requests answered, by kind of worker


class PoolSimulation:
    def __init__(self, strategy: str, s: PoolSimSettings) -> None:
        self.strategy, self.s = strategy, s
        self.now = 0.0
        self._events: list[tuple[float, int, Callable[[], None]]] = []
        self._seq = itertools.count()
        self._rng = random.Random(s.seed)
        self.state = RoutingState(s.config)
        self.scheduler = Scheduler(self.state, random.Random(s.seed + 1))
        self.workers: dict[str, SimWorker] = {}
        for spec in workers(""):
            for copy in range(s.copies):
                backend = WorkerBackend(
                    id=f"{spec.worker_id}-{copy}",
                    kind="worker",
                    models=[ModelSpec(MODEL, frozenset({pb.CAPABILITY_CHAT}))],
                    max_concurrency=SLOTS,
                    max_queue=QUEUE,
                )
                self.state.registry.add(backend)
                worker = SimWorker(backend, spec.ttft_s * s.stretch, spec.token_s * s.stretch)
                self.workers[backend.id] = worker
        self.outcome = PoolOutcome()

    def at(self, when: float, action: Callable[[], None]) -> None:
        heapq.heappush(self._events, (when, next(self._seq), action))

    def run(self) -> PoolOutcome:
        s = self.s
        at, index = 0.0, 0
        while (at := at + self._rng.expovariate(s.rate)) <= s.seconds:
            self.at(at, lambda i=index, t=at: self.arrive(i, t))  # type: ignore[misc]
            index += 1
        for worker in self.workers.values():
            self.at(self._rng.uniform(0, 1), lambda w=worker: self.report(w))  # type: ignore[misc]
        self.at(s.seconds * 0.5, self.slow_down)
        self.at(s.seconds * 0.6, self.kill)
        self._end = s.seconds
        with _clock(lambda: self.now):
            while self._events:
                self.now, _, action = heapq.heappop(self._events)
                action()
        return self.outcome

    def report(self, worker: SimWorker) -> None:
        if not worker.alive:
            return
        worker.backend.load = backend_pb2.LoadReport(running=worker.running, waiting=len(worker.waiting))
        worker.backend.in_flight_at_report = worker.backend.in_flight
        if self.now < self._end:
            self.at(self.now + 1.0, lambda: self.report(worker))

    def slow_down(self) -> None:
        for worker_id, worker in self.workers.items():
            if worker_id.startswith("degrading"):
                worker.factor = SLOW_DOWN

    def kill(self) -> None:
        for worker_id, worker in self.workers.items():
            if worker_id.startswith("dying"):
                worker.alive = False
                self.state.registry.remove(worker.backend)
                self.state.forget(worker_id)
                self.state.prefixes.forget_worker(worker_id)
                for job in list(worker.waiting):
                    self.fail_over(job)
                worker.waiting.clear()  # those started fail over when their first token would have come

    def arrive(self, index: int, sent_s: float) -> None:
        job = Job(index, sent_s)
        if self.strategy == ROUND_ROBIN:
            alive = [w for w in self.workers.values() if w.alive]
            worker = alive[index % len(alive)]
            job.ranked = [Candidate(worker.backend, MODEL, self.state.stats[worker.backend.id], 0.0, 0)]
        else:
            try:
                job.ranked = self.scheduler.plan(
                    MODEL, pb.CAPABILITY_CHAT, pb.RoutingHints(), strategy=self.strategy
                )
            except StatusError:
                self.outcome.failed += 1
                return
        self.send(job)

    def send(self, job: Job) -> None:
        while job.tried < len(job.ranked):
            candidate = job.ranked[job.tried]
            job.tried += 1
            worker = self.workers[candidate.backend.id]
            if not worker.alive or not worker.backend.available:
                continue  # refused at once (gone, or full): the next candidate
            job.worker, job.factor = worker, load_factor(candidate.utilisation)
            worker.backend.in_flight += 1
            self.state.stats[worker.backend.id].awaiting_first(job.token, self.now)
            worker.waiting.append(job)
            self.start_next(worker)
            return
        self.outcome.failed += 1

    def fail_over(self, job: Job) -> None:
        """Its worker went before the first token: failover's backoff, then the next candidate."""
        job.worker = None
        delay = backoff_delay(self.state.config.retry, job.tried - 1)
        self.at(self.now + delay, lambda: self.send(job))

    def start_next(self, worker: SimWorker) -> None:
        while worker.alive and worker.waiting and worker.running < SLOTS:
            job = worker.waiting.popleft()
            worker.running += 1
            self.at(self.now + worker.ttft_s * worker.factor, lambda j=job: self.first_token(worker, j))  # type: ignore[misc]

    def first_token(self, worker: SimWorker, job: Job) -> None:
        if not worker.alive:
            self.fail_over(job)
            return
        job.first_s = self.now
        stats = self.state.stats[worker.backend.id]
        stats.first_done(job.token)
        stats.record_ttft((self.now - job.sent_s) * 1000, job.factor)
        self.outcome.ttft_ms.append((self.now - job.sent_s) * 1000)
        self.token(worker, job, 1)

    def token(self, worker: SimWorker, job: Job, sent: int) -> None:
        if not worker.alive:  # mid-stream: migration carries it on; its TTFT stands
            return
        if sent < self.s.tokens:
            self.at(self.now + worker.token_s * worker.factor, lambda: self.token(worker, job, sent + 1))
            return
        worker.running -= 1
        worker.backend.in_flight -= 1
        worker.served += 1
        self.state.stats[worker.backend.id].record_success(None, (self.now - job.sent_s) * 1000)
        kind = worker.backend.id.rsplit("-", 1)[0]
        self.outcome.served[kind] = self.outcome.served.get(kind, 0) + 1
        self.start_next(worker)


@contextmanager
def _clock(clock: Callable[[], float]) -> Iterator[None]:
    """The latency scorer reads the simulated clock while the simulation runs (its awaiting times are on it)."""
    scorer = SCORERS["latency"]
    assert isinstance(scorer, LatencyScorer)
    previous, scorer.clock = scorer.clock, clock
    try:
        yield
    finally:
        scorer.clock = previous


def run_all(s: PoolSimSettings, strategies: tuple[str, ...]) -> dict[str, PoolOutcome]:
    """Each strategy on a fresh router and pool; in a large pool, composite also with every worker scored."""
    outcomes = {name: PoolSimulation(name, s).run() for name in strategies}
    pool = s.copies * len(workers(""))
    if pool > s.config.pool.exact_max:
        exact = replace(s.config, pool=replace(s.config.pool, exact_max=pool))
        outcomes[EXACT] = PoolSimulation("composite", replace(s, config=exact)).run()
    return outcomes


def run(report: Report, s: PoolSimSettings, strategies: tuple[str, ...]) -> dict[str, PoolOutcome]:
    outcomes = run_all(s, strategies)
    pool = s.copies * len(workers(""))
    # A slow worker's TTFT, less a tenth: what a request waits when it goes to one (unqueued).
    slow_ms = 0.9 * max(spec.ttft_s for spec in workers("")) * s.stretch * 1000
    title = f"with {pool} workers " if s.copies > 1 else ""
    table = Table(
        f"Scheduling quality {title}(simulated time)",
        ["strategy", "requests", "TTFT p50 ms", "TTFT p99 ms", f"TTFT ≥ {slow_ms:g} ms", "failed"],
    )
    for name, o in outcomes.items():
        table.rows.append(
            [
                name,
                str(len(o.ttft_ms) + o.failed),
                ms(percentile(o.ttft_ms, 0.5), 1),
                ms(percentile(o.ttft_ms, 0.99), 1),
                str(sum(t >= slow_ms for t in o.ttft_ms)),
                str(o.failed),
            ]
        )
    p = s.config.pool
    table.notes += [
        f"The pool and events of bench/simulation{'_pool' if s.copies > 1 else ''}.py on a simulated clock: "
        f"{s.copies} worker(s) of each kind, delays x{s.stretch:g}, {s.rate:g} requests/s of {s.tokens} tokens "
        f"for {s.seconds:g} s, seed {s.seed}; the real Scheduler, scorers and statistics, no processes: the same "
        "figures on every run, whatever else the machine runs. A TTFT here is the worker's queue and first "
        "token; the router's own time is not in it.",
        f"TTFT ≥ {slow_ms:g} ms: requests that waited for a slow worker's first token (a slow one, or a degraded "
        "one after its slow-down); the router learns each worker's speed only by sending it requests: about one "
        "such request per slow or degraded worker, so a run must give each worker as many requests as the "
        "five-worker run does (about 80) for the p99 to measure routing rather than that learning (with a third "
        "of them, 30 s here, composite's p99 is a slow worker's TTFT: 0.67x round robin).",
    ]
    if EXACT in outcomes:
        table.notes.append(
            f"composite scores a bounded set per request (pool.sample {p.sample} random workers and the previous "
            f"request's ranking); {EXACT}: pool.exact_max raised above the pool."
        )
    report.tables.append(table)
    rr, composite = (percentile(outcomes[n].ttft_ms, 0.99) for n in (ROUND_ROBIN, "composite"))
    report.targets.append(
        Target(
            f"Composite p99 TTFT vs round robin, {title}(simulated time)".replace(", (", " ("),
            "≤ half of round robin",
            f"{ms(composite, 1)} ms vs {ms(rr, 1)} ms ({composite / rr:.2f}x)",
            composite <= rr / 2,
        )
    )
    return outcomes


def main() -> int:
    """`python -m bench.pool_sim [copies]`: the table alone, printed."""
    copies = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    report = Report("quick")
    run(report, PoolSimSettings(copies=copies, rate=4.0 * copies), (ROUND_ROBIN, "composite"))
    print("\n".join(report.markdown()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
