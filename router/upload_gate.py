"""How much audio the router holds at once: a bounded number of uploads and bytes, counted as they arrive.

A transcription's audio is held whole (the decoder needs all of it, a retry on another worker too). Without
a bound, a few parallel uploads of the per-request maximum exhaust the router's memory. An upload takes a
slot before its first byte is read, and each chunk is counted against the shared byte budget before it is
kept: over either, RESOURCE_EXHAUSTED with a retry delay, and the bytes already held are dropped.

One tenant holds at most max_uploads_per_tenant slots, so its uploads cannot keep every other tenant out; and
an upload that stalls (nothing for idle_timeout_s) or trickles (under min_bytes_per_s, averaged once it has run
idle_timeout_s) is ended DEADLINE_EXCEEDED, so a slot is never held by a client that is not sending.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import Awaitable, Iterator
from typing import TypeVar

from core.errors import DeadlineExceeded, RateLimited
from core.input_limits import InputLimits
from core.input_size import check_audio_bytes, check_audio_seconds, pcm_seconds

RETRY_S = 1.0  # uploads end within seconds; the caller cannot know when
T = TypeVar("T")


class UploadMeter:
    """One upload's share of the gate: `take` each chunk's size before keeping it."""

    def __init__(self, gate: UploadGate) -> None:
        self._gate = gate
        self.pcm = False  # raw 16 kHz PCM: its length in seconds is known from its size
        self.size = 0
        self._started = time.monotonic()

    async def within_idle(self, read: Awaitable[T]) -> T:
        """`read` (the next chunk, part or message), or DEADLINE_EXCEEDED when nothing came for idle_timeout_s."""
        try:
            return await asyncio.wait_for(read, self._gate.idle_timeout_s)
        except TimeoutError:
            raise DeadlineExceeded(
                f"upload: nothing received for {self._gate.idle_timeout_s:g} s (limits.upload_idle_timeout_s)"
            ) from None

    def take(self, size: int) -> None:
        elapsed = time.monotonic() - self._started
        if elapsed > self._gate.idle_timeout_s and (self.size + size) / elapsed < self._gate.min_bytes_per_s:
            raise DeadlineExceeded(
                f"upload: {self.size + size} bytes in {elapsed:.0f} s, slower than "
                f"{self._gate.min_bytes_per_s} bytes/s (limits.upload_min_bytes_per_s)"
            )
        check_audio_bytes(self.size + size, self._gate.input)
        if self.pcm:
            check_audio_seconds(pcm_seconds(self.size + size), self._gate.input)
        if self._gate.held + size > self._gate.max_bytes:
            raise RateLimited(
                f"router busy: {self._gate.held} bytes of uploads held, limit {self._gate.max_bytes} "
                "(limits.upload_buffer_bytes)",
                RETRY_S,
                limit="upload_buffer_bytes",
            )
        self._gate.held += size
        self.size += size


class UploadGate:
    def __init__(
        self,
        max_uploads: int,
        max_bytes: int,
        input_limits: InputLimits,
        per_tenant: int | None = None,
        idle_timeout_s: float = 10.0,
        min_bytes_per_s: int = 0,
    ) -> None:
        self.max_uploads = max_uploads
        self.max_bytes = max_bytes
        self.input = input_limits
        self.per_tenant = per_tenant or max_uploads
        self.idle_timeout_s = idle_timeout_s
        self.min_bytes_per_s = min_bytes_per_s
        self.uploads = 0
        self.held = 0
        self._by_tenant: Counter[str] = Counter()

    @contextlib.contextmanager
    def slot(self, tenant: str = "") -> Iterator[UploadMeter]:
        """Hold an upload slot until the request ends; what it took is given back then."""
        if self._by_tenant[tenant] >= self.per_tenant:
            raise RateLimited(
                f"tenant {tenant}: {self._by_tenant[tenant]} uploads in progress, limit {self.per_tenant} "
                "(limits.max_uploads_per_tenant)",
                RETRY_S,
                limit="max_uploads_per_tenant",
            )
        if self.uploads >= self.max_uploads:
            raise RateLimited(
                f"router busy: {self.uploads} uploads in progress, limit {self.max_uploads} (limits.max_uploads)",
                RETRY_S,
                limit="max_uploads",
            )
        self.uploads += 1
        self._by_tenant[tenant] += 1
        meter = UploadMeter(self)
        try:
            yield meter
        finally:
            self.uploads -= 1
            self._by_tenant[tenant] -= 1
            if not self._by_tenant[tenant]:
                del self._by_tenant[tenant]
            self.held -= meter.size
