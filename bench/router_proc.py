"""The router under test, in a process of its own, built as `RouterServer(RouterConfig(...))`.

It runs with the production defaults (usage ledger in SQLite, response cache, metrics objects, health
checks, the garbage collector tuned at start as router.main tunes it), only on a free loopback port and with its ledger in a temporary directory. With `profile`
set, "profile-on" starts cProfile and "profile-take" answers with the top functions by own time.
"""

from __future__ import annotations

import cProfile
import io
import logging
import pstats
import tempfile
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path

from bench.processes import next_command
from core import event_loop, gc_tuning
from router.config.limits import LimitsConfig
from router.config.settings import ProviderConfig, RouterConfig
from router.server import RouterServer

PROFILE_LINES = 18


@dataclass(frozen=True)
class RouterOptions:
    providers: tuple[ProviderConfig, ...] = ()
    strategy: str = "composite"
    profile: bool = False
    extra: dict[str, float] = field(default_factory=dict)  # RouterConfig fields to override
    limits: LimitsConfig | None = None  # None: the router's defaults


async def _serve(conn: Connection, options: RouterOptions, ledger_dir: str) -> None:
    config = RouterConfig(
        listen="127.0.0.1:0",
        router_id="bench-router",
        providers=list(options.providers),
        strategy=options.strategy,
        usage_db=str(Path(ledger_dir) / "usage.sqlite3"),
        http_listen="127.0.0.1:0",  # the OpenAI-compatible HTTP door, beside gRPC
    )
    if options.limits is not None:
        config.limits = options.limits
    for name, value in options.extra.items():
        setattr(config, name, type(getattr(config, name))(value))
    server = RouterServer(config)
    await server.start()
    gc_tuning.settle_after_start()  # as router.main does: the bench measures the collector production runs
    profiler = cProfile.Profile() if options.profile else None
    conn.send({"address": server.address, "http_url": server.http.base_url if server.http else ""})
    while (command := await next_command(conn)) != "stop":
        if command == "profile-on" and profiler is not None:
            profiler = cProfile.Profile()
            profiler.enable()
            conn.send("ok")
        elif command == "profile-take" and profiler is not None:
            conn.send(_top_functions(profiler))
        else:
            conn.send("ok")
    await server.stop(1.0)
    conn.send("stopped")


_PACKAGES = (
    ("grpc", "/grpc/"),
    ("protobuf", "/google/protobuf/"),
    ("openai SDK", "/openai/"),
    ("httpx/httpcore", "/http"),
    ("pydantic", "/pydantic"),
    ("asyncio", "/asyncio/"),
    ("router (ours)", "/router/"),
    ("sqlite ledger", "sqlite"),
    ("prometheus", "/prometheus_client/"),
)


def _package(filename: str, name: str) -> str:
    if "_contextvars.Context" in name:
        # grpc.aio's Cython core runs as asyncio callbacks; cProfile cannot see inside compiled code.
        return "gRPC Cython core (asyncio callbacks)"
    if filename == "~":
        return "C built-ins (socket I/O, epoll, ...)"
    return next((name for name, marker in _PACKAGES if marker in filename), "other Python")


def _top_functions(profiler: cProfile.Profile) -> list[str]:
    """Own time grouped by package, then the top functions, as text lines."""
    profiler.disable()
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    by_package: dict[str, float] = {}
    raw: dict[tuple[str, int, str], tuple[int, int, float, float, object]] = stats.stats  # type: ignore[attr-defined]
    for (filename, _line, name), (_cc, _nc, tottime, _ct, _callers) in raw.items():
        package = _package(filename, name)
        by_package[package] = by_package.get(package, 0.0) + tottime
    total = sum(by_package.values()) or 1.0
    shares = sorted(by_package.items(), key=lambda kv: -kv[1])
    lines = ["own time by package: " + ", ".join(f"{name} {t / total:.0%}" for name, t in shares), ""]
    stats.sort_stats("tottime").print_stats(PROFILE_LINES)
    text = out.getvalue().splitlines()
    start = next((i for i, line in enumerate(text) if line.lstrip().startswith("ncalls")), 0)
    return lines + [line.rstrip() for line in text[start:] if line.strip()]


def router_child(conn: Connection, options: RouterOptions) -> None:
    """Process entry: run the router until told to stop."""
    logging.basicConfig(level=logging.ERROR)
    with tempfile.TemporaryDirectory(prefix="modelyard-bench-") as ledger_dir:
        event_loop.run(_serve(conn, options, ledger_dir))  # the loop `python -m router` runs on
