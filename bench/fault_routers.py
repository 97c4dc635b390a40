"""Router faults under load: a rolling restart of two routers, and one router restarted.

Two real router processes, started as users start them (`python -m router`), on fixed loopback ports; one
worker of our own (bench.fixtures.BenchWorker: 40 deltas 25 ms apart by default) registered with both through
the real worker's registration loop (gpu_worker.registration: reconnects with backoff, as `modelyard worker`
does); and a plain generated-stub client, with no service config and no retry policy, balancing over both
routers with gRPC's round_robin, 16 streams at a time. A router is restarted the way Kubernetes does it:
SIGTERM, wait for it to exit, start it again on the same port, and wait until the client uses it again
before the next one. Printed: requests, failed, p99 request time, and each failure's status.

`python -m bench.fault_routers [--quick]`. tests/router/test_router_restarts.py runs the same scenarios and
asserts that nothing failed. bench.faults can list `rolling_restart` and `router_restart` as its scenarios: they
take its settings and answer with the fields its table reads (requests, failed, migrated, p99_s, errors).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import logging
import os
import signal
import socket
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import grpc
from modelyard.v1 import backend_pb2, router_pb2, router_pb2_grpc
from modelyard.v1 import inference_pb2 as pb
from modelyard.worker.v1 import worker_pb2_grpc

from bench.fixtures import BenchWorker, WorkerSpec
from bench.report import percentile
from gpu_worker.registration import RegistrationStream

REPO_ROOT = Path(__file__).resolve().parents[1]
MODEL = "bench"
# Environment a router must not inherit: the developer's own config, keys and addresses.
_PRIVATE_ENV = ("MODELYARD_", "OPENAI_", "ANTHROPIC_", "DEEPSEEK_", "GEMINI_")
_READY = "ready on"


@dataclass(frozen=True)
class Settings:
    streams: int = 16  # client streams at once
    tokens: int = 40  # deltas per answer
    token_s: float = 0.025  # between deltas
    drain_s: float = 2.0  # --drain-seconds of each router
    grace_s: float = 10.0  # --grace-seconds of each router
    settle_timeout_s: float = 60.0  # longest wait for a router to start, stop, or be used again


QUICK = Settings(streams=8, tokens=10, drain_s=2.0)


@dataclass
class Outcome:
    code: str  # "OK" or the status code's name
    detail: str
    seconds: float


@dataclass
class Result:
    scenario: str
    outcomes: list[Outcome] = field(default_factory=list)

    @property
    def requests(self) -> int:
        return len(self.outcomes)

    @property
    def failures(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.code != "OK"]

    @property
    def failed(self) -> int:
        return len(self.failures)

    @property
    def migrated(self) -> int:
        return 0  # a router restart moves no answer: streams finish where they started

    @property
    def errors(self) -> tuple[str, ...]:
        return tuple(sorted({o.code for o in self.failures}))

    @property
    def p99_s(self) -> float:
        return percentile([o.seconds for o in self.outcomes], 0.99)

    def line(self) -> str:
        errors = collections.Counter(f"{o.code}: {o.detail}" for o in self.failures)
        shown = "; ".join(f"{n} x {e}" for e, n in errors.most_common(3))
        return (
            f"{self.scenario:<16} requests {self.requests:>5}  failed {len(self.failures):>3}  "
            f"p99 {self.p99_s:.2f} s" + (f"  ({shown})" if shown else "")
        )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RouterProcess:
    """`python -m router` on a fixed port, restartable; its stderr is appended to `log`."""

    def __init__(self, port: int, settings: Settings, log: Path) -> None:
        self.port = port
        self.address = f"127.0.0.1:{port}"
        self._settings = settings
        self._log = log
        self._process: asyncio.subprocess.Process | None = None
        self._drain: asyncio.Task[bytes] | None = None

    async def start(self) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith(_PRIVATE_ENV)}
        log = await asyncio.to_thread(self._log.open, "ab")
        self._process = await asyncio.create_subprocess_exec(
            *[sys.executable, "-m", "router", "--listen", self.address, "--usage-db", "off"],
            *["--drain-seconds", str(self._settings.drain_s), "--grace-seconds", str(self._settings.grace_s)],
            *["--router-id", f"router-{self.port}", "--log-level", "WARNING"],
            cwd=REPO_ROOT,
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=log,
        )
        log.close()  # the child has its own copy
        assert self._process.stdout is not None
        await asyncio.wait_for(self._until_ready(self._process.stdout), self._settings.settle_timeout_s)
        self._drain = asyncio.create_task(self._process.stdout.read())  # keep the pipe from filling

    @staticmethod
    async def _until_ready(stdout: asyncio.StreamReader) -> None:
        while _READY not in (line := (await stdout.readline()).decode()):
            if not line:
                raise RuntimeError("the router exited before it was ready")

    async def stop(self) -> int:
        """SIGTERM, as Kubernetes sends it; the exit status once it has drained and stopped."""
        assert self._process is not None
        self._process.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(self._process.wait(), self._settings.settle_timeout_s)
        if self._drain is not None:
            await self._drain
        return code

    async def kill(self) -> None:
        if self._process is not None and self._process.returncode is None:
            self._process.kill()
            await self._process.wait()
        if self._drain is not None:
            await self._drain

    async def requests_served(self) -> int:
        """Requests this router process has sent to its backends (GetStatus), 0 when it does not answer."""
        async with grpc.aio.insecure_channel(self.address) as channel:
            stub = router_pb2_grpc.RouterServiceStub(channel)
            try:
                status = await stub.GetStatus(router_pb2.GetStatusRequest(), timeout=5)
            except grpc.aio.AioRpcError:
                return 0
        return sum(b.requests for b in status.backends)


class RejoiningWorker:
    """The bench worker, registered with every router through the real worker's reconnecting stream."""

    def __init__(self, settings: Settings) -> None:
        self._worker = BenchWorker(WorkerSpec("w1", model=MODEL, token_s=settings.token_s))
        self._server = grpc.aio.server()
        self._streams: list[RegistrationStream] = []
        self.address = ""

    async def start(self, routers: Sequence[str]) -> None:
        worker_pb2_grpc.add_WorkerServiceServicer_to_server(self._worker, self._server)
        self.address = f"127.0.0.1:{self._server.add_insecure_port('127.0.0.1:0')}"
        await self._server.start()
        for router in routers:
            stream = RegistrationStream(
                router,
                hello=lambda: self._worker.hello(self.address),
                load=lambda: backend_pb2.LoadReport(
                    running=self._worker.running, waiting=self._worker.waiting
                ),
                on_drain=lambda _reason: None,
            )
            stream.start()
            self._streams.append(stream)

    async def stop(self) -> None:
        await asyncio.gather(*(s.stop() for s in self._streams))
        await self._server.stop(0)


