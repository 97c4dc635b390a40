"""WorkerRegistry service: a worker's open Register stream is its lease on a place in the pool."""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc
from modelyard.v1 import backend_pb2
from modelyard.v1 import inference_pb2 as pb
from modelyard.worker.v1 import worker_pb2, worker_pb2_grpc

from core.errors import DeadlineExceeded, InvalidArgument, StatusError
from core.grpc_status import grpc_status
from router.backends.base import Backend
from router.backends.worker import WorkerBackend
from router.config.settings import RouterConfig
from router.routing.backend_registry import BackendRegistry
from router.routing.pool_events import PoolEvents
from router.routing.prefix_routing import PrefixRouting
from router.security.worker_dial import WorkerDialer
from router.security.worker_identity import WorkerAdmission, peer_host, validate_names
from router.security.worker_issuer import check_worker_issuer
from router.services.lease_timer import LeaseTimer
from router.services.refusal_log import RefusalLog

log = logging.getLogger(__name__)
Context = grpc.aio.ServicerContext[Any, Any]

_ADDRESS = re.compile(r"^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9_.-]+):\d{1,5}$")
_CAPABILITIES = frozenset({pb.CAPABILITY_CHAT, pb.CAPABILITY_EMBED, pb.CAPABILITY_TRANSCRIBE})


def validate_hello(hello: worker_pb2.WorkerHello) -> None:
    if not hello.worker_id:
        raise InvalidArgument("hello.worker_id: required")
    validate_names(hello)
    if not _ADDRESS.match(hello.address) or hello.address.rsplit(":", 1)[1] == "0":
        raise InvalidArgument(f"hello.address: {hello.address!r} is not a dialable host:port")
    if not hello.models:
        raise InvalidArgument("hello.models: a worker must serve at least one model")
    seen: set[str] = set()
    for i, model in enumerate(hello.models):
        if not model.id:
            raise InvalidArgument(f"hello.models[{i}].id: required")
        if model.id in seen:
            raise InvalidArgument(f"hello.models[{i}].id: {model.id!r} is listed twice")
        seen.add(model.id)
        if not model.capabilities or not set(model.capabilities) <= _CAPABILITIES:
            raise InvalidArgument(f"hello.models[{i}].capabilities: need CHAT, EMBED and/or TRANSCRIBE")
    if hello.max_concurrency == 0:
        raise InvalidArgument("hello.max_concurrency: must be at least 1")


