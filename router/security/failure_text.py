"""What a tenant learns when its request fails upstream: the status, not the backend's own words.

A backend's failure text names what only the operator should see ("Cannot connect to host 10.0.0.5:8000",
a provider's complaint about the router's key). Tenants without an admin key get the status with a generic
text; admins get the detail; the router's log has it either way (failover logs each failed attempt). Errors
that are the caller's own to fix (a bad argument, a limit) keep their text: it says what to change.
"""

from __future__ import annotations

import grpc

from core.errors import StatusError
from router.routing.failover import MidStreamFailure, UpstreamFailed

_S = grpc.StatusCode
_CALLERS_OWN = frozenset(
    {_S.INVALID_ARGUMENT, _S.FAILED_PRECONDITION, _S.OUT_OF_RANGE, _S.RESOURCE_EXHAUSTED}
)


def for_tenant(error: StatusError) -> StatusError:
    """`error` as a tenant without an admin key sees it."""
    if isinstance(error, MidStreamFailure):
        return MidStreamFailure(
            f"the answer broke after {error.items_sent} messages; the router's log has the details",
            error.items_sent,
        )
    if isinstance(error, UpstreamFailed) and error.code not in _CALLERS_OWN:
        return UpstreamFailed(
            f"the backends could not answer ({error.code.name}); the router's log has the details",
            error.code,
            error.retry_after_s,
        )
    return error
