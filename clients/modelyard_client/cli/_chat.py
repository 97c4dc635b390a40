"""`modelyard chat`: stream an answer to the terminal, or as JSON lines."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from modelyard_client import Image, TextDelta, Usage
from modelyard_client.cli._common import (
    UsageError,
    add_client_args,
    as_dict,
    client,
    eprint,
    print_json,
    usage_line,
)

_URL_PREFIXES = ("http://", "https://", "data:")


def register(subparsers: Any) -> None:
    p: argparse.ArgumentParser = subparsers.add_parser(
        "chat", help="stream a chat answer", description="Stream a chat answer as it is generated."
    )
    p.add_argument("prompt", metavar="PROMPT", help='the user message; "-" reads it from stdin')
    p.add_argument("--model", default="auto", help="model id or route alias (default: %(default)s)")
    p.add_argument("--system", help="system prompt")
    p.add_argument("--temperature", type=float)
    p.add_argument("--top-p", type=float)
    p.add_argument("--max-tokens", type=int)
    p.add_argument("--stop", action="append", help="stop sequence (repeatable)")
    p.add_argument("--seed", type=int)
    p.add_argument("--image", action="append", metavar="PATH_OR_URL", help="attach an image (repeatable)")
    p.add_argument("--provider", help="run only on this backend or provider kind")
    p.add_argument(
        "--strategy", help="composite | fallback | priority | cost_optimized | latency | least_loaded"
    )
    p.add_argument("--max-cost-usd", type=float, help="skip backends whose estimated cost is higher")
    p.add_argument("--task", help="task tag matched against configured routes")
    p.add_argument("--json", action="store_true", help='JSON lines: {"delta": ...} then {"usage": {...}}')
    add_client_args(p)
    p.set_defaults(run=run)


def _image(ref: str) -> Image:
    if ref.startswith(_URL_PREFIXES):
        return Image.from_url(ref)
    try:
        return Image.from_file(ref)
    except (OSError, ValueError) as e:
        raise UsageError(f"--image {ref}: {e}") from e


def run(args: argparse.Namespace) -> int:
    prompt = sys.stdin.read() if args.prompt == "-" else args.prompt
    images = [_image(ref) for ref in args.image or ()]
    content: str | list[str | Image] = [prompt, *images] if images else prompt
    with client(args) as c:
        events = c.chat(
            [("user", content)],
            model=args.model,
            system=args.system,
            temperature=args.temperature,
            top_p=args.top_p,
            max_tokens=args.max_tokens,
            stop=args.stop,
            seed=args.seed,
            provider=args.provider,
            strategy=args.strategy,
            max_cost_usd=args.max_cost_usd,
            task=args.task,
        )
        ended_with_newline = True
        for event in events:
            if isinstance(event, TextDelta):
                if args.json:
                    print_json({"delta": event.text})
                elif event.text:
                    sys.stdout.write(event.text)
                    sys.stdout.flush()
                    ended_with_newline = event.text.endswith("\n")
            elif isinstance(event, Usage):
                if args.json:
                    print_json({"usage": as_dict(event)})
                else:
                    if not ended_with_newline:
                        print(flush=True)
                        ended_with_newline = True
                    eprint(usage_line(event))
    if not ended_with_newline:  # a stream that ended without usage still ends its line
        print(flush=True)
    return 0
