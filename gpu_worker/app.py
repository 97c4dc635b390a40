"""A running worker: server, admission, registration with routers, and the drain-then-exit lifecycle."""

from __future__ import annotations

import asyncio
import logging
import socket
from dataclasses import dataclass, field

from modelyard.v1 import backend_pb2
from modelyard.worker.v1 import worker_pb2

from core.addresses import dial_address
from gpu_worker import __version__
from gpu_worker.admission import DEFAULT_MAX_CONCURRENCY, Admission
from gpu_worker.cache_feed import CacheFeed
from gpu_worker.engine_set import EngineSet
from gpu_worker.gpus import GpuMonitor
from gpu_worker.metrics import WorkerMetrics
from gpu_worker.registration import RegistrationStream
from gpu_worker.router_pool import DEFAULT_RESOLVE_INTERVAL_S, RouterPool, RouterTarget
from gpu_worker.security import WorkerSecurity
from gpu_worker.server import WorkerServer
from gpu_worker.servicer import WorkerServicer

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class WorkerOptions:
    worker_id: str
    routers: list[RouterTarget]
    listen: str = "0.0.0.0:50061"
    advertise: str | None = None  # None: derived from the bound port (see advertised_address)
    max_concurrency: int | None = None  # None: the engines' own batch size (see WorkerApp)
    max_queue: int = 64
    grace_seconds: float = 30.0
    metrics_listen: str = ""  # host:port for /metrics; "" = off
    stream_interval_ms: float = 0.0  # a sequence's tokens sent at most once per interval; 0: every token
    resolve_interval_s: float = DEFAULT_RESOLVE_INTERVAL_S
    security: WorkerSecurity = field(default_factory=WorkerSecurity)


def advertised_address(listen: str, bound_port: int, advertise: str | None) -> str:
    """The address routers dial: --advertise as given, else the listen host (the machine's name for a
    wildcard listen, which no other machine could dial) with the port actually bound."""
    return advertise or dial_address(listen, bound_port, wildcard_host=socket.gethostname())


class WorkerApp:
    def __init__(self, options: WorkerOptions, engines: EngineSet, gpus: GpuMonitor | None = None) -> None:
        self.options = options
        self.engines = engines
        self.gpus = gpus or GpuMonitor()
        # vLLM batches up to its max_num_seqs; admitting fewer would leave part of its batch empty.
        capacity = options.max_concurrency or engines.batch_size() or DEFAULT_MAX_CONCURRENCY
        self.admission = Admission(capacity, options.max_queue)
        self.metrics = WorkerMetrics(self)
        self.server = WorkerServer(
            WorkerServicer(engines, self.admission, options.worker_id, options.stream_interval_ms / 1000),
            token=options.security.token,
            tls=options.security.server_tls(),
        )
        self.cache_feed = _cache_feed(engines)
        self.pool = RouterPool(options.routers, self._new_stream, options.resolve_interval_s)
        self.address = ""
        self.draining = False
        self._drain_requested = asyncio.Event()
        self._registered = asyncio.Event()  # with at least one router

    async def start(self) -> str:
        """Serve, then register with the routers; returns the advertised address."""
        port = await self.server.start(self.options.listen)
        self.address = advertised_address(self.options.listen, port, self.options.advertise)
        if self.options.metrics_listen:
            self.metrics.start(self.options.metrics_listen)
        await self.pool.start()
        return self.address

    async def wait_registered(self) -> bool:
        """Until a router has acknowledged this worker (True), or a drain began first (False)."""
        registered = asyncio.create_task(self._registered.wait())
        drained = asyncio.create_task(self._drain_requested.wait())
        await asyncio.wait({registered, drained}, return_when=asyncio.FIRST_COMPLETED)
        registered.cancel()
        drained.cancel()
        return self._registered.is_set()

    def drain(self, reason: str) -> None:
        """Begin draining (idempotent): routers are told at once, new requests are refused, then we exit."""
        if self.draining:
            return
        logger.info(
            "draining (%s): finishing in-flight requests within %.0fs", reason, self.options.grace_seconds
        )
        self.draining = True
        self.admission.close()
        self.pool.report_now()
        self._drain_requested.set()

    async def run_until_drained(self) -> int:
        """Wait for drain(), then finish in-flight work and stop; returns the process exit code."""
        await self._drain_requested.wait()
        await self.server.set_serving(False)
        if not await self.admission.wait_idle(self.options.grace_seconds):
            logger.warning(
                "%d requests still running after the %.0fs grace period; cancelling them",
                self.admission.running + self.admission.waiting,
                self.options.grace_seconds,
            )
        await self.pool.stop()
        await self.server.stop(grace=1.0)
        self.metrics.stop()
        self.gpus.close()
        logger.info("worker %s stopped", self.options.worker_id)
        return 0

    def hello(self) -> worker_pb2.WorkerHello:
        return worker_pb2.WorkerHello(
            worker_id=self.options.worker_id,
            address=self.address,
            models=self.engines.served_models(),
            gpus=self.gpus.snapshot(),
            max_concurrency=self.admission.max_concurrency,
            max_queue=self.admission.max_queue,
            version=__version__,
            prefix_block_bytes=self.cache_feed.block_bytes if self.cache_feed else 0,
        )

    def load_report(self) -> backend_pb2.LoadReport:
        engine = self.engines.load()
        # Admitted requests the engines have not scheduled yet are waiting, not running.
        queued_in_engines = min(engine.waiting, self.admission.running)
        return backend_pb2.LoadReport(
            running=self.admission.running - queued_in_engines,
            waiting=self.admission.waiting + queued_in_engines,
            kv_cache_usage=engine.kv_cache_usage,
            tokens_per_second=engine.tokens_per_second,
            queued_audio_seconds=engine.queued_audio_seconds,
            gpus=self.gpus.snapshot(),
            draining=self.draining,
            aborted_total=engine.aborted_total,
        )

    def _new_stream(self, address: str) -> RegistrationStream:
        return RegistrationStream(
            address,
            self.hello,
            self.load_report,
            self.drain,
            cache_feed=self.cache_feed,
            security=self.options.security,
            on_registered=self._registered.set,
        )


def _cache_feed(engines: EngineSet) -> CacheFeed | None:
    """One feed for the engines that report their prefix cache, or None when none does."""
    sources = {e.model_id: e.cache_events for e in engines.chat_engines() if e.cache_events is not None}
    if not sources:
        return None
    feed = CacheFeed({model: source.tracker for model, source in sources.items()})
    for source in sources.values():
        source.sink = feed.publish
    return feed
