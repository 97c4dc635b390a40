"""`modelyard usage`: calls, tokens, cost and latency per backend and model, from the router's ledger."""

from __future__ import annotations

import argparse
from typing import Any

from modelyard_client import UsageReport
from modelyard_client.cli._common import UsageError, add_client_args, as_dict, client, print_json, table


def register(subparsers: Any) -> None:
    usage: argparse.ArgumentParser = subparsers.add_parser(
        "usage",
        help="show usage per backend and model: calls, tokens, cost, latency",
        description="Usage from the router's ledger per backend and model: calls, success rate, tokens, cost "
        "and latency percentiles, over the last --days days.",
    )
    usage.add_argument("--days", type=int, default=1, help="window ending now, in days (default 1)")
    usage.add_argument("--tenant", help="tenant to report (default: your own; every tenant for an admin key)")
    usage.add_argument("--json", action="store_true", help="the report as one JSON object")
    add_client_args(usage)
    usage.set_defaults(run=run_usage)


def run_usage(args: argparse.Namespace) -> int:
    if args.days < 1:
        raise UsageError("--days: must be at least 1")
    with client(args) as c:
        report = c.usage(days=args.days, tenant=args.tenant)
    if args.json:
        print_json(as_dict(report))
    else:
        print(format_usage(report))
    return 0


def format_usage(report: UsageReport) -> str:
    who = f"tenant {report.tenant}" if report.tenant else "all tenants"
    head = f"usage over the last {report.days} day{'s' if report.days != 1 else ''}, {who}"
    if not report.rows:
        return f"{head}\nno requests"
    header = [
        "BACKEND",
        "MODEL",
        "CALLS",
        "OK",
        "PROMPT",
        "COMPLETION",
        "COST",
        "P50",
        "P95",
        "P99",
        "CACHED",
    ]
    rows = [
        [
            r.backend or "-",
            r.model,
            str(r.calls),
            f"{r.success_rate:.0%}",
            str(r.prompt_tokens),
            str(r.completion_tokens),
            f"${r.cost_usd:.4f}",
            f"{r.latency_p50_ms:.0f}ms",
            f"{r.latency_p95_ms:.0f}ms",
            f"{r.latency_p99_ms:.0f}ms",
            str(r.cache_hits),
        ]
        for r in report.rows
    ]
    total_cost = sum(r.cost_usd for r in report.rows)
    total_calls = sum(r.calls for r in report.rows)
    return f"{head}\n{table(header, rows)}\n{total_calls} calls, ${total_cost:.4f} in all"