class PlainClient:
    """A generated stub over both routers with round_robin: no service config, no retry policy."""

    def __init__(self, routers: Sequence[str], settings: Settings) -> None:
        target = "ipv4:" + ",".join(routers)
        self._channel = grpc.aio.insecure_channel(target, options=[("grpc.lb_policy_name", "round_robin")])
        self._stub = router_pb2_grpc.RouterServiceStub(self._channel)
        self._settings = settings
        self._request = pb.ChatRequest(
            model=MODEL,
            messages=[pb.Message(role=pb.ROLE_USER, content=[pb.ContentPart(text="count")])],
            sampling=pb.SamplingParams(max_tokens=settings.tokens),
        )
        self._stopping = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self.outcomes: list[Outcome] = []

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._loop()) for _ in range(self._settings.streams)]

    async def stop(self) -> list[Outcome]:
        """Let the streams running finish, start no more; the outcomes so far (idempotent)."""
        self._stopping.set()
        await asyncio.gather(*self._tasks)
        await self._channel.close()
        return list(self.outcomes)

    async def _loop(self) -> None:
        while not self._stopping.is_set():
            began = time.perf_counter()
            code, detail = "OK", ""
            try:
                deltas = 0
                async for response in self._stub.Chat(self._request):
                    deltas += response.HasField("delta")
                if deltas != self._settings.tokens:
                    code, detail = "SHORT", f"{deltas} of {self._settings.tokens} deltas"
            except grpc.aio.AioRpcError as e:
                code, detail = e.code().name, e.details() or ""
            self.outcomes.append(Outcome(code, detail, time.perf_counter() - began))


async def _until_used(router: RouterProcess, timeout: float) -> None:
    """Until the client's requests reach this router process (its reconnect backoff is gRPC's own)."""
    loop = asyncio.get_running_loop()
    ends = loop.time() + timeout
    while await router.requests_served() == 0:
        if loop.time() > ends:
            raise TimeoutError(f"no request reached {router.address} within {timeout:.0f} s")
        await asyncio.sleep(0.2)


async def run(scenario: str, settings: Settings, restart: Sequence[int], log_dir: Path) -> Result:
    """Two routers under load; the routers at the `restart` indexes are restarted, one after the other."""
    routers = [RouterProcess(free_port(), settings, log_dir / f"router-{i}.log") for i in range(2)]
    worker = RejoiningWorker(settings)
    client: PlainClient | None = None
    try:
        await asyncio.gather(*(r.start() for r in routers))
        await worker.start([r.address for r in routers])
        client = PlainClient([r.address for r in routers], settings)
        client.start()
        for router in routers:
            await _until_used(router, settings.settle_timeout_s)
        for index in restart:
            await routers[index].stop()
            await routers[index].start()
            await _until_used(routers[index], settings.settle_timeout_s)
        return Result(scenario, await client.stop())
    finally:
        if client is not None:
            await client.stop()
        await worker.stop()
        for router in routers:
            await router.kill()


SCENARIOS: dict[str, tuple[int, ...]] = {"rolling restart": (0, 1), "router restart": (0,)}


async def run_all(settings: Settings, log_dir: Path) -> list[Result]:
    return [await run(name, settings, restart, log_dir) for name, restart in SCENARIOS.items()]


class LoadShape(Protocol):
    """bench.faults' settings, as far as these scenarios read them."""

    @property
    def concurrency(self) -> int: ...

    @property
    def deltas(self) -> int: ...

    @property
    def delta_s(self) -> float: ...


async def rolling_restart(shape: LoadShape) -> Result:
    """Both routers restarted one after the other, under bench.faults' load shape."""
    return await _scenario("rolling restart", shape)


async def router_restart(shape: LoadShape) -> Result:
    """One router restarted, under bench.faults' load shape."""
    return await _scenario("router restart", shape)


async def _scenario(name: str, shape: LoadShape) -> Result:
    settings = Settings(streams=shape.concurrency, tokens=shape.deltas, token_s=shape.delta_s)
    logging.getLogger("gpu_worker").setLevel(logging.ERROR)  # "registration stream broke": expected here
    with tempfile.TemporaryDirectory(prefix="fault-routers-") as log_dir:
        return await run(name, settings, SCENARIOS[name], Path(log_dir))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.fault_routers", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer streams and shorter answers")
    args = parser.parse_args(argv)
    settings = QUICK if args.quick else Settings()
    logging.getLogger("gpu_worker").setLevel(logging.ERROR)  # "registration stream broke": expected here
    with tempfile.TemporaryDirectory(prefix="fault-routers-") as log_dir:
        results = asyncio.run(run_all(settings, Path(log_dir)))
    for result in results:
        print(result.line())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
