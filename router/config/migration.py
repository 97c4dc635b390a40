"""Mid-stream migration (router.routing.migration): how often an answer may move, and what it keeps to move."""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import NonNegativeInt, PositiveInt


@dataclass
class MigrationConfig:
    # How many times one answer may move to another backend after it started; 0 turns migration off
    # (a broken stream then ends with STREAM_BROKEN, as before).
    max_attempts: NonNegativeInt = 2
    # The answer's text kept per stream so another backend can continue it. A longer answer is no longer
    # kept, and a break past this point ends the stream with STREAM_BROKEN.
    max_relayed_bytes: PositiveInt = 256 << 10
