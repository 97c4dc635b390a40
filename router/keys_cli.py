"""`modelyard router hash-key`: print the key_sha256 value to paste into the router's config.

The key is read from stdin (or a hidden prompt), never from the command line, so it stays out of
shell history and process listings. `--generate` makes a new random key and prints it once.
"""

from __future__ import annotations

import argparse
import getpass
import secrets
import sys

from router.accounting.auth import hash_key


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="modelyard router hash-key",
        description="Hash an API key for the router's `keys:` setting. Reads the key from stdin or a prompt.",
    )
    parser.add_argument("--tenant", default="TENANT", help="tenant name to put in the printed entry")
    parser.add_argument("--generate", action="store_true", help="make a new random key and print it once")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.generate:
        key = "my-" + secrets.token_urlsafe(32)
        print(f"key (give it to the client; it is not stored anywhere): {key}", file=sys.stderr)
    elif sys.stdin.isatty():
        key = getpass.getpass("API key: ")
    else:
        key = sys.stdin.readline().strip()
    if not key:
        print("error: empty key", file=sys.stderr)
        return 2
    print(f'- {{tenant: {args.tenant}, key_sha256: "{hash_key(key)}"}}')
    return 0
