"""What every client subcommand shares: router and key flags, the client they make, and output helpers."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

from core.tls import CA_ENV, CERT_ENV, KEY_ENV, TlsConfigError
from modelyard_client import Client, Tls, Usage
from modelyard_client._channel import ADDRESS_ENV, API_KEY_ENV, resolve_address
from modelyard_client.cli._style import paint


class UsageError(Exception):
    """Bad input found after parsing (a missing file, an unreadable image): exit status 2."""


def add_client_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--router",
        metavar="ADDR",
        default=None,
        help=f"router host:port (default: ${ADDRESS_ENV}, else {resolve_address(None)})",
    )
    parser.add_argument(
        "--api-key", default=None, help=f"sent as 'authorization: Bearer KEY' (default: ${API_KEY_ENV})"
    )
    parser.add_argument("--timeout", type=float, metavar="SECONDS", help="deadline for the whole call")
    parser.add_argument(
        "--tls-ca",
        metavar="FILE",
        help=f"TLS: the CA that signed the router's certificate (default: ${CA_ENV})",
    )
    parser.add_argument(
        "--tls-cert", metavar="FILE", help=f"mutual TLS: this client's certificate (default: ${CERT_ENV})"
    )
    parser.add_argument(
        "--tls-key", metavar="FILE", help=f"mutual TLS: its private key (default: ${KEY_ENV})"
    )


def tls(args: argparse.Namespace) -> Tls:
    """Unset flags fall back to the environment when the channel is made."""
    return Tls(ca=args.tls_ca, cert=args.tls_cert, key=args.tls_key)


def client(args: argparse.Namespace) -> Client:
    # Env defaults are read here, at run time, so `--help` and tests see the environment of the call.
    address = args.router or os.environ.get(ADDRESS_ENV) or None
    try:
        return Client(address, api_key=args.api_key, timeout=args.timeout, tls=tls(args))
    except TlsConfigError as e:  # a missing or unreadable certificate file: the user's to fix
        raise UsageError(str(e)) from e


def print_json(obj: Any) -> None:
    """One JSON object per line, flushed, so a reader can act on each as it arrives."""
    print(json.dumps(obj, ensure_ascii=False), flush=True)


def as_dict(value: Any) -> dict[str, Any]:
    return dataclasses.asdict(value)


def usage_line(usage: Usage) -> str:
    parts = [f"model {usage.model or '?'} on {usage.backend or '?'}"]
    if usage.prompt_tokens or usage.completion_tokens:
        parts.append(f"{usage.prompt_tokens} prompt + {usage.completion_tokens} completion tokens")
    if usage.audio_seconds:
        parts.append(f"{usage.audio_seconds:.1f} s audio")
    parts.append(f"first {usage.ttft_ms:.0f} ms, total {usage.latency_ms:.0f} ms")
    if usage.cost_usd:
        parts.append(f"${usage.cost_usd:.6f}")
    if usage.cache_hit:
        parts.append("cached")
    if usage.finish_reason and usage.finish_reason != "stop":
        parts.append(f"finish: {usage.finish_reason}")
    return "[" + ", ".join(parts) + "]"


def eprint(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def table(
    header: Sequence[str],
    rows: Sequence[Sequence[str]],
    colour: Callable[[str, str], str | None] | None = None,
) -> str:
    """Aligned columns. `colour(column, cell)` names a colour for a cell (see _style), applied after padding
    so escape codes never skew the alignment."""
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]

    def cell_text(column: str, cell: str, width: int, painted: bool) -> str:
        padding = " " * (width - len(cell))
        name = colour(column, cell) if painted and colour is not None else None
        return (paint(cell, name) if name else cell) + padding

    lines = [
        "  ".join(
            cell_text(column, cell, w, painted=row is not header)
            for column, cell, w in zip(header, row, widths, strict=True)
        ).rstrip()
        for row in [header, *rows]
    ]
    return "\n".join(lines)
