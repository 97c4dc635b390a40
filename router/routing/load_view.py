"""How many requests a backend holds, as far as this router can tell, and how many are ahead of a new one.

The router's own count is current; a worker's load report also holds other routers' requests but lags by up
to one report interval, so only what it holds beyond this router's count when it came is added
(Backend.others_in_flight): read against the count now, our own requests that just ended would look
still there, and an idle worker busy.
"""

from __future__ import annotations

from router.backends.base import Backend


def busy(backend: Backend, admitted: int = 0) -> int:
    """Requests running or queued there: ours (sent, or admitted and on their way) and others'."""
    return max(backend.in_flight, admitted) + backend.others_in_flight()


def ahead(backend: Backend, admitted: int = 0) -> int:
    """Requests that must finish before one sent there now starts."""
    return max(0, busy(backend, admitted) - backend.max_concurrency + 1)
