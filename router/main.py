"""`modelyard router`: run the router until SIGINT or SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal

from router.config import RouterConfig
from router.server import RouterServer

log = logging.getLogger("modelyard.router")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="modelyard router", description="Run the Modelyard router.")
    parser.add_argument(
        "--listen", default="127.0.0.1:50051", help="host:port to serve gRPC on (default %(default)s)"
    )
    parser.add_argument("--router-id", help="name reported to workers and in status (default: hostname)")
    parser.add_argument("--log-level", default="INFO")
    return parser


def config_from_args(args: argparse.Namespace) -> RouterConfig:
    config = RouterConfig(listen=args.listen)
    if args.router_id:
        config.router_id = args.router_id
    return config


async def serve(config: RouterConfig, grace: float = 5.0) -> None:
    server = RouterServer(config)
    await server.start()
    print(f"modelyard router ready on {server.address}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("stopping: finishing in-flight requests for up to %.0f s", grace)
    await server.stop(grace)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    asyncio.run(serve(config_from_args(args)))
    return 0
