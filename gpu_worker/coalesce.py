"""Send several engine deltas as one message: when the reader is behind the engine, and at most once per
stream interval when the worker has one.

The engine's generator is read by a task of its own into a small queue; the gRPC side takes everything
queued each time it is ready to send. Adjacent text deltas (and adjacent reasoning text) that queued up
meanwhile are joined into one: the same text in the same order, in fewer messages, so a slow reader (or a
busy event loop) costs one write per batch, not one per token. Texts are Python strings of whole
characters, so joining never splits a UTF-8 character. Tool-call fragments and the final ChatFinished pass
through as they are, in order.

With no interval nothing waits for more: an event is handed on as soon as the writer asks and it is there.
With an interval (`--stream-interval-ms`), a sequence's events go out at most once per interval: what the
engine yields within an interval of the last send waits for the interval's end and goes out joined. The
first event never waits (nothing was sent yet), nor does one that comes after a quiet spell longer than the
interval, nor the end of the answer; nothing is held past the interval. On a GPU a sequence yields a token
every 10-20 ms, so at 20-50 ms this sends a few tokens per message: the router relays fewer messages.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import AsyncGenerator, Callable

from gpu_worker.engines.base import ChatEvent, ReasoningText, TextDelta

Clock = Callable[[], float]  # seconds, monotonic


def _joined(last: ChatEvent, event: ChatEvent) -> ChatEvent | None:
    """`last` and `event` as one event, or None when they do not join."""
    if isinstance(last, TextDelta) and isinstance(event, TextDelta):
        return TextDelta(last.text + event.text, last.logprobs + event.logprobs)
    if isinstance(last, ReasoningText) and isinstance(event, ReasoningText):
        return ReasoningText(last.text + event.text)
    return None


async def coalesced(
    events: AsyncGenerator[ChatEvent, None], interval_s: float = 0.0, clock: Clock = time.monotonic
) -> AsyncGenerator[ChatEvent, None]:
    """The engine's events, adjacent deltas joined while they wait for the reader (and, with `interval_s`,
    for the end of the interval since the last send; `clock` tells the time, the event loop waits). Closing
    this generator (or cancelling its reader) cancels the engine's reader task and closes the engine
    generator, which aborts the engine request."""
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
    sent_at: float | None = None  # when the last batch went out; None before the first
    try:
        while True:
            await ready.wait()
            if interval_s > 0 and sent_at is not None and not reader.done():
                left = sent_at + interval_s - clock()
                if left > 0:
                    # Gather until the interval ends, or the answer does (its end never waits).
                    await asyncio.wait((reader,), timeout=left)
            ready.clear()
            # What is queued now is this batch; what comes while it is written waits for the next one.
            batch = list(queue)
            queue.clear()
            if batch:
                sent_at = clock()
            for event in batch:
                yield event
            if reader.done() and not queue:
                if failure:
                    raise failure[0]
                return
    finally:
        if not reader.done():
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader
        await events.aclose()
