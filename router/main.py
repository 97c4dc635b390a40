"""`modelyard router`: run the router until SIGINT or SIGTERM. `modelyard router hash-key`: hash an API key.
`modelyard router check-config FILE`: check a config file without starting."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import logging
import os
import signal
import sys

from core import event_loop, gc_tuning, logs, tracing
from core.errors import StatusError
from core.listen_errors import ListenError
from core.worker_token import load_worker_token
from router.config.loader import ConfigError, load_config, missing_keys
from router.config.settings import RouterConfig
from router.server import RouterServer

log = logging.getLogger("modelyard.router")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="modelyard router", description="Run the Modelyard router.")
    parser.add_argument("--config", help="YAML file (default: $MODELYARD_CONFIG, else built-in defaults)")
    parser.add_argument("--listen", help="host:port to serve gRPC on (default 127.0.0.1:50051)")
    parser.add_argument("--strategy", help="default routing strategy (default composite)")
    parser.add_argument("--router-id", help="name reported to workers and in status (default: hostname)")
    parser.add_argument(
        "--metrics-listen", help="host:port for Prometheus /metrics, e.g. 127.0.0.1:9090 (default: off)"
    )
    parser.add_argument(
        "--http-listen",
        help="host:port for the OpenAI-compatible HTTP door, e.g. 127.0.0.1:8080 (default: off; "
        "off loopback it needs API keys)",
    )
    parser.add_argument(
        "--usage-db",
        help="usage ledger: SQLite path, postgresql:// URL, or 'off' "
        "(default: $MODELYARD_USAGE_DB, else ~/.local/share/modelyard/usage.sqlite3)",
    )
    parser.add_argument(
        "--grace-seconds",
        type=_non_negative_float,
        help="on SIGTERM/SIGINT, how long calls in flight may take to finish (default 30; a second signal "
        "stops at once)",
    )
    parser.add_argument(
        "--drain-seconds",
        type=_non_negative_float,
        help="on SIGTERM/SIGINT, how long to keep serving while reporting NOT_SERVING and sending clients "
        "elsewhere, before the grace period (default 10; 0: refuse new calls at once)",
    )
    security = parser.add_argument_group("security (see README: Security)")
    security.add_argument("--tls-cert", metavar="FILE", help="serve TLS with this certificate (PEM)")
    security.add_argument("--tls-key", metavar="FILE", help="the certificate's private key (PEM)")
    security.add_argument(
        "--tls-client-ca", metavar="FILE", help="require client certificates signed by this CA (mutual TLS)"
    )
    security.add_argument(
        "--registry-listen",
        metavar="ADDR",
        help="host:port where workers register (default: the --listen port; $MODELYARD_REGISTRY_LISTEN)",
    )
    security.add_argument(
        "--worker-token-file",
        metavar="FILE",
        help="shared worker token, which workers must send (default: $MODELYARD_WORKER_TOKEN)",
    )
    security.add_argument(
        "--allow-open",
        action="store_true",
        help="serve a non-loopback address with no API keys or no worker credentials",
    )
    parser.add_argument("--log-level", default="INFO")
    parser.add_argument(
        "--log-format",
        choices=logs.FORMATS,
        default=os.environ.get("MODELYARD_LOG_FORMAT", "text"),
        help="text, or json: one JSON object per line, with request_id, tenant, backend and model on request "
        "lines (default: $MODELYARD_LOG_FORMAT, else text)",
    )
    return parser


def config_from_args(args: argparse.Namespace) -> RouterConfig:
    """File, then environment (inside load_config), then these flags."""
    config = load_config(args.config)
    if args.listen:
        config.listen = args.listen
    if args.strategy:
        config.strategy = args.strategy
    if args.router_id:
        config.router_id = args.router_id
    if args.metrics_listen is not None:
        config.metrics_listen = args.metrics_listen
    if args.http_listen is not None:
        config.http_listen = args.http_listen
    if args.usage_db:
        config.usage_db = args.usage_db
    if args.grace_seconds is not None:
        config.grace_seconds = args.grace_seconds
    if args.drain_seconds is not None:
        config.shutdown = dataclasses.replace(config.shutdown, drain_s=args.drain_seconds)
    for name in ("tls_cert", "tls_key", "tls_client_ca", "registry_listen"):
        if getattr(args, name):
            setattr(config, name, getattr(args, name))
    if args.allow_open:
        config.allow_open = True
    if args.worker_token_file:
        token = load_worker_token(args.worker_token_file)
        config.workers = dataclasses.replace(config.workers, token_file=args.worker_token_file, token=token)
    return config


async def serve(config: RouterConfig) -> None:
    server = RouterServer(config)
    await server.start()
    gc_tuning.settle_after_start()
    providers = (
        ", ".join(p.name for p in config.providers) or "none (set OPENAI_API_KEY, ANTHROPIC_API_KEY, ...)"
    )
    logs.announce(
        f"modelyard router ready on {server.address}; cloud providers: {providers}",
        event="ready",
        address=server.address,
    )
    if server.http is not None:
        logs.announce(f"OpenAI-compatible HTTP door on {server.http.base_url}", http=server.http.base_url)
    if config.registry_listen:
        logs.announce(f"workers register on {server.registry_address}", registry=server.registry_address)
    if server.metrics_port:
        logs.announce(f"metrics on port {server.metrics_port} (/metrics)", metrics_port=server.metrics_port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    for sig in (signal.SIGINT, signal.SIGTERM):  # a second signal: stop now
        loop.add_signal_handler(sig, server.give_up)
    log.info(
        "stopping: draining for %.0f s (NOT_SERVING, clients sent elsewhere, arrivals served), then "
        "finishing calls in flight for up to %.0f s",
        config.shutdown.drain_s,
        config.grace_seconds,
    )
    await server.drain()
    await server.stop()


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["hash-key"]:
        from router.keys_cli import main as hash_key

        return hash_key(argv[1:])
    if argv[:1] == ["check-config"]:
        return check_config(argv[1:])
    parser = build_parser()
    args = parser.parse_args(argv)
    logs.configure(args.log_level, args.log_format)
    tracing.setup("modelyard-router")
    try:
        config = config_from_args(args)
        RouterServer(config)  # fail here, before binding, on a bad strategy or provider
    except (ConfigError, ValueError, StatusError) as e:
        logs.announce(f"modelyard router: {_one_line(e)}", stream=sys.stderr, level="ERROR")
        return 2
    try:
        event_loop.run(serve(config))
    except ListenError as e:  # a busy port: one line naming the flag, not a traceback
        logs.announce(f"modelyard router: {e}", stream=sys.stderr, level="ERROR")
        return 1
    return 0


def check_config(argv: list[str]) -> int:
    """`modelyard router check-config FILE`: load and check a config (with the environment over it) as the
    router would, without listening or connecting anywhere. 0 when usable, 1 with one line saying why not."""
    parser = argparse.ArgumentParser(
        prog="modelyard router check-config",
        description="Check a router config file, with the MODELYARD_* environment over it, without starting.",
    )
    parser.add_argument("file", help="the YAML config file")
    args = parser.parse_args(argv)
    try:
        config = load_config(args.file)
        RouterServer(config)  # strategies, routes and providers are checked where they are built
    except (ConfigError, ValueError, StatusError) as e:
        print(f"modelyard router check-config: {_one_line(e)}", file=sys.stderr)
        return 1
    if problems := missing_keys(config):  # it would start, with these providers unhealthy for good
        print(f"modelyard router check-config: {'; '.join(problems)}", file=sys.stderr)
        return 1
    providers = ", ".join(p.name for p in config.providers) or "none"
    print(f"{args.file}: ok (strategy {config.strategy}; cloud providers: {providers})")
    return 0


def _one_line(error: Exception) -> str:
    return " ".join(str(error).split())


def _non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not value >= 0:
        raise argparse.ArgumentTypeError("must be 0 or more")
    return value
