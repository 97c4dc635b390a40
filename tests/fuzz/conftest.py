"""A real router process on 127.0.0.1:0 (plus an echo worker process behind it) for the fuzz suite, and
the Hypothesis profiles: `ci` (the default: fixed seed, a modest number of examples, under a minute in all)
and `deep` (HYPOTHESIS_PROFILE=deep: random seeds and many more examples, for a longer hunt)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from hypothesis import HealthCheck, settings

from tests.support.polling import wait_until_sync

settings.register_profile(
    "ci",
    max_examples=50,
    derandomize=True,  # the same examples every run: CI on main must not turn red by chance
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    "deep",
    max_examples=500,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

_LISTENING = re.compile(r"listening on (\S+)")
CONFIG = """
budgets: {"*": {daily_tokens: 100000000}}
limits: {default: {requests_per_minute: 100000, tokens_per_minute: 100000000}}
"""


@dataclass
class RouterProcess:
    address: str
    pid: int
    log: deque[str]

    def rss_bytes(self) -> int:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise AssertionError("no VmRSS")

    def serving(self) -> bool:
        with grpc.insecure_channel(self.address) as channel:
            try:
                answer = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=2)
            except grpc.RpcError:
                return False
            return bool(answer.status == health_pb2.HealthCheckResponse.SERVING)


# Module scope: the processes end with the fuzz suite, not with the whole test session.
@pytest.fixture(scope="module")
def router_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RouterProcess]:
    config = tmp_path_factory.mktemp("fuzz") / "router.yaml"
    config.write_text(CONFIG)
    command = [sys.executable, "-m", "router", "--listen", "127.0.0.1:0", "--usage-db", "off"]
    router = subprocess.Popen(
        [*command, "--config", str(config), "--grace-seconds", "0", "--drain-seconds", "0"],
        stderr=subprocess.PIPE,
        text=True,
    )
    worker: subprocess.Popen[bytes] | None = None
    try:
        assert router.stderr is not None
        address = ""
        for line in router.stderr:
            found = _LISTENING.search(line)
            if found:
                address = found.group(1)
                break
        assert address, "the router did not start"
        # Keep reading its log, so the router never blocks on a full pipe; the tail helps when a test fails.
        log: deque[str] = deque(maxlen=200)
        threading.Thread(target=log.extend, args=(router.stderr,), daemon=True).start()
        worker = subprocess.Popen(
            [sys.executable, "-m", "tests.client.echo_worker_process", "--router", address]
        )
        process = RouterProcess(address, router.pid, log)
        wait_until_sync(lambda: _has_echo(address), timeout=30)
        yield process
    finally:
        for child in (worker, router):
            if child is not None:
                child.terminate()
                child.wait(10)
        if router.stderr is not None:
            router.stderr.close()


def _has_echo(address: str) -> bool:
    from modelyard.v1 import router_pb2, router_pb2_grpc

    with grpc.insecure_channel(address) as channel:
        models = router_pb2_grpc.RouterServiceStub(channel).ListModels(
            router_pb2.ListModelsRequest(), timeout=2
        )
    return any(model.id == "echo" for model in models.models)