class WorkerRegistryServicer(worker_pb2_grpc.WorkerRegistryServiceServicer):  # type: ignore[misc]
    def __init__(
        self,
        registry: BackendRegistry,
        config: RouterConfig,
        prefixes: PrefixRouting | None = None,
        forget: Callable[[str], None] | None = None,
        events: PoolEvents | None = None,
    ) -> None:
        self._registry = registry
        self._config = config
        self._prefixes = prefixes
        self._admission = WorkerAdmission(registry, config.workers)
        self._dialer = WorkerDialer.from_config(config)
        self._forget = forget  # drops a departed worker's routing tables (stats, circuit, settings)
        self._refusals = RefusalLog(events or PoolEvents())
        # Workers send their load when it changes and otherwise a heartbeat this often (gpu_worker.load_reports).
        self._heartbeat_ms = max(config.heartbeat_interval_ms, config.report_interval_ms)
        # A worker whose reports and heartbeats stop this long leaves rotation until they resume (its lease
        # ends when nothing at all arrives for as long).
        self._reports_due_s = config.missed_reports * self._heartbeat_ms / 1000
        # Each worker's open stream, for drain commands: written from the caller's task (no task per worker
        # waiting for commands, which a full garbage collection would walk a thousand of), one at a time.
        self._streams: dict[str, Context] = {}
        self._commands = asyncio.Lock()
        self._closing: set[asyncio.Task[None]] = set()  # channels of departed workers, closed when idle

    def _close_later(self, backend: Backend) -> None:
        task = asyncio.create_task(backend.close_when_idle())
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def drain(self, worker_id: str, reason: str) -> bool:
        """Ask a worker to stop taking requests; it keeps its lease while it finishes what it holds."""
        stream = self._streams.get(worker_id)
        if stream is None:
            return False
        command = worker_pb2.RegisterResponse(drain=worker_pb2.DrainCommand(reason=reason))
        async with self._commands:
            try:
                await stream.write(command)
            except Exception as error:  # the stream ended meanwhile: so has the lease
                log.info("could not ask worker %s to drain: its stream ended (%s)", worker_id, error)
                return False
        return True

    @grpc_status
    async def Register(
        self,
        request_iterator: AsyncIterator[worker_pb2.RegisterRequest],
        context: Context,
    ) -> None:
        if self._config.workers.tls_ca:
            # The client listener may trust the clients' CA too: only a worker's certificate may register.
            try:
                check_worker_issuer(context, self._config.workers.tls_ca)
            except StatusError as e:
                log.warning("refused a worker registration from %s: %s", context.peer(), e.message)
                raise
        try:
            first = await asyncio.wait_for(context.read(), self._config.hello_timeout_s)
        except TimeoutError:
            raise DeadlineExceeded("no hello within the hello timeout") from None
        if first is grpc.aio.EOF or not first.HasField("hello"):
            raise InvalidArgument("the first message must be a hello")
        try:
            validate_hello(first.hello)
            self._admission.check(first.hello, context.peer())
        except StatusError as e:
            self._refusals.refused(peer_host(context.peer()), e.reason, e.message)
            raise

        worker = WorkerBackend.from_hello(
            first.hello, self._dialer, peer_host(context.peer()), self._config.worker_stall_timeout_s
        )
        worker.reports_due = time.monotonic() + self._reports_due_s
        if self._prefixes is not None:
            # A hello is a new process or a new lease: what its engine holds is unknown until it says.
            self._prefixes.forget_worker(worker.id)
        replaced = self._registry.add(worker)
        if replaced is not None:
            self._close_later(replaced)
        log.info(
            "worker %s joined from %s serving %s", worker.id, worker.address, [m.id for m in worker.models]
        )
        await context.write(
            worker_pb2.RegisterResponse(
                ack=worker_pb2.RegisterAck(
                    router_id=self._config.router_id,
                    report_interval_ms=self._config.report_interval_ms,
                    heartbeat_interval_ms=self._heartbeat_ms,
                )
            )
        )
        self._streams[worker.id] = context  # after the ack: a drain command is never the first message
        try:
            await self._receive_reports(worker, context, self._cache_events_usable(first.hello))
        finally:
            if self._streams.get(worker.id) is context:
                del self._streams[worker.id]
            if self._registry.remove(worker):
                log.info("worker %s left the pool", worker.id)
                if self._prefixes is not None:
                    self._prefixes.forget_worker(worker.id)
                if self._forget is not None:
                    self._forget(worker.id)
            self._close_later(worker)

    def _cache_events_usable(self, hello: worker_pb2.WorkerHello) -> bool:
        """A worker's cache events mean something here only if it keys prefixes as this router does."""
        if self._prefixes is None or not hello.prefix_block_bytes:
            return False
        if hello.prefix_block_bytes != self._prefixes.config.block_bytes:
            log.warning(
                "worker %s keys prefixes in %d-byte blocks and this router in %d: its cache events are "
                "ignored (set prefix.block_bytes alike on both)",
                hello.worker_id,
                hello.prefix_block_bytes,
                self._prefixes.config.block_bytes,
            )
            return False
        return True

    async def _receive_reports(self, worker: WorkerBackend, context: Context, cache_events: bool) -> None:
        lease = LeaseTimer(self._reports_due_s)
        try:
            while True:
                message = await context.read()
                lease.heard()
                if message is grpc.aio.EOF:
                    return
                kind = message.WhichOneof("msg")
                if kind == "heartbeat":
                    self._heard(worker)
                elif kind == "load":
                    self._load_reported(worker, message.load)
                elif kind == "cache" and cache_events and self._prefixes is not None:
                    self._apply_cache_events(worker, message.cache)
        except asyncio.CancelledError:
            if not lease.expired:
                raise
            current = asyncio.current_task()
            if current is not None:
                current.uncancel()
            log.warning("worker %s missed %d heartbeats", worker.id, self._config.missed_reports)
        finally:
            lease.stop()

    def _heard(self, worker: WorkerBackend) -> None:
        """A heartbeat: its load is as last reported. Hundreds a second in a big pool: a clock read, and
        rotation judged again only if its reports had stopped."""
        now = time.monotonic()
        overdue = worker.reports_overdue(now)
        worker.reports_due = now + self._reports_due_s
        if overdue:
            self._registry.refresh(worker)  # reports resumed

    def _load_reported(self, worker: WorkerBackend, load: backend_pb2.LoadReport) -> None:
        """Sent when its load changed: rotation is judged again only when it may change."""
        now = time.monotonic()
        overdue = worker.reports_overdue(now)
        worker.reports_due = now + self._reports_due_s
        was_draining, worker.load, worker.draining = worker.draining, load, load.draining
        worker.in_flight_at_report = worker.in_flight  # what of the report is ours (load_view)
        if overdue or was_draining != worker.draining or self._registry.index.out_of_rotation(worker.id):
            self._registry.refresh(worker)  # drain started or ended, reports resumed

    def _apply_cache_events(self, worker: WorkerBackend, cache: worker_pb2.CacheEvents) -> None:
        if self._prefixes is not None and any(m.id == cache.model for m in worker.models):
            self._prefixes.apply(worker.id, cache)
