"""`modelyard models` and `modelyard status`: what the router serves, and how each backend is doing."""

from __future__ import annotations

import argparse
from typing import Any

from modelyard_client import BackendStatus, RouterStatus
from modelyard_client.cli._common import add_client_args, as_dict, client, print_json, table


def register(subparsers: Any) -> None:
    models: argparse.ArgumentParser = subparsers.add_parser(
        "models", help="list the models the router serves"
    )
    models.add_argument("--json", action="store_true")
    add_client_args(models)
    models.set_defaults(run=run_models)

    status: argparse.ArgumentParser = subparsers.add_parser(
        "status", help="show the router's backends, their health and load"
    )
    status.add_argument("--json", action="store_true")
    add_client_args(status)
    status.set_defaults(run=run_status)


def run_models(args: argparse.Namespace) -> int:
    with client(args) as c:
        models = c.models()
    if args.json:
        print_json({"models": [as_dict(m) for m in models]})
    elif not models:
        print("no models: no backend is registered")
    else:
        rows = [[m.id, ",".join(m.capabilities), ", ".join(m.backends)] for m in models]
        print(table(["MODEL", "CAPABILITIES", "BACKENDS"], rows))
    return 0


def run_status(args: argparse.Namespace) -> int:
    with client(args) as c:
        status = c.status()
    if args.json:
        print_json(as_dict(status))
    else:
        print(format_status(status))
    return 0


def format_status(status: RouterStatus) -> str:
    head = f"router {status.router_id or '?'}  version {status.version or '?'}  up {_duration(status.uptime_seconds)}"
    if not status.backends:
        return f"{head}\nno backends registered"
    header = ["BACKEND", "KIND", "ADDRESS", "STATE", "RUNNING", "WAITING", "KV-CACHE", "IN-FLIGHT", "MODELS"]
    return f"{head}\n{table(header, [_row(b) for b in status.backends])}"


def _row(b: BackendStatus) -> list[str]:
    state = "draining" if b.draining else "healthy" if b.healthy else "unhealthy"
    if b.load is not None:
        load = [str(b.load.running), str(b.load.waiting), f"{b.load.kv_cache_usage:.0%}"]
    else:
        load = ["-", "-", "-"]
    in_flight = f"{b.in_flight}/{b.max_concurrency}" if b.max_concurrency else str(b.in_flight)
    models = ", ".join(m.id for m in b.models)
    return [b.id, b.kind, b.address, state, *load, in_flight, models]


def _duration(seconds: float) -> str:
    s = int(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"
