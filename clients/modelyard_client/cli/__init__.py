"""The `modelyard` command line: client commands, plus `router`, `worker` and `up` to run the servers."""

from __future__ import annotations

import argparse
import os
import sys
from importlib.metadata import entry_points

from core.commands import ENTRY_POINT_GROUP, ServerCommand
from modelyard_client import ModelyardError
from modelyard_client.cli import _admin, _chat, _info, _transcribe, _usage
from modelyard_client.cli._common import UsageError, eprint

# Exit statuses: 0 ok; 1 the server (or the connection) failed; 2 bad usage; 130 Ctrl-C, as shells expect.
EXIT_SERVER_ERROR, EXIT_USAGE, EXIT_INTERRUPTED = 1, 2, 130


def server_commands() -> dict[str, ServerCommand]:
    """The server commands installed beside the client (`router`, `worker`, `up`), by name.

    They hand their arguments to their own parsers and are imported only when run, so the client commands
    never load the router or the engines. A client-only install has none.
    """
    found: dict[str, ServerCommand] = {}
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        if entry.name in found:  # the same distribution seen twice on sys.path: the first one wins
            continue
        try:
            found[entry.name] = entry.load()
        except ImportError:  # listed in stale metadata, but the package is not importable here
            continue
    return found


def build_parser(servers: dict[str, ServerCommand] | None = None) -> argparse.ArgumentParser:
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
    # Listed for --help only; main() hands these over before parsing.
    for name, command in sorted((server_commands() if servers is None else servers).items()):
        subparsers.add_parser(name, help=command.help, add_help=False)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    servers = server_commands()
    if argv and argv[0] in servers:
        return servers[argv[0]].run(argv[1:])
    parser = build_parser(servers)
    try:
        args, extra = parser.parse_known_args(argv)
        if extra:  # said by the command's own parser, with its usage, not the top level's
            _innermost(parser, args).error(f"unrecognized arguments: {' '.join(extra)}")
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


def _innermost(parser: argparse.ArgumentParser, args: argparse.Namespace) -> argparse.ArgumentParser:
    """The (sub)command parser that parsed `args`: `models` for `modelyard models --bogus`."""
    while True:
        chosen = None
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction) and action.dest:
                chosen = action.choices.get(getattr(args, action.dest, None) or "")
        if chosen is None:
            return parser
        parser = chosen


def _silence_stdout() -> None:
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # stdout has no file descriptor (captured, or already closed)
        pass
