"""Send several engine deltas as one message when the reader is behind the engine.

The engine's generator is read by a task of its own into a small queue; the gRPC side takes everything
queued each time it is ready to send. Adjacent text deltas (and adjacent reasoning text) that queued up
while the previous message was being written are joined into one: the same text in the same order, in
fewer messages, so a slow reader (or a busy event loop) costs one write per batch, not one per token.
Nothing waits for more: an event is handed on as soon as the writer asks and it is there. Texts are
Python strings of whole characters, so joining never splits a UTF-8 character. Tool-call fragments and
the final ChatFinished pass through as they are, in order.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncGenerator

from gpu_worker.engines.base import ChatEvent, ReasoningText, TextDelta


def _joined(last: ChatEvent, event: ChatEvent) -> ChatEvent | None:
    """`last` and `event` as one event, or None when they do not join."""
    if isinstance(last, TextDelta) and isinstance(event, TextDelta):
        return TextDelta(last.text + event.text, last.logprobs + event.logprobs)
    if isinstance(last, ReasoningText) and isinstance(event, ReasoningText):
        return ReasoningText(last.text + event.text)
    return None


async def coalesced(events: AsyncGenerator[ChatEvent, None]) -> AsyncGenerator[ChatEvent, None]:
    """The engine's events, adjacent deltas joined while they wait for the reader. Closing this generator
    (or cancelling its reader) cancels the engine's reader task and closes the engine generator, which
    aborts the engine request."""
    queue: deque[ChatEvent] = deque()
    ready = asyncio.Event()
    failure: list[BaseException] = []

    async def read() -> None:
        try:
            async for event in events:
                joined = _joined(queue[-1], event) if queue else None
                if joined is None:
                    queue.append(event)
                else:
                    queue[-1] = joined  # the reader has not taken it yet: same text, one message fewer
                ready.set()
        except Exception as error:  # handed to the writer after what was queued before it
            failure.append(error)
        finally:
            ready.set()

    reader = asyncio.create_task(read())
    try:
        while True:
            await ready.wait()
            ready.clear()
            while queue:
                yield queue.popleft()
            if reader.done():
                while queue:  # queued between the last take and the end
                    yield queue.popleft()
                if failure:
                    raise failure[0]
                return
    finally:
        if not reader.done():
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader
        await events.aclose()
