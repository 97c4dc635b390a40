"""`modelyard chat`: stream an answer to the terminal, or as JSON lines."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from modelyard_client import Image
from modelyard_client.cli._chat_output import ChatPrinter
from modelyard_client.cli._common import UsageError, add_client_args, client

_URL_PREFIXES = ("http://", "https://", "data:")


def register(subparsers: Any) -> None:
    p: argparse.ArgumentParser = subparsers.add_parser(
        "chat", help="stream a chat answer", description="Stream a chat answer as it is generated."
    )
    p.add_argument("prompt", metavar="PROMPT", help='the user message; "-" reads it from stdin')
    p.add_argument("--model", default="auto", help="model id or route alias (default: %(default)s)")
    p.add_argument("--system", help="system prompt")
    p.add_argument(
        "--temperature",
        type=float,
        help="0 to 2; 0 answers greedily (default: the model's own, e.g. 0 for smollm2)",
    )
    p.add_argument(
        "--top-p", type=float, help="nucleus sampling: keep the likeliest tokens up to this mass, (0, 1]"
    )
    p.add_argument("--max-tokens", type=int, help="stop after this many tokens (default: the model's limit)")
    p.add_argument("--stop", action="append", help="stop sequence (repeatable)")
    p.add_argument("--seed", type=int, help="sampling seed: the same seed and prompt give the same answer")
    p.add_argument("--image", action="append", metavar="PATH_OR_URL", help="attach an image (repeatable)")
    p.add_argument("--provider", help="run only on this backend or provider kind")
    p.add_argument(
        "--strategy", help="composite | fallback | priority | cost_optimized | latency | least_loaded"
    )
    p.add_argument("--max-cost-usd", type=float, help="skip backends whose estimated cost is higher")
    p.add_argument("--task", help="task tag matched against configured routes")
    p.add_argument(
        "--tools",
        metavar="FILE.json",
        help="tools the model may call: a JSON array (OpenAI's shape or {name, ...})",
    )
    p.add_argument(
        "--tool-choice",
        metavar="auto|none|required|NAME",
        help="whether and which tool to call (with --tools)",
    )
    p.add_argument(
        "--response-format",
        metavar="json|FILE.schema.json",
        help="answer as a JSON object, or as JSON matching the schema in the file",
    )
    p.add_argument(
        "--logprobs", type=int, metavar="N", help="each token's logprob and its N likeliest alternatives"
    )
    p.add_argument(
        "--reasoning-effort", choices=("low", "medium", "high"), help="ask reasoning models to think"
    )
    p.add_argument(
        "--json",
        action="store_true",
        help='JSON lines: {"reasoning": ...}, {"delta": ...}, {"tool_call": {...}} then {"usage": {...}}',
    )
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
            tools=_tools(args.tools),
            tool_choice=args.tool_choice,
            response_format=_response_format(args.response_format),
            logprobs=args.logprobs,
            reasoning_effort=args.reasoning_effort,
        )
        printer = ChatPrinter(args.json)
        for event in events:
            printer.show(event)
        printer.finish()
    return 0


def _tools(path: str | None) -> list[dict[str, Any]] | None:
    if path is None:
        return None
    loaded = _json_file(path, "--tools")
    if isinstance(loaded, dict) and isinstance(loaded.get("tools"), list):
        loaded = loaded["tools"]
    if not isinstance(loaded, list) or not all(isinstance(t, dict) for t in loaded):
        raise UsageError(f"--tools {path}: expected a JSON array of tool objects")
    return loaded


def _response_format(value: str | None) -> str | dict[str, Any] | None:
    if value is None or value in ("json", "text"):
        return value
    if not Path(value).exists():
        raise UsageError(
            f"--response-format {value}: expected json, text or a JSON Schema file (no file {value!r} here)"
        )
    schema = _json_file(value, "--response-format")
    if not isinstance(schema, dict):
        raise UsageError(f"--response-format {value}: expected a JSON Schema object")
    return schema


def _json_file(path: str, option: str) -> Any:
    try:
        return json.loads(Path(path).read_text())
    except OSError as e:
        raise UsageError(f"{option} {path}: {e.strerror or e}") from None
    except ValueError as e:
        raise UsageError(f"{option} {path}: not valid JSON ({e})") from None
