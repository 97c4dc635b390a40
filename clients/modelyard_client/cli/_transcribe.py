"""`modelyard transcribe`: print segments as they are decoded, or JSON lines."""

from __future__ import annotations

import argparse
import sys
from typing import IO, Any

from modelyard_client import Segment, TranscriptionInfo, Usage
from modelyard_client.cli._common import (
    UsageError,
    add_client_args,
    as_dict,
    client,
    eprint,
    print_json,
    usage_line,
)
from modelyard_client.cli._upload_progress import terminal_console, upload_progress


def register(subparsers: Any) -> None:
    p: argparse.ArgumentParser = subparsers.add_parser(
        "transcribe",
        help="transcribe an audio file",
        description="Transcribe an audio file (WAV, FLAC, MP3, OGG, M4A...), printing segments as decoded.",
    )
    p.add_argument("file", metavar="FILE", help='audio file; "-" reads it from stdin')
    p.add_argument("--model", default="whisper-tiny.en", help="default: %(default)s")
    p.add_argument("--language", help="ISO 639-1 code (default: detect)")
    p.add_argument("--prompt", help="initial prompt: spellings, context")
    p.add_argument("--words", action="store_true", help="word timestamps")
    p.add_argument("--json", action="store_true", help="JSON lines: info, each segment, then usage")
    add_client_args(p)
    p.set_defaults(run=run)


def _open(path: str) -> IO[bytes]:
    if path == "-":
        return sys.stdin.buffer
    try:
        return open(path, "rb")
    except OSError as e:
        raise UsageError(f"{path}: {e.strerror}") from e


def _segment_text(segment: Segment, words: bool) -> str:
    lines = [f"[{segment.start:.2f}-{segment.end:.2f}] {segment.text.strip()}"]
    if words:
        lines += [
            f"    [{w.start:.2f}-{w.end:.2f}] {w.word.strip()} ({w.probability:.2f})" for w in segment.words
        ]
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    audio = _open(args.file)
    with audio, upload_progress(audio, terminal_console()) as upload, client(args) as c:
        events = c.transcribe(
            upload, model=args.model, language=args.language, word_timestamps=args.words, prompt=args.prompt
        )
        for event in events:
            if args.json:
                key = {TranscriptionInfo: "info", Segment: "segment", Usage: "usage"}[type(event)]
                print_json({key: as_dict(event)})
            elif isinstance(event, TranscriptionInfo):
                eprint(
                    f"[language {event.language or '?'} ({event.language_probability:.2f}),"
                    f" {event.duration_seconds:.1f} s of audio]"
                )
            elif isinstance(event, Segment):
                print(_segment_text(event, args.words), flush=True)
            else:
                eprint(usage_line(event))
    return 0
