"""How much audio the router holds at once: a bounded number of uploads and bytes, counted as they arrive.

A transcription's audio is held whole (the decoder needs all of it, a retry on another worker too). Without
a bound, a few parallel uploads of the per-request maximum exhaust the router's memory. An upload takes a
slot before its first byte is read, and each chunk is counted against the shared byte budget before it is
kept: over either, RESOURCE_EXHAUSTED with a retry delay, and the bytes already held are dropped.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from core.errors import RateLimited
from core.input_limits import InputLimits
from core.input_size import check_audio_bytes, check_audio_seconds, pcm_seconds

RETRY_S = 1.0  # uploads end within seconds; the caller cannot know when


class UploadMeter:
    """One upload's share of the gate: `take` each chunk's size before keeping it."""

    def __init__(self, gate: UploadGate) -> None:
        self._gate = gate
        self.pcm = False  # raw 16 kHz PCM: its length in seconds is known from its size
        self.size = 0

    def take(self, size: int) -> None:
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
    def __init__(self, max_uploads: int, max_bytes: int, input_limits: InputLimits) -> None:
        self.max_uploads = max_uploads
        self.max_bytes = max_bytes
        self.input = input_limits
        self.uploads = 0
        self.held = 0

    @contextlib.contextmanager
    def slot(self) -> Iterator[UploadMeter]:
        """Hold an upload slot until the request ends; what it took is given back then."""
        if self.uploads >= self.max_uploads:
            raise RateLimited(
                f"router busy: {self.uploads} uploads in progress, limit {self.max_uploads} (limits.max_uploads)",
                RETRY_S,
                limit="max_uploads",
            )
        self.uploads += 1
        meter = UploadMeter(self)
        try:
            yield meter
        finally:
            self.uploads -= 1
            self.held -= meter.size
