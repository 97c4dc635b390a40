"""Settings for a router's start and stop (`shutdown:` and `startup_wait_s`), so routine restarts lose nothing.

shutdown:
  drain_s: 10        # after SIGTERM: NOT_SERVING, clients moved off by GOAWAY, everything that still arrives served
startup_wait_s: 10   # a new router holds a request for a model no worker has registered yet, this long at most
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import NonNegativeFloat

# Client connections are recycled (GOAWAY, then the client reconnects) at this fraction of drain_s, so every
# one of them has been told to go within the drain window (grpc's +-10% jitter on connection age included),
# with a fifth of the window left for the GOAWAY to reach the client and the ping that confirms it.
CONNECTION_AGE_FRACTION = 0.7


@dataclass(frozen=True)
class ShutdownConfig:
    """The drain that precedes the grace period (`grace_seconds`) on SIGTERM. 0: no drain, refuse at once."""

    drain_s: NonNegativeFloat = 10.0

    @property
    def connection_max_age_ms(self) -> int:
        """Longest a client connection lives before the router sends GOAWAY; 0: never (no drain)."""
        return round(self.drain_s * CONNECTION_AGE_FRACTION * 1000)
