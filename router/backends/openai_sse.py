"""The `data:` objects of an OpenAI-style Server-Sent Events stream, read from the SDK's raw response.

The SDK's own stream builds a pydantic model per chunk: in the router's profile (bench/results/
profile_openai_c32_stream_before.svg) that and its SSE decoder were most of the time the router spent on
an OpenAI-compatible stream. The SDK still makes the request (auth, base URL, headers, error statuses);
here the body is split into events and each event's data decoded as plain JSON, once. Failures come out
as the SDK's own exception types, so the backend maps them as before.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx2
import openai
from openai._httpx2 import request_exceptions, timeout_exceptions

_DONE = b"[DONE]"


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


def _checked(event: str, data: bytes, request: httpx2.Request) -> Any:
    """The decoded data; an error event (or an object carrying `error`) raises openai.APIError, as the SDK does."""
    decoded = json.loads(data)  # ValueError on a data line that is not JSON: the caller says so
    if isinstance(decoded, dict) and (decoded.get("error") or event == "error"):
        error = decoded.get("error", decoded)
        message = error.get("message") if isinstance(error, dict) else None
        raise openai.APIError(
            message if isinstance(message, str) and message else "An error occurred during streaming",
            request,
            body=error,
        )
    return decoded


async def sse_objects(response: httpx2.Response) -> AsyncIterator[Any]:
    """Each event's decoded `data`, in order, until `[DONE]` or the end of the body."""
    pending = b""
    lines: list[bytes] = []
    try:
        async for chunk in response.aiter_bytes():
            pending += chunk
            *complete, pending = pending.split(b"\n")
            for raw in complete:
                line = raw.rstrip(b"\r")
                if line:
                    lines.append(line)
                    continue
                event, data = _event_data(lines)  # a blank line ends the event
                lines = []
                if data is None:
                    continue
                if data.startswith(_DONE):
                    return
                yield _checked(event, data, response.request)
        if pending.strip():
            lines.append(pending.rstrip(b"\r"))
        event, data = _event_data(lines)  # a last event without its blank line
        if data is not None and not data.startswith(_DONE):
            yield _checked(event, data, response.request)
    except timeout_exceptions() as e:
        raise openai.APITimeoutError(request=response.request) from e
    except request_exceptions() as e:
        raise openai.APIConnectionError(request=response.request) from e
