"""The `data:` objects of an OpenAI-style Server-Sent Events stream, from the body's bytes as they arrive.

Each event's data is decoded as plain JSON, once (core.fast_json): no pydantic model per chunk (in the
router's profile, bench/results/profile_openai_c32_stream_before.svg, the SDK's per-chunk models and its SSE
decoder were most of the time the router spent on an OpenAI-compatible stream). An error event, or an object that
carries `error`, raises `StreamErrorEvent`; a data line that is not JSON raises ValueError.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator
from typing import Any

from core import fast_json
from core.constants import MAX_MESSAGE_BYTES

_DONE = b"[DONE]"
# An upstream that never ends a line (or an event) must not make the router hold its body without bound: an
# event larger than the largest message the router may send on could not be relayed anyway.
MAX_LINE_BYTES = MAX_MESSAGE_BYTES


class StreamErrorEvent(Exception):
    """The provider reported an error inside a 200 stream: it failed part way."""

    def __init__(self, message: str, body: object) -> None:
        super().__init__(message)
        self.message = message
        self.body = body


def _event_data(lines: list[bytes]) -> tuple[str, bytes | None]:
    """The event name and its data field (None when there is none) of one event's lines."""
    event, data = "", []
    for line in lines:
        if line.startswith(b"data:"):
            value = line[5:]
            data.append(value[1:] if value.startswith(b" ") else value)
        elif line.startswith(b"event:"):
            event = line[6:].strip().decode("utf-8", "replace")
        # comments (":...") and id:/retry: fields say nothing we use
    return event, (b"\n".join(data) if data else None)


def _checked(event: str, data: bytes) -> Any:
    """The decoded data; an error event (or an object carrying `error`) raises StreamErrorEvent."""
    decoded = fast_json.loads(data)  # ValueError on a data line that is not JSON: the caller says so
    if isinstance(decoded, dict) and (decoded.get("error") or event == "error"):
        error = decoded.get("error", decoded)
        message = error.get("message") if isinstance(error, dict) else None
        raise StreamErrorEvent(
            message if isinstance(message, str) and message else "An error occurred during streaming", error
        )
    return decoded


async def sse_batches(body: AsyncIterable[bytes]) -> AsyncIterator[list[Any]]:
    """The decoded `data` of the events, in order, until `[DONE]` or the end of the body: one list per
    read of `body` (which yields bytes as they arrive, cut anywhere), so that a reader that fell behind
    gets at once everything that arrived meanwhile. Never an empty list."""
    held: list[bytes] = []  # the start of a line still waiting for its end: joined once it comes
    held_bytes = 0
    lines: list[bytes] = []  # the lines of the event being read
    event_bytes = 0
    async for chunk in body:
        if b"\n" not in chunk:
            held.append(chunk)
            held_bytes += len(chunk)
            if held_bytes > MAX_LINE_BYTES:
                raise ValueError(f"an event line longer than {MAX_LINE_BYTES} bytes")
            continue
        *complete, pending = (b"".join(held) + chunk if held else chunk).split(b"\n")
        held, held_bytes = ([pending], len(pending)) if pending else ([], 0)
        batch: list[Any] = []
        for raw in complete:
            line = raw.rstrip(b"\r")
            if line:
                lines.append(line)
                event_bytes += len(line)
                if event_bytes > MAX_LINE_BYTES:
                    raise ValueError(f"an event longer than {MAX_LINE_BYTES} bytes")
                continue
            # A blank line ends the event. Nearly every event is one `data: ` line: read it without the
            # general parse.
            data: bytes | None
            if len(lines) == 1 and lines[0].startswith(b"data: "):
                event, data = "", lines[0][6:]
            else:
                event, data = _event_data(lines)
            lines, event_bytes = [], 0
            if data is None:
                continue
            if data.startswith(_DONE):
                if batch:
                    yield batch
                return
            try:
                batch.append(_checked(event, data))
            except (StreamErrorEvent, ValueError):
                if batch:  # what came before the bad event is still delivered first
                    yield batch
                raise
        if batch:
            yield batch
    pending = b"".join(held)
    if pending.strip():
        lines.append(pending.rstrip(b"\r"))
    event, data = _event_data(lines)  # a last event without its blank line
    if data is not None and not data.startswith(_DONE):
        yield [_checked(event, data)]
