"""The `modelyard` command line: client commands, plus `router`, `worker` and `up` to run the servers."""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from modelyard_client import ModelyardError
from modelyard_client.cli import _admin, _chat, _info, _transcribe, _up, _usage
from modelyard_client.cli._common import UsageError, eprint

# Server commands hand their arguments to their own parsers, imported only when used so the
# client commands never load the router or the engines.
_DELEGATES = {"router": "router.main", "worker": "gpu_worker.main"}

# Exit statuses: 0 ok; 1 the server (or the connection) failed; 2 bad usage; 130 Ctrl-C, as shells expect.
EXIT_SERVER_ERROR, EXIT_USAGE, EXIT_INTERRUPTED = 1, 2, 130


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="modelyard",
        description="Modelyard: one gRPC front door for chat, embeddings and speech-to-text.",
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _chat.register(subparsers)
    _transcribe.register(subparsers)
    _info.register(subparsers)
    _usage.register(subparsers)
    _admin.register(subparsers)
    _up.register(subparsers)
    # Listed for --help only; main() hands these over before parsing.
    subparsers.add_parser(
        "router", help="run the router, or `router hash-key` to hash an API key (see --help)", add_help=False
    )
    subparsers.add_parser("worker", help="run a GPU worker (see: modelyard worker --help)", add_help=False)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in _DELEGATES:
        server_main = importlib.import_module(_DELEGATES[argv[0]]).main
        return int(server_main(argv[1:]) or 0)
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as e:  # argparse exits on --help (0) and bad usage (2); callers get a status back
        return e.code if isinstance(e.code, int) else EXIT_USAGE
    try:
        return int(args.run(args))
    except ModelyardError as e:
        eprint(f"error: {e.code}: {e.message}")
        return EXIT_SERVER_ERROR
    except UsageError as e:
        eprint(f"error: {e}")
        return EXIT_USAGE
    except KeyboardInterrupt:
        # The client's context manager has already closed the channel, which cancelled the call.
        eprint("\ninterrupted")
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader went away (`| head`); point stdout at /dev/null so the exit flush does not fail again.
        _silence_stdout()
        return EXIT_SERVER_ERROR


def _silence_stdout() -> None:
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # stdout has no file descriptor (captured, or already closed)
        pass
