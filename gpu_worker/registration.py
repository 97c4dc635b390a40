"""One registration stream to one router address: hello, then load reports (when the load changes) and
heartbeats (gpu_worker.load_reports), reconnecting forever with backoff.

The open stream is the worker's lease in that router's pool, so the loop never gives up: a router that restarts
gets the worker back within the backoff cap (5 s).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable

import grpc
from modelyard.v1 import backend_pb2
from modelyard.worker.v1 import worker_pb2, worker_pb2_grpc

from gpu_worker.cache_feed import CacheFeed, CacheSubscription
from gpu_worker.load_reports import ReportPolicy
from gpu_worker.report_clock import ReportClock
from gpu_worker.security import WorkerSecurity

logger = logging.getLogger(__name__)

DEFAULT_REPORT_INTERVAL_S = 1.0
_CLOSE_WAIT_S = 2.0
_REPEAT_LOG_S = 60.0
# What a router says when retrying cannot help until someone changes something (a token, the allowed models, the
# pool's size, a clashing worker id): said as an ERROR, and asked again only about once a minute.
REFUSALS = frozenset(
    {
        grpc.StatusCode.UNAUTHENTICATED,
        grpc.StatusCode.PERMISSION_DENIED,
        grpc.StatusCode.ALREADY_EXISTS,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        grpc.StatusCode.INVALID_ARGUMENT,
    }
)
REFUSED_BACKOFF_S = (5.0, 60.0)  # first delay, cap


class Backoff:
    """Exponential backoff with jitter: each delay is drawn from [d/2, d], d doubling from `initial` to `cap`."""

    def __init__(self, initial: float = 0.2, cap: float = 5.0, rng: random.Random | None = None) -> None:
        self.initial = initial
        self.cap = cap
        self._attempt = 0
        # A private generator: libraries that reseed the global one must not make a fleet of workers retry in
        # lockstep after a router restart.
        self._rng = rng or random.Random()

    def next_delay(self) -> float:
        ceiling = min(self.cap, self.initial * (2**self._attempt))
        self._attempt += 1
        return self._rng.uniform(ceiling / 2, ceiling)

    def reset(self) -> None:
        self._attempt = 0


_RegisterCall = grpc.aio.StreamStreamCall[worker_pb2.RegisterRequest, worker_pb2.RegisterResponse]


class _StreamEnded(Exception):
    pass


class RegistrationStream:
    def __init__(
        self,
        address: str,
        hello: Callable[[], worker_pb2.WorkerHello],
        load: Callable[[], backend_pb2.LoadReport],
        on_drain: Callable[[str], None],
        backoff: Backoff | None = None,
        cache_feed: CacheFeed | None = None,
        security: WorkerSecurity | None = None,
        on_registered: Callable[[], None] | None = None,
        refused_backoff: Backoff | None = None,
    ) -> None:
        self.address = address
        self._cache_feed = cache_feed  # the engines' prefix-cache events, sent between load reports
        self._write_lock = asyncio.Lock()  # one write at a time on the stream
        self._security = security or WorkerSecurity()
        self._hello = hello
        self._load = load
        self._on_drain = on_drain
        self._backoff = backoff or Backoff()
        self._refused_backoff = refused_backoff or Backoff(*REFUSED_BACKOFF_S)
        self._on_registered = on_registered
        self._interval_s = DEFAULT_REPORT_INTERVAL_S
        self._heartbeat_s = 0.0  # as the router's acknowledgement says; 0: a full report every interval
        self._clock = ReportClock()
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.router_id = ""
        self.connected = False
        self.sessions = 0  # streams that reached the router
        self._last_failure: tuple[str, float] = ("", 0.0)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"register-{self.address}")

    def report_now(self) -> None:
        """Send a load report at once instead of at the next interval (used when draining starts)."""
        self._clock.ring_now()

    async def abort(self) -> None:
        """End the stream at once with no goodbye, as a killed process would (a bench hosting many workers
        kills some this way), and stop reconnecting."""
        self._stopping.set()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def stop(self) -> None:
        """Half-close the stream so the router drops this worker cleanly, then stop reconnecting."""
        self._stopping.set()
        self._clock.ring_now()
        if self._task is None:
            return
        try:
            await asyncio.wait_for(asyncio.shield(self._task), _CLOSE_WAIT_S)
        except TimeoutError:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                await self._session()
            except asyncio.CancelledError:
                raise
            except Exception as error:
                refused = isinstance(error, grpc.aio.AioRpcError) and error.code() in REFUSALS
                self._log_break(error, refused)
            else:
                refused = False
            finally:
                self.connected = False
            if self._stopping.is_set():
                return
            delay = (self._refused_backoff if refused else self._backoff).next_delay()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), delay)

    async def _session(self) -> None:
        async with self._security.router_channel(self.address) as channel:
            call = worker_pb2_grpc.WorkerRegistryServiceStub(channel).Register(
                metadata=self._security.metadata
            )
            await call.write(worker_pb2.RegisterRequest(hello=self._hello()))
            # Subscribed per session: it starts with a snapshot, since the router forgets our cache on hello.
            subscription = self._cache_feed.subscribe() if self._cache_feed is not None else None
            try:
                async with asyncio.TaskGroup() as group:
                    group.create_task(self._read_loop(call))
                    cache = None
                    if subscription is not None:
                        cache = group.create_task(self._cache_loop(call, subscription))
                    group.create_task(self._write_loop(call, cache))
            except BaseExceptionGroup as group_error:
                # Report the first real cause; the sibling was only cancelled because of it.
                raise group_error.exceptions[0] from None
            finally:
                if subscription is not None:
                    subscription.close()

    async def _read_loop(self, call: _RegisterCall) -> None:
        while True:
            message = await call.read()
            if not isinstance(message, worker_pb2.RegisterResponse):  # grpc.aio.EOF
                if self._stopping.is_set():
                    return
                raise _StreamEnded("the router closed the stream")
            if not self.connected:
                self.connected = True
                self.sessions += 1
                self._backoff.reset()
                self._refused_backoff.reset()
            kind = message.WhichOneof("msg")
            if kind == "ack":
                self.router_id = message.ack.router_id
                if message.ack.report_interval_ms:
                    self._interval_s = message.ack.report_interval_ms / 1000.0
                self._heartbeat_s = message.ack.heartbeat_interval_ms / 1000.0
                logger.info(
                    "registered with router %s at %s; load checked every %.2fs, heartbeats every %.2fs",
                    self.router_id or "(unnamed)",
                    self.address,
                    self._interval_s,
                    self._heartbeat_s or self._interval_s,
                )
                self._clock.ring_now()  # the first report right away, so the router sees load at once
                if self._on_registered is not None:
                    self._on_registered()
            elif kind == "drain":
                logger.info("router %s asks this worker to drain: %s", self.router_id, message.drain.reason)
                self._on_drain(message.drain.reason or f"drain command from router {self.router_id}")

    async def _write_loop(self, call: _RegisterCall, cache: asyncio.Task[None] | None) -> None:
        loop = asyncio.get_running_loop()
        policy = ReportPolicy(self._interval_s, self._heartbeat_s)
        while not self._stopping.is_set():
            forced = await self._clock.wait(self._interval_s)
            # The router's acknowledgement sets these (a reconnect may bring another router's).
            policy.interval_s = self._interval_s
            policy.heartbeat_s = self._heartbeat_s
            message = policy.next(self._load(), loop.time(), force=forced)
            if message is None:
                continue
            async with self._write_lock:
                await call.write(message)
        if cache is not None:
            cache.cancel()
        async with self._write_lock:
            await call.done_writing()

    async def _cache_loop(self, call: _RegisterCall, subscription: CacheSubscription) -> None:
        while True:
            batch = await subscription.next()
            async with self._write_lock:
                await call.write(worker_pb2.RegisterRequest(cache=batch))

    def _log_break(self, error: Exception, refused: bool = False) -> None:
        if isinstance(error, grpc.aio.AioRpcError):
            reason = f"{error.code().name}: {error.details()}"
        else:
            reason = str(error) or type(error).__name__
        if self.connected and not refused:
            logger.warning("registration stream to %s broke (%s); reconnecting", self.address, reason)
            return
        if refused:  # every time: each is a minute apart, and someone has to act on it
            delay = self._refused_backoff.cap
            logger.error(
                "router at %s refused this worker (%s); asking again in up to %.0f s",
                self.address,
                reason,
                delay,
            )
            return
        # A router that stays down would otherwise log every few seconds forever: repeat only now and then.
        now = time.monotonic()
        last_reason, last_logged = self._last_failure
        if reason != last_reason or now - last_logged > _REPEAT_LOG_S:
            self._last_failure = (reason, now)
            logger.info("cannot register with router at %s (%s); retrying", self.address, reason)
