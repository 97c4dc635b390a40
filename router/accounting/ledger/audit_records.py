"""What the audit trail stores: one record per Admin call, whatever its outcome."""

from __future__ import annotations

from dataclasses import dataclass

AUDIT_COLUMNS = ("ts", "router_id", "tenant", "method", "arguments", "outcome", "message")


@dataclass(frozen=True)
class AuditRecord:
    ts: float  # unix seconds at the end of the call
    router_id: str
    tenant: str  # "" when the caller could not be identified
    method: str  # e.g. "UpdateBackend"
    arguments: str  # the request as JSON, cut to a bounded length
    outcome: str  # gRPC status code name
    message: str = ""  # the status message when not OK

    def values(self) -> tuple[object, ...]:
        return tuple(getattr(self, name) for name in AUDIT_COLUMNS)
