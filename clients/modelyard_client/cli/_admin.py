"""`modelyard admin ...`: change a running router without restarting it."""

from __future__ import annotations

import argparse
import os
from typing import Any

from google.protobuf.json_format import MessageToDict
from modelyard.v1 import inference_pb2

from core import wire
from core.tls import TlsConfigError
from modelyard_client._admin import AdminClient
from modelyard_client._channel import ADDRESS_ENV
from modelyard_client._client import Client
from modelyard_client.cli._common import UsageError, add_client_args, print_json, table, tls


def register(subparsers: Any) -> None:
    admin: argparse.ArgumentParser = subparsers.add_parser(
        "admin",
        help="change routing at run time",
        description="Change a running router without restarting it: switch backends on and off, set the "
        "strategy, compare costs, drain a worker, read the audit log. Needs an admin key when keys are set.",
    )
    commands = admin.add_subparsers(dest="admin_command", required=True, metavar="ACTION")

    update = _action(commands, "update-backend", "enable, disable or re-prioritise a backend")
    update.add_argument("backend", help="backend id, as in `modelyard status`")
    switch = update.add_mutually_exclusive_group()
    switch.add_argument(
        "--enable", dest="enabled", action="store_const", const=True, help="route requests to it again"
    )
    switch.add_argument(
        "--disable", dest="enabled", action="store_const", const=False, help="send it no new requests"
    )
    update.add_argument("--priority", type=int, help="lower is preferred")
    update.set_defaults(run=_update_backend)

    strategy = _action(
        commands,
        "strategy",
        "show the default strategy and its weights, or set them (only what is named changes)",
    )
    strategy.add_argument(
        "name", nargs="?", help="composite, fallback, priority, cost_optimized, latency, least_loaded"
    )
    strategy.add_argument(
        "--weight",
        action="append",
        default=[],
        metavar="SCORER=W",
        help="e.g. --weight cost=3 (repeatable); the scorers not named keep their weights",
    )
    strategy.add_argument(
        "--reset", action="store_true", help="restore the strategy's built-in weights (before any --weight)"
    )
    strategy.set_defaults(run=_strategy)

    cost = _action(commands, "compare-cost", "estimated cost of a prompt on every candidate")
    cost.add_argument("prompt", help="the user message to price")
    cost.add_argument("--model", default="auto", help="model id or route alias (default: %(default)s)")
    cost.add_argument(
        "--max-tokens", type=int, help="answer length to assume (default: the router's estimate)"
    )
    cost.set_defaults(run=_compare_cost)

    drain = _action(commands, "drain", "stop sending requests to a worker; it finishes what it holds")
    drain.add_argument("worker_id", help="the worker's id, as in `modelyard status`")
    drain.add_argument("--reason", default="", help="recorded in the router's log and audit trail")
    drain.set_defaults(run=_drain)

    audit = _action(commands, "audit", "Admin calls made on this router: who, what, and how it ended")
    audit.add_argument("--days", type=int, default=1, help="window ending now (default 1)")
    audit.add_argument("--tenant", help="only this tenant's calls")
    audit.add_argument("--limit", type=int, default=100, help="most recent calls shown (default 100)")
    audit.set_defaults(run=_audit)

    for command in (update, strategy, cost, drain, audit):
        command.add_argument("--json", action="store_true", help="the router's answer as JSON")
        add_client_args(command)


def _action(commands: Any, name: str, summary: str) -> argparse.ArgumentParser:
    """An admin action whose --help starts with the same sentence the action list shows."""
    parser: argparse.ArgumentParser = commands.add_parser(
        name, help=summary, description=summary[0].upper() + summary[1:] + "."
    )
    return parser


def _client(args: argparse.Namespace) -> AdminClient:
    address = args.router or os.environ.get(ADDRESS_ENV) or None
    try:
        return AdminClient(address, api_key=args.api_key, timeout=args.timeout, tls=tls(args))
    except TlsConfigError as e:
        raise UsageError(str(e)) from e


def _show(args: argparse.Namespace, message: Any, text: str) -> int:
    print_json(MessageToDict(message, preserving_proto_field_name=True)) if args.json else print(text)
    return 0


def _update_backend(args: argparse.Namespace) -> int:
    if args.enabled is None and args.priority is None:
        raise UsageError("update-backend: give --enable, --disable and/or --priority")
    with _client(args) as admin:
        status = admin.update_backend(args.backend, enabled=args.enabled, priority=args.priority)
    state = "enabled" if status.enabled else "disabled"
    return _show(args, status, f"{status.id}: {state}, priority {status.priority}")


def _strategy(args: argparse.Namespace) -> int:
    weights: dict[str, float] = {}
    for item in args.weight:
        name, _, value = item.partition("=")
        try:
            weights[name] = float(value)
        except ValueError:
            raise UsageError(f"--weight {item!r}: expected SCORER=NUMBER") from None
    if not (args.name or weights or args.reset):  # a read: no change, nothing to audit, any key may ask
        return _show_strategy(args)
    with _client(args) as admin:
        response = admin.set_strategy(args.name, weights, reset=args.reset)
    shown = ", ".join(f"{k}={v:g}" for k, v in sorted(response.weights.items()))
    return _show(
        args, response, f"strategy {wire.enum_name(inference_pb2.Strategy, response.strategy)}: {shown}"
    )


def _show_strategy(args: argparse.Namespace) -> int:
    address = args.router or os.environ.get(ADDRESS_ENV) or None
    try:
        client = Client(address, api_key=args.api_key, timeout=args.timeout, tls=tls(args))
    except TlsConfigError as e:
        raise UsageError(str(e)) from e
    with client:
        status = client.status()
    if args.json:
        print_json({"strategy": status.strategy, "weights": status.weights})
        return 0
    shown = ", ".join(f"{k}={v:g}" for k, v in sorted(status.weights.items()))
    print(f"strategy {status.strategy}: {shown}")
    return 0


def _compare_cost(args: argparse.Namespace) -> int:
    with _client(args) as admin:
        response = admin.compare_cost(args.prompt, model=args.model, max_tokens=args.max_tokens)
    rows = [
        [
            e.backend,
            e.model,
            str(e.prompt_tokens),
            str(e.completion_tokens),
            f"${e.cost_usd:.6f}",
            "yes" if e.available else "no",
        ]
        for e in response.estimates
    ]
    header = ["BACKEND", "MODEL", "PROMPT", "COMPLETION", "COST", "AVAILABLE"]
    return _show(args, response, table(header, rows))


def _drain(args: argparse.Namespace) -> int:
    with _client(args) as admin:
        admin.drain_worker(args.worker_id, args.reason)
    if args.json:
        print_json({"worker_id": args.worker_id, "draining": True})
    else:
        print(f"{args.worker_id}: draining")
    return 0


def _audit(args: argparse.Namespace) -> int:
    with _client(args) as admin:
        events = admin.audit_events(days=args.days, tenant=args.tenant, limit=args.limit)
    if args.json:
        for event in events:
            print_json(MessageToDict(event, preserving_proto_field_name=True))
        return 0
    rows = [
        [
            event.time.ToDatetime().strftime("%Y-%m-%d %H:%M:%S"),
            event.tenant or "?",
            event.method,
            event.outcome,
            event.arguments if len(event.arguments) <= 60 else event.arguments[:57] + "...",
        ]
        for event in events
    ]
    print(
        table(["time (UTC)", "tenant", "method", "outcome", "arguments"], rows) if rows else "no admin calls"
    )
    return 0
