"""`modelyard models` and `modelyard status`: what the router serves, and how each backend is doing."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from modelyard_client.cli._common import add_client_args, as_dict, client, print_json, table
from modelyard_client.cli._status_table import format_status
from modelyard_client.cli._style import colour_enabled


def register(subparsers: Any) -> None:
    models: argparse.ArgumentParser = subparsers.add_parser(
        "models",
        help="list the models the router serves",
        description="List every model the router can route to, what it does (chat, embed, transcribe) and "
        "which backends serve it.",
    )
    models.add_argument("--json", action="store_true", help="the list as one JSON object")
    add_client_args(models)
    models.set_defaults(run=run_models)

    status: argparse.ArgumentParser = subparsers.add_parser(
        "status",
        help="show the router's backends: health, circuit, priority, success rate, score and load",
        description="Show the router's strategy and, for each backend, its health, circuit breaker, "
        "enabled/priority, success rate (EWMA), the score it got when last considered, and its load. "
        "Backends that are failing get their last error below the table.",
    )
    status.add_argument(
        "--wide",
        action="store_true",
        help="every column (address, requests, failures, latencies, worker queue and KV cache) and each "
        "backend's score components",
    )
    status.add_argument("--json", action="store_true", help="every field of the router's answer, as JSON")
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
        print(format_status(status, wide=args.wide, colour=colour_enabled(sys.stdout)))
    return 0
