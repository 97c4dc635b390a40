"""POST /v1/audio/transcriptions with `stream=true`: each segment as it is decoded, as OpenAI's SSE events.

`transcript.text.delta` events carry the text as it comes (a segment at a time here), and one
`transcript.text.done` ends the stream with the whole text and the usage, as OpenAI's API sends them and
the openai SDK reads them (TranscriptionTextDeltaEvent, TranscriptionTextDoneEvent). A failure after the
first event is a last `data: {"error": ...}` event, as on the chat stream.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web
from modelyard.v1 import inference_pb2 as pb

from core.errors import StatusError
from router.services.http.chat_response import modelyard_json
from router.services.http.errors import http_error

_SSE_HEADERS = {"Content-Type": "text/event-stream", "Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def asked_to_stream(value: str) -> bool:
    return value.strip().lower() in ("true", "1")


def _event(payload: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps(payload).encode() + b"\n\n"


async def stream_transcription(
    http: web.Request, first: pb.TranscribeResponse | None, events: AsyncIterator[pb.TranscribeResponse]
) -> web.StreamResponse:
    """Relay the pipeline's events (the first already read) as SSE; the caller closes `events`."""
    response = web.StreamResponse(headers=_SSE_HEADERS)
    await response.prepare(http)
    pieces: list[str] = []
    info, usage = pb.TranscriptionInfo(), pb.Usage()

    async def relay(event: pb.TranscribeResponse) -> None:
        nonlocal info, usage
        kind = event.WhichOneof("event")
        if kind == "segment" and (text := event.segment.text.strip()):
            # Whisper's segments start with a space and cloud APIs' do not: one space between them either way.
            await response.write(
                _event({"type": "transcript.text.delta", "delta": (" " if pieces else "") + text})
            )
            pieces.append(text)
        elif kind == "info":
            info = event.info
        elif kind == "usage":
            usage = event.usage

    try:
        if first is not None:
            await relay(first)
        async for event in events:
            await relay(event)
    except StatusError as error:
        await response.write(http_error(error).sse_event())
        await response.write_eof()
        return response
    seconds = usage.audio_seconds or info.duration_seconds
    done = {
        "type": "transcript.text.done",
        "text": " ".join(pieces),
        "usage": {"type": "duration", "seconds": round(seconds, 3)},
        "modelyard": modelyard_json(usage),
    }
    await response.write(_event(done))
    await response.write_eof()
    return response
