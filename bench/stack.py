"""The setup every router measurement shares: a local OpenAI-format server, a router with it as the provider
"http" (model HTTP_MODEL), and a bench worker registered with that router, each in a process of its own."""

from __future__ import annotations

from dataclasses import dataclass

from bench.fixtures import WorkerSpec, worker_child
from bench.openai_server import openai_child
from bench.processes import Child, spawn
from bench.router_proc import RouterOptions, router_child
from router.config.settings import ProviderConfig

HTTP_MODEL = "bench-http"


@dataclass(frozen=True)
class Stack:
    http: Child
    router: Child
    worker: Child

    @property
    def url(self) -> str:
        """The OpenAI-format server's base URL (ends in /v1)."""
        return str(self.http.info["url"])

    @property
    def address(self) -> str:
        """The router's gRPC address."""
        return str(self.router.info["address"])

    def stop(self) -> None:
        for child in (self.worker, self.router, self.http):
            child.stop()


def spawn_stack(name: str, profile: bool = False) -> Stack:
    """`name` prefixes the processes' names; `profile` lets the router run cProfile on command."""
    http = spawn(f"{name}-openai", openai_child)
    provider = ProviderConfig(
        name="http",
        kind="openai_compatible",
        base_url=str(http.info["url"]),
        chat_models=[HTTP_MODEL],
        max_concurrency=1024,
    )
    router = spawn(f"{name}-router", router_child, RouterOptions(providers=(provider,), profile=profile))
    address = str(router.info["address"])
    worker = spawn(f"{name}-worker", worker_child, WorkerSpec(f"{name}-worker", router=address))
    return Stack(http, router, worker)
